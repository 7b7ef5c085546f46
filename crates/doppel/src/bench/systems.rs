//! The systems under test, each started as a process of its own on
//! loopback in a temporary directory, and how each one is written to,
//! flushed, measured and queried.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use doppel_model::Timestamp;
use serde_json::Value as Json;
use tokio::process::Command;

use super::influx_config::{apply_settings, benchmark_settings};
use super::process::{
    ChildGuard, DiskUsage, MemoryUsage, TempDir, disk_usage, free_port, memory_usage_of, wait_ready,
};
use super::workload::QUERY_SIGNAL;

/// Database the InfluxDB peer writes into.
const INFLUX_DATABASE: &str = "twin";

/// How long the data directory of a peer must stay the same size before
/// its bytes are measured: longer than InfluxDB's full-compaction cold
/// duration (10 s, set in `influx_config`) so the wait cannot end between
/// its cache snapshot and its full compaction.
const SETTLE_STABLE_MS: u64 = 15_000;
/// Longest wait for a peer's background flush and compaction to finish;
/// past it the bytes are measured as they are, with a warning.
const SETTLE_MAX_MS: u64 = 120_000;
/// Interval between size probes while settling.
const SETTLE_POLL_MS: u64 = 1_000;

/// The environment variables `serve` and `compact` read settings from:
/// removed for the processes the benchmark starts, so that they run with
/// defaults whatever the caller's environment configures.
const SETTINGS_VARIABLES: [&str; 11] = [
    "DOPPEL_CONFIG",
    "DOPPEL_STRICT",
    "DOPPEL_MODELS",
    "DOPPEL_DATA",
    "DOPPEL_LISTEN",
    "DOPPEL_NO_AUTH",
    "DOPPEL_INSECURE",
    "DOPPEL_NO_ENCRYPTION",
    "DOPPEL_KEYRING",
    "DOPPEL_MASTER_KEY_FILE",
    "DOPPEL_MASTER_KEY",
];

/// A system the benchmark can run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SystemKind {
    /// Doppel itself: this binary's `serve`, with its defaults
    /// (authentication and encryption at rest on) when `secured`, or with
    /// both turned off, to show what they cost.
    Doppel {
        /// Authentication and encryption at rest on.
        secured: bool,
    },
    /// The `victoria-metrics` single-node binary.
    VictoriaMetrics,
    /// InfluxDB 1.x's `influxd`.
    InfluxDb,
}

impl SystemKind {
    /// Printed name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Doppel { secured: true } => "Doppel",
            Self::Doppel { secured: false } => "Doppel (no auth, no encryption)",
            Self::VictoriaMetrics => "VictoriaMetrics",
            Self::InfluxDb => "InfluxDB",
        }
    }

    /// The executable a peer needs on `PATH`.
    pub fn program(self) -> Option<&'static str> {
        match self {
            Self::Doppel { .. } => None,
            Self::VictoriaMetrics => Some("victoria-metrics"),
            Self::InfluxDb => Some("influxd"),
        }
    }

    /// Whether the system can be started here.
    pub fn installed(self) -> bool {
        self.program().is_none_or(|program| find_on_path(program).is_some())
    }

    fn short(self) -> &'static str {
        match self {
            Self::Doppel { secured: true } => "doppel",
            Self::Doppel { secured: false } => "doppel-plain",
            Self::VictoriaMetrics => "vm",
            Self::InfluxDb => "influx",
        }
    }
}

/// The full path of `program` on `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// Options every system starts with.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Parent of the temporary directories.
    pub work_dir: PathBuf,
    /// Keep the directories after the run.
    pub keep_data: bool,
    /// Leave VictoriaMetrics' response cache on (off by default so every
    /// system computes every answer).
    pub vm_cache: bool,
}

