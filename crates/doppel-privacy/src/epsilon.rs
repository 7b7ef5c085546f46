//! ε, the privacy loss a release may cause, counted exactly.

use std::fmt;

use crate::PrivacyError;

/// Millionths of ε per unit: budgets are counted in whole millionths, so
/// that ten charges of 0.1 spend exactly 1 and never refuse the last one
/// by a rounding error.
const MICROS_PER_UNIT: f64 = MICROS_PER_UNIT_INT as f64;

/// The largest ε one request or one budget may name. Beyond a few units
/// the noise protects little; a million is a bound against typing errors
/// and overflow, not a recommendation.
pub const MAX_EPSILON: f64 = 1_000_000.0;

/// Each analyst's total ε when nothing else is configured: for example
/// five answers at ε = 1, or fifty at ε = 0.1. Small totals are the point:
/// the budget never renews.
pub const DEFAULT_EPSILON_BUDGET: Epsilon = Epsilon { micros: 5 * MICROS_PER_UNIT_INT };

/// [`MICROS_PER_UNIT`] as an integer.
const MICROS_PER_UNIT_INT: u64 = 1_000_000;

/// A positive privacy loss in whole millionths: what one release costs,
/// and what a budget holds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Epsilon {
    micros: u64,
}

impl Epsilon {
    /// `value` rounded to a millionth; refused unless it is finite, at
    /// least one millionth and at most [`MAX_EPSILON`].
    pub fn new(value: f64) -> Result<Self, PrivacyError> {
        let invalid = |reason: &str| PrivacyError::InvalidEpsilon { value, reason: reason.to_owned() };
        if !value.is_finite() {
            return Err(invalid("it must be a finite number"));
        }
        if value > MAX_EPSILON {
            return Err(invalid("it may be at most 1000000"));
        }
        let micros = (value * MICROS_PER_UNIT).round();
        if micros < 1.0 {
            return Err(invalid("it must be at least 0.000001"));
        }
        // In range: 1 ≤ micros ≤ 10^12.
        Ok(Epsilon { micros: micros as u64 })
    }

    /// Whole millionths.
    pub(crate) fn micros(self) -> u64 {
        self.micros
    }

    /// The value, for the noise's scale and for answers.
    pub fn get(self) -> f64 {
        micros_to_f64(self.micros)
    }
}

/// Millionths as a number of units.
pub(crate) fn micros_to_f64(micros: u64) -> f64 {
    micros as f64 / MICROS_PER_UNIT
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_rounds_to_millionths_and_refuses_what_is_not_positive_and_finite() {
        assert_eq!(Epsilon::new(0.1).unwrap().micros(), 100_000);
        assert_eq!(Epsilon::new(0.000_000_6).unwrap().micros(), 1);
        assert_eq!(Epsilon::new(2.5).unwrap().get(), 2.5);
        for bad in [0.0, -1.0, 0.000_000_4, f64::NAN, f64::INFINITY, 2e6] {
            assert!(matches!(Epsilon::new(bad), Err(PrivacyError::InvalidEpsilon { .. })), "{bad}");
        }
    }
}
