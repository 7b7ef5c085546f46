//! Cohort statistics released under ε-differential privacy with the
//! Laplace mechanism (Dwork, McSherry, Nissim and Smith 2006; Dwork and
//! Roth 2014, section 3.3).
//!
//! **Unit of privacy.** The input is one value per twin, and neighbouring
//! inputs differ by adding or removing one twin: the guarantee is that an
//! answer barely depends on whether any one person is in the cohort. A
//! person with several twins is several units.
//!
//! **Sensitivity.** How much one twin can move a statistic:
//!
//! | statistic | Δ (adding or removing one value) |
//! |---|---|
//! | count | 1 |
//! | sum of values clamped to [lo, hi] | max(\|lo\|, \|hi\|) |
//! | histogram of clamped values | 1 (one bin moves by one) |
//!
//! Without clamping a sum's Δ is unbounded — one value of 10¹² would show
//! through any noise — so sums, means and histograms need a range, chosen
//! without looking at the data. A mean is released as a noisy sum over a
//! noisy count, each with half of ε (sequential composition, Dwork and Roth
//! theorem 3.14), clamped back into [lo, hi]. Counts are rounded to whole
//! numbers and floored at zero after the noise; that is post-processing,
//! which costs no privacy (Dwork and Roth proposition 2.1).

use rand::Rng;

use crate::laplace::sample_laplace;
use crate::{Epsilon, PrivacyError};

/// Most bins a histogram may have: each bin is a released count, and more
/// bins than people only shows noise.
pub const MAX_HISTOGRAM_BINS: u32 = 1_000;

/// What to compute over the cohort.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Statistic {
    /// How many twins contributed a value.
    Count,
    /// The sum of the clamped values.
    Sum,
    /// The mean of the clamped values.
    Mean,
    /// How many clamped values fall into each of `bins` equal bins over
    /// [lo, hi].
    Histogram {
        /// Number of bins.
        bins: u32,
    },
}

impl Statistic {
    /// The statistic's name, as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Count => "count",
            Statistic::Sum => "sum",
            Statistic::Mean => "mean",
            Statistic::Histogram { .. } => "histogram",
        }
    }
}

/// The range every value is clamped into before it counts, which bounds
/// what one twin can change.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Clamp {
    lo: f64,
    hi: f64,
}

impl Clamp {
    /// `[lo, hi]`; both finite, `lo <= hi`.
    pub fn new(lo: f64, hi: f64) -> Result<Self, PrivacyError> {
        if lo.is_finite() && hi.is_finite() && lo <= hi {
            Ok(Clamp { lo, hi })
        } else {
            Err(PrivacyError::InvalidClamp { lo, hi })
        }
    }

    /// The lower end.
    pub fn lo(self) -> f64 {
        self.lo
    }

    /// The upper end.
    pub fn hi(self) -> f64 {
        self.hi
    }

    /// `value` moved into the range.
    pub fn apply(self, value: f64) -> f64 {
        value.clamp(self.lo, self.hi)
    }

    /// Δ of a sum of clamped values: the most one added or removed value
    /// can change it.
    pub fn sum_sensitivity(self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }
}

/// One bin of a released histogram.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct HistogramBin {
    /// Lower edge, inclusive.
    pub lo: f64,
    /// Upper edge, exclusive but for the last bin.
    pub hi: f64,
    /// Noisy count, rounded and at least zero.
    pub count: f64,
}

/// A released statistic: only noisy numbers, nothing computed from the
/// exact values without noise.
#[derive(Clone, PartialEq, Debug)]
pub struct Release {
    /// The noisy count, sum or mean; `None` for a histogram.
    pub value: Option<f64>,
    /// The noisy count of contributing twins, when the statistic releases
    /// one (count, mean); `None` when it is withheld (sum, histogram), as
    /// releasing it would cost more ε.
    pub count: Option<f64>,
    /// The bins of a histogram; empty otherwise.
    pub bins: Vec<HistogramBin>,
    /// The scale b = Δ/ε of the noise added to the value (for a mean, to
    /// its sum; for a histogram, to each bin): what the analyst needs to
    /// judge the answer's accuracy.
    pub noise_scale: f64,
}

