//! Durations written the way people write them: `90s`, `15m`, `1h`, `7d`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// A positive span of time in nanoseconds, parsed from `<integer><unit>`
/// with unit `ns`, `us`, `ms`, `s`, `m`, `h`, `d` or `w`. Used for query
/// buckets (`every=1h`), live windows, cadences and retention.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(i64);

impl Span {
    /// From nanoseconds; `None` unless positive.
    pub const fn from_nanos(nanos: i64) -> Option<Self> {
        if nanos > 0 { Some(Self(nanos)) } else { None }
    }

    /// Whole seconds; `None` unless positive.
    pub const fn from_secs(secs: i64) -> Option<Self> {
        Self::from_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// The span in nanoseconds, always > 0.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
}

const UNITS: [(&str, i64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

impl FromStr for Span {
    type Err = ModelError;

    fn from_str(text: &str) -> Result<Self, ModelError> {
        let invalid = || ModelError::InvalidDuration(crate::ids::truncate(text));
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let number: i64 = number.parse().map_err(|_| invalid())?;
        let (_, scale) = UNITS.iter().find(|(name, _)| *name == unit).ok_or_else(invalid)?;
        number.checked_mul(*scale).and_then(Self::from_nanos).ok_or_else(invalid)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, scale) =
            UNITS.iter().rev().find(|(_, scale)| self.0 % scale == 0).copied().unwrap_or(("ns", 1));
        write!(f, "{}{name}", self.0 / scale)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!("90s".parse::<Span>().unwrap().as_nanos(), 90_000_000_000);
        assert_eq!("15m".parse::<Span>().unwrap().as_nanos(), 900_000_000_000);
        assert_eq!("1h".parse::<Span>().unwrap().as_nanos(), 3_600_000_000_000);
        assert_eq!("7d".parse::<Span>().unwrap(), "1w".parse::<Span>().unwrap());
        assert_eq!("250ms".parse::<Span>().unwrap().as_nanos(), 250_000_000);
    }

    #[test]
    fn rejects_zero_negative_unitless_and_overflowing_spans() {
        for bad in ["0s", "-1h", "10", "h", "1.5h", "1y", "99999999999w", ""] {
            assert!(bad.parse::<Span>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!("60m".parse::<Span>().unwrap().to_string(), "1h");
        assert_eq!("90m".parse::<Span>().unwrap().to_string(), "90m");
        assert_eq!("14d".parse::<Span>().unwrap().to_string(), "2w");
    }
}
