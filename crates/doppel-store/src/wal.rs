//! The write-ahead log: framing, payload codec, group-committed appends and
//! recovery scanning.
//!
//! A WAL file `wal/<seq>.wal` (seq as 20 zero-padded decimal digits) is a
//! sequence of records `[len u32 LE][crc32 u32 LE][payload]`, where `len` is
//! the payload length and the crc32 (IEEE) covers the payload. See
//! `docs/storage-format.md` for the payload layout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use doppel_model::{Batch, Sample, SeriesBatch, SeriesKey, Timestamp, TwinId, Value};
use parking_lot::{Condvar, Mutex};

use crate::StoreError;
use crate::catalog::TwinRecord;
use crate::codec::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::health::file_name;
use crate::sealing::{Role, Sealing, TwinKey};

/// Largest payload of one WAL record. Bounds what recovery allocates for a
/// length field read from a possibly corrupt file; a 5,000-point batch is
/// ~65 KiB, so this leaves room for batches of millions of points.
pub(crate) const MAX_RECORD_BYTES: usize = 128 << 20;

/// Bytes of the record header (`len` + `crc`).
pub(crate) const RECORD_HEADER_BYTES: usize = 8;

/// Most twins, series per twin or samples per series a decoded payload may
/// claim; a guard against allocation from corrupt counts (a payload cannot
/// hold more items than bytes anyway).
const MAX_ITEMS: usize = MAX_RECORD_BYTES;

const KIND_POINTS: u8 = 1;
const KIND_TWIN_UPSERT: u8 = 2;
const KIND_TWIN_DELETE: u8 = 3;
const KIND_SEALED_POINTS: u8 = 4;
const KIND_SEALED_UPSERT: u8 = 5;
const KIND_SEALED_DELETE: u8 = 6;

/// True when a payload is one of the sealed kinds, which only a store
/// opened with its keyring can read.
pub(crate) fn is_sealed_payload(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(&(KIND_SEALED_POINTS | KIND_SEALED_UPSERT | KIND_SEALED_DELETE)))
}

/// One logged operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WalEntry {
    /// A batch of points (in a sealed record, without the groups of twins
    /// whose key is destroyed).
    Points(Batch),
    /// A twin catalog upsert, with the twin's number in a sealed store.
    TwinUpsert { twin: TwinRecord, number: Option<u64> },
    /// A twin deletion; `watermark` is the highest segment order whose data
    /// of this twin becomes invisible.
    TwinDelete { id: TwinId, watermark: u64, number: Option<u64> },
    /// A sealed upsert of a twin whose key has been destroyed since: only
    /// its number is left, so that it is never handed out again.
    Forgotten { number: u64 },
}

/// Most bytes one varint takes (a `u64` in 7-bit groups).
const MAX_VARINT_BYTES: usize = 10;

/// Writes `value` as a varint at the start of `dst`, which must hold
/// [`MAX_VARINT_BYTES`]; returns the bytes written.
fn write_uvarint(dst: &mut [u8], mut value: u64) -> usize {
    let mut i = 0;
    while value >= 0x80 && i + 1 < dst.len() {
        dst[i] = (value as u8) | 0x80;
        value >>= 7;
        i += 1;
    }
    if let Some(byte) = dst.get_mut(i) {
        *byte = value as u8;
    }
    i + 1
}

/// `(twin group, series index)` of the batch's non-empty series, sorted so
/// that each twin's series are together: groups in first-seen order,
/// series in batch order within a group. Only a change of twin between
/// neighbours costs a hash lookup.
fn twin_groups(batch: &Batch) -> Vec<(u32, u32)> {
    let mut ids: HashMap<&TwinId, u32> = HashMap::new();
    let mut previous: Option<(&TwinId, u32)> = None;
    let mut placed = Vec::with_capacity(batch.series.len());
    for (i, series) in batch.series.iter().enumerate() {
        if series.samples.is_empty() {
            continue;
        }
        let twin = &series.key.twin;
        let group = match previous {
            Some((t, g)) if t == twin => g,
            _ => {
                let next = ids.len() as u32;
                *ids.entry(twin).or_insert(next)
            }
        };
        previous = Some((twin, group));
        placed.push((group, i as u32));
    }
    // Already sorted when the batch keeps twins together (linear then).
    placed.sort_unstable();
    placed
}

/// Encodes a batch payload, grouping series by twin (so that a later
/// per-twin encryption can seal each twin's group separately). Timestamps
/// and values are written straight into `out` with one size check per
/// series, so encoding runs near memory speed.
pub(crate) fn encode_points(batch: &Batch, out: &mut Vec<u8>) {
    out.push(KIND_POINTS);
    let placed = twin_groups(batch);
    let twin_count = placed.chunk_by(|a, b| a.0 == b.0).count();
    put_uvarint(out, twin_count as u64);
    for group in placed.chunk_by(|a, b| a.0 == b.0) {
        encode_group(batch, group, out);
    }
}

