//! The data every system receives: points generated once, encoded once as
//! line-protocol request bodies, and sent byte-identical to each system.

use anyhow::Result;
use bytes::Bytes;
use doppel_model::{Point, Provenance, SignalName, Timestamp, TwinId, Value};
use doppel_protocols::line_protocol::encode_point;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Nanoseconds per minute.
pub const NANOS_PER_MINUTE: i64 = 60_000_000_000;
/// Nanoseconds per day.
pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The signal every latency and count query reads.
pub const QUERY_SIGNAL: &str = "heart_rate";

/// Request bodies and what they hold.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// Line-protocol bodies, `batch_lines` lines each (the last may be shorter).
    pub batches: Vec<Bytes>,
    /// Points across all bodies.
    pub points: u64,
    /// Points of [`QUERY_SIGNAL`], what the count check compares.
    pub query_signal_points: u64,
    /// Total body bytes.
    pub body_bytes: u64,
    /// Twins in the workload, in generation order.
    pub twins: Vec<String>,
    /// Earliest point time (inclusive).
    pub from: Timestamp,
    /// Latest point time plus one nanosecond (exclusive end).
    pub to: Timestamp,
}

/// Cuts a stream of encoded lines into bodies of a fixed number of lines.
pub struct BatchEncoder {
    batch_lines: usize,
    current: String,
    current_lines: usize,
    line: String,
    workload: Workload,
    min_ns: i64,
    max_ns: i64,
}

impl BatchEncoder {
    /// An encoder cutting bodies every `batch_lines` lines (at least one).
    pub fn new(batch_lines: usize) -> Self {
        Self {
            batch_lines: batch_lines.max(1),
            current: String::new(),
            current_lines: 0,
            line: String::new(),
            workload: Workload::default(),
            min_ns: i64::MAX,
            max_ns: i64::MIN,
        }
    }

    /// Encodes and appends one point.
    pub fn push(&mut self, point: &Point) {
        self.line.clear();
        encode_point(&mut self.line, point);
        let line = std::mem::take(&mut self.line);
        self.push_line(&line, point.signal.as_str() == QUERY_SIGNAL, point.time.as_nanos());
        self.line = line;
    }

    fn push_line(&mut self, line: &str, is_query_signal: bool, time_ns: i64) {
        self.append(line);
        self.workload.query_signal_points += u64::from(is_query_signal);
        self.min_ns = self.min_ns.min(time_ns);
        self.max_ns = self.max_ns.max(time_ns);
    }

