//! Timestamps: signed nanoseconds since the Unix epoch, UTC.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Nanoseconds since 1970-01-01T00:00:00Z. `i64` covers 1677–2262, the
/// same range InfluxDB and Prometheus use.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// Nanoseconds per second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// Earliest representable instant.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// Latest representable instant.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// From whole seconds since the epoch; saturates outside the range.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// From milliseconds since the epoch; saturates outside the range.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
    }

    /// This instant moved by `nanos`, saturating at the ends of the range.
    pub const fn add_nanos(self, nanos: i64) -> Self {
        Self(self.0.saturating_add(nanos))
    }

    /// RFC 3339 text in UTC with as many fractional digits as needed
    /// (`2024-03-01T12:00:00Z`, `2024-03-01T12:00:00.5Z`).
    pub fn to_rfc3339(self) -> String {
        let mut text = String::with_capacity(30);
        self.write_rfc3339(&mut text);
        text
    }

    /// Appends the RFC 3339 text to `out`. Answers with thousands of rows
    /// format one timestamp per row, so this writes digits directly rather
    /// than through `format!`.
    pub fn write_rfc3339(self, out: &mut String) {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        let days = secs.div_euclid(86_400);
        let secs_of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // i64 nanoseconds span the years 1677–2262: always four digits.
        push_digits(out, year.unsigned_abs(), 4);
        out.push('-');
        push_digits(out, u64::from(month), 2);
        out.push('-');
        push_digits(out, u64::from(day), 2);
        out.push('T');
        push_digits(out, (secs_of_day / 3600) as u64, 2);
        out.push(':');
        push_digits(out, (secs_of_day / 60 % 60) as u64, 2);
        out.push(':');
        push_digits(out, (secs_of_day % 60) as u64, 2);
        if nanos != 0 {
            let mut fraction = nanos as u64;
            let mut width = 9;
            while fraction.is_multiple_of(10) {
                fraction /= 10;
                width -= 1;
            }
            out.push('.');
            push_digits(out, fraction, width);
        }
        out.push('Z');
    }

    /// A `serialize_with` helper for fields that users read: writes the
    /// RFC 3339 text instead of the nanosecond integer.
    pub fn serialize_rfc3339<S: serde::Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&ts.to_rfc3339())
    }

    /// Parses RFC 3339 (`2024-03-01T12:00:00Z`, `...T12:00:00.123+02:00`),
    /// or a bare integer of nanoseconds since the epoch.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(nanos) = text.parse::<i64>() {
            return Some(Self(nanos));
        }
        parse_rfc3339(text.trim()).map(Self)
    }
}

/// How many nanoseconds one unit of a wire timestamp is worth.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Nanoseconds, the line-protocol default.
    #[default]
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

impl Precision {
    /// Parses `ns`, `us`, `ms` or `s` (also `n`, `u`, `µ` as InfluxDB 1.x accepts).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        match text {
            "ns" | "n" => Ok(Self::Ns),
            "us" | "u" | "µ" | "µs" => Ok(Self::Us),
            "ms" => Ok(Self::Ms),
            "s" => Ok(Self::S),
            other => Err(ModelError::UnknownPrecision(other.to_owned())),
        }
    }

    /// Nanoseconds per unit.
    pub const fn nanos_per_unit(self) -> i64 {
        match self {
            Self::Ns => 1,
            Self::Us => 1_000,
            Self::Ms => 1_000_000,
            Self::S => NANOS_PER_SEC,
        }
    }

    /// Converts a wire value in this precision to a timestamp, failing
    /// rather than wrapping when it leaves the i64-nanosecond range.
    pub fn to_timestamp(self, value: i64) -> Result<Timestamp, ModelError> {
        value
            .checked_mul(self.nanos_per_unit())
            .map(Timestamp)
            .ok_or(ModelError::TimestampOutOfRange { value, unit: self.name() })
    }

    /// The unit's short name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ns => "ns",
            Self::Us => "us",
            Self::Ms => "ms",
            Self::S => "s",
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Appends `value` as exactly `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend(digits[..width].iter().map(|&d| char::from(d)));
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days` algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01, the inverse of
/// [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = frac[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (rest[1..3].parse::<i64>().ok()?, rest[4..6].parse::<i64>().ok()?);
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(Timestamp::from_nanos(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_secs(1_709_294_400).to_rfc3339(), "2024-03-01T12:00:00Z");
        assert_eq!(Timestamp::from_nanos(1_500_000_000).to_rfc3339(), "1970-01-01T00:00:01.5Z");
        assert_eq!(Timestamp::from_nanos(-1).to_rfc3339(), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn parses_rfc3339_with_offsets_and_integers() {
        assert_eq!(Timestamp::parse("2024-03-01T12:00:00Z"), Some(Timestamp::from_secs(1_709_294_400)));
        assert_eq!(Timestamp::parse("2024-03-01T14:00:00+02:00"), Some(Timestamp::from_secs(1_709_294_400)));
        assert_eq!(
            Timestamp::parse("2024-03-01T12:00:00.25Z"),
            Some(Timestamp::from_nanos(1_709_294_400_250_000_000))
        );
        assert_eq!(Timestamp::parse("42"), Some(Timestamp::from_nanos(42)));
        assert_eq!(Timestamp::parse("2024-13-01T00:00:00Z"), None);
        assert_eq!(Timestamp::parse("yesterday"), None);
    }

    #[test]
    fn precision_conversion_refuses_overflow() {
        assert_eq!(Precision::S.to_timestamp(2).unwrap(), Timestamp::from_nanos(2_000_000_000));
        assert!(Precision::S.to_timestamp(i64::MAX / 10).is_err());
        assert_eq!(Precision::parse("ms").unwrap(), Precision::Ms);
        assert!(Precision::parse("h").is_err());
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(nanos in -6_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            let ts = Timestamp::from_nanos(nanos);
            prop_assert_eq!(Timestamp::parse(&ts.to_rfc3339()), Some(ts));
        }
    }
}
