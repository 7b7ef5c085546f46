//! Side-by-side runs (`bench ingest`, `bench query`): the same bodies sent
//! to each system in turn with the same client and concurrency, then, on
//! the running system, queries right after the last write, a flush, its
//! bytes on disk and the queries again; then a graceful stop, its bytes at
//! rest, a timed restart and a count check of what it kept.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use doppel_model::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::pool::{Body, Shape, Stream};
use super::process::DiskUsage;
use super::report::{QueryLatencies, SystemResult, group_thousands};
use super::stats::LatencySummary;
use super::systems::{Credentials, RunningSystem, StartOptions, SystemKind, ensure_success};
use super::workload::{NANOS_PER_DAY, QUERY_SIGNAL, Workload};

/// Untimed queries of each kind before the timed ones, the same for every
/// system, so the first timed query does not pay for connection setup.
const WARMUP_QUERIES: usize = 5;
/// Longest wait for written data to show in a system's answers before
/// the queries are timed anyway (with a warning).
const VISIBLE_WITHIN_MS: u64 = 10_000;
/// Interval between queries while waiting for the data to show.
const VISIBLE_POLL_MS: u64 = 50;
/// Longest a sender waits before retrying a body the system refused with
/// 503 or 429, whatever its `Retry-After` says.
const MAX_RETRY_WAIT_MS: u64 = 5_000;
/// Wait before retrying a refused body that names no `Retry-After`.
const DEFAULT_RETRY_WAIT_MS: u64 = 1_000;
/// Most retries of one body before the run fails.
const MAX_RETRIES: u32 = 100;

/// What is sent.
pub enum Source<'a> {
    /// Fixed bodies, every one sent, all by the workload's one person
    /// (`bench query`).
    Fixed(&'a Workload),
    /// A replayed population in one shape, sent for `seconds`.
    Stream {
        /// The bodies.
        stream: &'a Stream<'a>,
        /// Their shape.
        shape: Shape,
        /// How long to send.
        seconds: u64,
    },
}

impl Source<'_> {
    fn body(&self, step: usize) -> Option<Body> {
        match self {
            Source::Fixed(workload) => {
                let bytes = workload.batches.get(step)?.clone();
                let lines = bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty());
                let (mut points, mut query_points) = (0u64, 0u64);
                for line in lines {
                    points += 1;
                    let name_end = line.iter().position(|&b| b == b',' || b == b' ').unwrap_or(line.len());
                    query_points += u64::from(&line[..name_end] == QUERY_SIGNAL.as_bytes());
                }
                Some(Body { bytes, person: Some(0), points, query_points, day: 0 })
            }
            Source::Stream { stream, .. } => stream.body(step),
        }
    }

    /// Whether each person writes with a token of their own (else one
    /// gateway token writes for everyone).
    fn per_person(&self) -> bool {
        !matches!(self, Source::Stream { shape: Shape::Gateway, .. })
    }

    fn time_limit(&self) -> Option<Duration> {
        match self {
            Source::Fixed(_) => None,
            Source::Stream { seconds, .. } => Some(Duration::from_secs(*seconds)),
        }
    }
}

/// What one comparison runs.
pub struct Plan<'a> {
    /// The bodies.
    pub source: Source<'a>,
    /// Twins of the workload, in person order.
    pub twins: &'a [String],
    /// The people (indexes into `twins`) the timed queries pick from.
    pub query_people: &'a [usize],
    /// Write requests in flight at once.
    pub concurrency: usize,
    /// Timed queries per kind.
    pub queries: usize,
    /// Seed of the twin choice, so every system gets the same queries.
    pub seed: u64,
    /// Days the hourly query covers, ending where the data sent ends;
    /// `None` for everything sent.
    pub query_days: Option<u32>,
}

/// Runs every system in turn (never two at once: they would share the
/// cores) and returns what each achieved.
pub async fn compare(
    systems: &[SystemKind],
    plan: &Plan<'_>,
    options: &StartOptions,
    client: &reqwest::Client,
) -> Result<Vec<SystemResult>> {
    let mut results = Vec::new();
    for &kind in systems {
        eprintln!("== {} ==", kind.label());
        results.push(bench_one(kind, plan, options, client).await?);
    }
    Ok(results)
}

