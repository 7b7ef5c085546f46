//! Refusing JSON objects that name a key twice.
//!
//! JSON readers disagree on which of two equal keys counts (serde takes the
//! last into a map, others the first), so a proxy or a policy check in
//! front of Doppel may judge a body by the value Doppel ignores. Bodies
//! that change data are therefore checked whole, every nesting level, and
//! a repeated key is refused by name and position.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Checks that no object in the JSON text `body` names a key twice. The
/// error says which key and where (line and column). Check a body after
/// it parsed, so that malformed JSON is reported by the parser that knows
/// what it expected.
pub fn check_unique_keys(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Unique.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// Walks one value, checking the keys of every object in it.
#[derive(Clone, Copy)]
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                // The value is read first so that the position reported is
                // the repeated member's end, inside the object at fault.
                map.next_value::<IgnoredAny>()?;
                return Err(de::Error::custom(format!("duplicate key {key:?} in a JSON object")));
            }
            map.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_repeated_key_at_any_depth_is_named_with_its_position() {
        let error = check_unique_keys(br#"{"twin": "a", "twin": "b"}"#).unwrap_err().to_string();
        assert!(error.contains("duplicate key \"twin\"") && error.contains("line 1"), "{error}");
        let nested = b"[{\"source\": {\"device\": \"w\",\n \"device\": \"x\"}}]";
        let error = check_unique_keys(nested).unwrap_err().to_string();
        assert!(error.contains("duplicate key \"device\"") && error.contains("line 2"), "{error}");
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        check_unique_keys(br#"[{"a": 1, "b": {"a": [1, {"a": null}]}}, {"a": true}]"#).unwrap();
        check_unique_keys(br#"{"a\u0062": 1, "ab ": 2}"#).unwrap();
        assert!(check_unique_keys(br#"{"ab": 1, "a\u0062": 2}"#).is_err(), "keys compare unescaped");
    }

    proptest! {
        #[test]
        fn any_text_is_answered_without_panicking(text in ".{0,80}") {
            let _ = check_unique_keys(text.as_bytes());
        }
    }
}
