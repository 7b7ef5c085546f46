//! The twin catalog: twin records and deletion tombstones, in memory,
//! logged in the WAL and persisted at flush time when it changed: the
//! twins and tombstones changed since the last flush are appended to
//! `catalog.log` as one record (fsynced), and only once the snapshot and
//! the log hold more superseded entries (twins changed again or deleted)
//! than live ones is the whole catalog rewritten to `catalog.bin` and the
//! log emptied. Creating twins supersedes nothing, so it never forces a
//! rewrite: a flush costs O(changes), not O(twins).
//!
//! `catalog.log` is a `doppel_fs::log`: a header `[magic "DPLCLOG1"][u64 LE
//! length][u32 LE crc32]` naming the snapshot it continues (its length and
//! checksum; zeros when there is none), then records whose payload is a
//! partial catalog in the snapshot format below (the changed twins, the
//! tombstones of changed ids, the next number), applied in order over the
//! snapshot. A log naming another snapshot was folded into it already (a
//! crash came between the new snapshot and the new log) and is ignored.
//!
//! Snapshot layout: `[magic "DPLCAT01"][crc32 u32 LE of the JSON][len u64 LE][JSON]`,
//! the JSON being `{"twins": [TwinRecord...], "tombstones": [[id, watermark]...]}`.
//!
//! A sealed store also numbers its twins (the number names the twin's data
//! key) and writes a sealed snapshot instead: `[magic "DPLCAT02"][frame
//! under the store key]`, the frame holding `varint next_number`, the
//! tombstones (`varint count, count × (str id, varint watermark)`) and the
//! twins (`varint count, count × (varint number, varint len, len bytes)`),
//! each twin's record being its JSON sealed under its own key. A twin whose
//! key was destroyed cannot be read back: it is left out when loading.

use std::collections::HashMap;
use std::path::Path;

use doppel_model::{Timestamp, TwinId};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::codec::{DecodeError, Reader, put_bytes, put_uvarint};
use crate::sealing::{Role, Sealing};
use crate::twin_entries::{TwinEntries, TwinRecordRef};

/// A twin as the catalog keeps it: identity, model and slow-changing
/// properties. Live state and history live elsewhere.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct TwinRecord {
    /// The twin's id.
    pub id: TwinId,
    /// The model (kind) the twin follows, e.g. `person`.
    pub model: String,
    /// Slow facts: birth year, weight, goals, therapy settings.
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// When the twin was first created.
    pub created: Timestamp,
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"DPLCAT01";
const SEALED_MAGIC: &[u8; 8] = b"DPLCAT02";
const SNAPSHOT_FILE: &str = "catalog.bin";
const SNAPSHOT_TMP: &str = "catalog.bin.tmp";
const LOG_FILE: &str = "catalog.log";
const LOG_MAGIC: &[u8; 8] = b"DPLCLOG1";
const LOG_HEADER_BYTES: usize = 20;
/// Superseded entries tolerated beyond the live ones before the log is
/// folded into a new snapshot: a few thousand replayed entries cost less
/// at start than a rewrite.
const MIN_SUPERSEDED_ENTRIES: u64 = 4096;

#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    twins: Vec<TwinRecord>,
    tombstones: Vec<(TwinId, u64)>,
}

/// Twins and tombstones. A tombstone `(id, watermark)` hides that twin's
/// data in every segment whose order is at most `watermark`; it is never
/// removed, so data deleted once can never come back.
#[derive(Default)]
pub(crate) struct Catalog {
    pub twins: TwinEntries,
    pub tombstones: HashMap<TwinId, u64>,
    /// Each twin's number, in a sealed store only: it names the twin's
    /// data key.
    pub numbers: HashMap<TwinId, u64>,
    /// The next number to hand out; numbers are never reused, so data
    /// sealed under a destroyed key is never mistaken for a new twin's.
    pub next_number: u64,
    /// Bumped on every change; compared with the snapshot's to skip
    /// unchanged snapshots.
    pub version: u64,
    pub snapshot_version: u64,
    /// The ids upserted or deleted since the catalog was last persisted,
    /// with the version of their latest change.
    pub changed: HashMap<TwinId, u64>,
}

