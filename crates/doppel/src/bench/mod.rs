//! `doppel bench`: Doppel measured beside the peers it is judged against.
//!
//! - `ingest`: a synthetic wearable population (doppel-synth) replayed as
//!   identical line-protocol bodies to Doppel, VictoriaMetrics and
//!   InfluxDB for at least 30 s per system, in two shapes (one person per
//!   request with their own token; many people per request from a
//!   gateway); points/s, bytes/point on the running system and after a
//!   graceful stop, restart time, and last-value and hourly-mean latencies
//!   right after ingest and once settled.
//! - `query`: one twin with a year of minute heart rate; the year-hourly
//!   aggregate and the last value, fresh and settled.
//! - `memory`: resident memory of a running server holding N live twins,
//!   each created by its first write over HTTP.
//! - `latency`: point in → WebSocket/SSE subscriber notified, at a fixed rate.
//!
//! Doppel runs with its defaults (authentication and encryption at rest
//! on); measured requests carry people's and gateways' own tokens, never
//! the admin token, which only issues them and reads `/metrics`.
//!
//! Every system runs as its own process on loopback in a temporary
//! directory; every process and directory is removed when the run ends,
//! fails or is interrupted (guards dropped with the run's future). See
//! docs/BENCHMARKS.md for the method and the results.

mod compare;
mod influx_config;
mod latency;
mod memory;
mod pool;
mod process;
mod report;
mod stats;
mod systems;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use self::compare::{Plan, Source, compare, describe_range};
use self::pool::{Pool, Shape, Stream};
use self::report::{SystemResult, format_table, group_thousands};
use self::systems::{StartOptions, SystemKind};
use self::workload::{NANOS_PER_MINUTE, encode_workload, history_start, minute_heart_rate};

pub use self::latency::LatencyArgs;
pub use self::memory::MemoryArgs;

/// Most lines per write body: keeps bodies under InfluxDB's default 25 MB
/// request limit and Doppel's per-request point limit.
const MAX_BATCH_LINES: u64 = 100_000;
/// Most concurrent write requests; more only measures the scheduler.
const MAX_CONCURRENCY: u64 = 256;
/// Per-request timeout of the benchmark client: long enough for a slow
/// peer to answer one large body, short enough that a hung system ends the run.
const REQUEST_TIMEOUT_MS: u64 = 120_000;
/// The system ratios are computed against.
const BASELINE: &str = "VictoriaMetrics";

/// The benchmark modes.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ingest a synthetic wearable workload into Doppel and the peers;
    /// compare points/s, bytes/point and query latency.
    Ingest(IngestArgs),
    /// A year of one twin's minute heart rate: hourly aggregate over the
    /// year and last value, Doppel beside the peers.
    Query(QueryArgs),
    /// Resident memory of many live twins, in this process.
    Memory(MemoryArgs),
    /// Delivery delay from write to WebSocket and SSE subscribers.
    Latency(LatencyArgs),
}

/// Peers to run, shared by `ingest` and `query`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum PeerChoice {
    /// VictoriaMetrics (`victoria-metrics`).
    Vm,
    /// InfluxDB 1.x (`influxd`).
    Influx,
    /// Doppel itself with authentication and encryption at rest off, to
    /// show what they cost (`bench ingest` prints the ratio).
    Plain,
    /// No peers: Doppel alone.
    None,
}

impl PeerChoice {
    fn system(self) -> Option<SystemKind> {
        match self {
            Self::Vm => Some(SystemKind::VictoriaMetrics),
            Self::Influx => Some(SystemKind::InfluxDb),
            Self::Plain => Some(SystemKind::Doppel { secured: false }),
            Self::None => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Vm => "vm",
            Self::Influx => "influx",
            Self::Plain => "plain",
            Self::None => "none",
        }
    }
}

/// Options of the side-by-side modes.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Peers to run beside Doppel, comma separated: vm, influx, plain
    /// (Doppel without authentication and encryption at rest), none.
    #[arg(long, value_delimiter = ',', default_value = "vm,influx,plain")]
    pub peers: Vec<PeerChoice>,
    /// Run the installed systems only instead of failing on a missing peer.
    #[arg(long)]
    pub skip_missing: bool,
    /// Write requests in flight at once, the same for every system.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    pub concurrency: u64,
    /// Line-protocol lines per write request (gateway shape and `bench
    /// query`; the person shape sends one person-day per request).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH_LINES))]
    pub batch_lines: u64,
    /// Timed queries of each kind per system.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Seed of the workload and of the queries' twin choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Parent directory of the systems' data directories [default: the system temp dir].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the data directories after the run.
    #[arg(long)]
    pub keep_data: bool,
    /// Leave VictoriaMetrics' query cache on (off by default so every system computes every answer).
    #[arg(long)]
    pub vm_cache: bool,
}

