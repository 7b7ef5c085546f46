//! Offline verification and salvage of a data directory, for `doppel
//! check` and `doppel repair` (the server must be stopped).
//!
//! [`check`] reads everything and changes nothing: the twin catalog, every
//! segment's footer, directory, index pages and block seals, and every WAL
//! record recovery would replay. [`repair`] opens the store (recovery
//! copies damaged WAL ranges to `quarantine/` and cuts a torn tail),
//! flushes and compacts it (the compaction skips damaged blocks), retires
//! WAL files whose good records are now in segments and moves segments set
//! aside at an open into `quarantine/`, then says what was lost.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::config::StoreConfig;
use crate::sealing::{Sealing, check_marker};
use crate::segment::Segment;
use crate::store::{QUARANTINE_DIR, Store};
use crate::wal::{WalEntry, list_wal_files, scan};
use crate::{CorruptionKind, StoreError};

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// Damage, one line each, naming the file (relative to the data
    /// directory), where, and what is lost. Empty when all is well.
    pub damage: Vec<String>,
    /// Findings that are not damage (a torn WAL tail, which the next open
    /// cuts; a temporary file of an interrupted write).
    pub notes: Vec<String>,
    /// Segments checked.
    pub segments: usize,
    /// WAL files read.
    pub wal_files: usize,
    /// WAL records that verified.
    pub wal_records: u64,
}

/// What [`repair`] did and what was lost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepairReport {
    /// What could not be saved, one line each.
    pub lost: Vec<String>,
    /// What was done to the files.
    pub actions: Vec<String>,
}

/// Verifies every checksum and index of the store in `dir` without
/// changing it; `progress` is told what is being read. A sealed store
/// needs its `sealing`. Fails only when the directory cannot be read or is
/// in use, not because of damage, which the report lists.
pub fn check(
    dir: &Path,
    sealing: Option<&Arc<Sealing>>,
    progress: &mut dyn FnMut(&str),
) -> Result<CheckReport, StoreError> {
    let _lock = lock(dir)?;
    check_marker(dir, sealing.map(Arc::as_ref))?;
    let mut report = CheckReport::default();
    progress("catalog.bin");
    let mut catalog = match Catalog::load(dir, sealing.map(Arc::as_ref)) {
        Ok((catalog, _)) => catalog,
        Err(StoreError::Corrupt { path, offset, reason }) => {
            let file = path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            report.damage.push(format!("{file}: at byte {offset}: {reason}"));
            Catalog::default()
        }
        Err(e) => return Err(e),
    };

    let mut segments = Vec::new();
    for (name, path) in files_in(&dir.join("segments"))? {
        if name.ends_with(".seg.corrupt") {
            report.damage.push(format!(
                "segments/{name}: a segment set aside at an earlier open; its data is not served \
                 (`doppel repair` moves it to {QUARANTINE_DIR}/)"
            ));
        } else if name.ends_with(".seg.tmp") {
            report
                .notes
                .push(format!("segments/{name}: left by an interrupted write; the next open deletes it"));
        } else if let Some(id) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
            progress(&format!("segments/{name} (index)"));
            match Segment::open(id, &path, sealing) {
                Ok(segment) => segments.push((name, segment)),
                Err(StoreError::Corrupt { offset, reason, .. }) => report.damage.push(format!(
                    "segments/{name}: at byte {offset}: {reason}; the whole segment is unreadable"
                )),
                Err(e) => return Err(e),
            }
        }
    }
    report.segments = segments.len() + report.damage.iter().filter(|d| d.contains("whole segment")).count();

    // The WAL after the segments, as recovery replays it; its twin
    // records also give the numbers that name sealed twins' keys.
    let wal_start = segments.iter().map(|(_, s)| s.meta.wal_start).max().unwrap_or(0);
    let wal_dir = dir.join("wal");
    let wal_files = if wal_dir.is_dir() { list_wal_files(&wal_dir)? } else { Vec::new() };
    let newest = wal_files.last().map(|(seq, _)| *seq);
    for (seq, path) in wal_files.iter().filter(|(seq, _)| *seq >= wal_start) {
        let name = file_name(path);
        progress(&format!("wal/{name}"));
        let bytes = std::fs::read(path).map_err(StoreError::io("read", path))?;
        let scanned = scan(&bytes, sealing.map(Arc::as_ref));
        if scanned.needs_keyring {
            return Err(StoreError::KeyringRequired { path: path.clone() });
        }
        report.wal_files += 1;
        report.wal_records += scanned.entries.len() as u64;
        for entry in scanned.entries {
            if let WalEntry::TwinUpsert { twin, number: Some(number) } = entry {
                catalog.number(&twin.id, number);
            }
        }
        for range in &scanned.bad_ranges {
            report.damage.push(format!(
                "wal/{name}: bytes {}..{} unreadable ({}), {}",
                range.start,
                range.end,
                describe(&range.reason),
                records_lost(range.records)
            ));
        }
        if let Some(reason) = scanned.corruption {
            let (start, end) = (scanned.good_len, bytes.len() as u64);
            if Some(*seq) == newest {
                report.notes.push(format!(
                    "wal/{name}: bytes {start}..{end} are a torn tail ({}), an unfinished write the next \
                     open cuts",
                    describe(&reason)
                ));
            } else {
                report.damage.push(format!(
                    "wal/{name}: bytes {start}..{end} unreadable ({}), the rest of the file is lost",
                    describe(&reason)
                ));
            }
        }
    }

    for (name, segment) in &segments {
        progress(&format!("segments/{name} (blocks)"));
        let mut key_of = |twin: &doppel_model::TwinId| {
            let number = *catalog.numbers.get(twin)?;
            sealing?.twin_key(number)
        };
        segment.verify_blocks(&mut key_of)?;
        for bad in segment.bad.list() {
            report.damage.push(format!(
                "segments/{name}: block at byte {} ({} points of {}) unreadable: {}",
                bad.offset,
                bad.points,
                bad.series.as_deref().unwrap_or("an unknown series"),
                bad.reason
            ));
        }
    }
    Ok(report)
}

