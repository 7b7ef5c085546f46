//! `doppel bench memory`: how much resident memory live twins cost.
//!
//! By default through a running server as people run it: `doppel serve`
//! with its defaults (authentication and encryption at rest on) as a
//! subprocess; a gateway's own token (not the admin's) writes one point per
//! (twin, signal) for N twins over HTTP, K signals each, so that every twin
//! is created by its first write; then the head is flushed and the
//! server's VmRSS and VmHWM are read from `/proc/<pid>/status`.
//!
//! `--in-process` measures the engine alone in this process instead (no
//! server, no authentication, no encryption): the best case, labelled so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use doppel_engine::{Engine, EngineConfig};
use doppel_model::{FieldValue, Point, Provenance, SeriesKey, SignalName, Timestamp, TwinId, Value};
use doppel_protocols::line_protocol::encode_point;
use doppel_protocols::{RawBatch, RawSample, RawSeries};
use doppel_store::StoreConfig;
use indicatif::{ProgressBar, ProgressStyle};

use super::compare::post_until_accepted;
use super::process::{MemoryUsage, TempDir, memory_usage};
use super::report::group_thousands;
use super::systems::{RunningSystem, StartOptions, SystemKind};

/// The target (`docs/design.md`): one million live twins in at most this many bytes.
const TARGET_BYTES_PER_MILLION_TWINS: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;
/// Most twins one run creates: ten times the target's million.
const MAX_TWINS: u64 = 10_000_000;
/// Most signals per twin; beyond the person model's own, extra gauges are named `bench_<n>`.
const MAX_SIGNALS: u64 = 64;

/// The person model's gauges with a value inside each one's valid range,
/// so validation accepts every point.
pub const LIVE_SIGNALS: [(&str, f64); 10] = [
    ("heart_rate", 62.0),
    ("resting_heart_rate", 58.0),
    ("hrv_rmssd", 42.0),
    ("steps", 12.0),
    ("active_energy", 1.5),
    ("spo2", 97.0),
    ("respiratory_rate", 14.0),
    ("skin_temp", 33.4),
    ("glucose", 110.0),
    ("weight", 72.0),
];

/// `doppel bench memory`.
#[derive(Args, Debug, Clone)]
pub struct MemoryArgs {
    /// Live twins to create (the target is stated for 1,000,000).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=MAX_TWINS))]
    pub twins: u64,
    /// Signals with live state per twin.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SIGNALS))]
    pub signals: u64,
    /// Twins per write request (the server's defaults allow 10,000 twins
    /// and 100,000 series per request).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub chunk_twins: u64,
    /// Write requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: u64,
    /// Measure the engine in this process instead of a server (no
    /// authentication, no encryption): the best case.
    #[arg(long)]
    pub in_process: bool,
    /// With `--in-process`: flush the store whenever this many points were
    /// ingested since the last flush.
    #[arg(long, default_value_t = 1_000_000)]
    pub flush_points: u64,
    /// Parent directory of the store's temporary directory [default: the system temp dir].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the store directory after the run.
    #[arg(long)]
    pub keep_data: bool,
}

impl MemoryArgs {
    fn command_line(&self) -> String {
        let mut line = format!(
            "doppel bench memory --twins {} --signals {} --chunk-twins {}",
            self.twins, self.signals, self.chunk_twins
        );
        if self.in_process {
            line.push_str(&format!(" --in-process --flush-points {}", self.flush_points));
        } else {
            line.push_str(&format!(" --concurrency {}", self.concurrency));
        }
        line
    }
}

/// Signal names and values for `count` live signals.
pub fn live_signals(count: usize) -> Result<Vec<(SignalName, Value)>> {
    (0..count)
        .map(|i| {
            let (name, value) = match LIVE_SIGNALS.get(i) {
                Some(&(name, value)) => (name.to_owned(), value),
                None => (format!("bench_{i}"), i as f64),
            };
            Ok((SignalName::new(&name)?, Value::new(value)?))
        })
        .collect()
}

/// The twin id of the `index`th benchmark twin: fixed width, so ids sort
/// in creation order like real sequential ids.
pub fn twin_id(index: u64) -> Result<TwinId> {
    Ok(TwinId::new(&format!("m{index:08}"))?)
}