/// Releases `statistic` over `values` (one per twin) with ε = `epsilon`.
/// `clamp` is required for sums, means and histograms. `rng` must be
/// cryptographically secure in production.
pub fn release<R: Rng + ?Sized>(
    statistic: Statistic,
    values: &[f64],
    clamp: Option<Clamp>,
    epsilon: Epsilon,
    rng: &mut R,
) -> Result<Release, PrivacyError> {
    if let Some((index, value)) = values.iter().enumerate().find(|(_, value)| !value.is_finite()) {
        return Err(PrivacyError::NonFiniteValue { index, value: *value });
    }
    let count = values.len() as f64;
    let epsilon = epsilon.get();
    let required = || PrivacyError::ClampRequired { statistic: statistic.name() };
    match statistic {
        Statistic::Count => {
            let scale = 1.0 / epsilon;
            let noisy = whole_count(count + sample_laplace(rng, scale));
            Ok(Release { value: Some(noisy), count: Some(noisy), bins: Vec::new(), noise_scale: scale })
        }
        Statistic::Sum => {
            let clamp = clamp.ok_or_else(required)?;
            let scale = clamp.sum_sensitivity() / epsilon;
            let noisy = clamped_sum(values, clamp) + sample_laplace(rng, scale);
            Ok(Release { value: Some(noisy), count: None, bins: Vec::new(), noise_scale: scale })
        }
        Statistic::Mean => {
            let clamp = clamp.ok_or_else(required)?;
            let half = epsilon / 2.0;
            let sum_scale = clamp.sum_sensitivity() / half;
            let noisy_sum = clamped_sum(values, clamp) + sample_laplace(rng, sum_scale);
            let noisy_count = whole_count(count + sample_laplace(rng, 1.0 / half));
            let mean = clamp.apply(noisy_sum / noisy_count.max(1.0));
            Ok(Release {
                value: Some(mean),
                count: Some(noisy_count),
                bins: Vec::new(),
                noise_scale: sum_scale,
            })
        }
        Statistic::Histogram { bins } => {
            let clamp = clamp.ok_or_else(required)?;
            if bins == 0 || bins > MAX_HISTOGRAM_BINS {
                return Err(PrivacyError::InvalidBins { bins, max: MAX_HISTOGRAM_BINS });
            }
            let scale = 1.0 / epsilon;
            let counts = bin_counts(values, clamp, bins);
            let width = (clamp.hi - clamp.lo) / f64::from(bins);
            let bins = counts
                .iter()
                .enumerate()
                .map(|(index, exact)| HistogramBin {
                    lo: clamp.lo + width * index as f64,
                    hi: if index + 1 == counts.len() {
                        clamp.hi
                    } else {
                        clamp.lo + width * (index + 1) as f64
                    },
                    count: whole_count(*exact as f64 + sample_laplace(rng, scale)),
                })
                .collect();
            Ok(Release { value: None, count: None, bins, noise_scale: scale })
        }
    }
}

/// A noisy count as people read one: whole and not negative.
fn whole_count(noisy: f64) -> f64 {
    noisy.round().max(0.0)
}

fn clamped_sum(values: &[f64], clamp: Clamp) -> f64 {
    values.iter().map(|value| clamp.apply(*value)).sum()
}

