//! A maintained count of distinct series across the heads and segments, so
//! that [`crate::Store::stats`] (read on every `/metrics` scrape) costs
//! O(1) instead of building a set of millions of keys.
//!
//! Each container that holds a series (the active head, the head being
//! flushed, each segment) holds one reference to its key; the count is the
//! number of keys with at least one reference. Containers acquire their
//! keys when they gain a series and release them when they lose it (a
//! purge, a retired head, a segment replaced by compaction).
//!
//! # Size
//!
//! The registry holds fingerprints, not keys: one `u64` slot per series in
//! a `hashbrown::HashTable`, the high 56 bits of the key's 64-bit hash
//! (its fingerprint) beside an 8-bit reference count. With the table's one
//! control byte per slot and its load factor (between 7/16 just after it
//! grows and 7/8 just before), that is 10–21 bytes per series, about 14 on
//! average. Two keys would have to agree in those bits and in the four
//! bits that pick their shard (60 bits) to be counted as one: at ten
//! million series, about one chance in ten thousand that any pair does.
//!
//! # Reference counts
//!
//! A key has one holder per container, and there is no bound on the number
//! of segments (compaction may be off or failing), so the 8-bit count can
//! fill up. A full slot keeps its further references in a per-shard spill
//! map, empty in any ordinary store, so no count ever wraps or saturates.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;
use parking_lot::Mutex;

use crate::key_ref::KeyRef;

/// Number of registry shards: enough that writers creating new series and
/// a flush registering a segment rarely wait on one another.
const SHARDS: usize = 16;
/// Low bits of a slot that hold its reference count.
const REF_BITS: u32 = 8;
const REF_MASK: u64 = (1 << REF_BITS) - 1;

/// One shard's slots, and references past a full slot's count.
#[derive(Default)]
struct Shard {
    slots: HashTable<u64>,
    spilled: HashMap<u64, u64>,
}

/// Reference counts of series keys, sharded by key hash.
pub(crate) struct SeriesRegistry {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    distinct: AtomicUsize,
}

impl Default for SeriesRegistry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            distinct: AtomicUsize::new(0),
        }
    }
}

/// The table's hash of a slot, from its fingerprint alone (the count
/// changes). The fingerprint's low bits are zero, where the table picks a
/// bucket, so it is shifted down and multiplied by an odd constant (2^64
/// over the golden ratio) to spread it over all 64 bits again.
fn slot_hash(slot: u64) -> u64 {
    (slot >> REF_BITS).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl SeriesRegistry {
    /// The key's fingerprint (its hash with the count bits cleared) and
    /// shard (picked by hash bits the fingerprint does not keep).
    fn slot(&self, key: KeyRef<'_>) -> (u64, &Mutex<Shard>) {
        let hash = self.hasher.hash_one(key);
        (hash & !REF_MASK, &self.shards[(hash as usize) % SHARDS])
    }

    /// A container gained `key`.
    pub(crate) fn acquire<'a>(&self, key: impl Into<KeyRef<'a>>) {
        let (fingerprint, shard) = self.slot(key.into());
        let mut guard = shard.lock();
        let shard = &mut *guard;
        let hash = slot_hash(fingerprint);
        match shard.slots.find_mut(hash, |&slot| slot & !REF_MASK == fingerprint) {
            Some(slot) if *slot & REF_MASK < REF_MASK => *slot += 1,
            Some(_) => *shard.spilled.entry(fingerprint).or_insert(0) += 1,
            None => {
                shard.slots.insert_unique(hash, fingerprint | 1, |&slot| slot_hash(slot));
                self.distinct.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A container lost `key`. Releasing a key nobody holds is ignored
    /// (callers release only what they acquired; this keeps a bug from
    /// wrapping the count).
    pub(crate) fn release<'a>(&self, key: impl Into<KeyRef<'a>>) {
        let (fingerprint, shard) = self.slot(key.into());
        let mut guard = shard.lock();
        let shard = &mut *guard;
        if let Some(spilled) = shard.spilled.get_mut(&fingerprint) {
            *spilled -= 1;
            if *spilled == 0 {
                shard.spilled.remove(&fingerprint);
            }
            return;
        }
        let Ok(mut entry) =
            shard.slots.find_entry(slot_hash(fingerprint), |&slot| slot & !REF_MASK == fingerprint)
        else {
            return;
        };
        if *entry.get() & REF_MASK > 1 {
            *entry.get_mut() -= 1;
        } else {
            entry.remove();
            self.distinct.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether some container holds `key` (or, once in a great many
    /// series, a key sharing its fingerprint).
    pub(crate) fn holds<'a>(&self, key: impl Into<KeyRef<'a>>) -> bool {
        let (fingerprint, shard) = self.slot(key.into());
        shard.lock().slots.find(slot_hash(fingerprint), |&slot| slot & !REF_MASK == fingerprint).is_some()
    }

    /// Distinct keys held by at least one container.
    pub(crate) fn count(&self) -> usize {
        self.distinct.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{Provenance, SeriesKey, SignalName, TwinId};

    fn key(twin: &str) -> SeriesKey {
        SeriesKey {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new("hr").unwrap(),
            provenance: Provenance::none(),
        }
    }

    #[test]
    fn a_key_counts_once_until_its_last_holder_releases_it() {
        let registry = SeriesRegistry::default();
        registry.acquire(&key("a"));
        registry.acquire(&key("a"));
        registry.acquire(&key("b"));
        assert_eq!(registry.count(), 2);
        assert!(registry.holds(&key("a")) && !registry.holds(&key("c")));
        registry.release(&key("a"));
        assert_eq!(registry.count(), 2);
        registry.release(&key("a"));
        assert_eq!(registry.count(), 1);
        registry.release(&key("a"));
        assert_eq!(registry.count(), 1, "an unmatched release must not change the count");
    }

    #[test]
    fn more_holders_than_a_slot_counts_are_all_remembered() {
        let registry = SeriesRegistry::default();
        let holders = 3 * REF_MASK as usize + 7;
        for _ in 0..holders {
            registry.acquire(&key("a"));
        }
        registry.acquire(&key("b"));
        for released in 1..holders {
            registry.release(&key("a"));
            assert_eq!(registry.count(), 2, "after {released} releases");
        }
        registry.release(&key("a"));
        assert_eq!(registry.count(), 1);
        let borrowed = KeyRef { twin: "b", signal: "hr", provenance: "" };
        registry.release(borrowed);
        assert_eq!(registry.count(), 0, "a borrowed key is the same key as its owned form");
    }

    #[test]
    fn a_series_costs_well_under_twenty_bytes() {
        let registry = SeriesRegistry::default();
        let series = 200_000;
        for i in 0..series {
            registry.acquire(&key(&format!("twin{i}")));
        }
        assert_eq!(registry.count(), series);
        let bytes: usize = registry.shards.iter().map(|s| s.lock().slots.allocation_size()).sum();
        let per_series = bytes as f64 / series as f64;
        // 9 bytes per slot (8 + 1 control byte) at the table's load factor.
        assert!(per_series < 16.0, "{per_series:.1} bytes per series");
    }
}
