//! The catalog's twins in memory, packed: a million twins must fit beside
//! their live state in the engine's memory budget, so a twin costs its id
//! (the interned `TwinId`) and 24 bytes, not a full [`TwinRecord`] with a
//! second copy of the id, a model name allocated per twin and an empty
//! property map.
//!
//! A [`TwinRecord`] is built only when a caller asks for one; snapshots
//! serialise borrowed views in the record's exact JSON shape.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use doppel_model::{Timestamp, TwinId};
use serde::{Serialize, Serializer};

use crate::catalog::TwinRecord;

type Properties = serde_json::Map<String, serde_json::Value>;

/// One twin without its id: the model as an index into the table of
/// distinct model names, properties only when there are some.
#[derive(Clone, PartialEq, Debug)]
struct TwinEntry {
    created: Timestamp,
    properties: Option<Box<Properties>>,
    model: usize,
}

/// Twins by id, in id order (pages are ranges of it).
#[derive(Default, Clone, PartialEq, Debug)]
pub(crate) struct TwinEntries {
    twins: BTreeMap<TwinId, TwinEntry>,
    /// Each distinct model name once, in order of first use. Names are
    /// kept after their last twin is deleted: there are as many as models
    /// ever used, a handful in practice.
    models: Vec<Arc<str>>,
    model_index: HashMap<Arc<str>, usize>,
}

impl TwinEntries {
    /// Inserts or replaces `twin`.
    pub fn upsert(&mut self, twin: TwinRecord) {
        let model = self.model_index(&twin.model);
        let properties = (!twin.properties.is_empty()).then(|| Box::new(twin.properties));
        self.twins.insert(twin.id, TwinEntry { created: twin.created, properties, model });
    }

    fn model_index(&mut self, name: &str) -> usize {
        if let Some(&index) = self.model_index.get(name) {
            return index;
        }
        let name: Arc<str> = Arc::from(name);
        let index = self.models.len();
        self.models.push(name.clone());
        self.model_index.insert(name, index);
        index
    }

    /// Removes twin `id`; true when it was there.
    pub fn remove(&mut self, id: &TwinId) -> bool {
        self.twins.remove(id).is_some()
    }

    /// Whether twin `id` is there.
    pub fn contains(&self, id: &TwinId) -> bool {
        self.twins.contains_key(id)
    }

    /// Number of twins.
    pub fn len(&self) -> usize {
        self.twins.len()
    }

    /// Twin `id`'s record.
    pub fn get(&self, id: &TwinId) -> Option<TwinRecord> {
        let (id, entry) = self.twins.get_key_value(id)?;
        Some(self.view(id, entry).to_record())
    }

    /// Up to `limit` records with ids after `after`, in id order, only
    /// those of `model` when given.
    /// The record of `id`, borrowed.
    pub fn get_ref(&self, id: &TwinId) -> Option<TwinRecordRef<'_>> {
        let (id, entry) = self.twins.get_key_value(id)?;
        Some(self.view(id, entry))
    }

    pub fn page(&self, after: Option<&TwinId>, limit: usize, model: Option<&str>) -> Vec<TwinRecord> {
        let model = match model {
            Some(name) => match self.model_index.get(name) {
                Some(&index) => Some(index),
                None => return Vec::new(),
            },
            None => None,
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.twins
            .range::<TwinId, _>((lower, Bound::Unbounded))
            .filter(|(_, entry)| model.is_none_or(|m| entry.model == m))
            .take(limit)
            .map(|(id, entry)| self.view(id, entry).to_record())
            .collect()
    }

    /// Every twin, in id order, as borrowed records.
    pub fn iter(&self) -> impl Iterator<Item = TwinRecordRef<'_>> {
        self.twins.iter().map(|(id, entry)| self.view(id, entry))
    }

    fn view<'a>(&'a self, id: &'a TwinId, entry: &'a TwinEntry) -> TwinRecordRef<'a> {
        TwinRecordRef {
            id,
            model: &self.models[entry.model],
            properties: PropertiesRef(entry.properties.as_deref()),
            created: entry.created,
        }
    }
}

