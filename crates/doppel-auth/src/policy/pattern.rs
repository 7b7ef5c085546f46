//! Signal patterns: which signals of a twin a grant covers.

use std::fmt;
use std::sync::Arc;

use doppel_model::{MAX_NAME_BYTES, SignalName};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AuthError;

/// A signal name in which `*` stands for any run of characters, empty
/// included: `heart_rate`, `glucose*`, `blood_pressure.*`, `*`. Only `*` is
/// special, so a pattern reads the way a clinician would write it and
/// matching it costs at most `pattern × name` steps, both at most 128 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalPattern(Arc<str>);

impl SignalPattern {
    /// Parses a pattern: the characters of a signal name (`A-Z a-z 0-9 _ . : -`)
    /// and `*`, 1–128 bytes, starting with a letter, `_` or `*`.
    pub fn new(pattern: &str) -> Result<Self, AuthError> {
        let invalid =
            |reason| AuthError::InvalidSignalPattern { pattern: crate::error::echo(pattern), reason };
        let Some(first) = pattern.bytes().next() else {
            return Err(invalid("must not be empty"));
        };
        if pattern.len() > MAX_NAME_BYTES {
            return Err(invalid("longer than 128 bytes"));
        }
        if !(first.is_ascii_alphabetic() || first == b'_' || first == b'*') {
            return Err(invalid("must start with a letter, '_' or '*'"));
        }
        if !pattern
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-' | b'*'))
        {
            return Err(invalid("only signal-name characters and '*' are allowed"));
        }
        Ok(SignalPattern(Arc::from(pattern)))
    }

    /// The pattern covering every signal.
    pub fn any() -> Self {
        SignalPattern(Arc::from("*"))
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `signal` matches.
    pub fn matches(&self, signal: &SignalName) -> bool {
        glob_match(self.0.as_bytes(), signal.as_str().as_bytes())
    }

    /// Whether this pattern matches every signal.
    pub fn matches_everything(&self) -> bool {
        self.0.bytes().all(|b| b == b'*')
    }

    /// Whether every signal `other` matches is matched by this pattern too.
    /// Conservative: it may answer `false` for an exotic pair that does
    /// nest, never `true` for one that does not. It is exact for what people
    /// write: `*`, equal patterns, a literal name, and a prefix (`glucose*`
    /// covers `glucose_cgm*`).
    pub fn covers(&self, other: &SignalPattern) -> bool {
        if self.matches_everything() || self == other {
            return true;
        }
        if !other.0.contains('*') {
            return glob_match(self.0.as_bytes(), other.0.as_bytes());
        }
        match self.0.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => other.0.starts_with(prefix),
            _ => false,
        }
    }
}

/// Wildcard matching with `*` only: walk both strings, and on a mismatch
/// after a `*` let that star swallow one more byte of the name. Linear in
/// the common case, `pattern × name` at worst.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, swallowed)) => {
                    last_star = Some((star, swallowed + 1));
                    p = star + 1;
                    n = swallowed + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

impl fmt::Display for SignalPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SignalPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for SignalPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SignalPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signal(name: &str) -> SignalName {
        SignalName::new(name).unwrap()
    }

    fn pattern(text: &str) -> SignalPattern {
        SignalPattern::new(text).unwrap()
    }

    #[test]
    fn patterns_match_literally_by_prefix_and_everything() {
        assert!(pattern("heart_rate").matches(&signal("heart_rate")));
        assert!(!pattern("heart_rate").matches(&signal("heart_rate_variability")));
        assert!(pattern("glucose*").matches(&signal("glucose")));
        assert!(pattern("glucose*").matches(&signal("glucose_cgm")));
        assert!(!pattern("glucose*").matches(&signal("blood_glucose")));
        assert!(pattern("*").matches(&signal("anything.at:all")));
        assert!(pattern("blood_pressure.*").matches(&signal("blood_pressure.systolic")));
        assert!(pattern("*_rate").matches(&signal("heart_rate")));
        assert!(pattern("h*t*e").matches(&signal("heart_rate")));
    }

    #[test]
    fn patterns_refuse_other_characters() {
        for bad in ["", "heart rate", "glucose?", "[a-z]", "1x", &"x".repeat(129)] {
            assert!(SignalPattern::new(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn coverage_is_exact_for_prefixes_and_literals() {
        assert!(pattern("*").covers(&pattern("glucose*")));
        assert!(pattern("glucose*").covers(&pattern("glucose_cgm*")));
        assert!(pattern("glucose*").covers(&pattern("glucose_cgm")));
        assert!(!pattern("glucose_cgm*").covers(&pattern("glucose*")));
        assert!(!pattern("heart_rate").covers(&pattern("heart*")));
        assert!(!pattern("glucose*").covers(&pattern("*")));
    }

    /// The obvious recursive definition, to check the loop against.
    fn reference_match(pattern: &[u8], name: &[u8]) -> bool {
        match (pattern.first(), name.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                reference_match(&pattern[1..], name)
                    || (!name.is_empty() && reference_match(pattern, &name[1..]))
            }
            (Some(p), Some(n)) if p == n => reference_match(&pattern[1..], &name[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn matching_agrees_with_the_recursive_definition(pattern in "[ab*]{1,8}", name in "[ab]{1,10}") {
            let expected = reference_match(pattern.as_bytes(), name.as_bytes());
            prop_assert_eq!(SignalPattern::new(&pattern).unwrap().matches(&signal(&name)), expected);
        }

        #[test]
        fn a_covering_pattern_matches_everything_the_covered_one_does(
            outer in "[ab*]{1,5}",
            inner in "[ab*]{1,5}",
            name in "[ab]{1,8}",
        ) {
            let (outer, inner) = (pattern(&outer), pattern(&inner));
            if outer.covers(&inner) && inner.matches(&signal(&name)) {
                prop_assert!(outer.matches(&signal(&name)));
            }
        }
    }
}
