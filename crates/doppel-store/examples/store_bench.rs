//! Hand-run performance check of the store's targets (not a test: timings
//! depend on the machine). Run with
//! `cargo run --release -p doppel-store --example store_bench`.
//!
//! Measures: concurrent write throughput (4 and 8 writers, 5,000-point
//! batches over 1,000 series; batches are built before the clock starts, so
//! only `Store::write` is timed), bytes per point after flush + compaction
//! for a wearable workload, an hourly mean over one year of minute data, and
//! reads of single series among a million (point lookups in the segment
//! index).
//!
//! Pass `write`, `size`, `aggregate` or `lookup` to run one part only (handy
//! under `perf` or `valgrind --tool=callgrind`); no argument runs them all.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use doppel_model::{
    Batch, BatchBuilder, Provenance, Sample, SeriesKey, SignalName, Span, Timestamp, TwinId, Value,
};
use doppel_store::{Aggregate, RangeQuery, Store, StoreConfig};

const MINUTE_NS: i64 = 60_000_000_000;
const START_NS: i64 = 1_700_000_000_000_000_000;

fn key(twin: &str, signal: &str) -> SeriesKey {
    SeriesKey {
        twin: TwinId::new(twin).expect("valid twin"),
        signal: SignalName::new(signal).expect("valid signal"),
        provenance: Provenance::from_tags([("device", "watch")]).expect("valid tags"),
    }
}

fn sample(t: i64, v: f64) -> Sample {
    Sample { time: Timestamp::from_nanos(t), value: Value::new(v).expect("finite") }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn write_throughput(writers: usize, batches_per_writer: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(StoreConfig::new(dir.path())).expect("open"));
    let keys: Vec<SeriesKey> =
        (0..1000).map(|i| key(&format!("twin{}", i / 10), &format!("signal{}", i % 10))).collect();
    // Each writer's batches, built up front: the clock measures the store,
    // not the client building its batches.
    let work: Vec<Vec<Batch>> = (0..writers)
        .map(|w| {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ w as u64);
            (0..batches_per_writer)
                .map(|b| {
                    let mut builder = BatchBuilder::default();
                    let base = START_NS + ((b * writers + w) as i64) * 5 * MINUTE_NS;
                    for k in keys.iter() {
                        for i in 0..5 {
                            builder.push_sample(
                                k.clone(),
                                sample(base + i * MINUTE_NS, (50 + rng.next() % 100) as f64),
                            );
                        }
                    }
                    builder.finish()
                })
                .collect()
        })
        .collect();
    let start_line = Arc::new(Barrier::new(writers + 1));
    let threads: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let store = Arc::clone(&store);
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                start_line.wait();
                for batch in &batches {
                    store.write(batch).expect("write");
                }
            })
        })
        .collect();
    start_line.wait();
    let started = Instant::now();
    for t in threads {
        t.join().expect("writer");
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = store.stats();
    let points = stats.points_written_total as f64;
    println!(
        "write: {writers} writers, {:.0} points in {secs:.2}s = {:.2}M points/s; {} fsyncs for {} writes ({:.1} us mean)",
        points,
        points / secs / 1e6,
        stats.fsyncs_total,
        writers * batches_per_writer,
        stats.fsync_seconds_total * 1e6 / stats.fsyncs_total.max(1) as f64
    );
}

fn wearable_bytes_per_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    let store = Store::open(config).expect("open");
    let mut rng = Rng(42);
    let days = 30;
    let mut total = 0usize;
    for person in 0..20 {
        let twin = format!("p{person}");
        let (hr, steps, glucose) = (key(&twin, "heart_rate"), key(&twin, "steps"), key(&twin, "glucose"));
        let mut builder = BatchBuilder::default();
        let mut bpm = 70i64;
        let mut mgdl = 110i64;
        for minute in 0..(days * 1440) as i64 {
            let t = START_NS + minute * MINUTE_NS;
            bpm = (bpm + (rng.next() % 5) as i64 - 2).clamp(50, 150);
            builder.push_sample(hr.clone(), sample(t, bpm as f64));
            let walking = rng.next().is_multiple_of(10);
            builder
                .push_sample(steps.clone(), sample(t, if walking { (rng.next() % 120) as f64 } else { 0.0 }));
            if minute % 5 == 0 {
                mgdl = (mgdl + (rng.next() % 7) as i64 - 3).clamp(40, 400);
                builder.push_sample(glucose.clone(), sample(t, mgdl as f64));
            }
        }
        let batch = builder.finish();
        total += batch.point_count();
        store.write(&batch).expect("write");
    }
    store.flush().expect("flush");
    store.compact().expect("compact");
    let stats = store.stats();
    println!(
        "size: {total} wearable points (HR + steps 1-min, glucose 5-min) -> {} bytes = {:.3} bytes/point",
        stats.segment_bytes,
        stats.segment_bytes as f64 / total as f64
    );
}