    fn append(&mut self, line: &str) {
        if self.current.is_empty() {
            // Bodies of one workload have similar sizes; reserving the
            // previous size avoids regrowing a few hundred kilobytes.
            self.current.reserve(self.workload.batches.last().map_or(0, Bytes::len));
        }
        self.current.push_str(line);
        self.current_lines += 1;
        self.workload.points += 1;
        if self.current_lines == self.batch_lines {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.current_lines == 0 {
            return;
        }
        let body = std::mem::take(&mut self.current);
        self.workload.body_bytes += body.len() as u64;
        self.workload.batches.push(Bytes::from(body));
        self.current_lines = 0;
    }

    /// Records a twin of the workload.
    pub fn add_twin(&mut self, twin: &TwinId) {
        self.workload.twins.push(twin.as_str().to_owned());
    }

    /// The finished workload.
    pub fn finish(mut self) -> Workload {
        self.cut();
        if self.workload.points > 0 {
            self.workload.from = Timestamp::from_nanos(self.min_ns);
            self.workload.to = Timestamp::from_nanos(self.max_ns.saturating_add(1));
        }
        self.workload
    }
}

/// The midnight (UTC) `days` days before today's, so a workload ends
/// before now: peers refuse or hide points from the future, and a recent
/// history is what a live product holds.
pub fn history_start(days: u32) -> Timestamp {
    let today = Timestamp::now().as_nanos().div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY;
    Timestamp::from_nanos(today - i64::from(days) * NANOS_PER_DAY)
}

/// One heart-rate series of `minutes` one-minute points for `twin`,
/// starting at `start`: a 24-hour cosine (nadir at 04:00, ±8 bpm around
/// 66 bpm, the shape of Vandewalle et al. 2007) plus daytime activity bursts
/// and ±2 bpm noise, rounded to whole bpm as wearables report it.
/// Deterministic for a seed.
pub fn minute_heart_rate(twin: &TwinId, start: Timestamp, minutes: usize, seed: u64) -> Result<Vec<Point>> {
    let signal = SignalName::new(QUERY_SIGNAL)?;
    let provenance = Provenance::from_tags([("device", "watch")])?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut burst_minutes_left = 0u32;
    let mut points = Vec::with_capacity(minutes);
    for minute in 0..minutes {
        let time = start.add_nanos(minute as i64 * NANOS_PER_MINUTE);
        let hour_of_day = time.as_nanos().rem_euclid(NANOS_PER_DAY) as f64 / 3.6e12;
        let circadian = -8.0 * ((hour_of_day - 4.0) / 24.0 * std::f64::consts::TAU).cos();
        let awake = (7.0..23.0).contains(&hour_of_day);
        if burst_minutes_left == 0 && awake && rng.random_bool(0.01) {
            burst_minutes_left = rng.random_range(5..40);
        }
        let activity = if burst_minutes_left > 0 {
            burst_minutes_left -= 1;
            35.0
        } else {
            0.0
        };
        let noise: f64 = rng.random_range(-2.0..=2.0);
        let bpm = (66.0 + circadian + activity + noise).round().clamp(35.0, 200.0);
        points.push(Point {
            twin: twin.clone(),
            signal: signal.clone(),
            provenance: provenance.clone(),
            time,
            value: Value::new(bpm)?,
        });
    }
    Ok(points)
}

/// Encodes points (already generated) as a workload.
pub fn encode_workload(points: &[Point], batch_lines: usize) -> Workload {
    let mut encoder = BatchEncoder::new(batch_lines);
    let mut seen = std::collections::BTreeSet::new();
    for point in points {
        if seen.insert(point.twin.as_str()) {
            encoder.add_twin(&point.twin);
        }
        encoder.push(point);
    }
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::Precision;

    fn twin() -> TwinId {
        TwinId::new("bench-year").unwrap()
    }

    #[test]
    fn bodies_hold_exactly_batch_lines_lines_and_parse_back_to_the_points() {
        let points = minute_heart_rate(&twin(), Timestamp::from_secs(1_700_000_000), 12_345, 1).unwrap();
        let workload = encode_workload(&points, 5000);
        assert_eq!(workload.points, 12_345);
        assert_eq!(workload.query_signal_points, 12_345);
        assert_eq!(workload.batches.len(), 3);
        let lines: Vec<usize> =
            workload.batches.iter().map(|b| b.iter().filter(|&&c| c == b'\n').count()).collect();
        assert_eq!(lines, [5000, 5000, 2345]);
        assert_eq!(workload.body_bytes, workload.batches.iter().map(|b| b.len() as u64).sum::<u64>());
        let mut decoded = Vec::new();
        for body in &workload.batches {
            let batch =
                doppel_protocols::line_protocol::parse(body, Precision::Ns, Timestamp::from_secs(0)).unwrap();
            for series in batch.series {
                for sample in series.samples {
                    decoded.push((series.key.twin.clone(), sample.time));
                }
            }
        }
        assert_eq!(decoded.len(), points.len());
        assert!(
            decoded
                .iter()
                .zip(&points)
                .all(|((twin, time), point)| *twin == point.twin && *time == point.time)
        );
        assert_eq!(workload.twins, ["bench-year"]);
        assert_eq!(workload.from, points[0].time);
        assert_eq!(workload.to, points[points.len() - 1].time.add_nanos(1));
    }

    #[test]
    fn minute_heart_rate_is_deterministic_whole_and_plausible() {
        let a = minute_heart_rate(&twin(), Timestamp::from_secs(0), 2880, 7).unwrap();
        let b = minute_heart_rate(&twin(), Timestamp::from_secs(0), 2880, 7).unwrap();
        let c = minute_heart_rate(&twin(), Timestamp::from_secs(0), 2880, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|p| p.value.get().fract() == 0.0 && (35.0..=200.0).contains(&p.value.get())));
        assert!(a.windows(2).all(|w| w[1].time.as_nanos() - w[0].time.as_nanos() == NANOS_PER_MINUTE));
    }

    #[test]
    fn empty_workloads_have_no_bodies() {
        let workload = BatchEncoder::new(0).finish();
        assert!(workload.batches.is_empty());
        assert_eq!(workload.points, 0);
    }

    #[test]
    fn history_starts_at_a_midnight_in_the_past() {
        let start = history_start(7);
        assert_eq!(start.as_nanos().rem_euclid(NANOS_PER_DAY), 0);
        let age = Timestamp::now().as_nanos() - start.as_nanos();
        assert!((7 * NANOS_PER_DAY..8 * NANOS_PER_DAY).contains(&age));
    }
}