/// A started system.
pub struct RunningSystem {
    /// Which system.
    pub kind: SystemKind,
    child: Option<ChildGuard>,
    dir: TempDir,
    data_dir: PathBuf,
    base_url: String,
    options: StartOptions,
    /// Doppel's admin token, given to the server it starts and used only
    /// by the operator's steps (issuing tokens, flushing, metrics), never
    /// for the writes and queries measured; `None` for the peers, which
    /// run without authentication as they do by default.
    admin: Option<String>,
}

/// The credentials measured requests carry: what people and gateways
/// hold, never the admin token. Empty for systems without authentication.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// Each person's own token (user = the person, scopes read and write,
    /// limited to their twin), by person index.
    pub people: Vec<String>,
    /// A gateway's token (user `gateway`, scopes read and write, any twin
    /// it creates: it becomes their owner).
    pub gateway: Option<String>,
}

impl Credentials {
    /// The token for person `person`'s requests; the gateway's for
    /// requests of no one person, or when people have none.
    pub fn for_person(&self, person: Option<usize>) -> Option<&str> {
        person.and_then(|p| self.people.get(p)).or(self.gateway.as_ref()).map(String::as_str)
    }
}

/// Most token requests in flight while issuing people's tokens.
const ISSUE_CONCURRENCY: usize = 8;

impl RunningSystem {
    /// Starts the system in a fresh temporary directory and waits until it
    /// answers its health probe.
    pub async fn start(kind: SystemKind, client: &reqwest::Client, options: &StartOptions) -> Result<Self> {
        let dir = TempDir::new(&options.work_dir, kind.short(), options.keep_data)?;
        let data_dir = match kind {
            SystemKind::InfluxDb => dir.path().join("influx"),
            _ => dir.path().join("data"),
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let admin = match kind {
            SystemKind::Doppel { secured: true } => Some(crate::token::generate()?),
            SystemKind::Doppel { secured: false } | SystemKind::VictoriaMetrics | SystemKind::InfluxDb => {
                None
            }
        };
        let mut system = Self {
            kind,
            child: None,
            dir,
            data_dir,
            base_url: String::new(),
            options: options.clone(),
            admin,
        };
        system.launch(client).await?;
        if kind == SystemKind::InfluxDb {
            system.create_influx_database(client).await?;
        }
        Ok(system)
    }

    async fn launch(&mut self, client: &reqwest::Client) -> Result<()> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let log = self.dir.path().join(format!("{}.log", self.kind.short()));
        let (mut command, probe) = match self.kind {
            SystemKind::Doppel { .. } => {
                let exe =
                    std::env::current_exe().context("cannot find this executable to start `doppel serve`")?;
                let mut command = Command::new(exe);
                command.arg("serve").arg("--data").arg(&self.data_dir).arg("--listen").arg(&listen);
                // The benchmarked server runs with defaults, whatever the
                // caller's environment configures.
                for var in SETTINGS_VARIABLES {
                    command.env_remove(var);
                }
                if self.kind == (SystemKind::Doppel { secured: false }) {
                    command.arg("--no-auth").arg("--no-encryption");
                }
                if let Some(token) = &self.admin {
                    command.env(crate::serve::ADMIN_TOKEN_VARIABLE, token);
                }
                (command, "/health")
            }
            SystemKind::VictoriaMetrics => {
                let mut command = Command::new("victoria-metrics");
                command
                    .arg(format!("-storageDataPath={}", self.data_dir.display()))
                    .arg(format!("-httpListenAddr={listen}"))
                    .arg("-retentionPeriod=100y")
                    .arg("-search.latencyOffset=0s")
                    // `heart_rate value=62` becomes metric `heart_rate`, not
                    // `heart_rate_value`, matching the other systems' names.
                    .arg("-influxSkipSingleField");
                if !self.options.vm_cache {
                    command.arg("-search.disableCache");
                }
                (command, "/health")
            }
            SystemKind::InfluxDb => {
                let config = self.write_influx_config(port).await?;
                let mut command = Command::new("influxd");
                command.arg("run").arg("-config").arg(config);
                (command, "/ping")
            }
        };
        let mut child = ChildGuard::spawn(self.kind.label(), &mut command, &log)?;
        self.base_url = format!("http://{listen}");
        wait_ready(client, &format!("{}{probe}", self.base_url), &mut child).await?;
        self.child = Some(child);
        Ok(())
    }

