//! The store: ties WAL, head, segments and catalog together.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use doppel_model::{Batch, Sample, SeriesKey, Span, Timestamp, TwinId, Value};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::StoreError;
use crate::bad_blocks::BadBlock;
use crate::catalog::{Catalog, CatalogLog, TwinRecord};
use crate::config::{
    CompactionReport, DiscardedSegment, FlushReport, RecoveryReport, RetentionPolicy, StoreConfig,
    StoreStats, WalDamage, WriteReceipt,
};
use crate::head::{Columns, Head};
use crate::health::{Problems, Severity, StoreProblem, file_name};
use crate::index::{BlockMeta, IndexEntry};
use crate::merge::{MergedSeries, SeriesMerge};
use crate::point_count::{self, SourceSpan};
use crate::query::{Aggregate, Bucket, BucketBuilder, RangeQuery, SeriesData};
use crate::registry::SeriesRegistry;
use crate::sealing::{Sealing, TwinKey, check_marker};
use crate::segment::{SealWith, Segment, SegmentMeta, list_segments, write_segment};
use crate::tiers;
use crate::wal::{
    BadRange, MAX_RECORD_BYTES, RECORD_HEADER_BYTES, Wal, WalEntry, encode_delete, encode_delete_sealed,
    encode_points, encode_points_sealed, encode_upsert, encode_upsert_sealed, list_wal_files, scan, sync_dir,
};

/// Where damaged bytes are copied before they are skipped or cut, in the
/// data directory.
pub(crate) const QUARANTINE_DIR: &str = "quarantine";
/// How often the maintenance threads wake to check their triggers.
const MAINTENANCE_TICK: Duration = Duration::from_secs(1);
/// How often at most the whole store is merged to reclaim space when a
/// retention policy is set or twins were deleted: tier merges apply both
/// only to the segments they happen to take, so without this pass a big
/// old segment could keep expired or deleted data for good.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(3600);
/// Twin keys created together, in one keyring shard, ahead of the twins
/// that will use them: creating a twin in a sealed store otherwise costs a
/// shard rewrite with two fsyncs of its own.
const KEY_RESERVE: u64 = 64;
/// Largest WAL record buffer a writer thread keeps for its next write:
/// big enough for batches of ~100k points, small enough that a one-off
/// huge batch does not pin its memory for the thread's life.
const KEPT_RECORD_BUFFER_BYTES: usize = 4 << 20;

thread_local! {
    /// Each writer thread's record buffer, reused so that encoding a batch
    /// does not allocate (and page-fault) a fresh buffer every write.
    static RECORD_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What readers see: the head being written, the head being flushed (with
/// the segment order it will get) and the segments, newest order first.
#[derive(Clone)]
struct View {
    active: Arc<Head>,
    frozen: Option<(Arc<Head>, u64)>,
    segments: Arc<Vec<Arc<Segment>>>,
}

/// The series a query matches: their keys across heads and segments, and
/// each visible segment's blocks of them.
struct Matches<'v> {
    /// Sorted, each once.
    keys: Vec<SeriesKey>,
    /// Visible segments holding any of them, oldest order first, each
    /// with its hits sorted by key (so a key is found by binary search:
    /// one signal of a twin may have many provenances).
    segments: Vec<(&'v Segment, Vec<IndexEntry>)>,
    /// The twin's key, to open sealed blocks with.
    key: Option<TwinKey>,
}

impl Matches<'_> {
    /// The segments holding `key`, oldest order first, with its blocks
    /// in each.
    fn sources<'a>(&'a self, key: &'a SeriesKey) -> impl Iterator<Item = (&'a Segment, &'a [BlockMeta])> {
        self.segments.iter().filter_map(move |(segment, hits)| {
            let at = hits.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
            Some((*segment, hits[at].1.as_slice()))
        })
    }
}

#[derive(Default)]
struct Counters {
    points_written: AtomicU64,
    flushes: AtomicU64,
    compactions: AtomicU64,
    /// Segment bytes written by flushes: the data itself, once.
    flushed_bytes: AtomicU64,
    /// Segment bytes written by compactions: the rewrites.
    compacted_bytes: AtomicU64,
    retention_dropped: AtomicU64,
    refused_flush_behind: AtomicU64,
    /// Skipped reads of damaged blocks in segments compacted away since.
    bad_block_skips_retired: AtomicU64,
    /// Series keys listed from heads and segment indexes: the work of
    /// opening, listing a twin's series and planning reads, which must
    /// grow linearly with the series a twin or the store holds.
    series_keys_listed: AtomicU64,
}

struct Inner {
    config: StoreConfig,
    segment_dir: PathBuf,
    wal: Wal,
    /// Writers hold it shared from WAL append to head insert; flush (to swap
    /// heads) and delete (to purge the head) hold it exclusively, so no
    /// write is half applied when they act.
    gate: RwLock<()>,
    view: RwLock<View>,
    /// Distinct series across heads and segments, for [`Store::stats`].
    registry: Arc<SeriesRegistry>,
    catalog: RwLock<Catalog>,
    /// Where flushes persist the catalog's changes.
    catalog_log: Mutex<CatalogLog>,
    /// The keys everything is sealed under, when encryption at rest is on.
    sealing: Option<Arc<Sealing>>,
    /// Twin numbers whose keys exist but are not assigned yet, handed out
    /// lowest first. Held through a whole twin creation in a sealed store,
    /// so that a twin is never given two numbers.
    key_reserve: Mutex<Vec<u64>>,
    /// Next segment order / id to hand out; every order below it is taken.
    next_seq: AtomicU64,
    /// Serialises flushes (and WAL retirement).
    flushing: Mutex<()>,
    /// Serialises compactions. A flush does not wait for it: a merge reads
    /// only immutable segments, and publishing its output takes the view
    /// lock alone, so a long merge never stalls a flush and lets the head
    /// grow.
    compacting: Mutex<()>,
    /// Set when a twin is deleted, cleared when a whole-store compaction
    /// starts: deleted data may be left to reclaim.
    reclaim_deleted: AtomicBool,
    retention: RwLock<RetentionPolicy>,
    counters: Counters,
    recovery: RecoveryReport,
    problems: Problems,
    /// Set once the stopped store is among `problems`.
    stop_reported: AtomicBool,
    shutdown: Mutex<bool>,
    /// Wakes the flush thread: the head reached its flush size.
    wake_flush: Condvar,
    /// Wakes the compaction thread: a flush added a segment.
    wake_compaction: Condvar,
    _lock: File,
}

/// Doppel's embedded time-series store. Cheap to share (`Arc<Store>`); every
/// method takes `&self`.
pub struct Store {
    inner: Arc<Inner>,
    /// The flush and compaction threads, when `config.background` is set.
    maintenance: Vec<JoinHandle<()>>,
}

