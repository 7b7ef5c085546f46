//! Seeded random streams and the few distributions the generator needs.
//!
//! Every random decision draws from a stream keyed by (population seed,
//! person index, day, purpose). Keying by day makes each day's plan
//! independent of how much randomness earlier days consumed, so the same
//! seed gives the same people whatever the caller asks for and in whatever
//! steps it advances.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; part of the stream's key so two
/// purposes on the same day never share draws.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    /// Profiles and planted episodes.
    Population,
    /// One night's timing, stages and nightly measurements.
    Night,
    /// One day's activity, meals and logs.
    Day,
    /// One night's measurements.
    Measure,
    /// One day's device non-wear.
    Wear,
    /// One day's meals, insulin and CGM sensor.
    Glucose,
    /// Minute-level noise (heart rate, glucose sensor).
    Noise,
}

/// SplitMix64's finaliser (Steele, Lea and Flood 2014): a bijective mix
/// that turns structured keys into well-spread seeds.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream for one (seed, person, day, purpose).
pub(crate) fn stream(seed: u64, person: u64, day: i64, purpose: Purpose) -> ChaCha8Rng {
    let key = mix64(mix64(mix64(seed) ^ person) ^ day as u64) ^ (purpose as u64 + 1);
    ChaCha8Rng::seed_from_u64(mix64(key))
}

/// Draws used throughout the generator, on any `rand` generator.
pub(crate) trait Draw: Rng {
    /// Uniform in `[low, high)`; `low` when the range is empty.
    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        if high > low { low + (high - low) * self.random::<f64>() } else { low }
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.random::<f64>() < p
    }

    /// Normal by Marsaglia's polar method: no trigonometry, one logarithm,
    /// about 1.27 pairs of uniforms per draw (the second normal of the pair
    /// is discarded; speed matters less than a stateless trait).
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        loop {
            let u = 2.0 * self.random::<f64>() - 1.0;
            let v = 2.0 * self.random::<f64>() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return mean + sd * u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }

    /// Normal, clamped to `[low, high]` so a rare tail draw cannot produce an
    /// implausible person.
    fn normal_within(&mut self, mean: f64, sd: f64, low: f64, high: f64) -> f64 {
        self.normal(mean, sd).clamp(low, high)
    }

    /// A multiplicative factor with median 1 and log-sd `sd`.
    fn log_normal_factor(&mut self, sd: f64) -> f64 {
        self.normal(0.0, sd).exp()
    }

    /// Uniform integer in `[low, high]`.
    fn int_between(&mut self, low: i64, high: i64) -> i64 {
        if high > low { self.random_range(low..=high) } else { low }
    }

    /// Picks an index by weight; the last index when weights are degenerate.
    fn weighted_index(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut target = self.random::<f64>() * total;
        for (i, weight) in weights.iter().enumerate() {
            if target < *weight {
                return i;
            }
            target -= weight;
        }
        weights.len().saturating_sub(1)
    }
}

impl<R: Rng + ?Sized> Draw for R {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_every_key_part_and_repeat_for_equal_keys() {
        let first = |seed, person, day, purpose| stream(seed, person, day, purpose).random::<u64>();
        let base = first(1, 2, 3, Purpose::Day);
        assert_eq!(base, first(1, 2, 3, Purpose::Day));
        assert_ne!(base, first(2, 2, 3, Purpose::Day));
        assert_ne!(base, first(1, 3, 3, Purpose::Day));
        assert_ne!(base, first(1, 2, 4, Purpose::Day));
        assert_ne!(base, first(1, 2, 3, Purpose::Night));
    }

    #[test]
    fn normal_draws_have_the_requested_moments() {
        let mut rng = stream(7, 0, 0, Purpose::Noise);
        let draws: Vec<f64> = (0..20_000).map(|_| rng.normal(10.0, 2.0)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((mean - 10.0).abs() < 0.06, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.06, "sd {}", var.sqrt());
    }

    #[test]
    fn weighted_index_respects_weights() {
        let mut rng = stream(7, 0, 0, Purpose::Noise);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[rng.weighted_index(&[1.0, 0.0, 3.0])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[2] as f64 / counts[0] as f64 - 3.0).abs() < 0.3, "{counts:?}");
    }
}
