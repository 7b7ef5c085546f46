//! One shared copy of every name.
//!
//! Twin ids, signal names and provenance texts repeat in every series key,
//! in live state, in the catalog and in every segment index. Interning them
//! keeps one allocation per distinct text (a million series of
//! `heart_rate` share one string) and turns most equality checks into a
//! pointer comparison, because `Arc<str>` compares pointers before bytes.
//!
//! Parsing interns every name of a request before anyone knows whether the
//! request will be accepted, so the table must not keep what nothing else
//! holds: a shard drops its unused texts whenever it has doubled since it
//! last did, which keeps it within twice the names in use (those of
//! accepted data, and of requests being parsed) at an amortised constant
//! cost per new name. A refused batch of a million invented names leaves
//! nothing behind.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Lock shards, so parsers on different threads rarely meet.
const SHARDS: usize = 64;

/// Below this many texts a shard is never swept.
const MIN_SWEEP: usize = 256;

#[derive(Default)]
struct Texts {
    set: HashSet<Arc<str>, BuildHasherDefault<DefaultHasher>>,
    /// Size at which the next sweep runs.
    sweep_at: usize,
}

type Shard = Mutex<Texts>;

static TABLE: OnceLock<Box<[Shard]>> = OnceLock::new();

/// The shared copy of `text`, created on first use.
pub(crate) fn intern(text: &str) -> Arc<str> {
    let shards = TABLE.get_or_init(|| (0..SHARDS).map(|_| Mutex::new(Texts::default())).collect());
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(text);
    let mut shard = shards[(hash as usize) % SHARDS].lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = shard.set.get(text) {
        return existing.clone();
    }
    if shard.set.len() >= shard.sweep_at {
        // Only the table holds a text with one strong reference.
        shard.set.retain(|text| Arc::strong_count(text) > 1);
        shard.sweep_at = (shard.set.len() * 2).max(MIN_SWEEP);
    }
    let shared: Arc<str> = Arc::from(text);
    shard.set.insert(shared.clone());
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_allocation() {
        let a = intern("heart_rate");
        let b = intern(&String::from("heart_rate"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &intern("steps")));
    }

    #[test]
    fn texts_nothing_holds_are_swept() {
        let held = intern("held_by_a_test");
        for i in 0..SHARDS * MIN_SWEEP * 8 {
            drop(intern(&format!("invented_{i}")));
        }
        let kept: usize = TABLE.get().unwrap().iter().map(|s| s.lock().unwrap().set.len()).sum();
        assert!(kept < SHARDS * MIN_SWEEP * 4, "{kept} texts kept");
        assert!(Arc::ptr_eq(&held, &intern("held_by_a_test")), "a text in use is never swept");
    }
}