/// One point per (twin, signal) for twins `[first, first + count)`.
pub fn chunk_batch(
    first: u64,
    count: u64,
    signals: &[(SignalName, Value)],
    time: Timestamp,
) -> Result<RawBatch> {
    let mut batch = RawBatch { series: Vec::with_capacity(count as usize * signals.len()) };
    let mut line = 0u32;
    for index in first..first + count {
        let twin = twin_id(index)?;
        for (signal, value) in signals {
            line = line.saturating_add(1);
            batch.series.push(RawSeries {
                key: SeriesKey { twin: twin.clone(), signal: signal.clone(), provenance: Provenance::none() },
                samples: vec![RawSample { line, time, value: FieldValue::Number(*value) }],
            });
        }
    }
    Ok(batch)
}

/// Runs the memory benchmark.
pub async fn run(args: MemoryArgs) -> Result<()> {
    let reproduce = args.command_line();
    eprintln!("reproduce: {reproduce}");
    if args.in_process {
        tokio::task::spawn_blocking(move || measure_in_process(&args))
            .await
            .context("memory benchmark thread failed")??;
    } else {
        measure_server(&args).await?;
    }
    println!("reproduce: {reproduce}");
    Ok(())
}

/// Appends one point without provenance tags to a line-protocol body.
pub fn push_gauge(body: &mut String, twin: &TwinId, signal: &SignalName, value: Value, time: Timestamp) {
    let point =
        Point { twin: twin.clone(), signal: signal.clone(), provenance: Provenance::none(), time, value };
    encode_point(body, &point);
}

/// One point per (twin, signal) for twins `[first, first + count)` as a
/// line-protocol body.
fn chunk_body(first: u64, count: u64, signals: &[(SignalName, Value)], time: Timestamp) -> Result<String> {
    let mut body = String::with_capacity(count as usize * signals.len() * 48);
    for index in first..first + count {
        let twin = twin_id(index)?;
        for (signal, value) in signals {
            push_gauge(&mut body, &twin, signal, *value, time);
        }
    }
    Ok(body)
}

/// The server's figures: twins created by first write over HTTP, with a
/// gateway's token, then the server's resident memory.
async fn measure_server(args: &MemoryArgs) -> Result<()> {
    let client = reqwest::Client::builder().tcp_nodelay(true).no_proxy().build()?;
    let options = StartOptions {
        work_dir: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
        keep_data: args.keep_data,
        vm_cache: false,
    };
    let mut system = RunningSystem::start(SystemKind::Doppel { secured: true }, &client, &options).await?;
    let credentials = system.issue_credentials(&client, &[], false).await?;
    let baseline = system.memory_usage()?;
    let signals = live_signals(args.signals as usize)?;
    let progress = ProgressBar::new(args.twins);
    progress.set_style(
        ProgressStyle::with_template(
            "creating twins [{bar:30}] {human_pos}/{human_len}, {per_sec}, eta {eta}",
        )?
        .progress_chars("=> "),
    );
    let url = system.write_url();
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let senders = (0..args.concurrency).map(|_| async {
        loop {
            let first = next.fetch_add(args.chunk_twins, Ordering::Relaxed);
            if first >= args.twins {
                return Ok::<(), anyhow::Error>(());
            }
            let count = args.chunk_twins.min(args.twins - first);
            let body = chunk_body(first, count, &signals, Timestamp::now())?;
            let step = usize::try_from(first / args.chunk_twins).unwrap_or(usize::MAX);
            post_until_accepted(&client, &url, credentials.gateway.as_deref(), body.into(), step).await?;
            progress.inc(count);
        }
    });
    let outcomes: Result<Vec<()>> = futures_util::future::join_all(senders).await.into_iter().collect();
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    outcomes?;
    system.settle(&client).await?;
    let after = system.memory_usage()?;
    let twins = system.doppel_metric(&client, "doppel_twins").await?.unwrap_or(0.0) as u64;
    let live = system.doppel_metric(&client, "doppel_live_signals").await?.unwrap_or(0.0) as u64;
    system.stop().await?;
    if twins != args.twins || live != args.twins * args.signals {
        bail!(
            "the server holds {twins} twins and {live} live signals, expected {} and {}",
            args.twins,
            args.twins * args.signals
        );
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{} twins x {} live signals, each twin created by its first write over HTTP (gateway token, \
         authentication and encryption at rest on): {:.1} s, {} new twins/s, {} points/s",
        group_thousands(args.twins),
        args.signals,
        seconds,
        group_thousands((args.twins as f64 / seconds).round() as u64),
        group_thousands((args.twins as f64 * args.signals as f64 / seconds).round() as u64)
    );
    report_memory("server", &baseline, &after, args.twins);
    Ok(())
}