/// Encodes a batch payload with each twin's group sealed under that twin's
/// key (`key_of` finds it): `u8 4, varint twin_count`, then per twin
/// `varint number, bytes frame`, the frame opening to the group as a plain
/// batch payload holds it.
pub(crate) fn encode_points_sealed(
    batch: &Batch,
    key_of: &mut dyn FnMut(&TwinId) -> Result<TwinKey, StoreError>,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    out.push(KIND_SEALED_POINTS);
    let placed = twin_groups(batch);
    let twin_count = placed.chunk_by(|a, b| a.0 == b.0).count();
    put_uvarint(out, twin_count as u64);
    let mut group_bytes = Vec::new();
    for group in placed.chunk_by(|a, b| a.0 == b.0) {
        let key = key_of(&batch.series[group[0].1 as usize].key.twin)?;
        group_bytes.clear();
        encode_group(batch, group, &mut group_bytes);
        put_uvarint(out, key.number);
        put_bytes(out, &key.seal(Role::WalPoints, &group_bytes)?);
    }
    Ok(())
}

/// One twin's group: its id, then each of its series with their samples.
fn encode_group(batch: &Batch, group: &[(u32, u32)], out: &mut Vec<u8>) {
    let first = &batch.series[group[0].1 as usize];
    put_bytes(out, first.key.twin.as_str().as_bytes());
    put_uvarint(out, group.len() as u64);
    for &(_, i) in group {
        let s = &batch.series[i as usize];
        put_bytes(out, s.key.signal.as_str().as_bytes());
        put_bytes(out, s.key.provenance.as_str().as_bytes());
        put_uvarint(out, s.samples.len() as u64);
        encode_samples(&s.samples, out);
    }
}

/// Appends `n × zvarint` time deltas then `n × f64` values.
fn encode_samples(samples: &[Sample], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + samples.len() * MAX_VARINT_BYTES, 0);
    let mut pos = start;
    let mut prev = 0i64;
    for sample in samples {
        let t = sample.time.as_nanos();
        let delta = t.wrapping_sub(prev);
        prev = t;
        pos += write_uvarint(&mut out[pos..], ((delta << 1) ^ (delta >> 63)) as u64);
    }
    out.truncate(pos);
    out.resize(pos + samples.len() * 8, 0);
    for (dst, sample) in out[pos..].chunks_exact_mut(8).zip(samples) {
        dst.copy_from_slice(&sample.value.get().to_le_bytes());
    }
}

/// Encodes a twin upsert payload.
pub(crate) fn encode_upsert(twin: &TwinRecord, out: &mut Vec<u8>) {
    out.push(KIND_TWIN_UPSERT);
    put_bytes(out, twin.id.as_str().as_bytes());
    put_bytes(out, twin.model.as_bytes());
    let properties = serde_json::Value::Object(twin.properties.clone()).to_string();
    put_bytes(out, properties.as_bytes());
    put_ivarint(out, twin.created.as_nanos());
}

/// Encodes a twin upsert sealed under the twin's key: `u8 5, varint
/// number, bytes frame`, the frame opening to a plain upsert payload.
pub(crate) fn encode_upsert_sealed(
    twin: &TwinRecord,
    key: &TwinKey,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let mut plain = Vec::with_capacity(256);
    encode_upsert(twin, &mut plain);
    out.push(KIND_SEALED_UPSERT);
    put_uvarint(out, key.number);
    put_bytes(out, &key.seal(Role::WalTwin, &plain)?);
    Ok(())
}

/// Encodes a twin delete payload.
pub(crate) fn encode_delete(id: &TwinId, watermark: u64, out: &mut Vec<u8>) {
    out.push(KIND_TWIN_DELETE);
    put_bytes(out, id.as_str().as_bytes());
    put_uvarint(out, watermark);
}

/// Encodes a twin delete of a sealed store: `u8 6, varint number, varint
/// watermark, bytes frame`, the frame holding the twin id under the store
/// key (the twin's own key is destroyed by then).
pub(crate) fn encode_delete_sealed(
    id: &TwinId,
    number: u64,
    watermark: u64,
    sealing: &Sealing,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    out.push(KIND_SEALED_DELETE);
    put_uvarint(out, number);
    put_uvarint(out, watermark);
    put_bytes(out, &sealing.seal_store(Role::WalDelete, id.as_str().as_bytes())?);
    Ok(())
}