impl Store {
    /// Opens (or creates) the store in `config.dir`, recovering from
    /// whatever a crash left: leftover temporary files and replaced
    /// segments are removed, the WAL after the last flush is replayed and a
    /// damaged WAL tail is cut off and reported.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let inner = Arc::new(Inner::open(config)?);
        let mut store = Store { inner: Arc::clone(&inner), maintenance: Vec::new() };
        if inner.config.background {
            let loops: [(&str, MaintenanceLoop); 2] = [
                ("doppel-store-flush", Inner::flush_loop),
                ("doppel-store-compaction", Inner::compaction_loop),
            ];
            for (name, run) in loops {
                let thread_inner = Arc::clone(&inner);
                let handle = std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || run(&thread_inner))
                    .map_err(StoreError::io("spawn maintenance thread", &inner.config.dir))?;
                // Dropping `store` on a later failure stops this thread.
                store.maintenance.push(handle);
            }
        }
        Ok(store)
    }

    /// What [`Store::open`] found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// What is wrong with the store now (damage found at open or since,
    /// faults that stopped writes); empty when it is healthy.
    pub fn problems(&self) -> Vec<StoreProblem> {
        self.inner.problems()
    }

    /// The damaged blocks of each segment (file, blocks), oldest segment
    /// first; reads skip them.
    pub fn bad_blocks(&self) -> Vec<(PathBuf, Vec<BadBlock>)> {
        let view = self.inner.view.read().clone();
        view.segments
            .iter()
            .rev()
            .map(|s| (s.path.clone(), s.bad.list()))
            .filter(|(_, bad)| !bad.is_empty())
            .collect()
    }

    /// Makes a batch durable (its WAL record fsynced, possibly by another
    /// writer's group commit) and visible to reads, then returns; refuses
    /// it, writing nothing, while the heads are full
    /// ([`StoreError::FlushBehind`]).
    pub fn write(&self, batch: &Batch) -> Result<WriteReceipt, StoreError> {
        self.inner.guard(self.inner.write(batch))
    }

    /// Refuses with [`StoreError::FlushBehind`] while the heads hold
    /// [`crate::StoreConfig::head_limit_points`] or more, so a caller
    /// about to write can refuse before it does anything else (such as
    /// creating twins) for a write the store would refuse.
    pub fn check_head_room(&self) -> Result<(), StoreError> {
        self.inner.check_head_room()
    }

    /// Inserts or replaces a twin's catalog record, durably.
    pub fn put_twin(&self, twin: &TwinRecord) -> Result<(), StoreError> {
        self.inner.guard(self.inner.put_twins(std::slice::from_ref(twin)))
    }

    /// Upserts many catalog records with one fsync: creating the twins of a
    /// batch one durable write at a time would cost an fsync per twin.
    pub fn put_twins(&self, twins: &[TwinRecord]) -> Result<(), StoreError> {
        self.inner.guard(self.inner.put_twins(twins))
    }

    /// Deletes a twin durably: its record and all its data written so far
    /// become invisible at once and never return, even if the id is
    /// re-created; compaction reclaims the space. True when the twin existed
    /// (in the catalog or as data).
    pub fn delete_twin(&self, id: &TwinId) -> Result<bool, StoreError> {
        self.inner.guard(self.inner.delete_twin(id))
    }

    /// A twin's catalog record.
    pub fn twin(&self, id: &TwinId) -> Option<TwinRecord> {
        self.inner.catalog.read().twins.get(id)
    }

    /// Up to `limit` twins with ids after `after`, sorted by id, optionally
    /// only those of `model`: a page of the catalog.
    pub fn twins(&self, after: Option<&TwinId>, limit: usize, model: Option<&str>) -> Vec<TwinRecord> {
        self.inner.catalog.read().twins.page(after, limit, model)
    }

    /// Twins in the catalog.
    pub fn twin_count(&self) -> usize {
        self.inner.catalog.read().twins.len()
    }

    /// Every series of a twin that holds visible data, sorted. Segment
    /// indexes are read from disk, so this can fail on a damaged or
    /// unreadable file.
    pub fn series(&self, twin: &TwinId) -> Result<Vec<SeriesKey>, StoreError> {
        let view = self.inner.view.read().clone();
        let tomb = self.inner.tombstone(twin);
        Ok(self.inner.twin_keys(&view, twin, tomb)?.into_iter().collect())
    }

    /// A lower bound on the points [`Store::read`] of `q` returns, from
    /// the heads and the segments' block metadata alone, decoding no
    /// block (a segment's blocks count only when wholly in range; see
    /// `point_count.rs`). A caller with a limit refuses a read past it before the
    /// read allocates anything.
    pub fn count_at_least(&self, q: &RangeQuery) -> Result<u64, StoreError> {
        self.inner.count_at_least(q)
    }

    /// The samples of each matching series in `[from, to)`, sorted by time,
    /// one per time (the last write of a time wins).
    pub fn read(&self, q: &RangeQuery) -> Result<Vec<SeriesData>, StoreError> {
        let mut out = Vec::new();
        for (key, cols) in self.inner.query_columns(q)? {
            let samples = cols
                .times
                .iter()
                .zip(&cols.values)
                .filter_map(|(&t, &v)| {
                    Value::new(v).ok().map(|value| Sample { time: Timestamp::from_nanos(t), value })
                })
                .collect();
            out.push(SeriesData { key, samples });
        }
        Ok(out)
    }

    /// Aggregates all matching series together into buckets aligned to
    /// multiples of `every` since the epoch (`None`: one bucket starting at
    /// `q.from`); empty buckets are omitted.
    pub fn aggregate(
        &self,
        q: &RangeQuery,
        every: Option<Span>,
        aggs: &[Aggregate],
    ) -> Result<Vec<Bucket>, StoreError> {
        let mut builder = BucketBuilder::new(every, q.from.as_nanos(), aggs);
        if self.inner.stream_single_source(q, &mut builder)? {
            return Ok(builder.finish());
        }
        let mut series = self.inner.query_columns(q)?;
        let merged = if series.len() == 1 {
            series.pop().map(|(_, c)| c).unwrap_or_default()
        } else {
            // Stable sort: on equal times, series keep key order.
            let mut pairs: Vec<(i64, f64)> = series
                .iter()
                .flat_map(|(_, c)| c.times.iter().copied().zip(c.values.iter().copied()))
                .collect();
            pairs.sort_by_key(|&(t, _)| t);
            Columns {
                times: pairs.iter().map(|p| p.0).collect(),
                values: pairs.iter().map(|p| p.1).collect(),
            }
        };
        builder.push(&merged.times, &merged.values);
        Ok(builder.finish())
    }

    /// The latest sample in `[from, to)` across matching series (on equal
    /// times, the first series in key order).
    pub fn last(&self, q: &RangeQuery) -> Result<Option<(SeriesKey, Sample)>, StoreError> {
        self.inner.last(q)
    }

    /// Whether the store holds data of series `key` (in a head or a
    /// segment), in constant time: what the engine's per-twin series cap
    /// counts. A deleted twin's series count until compaction drops them.
    pub fn holds_series(&self, key: &SeriesKey) -> bool {
        self.inner.registry.holds(key)
    }

    /// Replaces the retention policy; applied at the next compaction.
    pub fn set_retention(&self, policy: RetentionPolicy) {
        *self.inner.retention.write() = policy;
    }

    /// Writes the head to a new segment (fsynced, atomically renamed),
    /// snapshots the catalog if it changed, then deletes the WAL files the
    /// segment covers.
    pub fn flush(&self) -> Result<FlushReport, StoreError> {
        let _f = self.inner.flushing.lock();
        self.inner.guard(self.inner.flush_locked())
    }

    /// Merges all segments into one, keeping the newest value per (series,
    /// time), dropping deleted twins' data and points past retention.
    /// Rewrites every byte: what `doppel compact` asks for, not what the
    /// background does (see [`Store::compact_tier`]).
    pub fn compact(&self) -> Result<CompactionReport, StoreError> {
        let _c = self.inner.compacting.lock();
        Ok(self.inner.guard(self.inner.compact_locked(Scope::All))?.unwrap_or_default())
    }

    /// Merges the next run of segments the size-tier policy picks, if one
    /// is due; `None` when none is. What the background compaction thread
    /// does after each flush (until it returns `None`), for a store opened
    /// without background threads. Each byte is rewritten about once per
    /// tier, `log4(data / flush size)` times in all. Deleted twins' data in
    /// the run is dropped; retention applies when the run holds the oldest
    /// segment (dropping an expired point of a newer segment alone could
    /// uncover an older value of the same time).
    pub fn compact_tier(&self) -> Result<Option<CompactionReport>, StoreError> {
        let _c = self.inner.compacting.lock();
        self.inner.guard(self.inner.compact_locked(Scope::Tier))
    }

    /// Deletes the WAL files once a flush has put all they hold into
    /// segments (nothing left in the heads), starting a fresh one; returns
    /// how many were deleted. What repair does with damaged WAL files
    /// whose readable records are saved (their damaged ranges are in
    /// `quarantine/` already). Does nothing while a head holds data.
    pub(crate) fn retire_wal(&self) -> Result<usize, StoreError> {
        let _f = self.inner.flushing.lock();
        let _gate = self.inner.gate.write();
        {
            let view = self.inner.view.read();
            if !view.active.is_empty() || view.frozen.is_some() {
                return Ok(0);
            }
        }
        let seq = self.inner.wal.rotate()?;
        self.inner.remove_wal_before(seq)
    }

    /// Counters and gauges for `/metrics`.
    pub fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        *self.inner.shutdown.lock() = true;
        self.inner.wake_flush.notify_all();
        self.inner.wake_compaction.notify_all();
        for handle in self.maintenance.drain(..) {
            if handle.join().is_err() {
                tracing::error!("a store maintenance thread panicked");
            }
        }
    }
}

/// The body of one background thread, run until the store shuts down.
type MaintenanceLoop = fn(&Inner);

/// What a compaction merges.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    /// Every segment: what a user asks for, and the periodic pass that
    /// reclaims expired and deleted data wherever it lies.
    All,
    /// The run [`tiers::next_merge`] picks, if any.
    Tier,
}

fn create_dir(path: &Path) -> Result<(), StoreError> {
    doppel_fs::create_dir_all(path, None).map_err(StoreError::io("create directory", path))
}

/// Merges two time-sorted, unique-time column sets; `newer` wins on equal
/// times.
fn merge_lww(older: Columns, newer: Columns) -> Columns {
    if older.times.is_empty() {
        return newer;
    }
    if newer.times.is_empty() {
        return older;
    }
    let mut out = Columns {
        times: Vec::with_capacity(older.len() + newer.len()),
        values: Vec::with_capacity(older.len() + newer.len()),
    };
    let (mut i, mut j) = (0, 0);
    while i < older.len() || j < newer.len() {
        if j >= newer.len() || (i < older.len() && older.times[i] < newer.times[j]) {
            out.times.push(older.times[i]);
            out.values.push(older.values[i]);
            i += 1;
        } else {
            if i < older.len() && older.times[i] == newer.times[j] {
                i += 1;
            }
            out.times.push(newer.times[j]);
            out.values.push(newer.values[j]);
            j += 1;
        }
    }
    out
}

/// Frames a payload built by `encode` into one WAL record, header included,
/// refusing records over the limit.
fn build_record(
    what: &'static str,
    capacity: usize,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
) -> Result<Vec<u8>, StoreError> {
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + capacity);
    frame_record(what, &mut record, encode)?;
    Ok(record)
}

