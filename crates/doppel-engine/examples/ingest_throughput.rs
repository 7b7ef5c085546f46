//! Measures parse + ingest throughput through the engine, without HTTP:
//! `cargo run --release -p doppel-engine --example ingest_throughput [writers] [batches]`.
//!
//! The workload is wearable-like: 1,000 twins, five signals each, one point
//! per signal per minute, sent as line-protocol batches of 5,000 lines.

use std::sync::Arc;
use std::time::Instant;

use doppel_engine::{Engine, EngineConfig};
use doppel_model::{Precision, Timestamp};
use doppel_protocols::line_protocol;
use doppel_store::StoreConfig;

const TWINS: usize = 1000;
const LINES_PER_BATCH: usize = 5000;
const SIGNALS: [(&str, f64); 5] =
    [("heart_rate", 60.0), ("steps", 0.0), ("spo2", 96.0), ("skin_temp", 33.0), ("respiratory_rate", 14.0)];

fn batch(index: usize) -> String {
    let mut text = String::with_capacity(LINES_PER_BATCH * 64);
    let minute = index as i64;
    let time = 1_700_000_000_000_000_000i64 + minute * 60_000_000_000;
    for line in 0..LINES_PER_BATCH {
        let twin = line / SIGNALS.len() % TWINS;
        let (signal, base) = SIGNALS[line % SIGNALS.len()];
        let value = base + ((line * 7 + index) % 4) as f64;
        text.push_str(&format!("{signal},twin=p{twin:05},device=watch value={value} {time}\n"));
    }
    text
}

fn main() {
    let mut args = std::env::args().skip(1);
    let writers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let batches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine =
        Arc::new(Engine::open(EngineConfig::new(StoreConfig::new(dir.path()))).expect("engine opens"));
    let bodies: Vec<String> = (0..batches).map(batch).collect();
    engine
        .ingest(line_protocol::parse(bodies[0].as_bytes(), Precision::Ns, Timestamp::now()).expect("parses"))
        .expect("ingests");
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(1);
    std::thread::scope(|scope| {
        for _ in 0..writers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let raw = line_protocol::parse(body.as_bytes(), Precision::Ns, Timestamp::now())
                        .expect("parses");
                    engine.ingest(raw).expect("ingests");
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let points = (batches - 1) * LINES_PER_BATCH;
    println!(
        "{points} points in {elapsed:.2} s: {:.0} points/s with {writers} writers",
        points as f64 / elapsed
    );
}