impl Catalog {
    pub(crate) fn upsert(&mut self, twin: TwinRecord) {
        self.version += 1;
        self.changed.insert(twin.id.clone(), self.version);
        self.twins.upsert(twin);
    }

    /// Records twin `id`'s number (sealed stores).
    pub(crate) fn number(&mut self, id: &TwinId, number: u64) {
        self.numbers.insert(id.clone(), number);
        self.saw_number(number);
    }

    /// Keeps `next_number` above `number`, which has been used.
    pub(crate) fn saw_number(&mut self, number: u64) {
        self.next_number = self.next_number.max(number + 1);
    }

    /// Removes the twin and raises its tombstone to `watermark`; true when
    /// the twin was in the catalog.
    pub(crate) fn delete(&mut self, id: &TwinId, watermark: u64) -> bool {
        self.numbers.remove(id);
        let existed = self.twins.remove(id);
        let mark = self.tombstones.entry(id.clone()).or_insert(0);
        *mark = (*mark).max(watermark);
        self.version += 1;
        self.changed.insert(id.clone(), self.version);
        existed
    }

    /// Highest tombstone watermark, so reopened stores never reuse an order
    /// a tombstone already covers.
    pub(crate) fn max_watermark(&self) -> u64 {
        self.tombstones.values().copied().max().unwrap_or(0)
    }

    /// Serialises a snapshot of the current state (taken under the caller's
    /// lock; written later without it), sealed when `sealing` is given.
    pub(crate) fn snapshot(&self, sealing: Option<&Sealing>) -> Result<Vec<u8>, StoreError> {
        let tombstones = self.tombstones.iter().map(|(id, mark)| (id, *mark)).collect();
        self.encode(sealing, self.twins.iter().collect(), tombstones)
    }

    /// Serialises what changed since the catalog was last persisted, in the
    /// snapshot's format: the changed twins that exist and the tombstones
    /// of changed ids.
    pub(crate) fn changes(&self, sealing: Option<&Sealing>) -> Result<Vec<u8>, StoreError> {
        let twins = self.changed.keys().filter_map(|id| self.twins.get_ref(id)).collect();
        let tombstones = self
            .changed
            .keys()
            .filter_map(|id| self.tombstones.get_key_value(id).map(|(id, mark)| (id, *mark)))
            .collect();
        self.encode(sealing, twins, tombstones)
    }

    /// Forgets the changes made up to `version`, which are persisted.
    pub(crate) fn persisted(&mut self, version: u64) {
        self.snapshot_version = version;
        self.changed.retain(|_, changed| *changed > version);
    }

    /// Applies a partial catalog read from the log over this one:
    /// tombstones first, so a twin deleted and created again comes back.
    fn apply(&mut self, changes: Catalog) {
        for (id, watermark) in changes.tombstones {
            self.delete(&id, watermark);
        }
        for twin in changes.twins.iter() {
            let twin = twin.to_record();
            if let Some(&number) = changes.numbers.get(&twin.id) {
                self.number(&twin.id, number);
            }
            self.upsert(twin);
        }
        self.next_number = self.next_number.max(changes.next_number);
    }