    async fn write_influx_config(&self, http_port: u16) -> Result<PathBuf> {
        let output =
            Command::new("influxd").arg("config").output().await.context("cannot run `influxd config`")?;
        if !output.status.success() {
            bail!("`influxd config` failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let defaults = String::from_utf8_lossy(&output.stdout);
        let text = apply_settings(&defaults, &benchmark_settings(&self.data_dir, http_port, free_port()?));
        let path = self.dir.path().join("influxdb.conf");
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    async fn create_influx_database(&self, client: &reqwest::Client) -> Result<()> {
        let response = client
            .post(format!("{}/query", self.base_url))
            .form(&[("q", format!("CREATE DATABASE {INFLUX_DATABASE}"))])
            .send()
            .await?;
        ensure_success(response, "InfluxDB CREATE DATABASE").await?;
        Ok(())
    }

    /// Where line-protocol bodies go.
    pub fn write_url(&self) -> String {
        match self.kind {
            SystemKind::Doppel { .. } => format!("{}/api/v2/write?bucket=bench&precision=ns", self.base_url),
            SystemKind::VictoriaMetrics => format!("{}/write?precision=ns", self.base_url),
            SystemKind::InfluxDb => format!("{}/write?db={INFLUX_DATABASE}&precision=ns", self.base_url),
        }
    }

    /// Base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `request` with `token`, if the system needs one.
    pub fn authorize(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `request` with the admin token, for the operator's steps.
    fn as_admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        Self::authorize(request, self.admin.as_deref())
    }

    /// Issues the tokens the measured requests carry, through the API as
    /// an operator would: one per person in `people` (twin id = user) when
    /// `per_person`, and one gateway token. Nothing for systems without
    /// authentication.
    pub async fn issue_credentials(
        &self,
        client: &reqwest::Client,
        people: &[String],
        per_person: bool,
    ) -> Result<Credentials> {
        if self.admin.is_none() {
            return Ok(Credentials::default());
        }
        let gateway = self
            .issue_token(
                client,
                serde_json::json!({"name": "bench-gateway", "user": "gateway", "scopes": ["read", "write"]}),
            )
            .await?;
        let mut tokens = Vec::with_capacity(if per_person { people.len() } else { 0 });
        for batch in people.chunks(ISSUE_CONCURRENCY).take_while(|_| per_person) {
            let issued = futures_util::future::join_all(batch.iter().map(|person| {
                self.issue_token(
                    client,
                    serde_json::json!({
                        "name": format!("{person}-phone"), "user": person, "scopes": ["read", "write"], "twins": [person],
                    }),
                )
            }))
            .await;
            for token in issued {
                tokens.push(token?);
            }
        }
        Ok(Credentials { people: tokens, gateway: Some(gateway) })
    }

    async fn issue_token(&self, client: &reqwest::Client, body: Json) -> Result<String> {
        let response =
            self.as_admin(client.post(format!("{}/api/v1/tokens", self.base_url))).json(&body).send().await?;
        let answer = ensure_success(response, "Doppel POST /api/v1/tokens").await?;
        answer["token"].as_str().map(str::to_owned).context("POST /api/v1/tokens answered without a token")
    }

    /// Brings the system's files to rest while it keeps running, before
    /// their bytes are measured; returns a note on how, for the report.
    ///
    /// - Doppel: `POST /api/v1/admin/flush` (the head into a segment), then
    ///   wait until the data directory stops changing (background
    ///   compaction).
    /// - VictoriaMetrics: `/internal/force_flush`, then the same wait.
    /// - InfluxDB 1.x has no flush endpoint: the benchmark configures short
    ///   cold durations (cache snapshot after 5 s, full compaction after
    ///   10 s idle) and waits the same way.
    pub async fn settle(&mut self, client: &reqwest::Client) -> Result<String> {
        let flush = match self.kind {
            SystemKind::Doppel { .. } => {
                let response = self
                    .as_admin(client.post(format!("{}/api/v1/admin/flush", self.base_url)))
                    .send()
                    .await?;
                ensure_success(response, "Doppel POST /api/v1/admin/flush").await?;
                "POST /api/v1/admin/flush, then "
            }
            SystemKind::VictoriaMetrics => {
                let response = client.get(format!("{}/internal/force_flush", self.base_url)).send().await?;
                ensure_success(response, "VictoriaMetrics force_flush").await?;
                "/internal/force_flush, then "
            }
            SystemKind::InfluxDb => "no flush API; short cold durations, then ",
        };
        let waited = wait_until_stable(&self.data_dir).await?;
        Ok(format!("{flush}{waited}"))
    }

    /// Stops the system gracefully (Doppel flushes its head at stop),
    /// measures its files at rest, and starts it again on the same data;
    /// answers the usage and how long the start took until healthy.
    pub async fn restart(&mut self, client: &reqwest::Client) -> Result<(DiskUsage, Duration)> {
        if let Some(mut child) = self.child.take() {
            let status = child.stop().await?;
            if !status.success() {
                bail!(
                    "{} did not stop cleanly ({status}):\n{}",
                    self.kind.label(),
                    super::process::log_tail(child.log())
                );
            }
        }
        let usage = self.disk_usage()?;
        let started = Instant::now();
        self.launch(client).await?;
        Ok((usage, started.elapsed()))
    }

    /// One metric of Doppel's `/metrics` (summed over its labels), read
    /// with the admin token; `None` for the peers or an unknown name.
    pub async fn doppel_metric(&self, client: &reqwest::Client, name: &str) -> Result<Option<f64>> {
        if !matches!(self.kind, SystemKind::Doppel { .. }) {
            return Ok(None);
        }
        let response = self.as_admin(client.get(format!("{}/metrics", self.base_url))).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("Doppel /metrics answered {status}: {text}");
        }
        let samples: Vec<f64> = text
            .lines()
            .filter(|line| line.split([' ', '{']).next() == Some(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        Ok((!samples.is_empty()).then(|| samples.iter().sum()))
    }

    /// Resident memory of the system's process.
    pub fn memory_usage(&self) -> Result<MemoryUsage> {
        let pid = self.child.as_ref().and_then(ChildGuard::id).context("the system is not running")?;
        memory_usage_of(&pid.to_string())
    }

    /// Bytes of the system's data directory.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        disk_usage(&self.data_dir)
    }

    /// Stops the system gracefully (the drop guard kills it otherwise).
    pub async fn stop(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.stop().await?;
        }
        Ok(())
    }

    /// The request for the newest heart_rate value of a twin whose data
    /// ends before `to`.
    pub fn last_value_request(
        &self,
        client: &reqwest::Client,
        twin: &str,
        token: Option<&str>,
        to: Timestamp,
    ) -> reqwest::RequestBuilder {
        match self.kind {
            // Doppel keeps each twin's newest values as live state.
            SystemKind::Doppel { .. } => {
                Self::authorize(client.get(format!("{}/api/v1/twins/{twin}", self.base_url)), token)
            }
            SystemKind::VictoriaMetrics => client.get(format!("{}/api/v1/query", self.base_url)).query(&[
                ("query", format!("last_over_time({QUERY_SIGNAL}{{twin=\"{twin}\"}}[30d])")),
                ("time", unix_secs(to).to_string()),
            ]),
            SystemKind::InfluxDb => influx_query(
                client,
                &self.base_url,
                format!("SELECT last(value) FROM {QUERY_SIGNAL} WHERE twin='{twin}'"),
            ),
        }
    }

    /// The request for hourly means of heart_rate over `[from, to)`.
    pub fn hourly_request(
        &self,
        client: &reqwest::Client,
        twin: &str,
        token: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> reqwest::RequestBuilder {
        match self.kind {
            SystemKind::Doppel { .. } => Self::authorize(
                client.get(format!("{}/api/v1/twins/{twin}/signals/{QUERY_SIGNAL}", self.base_url)).query(&[
                    ("from", from.as_nanos().to_string()),
                    ("to", to.as_nanos().to_string()),
                    ("every", "1h".to_owned()),
                    ("agg", "mean".to_owned()),
                ]),
                token,
            ),
            SystemKind::VictoriaMetrics => {
                client.get(format!("{}/api/v1/query_range", self.base_url)).query(&[
                    ("query", format!("avg_over_time({QUERY_SIGNAL}{{twin=\"{twin}\"}}[1h])")),
                    ("start", unix_secs(from).to_string()),
                    ("end", unix_secs(to).to_string()),
                    ("step", "1h".to_owned()),
                ])
            }
            SystemKind::InfluxDb => influx_query(
                client,
                &self.base_url,
                format!(
                    "SELECT mean(value) FROM {QUERY_SIGNAL} WHERE twin='{twin}' AND time >= {} AND time < {} GROUP BY time(1h)",
                    from.as_nanos(),
                    to.as_nanos()
                ),
            ),
        }
    }

    /// How many heart_rate points the system holds for `twins` in `[from, to)`.
    pub async fn count_query_signal(
        &self,
        client: &reqwest::Client,
        twins: &[String],
        credentials: &Credentials,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<u64> {
        match self.kind {
            SystemKind::Doppel { .. } => {
                let mut total = 0u64;
                for (person, twin) in twins.iter().enumerate() {
                    let request = client
                        .get(format!("{}/api/v1/twins/{twin}/signals/{QUERY_SIGNAL}", self.base_url))
                        .query(&[
                            ("from", from.as_nanos().to_string()),
                            ("to", to.as_nanos().to_string()),
                            ("agg", "count".to_owned()),
                        ]);
                    let response =
                        Self::authorize(request, credentials.for_person(Some(person))).send().await?;
                    if response.status() == reqwest::StatusCode::NOT_FOUND {
                        continue;
                    }
                    total += doppel_count(&ensure_success(response, "Doppel count").await?);
                }
                Ok(total)
            }
            SystemKind::VictoriaMetrics => {
                // The window ends at `to` inclusive, so it starts one second
                // before `from` to cover it whole.
                let window_secs = unix_secs(to) - unix_secs(from) + 1;
                let response = client
                    .get(format!("{}/api/v1/query", self.base_url))
                    .query(&[
                        ("query", format!("sum(count_over_time({QUERY_SIGNAL}[{window_secs}s]))")),
                        ("time", unix_secs(to).to_string()),
                    ])
                    .send()
                    .await?;
                Ok(vm_count(&ensure_success(response, "VictoriaMetrics count").await?))
            }
            SystemKind::InfluxDb => {
                let response =
                    influx_query(client, &self.base_url, format!("SELECT count(value) FROM {QUERY_SIGNAL}"))
                        .send()
                        .await?;
                Ok(influx_count(&ensure_success(response, "InfluxDB count").await?))
            }
        }
    }

    /// Whether an answer to [`Self::last_value_request`] or
    /// [`Self::hourly_request`] holds data (an empty answer is fast and
    /// would make a broken setup look good).
    pub fn answer_has_data(&self, body: &Json) -> bool {
        match self.kind {
            SystemKind::Doppel { .. } => {
                let has_signal = body["signals"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["signal"].as_str() == Some(QUERY_SIGNAL)));
                let has_buckets = body["buckets"].as_array().is_some_and(|b| !b.is_empty());
                has_signal || has_buckets
            }
            SystemKind::VictoriaMetrics => body["data"]["result"].as_array().is_some_and(|r| !r.is_empty()),
            SystemKind::InfluxDb => body["results"][0]["series"].as_array().is_some_and(|s| !s.is_empty()),
        }
    }

    /// The directory the system's logs and data live in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn influx_query(client: &reqwest::Client, base_url: &str, query: String) -> reqwest::RequestBuilder {
    client.get(format!("{base_url}/query")).query(&[("db", INFLUX_DATABASE.to_owned()), ("q", query)])
}

fn unix_secs(time: Timestamp) -> i64 {
    time.as_nanos().div_euclid(1_000_000_000)
}

/// Reads a 2xx answer as JSON (empty bodies as `null`), or fails quoting it.
pub async fn ensure_success(response: reqwest::Response, what: &str) -> Result<Json> {
    let status = response.status();
    let body = response.bytes().await.with_context(|| format!("{what}: cannot read the answer"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned();
        bail!("{what} answered {status}: {text}");
    }
    if body.is_empty() {
        return Ok(Json::Null);
    }
    serde_json::from_slice(&body).with_context(|| format!("{what}: the answer is not JSON"))
}

/// Sum of bucket counts in a Doppel aggregate answer.
pub fn doppel_count(body: &Json) -> u64 {
    body["buckets"].as_array().map_or(0, |buckets| buckets.iter().map(|b| json_number(&b["count"])).sum())
}

/// The scalar of a VictoriaMetrics instant-query answer.
pub fn vm_count(body: &Json) -> u64 {
    body["data"]["result"]
        .as_array()
        .map_or(0, |result| result.iter().map(|r| json_number(&r["value"][1])).sum())
}

/// The count of an InfluxQL `SELECT count(..)` answer.
pub fn influx_count(body: &Json) -> u64 {
    body["results"][0]["series"]
        .as_array()
        .map_or(0, |series| series.iter().map(|s| json_number(&s["values"][0][1])).sum())
}

/// A count as JSON number or numeric string (Prometheus APIs send strings).
fn json_number(value: &Json) -> u64 {
    let number = match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    number.filter(|n| n.is_finite() && *n >= 0.0).map_or(0, |n| n.round() as u64)
}

/// Waits until a directory's size has not changed for [`SETTLE_STABLE_MS`],
/// at most [`SETTLE_MAX_MS`]; says how long it waited.
async fn wait_until_stable(dir: &Path) -> Result<String> {
    let started = Instant::now();
    let mut last = disk_usage(dir)?;
    let mut stable_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(SETTLE_POLL_MS)).await;
        let now = disk_usage(dir)?;
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(SETTLE_STABLE_MS) {
            return Ok(format!("{:.0} s until its files stopped changing", started.elapsed().as_secs_f64()));
        }
        if started.elapsed() >= Duration::from_millis(SETTLE_MAX_MS) {
            tracing::warn!(dir = %dir.display(), "files still changing; measuring them as they are");
            return Ok(format!("{} s and still changing", SETTLE_MAX_MS / 1000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_each_systems_answer_shape() {
        let doppel = serde_json::json!({"buckets": [{"time": "2024-01-01T00:00:00Z", "count": 10080}]});
        assert_eq!(doppel_count(&doppel), 10080);
        let vm = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, "2016000"]}]}});
        assert_eq!(vm_count(&vm), 2_016_000);
        let influx = serde_json::json!({"results": [{"statement_id": 0, "series": [{"name": "heart_rate", "columns": ["time", "count"], "values": [["1970-01-01T00:00:00Z", 2016000]]}]}]});
        assert_eq!(influx_count(&influx), 2_016_000);
        let empty = serde_json::json!({"results": [{"statement_id": 0}]});
        assert_eq!(influx_count(&empty), 0);
        assert_eq!(vm_count(&serde_json::json!({"data": {"result": []}})), 0);
    }

    #[test]
    fn peers_name_their_programs_and_doppel_is_always_installed() {
        assert_eq!(SystemKind::VictoriaMetrics.program(), Some("victoria-metrics"));
        assert_eq!(SystemKind::InfluxDb.program(), Some("influxd"));
        assert!(SystemKind::Doppel { secured: true }.installed());
        assert!(SystemKind::Doppel { secured: false }.installed());
        assert!(find_on_path("definitely-not-a-program-doppel-bench").is_none());
    }
}