impl CompareArgs {
    fn command_line(&self) -> String {
        let peers: Vec<&str> = self.peers.iter().map(|p| p.name()).collect();
        let mut line = format!(
            " --peers {} --concurrency {} --batch-lines {} --queries {} --seed {}",
            peers.join(","),
            self.concurrency,
            self.batch_lines,
            self.queries,
            self.seed
        );
        for (flag, on) in [
            (" --skip-missing", self.skip_missing),
            (" --keep-data", self.keep_data),
            (" --vm-cache", self.vm_cache),
        ] {
            if on {
                line.push_str(flag);
            }
        }
        if let Some(dir) = &self.work_dir {
            line.push_str(&format!(" --work-dir {}", dir.display()));
        }
        line
    }

    fn start_options(&self) -> StartOptions {
        StartOptions {
            work_dir: self.work_dir.clone().unwrap_or_else(std::env::temp_dir),
            keep_data: self.keep_data,
            vm_cache: self.vm_cache,
        }
    }

    /// Doppel, then the chosen peers that can run; fails on a missing peer
    /// unless `--skip-missing`.
    fn systems(&self) -> Result<Vec<SystemKind>> {
        let mut systems = vec![SystemKind::Doppel { secured: true }];
        let mut missing = Vec::new();
        for peer in self.peers.iter().filter_map(|p| p.system()) {
            if systems.contains(&peer) {
                continue;
            }
            if peer.installed() {
                systems.push(peer);
            } else {
                missing.push(peer);
            }
        }
        if missing.is_empty() {
            return Ok(systems);
        }
        let names: Vec<String> = missing
            .iter()
            .map(|m| format!("{} (`{}`)", m.label(), m.program().unwrap_or_default()))
            .collect();
        let message = format!(
            "not installed: {}. Install the peers with `bench/install-peers.sh` \
             (Debian/Ubuntu: apt-get install victoria-metrics influxdb), or run the others with \
             --skip-missing or --peers <vm|influx|none>",
            names.join(", ")
        );
        if self.skip_missing {
            eprintln!("note: {message}; skipping them");
            Ok(systems)
        } else {
            bail!(message)
        }
    }
}

/// `doppel bench ingest`.
#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Synthetic people (twins).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub people: u64,
    /// Days simulated once and replayed, moved forward, for as long as the run lasts.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub pool_days: u32,
    /// Seconds each system ingests for (at least 30 for a figure worth reporting).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Most days of history a run may write, ending at today's midnight: the
    /// replay stops there even if time is left (a warning says so).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub max_days: u32,
    /// Request shapes to run, comma separated: person (one person's day per
    /// request, their own token), gateway (an hour of many people per request).
    #[arg(long, value_delimiter = ',', default_value = "person,gateway")]
    pub shapes: Vec<Shape>,
    /// Options shared with `bench query`.
    #[command(flatten)]
    pub compare: CompareArgs,
}

impl IngestArgs {
    fn command_line(&self) -> String {
        let shapes: Vec<&str> = self.shapes.iter().map(|s| s.name()).collect();
        format!(
            "doppel bench ingest --people {} --pool-days {} --seconds {} --max-days {} --shapes {}{}",
            self.people,
            self.pool_days,
            self.seconds,
            self.max_days,
            shapes.join(","),
            self.compare.command_line()
        )
    }
}

/// `doppel bench query`.
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    /// Days of one-minute heart rate for the one twin (365 = 525,600 points).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// Options shared with `bench ingest`.
    #[command(flatten)]
    pub compare: CompareArgs,
}

impl QueryArgs {
    fn command_line(&self) -> String {
        format!("doppel bench query --days {}{}", self.days, self.compare.command_line())
    }
}

/// Runs one benchmark mode. Ctrl-C ends it early; every process and
/// directory it made is removed either way.
pub async fn run(cmd: BenchCommand) -> Result<()> {
    tokio::select! {
        result = run_mode(cmd) => result,
        interrupted = tokio::signal::ctrl_c() => {
            interrupted.context("cannot listen for Ctrl-C")?;
            bail!("interrupted; stopped every process the benchmark started")
        }
    }
}

