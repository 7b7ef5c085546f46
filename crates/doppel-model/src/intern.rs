//! One shared copy of every name.
//!
//! Twin ids, signal names and provenance texts repeat in every series key,
//! in live state, in the catalog and in every segment index. Interning them
//! keeps one allocation per distinct text (a million series of
//! `heart_rate` share one string) and turns most equality checks into a
//! pointer comparison, because `Arc<str>` compares pointers before bytes.
//! Interned texts live for the life of the process; they are bounded by the
//! distinct names ever seen, which is a few bytes per twin.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Lock shards, so parsers on different threads rarely meet.
const SHARDS: usize = 64;

type Shard = Mutex<HashSet<Arc<str>, BuildHasherDefault<DefaultHasher>>>;

static TABLE: OnceLock<Box<[Shard]>> = OnceLock::new();

/// The shared copy of `text`, created on first use.
pub(crate) fn intern(text: &str) -> Arc<str> {
    let shards = TABLE.get_or_init(|| (0..SHARDS).map(|_| Mutex::new(HashSet::default())).collect());
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(text);
    let mut shard = shards[(hash as usize) % SHARDS].lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = shard.get(text) {
        return existing.clone();
    }
    let shared: Arc<str> = Arc::from(text);
    shard.insert(shared.clone());
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
}