/// A twin record borrowed from the catalog; serialises exactly as
/// [`TwinRecord`] does, so snapshots need no owned copy of every twin.
#[derive(Serialize, Clone, Copy)]
pub(crate) struct TwinRecordRef<'a> {
    pub id: &'a TwinId,
    pub model: &'a str,
    pub properties: PropertiesRef<'a>,
    pub created: Timestamp,
}

impl TwinRecordRef<'_> {
    /// An owned copy, for callers outside the catalog.
    pub fn to_record(self) -> TwinRecord {
        TwinRecord {
            id: self.id.clone(),
            model: self.model.to_owned(),
            properties: self.properties.0.cloned().unwrap_or_default(),
            created: self.created,
        }
    }
}

/// Properties that may be absent, serialised as an empty map then.
#[derive(Clone, Copy)]
pub(crate) struct PropertiesRef<'a>(Option<&'a Properties>);

impl Serialize for PropertiesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(properties) => properties.serialize(serializer),
            None => serializer.collect_map(std::iter::empty::<(&str, &str)>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, model: &str, properties: serde_json::Value) -> TwinRecord {
        let serde_json::Value::Object(properties) = properties else {
            panic!("properties must be an object")
        };
        TwinRecord {
            id: TwinId::new(id).unwrap(),
            model: model.into(),
            properties,
            created: Timestamp::from_secs(7),
        }
    }

    #[test]
    fn records_come_back_as_they_were_put() {
        let mut entries = TwinEntries::default();
        let alice = record("alice", "person", serde_json::json!({"birth_year": 1980}));
        let bob = record("bob", "person", serde_json::json!({}));
        entries.upsert(alice.clone());
        entries.upsert(bob.clone());
        assert_eq!(entries.get(&alice.id), Some(alice));
        assert_eq!(entries.get(&bob.id), Some(bob));
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn borrowed_records_serialise_like_owned_ones() {
        let mut entries = TwinEntries::default();
        let with = record("a", "person", serde_json::json!({"goal": "10k steps"}));
        let without = record("b", "pump", serde_json::json!({}));
        entries.upsert(with.clone());
        entries.upsert(without.clone());
        let borrowed: Vec<String> = entries.iter().map(|r| serde_json::to_string(&r).unwrap()).collect();
        let owned: Vec<String> = [with, without].iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        assert_eq!(borrowed, owned);
    }

    #[test]
    fn pages_follow_id_order_and_filter_by_model() {
        let mut entries = TwinEntries::default();
        for (id, model) in [("d", "person"), ("a", "person"), ("c", "pump"), ("b", "person")] {
            entries.upsert(record(id, model, serde_json::json!({})));
        }
        let ids = |page: Vec<TwinRecord>| page.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(entries.page(None, 10, None)), ["a", "b", "c", "d"]);
        assert_eq!(ids(entries.page(Some(&TwinId::new("a").unwrap()), 2, Some("person"))), ["b", "d"]);
        assert_eq!(ids(entries.page(None, 10, Some("pump"))), ["c"]);
        assert!(entries.page(None, 10, Some("unknown")).is_empty());
    }

    #[test]
    fn an_upsert_replaces_model_and_properties() {
        let mut entries = TwinEntries::default();
        entries.upsert(record("a", "person", serde_json::json!({"x": 1})));
        let replaced = record("a", "pump", serde_json::json!({}));
        entries.upsert(replaced.clone());
        assert_eq!(entries.get(&replaced.id), Some(replaced));
        assert!(entries.page(None, 10, Some("person")).is_empty());
        assert!(entries.remove(&TwinId::new("a").unwrap()));
        assert!(!entries.contains(&TwinId::new("a").unwrap()));
    }
}
