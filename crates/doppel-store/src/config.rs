//! Configuration and the reports the store hands back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use doppel_model::{SignalName, Span};

use crate::sealing::Sealing;
use crate::wal::CorruptionKind;

/// Default head size that triggers a flush: 2M points is ~48 MB of head
/// memory (16 B of sample plus 8 B of lsn each) and a few seconds of ingest
/// at target rates.
pub const DEFAULT_HEAD_FLUSH_POINTS: usize = 2_000_000;
/// Default head size, as a multiple of the flush threshold, beyond which
/// writes are refused until a flush catches up: room for the head being
/// flushed, the one filling behind it and a burst on top, while a flush
/// that stalls or keeps failing (a slow or full disk) cannot make the head
/// grow until the process runs out of memory (4 × 48 MB at the defaults).
pub const DEFAULT_HEAD_LIMIT_FLUSHES: usize = 4;
/// Default age of the oldest unflushed write that triggers a flush: bounds
/// WAL replay time after a crash.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default WAL file size before rolling over to a new file.
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 << 20;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Directory holding `wal/`, `segments/` and `catalog.bin`.
    pub dir: PathBuf,
    /// Head size, in points, that triggers a flush.
    pub head_flush_points: usize,
    /// Points the heads (the one filling and the one being flushed) may
    /// hold together; while they hold this many, writes are refused with
    /// [`crate::StoreError::FlushBehind`] before anything is written.
    /// Writers racing past the check may each add one batch beyond it.
    pub head_limit_points: usize,
    /// A head whose first write is older than this is flushed.
    pub flush_interval: Duration,
    /// Run a maintenance thread for flushes, compaction and retention. When
    /// false the caller calls [`crate::Store::flush`] and
    /// [`crate::Store::compact`], and a write that fills the head past
    /// `head_flush_points` flushes inline.
    pub background: bool,
    /// WAL file size at which appends roll over to a new file.
    pub wal_segment_bytes: u64,
    /// How long data is kept.
    pub retention: RetentionPolicy,
    /// The keys to seal everything written under, for encryption at rest;
    /// `None` writes plain files. A sealed store refuses to open without
    /// its keyring; a plain store opened with one is sealed from then on
    /// (its older files stay readable and are resealed by compaction).
    pub sealing: Option<Arc<Sealing>>,
}

impl StoreConfig {
    /// The defaults for a store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            head_flush_points: DEFAULT_HEAD_FLUSH_POINTS,
            head_limit_points: DEFAULT_HEAD_LIMIT_FLUSHES * DEFAULT_HEAD_FLUSH_POINTS,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            background: true,
            wal_segment_bytes: DEFAULT_WAL_SEGMENT_BYTES,
            retention: RetentionPolicy::default(),
            sealing: None,
        }
    }
}

/// How long points are kept, relative to wall-clock now, applied when
/// segments are compacted. `None` keeps data forever.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetentionPolicy {
    /// Retention of signals without their own entry.
    pub default: Option<Span>,
    /// Per-signal retention, overriding `default`.
    pub per_signal: HashMap<SignalName, Span>,
}

impl RetentionPolicy {
    /// The span that applies to `signal`, if any.
    pub fn for_signal(&self, signal: &SignalName) -> Option<Span> {
        self.per_signal.get(signal).copied().or(self.default)
    }

    /// True when some data is not kept forever.
    pub fn is_limited(&self) -> bool {
        self.default.is_some() || !self.per_signal.is_empty()
    }
}

/// What [`crate::Store::write`] promises on return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Points in the batch.
    pub points: usize,
    /// The WAL record's log sequence number in this process.
    pub lsn: u64,
    /// True when this call performed the fsync that made it durable; false
    /// when another writer's fsync covered it (group commit).
    pub led_fsync: bool,
}

/// What [`crate::Store::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecoveryReport {
    /// Segments opened.
    pub segments_loaded: usize,
    /// Segments that failed their checks and were moved aside.
    pub segments_discarded: Vec<DiscardedSegment>,
    /// Compaction inputs left behind by a crash, deleted because a newer
    /// segment replaces them.
    pub replaced_segments_removed: usize,
    /// WAL files read.
    pub wal_files_replayed: usize,
    /// WAL records applied.
    pub wal_records_replayed: u64,
    /// Points in the applied records.
    pub wal_points_replayed: u64,
    /// Damage found in WAL files.
    pub wal_damage: Vec<WalDamage>,
}