/// Decodes one payload; sealed kinds need `sealing` (without it they are
/// undecodable).
pub(crate) fn decode_entry(payload: &[u8], sealing: Option<&Sealing>) -> Result<WalEntry, DecodeError> {
    let mut r = Reader::new(payload);
    let kind = r.u8("record kind")?;
    if is_sealed_payload(payload) {
        let Some(sealing) = sealing else { return r.fail("a sealed record in a store opened without keys") };
        let entry = decode_sealed(kind, &mut r, sealing)?;
        if !r.is_empty() {
            return r.fail("trailing bytes after the payload");
        }
        return Ok(entry);
    }
    let entry = match kind {
        KIND_POINTS => WalEntry::Points(decode_points(&mut r)?),
        KIND_TWIN_UPSERT => {
            let id = r.twin()?;
            let model = r.str("model")?.to_owned();
            let at = r.position();
            let json = r.str("properties")?;
            let properties = match serde_json::from_str::<serde_json::Value>(json) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    return Err(DecodeError {
                        offset: at,
                        reason: "properties are not a JSON object".into(),
                    });
                }
            };
            let created = Timestamp::from_nanos(r.ivarint("created")?);
            WalEntry::TwinUpsert { twin: TwinRecord { id, model, properties, created }, number: None }
        }
        KIND_TWIN_DELETE => {
            WalEntry::TwinDelete { id: r.twin()?, watermark: r.uvarint("watermark")?, number: None }
        }
        other => return Err(DecodeError { offset: 0, reason: format!("unknown record kind {other}") }),
    };
    if !r.is_empty() {
        return r.fail("trailing bytes after the payload");
    }
    Ok(entry)
}

/// Decodes the body of a sealed record of `kind`.
fn decode_sealed(kind: u8, r: &mut Reader<'_>, sealing: &Sealing) -> Result<WalEntry, DecodeError> {
    let at =
        |r: &Reader<'_>, e: DecodeError| DecodeError { offset: r.position() + e.offset, reason: e.reason };
    match kind {
        KIND_SEALED_POINTS => {
            let twins = r.count("twin count", MAX_ITEMS)?;
            let mut batch = Batch::default();
            for _ in 0..twins {
                let number = r.uvarint("twin number")?;
                let frame = r.bytes("sealed twin group")?;
                let Some(key) = sealing.twin_key(number) else { continue };
                let group = key.open(Role::WalPoints, frame).map_err(|e| at(r, e))?;
                let mut g = Reader::new(&group);
                decode_group(&mut g, &mut batch).map_err(|e| at(r, e))?;
                if !g.is_empty() {
                    return r.fail("trailing bytes after a sealed twin group");
                }
            }
            Ok(WalEntry::Points(batch))
        }
        KIND_SEALED_UPSERT => {
            let number = r.uvarint("twin number")?;
            let frame = r.bytes("sealed twin record")?;
            let Some(key) = sealing.twin_key(number) else { return Ok(WalEntry::Forgotten { number }) };
            let plain = key.open(Role::WalTwin, frame).map_err(|e| at(r, e))?;
            match decode_entry(&plain, None).map_err(|e| at(r, e))? {
                WalEntry::TwinUpsert { twin, .. } => Ok(WalEntry::TwinUpsert { twin, number: Some(number) }),
                _ => r.fail("a sealed twin record holds another kind of record"),
            }
        }
        _ => {
            let number = r.uvarint("twin number")?;
            let watermark = r.uvarint("watermark")?;
            let frame = r.bytes("sealed twin id")?;
            let id = sealing.open_store(Role::WalDelete, frame).map_err(|e| at(r, e))?;
            let id = std::str::from_utf8(&id).ok().and_then(|id| TwinId::new(id).ok());
            let Some(id) = id else { return r.fail("a sealed delete holds no valid twin id") };
            Ok(WalEntry::TwinDelete { id, watermark, number: Some(number) })
        }
    }
}

fn decode_points(r: &mut Reader<'_>) -> Result<Batch, DecodeError> {
    let twins = r.count("twin count", MAX_ITEMS)?;
    let mut batch = Batch::default();
    for _ in 0..twins {
        decode_group(r, &mut batch)?;
    }
    Ok(batch)
}

/// Decodes one twin's group into `batch`.
fn decode_group(r: &mut Reader<'_>, batch: &mut Batch) -> Result<(), DecodeError> {
    {
        let twin = r.twin()?;
        let series = r.count("series count", MAX_ITEMS)?;
        for _ in 0..series {
            let signal = r.signal()?;
            let provenance = r.provenance()?;
            let n = r.count("sample count", MAX_ITEMS)?;
            let mut times = Vec::with_capacity(n.min(1 << 16));
            let mut prev = 0i64;
            for _ in 0..n {
                prev = prev.wrapping_add(r.ivarint("timestamp delta")?);
                times.push(prev);
            }
            let values = r.take(n * 8, "values")?;
            let mut samples = Vec::with_capacity(n);
            for (t, chunk) in times.into_iter().zip(values.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(chunk);
                let Ok(value) = Value::new(f64::from_le_bytes(a)) else {
                    return r.fail("a value is not finite");
                };
                samples.push(Sample { time: Timestamp::from_nanos(t), value });
            }
            let key = SeriesKey { twin: twin.clone(), signal, provenance };
            batch.series.push(SeriesBatch { key, samples });
        }
    }
    Ok(())
}

