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

/// One flushed segment holding alice's and bob's heart rate, alice's block
/// first (blocks follow the magic in key order); returns its path.
fn segment_with_two_twins(dir: &Path) -> PathBuf {
    let store = Store::open(config(dir)).unwrap();
    store.write(&batch(&key("alice", "heart_rate", None), &[(1, 60.0), (2, 61.0)])).unwrap();
    store.write(&batch(&key("bob", "heart_rate", None), &[(1, 70.0), (2, 71.0)])).unwrap();
    store.flush().unwrap().segment.unwrap()
}

/// Flips a byte inside the segment's first block (alice's).
fn damage_first_block(segment: &Path) {
    let mut bytes = std::fs::read(segment).unwrap();
    bytes[12] ^= 0x10;
    std::fs::write(segment, &bytes).unwrap();
}

#[test]
fn a_damaged_segment_block_is_found_at_open_skipped_by_reads_and_dropped_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let segment = segment_with_two_twins(dir.path());
    damage_first_block(&segment);

    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.recovery_report().segments_loaded, 1);
    let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
    let problems = store.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].component, problems[0].severity), ("segments", Severity::Degraded));
    assert!(problems[0].detail.starts_with(&format!("{name}: 1 damaged block(s) at byte(s) 8 ")));
    assert!(problems[0].detail.contains("2 points of 1 series"), "{}", problems[0].detail);
    let bad = store.bad_blocks();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, segment);
    assert_eq!(bad[0].1[0].series.as_deref(), Some("alice/heart_rate/"));

    // Reads skip the block instead of failing; the rest is served.
    assert_eq!(pairs(&store, &key("bob", "heart_rate", None)), vec![(1, 70.0), (2, 71.0)]);
    assert!(pairs(&store, &key("alice", "heart_rate", None)).is_empty());
    let stats = store.stats();
    assert_eq!((stats.bad_blocks, stats.bad_block_reads_skipped_total), (1, 1));

    let report = store.compact().unwrap();
    assert_eq!(report.points_dropped_damaged, 2);
    assert_eq!(report.damaged_blocks.len(), 1);
    assert!(
        report.damaged_blocks[0].starts_with(&format!("{name} at byte 8: 2 points of alice/heart_rate/"))
    );
    assert_eq!(report.points_out, 2);
    assert!(store.bad_blocks().is_empty());
    assert!(store.problems()[0].detail.starts_with("compaction dropped 2 points of 1 damaged block(s)"));
    // The merge skipped it too, and the count outlives the segment.
    assert_eq!(store.stats().bad_block_reads_skipped_total, 2);
    drop(store);

    let store = Store::open(config(dir.path())).unwrap();
    assert!(store.problems().is_empty(), "{:?}", store.problems());
    assert_eq!(pairs(&store, &key("bob", "heart_rate", None)).len(), 2);
}

#[test]
fn a_block_damaged_after_open_is_skipped_and_reported_by_the_read_that_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let segment = segment_with_two_twins(dir.path());
    let store = Store::open(config(dir.path())).unwrap();
    assert!(store.problems().is_empty());
    damage_first_block(&segment);
    assert!(pairs(&store, &key("alice", "heart_rate", None)).is_empty());
    assert_eq!(pairs(&store, &key("bob", "heart_rate", None)).len(), 2);
    let problems = store.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].detail.contains("(2 points)"), "{}", problems[0].detail);
}
