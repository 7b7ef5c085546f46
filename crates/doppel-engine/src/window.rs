//! Rolling window statistics kept per live signal.
//!
//! A window of span `W` is a ring of [`SUB_BUCKETS`] sub-buckets, each
//! `W / SUB_BUCKETS` wide and aligned to the epoch. Statistics cover the
//! sub-bucket holding the signal's newest point and the ones before it, so a
//! window always covers between `W·(1 − 1/SUB_BUCKETS)` and `W` of event
//! time. Exact sliding windows would need every point of the window in
//! memory; at a million twins that is not affordable, so this trades a
//! bounded edge granularity for a fixed 80 bytes per window.
//!
//! A ring stores only its sub-buckets. What every window of a signal shares
//! is kept once by the signal: the span comes from the model, the newest
//! sub-bucket follows from the signal's newest time, and sums are taken
//! relative to one reference value per signal.

use doppel_model::Span;

/// Sub-buckets per window: the granularity with which a window slides.
pub const SUB_BUCKETS: usize = 4;

/// Statistics of one sub-bucket, in the signal's scaled units (see
/// [`scale_exponent`]). Sums are kept in `f32` relative to the signal's
/// reference value, which keeps them accurate for physiological signals
/// (values of similar magnitude) at half the memory of `f64`.
#[derive(Clone, Copy, Debug, Default)]
struct SubBucket {
    count: u32,
    min: f32,
    max: f32,
    sum: f32,
    sum_sq: f32,
}

/// The sub-buckets of one rolling window over event time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowRing {
    ring: [SubBucket; SUB_BUCKETS],
}

/// What a window reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WindowSummary {
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

/// Largest magnitude of a scaled value, as a power of two: its square
/// times a `u32` count of points stays far inside `f32`'s range (2^128),
/// so no sum can overflow.
const MAX_SCALED_EXPONENT: i32 = 40;

/// Scales are multiples of this power of two, so a signal stores its
/// scale in five bits; a scaled value stays above 2^-24, far from `f32`'s
/// smallest normal number even squared.
pub(crate) const SCALE_UNIT: i32 = 64;

/// The power of two a signal's values are divided by before they enter
/// its windows, so that `value` fits: 0 for every value up to 2^40 (all
/// physiology), more for huge ones. Values up to `f64::MAX` stay finite
/// and so do their means and spreads.
pub(crate) fn scale_exponent(value: f64) -> i32 {
    let magnitude = value.abs();
    if !magnitude.is_finite() || magnitude <= 2f64.powi(MAX_SCALED_EXPONENT) {
        return 0;
    }
    // The exponent of a finite f64 is below 1024; log2 rounds up so the
    // scaled value is at most 2^40.
    let needed = magnitude.log2().ceil() as i32 - MAX_SCALED_EXPONENT;
    ((needed + SCALE_UNIT - 1) / SCALE_UNIT * SCALE_UNIT).clamp(0, 1024)
}

/// `value` divided by 2^`exponent`.
pub(crate) fn scaled(value: f64, exponent: i32) -> f32 {
    times_power_of_two(value, -exponent) as f32
}

/// `value` × 2^`exponent`, in two steps: 2^1024 itself is beyond `f64`.
fn times_power_of_two(value: f64, exponent: i32) -> f64 {
    let half = exponent / 2;
    value * 2f64.powi(half) * 2f64.powi(exponent - half)
}

/// Where a point lands in a window of `span`: its sub-bucket index.
pub(crate) fn bucket_index(span: Span, time_ns: i64) -> i64 {
    let width = (span.as_nanos() / SUB_BUCKETS as i64).max(1);
    time_ns.div_euclid(width)
}

fn slot(index: i64) -> usize {
    index.rem_euclid(SUB_BUCKETS as i64) as usize
}

impl WindowRing {
    /// Adds a point at `time_ns` to a window of `span`. `newest_ns` is the
    /// signal's newest time before this point (`i64::MIN` when it had none),
    /// `value` is scaled and `reference` the scaled value its sums are
    /// relative to. Points older than the window relative to the newest are
    /// ignored; a newer point slides it.
    pub fn add(&mut self, span: Span, newest_ns: i64, time_ns: i64, value: f32, reference: f32) {
        let index = bucket_index(span, time_ns);
        if newest_ns != i64::MIN {
            let newest = bucket_index(span, newest_ns);
            if index > newest {
                for step in 1..=(index - newest).min(SUB_BUCKETS as i64) {
                    self.ring[slot(newest + step)] = SubBucket::default();
                }
            } else if newest - index >= SUB_BUCKETS as i64 {
                return;
            }
        }
        let bucket = &mut self.ring[slot(index)];
        let shifted = value - reference;
        if bucket.count == 0 {
            bucket.min = value;
            bucket.max = value;
        } else {
            bucket.min = bucket.min.min(value);
            bucket.max = bucket.max.max(value);
        }
        bucket.count = bucket.count.saturating_add(1);
        bucket.sum += shifted;
        bucket.sum_sq += shifted * shifted;
    }

    /// Divides everything held by 2^`by` more, when a signal's scale grows
    /// (exact: a power of two only moves exponents).
    pub fn rescale(&mut self, by: i32) {
        let factor = 2f32.powi(-by);
        for bucket in &mut self.ring {
            bucket.min *= factor;
            bucket.max *= factor;
            bucket.sum *= factor;
            bucket.sum_sq *= factor * factor;
        }
    }