/// How many clamped values fall into each of `bins` equal bins of the
/// range; the upper end belongs to the last bin, and a range of one point
/// puts everything into the first.
fn bin_counts(values: &[f64], clamp: Clamp, bins: u32) -> Vec<u64> {
    let mut counts = vec![0u64; bins as usize];
    let width = clamp.hi - clamp.lo;
    for value in values {
        let position = if width > 0.0 { (clamp.apply(*value) - clamp.lo) / width } else { 0.0 };
        // position ∈ [0, 1]; the float-to-int cast saturates.
        let index = ((position * f64::from(bins)) as usize).min(counts.len() - 1);
        counts[index] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn epsilon(value: f64) -> Epsilon {
        Epsilon::new(value).unwrap()
    }

    #[test]
    fn clamping_bounds_what_one_value_can_change() {
        let clamp = Clamp::new(-20.0, 120.0).unwrap();
        assert_eq!(clamp.sum_sensitivity(), 120.0);
        assert_eq!(Clamp::new(-300.0, 5.0).unwrap().sum_sensitivity(), 300.0);
        // Whatever one person adds, however extreme, the clamped sum moves
        // by at most Δ.
        let cohort = [60.0, 72.5, 88.0, -5.0];
        let base = clamped_sum(&cohort, clamp);
        for outlier in [1e12, -1e12, f64::MAX, 119.0, -20.0, 0.0] {
            let mut with = cohort.to_vec();
            with.push(outlier);
            let change = (clamped_sum(&with, clamp) - base).abs();
            assert!(change <= clamp.sum_sensitivity(), "{outlier} moved the sum by {change}");
        }
        // Removing one moves it by at most Δ as well.
        for index in 0..cohort.len() {
            let mut without = cohort.to_vec();
            without.remove(index);
            assert!((clamped_sum(&without, clamp) - base).abs() <= clamp.sum_sensitivity());
        }
    }

    #[test]
    fn a_bad_clamping_range_is_refused() {
        for (lo, hi) in [(2.0, 1.0), (f64::NAN, 1.0), (0.0, f64::INFINITY)] {
            assert!(matches!(Clamp::new(lo, hi), Err(PrivacyError::InvalidClamp { .. })));
        }
        assert!(Clamp::new(3.0, 3.0).is_ok());
    }

    #[test]
    fn sums_means_and_histograms_need_a_clamping_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for statistic in [Statistic::Sum, Statistic::Mean, Statistic::Histogram { bins: 4 }] {
            let refused = release(statistic, &[1.0], None, epsilon(1.0), &mut rng);
            assert!(matches!(refused, Err(PrivacyError::ClampRequired { .. })), "{statistic:?}");
        }
        assert!(release(Statistic::Count, &[1.0], None, epsilon(1.0), &mut rng).is_ok());
    }

    #[test]
    fn the_noise_scale_is_sensitivity_over_epsilon() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let clamp = Some(Clamp::new(0.0, 200.0).unwrap());
        let mut scale =
            |statistic| release(statistic, &[70.0; 10], clamp, epsilon(0.5), &mut rng).unwrap().noise_scale;
        assert_eq!(scale(Statistic::Count), 2.0);
        assert_eq!(scale(Statistic::Sum), 400.0);
        assert_eq!(scale(Statistic::Mean), 800.0, "a mean's sum gets half of epsilon");
        assert_eq!(scale(Statistic::Histogram { bins: 5 }), 2.0);
    }

    #[test]
    fn answers_are_near_the_truth_with_a_large_epsilon_and_spread_with_a_small_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let values: Vec<f64> = (0..1000).map(|i| 50.0 + f64::from(i % 50)).collect();
        let clamp = Some(Clamp::new(40.0, 110.0).unwrap());
        let true_mean = values.iter().sum::<f64>() / values.len() as f64;
        let mean = release(Statistic::Mean, &values, clamp, epsilon(100.0), &mut rng).unwrap();
        assert!((mean.value.unwrap() - true_mean).abs() < 0.5, "{mean:?}");
        assert!((mean.count.unwrap() - 1000.0).abs() <= 2.0, "{mean:?}");
        let sum = release(Statistic::Sum, &values, clamp, epsilon(100.0), &mut rng).unwrap();
        assert!((sum.value.unwrap() - values.iter().sum::<f64>()).abs() < 50.0, "{sum:?}");
        assert_eq!(sum.count, None, "a sum withholds the count");
        // With ε = 0.01, counts of 1000 wander by about a hundred.
        let spread: Vec<f64> = (0..200)
            .map(|_| {
                release(Statistic::Count, &values, None, epsilon(0.01), &mut rng).unwrap().value.unwrap()
            })
            .collect();
        let mean_error = spread.iter().map(|count| (count - 1000.0).abs()).sum::<f64>() / 200.0;
        assert!((60.0..150.0).contains(&mean_error), "mean absolute error {mean_error}, expected about 100");
    }

    #[test]
    fn counts_are_whole_and_never_negative() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..1000 {
            let count = release(Statistic::Count, &[], None, epsilon(0.1), &mut rng).unwrap().value.unwrap();
            assert!(count >= 0.0 && count.fract() == 0.0, "{count}");
        }
    }

    #[test]
    fn histogram_bins_cover_the_range_and_count_clamped_values() {
        let clamp = Clamp::new(0.0, 100.0).unwrap();
        assert_eq!(bin_counts(&[-5.0, 0.0, 24.9, 25.0, 99.0, 100.0, 1e9], clamp, 4), [3, 1, 0, 3]);
        assert_eq!(bin_counts(&[7.0, 7.0], Clamp::new(7.0, 7.0).unwrap(), 3), [2, 0, 0]);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let released =
            release(Statistic::Histogram { bins: 4 }, &[10.0; 500], Some(clamp), epsilon(50.0), &mut rng)
                .unwrap();
        let edges: Vec<(f64, f64)> = released.bins.iter().map(|bin| (bin.lo, bin.hi)).collect();
        assert_eq!(edges, [(0.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, 100.0)]);
        assert!((released.bins[0].count - 500.0).abs() <= 1.0, "{released:?}");
        assert_eq!(released.value, None);
        let too_many =
            release(Statistic::Histogram { bins: 1001 }, &[1.0], Some(clamp), epsilon(1.0), &mut rng);
        assert!(matches!(too_many, Err(PrivacyError::InvalidBins { .. })));
    }

    #[test]
    fn non_finite_values_are_refused_by_position() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let refused = release(Statistic::Count, &[1.0, f64::NAN], None, epsilon(1.0), &mut rng);
        assert!(matches!(refused, Err(PrivacyError::NonFiniteValue { index: 1, .. })));
    }
}
