//! Measures line-protocol parse throughput on typical wearable lines.
//! Run by hand, in release: `cargo run --release -p doppel-protocols
//! --example lp_throughput [lines] [twins]`. Prints lines and points per
//! second for one thread; nothing here is asserted.

use std::time::Instant;

use doppel_model::{Precision, Timestamp};
use doppel_protocols::line_protocol;

/// Parse rounds; the best one is reported, to discount warm-up and noise.
const ROUNDS: usize = 7;

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let twins: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let body = body(lines, twins.max(1));
    println!("{lines} lines, {twins} twins, {:.1} MiB", body.len() as f64 / (1024.0 * 1024.0));
    let mut best = f64::INFINITY;
    let mut points = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let batch = match line_protocol::parse(&body, Precision::Ns, Timestamp::from_secs(0)) {
            Ok(batch) => batch,
            Err(e) => {
                eprintln!("generated body was refused: {e}");
                std::process::exit(1);
            }
        };
        best = best.min(start.elapsed().as_secs_f64());
        points = batch.point_count();
    }
    println!(
        "best of {ROUNDS}: {:.3} s, {:.2} M lines/s, {:.2} M points/s, {:.0} MiB/s",
        best,
        lines as f64 / best / 1e6,
        points as f64 / best / 1e6,
        body.len() as f64 / best / (1024.0 * 1024.0)
    );
}

/// Interleaves twins the way a gateway forwarding many watches would, so
/// consecutive lines rarely share a series.
fn body(lines: usize, twins: usize) -> Vec<u8> {
    let signals = [("heart_rate", "watch"), ("spo2", "ring"), ("steps", "phone")];
    let mut out = String::with_capacity(lines * 64);
    for i in 0..lines {
        let twin = i % twins;
        let (signal, device) = signals[(i / twins) % signals.len()];
        let value = 50 + (i * 7) % 60;
        let time = 1_700_000_000_000_000_000i64 + (i as i64) * 1_000_000_000;
        out.push_str(&format!("{signal},twin=p{twin:04},device={device} value={value} {time}\n"));
    }
    out.into_bytes()
}