/// Frames a payload built by `encode` into `record` (cleared first).
fn frame_record(
    what: &'static str,
    record: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    record.clear();
    record.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    encode(record)?;
    let len = record.len() - RECORD_HEADER_BYTES;
    if len > MAX_RECORD_BYTES {
        return Err(StoreError::RecordTooLarge { what, bytes: len, limit: MAX_RECORD_BYTES });
    }
    let crc = crc32fast::hash(&record[RECORD_HEADER_BYTES..]);
    record[..4].copy_from_slice(&(len as u32).to_le_bytes());
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

impl Inner {
    fn open(config: StoreConfig) -> Result<Self, StoreError> {
        let wal_dir = config.dir.join("wal");
        let segment_dir = config.dir.join("segments");
        create_dir(&wal_dir)?;
        create_dir(&segment_dir)?;
        let lock_path = config.dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(StoreError::io("create", &lock_path))?;
        lock.try_lock().map_err(|e| StoreError::Io {
            op: "lock (is another process using this store?)",
            path: lock_path.clone(),
            source: e.into(),
        })?;
        let sealing = config.sealing.clone();
        check_marker(&config.dir, sealing.as_deref())?;
        let mut report = RecoveryReport::default();
        let (mut catalog, loaded_log) = Catalog::load(&config.dir, sealing.as_deref())?;
        let catalog_log = CatalogLog::open(&config.dir, &loaded_log, sealing.is_some())?;
        if sealing.is_some() && loaded_log.plain_snapshot {
            // The first flush must replace the plain snapshot by a sealed one.
            catalog.version += 1;
        }
        if let Some(offset) = loaded_log.torn_at {
            // Only a flush appends to it, and the WAL it had not yet
            // released still holds every change the torn record carried.
            tracing::warn!(
                offset,
                "catalog.log ended in a torn record (a crash during a flush); it was cut off"
            );
        }
        let segments = load_segments(&segment_dir, sealing.as_ref(), &mut report)?;
        let wal_start = segments.iter().map(|s| s.meta.wal_start).max().unwrap_or(0);
        let mut next_seq = segments.iter().map(|s| s.id.max(s.meta.order)).max().unwrap_or(0);
        next_seq = next_seq.max(catalog.max_watermark());

        let registry = Arc::new(SeriesRegistry::default());
        let mut keys_listed = 0u64;
        for segment in &segments {
            segment.for_each_key(|key| {
                registry.acquire(key);
                keys_listed += 1;
                ControlFlow::Continue(())
            })?;
        }
        let head = Head::new(Arc::clone(&registry));
        let wal_files = list_wal_files(&wal_dir)?;
        let quarantine = config.dir.join(QUARANTINE_DIR);
        let lsn = replay_wal(
            &wal_files,
            wal_start,
            &quarantine,
            &head,
            &mut catalog,
            sealing.as_deref(),
            &mut report,
        )?;
        next_seq = next_seq.max(catalog.max_watermark());
        if !head.is_empty() {
            head.note_write(Timestamp::now());
        }
        let wal_seq = wal_files.last().map_or(0, |(seq, _)| seq + 1).max(wal_start).max(1);
        let wal = Wal::create(&wal_dir, wal_seq, lsn, config.wal_segment_bytes)?;
        report.segments_loaded = segments.len();
        let mut segments: Vec<Arc<Segment>> = segments.into_iter().map(Arc::new).collect();
        segments.sort_by_key(|s| std::cmp::Reverse(s.meta.order));
        let retention = config.retention.clone();
        // Deleted data may still lie in a segment written before its
        // tombstone; one whole-store pass after a restart finds out.
        let oldest_order = segments.iter().map(|s| s.meta.order).min();
        let reclaim_deleted = oldest_order.is_some_and(|oldest| catalog.max_watermark() >= oldest);
        if let Some(sealing) = &sealing {
            let floor = sealing.keyring().max_number().map_or(0, |n| n + 1);
            catalog.next_number = catalog.next_number.max(floor).max(doppel_crypto::RESERVED_NUMBERS);
        }
        let unnumbered: Vec<TwinRecord> = match &sealing {
            Some(_) => catalog
                .twins
                .iter()
                .filter(|t| !catalog.numbers.contains_key(t.id))
                .map(|t| t.to_record())
                .collect(),
            None => Vec::new(),
        };
        let inner = Self {
            segment_dir,
            wal,
            gate: RwLock::new(()),
            view: RwLock::new(View { active: Arc::new(head), frozen: None, segments: Arc::new(segments) }),
            registry,
            catalog: RwLock::new(catalog),
            catalog_log: Mutex::new(catalog_log),
            sealing,
            key_reserve: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(next_seq + 1),
            flushing: Mutex::new(()),
            compacting: Mutex::new(()),
            reclaim_deleted: AtomicBool::new(reclaim_deleted),
            retention: RwLock::new(retention),
            counters: Counters { series_keys_listed: AtomicU64::new(keys_listed), ..Counters::default() },
            problems: Problems::from_recovery(&report),
            stop_reported: AtomicBool::new(false),
            recovery: report,
            shutdown: Mutex::new(false),
            wake_flush: Condvar::new(),
            wake_compaction: Condvar::new(),
            _lock: lock,
            config,
        };
        inner.verify_blocks()?;
        // Twins of a store that was plain until now get their numbers and
        // keys, so their data is sealed from the next flush on.
        inner.put_twins(&unnumbered)?;
        Ok(inner)
    }

    /// Checks every block of every segment at open, so that damage is
    /// known (and reported) before a read trips on it.
    fn verify_blocks(&self) -> Result<(), StoreError> {
        let segments = Arc::clone(&self.view.read().segments);
        for segment in segments.iter() {
            let bad = segment.verify_blocks(&mut |twin| self.twin_key(twin))?;
            if bad > 0 {
                tracing::warn!(segment = %segment.path.display(), bad, "damaged blocks found at open; reads skip them");
            }
        }
        Ok(())
    }

    /// The problems recorded, then one per segment with damaged blocks.
    /// Details name the file and how much is affected, not the series:
    /// `/health` is public, and series names carry twin ids.
    fn problems(&self) -> Vec<StoreProblem> {
        let mut problems = self.problems.snapshot();
        let view = self.view.read().clone();
        for segment in view.segments.iter().rev() {
            let bad = segment.bad.list();
            if bad.is_empty() {
                continue;
            }
            let points: u64 = bad.iter().map(|b| u64::from(b.points)).sum();
            let series: HashSet<&str> = bad.iter().filter_map(|b| b.series.as_deref()).collect();
            let affected = match series.len() {
                0 => format!("{points} points"),
                n => format!("{points} points of {n} series"),
            };
            let name = file_name(&segment.path);
            problems.push(StoreProblem {
                component: "segments",
                severity: Severity::Degraded,
                detail: format!(
                    "{name}: {} damaged block(s) at byte(s) {} ({affected}) are skipped by reads; \
                     `doppel repair` or the next compaction drops them",
                    bad.len(),
                    bad.iter().map(|b| b.offset.to_string()).collect::<Vec<_>>().join(", "),
                ),
            });
        }
        problems
    }

    fn write(&self, batch: &Batch) -> Result<WriteReceipt, StoreError> {
        let points = batch.point_count();
        if points == 0 {
            return Ok(WriteReceipt { points: 0, lsn: 0, led_fsync: false });
        }
        self.check_head_room()?;
        let mut record = RECORD_BUFFER.take();
        match &self.sealing {
            None => frame_record("batch", &mut record, |out| {
                encode_points(batch, out);
                Ok(())
            })?,
            Some(sealing) => {
                let catalog = self.catalog.read();
                let mut key_of = |twin: &TwinId| {
                    catalog
                        .numbers
                        .get(twin)
                        .and_then(|&number| sealing.twin_key(number))
                        .ok_or_else(|| StoreError::UnknownTwin { twin: twin.to_string() })
                };
                frame_record("batch", &mut record, |out| encode_points_sealed(batch, &mut key_of, out))?;
            }
        }
        let logged = self.log_and_apply(&record, batch);
        if record.capacity() <= KEPT_RECORD_BUFFER_BYTES {
            RECORD_BUFFER.set(record);
        }
        let (lsn, led_fsync, head_points) = logged?;
        self.counters.points_written.fetch_add(points as u64, Ordering::Relaxed);
        if head_points >= self.config.head_flush_points {
            if self.config.background {
                self.wake_flush.notify_one();
            } else if let Some(_f) = self.flushing.try_lock() {
                self.flush_locked()?;
            }
        }
        Ok(WriteReceipt { points, lsn, led_fsync })
    }

    /// Points in the head filling and the head being flushed.
    fn head_points(&self) -> usize {
        let view = self.view.read();
        view.active.point_count() + view.frozen.as_ref().map_or(0, |(h, _)| h.point_count())
    }

    fn check_head_room(&self) -> Result<(), StoreError> {
        let head_points = self.head_points();
        let limit = self.config.head_limit_points;
        if head_points < limit {
            return Ok(());
        }
        self.counters.refused_flush_behind.fetch_add(1, Ordering::Relaxed);
        // Flushes start when the head reaches `head_flush_points`; wake the
        // maintenance thread in case this head got here between its ticks.
        self.wake_flush.notify_one();
        Err(StoreError::FlushBehind { head_points, limit })
    }

    /// Appends a framed batch record, waits for it to be durable and
    /// inserts the batch into the head; returns (lsn, led the fsync, head
    /// points).
    fn log_and_apply(&self, record: &[u8], batch: &Batch) -> Result<(u64, bool, usize), StoreError> {
        let _gate = self.gate.read();
        let head = Arc::clone(&self.view.read().active);
        let lsn = self.wal.append(record)?;
        let led_fsync = self.wal.sync_to(lsn)?;
        head.insert_batch(batch, lsn);
        head.note_write(Timestamp::now());
        Ok((lsn, led_fsync, head.point_count()))
    }

    fn put_twins(&self, twins: &[TwinRecord]) -> Result<(), StoreError> {
        let mut reserve = self.sealing.as_ref().map(|_| self.key_reserve.lock());
        let numbers = match reserve.as_deref_mut() {
            Some(reserve) => self.number_twins(twins, reserve)?,
            None => vec![None; twins.len()],
        };
        let records = twins
            .iter()
            .zip(&numbers)
            .map(|(twin, key)| match key {
                None => build_record("twin record", 256, |out| {
                    encode_upsert(twin, out);
                    Ok(())
                }),
                Some(key) => build_record("twin record", 256, |out| encode_upsert_sealed(twin, key, out)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let _gate = self.gate.read();
        let mut last = None;
        for record in &records {
            last = Some(self.wal.append(record)?);
        }
        let Some(lsn) = last else { return Ok(()) };
        self.wal.sync_to(lsn)?;
        let mut catalog = self.catalog.write();
        for (twin, key) in twins.iter().zip(numbers) {
            if let Some(key) = key {
                catalog.number(&twin.id, key.number);
            }
            catalog.upsert(twin.clone());
        }
        Ok(())
    }

    /// In a sealed store, each twin's key: its own for a known twin, a new
    /// number and key (durably in the keyring) for a new one. `None` for
    /// every twin of a plain store. The caller holds `key_reserve`, whose
    /// content is `reserve`.
    fn number_twins(
        &self,
        twins: &[TwinRecord],
        reserve: &mut Vec<u64>,
    ) -> Result<Vec<Option<TwinKey>>, StoreError> {
        let Some(sealing) = &self.sealing else { return Ok(vec![None; twins.len()]) };
        let mut numbers = Vec::with_capacity(twins.len());
        let mut fresh: HashMap<&TwinId, u64> = HashMap::new();
        for twin in twins {
            let known = self.catalog.read().numbers.get(&twin.id).copied();
            let number = match known.or_else(|| fresh.get(&twin.id).copied()) {
                Some(number) => number,
                None => {
                    if reserve.is_empty() {
                        self.refill_key_reserve(sealing, reserve)?;
                    }
                    let number =
                        reserve.pop().ok_or_else(|| StoreError::UnknownTwin { twin: twin.id.to_string() })?;
                    fresh.insert(&twin.id, number);
                    number
                }
            };
            numbers.push(number);
        }
        numbers
            .into_iter()
            .zip(twins)
            .map(|(number, twin)| {
                sealing
                    .twin_key(number)
                    .map(Some)
                    .ok_or_else(|| StoreError::UnknownTwin { twin: twin.id.to_string() })
            })
            .collect()
    }

    /// Creates the keys of [`KEY_RESERVE`] new twin numbers that share one
    /// keyring shard (`n`, `n + 256`, ...), so that one shard rewrite and
    /// its fsyncs pay for that many twin creations instead of one. Numbers
    /// of a reserve left unused by a restart are skipped for good: numbers
    /// only grow, above every number the keyring holds.
    fn refill_key_reserve(&self, sealing: &Sealing, reserve: &mut Vec<u64>) -> Result<(), StoreError> {
        let base = self.catalog.read().next_number;
        let numbers: Vec<u64> = (0..KEY_RESERVE).map(|i| base + i * doppel_crypto::KEYRING_SHARDS).collect();
        sealing.keyring().create_many(&numbers).map_err(StoreError::Keyring)?;
        if let Some(&highest) = numbers.last() {
            self.catalog.write().saw_number(highest);
        }
        reserve.extend(numbers.into_iter().rev());
        Ok(())
    }

    /// The key to open `twin`'s sealed data with; `None` in a plain store,
    /// or when the twin has no key (unknown, or deleted and shredded).
    fn twin_key(&self, twin: &TwinId) -> Option<TwinKey> {
        let sealing = self.sealing.as_ref()?;
        let number = *self.catalog.read().numbers.get(twin)?;
        sealing.twin_key(number)
    }

    fn delete_twin(&self, id: &TwinId) -> Result<bool, StoreError> {
        let _gate = self.gate.write();
        let view = self.view.read().clone();
        let existed = self.catalog.read().twins.contains(id)
            || !self.twin_keys(&view, id, self.tombstone(id))?.is_empty();
        if !existed {
            return Ok(false);
        }
        // Every order handed out so far (segments, the head being flushed)
        // is covered; the active head is purged below and gets a higher order.
        let watermark = self.next_seq.load(Ordering::Acquire) - 1;
        let record = match &self.sealing {
            None => build_record("twin delete", 64, |out| {
                encode_delete(id, watermark, out);
                Ok(())
            })?,
            Some(sealing) => {
                // The key goes first: from here on the twin's data cannot
                // be read, whatever happens to the rest of the delete.
                let number = self.catalog.read().numbers.get(id).copied();
                if let Some(number) = number {
                    sealing.keyring().destroy(number).map_err(StoreError::Keyring)?;
                }
                let number = number.unwrap_or(doppel_crypto::STORE_KEY);
                build_record("twin delete", 96, |out| {
                    encode_delete_sealed(id, number, watermark, sealing, out)
                })?
            }
        };
        let lsn = self.wal.append(&record)?;
        self.wal.sync_to(lsn)?;
        self.catalog.write().delete(id, watermark);
        self.reclaim_deleted.store(true, Ordering::Release);
        view.active.purge(id);
        if let Some((frozen, _)) = &view.frozen {
            frozen.purge(id);
        }
        Ok(true)
    }

    fn tombstone(&self, twin: &TwinId) -> Option<u64> {
        self.catalog.read().tombstones.get(twin).copied()
    }

    /// Counts `keys` as listed, and passes them on.
    fn listed<T>(&self, keys: Vec<T>) -> Vec<T> {
        self.counters.series_keys_listed.fetch_add(keys.len() as u64, Ordering::Relaxed);
        keys
    }

    /// Segments (oldest order first) that may hold visible data of a twin
    /// with tombstone `tomb`; sealed ones only when the twin `has_key`.
    fn visible_segments(
        view: &View,
        tomb: Option<u64>,
        has_key: bool,
    ) -> impl Iterator<Item = &Arc<Segment>> {
        view.segments
            .iter()
            .rev()
            .filter(move |s| tomb.is_none_or(|mark| s.meta.order > mark) && (has_key || !s.is_sealed()))
    }

    fn twin_keys(
        &self,
        view: &View,
        twin: &TwinId,
        tomb: Option<u64>,
    ) -> Result<BTreeSet<SeriesKey>, StoreError> {
        let mut keys: BTreeSet<SeriesKey> = self.listed(view.active.keys_of(twin)).into_iter().collect();
        if let Some((frozen, _)) = &view.frozen {
            keys.extend(self.listed(frozen.keys_of(twin)));
        }
        let key = self.twin_key(twin);
        for segment in Self::visible_segments(view, tomb, key.is_some()) {
            keys.extend(self.listed(segment.series_of(twin, None)?).into_iter().map(|(key, _)| key));
        }
        Ok(keys)
    }

    /// The series `q` matches and where the visible segments hold them,
    /// reading each segment's index once.
    fn matches<'v>(
        &self,
        view: &'v View,
        q: &RangeQuery,
        tomb: Option<u64>,
    ) -> Result<Matches<'v>, StoreError> {
        let wanted = |k: &SeriesKey| k.signal == q.signal && k.provenance.matches(&q.provenance);
        let mut keys: BTreeSet<SeriesKey> =
            self.listed(view.active.keys_of_signal(&q.twin, &q.signal)).into_iter().filter(wanted).collect();
        if let Some((frozen, _)) = &view.frozen {
            keys.extend(self.listed(frozen.keys_of_signal(&q.twin, &q.signal)).into_iter().filter(wanted));
        }
        let mut segments = Vec::new();
        let key = self.twin_key(&q.twin);
        for segment in Self::visible_segments(view, tomb, key.is_some()) {
            let mut hits = self.listed(segment.series_of(&q.twin, Some(&q.signal))?);
            hits.retain(|(key, _)| wanted(key));
            // Index order is that of the keys' text, not of `SeriesKey`.
            hits.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
            if !hits.is_empty() {
                keys.extend(hits.iter().map(|(key, _)| key.clone()));
                segments.push((segment.as_ref(), hits));
            }
        }
        Ok(Matches { keys: keys.into_iter().collect(), segments, key })
    }

    fn count_at_least(&self, q: &RangeQuery) -> Result<u64, StoreError> {
        let view = self.view.read().clone();
        let tomb = self.tombstone(&q.twin);
        let (from, to) = (q.from.as_nanos(), q.to.as_nanos());
        let matches = self.matches(&view, q, tomb)?;
        let heads = || std::iter::once(&view.active).chain(view.frozen.as_ref().map(|(head, _)| head));
        let mut total = 0u64;
        for key in &matches.keys {
            let in_segments =
                matches.sources(key).filter_map(|(_, blocks)| SourceSpan::of_blocks_inside(blocks, from, to));
            let in_heads = heads().filter_map(|head| head.span(key, from, to));
            total += point_count::at_least(in_segments.chain(in_heads).collect());
        }
        Ok(total)
    }

    /// Each matching series' columns in range, last write winning.
    fn query_columns(&self, q: &RangeQuery) -> Result<Vec<(SeriesKey, Columns)>, StoreError> {
        let view = self.view.read().clone();
        let tomb = self.tombstone(&q.twin);
        let (from, to) = (q.from.as_nanos(), q.to.as_nanos());
        let mut out = Vec::new();
        let matches = self.matches(&view, q, tomb)?;
        for key in &matches.keys {
            let mut merged = Columns::default();
            for (segment, blocks) in matches.sources(key) {
                merged = merge_lww(merged, segment.read(blocks, matches.key.as_ref(), from, to)?);
            }
            if let Some((frozen, _)) = &view.frozen
                && let Some(cols) = frozen.read(key, from, to)
            {
                merged = merge_lww(merged, cols);
            }
            if let Some(cols) = view.active.read(key, from, to) {
                merged = merge_lww(merged, cols);
            }
            if !merged.times.is_empty() {
                out.push((key.clone(), merged));
            }
        }
        Ok(out)
    }

    /// The common case of an aggregate, one series whose data in range
    /// lives in one segment (a compacted history, nothing recent in the
    /// head): its blocks are streamed into `builder` with no merge and no
    /// copy of the whole range. Returns false, having pushed nothing, when
    /// the query needs the general path.
    fn stream_single_source(
        &self,
        q: &RangeQuery,
        builder: &mut BucketBuilder<'_>,
    ) -> Result<bool, StoreError> {
        let view = self.view.read().clone();
        let tomb = self.tombstone(&q.twin);
        let (from, to) = (q.from.as_nanos(), q.to.as_nanos());
        let matches = self.matches(&view, q, tomb)?;
        let [key] = matches.keys.as_slice() else { return Ok(false) };
        let in_head = view.active.has_data(key, from, to)
            || view.frozen.as_ref().is_some_and(|(frozen, _)| frozen.has_data(key, from, to));
        if in_head {
            return Ok(false);
        }
        let mut sources =
            matches.sources(key).filter(|(_, blocks)| blocks.iter().any(|b| b.overlaps(from, to)));
        let (Some((segment, blocks)), None) = (sources.next(), sources.next()) else { return Ok(false) };
        let cuts = scan_cuts(blocks, from, to);
        let key = matches.key.as_ref();
        if cuts.is_empty() {
            segment.scan(blocks, key, from, to, |times, values| builder.push(times, values))?;
            return Ok(true);
        }
        scan_in_parallel(segment, blocks, key, from, to, &cuts, builder)?;
        Ok(true)
    }

    fn last(&self, q: &RangeQuery) -> Result<Option<(SeriesKey, Sample)>, StoreError> {
        let view = self.view.read().clone();
        let tomb = self.tombstone(&q.twin);
        let (from, to) = (q.from.as_nanos(), q.to.as_nanos());
        let mut best: Option<(SeriesKey, i64, f64)> = None;
        let matches = self.matches(&view, q, tomb)?;
        for key in &matches.keys {
            // Sources from oldest to newest: a later source's equal time wins.
            let mut candidate: Option<(i64, f64)> = None;
            let mut consider = |found: Option<(i64, f64)>| {
                if let Some((t, v)) = found
                    && candidate.is_none_or(|(ct, _)| t >= ct)
                {
                    candidate = Some((t, v));
                }
            };
            for (segment, blocks) in matches.sources(key) {
                consider(segment.last(blocks, matches.key.as_ref(), from, to)?);
            }
            if let Some((frozen, _)) = &view.frozen {
                consider(frozen.last(key, from, to));
            }
            consider(view.active.last(key, from, to));
            if let Some((t, v)) = candidate
                && best.as_ref().is_none_or(|(_, bt, _)| t > *bt)
            {
                best = Some((key.clone(), t, v));
            }
        }
        Ok(best.and_then(|(key, t, v)| {
            Value::new(v).ok().map(|value| (key, Sample { time: Timestamp::from_nanos(t), value }))
        }))
    }

    fn flush_locked(&self) -> Result<FlushReport, StoreError> {
        // A stopped store writes nothing more, not even a segment: the WAL
        // it would delete after it is what a restart replays.
        self.wal.check_writable()?;
        let mut report = FlushReport::default();
        // A frozen head left by a failed flush goes first, under its order.
        let leftover = self.view.read().frozen.clone();
        if let Some((frozen, order)) = leftover {
            self.write_frozen(&frozen, order, self.wal_start_floor(), &mut report)?;
        }
        let catalog_dirty = {
            let c = self.catalog.read();
            c.version != c.snapshot_version
        };
        let (frozen, order, wal_start) = {
            let _gate = self.gate.write();
            let active = Arc::clone(&self.view.read().active);
            if active.is_empty() && !catalog_dirty {
                return Ok(report);
            }
            let wal_start = self.wal.rotate()?;
            let order = self.next_seq.fetch_add(1, Ordering::AcqRel);
            let mut view = self.view.write();
            view.active = Arc::new(Head::new(Arc::clone(&self.registry)));
            view.frozen = Some((Arc::clone(&active), order));
            (active, order, wal_start)
        };
        // The catalog goes first: once the segment is in place, a restart
        // replays only the WAL from `wal_start` on, so the catalog records
        // before it must already be in the snapshot.
        self.snapshot_catalog(&mut report)?;
        self.write_frozen(&frozen, order, wal_start, &mut report)?;
        drop(frozen);
        crate::memory::release_freed_memory();
        report.wal_files_removed += self.remove_wal_before(wal_start)?;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(report)
    }

    /// The WAL position every current segment already covers.
    fn wal_start_floor(&self) -> u64 {
        self.view.read().segments.iter().map(|s| s.meta.wal_start).max().unwrap_or(0)
    }

    fn write_frozen(
        &self,
        frozen: &Head,
        order: u64,
        wal_start: u64,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        let series = frozen.sorted_series();
        if series.is_empty() {
            self.view.write().frozen = None;
            frozen.retire();
            return Ok(());
        }
        report.series += series.len();
        report.points += series.iter().map(|(_, c)| c.len() as u64).sum::<u64>();
        let meta = SegmentMeta { order, wal_start, replaced: Vec::new() };
        let mut key_of = |twin: &TwinId| self.twin_key(twin);
        let seal = self.sealing.as_ref().map(|sealing| SealWith { sealing, key_of: &mut key_of });
        let segment = write_segment(&self.segment_dir, order, meta, seal, series.into_iter().map(Ok))?;
        report.segment = Some(segment.path.clone());
        report.segment_bytes += segment.bytes;
        self.counters.flushed_bytes.fetch_add(segment.bytes, Ordering::Relaxed);
        // The segment takes its references before the head gives up its
        // own, so no series is ever uncounted in between.
        self.register(&segment)?;
        {
            let mut view = self.view.write();
            let mut segments: Vec<Arc<Segment>> = view.segments.iter().cloned().collect();
            segments.push(Arc::new(segment));
            segments.sort_by_key(|s| std::cmp::Reverse(s.meta.order));
            view.segments = Arc::new(segments);
            view.frozen = None;
        }
        frozen.retire();
        Ok(())
    }

    /// Takes the series registry's references for every series of a new
    /// segment. Its index is read back from disk (pages just written, so
    /// from the page cache); if that fails, the references taken so far
    /// are given back and the error returned.
    fn register(&self, segment: &Segment) -> Result<(), StoreError> {
        let mut taken = 0usize;
        let result = segment.for_each_key(|key| {
            self.registry.acquire(key);
            taken += 1;
            ControlFlow::Continue(())
        });
        self.counters.series_keys_listed.fetch_add(taken as u64, Ordering::Relaxed);
        if result.is_err() {
            let rollback = segment.for_each_key(|key| {
                if taken == 0 {
                    return ControlFlow::Break(());
                }
                self.registry.release(key);
                taken -= 1;
                ControlFlow::Continue(())
            });
            if let Err(error) = rollback {
                let segment = segment.path.display();
                tracing::error!(%segment, %error, "cannot give back a segment's series references");
            }
        }
        result
    }

    /// Persists the catalog's changes since the last flush: appended to
    /// the catalog log, or, once the files hold more superseded entries
    /// than live ones, as a whole new snapshot that empties it.
    fn snapshot_catalog(&self, report: &mut FlushReport) -> Result<(), StoreError> {
        let mut log = self.catalog_log.lock();
        let sealing = self.sealing.as_deref();
        let (bytes, version, whole, entries) = {
            let c = self.catalog.read();
            if c.version == c.snapshot_version {
                return Ok(());
            }
            let live = (c.twins.len() + c.tombstones.len()) as u64;
            let whole = log.wants_snapshot(live);
            let (bytes, entries) = match whole {
                true => (c.snapshot(sealing)?, live),
                false => (c.changes(sealing)?, c.changed.len() as u64),
            };
            (bytes, c.version, whole, entries)
        };
        if whole {
            log.write_snapshot(&bytes, entries)?;
        } else {
            log.append(&bytes, entries)?;
        }
        self.catalog.write().persisted(version);
        report.catalog_snapshot = true;
        Ok(())
    }

    fn remove_wal_before(&self, seq: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (file_seq, path) in list_wal_files(self.wal.dir())? {
            if file_seq < seq {
                doppel_fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(self.wal.dir())?;
        }
        Ok(removed)
    }

    /// Merges the segments `scope` names into one; `None` when there is
    /// nothing to merge. The caller holds `compacting`.
    fn compact_locked(&self, scope: Scope) -> Result<Option<CompactionReport>, StoreError> {
        self.wal.check_writable()?;
        let mut segments: Vec<Arc<Segment>> = self.view.read().segments.iter().cloned().collect();
        segments.sort_by_key(|s| s.meta.order);
        let run = match scope {
            Scope::All => 0..segments.len(),
            Scope::Tier => {
                let bytes: Vec<u64> = segments.iter().map(|s| s.bytes).collect();
                let Some(run) = tiers::next_merge(&bytes) else { return Ok(None) };
                run
            }
        };
        if run.is_empty() {
            return Ok(None);
        }
        if scope == Scope::All {
            self.reclaim_deleted.store(false, Ordering::Release);
        }
        // Flushes only add segments of higher orders, so a run that starts
        // at the oldest segment still does when the output is published.
        let apply_retention = run.start == 0;
        let inputs = segments[run].to_vec();
        debug_assert!(inputs.windows(2).all(|w| w[0].meta.order < w[1].meta.order));
        let mut report = CompactionReport::default();
        let tombstones: HashMap<TwinId, u64> = self.catalog.read().tombstones.clone();
        let retention =
            if apply_retention { self.retention.read().clone() } else { RetentionPolicy::default() };
        let now = Timestamp::now().as_nanos();
        report.segments_in = inputs.len();
        report.points_in = inputs.iter().map(|s| s.point_count()).sum();
        report.bytes_before = inputs.iter().map(|s| s.bytes).sum();
        let id = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let meta = SegmentMeta {
            order: inputs.iter().map(|s| s.meta.order).max().unwrap_or(0),
            wal_start: inputs.iter().map(|s| s.meta.wal_start).max().unwrap_or(0),
            replaced: inputs.iter().map(|s| s.id).collect(),
        };
        let (mut dropped_deleted, mut dropped_retention) = (0u64, 0u64);
        let mut twin_key: Option<(TwinId, Option<TwinKey>)> = None;
        let series = SeriesMerge::new(inputs.iter().map(Arc::as_ref))?.map(|item| {
            let MergedSeries { key, holders } = item?;
            let tomb = tombstones.get(&key.twin).copied();
            if twin_key.as_ref().is_none_or(|(twin, _)| *twin != key.twin) {
                twin_key = Some((key.twin.clone(), self.twin_key(&key.twin)));
            }
            let sealed_key = twin_key.as_ref().and_then(|(_, k)| k.as_ref());
            let mut merged = Columns::default();
            // Holders come in input order, oldest segment order first.
            for (input, blocks) in holders {
                let segment = &inputs[input];
                if tomb.is_some_and(|mark| segment.meta.order <= mark)
                    || (segment.is_sealed() && sealed_key.is_none())
                {
                    dropped_deleted += blocks.iter().map(|b| u64::from(b.count)).sum::<u64>();
                    continue;
                }
                merged = merge_lww(merged, segment.read(&blocks, sealed_key, i64::MIN, i64::MAX)?);
            }
            if let Some(span) = retention.for_signal(&key.signal) {
                let cutoff = now.saturating_sub(span.as_nanos());
                let keep_from = merged.times.partition_point(|&t| t < cutoff);
                dropped_retention += keep_from as u64;
                merged.times.drain(..keep_from);
                merged.values.drain(..keep_from);
            }
            Ok((key, merged))
        });
        let mut key_of = |twin: &TwinId| self.twin_key(twin);
        let seal = self.sealing.as_ref().map(|sealing| SealWith { sealing, key_of: &mut key_of });
        let segment = write_segment(&self.segment_dir, id, meta, seal, series)?;
        // Reads of the inputs skipped their damaged blocks (found at open
        // or by this merge), so those points are gone from the output.
        for input in &inputs {
            let name = file_name(&input.path);
            for bad in input.bad.list() {
                report.points_dropped_damaged += u64::from(bad.points);
                report.damaged_blocks.push(format!(
                    "{name} at byte {}: {} points of {} ({})",
                    bad.offset,
                    bad.points,
                    bad.series.as_deref().unwrap_or("an unknown series"),
                    bad.reason
                ));
            }
        }
        if !report.damaged_blocks.is_empty() {
            tracing::warn!(dropped = ?report.damaged_blocks, "compaction dropped damaged blocks");
            let files: BTreeSet<String> =
                report.damaged_blocks.iter().filter_map(|d| d.split(' ').next()).map(str::to_owned).collect();
            self.problems.add(
                "segments",
                Severity::Degraded,
                format!(
                    "compaction dropped {} points of {} damaged block(s) of {}",
                    report.points_dropped_damaged,
                    report.damaged_blocks.len(),
                    files.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        report.points_dropped_deleted = dropped_deleted;
        report.points_dropped_retention = dropped_retention;
        report.points_out = segment.point_count();
        report.bytes_after = segment.bytes;
        self.counters.compacted_bytes.fetch_add(segment.bytes, Ordering::Relaxed);
        let replaced: HashSet<u64> = segment.meta.replaced.iter().copied().collect();
        self.register(&segment)?;
        {
            let mut view = self.view.write();
            let mut segments: Vec<Arc<Segment>> =
                view.segments.iter().filter(|s| !replaced.contains(&s.id)).cloned().collect();
            segments.push(Arc::new(segment));
            segments.sort_by_key(|s| std::cmp::Reverse(s.meta.order));
            view.segments = Arc::new(segments);
        }
        for input in &inputs {
            // The inputs are out of the view already, so a failure here
            // only leaves the series gauge too high; it is not the
            // compaction's failure.
            let released = input.for_each_key(|key| {
                self.registry.release(key);
                ControlFlow::Continue(())
            });
            if let Err(error) = released {
                let segment = input.path.display();
                tracing::error!(%segment, %error, "cannot release a compacted segment's series from the count");
            }
        }
        for input in &inputs {
            match doppel_fs::remove_file(&input.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { op: "remove", path: input.path.clone(), source: e }),
            }
        }
        sync_dir(&self.segment_dir)?;
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        self.counters.retention_dropped.fetch_add(dropped_retention, Ordering::Relaxed);
        let skips: u64 = inputs.iter().map(|s| s.bad.skipped()).sum();
        self.counters.bad_block_skips_retired.fetch_add(skips, Ordering::Relaxed);
        Ok(Some(report))
    }

    fn stats(&self) -> StoreStats {
        let head_points = self.head_points();
        let view = self.view.read().clone();
        let c = &self.wal.counters;
        StoreStats {
            series: self.registry.count(),
            twins: self.catalog.read().twins.len(),
            head_points: head_points as u64,
            head_limit_points: self.config.head_limit_points as u64,
            writes_refused_flush_behind_total: self.counters.refused_flush_behind.load(Ordering::Relaxed),
            segments: view.segments.len(),
            segment_bytes: view.segments.iter().map(|s| s.bytes).sum(),
            wal_bytes: self.wal.disk_bytes(),
            points_written_total: self.counters.points_written.load(Ordering::Relaxed),
            fsyncs_total: c.fsyncs.load(Ordering::Relaxed),
            fsync_seconds_total: c.fsync_nanos_total.load(Ordering::Relaxed) as f64 / 1e9,
            last_fsync_micros: c.last_fsync_micros.load(Ordering::Relaxed),
            flushes_total: self.counters.flushes.load(Ordering::Relaxed),
            compactions_total: self.counters.compactions.load(Ordering::Relaxed),
            flushed_bytes_total: self.counters.flushed_bytes.load(Ordering::Relaxed),
            compacted_bytes_total: self.counters.compacted_bytes.load(Ordering::Relaxed),
            retention_dropped_points_total: self.counters.retention_dropped.load(Ordering::Relaxed),
            bad_blocks: view.segments.iter().map(|s| s.bad.len()).sum(),
            bad_block_reads_skipped_total: self.counters.bad_block_skips_retired.load(Ordering::Relaxed)
                + view.segments.iter().map(|s| s.bad.skipped()).sum::<u64>(),
            series_keys_listed_total: self.counters.series_keys_listed.load(Ordering::Relaxed),
        }
    }

    /// Turns a failed fsync into stopped writes: the WAL refuses every
    /// later write, `/health` names the cause, and the caller gets
    /// [`StoreError::Stopped`]. Every write path returns through here.
    fn guard<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Err(StoreError::SyncFailed { path, source }) => {
                self.wal.stop(format!("fsync of {} failed: {source}", file_name(&path)));
                self.report_stopped();
                Err(self.wal.stopped())
            }
            Err(e @ StoreError::Stopped { .. }) => {
                self.report_stopped();
                Err(e)
            }
            other => other,
        }
    }

    /// Adds the stopped store to its problems, once.
    fn report_stopped(&self) {
        if !self.stop_reported.swap(true, Ordering::AcqRel) {
            let StoreError::Stopped { cause } = self.wal.stopped() else { return };
            tracing::error!(%cause, "the store stopped accepting writes; restart it once the disk is fixed");
            self.problems.add(
                "writes",
                Severity::Failing,
                format!("writes are stopped since {cause}; reads still work; restart once the disk is fixed"),
            );
        }
    }

    /// Waits on `wake` for one tick or until woken; false once the store
    /// is shutting down.
    fn wait(&self, wake: &Condvar) -> bool {
        let mut shutdown = self.shutdown.lock();
        if !*shutdown {
            wake.wait_for(&mut shutdown, MAINTENANCE_TICK);
        }
        !*shutdown
    }

    /// Flushes the head when it is full or old enough, then wakes the
    /// compaction thread.
    fn flush_loop(&self) {
        while self.wait(&self.wake_flush) {
            let (head_points, first_write) = {
                let view = self.view.read();
                (view.active.point_count(), view.active.first_write())
            };
            let age_nanos =
                first_write.map_or(0, |t| Timestamp::now().as_nanos().saturating_sub(t.as_nanos()));
            let interval_nanos = i64::try_from(self.config.flush_interval.as_nanos()).unwrap_or(i64::MAX);
            if head_points >= self.config.head_flush_points
                || (first_write.is_some() && age_nanos >= interval_nanos)
            {
                let _f = self.flushing.lock();
                match self.guard(self.flush_locked()) {
                    Ok(_) => {
                        self.wake_compaction.notify_one();
                    }
                    Err(e) => tracing::error!(error = %e, "background flush failed"),
                }
            }
        }
    }

    /// Merges tiers until none is due, and the whole store once per
    /// [`RECLAIM_INTERVAL`] when retention or deleted twins leave space to
    /// reclaim.
    fn compaction_loop(&self) {
        let mut last_reclaim = Instant::now();
        while self.wait(&self.wake_compaction) {
            let reclaim = self.retention.read().is_limited() || self.reclaim_deleted.load(Ordering::Acquire);
            if reclaim && last_reclaim.elapsed() >= RECLAIM_INTERVAL {
                let _c = self.compacting.lock();
                match self.guard(self.compact_locked(Scope::All)) {
                    Ok(_) => last_reclaim = Instant::now(),
                    Err(e) => tracing::error!(error = %e, "background compaction failed"),
                }
            }
            loop {
                let _c = self.compacting.lock();
                match self.guard(self.compact_locked(Scope::Tier)) {
                    Ok(Some(_)) if !*self.shutdown.lock() => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "background compaction failed");
                        break;
                    }
                }
            }
        }
    }
}

/// Blocks in range below which an aggregate decodes on one thread: a
/// thread costs ~20–50 µs to start and join, about a third of one block's
/// decode, so each thread needs several blocks to gain anything.
const MIN_BLOCKS_PER_SCAN_THREAD: usize = 4;
/// Most threads one aggregate decodes on: beyond this a query would take
/// cores from concurrent requests for little latency gain (a year of minute
/// data is ~65 blocks).
const MAX_SCAN_THREADS: usize = 4;

/// Threads this process may run at once, asked once: the answer comes from
/// the scheduler and cgroup files, too slow to read per query.
fn scan_thread_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(MAX_SCAN_THREADS)
    })
}

