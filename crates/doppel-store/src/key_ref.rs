//! A series key borrowed from bytes: the three texts of a [`SeriesKey`] as
//! an index page holds them.
//!
//! Looking a key up in a page, walking a segment's keys to count them, or
//! finding where a twin's keys start compares and hashes keys by their
//! texts; building a `SeriesKey` for each would intern and validate three
//! names per entry. A `KeyRef` orders exactly like the `SeriesKey` with the
//! same texts (twin, then signal, then provenance, each by bytes), so the
//! two can be mixed in one sorted sequence.

use doppel_model::{ModelError, Provenance, SeriesKey, SignalName, TwinId};

/// The texts of a series key, in `SeriesKey`'s field and sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct KeyRef<'a> {
    pub twin: &'a str,
    pub signal: &'a str,
    pub provenance: &'a str,
}

impl KeyRef<'_> {
    /// The owned key, its names validated (and interned).
    pub(crate) fn to_key(self) -> Result<SeriesKey, ModelError> {
        Ok(SeriesKey {
            twin: TwinId::new(self.twin)?,
            signal: SignalName::new(self.signal)?,
            provenance: Provenance::parse(self.provenance)?,
        })
    }
}

impl<'a> From<&'a SeriesKey> for KeyRef<'a> {
    fn from(key: &'a SeriesKey) -> Self {
        Self { twin: key.twin.as_str(), signal: key.signal.as_str(), provenance: key.provenance.as_str() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series_key(twin: &str, signal: &str, device: &str) -> SeriesKey {
        let provenance = if device.is_empty() {
            Provenance::none()
        } else {
            Provenance::from_tags([("device", device)]).unwrap()
        };
        SeriesKey { twin: TwinId::new(twin).unwrap(), signal: SignalName::new(signal).unwrap(), provenance }
    }

    proptest! {
        #[test]
        fn borrowed_keys_sort_like_series_keys(
            a in ("[a-c]{1,3}", "[A-Za-c_][a-c]{0,2}", "[a-c]{0,2}"),
            b in ("[a-c]{1,3}", "[A-Za-c_][a-c]{0,2}", "[a-c]{0,2}"),
        ) {
            let (a, b) = (series_key(&a.0, &a.1, &a.2), series_key(&b.0, &b.1, &b.2));
            prop_assert_eq!(KeyRef::from(&a).cmp(&KeyRef::from(&b)), a.cmp(&b));
            prop_assert_eq!(KeyRef::from(&a).to_key().unwrap(), a);
        }
    }
}