async fn bench_one(
    kind: SystemKind,
    plan: &Plan<'_>,
    options: &StartOptions,
    client: &reqwest::Client,
) -> Result<SystemResult> {
    let mut system = RunningSystem::start(kind, client, options).await?;
    eprintln!("  running at {} in {}", system.base_url(), system.dir().display());
    let credentials = system.issue_credentials(client, plan.twins, plan.source.per_person()).await?;
    if !credentials.people.is_empty() || credentials.gateway.is_some() {
        eprintln!(
            "  issued {} person token(s) and a gateway token; {} writes and queries with {}",
            group_thousands(credentials.people.len() as u64),
            if plan.source.per_person() { "people" } else { "the gateway" },
            if plan.source.per_person() { "their own tokens" } else { "its token" },
        );
    }

    let sent =
        send(client, &system.write_url(), &plan.source, &credentials, plan.concurrency, kind.label()).await?;
    let points_per_sec = sent.points as f64 / sent.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "  sent {} points in {} bodies: {:.1} s, {} points/s{}",
        group_thousands(sent.points),
        group_thousands(sent.bodies),
        sent.elapsed.as_secs_f64(),
        group_thousands(points_per_sec.round() as u64),
        if sent.retries > 0 {
            format!(", {} bodies retried after 503/429", sent.retries)
        } else {
            String::new()
        }
    );
    if sent.ran_out {
        eprintln!(
            "warning: the workload ran out after {} days before the time was up; raise --people or --max-days",
            sent.days
        );
    }
    let (from, to) = match &plan.source {
        Source::Fixed(workload) => (workload.from, workload.to),
        Source::Stream { stream, .. } => (stream.start(), stream.end_of_day(sent.days)),
    };
    let query_from = plan.query_days.map_or(from, |days| {
        Timestamp::from_nanos((to.as_nanos() - i64::from(days) * NANOS_PER_DAY).max(from.as_nanos()))
    });
    let range = (query_from, to);
    let fresh = Queries::new(&system, client, plan, &credentials, range).run().await?;
    eprintln!("  right after the last write: {}", fresh_line(&fresh));

    let how = system.settle(client).await?;
    let running = system.disk_usage()?;
    eprintln!("  on disk, running, after {how}: {}", usage_line(&running, sent.points));
    let settled = Queries::new(&system, client, plan, &credentials, range).run().await?;
    eprintln!("  settled: {}", fresh_line(&settled));
    if let Some(line) = write_amplification(&system, client).await? {
        eprintln!("  {line}");
    }

    let (stopped, restart) = system.restart(client).await?;
    eprintln!("  on disk after a graceful stop: {}", usage_line(&stopped, sent.points));
    eprintln!("  restart on that data: {:.2} s until healthy", restart.as_secs_f64());

    let stored = system.count_query_signal(client, plan.twins, &credentials, from, to).await?;
    if stored == sent.query_points {
        eprintln!(
            "  count check after the restart: {} {QUERY_SIGNAL} points stored, as sent",
            group_thousands(stored)
        );
    } else {
        eprintln!(
            "warning: {} holds {} {QUERY_SIGNAL} points but {} were acknowledged; its numbers are not comparable",
            kind.label(),
            group_thousands(stored),
            group_thousands(sent.query_points)
        );
    }
    system.stop().await?;
    let per_point =
        |usage: &DiskUsage| (sent.points > 0).then(|| usage.data_bytes as f64 / sent.points as f64);
    Ok(SystemResult {
        system: kind.label().to_owned(),
        points_per_sec,
        seconds: sent.elapsed.as_secs_f64(),
        bytes_running: per_point(&running),
        bytes_stopped: per_point(&stopped),
        restart_secs: Some(restart.as_secs_f64()),
        fresh,
        settled,
    })
}

fn usage_line(usage: &DiskUsage, points: u64) -> String {
    format!(
        "{} data bytes (file lengths {}, allocated {}), {:.3} bytes/point",
        group_thousands(usage.data_bytes),
        group_thousands(usage.file_bytes),
        group_thousands(usage.allocated_bytes),
        if points > 0 { usage.data_bytes as f64 / points as f64 } else { f64::NAN }
    )
}