    fn encode(
        &self,
        sealing: Option<&Sealing>,
        twins: Vec<TwinRecordRef<'_>>,
        tombstones: Vec<(&TwinId, u64)>,
    ) -> Result<Vec<u8>, StoreError> {
        let Some(sealing) = sealing else { return snapshot_bytes(twins, tombstones) };
        let mut body = Vec::new();
        put_uvarint(&mut body, self.next_number);
        put_uvarint(&mut body, tombstones.len() as u64);
        for (id, watermark) in tombstones {
            put_bytes(&mut body, id.as_str().as_bytes());
            put_uvarint(&mut body, watermark);
        }
        let mut sealed = Vec::with_capacity(twins.len());
        for twin in twins {
            let Some(key) = self.numbers.get(twin.id).and_then(|&n| sealing.twin_key(n)) else { continue };
            let json = serde_json::to_vec(&twin).map_err(|e| StoreError::Corrupt {
                path: SNAPSHOT_FILE.into(),
                offset: 0,
                reason: format!("twin {} does not serialise: {e}", twin.id),
            })?;
            sealed.push((key.number, key.seal(Role::CatalogTwin, &json)?));
        }
        put_uvarint(&mut body, sealed.len() as u64);
        for (number, frame) in &sealed {
            put_uvarint(&mut body, *number);
            put_bytes(&mut body, frame);
        }
        let mut out = SEALED_MAGIC.to_vec();
        out.extend_from_slice(&sealing.seal_store(Role::Catalog, &body)?);
        Ok(out)
    }

    /// Loads `catalog.bin` from `dir` and applies the records of
    /// `catalog.log` that continue it; an absent snapshot is an empty
    /// catalog. Changes no file: the caller opens the log with
    /// [`CatalogLog::open`], which cuts a torn last record off.
    pub(crate) fn load(dir: &Path, sealing: Option<&Sealing>) -> Result<(Self, LoadedLog), StoreError> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::Io { op: "read", path, source: e }),
        };
        let snapshot = snapshot_identity(bytes.as_deref().unwrap_or_default());
        let entries = |catalog: &Catalog| (catalog.twins.len() + catalog.tombstones.len()) as u64;
        let plain_snapshot = bytes.as_deref().is_some_and(|bytes| bytes.starts_with(SNAPSHOT_MAGIC));
        let mut catalog = match &bytes {
            Some(bytes) => Self::decode(&path, bytes, sealing)?,
            None => Self::default(),
        };
        let log_path = dir.join(LOG_FILE);
        let log = match std::fs::read(&log_path) {
            Ok(log) => log,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let loaded = LoadedLog { plain_snapshot, entries: entries(&catalog), ..LoadedLog::default() };
                return Ok((catalog, loaded));
            }
            Err(e) => return Err(StoreError::Io { op: "read", path: log_path, source: e }),
        };
        let corrupt = |offset: u64, reason: &str| StoreError::Corrupt {
            path: log_path.clone(),
            offset,
            reason: reason.into(),
        };
        if log.len() < LOG_HEADER_BYTES || &log[..8] != LOG_MAGIC {
            return Err(corrupt(0, "missing catalog log magic"));
        }
        if log[8..LOG_HEADER_BYTES] != snapshot[..] {
            // Folded into the snapshot already; the next flush replaces it.
            let loaded = LoadedLog { plain_snapshot, entries: entries(&catalog), ..LoadedLog::default() };
            return Ok((catalog, loaded));
        }
        let records = doppel_fs::log::read(&log, LOG_HEADER_BYTES)
            .map_err(|damaged| corrupt(damaged.offset, "the record does not verify"))?;
        let mut in_files = entries(&catalog);
        for record in &records.records {
            let changes = Self::decode(&log_path, record.payload, sealing).map_err(|e| match e {
                StoreError::Corrupt { reason, offset, .. } => corrupt(record.offset + offset, &reason),
                other => other,
            })?;
            in_files += entries(&changes);
            catalog.apply(changes);
        }
        catalog.changed.clear();
        catalog.snapshot_version = catalog.version;
        let loaded = LoadedLog {
            continues: Some(records.end),
            torn_at: records.torn_at,
            plain_snapshot,
            entries: in_files,
        };
        Ok((catalog, loaded))
    }

    /// Reads a snapshot, or a partial catalog from the log.
    fn decode(path: &Path, bytes: &[u8], sealing: Option<&Sealing>) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        if let Some(sealed) = bytes.strip_prefix(SEALED_MAGIC) {
            let Some(sealing) = sealing else { return Err(StoreError::KeyringRequired { path }) };
            return Self::load_sealed(sealed, sealing).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                offset: SEALED_MAGIC.len() as u64 + e.offset as u64,
                reason: e.reason,
            });
        }
        let corrupt = |offset: u64, reason: &str| StoreError::Corrupt {
            path: path.clone(),
            offset,
            reason: reason.into(),
        };
        if bytes.len() < 20 || &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(corrupt(0, "missing catalog magic"));
        }
        let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[12..20]);
        let json = &bytes[20..];
        if u64::from_le_bytes(len) != json.len() as u64 {
            return Err(corrupt(12, "catalog length does not match the file"));
        }
        if crc32fast::hash(json) != crc {
            return Err(corrupt(8, "catalog checksum mismatch"));
        }
        let snapshot: Snapshot = serde_json::from_slice(json).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            offset: 20 + e.column() as u64,
            reason: e.to_string(),
        })?;
        let mut catalog = Self { tombstones: snapshot.tombstones.into_iter().collect(), ..Self::default() };
        for twin in snapshot.twins {
            catalog.twins.upsert(twin);
        }
        Ok(catalog)
    }
}

