//! Doppel's embedded time-series store: a write-ahead log with group
//! commit, an in-memory head, immutable compressed segments, compaction,
//! retention and range/aggregate reads.
//!
//! The store is a library of plain threads and files: no async, no HTTP.
//! A write is acknowledged (`Store::write` returns `Ok`) only after its WAL
//! record is fsynced; concurrent writers share fsyncs. Everything is `Send +
//! Sync` and every method takes `&self`, so the engine shares one store in
//! an `Arc`.
//!
//! # Last write wins
//!
//! A series holds one value per timestamp. A later write of the same
//! (series, timestamp) replaces the earlier value, wherever the earlier one
//! lives (head or segment), and points may arrive out of order at any age.
//! Within one batch, the later sample of a timestamp wins. "Later" is the
//! order in the WAL, which is the order in which writes were appended.
//!
//! # Deletion
//!
//! [`Store::delete_twin`] hides a twin's record and all data written before
//! it at once and for good: a twin re-created with the same id starts with
//! no history. Compaction reclaims the space.
//!
//! ```
//! use doppel_model::{Batch, Point, Provenance, SignalName, Timestamp, TwinId, Value};
//! use doppel_store::{Aggregate, RangeQuery, Store, StoreConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(StoreConfig::new(dir.path())).unwrap();
//! let twin = TwinId::new("alice").unwrap();
//! let signal = SignalName::new("heart_rate").unwrap();
//! let points = (0..60).map(|minute| Point {
//!     twin: twin.clone(),
//!     signal: signal.clone(),
//!     provenance: Provenance::none(),
//!     time: Timestamp::from_secs(minute * 60),
//!     value: Value::new(60.0 + minute as f64 % 5.0).unwrap(),
//! });
//! store.write(&Batch::from_points(points)).unwrap();
//! let q = RangeQuery {
//!     twin,
//!     signal,
//!     provenance: Provenance::none(),
//!     from: Timestamp::from_secs(0),
//!     to: Timestamp::from_secs(3600),
//! };
//! let buckets = store.aggregate(&q, None, &[Aggregate::Count, Aggregate::Max]).unwrap();
//! assert_eq!(buckets[0].values, vec![60.0, 64.0]);
//! ```
//!
//! # Encryption at rest
//!
//! With [`StoreConfig::sealing`] set, every byte of twin data the store
//! writes is sealed under that twin's data key, and the store's own
//! structures under the store key (see `sealing.rs`). Twins get a number
//! and a key when created; [`Store::delete_twin`] destroys the key first,
//! so the twin's data in the WAL, in segments and in any copy of the data
//! directory is unreadable from that moment.
//!
//! The on-disk format and recovery rules are specified in
//! `docs/storage-format.md`. This crate knows nothing of models, HTTP or
//! wire protocols; it stores points of [`doppel_model`] series.

mod bad_blocks;
mod block;
mod catalog;
mod check;
mod codec;
mod config;
mod error;
mod frame;
mod head;
mod health;
mod index;
mod key_ref;
mod memory;
mod merge;
mod point_count;
mod query;
mod registry;
mod sealing;
mod segment;
mod store;
mod tiers;
mod twin_entries;
mod wal;

pub use bad_blocks::BadBlock;
pub use catalog::TwinRecord;
pub use check::{CheckReport, RepairReport, check, repair};
pub use config::{
    CompactionReport, DEFAULT_FLUSH_INTERVAL, DEFAULT_HEAD_FLUSH_POINTS, DEFAULT_HEAD_LIMIT_FLUSHES,
    DEFAULT_WAL_SEGMENT_BYTES, DiscardedSegment, FlushReport, RecoveryReport, RetentionPolicy, StoreConfig,
    StoreStats, WalDamage, WriteReceipt,
};
pub use error::StoreError;
pub use health::{Severity, StoreProblem};
pub use query::{Aggregate, Bucket, RangeQuery, SeriesData, UnknownAggregate};
pub use sealing::Sealing;
pub use store::Store;
pub use wal::CorruptionKind;

/// Doors for the fuzz targets in `fuzz/` (`wal_record`, `segment_block`,
/// `segment_index_page`).
///
/// The WAL, block and index page decoders are private to the store, yet they read bytes
/// from disk that may be damaged, so they must be fuzzed; this module
/// exposes them with plain types. It is not part of the store's API and may
/// change at any time.
#[doc(hidden)]
pub mod fuzzing {
    /// What recovery makes of one WAL file's bytes.
    #[derive(Debug)]
    pub struct WalScan {
        /// Records decoded (damaged ones skipped).
        pub records: usize,
        /// Offset just past the last good record (where a damaged tail starts).
        pub good_len: usize,
        /// True when a damaged record was skipped or ended the scan.
        pub damaged: bool,
    }

    /// Scans `bytes` as recovery scans a WAL file.
    pub fn scan_wal(bytes: &[u8]) -> WalScan {
        let scanned = crate::wal::scan(bytes, None);
        WalScan {
            records: scanned.entries.len(),
            good_len: usize::try_from(scanned.good_len).unwrap_or(usize::MAX),
            damaged: scanned.corruption.is_some() || !scanned.bad_ranges.is_empty(),
        }
    }

    /// Decodes `payload` as one WAL record payload and, when it is a point
    /// batch, encodes it again; `None` when it does not decode. Encoding is
    /// canonical, so re-encoding the result must give it back unchanged.
    pub fn reencode_points_payload(payload: &[u8]) -> Option<Vec<u8>> {
        match crate::wal::decode_entry(payload, None) {
            Ok(crate::wal::WalEntry::Points(batch)) => {
                let mut out = Vec::new();
                crate::wal::encode_points(&batch, &mut out);
                Some(out)
            }
            _ => None,
        }
    }

    /// Decodes `block` as a segment block said to hold `count` samples;
    /// the columns when it decodes.
    pub fn decode_block(block: &[u8], count: usize) -> Option<(Vec<i64>, Vec<f64>)> {
        let (mut times, mut values) = (Vec::new(), Vec::new());
        crate::block::decode_block(block, count, &mut times, &mut values).ok()?;
        Some((times, values))
    }

    /// Decodes `body` as the body of a segment index page (its seal
    /// already checked, its blocks allowed anywhere): a binary search of
    /// its offset table for `target` (twin, signal, provenance) and the
    /// entry found there, then every entry in order. The number of entries
    /// when the whole page decodes.
    pub fn decode_index_page(body: &[u8], target: (&str, &str, &str)) -> Option<usize> {
        use crate::index::PageReader;
        let target = crate::key_ref::KeyRef { twin: target.0, signal: target.1, provenance: target.2 };
        let mut blocks = Vec::new();
        if let Ok(mut reader) = PageReader::new(body, 0..u64::MAX)
            && reader.seek(target).is_ok()
        {
            let _ = reader.next_entry(&mut blocks);
        }
        let mut reader = PageReader::new(body, 0..u64::MAX).ok()?;
        let mut entries = 0;
        while reader.next_entry(&mut blocks).ok()?.is_some() {
            entries += 1;
        }
        Some(entries)
    }

    /// Encodes columns (sorted, unique times, at most 8192) as a block,
    /// `None` when the codec refuses them.
    pub fn encode_block(times: &[i64], values: &[f64]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        crate::block::encode_block(times, values, &mut out).ok()?;
        Some(out)
    }
}