fn fresh_line(latencies: &QueryLatencies) -> String {
    let show = |l: Option<LatencySummary>| l.map_or_else(|| "-".to_owned(), |l| l.to_string());
    format!("last value {}; hourly {}", show(latencies.last), show(latencies.hourly))
}

/// Doppel's write amplification so far, from its own counters: bytes its
/// background compaction wrote per byte its flushes wrote.
async fn write_amplification(system: &RunningSystem, client: &reqwest::Client) -> Result<Option<String>> {
    let flushed = system.doppel_metric(client, "doppel_store_flushed_bytes_total").await?;
    let compacted = system.doppel_metric(client, "doppel_store_compacted_bytes_total").await?;
    Ok(match (flushed, compacted) {
        (Some(flushed), Some(compacted)) if flushed > 0.0 => Some(format!(
            "write amplification: {:.2} (flushed {} bytes, compaction rewrote {} bytes)",
            (flushed + compacted) / flushed,
            group_thousands(flushed as u64),
            group_thousands(compacted as u64)
        )),
        _ => None,
    })
}

/// What a send achieved.
struct Sent {
    points: u64,
    query_points: u64,
    bodies: u64,
    /// Days of the stream begun (the last may be partly sent).
    days: u32,
    retries: u64,
    elapsed: Duration,
    ran_out: bool,
}

/// Totals the senders add to.
#[derive(Default)]
struct Tally {
    points: AtomicU64,
    query_points: AtomicU64,
    bodies: AtomicU64,
    days: AtomicU32,
    retries: AtomicU64,
    ran_out: AtomicBool,
}

/// Sends bodies with `concurrency` requests in flight until the source
/// ends or its time is up; returns the time from the first send to the
/// last acknowledgement. A body refused with 503 or 429 is sent again
/// after its `Retry-After`, as InfluxDB clients and Telegraf do.
async fn send(
    client: &reqwest::Client,
    url: &str,
    source: &Source<'_>,
    credentials: &Credentials,
    concurrency: usize,
    label: &str,
) -> Result<Sent> {
    let progress = ProgressBar::new_spinner();
    progress.set_style(ProgressStyle::with_template(
        "  {prefix} {spinner} {human_pos} points, {per_sec}, {elapsed}",
    )?);
    progress.set_prefix(format!("sending to {label}"));
    progress.enable_steady_tick(Duration::from_millis(200));
    let next = AtomicUsize::new(0);
    let tally = Tally::default();
    let started = Instant::now();
    let limit = source.time_limit();
    // Scoped tasks: the senders borrow the source, which renders bodies.
    let result: Result<()> = async {
        let mut senders = Vec::with_capacity(concurrency.max(1));
        for _ in 0..concurrency.max(1) {
            senders.push(async {
                loop {
                    if limit.is_some_and(|limit| started.elapsed() >= limit) {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let step = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = source.body(step) else {
                        tally.ran_out.store(limit.is_some(), Ordering::Relaxed);
                        return Ok(());
                    };
                    let token = credentials.for_person(body.person);
                    let retries = post_until_accepted(client, url, token, body.bytes.clone(), step).await?;
                    tally.retries.fetch_add(u64::from(retries > 0), Ordering::Relaxed);
                    tally.points.fetch_add(body.points, Ordering::Relaxed);
                    tally.query_points.fetch_add(body.query_points, Ordering::Relaxed);
                    tally.bodies.fetch_add(1, Ordering::Relaxed);
                    tally.days.fetch_max(body.day + 1, Ordering::Relaxed);
                    progress.inc(body.points);
                }
            });
        }
        let outcomes = futures_util::future::join_all(senders).await;
        outcomes.into_iter().collect()
    }
    .await;
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    result?;
    Ok(Sent {
        points: tally.points.into_inner(),
        query_points: tally.query_points.into_inner(),
        bodies: tally.bodies.into_inner(),
        days: tally.days.into_inner(),
        retries: tally.retries.into_inner(),
        elapsed,
        ran_out: tally.ran_out.into_inner(),
    })
}

/// Posts one body until it is acknowledged; answers how many times it
/// was refused for load first.
pub async fn post_until_accepted(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Bytes,
    step: usize,
) -> Result<u32> {
    for attempt in 0..=MAX_RETRIES {
        let request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body.clone());
        let response = RunningSystem::authorize(request, token).send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            let wait_ms = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map_or(DEFAULT_RETRY_WAIT_MS, |secs| secs.saturating_mul(1000))
                .min(MAX_RETRY_WAIT_MS);
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            continue;
        }
        ensure_success(response, &format!("write of body {step}")).await?;
        return Ok(attempt);
    }
    bail!("write of body {step} was refused for load {MAX_RETRIES} times in a row")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Query {
    Last,
    Hourly,
}