async fn run_mode(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Query(args) => query(args).await,
        BenchCommand::Memory(args) => memory::run(args).await,
        BenchCommand::Latency(args) => latency::run(args).await,
    }
}

fn client(concurrency: u64) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(concurrency).unwrap_or(usize::MAX))
        .tcp_nodelay(true)
        .no_proxy()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()
        .context("cannot build the HTTP client")
}

async fn ingest(args: IngestArgs) -> Result<()> {
    let systems = args.compare.systems()?;
    let reproduce = args.command_line();
    eprintln!("reproduce: {reproduce}");
    let config = doppel_synth::PopulationConfig {
        people: usize::try_from(args.people)?,
        days: args.pool_days,
        seed: args.compare.seed,
        start: history_start(args.pool_days),
        ..doppel_synth::PopulationConfig::default()
    };
    let progress = ProgressBar::new(args.people);
    progress.set_style(
        ProgressStyle::with_template("simulating [{bar:30}] {pos}/{len} people, eta {eta}")?
            .progress_chars("=> "),
    );
    let bar = progress.clone();
    let pool = tokio::task::spawn_blocking(move || Pool::generate(&config, &bar))
        .await
        .context("workload generation failed")??;
    progress.finish_and_clear();
    let twins: Vec<String> = pool.twins().iter().map(ToString::to_string).collect();
    let query_people = pool.query_people();
    eprintln!(
        "workload: {} people x {} days = {} points per replay, replayed day after day from {} days ago for {} s per system",
        args.people,
        pool.days(),
        group_thousands(pool.points_per_round()),
        args.max_days,
        args.seconds
    );
    let client = client(args.compare.concurrency)?;
    let mut tables = Vec::new();
    for &shape in &args.shapes {
        eprintln!("\n=== shape: {} ({}) ===", shape.name(), shape.describe());
        let stream = Stream::new(
            &pool,
            shape,
            args.compare.batch_lines as usize,
            history_start(args.max_days),
            args.max_days,
        );
        let plan = Plan {
            source: Source::Stream { stream: &stream, shape, seconds: args.seconds },
            twins: &twins,
            query_people: &query_people,
            concurrency: args.compare.concurrency as usize,
            queries: args.compare.queries,
            seed: args.compare.seed,
            query_days: Some(pool.days()),
        };
        let results = compare(&systems, &plan, &args.compare.start_options(), &client).await?;
        tables.push((shape, results));
    }
    for (shape, results) in &tables {
        println!(
            "\nshape {}: {}; {} people, {} s per system, concurrency {}; hourly = {} days of one twin:",
            shape.name(),
            shape.describe(),
            args.people,
            args.seconds,
            args.compare.concurrency,
            pool.days()
        );
        print!("{}", format_table(results, BASELINE, "hourly"));
        if let Some(line) = security_cost(results) {
            println!("{line}");
        }
    }
    println!("reproduce: {reproduce}");
    Ok(())
}

/// Share of its ingest rate Doppel keeps with authentication and
/// encryption at rest on, as a fraction of the same run with both off.
const SECURITY_COST_TARGET: f64 = 0.85;

/// The line comparing Doppel's default (authenticated, encrypted) ingest
/// rate with the same run without authentication and encryption, when
/// both ran.
fn security_cost(results: &[SystemResult]) -> Option<String> {
    let rate = |kind: SystemKind| results.iter().find(|r| r.system == kind.label()).map(|r| r.points_per_sec);
    let secured = rate(SystemKind::Doppel { secured: true })?;
    let plain = rate(SystemKind::Doppel { secured: false }).filter(|&p| p > 0.0)?;
    let share = secured / plain;
    let verdict = if share >= SECURITY_COST_TARGET { "met" } else { "missed" };
    Some(format!(
        "authentication + encryption at rest keep {:.0} % of the ingest rate without them (target >= {:.0} %: {verdict})",
        share * 100.0,
        SECURITY_COST_TARGET * 100.0
    ))
}

