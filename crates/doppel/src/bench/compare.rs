//! Side-by-side runs (`bench ingest`, `bench query`): one workload, sent
//! byte-identical to each system in turn with the same client and
//! concurrency, then bytes on disk, a count check and query latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use doppel_model::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use super::report::{SystemResult, group_thousands};
use super::stats::LatencySummary;
use super::systems::{RunningSystem, StartOptions, SystemKind, ensure_success};
use super::workload::{QUERY_SIGNAL, Workload};

/// Untimed queries of each kind before the timed ones, the same for every
/// system, so the first timed query does not pay for connection setup.
const WARMUP_QUERIES: usize = 5;

/// What one comparison runs.
pub struct Plan<'a> {
    /// The bodies and their facts.
    pub workload: &'a Workload,
    /// Twins the queries pick from.
    pub query_twins: &'a [String],
    /// Write requests in flight at once.
    pub concurrency: usize,
    /// Timed queries per kind.
    pub queries: usize,
    /// Seed of the twin choice, so every system gets the same queries.
    pub seed: u64,
}

/// Runs every system in turn (never two at once: they would share the
/// cores) and returns what each achieved.
pub async fn compare(
    systems: &[SystemKind],
    plan: &Plan<'_>,
    options: &StartOptions,
    client: &reqwest::Client,
) -> Result<Vec<SystemResult>> {
    let lines: Arc<[u64]> =
        plan.workload.batches.iter().map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64).collect();
    let bodies: Arc<[Bytes]> = plan.workload.batches.iter().cloned().collect();
    let mut results = Vec::new();
    for &kind in systems {
        eprintln!("== {} ==", kind.label());
        results.push(bench_one(kind, plan, options, client, &bodies, &lines).await?);
    }
    Ok(results)
}

async fn bench_one(
    kind: SystemKind,
    plan: &Plan<'_>,
    options: &StartOptions,
    client: &reqwest::Client,
    bodies: &Arc<[Bytes]>,
    lines: &Arc<[u64]>,
) -> Result<SystemResult> {
    let workload = plan.workload;
    let mut system = RunningSystem::start(kind, client, options).await?;
    eprintln!("  running at {} in {}", system.base_url(), system.dir().display());

    let target = Target { url: system.write_url(), token: system.token().map(str::to_owned) };
    let elapsed = send_all(client, &target, bodies, lines, plan.concurrency, kind.label()).await?;
    let points_per_sec = workload.points as f64 / elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "  sent {} points in {} bodies: {:.2} s, {} points/s",
        group_thousands(workload.points),
        workload.batches.len(),
        elapsed.as_secs_f64(),
        group_thousands(points_per_sec.round() as u64)
    );

    let how = system.settle(client).await?;
    let usage = system.disk_usage()?;
    let bytes_per_point = (workload.points > 0).then(|| usage.data_bytes as f64 / workload.points as f64);
    eprintln!(
        "  on disk after {how}: {} data bytes (file lengths {}, allocated {}), {:.3} bytes/point",
        group_thousands(usage.data_bytes),
        group_thousands(usage.file_bytes),
        group_thousands(usage.allocated_bytes),
        bytes_per_point.unwrap_or(f64::NAN)
    );
    system.reopen(client).await?;

    let stored = system.count_query_signal(client, &workload.twins, workload.from, workload.to).await?;
    if stored == workload.query_signal_points {
        eprintln!("  count check: {} {QUERY_SIGNAL} points stored, as sent", group_thousands(stored));
    } else {
        eprintln!(
            "warning: {} holds {} {QUERY_SIGNAL} points but {} were sent; its numbers are not comparable",
            kind.label(),
            group_thousands(stored),
            group_thousands(workload.query_signal_points)
        );
    }

    let last = time_queries(&system, client, plan, Query::Last).await?;
    let hourly = time_queries(&system, client, plan, Query::Hourly).await?;
    if let Some(l) = &last {
        eprintln!("  last value:   {l}");
    }
    if let Some(h) = &hourly {
        eprintln!("  hourly means: {h}");
    }
    system.stop().await?;
    Ok(SystemResult { system: kind.label().to_owned(), points_per_sec, bytes_per_point, last, hourly })
}

/// Where bodies go, and the credential they carry.
#[derive(Clone)]
struct Target {
    url: String,
    token: Option<String>,
}

/// Sends every body with `concurrency` requests in flight; returns the
/// time from the first send to the last acknowledgement.
async fn send_all(
    client: &reqwest::Client,
    target: &Target,
    bodies: &Arc<[Bytes]>,
    lines: &Arc<[u64]>,
    concurrency: usize,
    label: &str,
) -> Result<Duration> {
    let progress = ProgressBar::new(lines.iter().sum());
    progress.set_style(
        ProgressStyle::with_template(
            "  {prefix} [{bar:30}] {human_pos}/{human_len} points, {per_sec}, eta {eta}",
        )?
        .progress_chars("=> "),
    );
    progress.set_prefix(format!("sending to {label}"));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, target, bodies, lines) = (client.clone(), target.clone(), bodies.clone(), lines.clone());
        let (next, progress) = (next.clone(), progress.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else { return Ok::<(), anyhow::Error>(()) };
                let mut request = client
                    .post(&target.url)
                    .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(body.clone());
                if let Some(token) = &target.token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await?;
                ensure_success(response, &format!("write of body {index}")).await?;
                progress.inc(lines.get(index).copied().unwrap_or(0));
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok(elapsed)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Query {
    Last,
    Hourly,
}

/// Times `plan.queries` queries of one kind, one at a time, for twins
/// drawn with the plan's seed; each time covers sending the request and
/// reading the whole answer.
async fn time_queries(
    system: &RunningSystem,
    client: &reqwest::Client,
    plan: &Plan<'_>,
    query: Query,
) -> Result<Option<LatencySummary>> {
    if plan.query_twins.is_empty() || plan.queries == 0 {
        return Ok(None);
    }
    let (from, to) = (plan.workload.from, plan.workload.to);
    let request = |twin: &str| match query {
        Query::Last => system.last_value_request(client, twin, to),
        Query::Hourly => system.hourly_request(client, twin, from, to),
    };
    let mut rng = StdRng::seed_from_u64(plan.seed ^ query as u64);
    let mut pick = || plan.query_twins[rng.random_range(0..plan.query_twins.len())].clone();
    for i in 0..WARMUP_QUERIES {
        let response = request(&pick()).send().await?;
        let body = ensure_success(response, &format!("{} {query:?} query", system.kind.label())).await?;
        if i == 0 && !system.answer_has_data(&body) {
            eprintln!("warning: {} answered a {query:?} query without data: {body}", system.kind.label());
        }
    }
    let mut samples = Vec::with_capacity(plan.queries);
    for _ in 0..plan.queries {
        let request = request(&pick());
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

/// Hourly-bucket range of a workload, for printing.
pub fn describe_range(from: Timestamp, to: Timestamp) -> String {
    let hours = (to.as_nanos() - from.as_nanos()) as f64 / 3.6e12;
    format!("{from} .. {to} ({hours:.0} hourly buckets)")
}