    /// Statistics over the window in the signal's own units (its values
    /// were divided by 2^`exponent`), or `None` when it holds no point.
    /// Sub-buckets that slid out were cleared by [`WindowRing::add`], so
    /// every non-empty one is inside the window.
    pub fn summary(&self, reference: f32, exponent: i32) -> Option<WindowSummary> {
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
        // Rounding to f32 may carry a value next to f64::MAX past it once
        // scaled back; every value was finite, so every statistic is.
        let unscale = |x: f64| times_power_of_two(x, exponent).clamp(-f64::MAX, f64::MAX);
        Some(WindowSummary {
            count,
            mean: unscale(shifted_mean + f64::from(reference)),
            min: unscale(min),
            max: unscale(max),
            std: unscale(variance.sqrt()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: i64 = 60_000_000_000;

    fn hour() -> Span {
        "1h".parse().unwrap()
    }

    /// One window fed the way a live signal feeds it: tracking the newest
    /// time and taking the first value as the reference.
    struct Fed {
        ring: WindowRing,
        newest: i64,
        reference: f32,
    }

    impl Fed {
        fn new() -> Self {
            Self { ring: WindowRing::default(), newest: i64::MIN, reference: 0.0 }
        }

        fn add(&mut self, time_ns: i64, value: f64) {
            if self.newest == i64::MIN {
                self.reference = value as f32;
            }
            self.ring.add(hour(), self.newest, time_ns, value as f32, self.reference);
            self.newest = self.newest.max(time_ns);
        }

        fn summary(&self) -> Option<WindowSummary> {
            self.ring.summary(self.reference, 0)
        }
    }

    #[test]
    fn a_ring_costs_eighty_bytes() {
        assert_eq!(std::mem::size_of::<WindowRing>(), 80);
    }

    #[test]
    fn summarises_points_within_the_window() {
        let mut w = Fed::new();
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
        let mut w = Fed::new();
        w.add(0, 100.0);
        w.add(2 * 60 * MINUTE, 50.0);
        let s = w.summary().unwrap();
        assert_eq!((s.count, s.min, s.max), (1, 50.0, 50.0));
    }

    #[test]
    fn late_points_beyond_the_window_are_ignored() {
        let mut w = Fed::new();
        w.add(3 * 60 * MINUTE, 70.0);
        w.add(0, 10.0);
        assert_eq!(w.summary().unwrap().count, 1);
    }

    #[test]
    fn huge_values_keep_finite_statistics_once_scaled() {
        let exponent = scale_exponent(1e308);
        assert!(exponent > 0);
        assert_eq!(scale_exponent(1e6), 0, "ordinary values are not scaled");
        let mut ring = WindowRing::default();
        let reference = scaled(1e308, exponent);
        for (minute, value) in [(0, 1e308), (1, f64::MAX), (2, -1e308)] {
            ring.add(
                hour(),
                if minute == 0 { i64::MIN } else { 0 },
                minute * MINUTE,
                scaled(value, exponent),
                reference,
            );
        }
        let s = ring.summary(reference, exponent).unwrap();
        assert_eq!(s.count, 3);
        for stat in [s.mean, s.min, s.max, s.std] {
            assert!(stat.is_finite(), "{s:?}");
        }
        assert!((s.max / f64::MAX - 1.0).abs() < 1e-6 && (s.min / -1e308 - 1.0).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn rescaling_keeps_the_statistics() {
        let mut ring = WindowRing::default();
        for (minute, value) in [(0, 60.0f32), (1, 64.0)] {
            ring.add(hour(), if minute == 0 { i64::MIN } else { 0 }, minute * MINUTE, value, 60.0);
        }
        let before = ring.summary(60.0, 0).unwrap();
        ring.rescale(3);
        assert_eq!(ring.summary(60.0 / 8.0, 3).unwrap(), before);
    }

    #[test]
    fn empty_window_has_no_summary() {
        assert!(Fed::new().summary().is_none());
    }

    proptest! {
        /// Against an exact computation over the points the window promises
        /// to cover, with points arriving in any order.
        #[test]
        fn matches_exact_statistics_over_covered_points(values in proptest::collection::vec((0i64..180, 40.0f64..200.0), 1..200)) {
            let mut w = Fed::new();
            for (minute, v) in &values {
                w.add(minute * MINUTE, *v);
            }
            let width = hour().as_nanos() / SUB_BUCKETS as i64;
            // Which points survive depends on arrival order: a point is kept
            // when it was inside the window at its arrival and its
            // sub-bucket was not cleared by a later slide.
            let newest = values.iter().map(|(m, _)| m * MINUTE).max().unwrap();
            let first_index = newest.div_euclid(width) - (SUB_BUCKETS as i64 - 1);
            let mut seen_newest = i64::MIN;
            let mut covered = Vec::new();
            for (minute, v) in &values {
                let t = minute * MINUTE;
                let late = seen_newest != i64::MIN && seen_newest.div_euclid(width) - t.div_euclid(width) >= SUB_BUCKETS as i64;
                seen_newest = seen_newest.max(t);
                if !late && t.div_euclid(width) >= first_index {
                    covered.push(*v);
                }
            }
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