async fn query(args: QueryArgs) -> Result<()> {
    let systems = args.compare.systems()?;
    let reproduce = args.command_line();
    eprintln!("reproduce: {reproduce}");
    let twin = doppel_model::TwinId::new("bench-year")?;
    let minutes = args.days as usize * 1440;
    let start = history_start(args.days);
    let points = minute_heart_rate(&twin, start, minutes, args.compare.seed)?;
    let workload = encode_workload(&points, args.compare.batch_lines as usize);
    drop(points);
    debug_assert_eq!(workload.points, minutes as u64);
    eprintln!(
        "workload: 1 twin, {} one-minute heart_rate points ({} days), {}",
        group_thousands(workload.points),
        args.days,
        describe_range(workload.from, workload.from.add_nanos(minutes as i64 * NANOS_PER_MINUTE))
    );
    let plan = Plan {
        source: Source::Fixed(&workload),
        twins: &workload.twins,
        query_people: &[0],
        concurrency: args.compare.concurrency as usize,
        queries: args.compare.queries,
        seed: args.compare.seed,
        query_days: None,
    };
    let client = client(args.compare.concurrency)?;
    let results = compare(&systems, &plan, &args.compare.start_options(), &client).await?;
    println!(
        "\none twin, {} days of minute heart rate, written by its person's own token; \
         target: Doppel year-hourly p50 at or below VictoriaMetrics', fresh and settled:",
        args.days
    );
    print!("{}", format_table(&results, BASELINE, "year-hourly"));
    println!("reproduce: {reproduce}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: BenchCommand,
    }

    fn result(system: SystemKind, points_per_sec: f64) -> SystemResult {
        SystemResult {
            system: system.label().to_owned(),
            points_per_sec,
            seconds: 30.0,
            bytes_running: None,
            bytes_stopped: None,
            restart_secs: None,
            fresh: Default::default(),
            settled: Default::default(),
        }
    }

    #[test]
    fn the_cost_of_security_is_printed_against_the_target_when_both_doppels_ran() {
        let secured = result(SystemKind::Doppel { secured: true }, 90_000.0);
        let plain = result(SystemKind::Doppel { secured: false }, 100_000.0);
        let line = security_cost(&[secured.clone(), plain.clone()]).unwrap();
        assert!(line.contains("keep 90 %") && line.ends_with("met)"), "{line}");
        let slow = result(SystemKind::Doppel { secured: true }, 80_000.0);
        assert!(security_cost(&[slow, plain]).unwrap().ends_with("missed)"));
        assert_eq!(security_cost(&[secured]), None);
    }

    #[test]
    fn ingest_defaults_match_the_documented_run() {
        let cli = Cli::try_parse_from(["bench", "ingest"]).unwrap();
        let BenchCommand::Ingest(args) = cli.command else { panic!("not ingest") };
        assert_eq!(
            args.command_line(),
            "doppel bench ingest --people 1000 --pool-days 7 --seconds 30 --max-days 365 --shapes person,gateway --peers vm,influx,plain --concurrency 8 --batch-lines 5000 --queries 200 --seed 42"
        );
    }

    #[test]
    fn reproduce_line_round_trips_through_the_parser() {
        let cli = Cli::try_parse_from([
            "bench",
            "query",
            "--days",
            "30",
            "--peers",
            "influx",
            "--skip-missing",
            "--concurrency",
            "2",
            "--vm-cache",
        ])
        .unwrap();
        let BenchCommand::Query(args) = cli.command else { panic!("not query") };
        let line = args.command_line();
        assert_eq!(
            line,
            "doppel bench query --days 30 --peers influx --concurrency 2 --batch-lines 5000 --queries 200 --seed 42 --skip-missing --vm-cache"
        );
        let again = Cli::try_parse_from(line.split(' ').skip(1)).unwrap();
        let BenchCommand::Query(again) = again.command else { panic!("not query") };
        assert_eq!(again.command_line(), line);
    }

    #[test]
    fn limits_are_enforced_by_the_parser() {
        assert!(Cli::try_parse_from(["bench", "ingest", "--batch-lines", "0"]).is_err());
        assert!(Cli::try_parse_from(["bench", "ingest", "--batch-lines", "100001"]).is_err());
        assert!(Cli::try_parse_from(["bench", "ingest", "--concurrency", "0"]).is_err());
        assert!(Cli::try_parse_from(["bench", "ingest", "--peers", "postgres"]).is_err());
    }

    #[test]
    fn peers_none_runs_doppel_alone() {
        let cli = Cli::try_parse_from(["bench", "ingest", "--peers", "none"]).unwrap();
        let BenchCommand::Ingest(args) = cli.command else { panic!("not ingest") };
        assert_eq!(args.compare.systems().unwrap(), [SystemKind::Doppel { secured: true }]);
    }
}
