//! Where a point came from: the tags other than `twin` (source, device,
//! drug, ...). Two devices reporting the same signal of the same twin are
//! two series because their provenance differs.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;
use crate::ids::truncate;

/// Longest canonical provenance text, in bytes. Provenance is part of every
/// series key, so it is kept short.
pub const MAX_PROVENANCE_BYTES: usize = 512;

/// A canonical, sorted set of `key=value` tags.
///
/// The canonical text joins tags sorted by key with `,`, escaping `\`, `,`
/// and `=` inside keys and values with `\`. Equal tag sets always have equal
/// text, so the text can be hashed, compared and stored as is. The empty set
/// (no tags) is the empty text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Provenance(Arc<str>);

impl Provenance {
    /// The empty tag set.
    pub fn none() -> Self {
        Self::default()
    }

    /// Builds the canonical set from tags in any order. A key given twice
    /// keeps its last value; the write formats refuse repeated tags and
    /// keys before they get here.
    pub fn from_tags<K, V>(tags: impl IntoIterator<Item = (K, V)>) -> Result<Self, ModelError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in tags {
            let (key, value) = (key.as_ref(), value.as_ref());
            check_part(key, "key")?;
            check_part(value, "value")?;
            match pairs.iter_mut().find(|(k, _)| k == key) {
                Some(pair) => pair.1 = value.to_owned(),
                None => pairs.push((key.to_owned(), value.to_owned())),
            }
        }
        pairs.sort();
        let mut text = String::new();
        for (i, (key, value)) in pairs.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            escape_into(key, &mut text);
            text.push('=');
            escape_into(value, &mut text);
        }
        if text.len() > MAX_PROVENANCE_BYTES {
            return Err(ModelError::InvalidProvenance {
                tag: truncate(&text),
                reason: "tags together are longer than 512 bytes",
            });
        }
        Ok(Self(crate::intern::intern(&text)))
    }

    /// Parses canonical text as produced by [`Provenance::as_str`]; used when
    /// reading keys back from disk or a query string.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let mut tags = Vec::new();
        for part in split_unescaped(text, ',') {
            if part.is_empty() {
                continue;
            }
            let mut kv = split_unescaped(part, '=');
            let (Some(key), Some(value), None) = (kv.next(), kv.next(), kv.next()) else {
                return Err(ModelError::InvalidProvenance {
                    tag: truncate(part),
                    reason: "expected key=value",
                });
            };
            tags.push((unescape(key), unescape(value)));
        }
        Self::from_tags(tags)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when no tags are set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags, sorted by key, unescaped.
    pub fn tags(&self) -> Vec<(String, String)> {
        split_unescaped(&self.0, ',')
            .filter(|part| !part.is_empty())
            .filter_map(|part| {
                let mut kv = split_unescaped(part, '=');
                Some((unescape(kv.next()?), unescape(kv.next()?)))
            })
            .collect()
    }

    /// The value of one tag, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        self.tags().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// True when every tag of `filter` is set here with the same value; the
    /// empty filter matches everything.
    pub fn matches(&self, filter: &Provenance) -> bool {
        let own = self.tags();
        filter.tags().iter().all(|tag| own.contains(tag))
    }
}

fn check_part(text: &str, what: &'static str) -> Result<(), ModelError> {
    let reason = if text.is_empty() {
        Some(if what == "key" { "tag key must not be empty" } else { "tag value must not be empty" })
    } else if text.chars().any(char::is_control) {
        Some("control characters are not allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ModelError::InvalidProvenance { tag: truncate(text), reason }),
        None => Ok(()),
    }
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits on `sep` where it is not escaped by a preceding `\`.
fn split_unescaped(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == sep {
                rest = Some(&s[i + c.len_utf8()..]);
                return Some(&s[..i]);
            }
        }
        rest = None;
        Some(s)
    })
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Provenance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Provenance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_are_sorted_and_canonical() {
        let a = Provenance::from_tags([("source", "garmin"), ("device", "watch")]).unwrap();
        let b = Provenance::from_tags([("device", "watch"), ("source", "garmin")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "device=watch,source=garmin");
    }

    #[test]
    fn repeated_key_keeps_last_value() {
        let p = Provenance::from_tags([("device", "a"), ("device", "b")]).unwrap();
        assert_eq!(p.as_str(), "device=b");
    }

    #[test]
    fn special_characters_are_escaped_and_recovered() {
        let p = Provenance::from_tags([("drug", "a,b=c\\d")]).unwrap();
        assert_eq!(p.as_str(), r"drug=a\,b\=c\\d");
        assert_eq!(p.get("drug").as_deref(), Some("a,b=c\\d"));
        assert_eq!(Provenance::parse(p.as_str()).unwrap(), p);
    }

    #[test]
    fn filter_matches_subsets() {
        let p = Provenance::from_tags([("device", "watch"), ("source", "garmin")]).unwrap();
        assert!(p.matches(&Provenance::none()));
        assert!(p.matches(&Provenance::from_tags([("device", "watch")]).unwrap()));
        assert!(!p.matches(&Provenance::from_tags([("device", "ring")]).unwrap()));
    }

    #[test]
    fn empty_and_control_characters_are_rejected() {
        assert!(Provenance::from_tags([("", "x")]).is_err());
        assert!(Provenance::from_tags([("k", "")]).is_err());
        assert!(Provenance::from_tags([("k", "a\nb")]).is_err());
    }

    proptest! {
        #[test]
        fn canonical_text_round_trips(tags in proptest::collection::vec(("[a-z,=\\\\ ]{1,8}", "[a-zA-Z0-9,=\\\\ é]{1,8}"), 0..5)) {
            let p = Provenance::from_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
            prop_assert_eq!(Provenance::parse(p.as_str()).unwrap(), p);
        }
    }
}