/// The timed queries of one system, over one range.
struct Queries<'a> {
    system: &'a RunningSystem,
    client: &'a reqwest::Client,
    plan: &'a Plan<'a>,
    credentials: &'a Credentials,
    from: Timestamp,
    to: Timestamp,
}

impl<'a> Queries<'a> {
    fn new(
        system: &'a RunningSystem,
        client: &'a reqwest::Client,
        plan: &'a Plan<'a>,
        credentials: &'a Credentials,
        (from, to): (Timestamp, Timestamp),
    ) -> Self {
        Queries { system, client, plan, credentials, from, to }
    }

    async fn run(&self) -> Result<QueryLatencies> {
        Ok(QueryLatencies { last: self.time(Query::Last).await?, hourly: self.time(Query::Hourly).await? })
    }

    /// Times `plan.queries` queries of one kind, one at a time, for twins
    /// drawn with the plan's seed, each with the credential that wrote the
    /// twin; each time covers sending the request and reading the whole
    /// answer.
    async fn time(&self, query: Query) -> Result<Option<LatencySummary>> {
        let (plan, system) = (self.plan, self.system);
        if plan.query_people.is_empty() || plan.queries == 0 {
            return Ok(None);
        }
        let request = |person: usize| {
            let (twin, token) = (&plan.twins[person], self.credentials.for_person(Some(person)));
            match query {
                Query::Last => system.last_value_request(self.client, twin, token, self.to),
                Query::Hourly => system.hourly_request(self.client, twin, token, self.from, self.to),
            }
        };
        let mut rng = StdRng::seed_from_u64(plan.seed ^ query as u64);
        let mut pick = || plan.query_people[rng.random_range(0..plan.query_people.len())];
        // Some systems acknowledge before the data is searchable
        // (VictoriaMetrics buffers for about a second): an empty answer is
        // fast and would flatter them, so the timing starts once the data
        // answers.
        let asked = Instant::now();
        let first = pick();
        loop {
            let response = request(first).send().await?;
            let body = ensure_success(response, &format!("{} {query:?} query", system.kind.label())).await?;
            if system.answer_has_data(&body) {
                break;
            }
            if asked.elapsed() >= Duration::from_millis(VISIBLE_WITHIN_MS) {
                eprintln!(
                    "warning: {} still answers a {query:?} query without data after {} s: {body}",
                    system.kind.label(),
                    VISIBLE_WITHIN_MS / 1000
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(VISIBLE_POLL_MS)).await;
        }
        if asked.elapsed() >= Duration::from_millis(VISIBLE_POLL_MS) {
            eprintln!(
                "  {} answered the {query:?} query with data {} ms after it was first asked",
                system.kind.label(),
                asked.elapsed().as_millis()
            );
        }
        for _ in 1..WARMUP_QUERIES {
            let response = request(pick()).send().await?;
            ensure_success(response, &format!("{} {query:?} query", system.kind.label())).await?;
        }
        let mut samples = Vec::with_capacity(plan.queries);
        for _ in 0..plan.queries {
            let request = request(pick());
            let started = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            samples.push(started.elapsed());
            if !status.is_success() {
                bail!(
                    "{} {query:?} query answered {status}: {}",
                    system.kind.label(),
                    String::from_utf8_lossy(&body)
                );
            }
        }
        Ok(LatencySummary::from_durations(&samples))
    }
}

/// Hourly-bucket range of a workload, for printing.
pub fn describe_range(from: Timestamp, to: Timestamp) -> String {
    let hours = (to.as_nanos() - from.as_nanos()) as f64 / 3.6e12;
    format!("{from} .. {to} ({hours:.0} hourly buckets)")
}
