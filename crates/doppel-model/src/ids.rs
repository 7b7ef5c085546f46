//! Names of twins and signals.
//!
//! Both are cheap to clone (`Arc<str>`) because every point of a batch
//! carries them and every live-state entry keys on them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// Longest twin id or signal name, in bytes: long enough for UUIDs and
/// dotted signal paths, short enough to keep WAL records and keys small.
pub const MAX_NAME_BYTES: usize = 128;

/// The id of a twin: 1–128 bytes of URL-unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), so it can sit in a path segment unescaped.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TwinId(Arc<str>);

impl TwinId {
    /// Parses a twin id, naming what is wrong with it when it is not one.
    pub fn new(id: &str) -> Result<Self, ModelError> {
        let invalid = |reason| ModelError::InvalidTwinId { id: truncate(id), reason };
        if id.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if id.len() > MAX_NAME_BYTES {
            return Err(invalid("longer than 128 bytes"));
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            return Err(invalid("only A-Z, a-z, 0-9, '-', '.', '_' and '~' are allowed"));
        }
        if id == "." || id == ".." {
            return Err(invalid("'.' and '..' are path segments, not ids"));
        }
        Ok(Self(crate::intern::intern(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a signal: 1–128 bytes of `A-Z a-z 0-9 _ . : -`, starting with
/// a letter or `_`. Dots name sub-signals (`blood_pressure.systolic`); the
/// set is wide enough for the measurement and field names Telegraf and
/// Influx clients send.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalName(Arc<str>);

impl SignalName {
    /// Parses a signal name, naming what is wrong with it when it is not one.
    pub fn new(name: &str) -> Result<Self, ModelError> {
        let invalid = |reason| ModelError::InvalidSignalName { name: truncate(name), reason };
        let Some(first) = name.bytes().next() else {
            return Err(invalid("must not be empty"));
        };
        if name.len() > MAX_NAME_BYTES {
            return Err(invalid("longer than 128 bytes"));
        }
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return Err(invalid("must start with a letter or '_'"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')) {
            return Err(invalid("only A-Z, a-z, 0-9, '_', '.', ':' and '-' are allowed"));
        }
        Ok(Self(crate::intern::intern(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keeps error messages bounded when the offending input is huge.
pub(crate) fn truncate(s: &str) -> String {
    const SHOWN: usize = 64;
    if s.len() <= SHOWN {
        return s.to_owned();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

macro_rules! name_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_impls!(TwinId);
name_impls!(SignalName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_ids_accept_url_safe_text_only() {
        assert!(TwinId::new("alice-01_x.y~z").is_ok());
        assert!(TwinId::new("550e8400-e29b-41d4-a716-446655440000").is_ok());
        for bad in ["", "a b", "a/b", "é", "..", ".", &"x".repeat(129)] {
            assert!(TwinId::new(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn signal_names_accept_dotted_paths_and_reject_leading_digits() {
        assert!(SignalName::new("blood_pressure.systolic").is_ok());
        assert!(SignalName::new("_internal:x-y").is_ok());
        for bad in ["", "1hr", "heart rate", "hr=1", ".x"] {
            assert!(SignalName::new(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn error_names_the_offending_input() {
        let err = TwinId::new("a b").unwrap_err().to_string();
        assert!(err.contains("\"a b\""), "{err}");
    }

    #[test]
    fn names_round_trip_through_json() {
        let id = TwinId::new("bob").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"bob\"");
        assert_eq!(serde_json::from_str::<TwinId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TwinId>("\"a/b\"").is_err());
    }
}
