//! Finite values.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// A finite `f64`. NaN and ±∞ are refused at the edge because they cannot be
/// aggregated, compared or shown meaningfully; everything past parsing can
/// rely on finiteness.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
pub struct Value(f64);

impl Value {
    /// Wraps a finite number; NaN and infinities are an error.
    pub fn new(value: f64) -> Result<Self, ModelError> {
        if value.is_finite() { Ok(Self(value)) } else { Err(ModelError::NonFiniteValue(value)) }
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl From<Value> for f64 {
    fn from(value: Value) -> f64 {
        value.0
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finite_numbers_are_values() {
        assert_eq!(Value::new(1.5).unwrap().get(), 1.5);
        assert!(Value::new(f64::NAN).is_err());
        assert!(Value::new(f64::INFINITY).is_err());
        assert!(Value::new(f64::NEG_INFINITY).is_err());
    }
}