/// Frames `payload` as a record: appends header and payload to `out`. (The
/// store builds records in place; this is the reference framing.)
#[cfg(test)]
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Why a record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptionKind {
    /// The file ends inside a record header or payload (a torn write).
    ShortRecord,
    /// The length field is zero or larger than the record limit.
    BadLength,
    /// The payload's crc32 does not match.
    BadChecksum,
    /// The checksum matched but the payload did not decode.
    BadPayload(String),
}

/// Result of scanning one WAL file's bytes.
pub(crate) struct Scan {
    /// Decoded entries in file order.
    pub entries: Vec<WalEntry>,
    /// Damaged stretches with readable records after them, in file order:
    /// corruption, not a crash, since a crash only tears the end.
    pub bad_ranges: Vec<BadRange>,
    /// Offset just past the last good record (where an unreadable tail
    /// starts; the file length when there is none).
    pub good_len: u64,
    /// Why the tail from `good_len` on is unreadable, if it is.
    pub corruption: Option<CorruptionKind>,
    /// Scanning stopped at a sealed record, which cannot be read without
    /// keys: not damage, so nothing may be cut.
    pub needs_keyring: bool,
}

/// Bytes of a WAL file that hold no readable record, followed by one that
/// verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadRange {
    pub start: u64,
    pub end: u64,
    /// Records the range held, when their length fields still chain from
    /// `start` to `end` exactly.
    pub records: Option<u64>,
    /// What was wrong with the record at `start`.
    pub reason: CorruptionKind,
}

/// One record read at a position.
enum Record {
    /// A decoded entry and the offset after its record.
    Entry(WalEntry, usize),
    /// A sealed record read without keys.
    NeedsKeyring,
}

/// Reads the record at `pos`, checking its length bounds, checksum and
/// payload.
fn read_record(bytes: &[u8], pos: usize, sealing: Option<&Sealing>) -> Result<Record, CorruptionKind> {
    let rest = bytes.get(pos..).unwrap_or_default();
    let Some((header, body)) = rest.split_first_chunk::<RECORD_HEADER_BYTES>() else {
        return Err(CorruptionKind::ShortRecord);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(CorruptionKind::BadLength);
    }
    let Some(payload) = body.get(..len) else { return Err(CorruptionKind::ShortRecord) };
    if crc32fast::hash(payload) != crc {
        return Err(CorruptionKind::BadChecksum);
    }
    if sealing.is_none() && is_sealed_payload(payload) {
        return Ok(Record::NeedsKeyring);
    }
    match decode_entry(payload, sealing) {
        Ok(entry) => Ok(Record::Entry(entry, pos + RECORD_HEADER_BYTES + len)),
        Err(e) => Err(CorruptionKind::BadPayload(format!("at payload byte {}: {}", e.offset, e.reason))),
    }
}

/// The first offset after `from` where a whole record verifies: its length
/// fits the file and the limit, its kind is known, its checksum matches
/// and its payload decodes. A random match of all four is what it would
/// take to resume at a wrong place.
fn resync(bytes: &[u8], from: usize, sealing: Option<&Sealing>) -> Option<usize> {
    (from..bytes.len().saturating_sub(RECORD_HEADER_BYTES)).find(|&pos| {
        let header = &bytes[pos..pos + RECORD_HEADER_BYTES];
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let plausible = len != 0
            && len <= MAX_RECORD_BYTES
            && len <= bytes.len() - pos - RECORD_HEADER_BYTES
            && (KIND_POINTS..=KIND_SEALED_DELETE).contains(&bytes[pos + RECORD_HEADER_BYTES]);
        plausible && read_record(bytes, pos, sealing).is_ok()
    })
}

/// How many records `start..end` held, when the length fields chain from
/// one to the next and land on `end` exactly.
fn count_records(bytes: &[u8], start: usize, end: usize) -> Option<u64> {
    let (mut pos, mut count) = (start, 0u64);
    while pos < end {
        let header = bytes.get(pos..pos + RECORD_HEADER_BYTES)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len == 0 {
            return None;
        }
        pos = pos.checked_add(RECORD_HEADER_BYTES + len)?;
        count += 1;
    }
    (pos == end).then_some(count)
}

