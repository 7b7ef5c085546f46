//! Latency percentiles.
//!
//! Percentiles use the nearest-rank definition (the smallest sample such
//! that at least `q` of all samples are at or below it), so every reported
//! number is a latency that was actually observed, never an interpolation
//! between two requests.

use std::fmt;
use std::time::Duration;

/// The percentiles the benchmark reports for one kind of request or
/// delivery, all in milliseconds.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct LatencySummary {
    /// How many samples the summary covers.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile: the stalls a p99 hides.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises samples in milliseconds; `None` when there are none.
    /// Non-finite samples are ignored because they cannot be ranked.
    pub fn from_millis(mut samples_ms: Vec<f64>) -> Option<Self> {
        samples_ms.retain(|s| s.is_finite());
        samples_ms.sort_by(f64::total_cmp);
        Some(Self {
            count: samples_ms.len(),
            p50_ms: percentile(&samples_ms, 0.50)?,
            p99_ms: percentile(&samples_ms, 0.99)?,
            p999_ms: percentile(&samples_ms, 0.999)?,
            max_ms: *samples_ms.last()?,
        })
    }

    /// Summarises measured durations.
    pub fn from_durations(samples: &[Duration]) -> Option<Self> {
        Self::from_millis(samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect())
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms ({} samples)",
            format_ms(self.p50_ms),
            format_ms(self.p99_ms),
            format_ms(self.p999_ms),
            format_ms(self.max_ms),
            self.count
        )
    }
}

/// Nearest-rank percentile of samples sorted ascending; `q` in `[0, 1]`.
/// `None` for no samples or a `q` outside the range.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // Rank ceil(q·n), 1-based, at least 1 (q = 0 is the minimum).
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Milliseconds with enough digits for sub-millisecond latencies and few
/// enough for seconds.
pub fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 100.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_pick_observed_samples() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.50), Some(50.0));
        assert_eq!(percentile(&samples, 0.99), Some(99.0));
        assert_eq!(percentile(&samples, 1.0), Some(100.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&samples, 0.001), Some(1.0));
    }

    #[test]
    fn percentile_of_small_sets_rounds_up() {
        assert_eq!(percentile(&[10.0], 0.99), Some(10.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.5), Some(1.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.51), Some(2.0));
    }

    #[test]
    fn percentile_refuses_empty_input_and_bad_quantiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0], 1.5), None);
        assert_eq!(percentile(&[1.0], -0.1), None);
        assert_eq!(percentile(&[1.0], f64::NAN), None);
    }

    #[test]
    fn summary_sorts_its_input_and_drops_non_finite_samples() {
        let summary = LatencySummary::from_millis(vec![5.0, f64::NAN, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(summary.count, 5);
        assert_eq!(summary.p50_ms, 3.0);
        assert_eq!(summary.p99_ms, 5.0);
        assert_eq!(summary.p999_ms, 5.0);
        assert_eq!(summary.max_ms, 5.0);
        assert!(LatencySummary::from_millis(vec![f64::INFINITY]).is_none());
        assert!(LatencySummary::from_millis(Vec::new()).is_none());
    }

    #[test]
    fn summary_from_durations_converts_to_milliseconds() {
        let summary =
            LatencySummary::from_durations(&[Duration::from_micros(1500), Duration::from_millis(3)]).unwrap();
        assert_eq!(summary.p50_ms, 1.5);
        assert_eq!(summary.max_ms, 3.0);
    }

    #[test]
    fn milliseconds_are_formatted_by_magnitude() {
        assert_eq!(format_ms(0.1234), "0.123");
        assert_eq!(format_ms(12.345), "12.35");
        assert_eq!(format_ms(1234.4), "1234");
    }
}
