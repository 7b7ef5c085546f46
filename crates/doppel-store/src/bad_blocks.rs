//! The blocks of one segment found damaged, at open or by a read. Reads
//! skip them, so that one damaged block costs its own points rather than
//! every read, export or compaction that touches it; the list is what
//! `/health`, `doppel check` and compaction report as lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// A block that failed its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadBlock {
    /// Byte offset of the block in its segment file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u32,
    /// Points it held, as the index says.
    pub points: u32,
    /// The series it belonged to (`twin/signal/provenance`), when the
    /// damage was found while walking the index.
    pub series: Option<String>,
    /// What was wrong.
    pub reason: String,
}

/// The damaged blocks of one segment, by offset.
#[derive(Debug, Default)]
pub(crate) struct BadBlocks {
    found: RwLock<BTreeMap<u64, BadBlock>>,
    /// Known bad blocks, so that reads of a healthy segment skip the lock.
    count: AtomicU64,
    /// Block reads skipped because the block is bad.
    skipped: AtomicU64,
}

impl BadBlocks {
    /// True when the block at `offset` is known bad; counts the skip.
    pub(crate) fn skip(&self, offset: u64) -> bool {
        let bad = self.count.load(Ordering::Acquire) > 0 && self.found.read().contains_key(&offset);
        if bad {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        bad
    }

    /// Records a bad block; true when it was not known yet.
    pub(crate) fn record(&self, block: BadBlock) -> bool {
        let mut found = self.found.write();
        if found.contains_key(&block.offset) {
            return false;
        }
        found.insert(block.offset, block);
        self.count.store(found.len() as u64, Ordering::Release);
        true
    }

    /// The bad blocks, by offset.
    pub(crate) fn list(&self) -> Vec<BadBlock> {
        self.found.read().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(offset: u64) -> BadBlock {
        BadBlock { offset, len: 10, points: 3, series: None, reason: "block checksum mismatch".into() }
    }

    #[test]
    fn a_recorded_block_is_skipped_and_counted_once() {
        let blocks = BadBlocks::default();
        assert!(!blocks.skip(8));
        assert!(blocks.record(bad(8)));
        assert!(!blocks.record(bad(8)));
        assert!(blocks.skip(8) && !blocks.skip(18));
        assert_eq!((blocks.len(), blocks.skipped(), blocks.list()), (1, 1, vec![bad(8)]));
    }
}