/// Reads the records of a WAL file's bytes. A bad record with a readable
/// one after it is damage: the scan resumes at the next record that
/// verifies and names the range skipped. A bad record with nothing
/// readable after it ends the scan as a damaged tail, which is what a
/// crash during an append leaves.
pub(crate) fn scan(bytes: &[u8], sealing: Option<&Sealing>) -> Scan {
    let mut needs_keyring = false;
    let mut entries = Vec::new();
    let mut bad_ranges = Vec::new();
    let mut pos = 0usize;
    let corruption = loop {
        if pos >= bytes.len() {
            break None;
        }
        match read_record(bytes, pos, sealing) {
            Ok(Record::Entry(entry, next)) => {
                entries.push(entry);
                pos = next;
            }
            Ok(Record::NeedsKeyring) => {
                needs_keyring = true;
                break None;
            }
            Err(reason) => match resync(bytes, pos + 1, sealing) {
                Some(next) => {
                    let records = count_records(bytes, pos, next);
                    bad_ranges.push(BadRange { start: pos as u64, end: next as u64, records, reason });
                    pos = next;
                }
                None => break Some(reason),
            },
        }
    };
    Scan { entries, bad_ranges, good_len: pos as u64, corruption, needs_keyring }
}

/// The path of WAL file `seq` in `dir`.
pub(crate) fn wal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Lists `(seq, path)` of the WAL files in `dir`, oldest first.
pub(crate) fn list_wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StoreError::io("list", dir))? {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let Some(seq) =
            name.to_str().and_then(|n| n.strip_suffix(".wal")).and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        files.push((seq, entry.path()));
    }
    files.sort();
    Ok(files)
}

/// Fsyncs a directory so that file creations, renames and removals in it
/// are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    doppel_fs::sync_dir(dir).map_err(StoreError::sync(dir))
}

struct Appender {
    file: Arc<doppel_fs::File>,
    seq: u64,
    len: u64,
    /// Number of records appended since open (the last record's lsn).
    appended: u64,
}

/// Counters the WAL keeps for [`crate::StoreStats`].
#[derive(Default)]
pub(crate) struct WalCounters {
    pub fsyncs: AtomicU64,
    pub fsync_nanos_total: AtomicU64,
    pub last_fsync_micros: AtomicU64,
}

/// Group-commit state, guarded by [`Wal::sync_state`].
struct SyncState {
    /// Highest lsn known durable.
    synced: u64,
    /// True while a leader is in its fsync.
    leader_active: bool,
}

/// An open WAL: appends under a mutex, fsyncs by group commit.
///
/// Group commit: a writer appends its record under `appender` and gets its
/// lsn. If no fsync is in flight it becomes the leader: it notes the last
/// appended lsn, fdatasyncs once (without holding any lock writers need)
/// and publishes that lsn, covering every writer that appended before it.
/// Writers arriving while an fsync is in flight wait on a condition
/// variable; when the leader publishes, all of them wake at once, those
/// covered return and one of the rest leads the next fsync, which covers
/// everything appended meanwhile.
pub(crate) struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    appender: Mutex<Appender>,
    sync_state: Mutex<SyncState>,
    sync_done: Condvar,
    /// Copy of `SyncState::synced` readable without the lock.
    synced: AtomicU64,
    /// Set once an fsync failed: writes are stopped until reopen.
    failed: AtomicBool,
    /// What stopped writes, for the error every later write returns.
    stop_cause: Mutex<String>,
    pub(crate) counters: WalCounters,
}

