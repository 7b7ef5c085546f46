//! A maintained count of distinct series across the heads and segments, so
//! that [`crate::Store::stats`] (read on every `/metrics` scrape) costs
//! O(1) instead of building a set of millions of keys.
//!
//! Each container that holds a series (the active head, the head being
//! flushed, each segment) holds one reference to its key; the count is the
//! number of keys with at least one reference. Containers acquire their
//! keys when they gain a series and release them when they lose it (a
//! purge, a retired head, a segment replaced by compaction).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};

use doppel_model::SeriesKey;
use parking_lot::Mutex;

/// Number of registry shards: enough that writers creating new series and
/// a flush registering a segment rarely wait on one another.
const SHARDS: usize = 16;

/// Reference counts of series keys, sharded by key hash.
pub(crate) struct SeriesRegistry {
    shards: Box<[Mutex<HashMap<u64, u32>>]>,
    hasher: RandomState,
    distinct: AtomicUsize,
}

impl Default for SeriesRegistry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            distinct: AtomicUsize::new(0),
        }
    }
}

impl SeriesRegistry {
    /// The key's 64-bit fingerprint and its shard. Holding fingerprints
    /// rather than keys keeps the registry at about 20 bytes per series
    /// (a key is 48 bytes plus map overhead, at millions of series); two
    /// keys would have to collide in 64 bits to be counted as one.
    fn slot(&self, key: &SeriesKey) -> (u64, &Mutex<HashMap<u64, u32>>) {
        let fingerprint = self.hasher.hash_one(key);
        (fingerprint, &self.shards[(fingerprint as usize) & (SHARDS - 1)])
    }

    /// A container gained `key`.
    pub(crate) fn acquire(&self, key: &SeriesKey) {
        let (fingerprint, shard) = self.slot(key);
        let mut shard = shard.lock();
        match shard.get_mut(&fingerprint) {
            Some(refs) => *refs += 1,
            None => {
                shard.insert(fingerprint, 1);
                self.distinct.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A container lost `key`. Releasing a key nobody holds is ignored
    /// (callers release only what they acquired; this keeps a bug from
    /// wrapping the count).
    pub(crate) fn release(&self, key: &SeriesKey) {
        let (fingerprint, shard) = self.slot(key);
        let mut shard = shard.lock();
        let last_holder = match shard.get_mut(&fingerprint) {
            Some(refs) if *refs > 1 => {
                *refs -= 1;
                false
            }
            Some(_) => true,
            None => return,
        };
        if last_holder {
            shard.remove(&fingerprint);
            self.distinct.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Distinct keys held by at least one container.
    pub(crate) fn count(&self) -> usize {
        self.distinct.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{Provenance, SignalName, TwinId};

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
        registry.release(&key("a"));
        assert_eq!(registry.count(), 2);
        registry.release(&key("a"));
        assert_eq!(registry.count(), 1);
        registry.release(&key("a"));
        assert_eq!(registry.count(), 1, "an unmatched release must not change the count");
    }
}