/// Where to split a scan of one series' `blocks` in `[from, to)` across
/// threads: the start times of the blocks that begin each part after the
/// first, so that every block is decoded by exactly one thread. Empty when
/// the range has too few blocks to pay for a thread.
fn scan_cuts(blocks: &[BlockMeta], from: i64, to: i64) -> Vec<i64> {
    let in_range: Vec<i64> = blocks.iter().filter(|b| b.overlaps(from, to)).map(|b| b.min_time).collect();
    let parts = scan_thread_budget().min(in_range.len() / MIN_BLOCKS_PER_SCAN_THREAD);
    if parts < 2 {
        return Vec::new();
    }
    // A segment's blocks of one series are written in time order and never
    // overlap, so a part that ends before a block's first time holds every
    // earlier block whole.
    (1..parts).map(|part| in_range[part * in_range.len() / parts]).collect()
}

/// Streams one series' `blocks` in `[from, to)` into `builder` on
/// `cuts.len() + 1` threads, each decoding a contiguous run of blocks; the
/// parts are joined in time order so the buckets equal a sequential scan's
/// bit for bit.
fn scan_in_parallel(
    segment: &Segment,
    blocks: &[BlockMeta],
    key: Option<&TwinKey>,
    from: i64,
    to: i64,
    cuts: &[i64],
    builder: &mut BucketBuilder<'_>,
) -> Result<(), StoreError> {
    let mut tails: Vec<_> = cuts.iter().map(|_| builder.tail()).collect();
    let mut bounds = Vec::with_capacity(cuts.len() + 1);
    bounds.push(from);
    bounds.extend_from_slice(cuts);
    bounds.push(to);
    std::thread::scope(|scope| -> Result<(), StoreError> {
        let mut handles = Vec::with_capacity(tails.len());
        for (tail, range) in tails.iter_mut().zip(bounds.windows(2).skip(1)) {
            let (start, end) = (range[0], range[1]);
            let work =
                move || segment.scan(blocks, key, start, end, |times, values| tail.push(times, values));
            handles
                .push(std::thread::Builder::new().name("doppel-store-scan".into()).spawn_scoped(scope, work));
        }
        let mut result =
            segment.scan(blocks, key, bounds[0], bounds[1], |times, values| builder.push(times, values));
        for handle in handles {
            let part = match handle {
                Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: `work` was consumed by the failed
                // spawn, so report it; the caller sees an ordinary error.
                Err(e) => {
                    Err(StoreError::Io { op: "spawn scan thread", path: segment.path.clone(), source: e })
                }
            };
            result = result.and(part);
        }
        result
    })?;
    for tail in tails {
        builder.join(tail);
    }
    Ok(())
}

