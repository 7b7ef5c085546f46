//! Rolling window statistics kept per live signal.
//!
//! A window of span `W` is a ring of [`SUB_BUCKETS`] sub-buckets, each
//! `W / SUB_BUCKETS` wide and aligned to the epoch. Statistics cover the
//! sub-bucket holding the signal's newest point and the ones before it, so a
//! window always covers between `W·(1 − 1/SUB_BUCKETS)` and `W` of event
//! time. Exact sliding windows would need every point of the window in
//! memory; at a million twins that is not affordable, so this trades a
//! bounded edge granularity for a fixed ~100 bytes per window.

use doppel_model::Span;

/// Sub-buckets per window: the granularity with which a window slides.
pub const SUB_BUCKETS: usize = 4;

/// Statistics of one sub-bucket. Sums are kept in `f32` relative to the
/// window's reference value, which keeps them accurate for physiological
/// signals (values of similar magnitude) at half the memory of `f64`.
#[derive(Clone, Copy, Debug, Default)]
struct SubBucket {
    count: u32,
    min: f32,
    max: f32,
    sum: f32,
    sum_sq: f32,
}

/// One rolling window over event time.
#[derive(Clone, Debug)]
pub struct RollingWindow {
    span: Span,
    /// Index (time / width) of the newest sub-bucket; `i64::MIN` when empty.
    newest: i64,
    /// Value subtracted before summing, to keep `f32` sums well conditioned.
    reference: f32,
    ring: [SubBucket; SUB_BUCKETS],
}

/// What a window reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowSummary {
    /// Points in the window.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Population standard deviation.
    pub std: f64,
}

impl RollingWindow {
    /// An empty window of the given span.
    pub fn new(span: Span) -> Self {
        Self { span, newest: i64::MIN, reference: 0.0, ring: [SubBucket::default(); SUB_BUCKETS] }
    }

    /// The window's span.
    pub fn span(&self) -> Span {
        self.span
    }

    fn width(&self) -> i64 {
        (self.span.as_nanos() / SUB_BUCKETS as i64).max(1)
    }

    /// Adds a point at `time_ns`. Points older than the window relative to
    /// its newest point are ignored; a newer point slides the window.
    pub fn add(&mut self, time_ns: i64, value: f64) {
        let index = time_ns.div_euclid(self.width());
        if self.newest == i64::MIN {
            self.newest = index;
            self.reference = value as f32;
        } else if index > self.newest {
            let advance = index - self.newest;
            for step in 1..=advance.min(SUB_BUCKETS as i64) {
                self.ring[slot(self.newest + step)] = SubBucket::default();
            }
            self.newest = index;
        } else if self.newest - index >= SUB_BUCKETS as i64 {
            return;
        }
        let bucket = &mut self.ring[slot(index)];
        let shifted = value as f32 - self.reference;
        if bucket.count == 0 {
            bucket.min = value as f32;
            bucket.max = value as f32;
        } else {
            bucket.min = bucket.min.min(value as f32);
            bucket.max = bucket.max.max(value as f32);
        }
        bucket.count = bucket.count.saturating_add(1);
        bucket.sum += shifted;
        bucket.sum_sq += shifted * shifted;
    }

    /// Statistics over the window, or `None` when it holds no point.
    pub fn summary(&self) -> Option<WindowSummary> {
        let mut count = 0u64;
        let (mut sum, mut sum_sq) = (0f64, 0f64);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for bucket in self.ring.iter().filter(|b| b.count > 0) {
            count += u64::from(bucket.count);
            sum += f64::from(bucket.sum);
            sum_sq += f64::from(bucket.sum_sq);
            min = min.min(f64::from(bucket.min));
            max = max.max(f64::from(bucket.max));
        }
        if count == 0 {
            return None;
        }
        let n = count as f64;
        let shifted_mean = sum / n;
        let variance = (sum_sq / n - shifted_mean * shifted_mean).max(0.0);
        Some(WindowSummary {
            count,
            mean: shifted_mean + f64::from(self.reference),
            min,
            max,
            std: variance.sqrt(),
        })
    }
}

fn slot(index: i64) -> usize {
    index.rem_euclid(SUB_BUCKETS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: i64 = 60_000_000_000;

    fn hour() -> Span {
        "1h".parse().unwrap()
    }

    #[test]
    fn summarises_points_within_the_window() {
        let mut w = RollingWindow::new(hour());
        for (i, v) in [60.0, 62.0, 64.0, 66.0].into_iter().enumerate() {
            w.add(i as i64 * MINUTE, v);
        }
        let s = w.summary().unwrap();
        assert_eq!(s.count, 4);
        assert!((s.mean - 63.0).abs() < 1e-6);
        assert_eq!((s.min, s.max), (60.0, 66.0));
        assert!((s.std - 5f64.sqrt()).abs() < 1e-4, "{}", s.std);
    }

    #[test]
    fn old_points_slide_out() {
        let mut w = RollingWindow::new(hour());
        w.add(0, 100.0);
        w.add(2 * 60 * MINUTE, 50.0);
        let s = w.summary().unwrap();
        assert_eq!((s.count, s.min, s.max), (1, 50.0, 50.0));
    }

    #[test]
    fn late_points_beyond_the_window_are_ignored() {
        let mut w = RollingWindow::new(hour());
        w.add(3 * 60 * MINUTE, 70.0);
        w.add(0, 10.0);
        assert_eq!(w.summary().unwrap().count, 1);
    }

    #[test]
    fn empty_window_has_no_summary() {
        assert!(RollingWindow::new(hour()).summary().is_none());
    }

    proptest! {
        /// Against an exact computation over the points the window promises to cover.
        #[test]
        fn matches_exact_statistics_over_covered_points(values in proptest::collection::vec((0i64..180, 40.0f64..200.0), 1..200)) {
            let mut sorted = values.clone();
            sorted.sort_by_key(|(m, _)| *m);
            let mut w = RollingWindow::new(hour());
            for (minute, v) in &sorted {
                w.add(minute * MINUTE, *v);
            }
            let newest = sorted.last().unwrap().0 * MINUTE;
            let width = hour().as_nanos() / SUB_BUCKETS as i64;
            let first_index = newest.div_euclid(width) - (SUB_BUCKETS as i64 - 1);
            let covered: Vec<f64> = sorted.iter()
                .filter(|(m, _)| (m * MINUTE).div_euclid(width) >= first_index)
                .map(|(_, v)| *v).collect();
            let s = w.summary().unwrap();
            let n = covered.len() as f64;
            let mean = covered.iter().sum::<f64>() / n;
            let std = (covered.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            prop_assert_eq!(s.count as usize, covered.len());
            prop_assert!((s.mean - mean).abs() < 1e-3 * mean.abs().max(1.0));
            prop_assert!((s.std - std).abs() < 0.05 + 1e-3 * std);
            prop_assert!((s.min - covered.iter().cloned().fold(f64::INFINITY, f64::min)).abs() < 1e-4 * s.min.abs().max(1.0));
        }
    }
}
