//! Sampling the Laplace distribution, the noise of the Laplace mechanism.
//!
//! Dwork, McSherry, Nissim and Smith (2006), "Calibrating noise to
//! sensitivity in private data analysis", show that adding noise drawn
//! from Lap(Δ/ε) — density exp(-|x|/b) / 2b with b = Δ/ε — to a statistic
//! whose value one person can change by at most Δ makes its release
//! ε-differentially private (Dwork and Roth 2014, "The Algorithmic
//! Foundations of Differential Privacy", theorem 3.6).
//!
//! A Laplace variate is an exponential one with a random sign; the
//! exponential is drawn by inversion, -b·ln(U) with U uniform on (0, 1].
//!
//! **Floating-point caveat.** The proof is about real numbers. Mironov
//! (2012, "On significance of the least significant bits for differential
//! privacy") showed that with IEEE doubles the set of values a noisy
//! answer can take depends on the true answer, so an attacker who sees the
//! exact bits of many releases can sometimes tell neighbouring inputs
//! apart. This sampler does not implement his snapping mechanism; the
//! guarantee it gives is the textbook one, up to that caveat (see
//! `docs/security.md`).

use rand::Rng;

/// One draw from the Laplace distribution centred on 0 with scale `scale`
/// (b = Δ/ε): mean 0, mean absolute value b, variance 2b². `rng` should
/// be cryptographically secure (the server uses `rand::rng()`, ChaCha
/// reseeded from the operating system), since predictable noise protects
/// nothing; tests pass a seeded one.
pub fn sample_laplace<R: Rng + ?Sized>(rng: &mut R, scale: f64) -> f64 {
    // `random::<f64>()` is uniform on [0, 1); one minus it on (0, 1], so
    // the logarithm is finite.
    let uniform = 1.0 - rng.random::<f64>();
    let magnitude = -scale * uniform.ln();
    if rng.random::<bool>() { magnitude } else { -magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const SAMPLES: usize = 200_000;

    fn draws(scale: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..SAMPLES).map(|_| sample_laplace(&mut rng, scale)).collect()
    }

    #[test]
    fn the_noise_has_the_scale_of_sensitivity_over_epsilon() {
        // Δ = 4, ε = 0.5: b = 8. E|X| = b and Var X = 2b²; with 200,000
        // draws their standard errors are under 0.3 % and 0.7 % of the
        // true values, so 2 % and 4 % tolerances fail only for a wrong b.
        let (sensitivity, epsilon) = (4.0, 0.5);
        let scale = sensitivity / epsilon;
        let samples = draws(scale, 1);
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let mean_absolute = samples.iter().map(|x| x.abs()).sum::<f64>() / n;
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.05 * scale, "centred on 0: {mean}");
        assert!((mean_absolute / scale - 1.0).abs() < 0.02, "E|X| = {mean_absolute}, b = {scale}");
        assert!((variance / (2.0 * scale * scale) - 1.0).abs() < 0.04, "Var = {variance}");
    }

    #[test]
    fn the_noise_follows_the_laplace_distribution_function() {
        // P(|X| > t) = exp(-t/b); checked at one, two and three scales.
        let scale = 2.0;
        let samples = draws(scale, 2);
        for multiple in [1.0, 2.0, 3.0] {
            let beyond = samples.iter().filter(|x| x.abs() > multiple * scale).count() as f64;
            let expected = (-multiple).exp();
            let observed = beyond / samples.len() as f64;
            assert!((observed - expected).abs() < 0.01, "P(|X| > {multiple}b) = {observed}, not {expected}");
        }
        let negative = samples.iter().filter(|x| **x < 0.0).count() as f64 / samples.len() as f64;
        assert!((negative - 0.5).abs() < 0.01, "symmetric: {negative}");
    }

    #[test]
    fn the_noise_is_always_finite() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!((0..10_000).all(|_| sample_laplace(&mut rng, 1e300).is_finite()));
    }
}