impl Wal {
    /// Opens a new WAL file `seq` in `dir` for appending.
    /// `lsn` is the last lsn already used (records replayed at open), so new
    /// records sort after them in the head.
    pub(crate) fn create(dir: &Path, seq: u64, lsn: u64, segment_bytes: u64) -> Result<Self, StoreError> {
        let file = open_new(dir, seq)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            appender: Mutex::new(Appender { file: Arc::new(file), seq, len: 0, appended: lsn }),
            sync_state: Mutex::new(SyncState { synced: lsn, leader_active: false }),
            sync_done: Condvar::new(),
            synced: AtomicU64::new(lsn),
            failed: AtomicBool::new(false),
            stop_cause: Mutex::new(String::new()),
            counters: WalCounters::default(),
        })
    }

    /// The directory holding the WAL files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one framed record (header included) and returns its lsn. The
    /// record is not durable until [`Wal::sync_to`] returns for that lsn.
    pub(crate) fn append(&self, record: &[u8]) -> Result<u64, StoreError> {
        self.check_writable()?;
        let mut a = self.appender.lock();
        if a.len > 0 && a.len + record.len() as u64 > self.segment_bytes {
            // Roll over: make the old file durable first so that only the
            // newest file can ever have an unsynced (torn) tail.
            self.timed_sync(&a.file, a.seq)?;
            let seq = a.seq + 1;
            a.file = Arc::new(open_new(&self.dir, seq)?);
            a.seq = seq;
            a.len = 0;
        }
        if let Err(source) = a.file.write_all(record) {
            // Cut off whatever part of the record was written, so that no
            // torn record sits before the next one; the records before it
            // stay. If even that fails, the file's end is unknown: stop.
            let path = wal_path(&self.dir, a.seq);
            if let Err(e) = a.file.set_len(a.len) {
                self.stop(format!("cutting back a failed append to {} failed: {e}", file_name(&path)));
                return Err(self.stopped());
            }
            return Err(StoreError::WriteFailed { path, source });
        }
        a.len += record.len() as u64;
        a.appended += 1;
        Ok(a.appended)
    }

    /// Returns once every record up to `lsn` is durable; true when this call
    /// performed the fsync (the group-commit leader).
    pub(crate) fn sync_to(&self, lsn: u64) -> Result<bool, StoreError> {
        if self.synced.load(Ordering::Acquire) >= lsn {
            return Ok(false);
        }
        let mut state = self.sync_state.lock();
        loop {
            if state.synced >= lsn {
                return Ok(false);
            }
            if self.failed.load(Ordering::Acquire) {
                return Err(self.stopped());
            }
            if !state.leader_active {
                break;
            }
            self.sync_done.wait(&mut state);
        }
        state.leader_active = true;
        drop(state);
        let result = self.lead_sync();
        let mut state = self.sync_state.lock();
        state.leader_active = false;
        if let Ok(target) = result {
            state.synced = state.synced.max(target);
            self.synced.fetch_max(target, Ordering::AcqRel);
        }
        drop(state);
        self.sync_done.notify_all();
        result.map(|_| true)
    }

    /// The leader's fsync: makes every record appended so far durable and
    /// returns the last one's lsn.
    fn lead_sync(&self) -> Result<u64, StoreError> {
        let (file, seq, target) = {
            let a = self.appender.lock();
            (Arc::clone(&a.file), a.seq, a.appended)
        };
        self.timed_sync(&file, seq)?;
        Ok(target)
    }

    /// Stops writes for good (until the store is reopened), saying why.
    /// The first cause is kept.
    pub(crate) fn stop(&self, cause: String) {
        let mut kept = self.stop_cause.lock();
        if !self.failed.swap(true, Ordering::AcqRel) {
            *kept = cause;
        }
    }

    /// True once writes are stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The error a write gets once writes are stopped.
    pub(crate) fn stopped(&self) -> StoreError {
        StoreError::Stopped { cause: self.stop_cause.lock().clone() }
    }

    /// Fails when writes are stopped.
    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        if self.is_stopped() { Err(self.stopped()) } else { Ok(()) }
    }

    fn timed_sync(&self, file: &doppel_fs::File, seq: u64) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = file.sync_data();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.counters.fsync_nanos_total.fetch_add(nanos, Ordering::Relaxed);
        self.counters.last_fsync_micros.store(nanos / 1_000, Ordering::Relaxed);
        if let Err(source) = result {
            let path = wal_path(&self.dir, seq);
            self.stop(format!("fsync of {} failed: {source}", file_name(&path)));
            return Err(StoreError::SyncFailed { path, source });
        }
        Ok(())
    }

    /// Starts a new WAL file and returns its seq: every record appended
    /// before this call lives in files with a smaller seq. The caller must
    /// have quiesced writers (everything appended is already synced).
    pub(crate) fn rotate(&self) -> Result<u64, StoreError> {
        let mut a = self.appender.lock();
        if a.appended > self.synced.load(Ordering::Acquire) {
            self.timed_sync(&a.file, a.seq)?;
            let mut state = self.sync_state.lock();
            state.synced = state.synced.max(a.appended);
            self.synced.fetch_max(a.appended, Ordering::AcqRel);
        }
        let seq = a.seq + 1;
        a.file = Arc::new(open_new(&self.dir, seq)?);
        a.seq = seq;
        a.len = 0;
        Ok(seq)
    }

    /// Bytes in WAL files on disk.
    pub(crate) fn disk_bytes(&self) -> u64 {
        list_wal_files(&self.dir)
            .map(|files| files.iter().filter_map(|(_, p)| p.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}

fn open_new(dir: &Path, seq: u64) -> Result<doppel_fs::File, StoreError> {
    let path = wal_path(dir, seq);
    let file = doppel_fs::File::append(&path).map_err(StoreError::io("create WAL file", &path))?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{Provenance, SignalName};
    use proptest::prelude::*;

    fn arb_batch() -> impl Strategy<Value = Batch> {
        let key = ("[a-c]{1,3}", "[a-z_]{1,6}", proptest::option::of("[a-z]{1,4}"));
        let samples = proptest::collection::vec((any::<i64>(), -1e12f64..1e12), 0..20);
        proptest::collection::vec((key, samples), 0..6).prop_map(|series| {
            let mut builder = doppel_model::BatchBuilder::default();
            for ((twin, signal, device), samples) in series {
                let provenance = match device {
                    Some(d) => Provenance::from_tags([("device", d)]).unwrap(),
                    None => Provenance::none(),
                };
                let key = SeriesKey {
                    twin: TwinId::new(&twin).unwrap(),
                    signal: SignalName::new(&signal).unwrap(),
                    provenance,
                };
                for (t, v) in samples {
                    builder.push_sample(
                        key.clone(),
                        Sample { time: Timestamp::from_nanos(t), value: Value::new(v).unwrap() },
                    );
                }
            }
            builder.finish()
        })
    }

    /// The decoded batch groups series by twin; compare as sorted series.
    fn canonical(batch: &Batch) -> Vec<SeriesBatch> {
        let mut series: Vec<SeriesBatch> =
            batch.series.iter().filter(|s| !s.samples.is_empty()).cloned().collect();
        series.sort_by(|a, b| a.key.twin.cmp(&b.key.twin));
        series
    }

    proptest! {
        #[test]
        fn point_records_round_trip(batch in arb_batch()) {
            let mut payload = Vec::new();
            encode_points(&batch, &mut payload);
            let WalEntry::Points(decoded) = decode_entry(&payload, None).unwrap() else { panic!("wrong kind") };
            prop_assert_eq!(canonical(&decoded), canonical(&batch));
        }

        #[test]
        fn fast_varints_match_the_reference_encoder(value in any::<u64>()) {
            let mut reference = Vec::new();
            put_uvarint(&mut reference, value);
            let mut fast = [0u8; MAX_VARINT_BYTES];
            let len = write_uvarint(&mut fast, value);
            prop_assert_eq!(&fast[..len], reference.as_slice());
        }

        #[test]
        fn scanning_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = scan(&bytes, None);
            prop_assert!(s.good_len as usize <= bytes.len());
        }
    }

    #[test]
    fn twin_records_round_trip() {
        let mut properties = serde_json::Map::new();
        properties.insert("birth_year".into(), 1980.into());
        let twin = TwinRecord {
            id: TwinId::new("alice").unwrap(),
            model: "person".into(),
            properties,
            created: Timestamp::from_secs(5),
        };
        let mut payload = Vec::new();
        encode_upsert(&twin, &mut payload);
        assert_eq!(decode_entry(&payload, None).unwrap(), WalEntry::TwinUpsert { twin, number: None });
        let mut payload = Vec::new();
        encode_delete(&TwinId::new("bob").unwrap(), 7, &mut payload);
        assert_eq!(
            decode_entry(&payload, None).unwrap(),
            WalEntry::TwinDelete { id: TwinId::new("bob").unwrap(), watermark: 7, number: None }
        );
    }

    fn sealing(dir: &Path) -> Sealing {
        let master = doppel_crypto::MasterKey::generate().unwrap();
        let keyring = doppel_crypto::Keyring::open(dir, master, Vec::new()).unwrap();
        Sealing::new(Arc::new(keyring)).unwrap()
    }

    #[test]
    fn sealed_records_round_trip_and_a_destroyed_key_drops_only_its_twin() {
        let dir = tempfile::tempdir().unwrap();
        let sealing = sealing(dir.path());
        sealing.keyring().create_many(&[16, 17]).unwrap();
        let batch = Batch::from_points(["alice", "bob"].into_iter().map(|twin| doppel_model::Point {
            twin: TwinId::new(twin).unwrap(),
            signal: doppel_model::SignalName::new("heart_rate").unwrap(),
            provenance: doppel_model::Provenance::none(),
            time: Timestamp::from_secs(60),
            value: Value::new(61.5).unwrap(),
        }));
        let number = |twin: &TwinId| if twin.as_str() == "alice" { 16 } else { 17 };
        let mut key_of = |twin: &TwinId| Ok(sealing.twin_key(number(twin)).unwrap());
        let mut payload = Vec::new();
        encode_points_sealed(&batch, &mut key_of, &mut payload).unwrap();
        assert!(!payload.windows(5).any(|w| w == b"alice"), "a twin id is in the clear");
        let WalEntry::Points(decoded) = decode_entry(&payload, Some(&sealing)).unwrap() else { panic!() };
        assert_eq!(canonical(&decoded), canonical(&batch));
        assert!(decode_entry(&payload, None).is_err());

        let twin = TwinRecord {
            id: TwinId::new("alice").unwrap(),
            model: "person".into(),
            properties: serde_json::Map::new(),
            created: Timestamp::from_secs(5),
        };
        let mut upsert = Vec::new();
        encode_upsert_sealed(&twin, &sealing.twin_key(16).unwrap(), &mut upsert).unwrap();
        let mut delete = Vec::new();
        encode_delete_sealed(&twin.id, 16, 9, &sealing, &mut delete).unwrap();
        assert_eq!(
            decode_entry(&upsert, Some(&sealing)).unwrap(),
            WalEntry::TwinUpsert { twin: twin.clone(), number: Some(16) }
        );

        sealing.keyring().destroy(16).unwrap();
        let WalEntry::Points(left) = decode_entry(&payload, Some(&sealing)).unwrap() else { panic!() };
        assert!(left.series.iter().all(|s| s.key.twin.as_str() == "bob"));
        assert_eq!(left.point_count(), 1);
        assert_eq!(decode_entry(&upsert, Some(&sealing)).unwrap(), WalEntry::Forgotten { number: 16 });
        assert_eq!(
            decode_entry(&delete, Some(&sealing)).unwrap(),
            WalEntry::TwinDelete { id: twin.id, watermark: 9, number: Some(16) }
        );
    }

    #[test]
    fn a_sealed_record_stops_a_scan_without_keys_and_is_not_called_damage() {
        let dir = tempfile::tempdir().unwrap();
        let sealing = sealing(dir.path());
        let key = sealing.keyring().create(16).map(|_| sealing.twin_key(16).unwrap()).unwrap();
        let twin = TwinRecord {
            id: TwinId::new("alice").unwrap(),
            model: "person".into(),
            properties: serde_json::Map::new(),
            created: Timestamp::from_secs(5),
        };
        let mut payload = Vec::new();
        encode_upsert_sealed(&twin, &key, &mut payload).unwrap();
        let mut file = Vec::new();
        frame(&payload, &mut file);
        let scanned = scan(&file, None);
        assert!(scanned.needs_keyring && scanned.corruption.is_none() && scanned.entries.is_empty());
        assert_eq!(scan(&file, Some(&sealing)).entries.len(), 1);
    }

    fn two_records() -> (Vec<u8>, usize) {
        let mut file = Vec::new();
        let mut payload = Vec::new();
        encode_delete(&TwinId::new("a").unwrap(), 1, &mut payload);
        frame(&payload, &mut file);
        let first = file.len();
        payload.clear();
        encode_delete(&TwinId::new("bbbbbb").unwrap(), 2, &mut payload);
        frame(&payload, &mut file);
        (file, first)
    }

    #[test]
    fn a_tail_cut_at_any_byte_keeps_the_records_before_it() {
        let (file, first) = two_records();
        for cut in first..file.len() {
            let s = scan(&file[..cut], None);
            assert_eq!(s.entries.len(), 1, "cut at {cut}");
            assert_eq!(s.good_len as usize, first);
            assert_eq!(s.corruption.is_some(), cut > first, "cut at {cut}");
        }
    }

    /// `n` delete records of distinct twins, with each record's start.
    fn records(n: usize) -> (Vec<u8>, Vec<usize>) {
        let (mut file, mut starts) = (Vec::new(), Vec::new());
        for i in 0..n {
            starts.push(file.len());
            let mut payload = Vec::new();
            encode_delete(&TwinId::new(&format!("twin{i}")).unwrap(), i as u64, &mut payload);
            frame(&payload, &mut file);
        }
        (file, starts)
    }

    proptest! {
        #[test]
        fn a_damaged_record_costs_only_itself(n in 2usize..8, k in 0usize..8, at in any::<usize>(), mask in 1u8..) {
            let k = k % n;
            let (mut file, starts) = records(n);
            let end = starts.get(k + 1).copied().unwrap_or(file.len());
            let byte = starts[k] + at % (end - starts[k]);
            file[byte] ^= mask;
            let s = scan(&file, None);
            prop_assert_eq!(s.entries.len(), n - 1);
            if k + 1 < n {
                prop_assert!(s.corruption.is_none());
                prop_assert_eq!(s.good_len as usize, file.len());
                prop_assert_eq!(s.bad_ranges.len(), 1);
                let range = &s.bad_ranges[0];
                prop_assert_eq!((range.start as usize, range.end as usize), (starts[k], end));
            } else {
                prop_assert!(s.corruption.is_some() && s.bad_ranges.is_empty());
                prop_assert_eq!(s.good_len as usize, starts[k]);
            }
        }
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_skipped_and_counted() {
        let (mut file, starts) = records(5);
        file[starts[2] + 10] ^= 0x40;
        let s = scan(&file, None);
        assert_eq!(s.entries.len(), 4);
        assert_eq!(
            s.bad_ranges,
            vec![BadRange {
                start: starts[2] as u64,
                end: starts[3] as u64,
                records: Some(1),
                reason: CorruptionKind::BadChecksum
            }]
        );
    }

    #[test]
    fn a_corrupted_tail_byte_stops_the_scan_at_the_last_good_record() {
        let (file, first) = two_records();
        for i in first..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            let s = scan(&bad, None);
            assert_eq!(s.entries.len(), 1, "flip at {i}");
            assert_eq!(s.good_len as usize, first);
            assert!(s.corruption.is_some());
        }
    }
}