/// Prints resident memory before and after, per twin, and the 1M-twin
/// projection against the target.
fn report_memory(whose: &str, baseline: &MemoryUsage, after: &MemoryUsage, twins: u64) {
    let added = after.rss_bytes.saturating_sub(baseline.rss_bytes);
    let per_twin = added as f64 / twins as f64;
    let per_million = per_twin * 1e6;
    println!(
        "{whose} VmRSS {} MiB (before the twins: {} MiB), VmHWM {} MiB",
        after.rss_bytes >> 20,
        baseline.rss_bytes >> 20,
        after.peak_rss_bytes >> 20
    );
    println!(
        "{per_twin:.0} bytes of resident memory per live twin; 1M twins at this rate: {:.2} GiB (target <= 2 GiB: {})",
        per_million / 1024f64.powi(3),
        if per_million <= TARGET_BYTES_PER_MILLION_TWINS { "met" } else { "missed" }
    );
}

/// The engine alone in this process: the best case.
fn measure_in_process(args: &MemoryArgs) -> Result<()> {
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = TempDir::new(&parent, "memory", args.keep_data)?;
    let signals = live_signals(args.signals as usize)?;
    let baseline = memory_usage()?;
    let store = StoreConfig { background: false, ..StoreConfig::new(dir.path().join("data")) };
    let engine = Engine::open(EngineConfig::new(store)).context("cannot open the engine")?;
    let progress = ProgressBar::new(args.twins);
    progress.set_style(
        ProgressStyle::with_template(
            "creating twins [{bar:30}] {human_pos}/{human_len}, {per_sec}, eta {eta}",
        )?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let time = Timestamp::now();
    let mut since_flush = 0u64;
    let mut first = 0u64;
    while first < args.twins {
        let count = args.chunk_twins.min(args.twins - first);
        let batch = chunk_batch(first, count, &signals, time)?;
        engine.ingest(batch).map_err(|err| anyhow::anyhow!("ingest of twins {first}.. failed: {err}"))?;
        since_flush += count * signals.len() as u64;
        if since_flush >= args.flush_points {
            engine.flush().context("flush failed")?;
            since_flush = 0;
        }
        first += count;
        progress.inc(count);
    }
    engine.flush().context("final flush failed")?;
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    let after = memory_usage()?;
    let stats = engine.stats();
    if stats.twins as u64 != args.twins || stats.live_signals as u64 != args.twins * args.signals {
        bail!(
            "the engine holds {} twins and {} live signals, expected {} and {}",
            stats.twins,
            stats.live_signals,
            args.twins,
            args.twins * args.signals
        );
    }
    println!(
        "best case, in process (no server, no authentication, no encryption): {} twins x {} live signals created in {:.1} s ({} twins/s)",
        group_thousands(args.twins),
        args.signals,
        elapsed.as_secs_f64(),
        group_thousands((args.twins as f64 / elapsed.as_secs_f64().max(1e-9)).round() as u64)
    );
    report_memory("this process's", &baseline, &after, args.twins);
    drop(engine);
    drop(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_signals_are_valid_for_the_person_model() {
        let person = doppel_model::ModelDef::person();
        for (signal, value) in live_signals(LIVE_SIGNALS.len()).unwrap() {
            assert!(person.check(&signal, &FieldValue::Number(value)).is_ok(), "{signal} = {value:?}");
        }
    }

    #[test]
    fn extra_signals_get_bench_names() {
        let signals = live_signals(12).unwrap();
        assert_eq!(signals.len(), 12);
        assert_eq!(signals[11].0.as_str(), "bench_11");
    }

    #[test]
    fn chunks_hold_one_point_per_twin_and_signal_with_distinct_lines() {
        let signals = live_signals(3).unwrap();
        let batch = chunk_batch(10, 4, &signals, Timestamp::from_secs(1)).unwrap();
        assert_eq!(batch.point_count(), 12);
        assert_eq!(batch.series[0].key.twin.as_str(), "m00000010");
        assert_eq!(batch.series[11].key.twin.as_str(), "m00000013");
        let lines: Vec<u32> = batch.series.iter().map(|s| s.samples[0].line).collect();
        assert_eq!(lines, (1..=12).collect::<Vec<u32>>());
    }

    #[test]
    fn a_small_run_creates_every_twin() {
        let args = MemoryArgs {
            twins: 50,
            signals: 2,
            chunk_twins: 20,
            concurrency: 1,
            in_process: true,
            flush_points: 30,
            work_dir: None,
            keep_data: false,
        };
        measure_in_process(&args).unwrap();
    }
}