fn load_segments(
    dir: &Path,
    sealing: Option<&Arc<Sealing>>,
    report: &mut RecoveryReport,
) -> Result<Vec<Segment>, StoreError> {
    let mut segments = Vec::new();
    for (id, path) in list_segments(dir)? {
        match Segment::open(id, &path, sealing) {
            Ok(segment) => segments.push(segment),
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                let moved_to = path.with_extension("seg.corrupt");
                doppel_fs::rename(&path, &moved_to).map_err(StoreError::io("rename", &path))?;
                tracing::warn!(file = %path.display(), offset, %reason, "discarding a damaged segment");
                report.segments_discarded.push(DiscardedSegment {
                    file: path,
                    moved_to,
                    reason: format!("at byte {offset}: {reason}"),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let replaced: HashSet<u64> = segments.iter().flat_map(|s| s.meta.replaced.iter().copied()).collect();
    let (gone, kept): (Vec<Segment>, Vec<Segment>) =
        segments.into_iter().partition(|s| replaced.contains(&s.id));
    for segment in &gone {
        doppel_fs::remove_file(&segment.path).map_err(StoreError::io("remove", &segment.path))?;
    }
    if !gone.is_empty() {
        sync_dir(dir)?;
    }
    report.replaced_segments_removed = gone.len();
    Ok(kept)
}

/// Copies a damaged range of WAL file `path` to `quarantine/<file>.<start>-<end>`
/// so that what was lost can still be examined, and describes it. The WAL
/// file itself is left as it is (it is deleted once flushed), so opening
/// again finds and reports the same range.
fn quarantine_wal_range(
    path: &Path,
    bytes: &[u8],
    range: &BadRange,
    quarantine: &Path,
) -> Result<WalDamage, StoreError> {
    create_dir(quarantine)?;
    let name = file_name(path);
    let copy = quarantine.join(format!("{name}.{}-{}", range.start, range.end));
    let damaged = bytes.get(range.start as usize..range.end as usize).unwrap_or_default();
    doppel_fs::File::create(&copy)
        .and_then(|file| file.write_all(damaged))
        .map_err(StoreError::io("write", &copy))?;
    tracing::warn!(
        file = %path.display(),
        start = range.start,
        end = range.end,
        records_lost = ?range.records,
        reason = ?range.reason,
        quarantined = %copy.display(),
        "damaged WAL records skipped; the records after them were replayed"
    );
    Ok(WalDamage {
        file: path.to_path_buf(),
        offset: range.start,
        bytes_dropped: range.end - range.start,
        records_lost: range.records,
        reason: range.reason.clone(),
        truncated: false,
        quarantined: Some(copy),
    })
}

/// Replays WAL files from `wal_start` on into `head` and `catalog`; returns
/// the number of records applied (the lsn to continue from). Damaged
/// ranges in the middle of a file are copied to `quarantine`.
fn replay_wal(
    files: &[(u64, PathBuf)],
    wal_start: u64,
    quarantine: &Path,
    head: &Head,
    catalog: &mut Catalog,
    sealing: Option<&Sealing>,
    report: &mut RecoveryReport,
) -> Result<u64, StoreError> {
    let mut lsn = 0u64;
    let newest = files.last().map(|(seq, _)| *seq);
    for (seq, path) in files.iter().filter(|(seq, _)| *seq >= wal_start) {
        let bytes = std::fs::read(path).map_err(StoreError::io("read", path))?;
        let scanned = scan(&bytes, sealing);
        if scanned.needs_keyring {
            return Err(StoreError::KeyringRequired { path: path.clone() });
        }
        report.wal_files_replayed += 1;
        for entry in scanned.entries {
            lsn += 1;
            report.wal_records_replayed += 1;
            match entry {
                WalEntry::Points(batch) => {
                    report.wal_points_replayed += batch.point_count() as u64;
                    head.insert_batch(&batch, lsn);
                }
                WalEntry::TwinUpsert { twin, number } => {
                    if let Some(number) = number {
                        catalog.number(&twin.id, number);
                    }
                    catalog.upsert(twin);
                }
                WalEntry::TwinDelete { id, watermark, number } => {
                    if let Some(number) = number {
                        catalog.saw_number(number);
                    }
                    catalog.delete(&id, watermark);
                    head.purge(&id);
                }
                WalEntry::Forgotten { number } => catalog.saw_number(number),
            }
        }
        for range in &scanned.bad_ranges {
            report.wal_damage.push(quarantine_wal_range(path, &bytes, range, quarantine)?);
        }
        if let Some(reason) = scanned.corruption {
            let offset = scanned.good_len;
            let bytes_dropped = bytes.len() as u64 - offset;
            // Only the newest file can have a torn tail after a crash (older
            // files were fsynced before the roll-over); cut it so the bytes
            // are gone for good. Damage in an older file is real corruption:
            // its rest is skipped, later files are still replayed because
            // they hold writes acknowledged after it.
            let truncated = Some(*seq) == newest;
            if truncated {
                let file = doppel_fs::File::open_with(std::fs::OpenOptions::new().write(true), path)
                    .map_err(StoreError::io("open", path))?;
                file.set_len(offset).map_err(StoreError::io("truncate", path))?;
                file.sync_all().map_err(StoreError::sync(path))?;
            }
            tracing::warn!(file = %path.display(), offset, bytes_dropped, ?reason, truncated, "damaged WAL record");
            report.wal_damage.push(WalDamage {
                file: path.clone(),
                offset,
                bytes_dropped,
                records_lost: None,
                reason,
                truncated,
                quarantined: None,
            });
        }
    }
    Ok(lsn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{BatchBuilder, Provenance, SignalName};
    use proptest::prelude::*;

    /// The series count the slow way, as `stats` computed it before the
    /// registry: the set of keys in the heads and segment indexes.
    fn recount_series(inner: &Inner) -> usize {
        let view = inner.view.read().clone();
        let mut keys: HashSet<SeriesKey> = view.active.all_keys().into_iter().collect();
        if let Some((frozen, _)) = &view.frozen {
            keys.extend(frozen.all_keys());
        }
        for segment in view.segments.iter() {
            keys.extend(segment.series().map(|item| item.unwrap().0));
        }
        keys.len()
    }

    fn heart_rate_key() -> SeriesKey {
        SeriesKey {
            twin: TwinId::new("p").unwrap(),
            signal: SignalName::new("heart_rate").unwrap(),
            provenance: Provenance::none(),
        }
    }

    /// A segment of one series in ~10 blocks: minute samples with gaps and
    /// fractional values (so a changed summation order would show).
    fn many_block_segment(dir: &Path) -> (Segment, Vec<i64>) {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut cols = Columns::default();
        let mut t = -3_000 * 60;
        for _ in 0..(crate::block::MAX_BLOCK_POINTS * 9 + 1234) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            t += 60 * (1 + (state % 3) as i64);
            cols.times.push(t);
            cols.values.push(60.0 + (state % 4001) as f64 / 37.0);
        }
        let times = cols.times.clone();
        let segment = crate::segment::write_segment(
            dir,
            1,
            crate::segment::SegmentMeta::default(),
            None,
            vec![Ok((heart_rate_key(), cols))],
        )
        .unwrap();
        (segment, times)
    }

    fn sequential(
        segment: &Segment,
        from: i64,
        to: i64,
        every: Option<Span>,
        aggs: &[Aggregate],
    ) -> Vec<Bucket> {
        let mut builder = BucketBuilder::new(every, from, aggs);
        let blocks = segment.blocks(&heart_rate_key()).unwrap().unwrap();
        segment.scan(&blocks, None, from, to, |t, v| builder.push(t, v)).unwrap();
        builder.finish()
    }

    fn bits(buckets: &[Bucket]) -> Vec<(i64, u64, Vec<u64>)> {
        buckets
            .iter()
            .map(|b| (b.start.as_nanos(), b.count, b.values.iter().map(|v| v.to_bits()).collect()))
            .collect()
    }

    #[test]
    fn a_scan_split_across_threads_equals_the_sequential_scan_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let (segment, times) = many_block_segment(dir.path());
        let key = heart_rate_key();
        let blocks = segment.blocks(&key).unwrap().unwrap();
        assert!(blocks.len() >= 10);
        let (first, last) = (times[0], times[times.len() - 1]);
        let ranges = [
            (first, last + 1),
            (i64::MIN, i64::MAX),
            // Starting and ending inside blocks.
            (times[100], times[times.len() - 100]),
            (blocks[2].min_time + 7, blocks[8].max_time - 7),
        ];
        // Bucket widths: cutting buckets at every block edge, rarely
        // aligned with them, longer than a block, and one whole bucket.
        let everies = [Span::from_nanos(60), Span::from_nanos(3_600), Span::from_nanos(7 * 86_400), None];
        for (from, to) in ranges {
            for every in everies {
                let expected = sequential(&segment, from, to, every, &Aggregate::ALL);
                assert!(!expected.is_empty());
                let in_range: Vec<i64> = blocks
                    .iter()
                    .filter(|b| b.max_time >= from && b.min_time < to)
                    .map(|b| b.min_time)
                    .collect();
                // Two, three and one-block-per-thread splits.
                for parts in [2, 3, in_range.len()] {
                    let cuts: Vec<i64> = (1..parts).map(|p| in_range[p * in_range.len() / parts]).collect();
                    let mut builder = BucketBuilder::new(every, from, &Aggregate::ALL);
                    scan_in_parallel(&segment, &blocks, None, from, to, &cuts, &mut builder).unwrap();
                    assert_eq!(
                        bits(&builder.finish()),
                        bits(&expected),
                        "{from}..{to} every {every:?} parts {parts}"
                    );
                }
            }
        }
    }

    #[test]
    fn scans_split_only_when_the_range_has_enough_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let (segment, times) = many_block_segment(dir.path());
        let key = heart_rate_key();
        let blocks = segment.blocks(&key).unwrap().unwrap();
        let whole = scan_cuts(&blocks, i64::MIN, i64::MAX);
        if scan_thread_budget() >= 2 {
            assert!(!whole.is_empty());
            assert!(whole.iter().all(|cut| blocks.iter().any(|b| b.min_time == *cut)));
        }
        // Two blocks, ranges holding no data at all, and no blocks.
        assert!(scan_cuts(&blocks, blocks[0].min_time, blocks[1].max_time).is_empty());
        assert!(scan_cuts(&blocks, times[times.len() - 1] + 1, i64::MAX).is_empty());
        assert!(scan_cuts(&blocks, i64::MIN, times[0]).is_empty());
        assert!(scan_cuts(&[], i64::MIN, i64::MAX).is_empty());
    }

    #[test]
    fn store_aggregates_of_a_long_history_match_the_buckets_of_its_raw_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let key = heart_rate_key();
        let mut builder = BatchBuilder::default();
        let mut expected_cols = Columns::default();
        for minute in 0..(crate::block::MAX_BLOCK_POINTS as i64 * 9) {
            let time = minute * 60_000_000_000;
            let value = 55.0 + (minute * 7919 % 613) as f64 / 10.0;
            builder.push_sample(
                key.clone(),
                Sample { time: Timestamp::from_nanos(time), value: Value::new(value).unwrap() },
            );
            expected_cols.times.push(time);
            expected_cols.values.push(value);
        }
        store.write(&builder.finish()).unwrap();
        store.flush().unwrap();
        let hour = Span::from_nanos(3_600_000_000_000);
        for (from, to) in
            [(0, i64::MAX), (90_000_000_000, 400_000 * 60_000_000_000), (i64::MAX - 1, i64::MAX)]
        {
            let q = RangeQuery {
                twin: key.twin.clone(),
                signal: key.signal.clone(),
                provenance: Provenance::none(),
                from: Timestamp::from_nanos(from),
                to: Timestamp::from_nanos(to),
            };
            let r = expected_cols.range(from, to);
            let cols = Columns {
                times: expected_cols.times[r.clone()].to_vec(),
                values: expected_cols.values[r].to_vec(),
            };
            for every in [hour, None] {
                let got = store.aggregate(&q, every, &Aggregate::ALL).unwrap();
                let want = crate::query::aggregate(&cols, every, from, &Aggregate::ALL);
                assert_eq!(bits(&got), bits(&want), "{from}..{to} every {every:?}");
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write { twin: u8, signal: u8, time: i64 },
        Flush,
        Compact,
        Delete { twin: u8 },
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..3u8, 0..3u8, 0..20i64).prop_map(|(twin, signal, time)| Op::Write { twin, signal, time }),
            1 => Just(Op::Flush),
            1 => Just(Op::Compact),
            1 => (0..3u8).prop_map(|twin| Op::Delete { twin }),
            1 => Just(Op::Reopen),
        ]
    }

    fn open(dir: &Path) -> Store {
        let mut config = StoreConfig::new(dir);
        config.background = false;
        Store::open(config).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn the_maintained_series_count_equals_a_recount(ops in proptest::collection::vec(op(), 1..25)) {
            let dir = tempfile::tempdir().unwrap();
            let mut store = open(dir.path());
            for op in ops {
                match op {
                    Op::Write { twin, signal, time } => {
                        let key = SeriesKey {
                            twin: TwinId::new(&format!("t{twin}")).unwrap(),
                            signal: SignalName::new(&format!("s{signal}")).unwrap(),
                            provenance: Provenance::none(),
                        };
                        let mut builder = BatchBuilder::default();
                        builder.push_sample(key, Sample { time: Timestamp::from_nanos(time), value: Value::new(1.0).unwrap() });
                        store.write(&builder.finish()).unwrap();
                    }
                    Op::Flush => { store.flush().unwrap(); }
                    Op::Compact => { store.compact().unwrap(); }
                    Op::Delete { twin } => { store.delete_twin(&TwinId::new(&format!("t{twin}")).unwrap()).unwrap(); }
                    Op::Reopen => {
                        drop(store);
                        store = open(dir.path());
                    }
                }
                prop_assert_eq!(store.stats().series, recount_series(&store.inner));
            }
        }
    }
}
