//! The twin catalog: twin records and deletion tombstones, in memory,
//! logged in the WAL and snapshotted to `catalog.bin` at flush time when it
//! changed.
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
}

impl Catalog {
    pub(crate) fn upsert(&mut self, twin: TwinRecord) {
        self.twins.upsert(twin);
        self.version += 1;
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
        let Some(sealing) = sealing else { return self.snapshot_bytes() };
        let mut body = Vec::new();
        put_uvarint(&mut body, self.next_number);
        put_uvarint(&mut body, self.tombstones.len() as u64);
        for (id, watermark) in &self.tombstones {
            put_bytes(&mut body, id.as_str().as_bytes());
            put_uvarint(&mut body, *watermark);
        }
        let mut sealed = Vec::with_capacity(self.twins.len());
        for twin in self.twins.iter() {
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

    fn snapshot_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let snapshot = SnapshotRef {
            twins: self.twins.iter().collect(),
            tombstones: self.tombstones.iter().map(|(k, v)| (k, *v)).collect(),
        };
        let json = serde_json::to_vec(&snapshot).map_err(|e| StoreError::Corrupt {
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

    /// Loads `catalog.bin` from `dir`; an absent file is an empty catalog.
    pub(crate) fn load(dir: &Path, sealing: Option<&Sealing>) -> Result<Self, StoreError> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(StoreError::Io { op: "read", path, source: e }),
        };
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
        let loaded = Catalog::load(dir.path(), None).unwrap();
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
}