/// A damaged stretch of a WAL file: `bytes_dropped` bytes from `offset`
/// on were not replayed. Either a tail (nothing readable after it) or a
/// range in the middle, after which replay resumed at the next record
/// that verifies.
#[derive(Clone, Debug, PartialEq)]
pub struct WalDamage {
    /// The WAL file.
    pub file: PathBuf,
    /// Offset of the first bad record (just past the last good one).
    pub offset: u64,
    /// Bytes from `offset` on that were not replayed.
    pub bytes_dropped: u64,
    /// Records lost, when the damaged range still shows where they began
    /// and ended.
    pub records_lost: Option<u64>,
    /// What was wrong with the record at `offset`.
    pub reason: CorruptionKind,
    /// True when the file was cut at `offset` (a torn tail of the newest
    /// file, which is what a crash leaves); false for damage that is kept
    /// in place until the file is flushed away.
    pub truncated: bool,
    /// Where a copy of the damaged bytes was put aside (under
    /// `quarantine/` in the data directory), for damage in the middle.
    pub quarantined: Option<PathBuf>,
}

/// A segment that could not be opened.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscardedSegment {
    /// Where it was.
    pub file: PathBuf,
    /// Where it was moved (`<name>.corrupt`), kept for inspection.
    pub moved_to: PathBuf,
    /// Why it was refused.
    pub reason: String,
}

/// What one [`crate::Store::flush`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlushReport {
    /// Points written to the new segment.
    pub points: u64,
    /// Series written.
    pub series: usize,
    /// The new segment, if the head held anything.
    pub segment: Option<PathBuf>,
    /// Its size.
    pub segment_bytes: u64,
    /// WAL files deleted because the segment now holds their data.
    pub wal_files_removed: usize,
    /// True when the twin catalog was snapshotted.
    pub catalog_snapshot: bool,
}

/// What one [`crate::Store::compact`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompactionReport {
    /// Segments merged.
    pub segments_in: usize,
    /// Points in those segments (duplicates included).
    pub points_in: u64,
    /// Points in the new segment.
    pub points_out: u64,
    /// Points older than their retention, dropped.
    pub points_dropped_retention: u64,
    /// Points of deleted twins, dropped.
    pub points_dropped_deleted: u64,
    /// Points of damaged blocks, which could not be read, dropped.
    pub points_dropped_damaged: u64,
    /// Each damaged block dropped: segment file, offset, points, series
    /// and what was wrong.
    pub damaged_blocks: Vec<String>,
    /// Segment bytes before.
    pub bytes_before: u64,
    /// Segment bytes after.
    pub bytes_after: u64,
}

/// Counters and gauges for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreStats {
    /// Distinct series in head and segments.
    pub series: usize,
    /// Twins in the catalog.
    pub twins: usize,
    /// Points in memory not yet in a segment.
    pub head_points: u64,
    /// [`StoreConfig::head_limit_points`].
    pub head_limit_points: u64,
    /// Writes refused since open because the heads were full
    /// ([`crate::StoreError::FlushBehind`]).
    pub writes_refused_flush_behind_total: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Bytes of WAL files.
    pub wal_bytes: u64,
    /// Points acknowledged since open.
    pub points_written_total: u64,
    /// WAL fsyncs (fdatasync) since open.
    pub fsyncs_total: u64,
    /// Time spent in WAL fsyncs since open.
    pub fsync_seconds_total: f64,
    /// Duration of the latest WAL fsync.
    pub last_fsync_micros: u64,
    /// Flushes since open.
    pub flushes_total: u64,
    /// Compactions since open.
    pub compactions_total: u64,
    /// Segment bytes written by flushes since open: each point once.
    pub flushed_bytes_total: u64,
    /// Segment bytes written by compactions since open: rewrites. Write
    /// amplification is `(flushed + compacted) / flushed`.
    pub compacted_bytes_total: u64,
    /// Points dropped by retention since open.
    pub retention_dropped_points_total: u64,
    /// Damaged blocks in the segments now open; reads skip them.
    pub bad_blocks: u64,
    /// Block reads skipped because the block is damaged, since open.
    pub bad_block_reads_skipped_total: u64,
    /// Series keys listed from heads and segment indexes since open
    /// (opening, listing a twin's series, planning reads, flush and
    /// compaction bookkeeping): work that grows linearly with the series
    /// held, counted so that tests and operators can see it stays so.
    pub series_keys_listed_total: u64,
}