fn year_hourly_mean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    let store = Store::open(config).expect("open");
    let k = key("alice", "heart_rate");
    let mut rng = Rng(7);
    let mut bpm = 70i64;
    let minutes = 365 * 1440;
    for chunk in (0..minutes).collect::<Vec<i64>>().chunks(50_000) {
        let mut builder = BatchBuilder::default();
        for &m in chunk {
            bpm = (bpm + (rng.next() % 5) as i64 - 2).clamp(50, 150);
            builder.push_sample(k.clone(), sample(START_NS + m * MINUTE_NS, bpm as f64));
        }
        store.write(&builder.finish()).expect("write");
    }
    store.flush().expect("flush");
    store.compact().expect("compact");
    let q = RangeQuery {
        twin: k.twin.clone(),
        signal: k.signal.clone(),
        provenance: Provenance::none(),
        from: Timestamp::from_nanos(START_NS),
        to: Timestamp::from_nanos(START_NS + minutes * MINUTE_NS),
    };
    let hour = Span::from_secs(3600);
    let mut times = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        let buckets = store.aggregate(&q, hour, &[Aggregate::Mean]).expect("aggregate");
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(buckets.len(), 365 * 24 + 1);
    }
    times.sort_by(f64::total_cmp);
    let mut last_times = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        store.last(&q).expect("last");
        last_times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    last_times.sort_by(f64::total_cmp);
    println!(
        "aggregate: hourly mean over {minutes} minute points: p50 {:.2} ms, min {:.2} ms; last value p50 {:.0} us",
        times[times.len() / 2],
        times[0],
        last_times[last_times.len() / 2]
    );
}

/// Percentile `p` (0..=1) of sorted microsecond timings.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Times reads of one series chosen at random among `twins * 10` series,
/// first spread over the segments of several flushes, then compacted into
/// one segment.
fn series_lookup(twins: usize) {
    const SIGNALS: usize = 10;
    const POINTS: i64 = 5;
    const SAMPLES: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::new(dir.path());
    config.background = false;
    let store = Store::open(config).expect("open");
    let signals: Vec<String> = (0..SIGNALS).map(|s| format!("signal{s}")).collect();
    for chunk in (0..twins).collect::<Vec<_>>().chunks(10_000) {
        let mut builder = BatchBuilder::default();
        for &t in chunk {
            let twin = format!("twin{t:08}");
            for signal in &signals {
                let k = SeriesKey {
                    twin: TwinId::new(&twin).expect("valid twin"),
                    signal: SignalName::new(signal).expect("valid signal"),
                    provenance: Provenance::none(),
                };
                for m in 0..POINTS {
                    builder.push_sample(k.clone(), sample(START_NS + m * MINUTE_NS, (60 + m) as f64));
                }
            }
        }
        store.write(&builder.finish()).expect("write");
    }
    store.flush().expect("flush");
    let mut rng = Rng(99);
    let queries: Vec<RangeQuery> = (0..SAMPLES)
        .map(|_| RangeQuery {
            twin: TwinId::new(&format!("twin{:08}", rng.next() as usize % twins)).expect("valid twin"),
            signal: SignalName::new(&signals[rng.next() as usize % SIGNALS]).expect("valid signal"),
            provenance: Provenance::none(),
            from: Timestamp::from_nanos(START_NS),
            to: Timestamp::from_nanos(START_NS + POINTS * MINUTE_NS),
        })
        .collect();
    for layout in ["flushed", "compacted"] {
        if layout == "compacted" {
            store.compact().expect("compact");
        }
        let segments = store.stats().segments;
        let mut read_us = Vec::with_capacity(SAMPLES);
        let mut last_us = Vec::with_capacity(SAMPLES);
        for q in &queries {
            let started = Instant::now();
            let data = store.read(q).expect("read");
            read_us.push(started.elapsed().as_secs_f64() * 1e6);
            assert_eq!(data[0].samples.len(), POINTS as usize);
            let started = Instant::now();
            store.last(q).expect("last");
            last_us.push(started.elapsed().as_secs_f64() * 1e6);
        }
        read_us.sort_by(f64::total_cmp);
        last_us.sort_by(f64::total_cmp);
        println!(
            "lookup: one series among {} ({layout}, {segments} segments): read p50 {:.1} us p99 {:.1} us; last p50 {:.1} us p99 {:.1} us",
            twins * SIGNALS,
            percentile(&read_us, 0.5),
            percentile(&read_us, 0.99),
            percentile(&last_us, 0.5),
            percentile(&last_us, 0.99)
        );
    }
}

fn main() {
    let only = std::env::args().nth(1);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("write") {
        for writers in [4, 8] {
            write_throughput(writers, 400 / writers);
        }
    }
    if run("size") {
        wearable_bytes_per_point();
    }
    if run("aggregate") {
        year_hourly_mean();
    }
    if run("lookup") {
        series_lookup(100_000);
    }
}
