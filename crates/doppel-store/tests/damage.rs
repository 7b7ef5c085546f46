//! Damage on disk: what recovery and reads keep, what they name as lost,
//! and that the store reports it as a problem instead of failing.

mod common;

use std::path::{Path, PathBuf};

use common::{batch, config, key, pairs};
use doppel_store::{CorruptionKind, Severity, Store};

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Writes `n` batches of 10 points each; returns the WAL file and the
/// offset where each batch's record starts.
fn ten_point_writes(dir: &Path, n: usize) -> (PathBuf, Vec<u64>) {
    let store = Store::open(config(dir)).unwrap();
    let k = key("alice", "heart_rate", None);
    let wal = wal_files(dir).pop().unwrap();
    let mut starts = Vec::new();
    for i in 0..n as i64 {
        starts.push(std::fs::metadata(&wal).unwrap().len());
        let samples: Vec<(i64, f64)> = (0..10).map(|j| (i * 10 + j, 60.0 + j as f64)).collect();
        store.write(&batch(&k, &samples)).unwrap();
    }
    (wal, starts)
}

#[test]
fn a_flipped_byte_in_the_middle_of_the_newest_wal_costs_only_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, starts) = ten_point_writes(dir.path(), 10);
    let file_len = std::fs::metadata(&wal).unwrap().len();
    let mut bytes = std::fs::read(&wal).unwrap();
    // Record 4 of 10: a byte in the middle of its payload.
    let (start, end) = (starts[4], starts[5]);
    bytes[(start + (end - start) / 2) as usize] ^= 0x20;
    std::fs::write(&wal, &bytes).unwrap();

    let store = Store::open(config(dir.path())).unwrap();
    let k = key("alice", "heart_rate", None);
    let times: Vec<i64> = pairs(&store, &k).into_iter().map(|(t, _)| t).collect();
    let expected: Vec<i64> = (0..100).filter(|t| !(40..50).contains(t)).collect();
    assert_eq!(times, expected, "the 5 records after the damaged one are recovered");

    let damage = &store.recovery_report().wal_damage;
    assert_eq!(damage.len(), 1, "{damage:?}");
    let damage = &damage[0];
    assert_eq!((damage.file.clone(), damage.offset, damage.bytes_dropped), (wal.clone(), start, end - start));
    assert_eq!(damage.records_lost, Some(1));
    assert_eq!(damage.reason, CorruptionKind::BadChecksum);
    assert!(!damage.truncated);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), file_len, "the WAL is not cut");
    let copy = damage.quarantined.clone().unwrap();
    assert_eq!(copy.parent().unwrap(), dir.path().join("quarantine"));
    assert_eq!(std::fs::read(&copy).unwrap(), &bytes[start as usize..end as usize]);

    let problems = store.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].component, problems[0].severity), ("wal", Severity::Degraded));
    let name = wal.file_name().unwrap().to_str().unwrap();
    assert!(
        problems[0].detail.starts_with(&format!("{name}: bytes {start}..{end} not replayed")),
        "{}",
        problems[0].detail
    );
    assert!(problems[0].detail.contains("1 record lost"), "{}", problems[0].detail);
    assert!(!problems[0].detail.contains(dir.path().to_str().unwrap()));
}

#[test]
fn a_torn_tail_is_still_cut_quietly_after_a_damaged_middle() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, starts) = ten_point_writes(dir.path(), 4);
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[starts[1] as usize + 12] ^= 0x01;
    // A crash mid-append: the last record is cut short.
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&wal, &bytes).unwrap();

    let store = Store::open(config(dir.path())).unwrap();
    let times: Vec<i64> =
        pairs(&store, &key("alice", "heart_rate", None)).into_iter().map(|(t, _)| t).collect();
    let expected: Vec<i64> = (0..10).chain(20..30).collect();
    assert_eq!(times, expected);
    let damage = &store.recovery_report().wal_damage;
    assert_eq!(damage.len(), 2, "{damage:?}");
    assert!(!damage[0].truncated && damage[0].offset == starts[1]);
    assert!(damage[1].truncated && damage[1].offset == starts[3]);
    assert_eq!(damage[1].reason, CorruptionKind::ShortRecord);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), starts[3], "the torn tail is cut");
    assert_eq!(store.problems().len(), 1, "only the damaged middle is a problem");
}