/// Salvages the store `config` describes: everything readable is kept,
/// everything else is dropped and named. Opens the store, so it needs the
/// same keys as the server.
pub fn repair(mut config: StoreConfig, progress: &mut dyn FnMut(&str)) -> Result<RepairReport, StoreError> {
    config.background = false;
    let dir = config.dir.clone();
    let mut report = RepairReport::default();
    progress("recovering (WAL replay, block checks)");
    let store = Store::open(config)?;
    let recovery = store.recovery_report().clone();
    for damage in &recovery.wal_damage {
        let name = file_name(&damage.file);
        let (start, end) = (damage.offset, damage.offset + damage.bytes_dropped);
        if damage.truncated {
            report.actions.push(format!("wal/{name}: cut a torn tail at byte {start} (an unfinished write)"));
        } else {
            report.lost.push(format!(
                "wal/{name}: bytes {start}..{end} ({}), {}",
                describe(&damage.reason),
                records_lost(damage.records_lost)
            ));
        }
        if let Some(copy) = &damage.quarantined {
            report.actions.push(format!(
                "wal/{name}: copied bytes {start}..{end} to {QUARANTINE_DIR}/{}",
                file_name(copy)
            ));
        }
    }
    for segment in &recovery.segments_discarded {
        report.lost.push(format!(
            "segments/{}: the whole segment ({})",
            file_name(&segment.file),
            segment.reason
        ));
    }
    progress("flushing the replayed WAL into a segment");
    store.flush()?;
    progress("compacting (rewriting segments without damaged blocks)");
    let compaction = store.compact()?;
    for block in &compaction.damaged_blocks {
        report.lost.push(format!("segments/{block}"));
    }
    let retired = store.retire_wal()?;
    if retired > 0 {
        report
            .actions
            .push(format!("removed {retired} WAL file(s) whose readable records are now in segments"));
    }
    drop(store);
    let quarantine = dir.join(QUARANTINE_DIR);
    for (name, path) in files_in(&dir.join("segments"))? {
        if name.ends_with(".seg.corrupt") {
            doppel_fs::create_dir_all(&quarantine, None)
                .map_err(StoreError::io("create directory", &quarantine))?;
            let to = quarantine.join(&name);
            doppel_fs::rename(&path, &to).map_err(StoreError::io("rename", &path))?;
            doppel_fs::sync_dir(&quarantine).map_err(StoreError::io("sync directory", &quarantine))?;
            report.actions.push(format!("segments/{name}: moved to {QUARANTINE_DIR}/{name}"));
        }
    }
    let segments = dir.join("segments");
    doppel_fs::sync_dir(&segments).map_err(StoreError::io("sync directory", &segments))?;
    Ok(report)
}

/// Takes the store's lock, so that a running server's directory is refused.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let lock = File::create(&path).map_err(StoreError::io("create", &path))?;
    lock.try_lock().map_err(|e| StoreError::Io {
        op: "lock (is another process using this store?)",
        path: path.clone(),
        source: e.into(),
    })?;
    Ok(lock)
}

/// `(name, path)` of the files in `dir`, sorted; none when it is absent.
fn files_in(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StoreError::io("list", dir))? {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            files.push((name.to_owned(), entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned())
}

fn describe(reason: &CorruptionKind) -> String {
    match reason {
        CorruptionKind::ShortRecord => "the file ends inside a record".to_owned(),
        CorruptionKind::BadLength => "a record length out of bounds".to_owned(),
        CorruptionKind::BadChecksum => "a record checksum mismatch".to_owned(),
        CorruptionKind::BadPayload(why) => format!("a record that does not decode: {why}"),
    }
}

fn records_lost(records: Option<u64>) -> String {
    match records {
        Some(1) => "1 record lost".to_owned(),
        Some(n) => format!("{n} records lost"),
        None => "an unknown number of records lost".to_owned(),
    }
}