fn snapshot_bytes(
    twins: Vec<TwinRecordRef<'_>>,
    tombstones: Vec<(&TwinId, u64)>,
) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(&SnapshotRef { twins, tombstones }).map_err(|e| StoreError::Corrupt {
        path: SNAPSHOT_FILE.into(),
        offset: 0,
        reason: format!("catalog does not serialise: {e}"),
    })?;
    let mut out = Vec::with_capacity(json.len() + 20);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// What names a snapshot in the log's header: its length and checksum
/// (zeros for none).
fn snapshot_identity(bytes: &[u8]) -> [u8; 12] {
    let mut identity = [0u8; 12];
    if !bytes.is_empty() {
        identity[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        identity[8..].copy_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    }
    identity
}

/// What [`Catalog::load`] found of the log.
#[derive(Default, Debug)]
pub(crate) struct LoadedLog {
    /// Where the whole records of a log continuing the snapshot end.
    continues: Option<u64>,
    /// The offset of a torn last record, cut off when the log is opened.
    pub torn_at: Option<u64>,
    /// The snapshot is not sealed: a sealed store rewrites it whole at
    /// its first flush rather than logging sealed changes beside it.
    pub plain_snapshot: bool,
    /// Twins and tombstones the snapshot and the log hold, superseded ones
    /// included.
    entries: u64,
}

/// The catalog log being appended to at flush time.
pub(crate) struct CatalogLog {
    dir: std::path::PathBuf,
    /// Twins and tombstones the snapshot and the log hold.
    entries: u64,
    appender: Option<doppel_fs::log::Appender>,
}

impl CatalogLog {
    /// Opens the log [`Catalog::load`] read (cutting a torn last record
    /// off), or none when it did not continue the snapshot, or when a
    /// `sealed` store found a plain snapshot: then the next flush writes a
    /// whole snapshot.
    pub(crate) fn open(dir: &Path, loaded: &LoadedLog, sealed: bool) -> Result<Self, StoreError> {
        let appender = match loaded.continues.filter(|_| !(sealed && loaded.plain_snapshot)) {
            Some(end) => Some(doppel_fs::log::Appender::open(&dir.join(LOG_FILE), end).map_err(fs_error)?),
            None => None,
        };
        Ok(CatalogLog { dir: dir.to_path_buf(), entries: loaded.entries, appender })
    }

    /// True when there is no log to append to, or the files hold more
    /// superseded entries than the catalog's `live` twins and tombstones
    /// (and a few thousand): then a new snapshot costs O(1) per entry it
    /// drops, amortised.
    pub(crate) fn wants_snapshot(&self, live: u64) -> bool {
        self.appender.is_none() || self.entries.saturating_sub(live) > live + MIN_SUPERSEDED_ENTRIES
    }

    /// Appends `changes` (from [`Catalog::changes`], holding `entries`
    /// twins and tombstones) durably.
    pub(crate) fn append(&mut self, changes: &[u8], entries: u64) -> Result<(), StoreError> {
        let appender = self.appender.as_mut().ok_or_else(|| StoreError::Io {
            op: "append to",
            path: self.dir.join(LOG_FILE),
            source: std::io::Error::other("no catalog log continues the snapshot"),
        })?;
        appender.append(changes).map_err(fs_error)?;
        self.entries += entries;
        Ok(())
    }

    /// Writes `snapshot` (from [`Catalog::snapshot`], holding `entries`
    /// twins and tombstones) as `catalog.bin`, then an empty log
    /// continuing it.
    pub(crate) fn write_snapshot(&mut self, snapshot: &[u8], entries: u64) -> Result<(), StoreError> {
        write_snapshot(&self.dir, snapshot)?;
        self.entries = entries;
        self.appender = None;
        let mut header = LOG_MAGIC.to_vec();
        header.extend_from_slice(&snapshot_identity(snapshot));
        let path = self.dir.join(LOG_FILE);
        self.appender =
            Some(doppel_fs::log::create(&path, &doppel_fs::replace_options(), &header).map_err(fs_error)?);
        Ok(())
    }
}

fn fs_error(e: doppel_fs::Error) -> StoreError {
    if e.op.is_sync() {
        StoreError::SyncFailed { path: e.path, source: e.source }
    } else {
        StoreError::Io { op: e.op.as_str(), path: e.path, source: e.source }
    }
}

impl Catalog {
    /// Reads a sealed snapshot (after its magic); twins whose key is gone
    /// are left out.
    fn load_sealed(sealed: &[u8], sealing: &Sealing) -> Result<Self, DecodeError> {
        let body = sealing.open_store(Role::Catalog, sealed)?;
        let mut r = Reader::new(&body);
        let mut catalog = Self { next_number: r.uvarint("next number")?, ..Self::default() };
        for _ in 0..r.count("tombstone count", body.len())? {
            let id = r.twin()?;
            catalog.tombstones.insert(id, r.uvarint("watermark")?);
        }
        for _ in 0..r.count("twin count", body.len())? {
            let number = r.uvarint("twin number")?;
            let frame = r.bytes("sealed twin record")?;
            catalog.saw_number(number);
            let Some(key) = sealing.twin_key(number) else { continue };
            let at = r.position();
            let json = key.open(Role::CatalogTwin, frame).map_err(|e| DecodeError { offset: at, ..e })?;
            let twin: TwinRecord = serde_json::from_slice(&json)
                .map_err(|e| DecodeError { offset: at, reason: format!("twin record: {e}") })?;
            catalog.numbers.insert(twin.id.clone(), number);
            catalog.twins.upsert(twin);
        }
        if !r.is_empty() {
            return r.fail("trailing bytes after the catalog");
        }
        Ok(catalog)
    }
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    twins: Vec<TwinRecordRef<'a>>,
    tombstones: Vec<(&'a TwinId, u64)>,
}

/// Writes snapshot bytes atomically: temp file, fsync, rename, fsync dir.
pub(crate) fn write_snapshot(dir: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let path = dir.join(SNAPSHOT_FILE);
    StoreError::write_atomic(&path, &tmp, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_twins_and_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::default();
        let id = TwinId::new("alice").unwrap();
        catalog.upsert(TwinRecord {
            id: id.clone(),
            model: "person".into(),
            properties: serde_json::Map::new(),
            created: Timestamp::from_secs(1),
        });
        catalog.delete(&TwinId::new("bob").unwrap(), 9);
        write_snapshot(dir.path(), &catalog.snapshot(None).unwrap()).unwrap();
        let (loaded, _) = Catalog::load(dir.path(), None).unwrap();
        assert_eq!(loaded.twins, catalog.twins);
        assert_eq!(loaded.tombstones, catalog.tombstones);
    }

    #[test]
    fn a_damaged_snapshot_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Catalog::default().snapshot(None).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        write_snapshot(dir.path(), &bytes).unwrap();
        assert!(matches!(Catalog::load(dir.path(), None), Err(StoreError::Corrupt { .. })));
    }

    fn twin(id: &str, model: &str) -> TwinRecord {
        TwinRecord {
            id: TwinId::new(id).unwrap(),
            model: model.into(),
            properties: serde_json::Map::new(),
            created: Timestamp::from_secs(1),
        }
    }

    /// Persists the catalog's changes as a flush does.
    fn flush(catalog: &mut Catalog, log: &mut CatalogLog) {
        let live = (catalog.twins.len() + catalog.tombstones.len()) as u64;
        if log.wants_snapshot(live) {
            log.write_snapshot(&catalog.snapshot(None).unwrap(), live).unwrap();
        } else {
            log.append(&catalog.changes(None).unwrap(), catalog.changed.len() as u64).unwrap();
        }
        catalog.persisted(catalog.version);
    }

    #[test]
    fn changes_logged_after_the_snapshot_are_replayed_and_a_torn_last_one_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut catalog, loaded) = Catalog::load(dir.path(), None).unwrap();
        let mut log = CatalogLog::open(dir.path(), &loaded, false).unwrap();
        catalog.upsert(twin("alice", "person"));
        flush(&mut catalog, &mut log);
        let snapshot = std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap();
        catalog.upsert(twin("bob", "person"));
        catalog.delete(&TwinId::new("alice").unwrap(), 7);
        flush(&mut catalog, &mut log);
        catalog.upsert(twin("alice", "dog"));
        flush(&mut catalog, &mut log);
        assert_eq!(
            std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap(),
            snapshot,
            "small changes are logged"
        );
        let (loaded, found) = Catalog::load(dir.path(), None).unwrap();
        assert_eq!((&loaded.twins, &loaded.tombstones), (&catalog.twins, &catalog.tombstones));
        assert_eq!(found.torn_at, None);

        let log_path = dir.path().join(LOG_FILE);
        let whole = std::fs::read(&log_path).unwrap();
        std::fs::write(&log_path, &whole[..whole.len() - 4]).unwrap();
        let (loaded, found) = Catalog::load(dir.path(), None).unwrap();
        assert!(found.torn_at.is_some());
        assert_eq!(
            loaded.twins.get(&TwinId::new("alice").unwrap()),
            None,
            "the torn re-creation is not applied"
        );
        CatalogLog::open(dir.path(), &found, false).unwrap();
        assert_eq!(std::fs::metadata(&log_path).unwrap().len(), found.torn_at.unwrap());

        let mut damaged = whole.clone();
        damaged[LOG_HEADER_BYTES + 9] ^= 1;
        std::fs::write(&log_path, &damaged).unwrap();
        assert!(
            matches!(Catalog::load(dir.path(), None), Err(StoreError::Corrupt { offset, .. }) if offset == LOG_HEADER_BYTES as u64)
        );
    }

    #[test]
    fn a_log_that_does_not_continue_the_snapshot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut catalog, loaded) = Catalog::load(dir.path(), None).unwrap();
        let mut log = CatalogLog::open(dir.path(), &loaded, false).unwrap();
        flush(&mut catalog, &mut log);
        catalog.upsert(twin("alice", "person"));
        flush(&mut catalog, &mut log);
        let stale = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
        catalog.delete(&TwinId::new("alice").unwrap(), 3);
        log.write_snapshot(&catalog.snapshot(None).unwrap(), 1).unwrap();
        // A crash between the new snapshot and its empty log leaves the
        // old log, whose upsert of alice the snapshot has superseded.
        std::fs::write(dir.path().join(LOG_FILE), &stale).unwrap();
        let (loaded, _) = Catalog::load(dir.path(), None).unwrap();
        assert!(!loaded.twins.contains(&TwinId::new("alice").unwrap()));
    }
}
