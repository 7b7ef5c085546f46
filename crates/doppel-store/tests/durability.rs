//! Recovery, last-write-wins, deletion, retention and group commit through
//! the public API.

mod common;

use std::sync::Arc;

use common::{batch, config, key, pairs, query};
use doppel_model::{Span, Timestamp, TwinId};
use doppel_store::{Aggregate, CorruptionKind, RetentionPolicy, Store, TwinRecord};

fn newest_wal(dir: &std::path::Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.pop().unwrap()
}

/// Writes two batches, returning the WAL file and the length after the first.
fn two_writes(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let store = Store::open(config(dir)).unwrap();
    let k = key("alice", "heart_rate", None);
    store.write(&batch(&k, &[(1, 60.0), (2, 61.0)])).unwrap();
    let wal = newest_wal(dir);
    let first = std::fs::metadata(&wal).unwrap().len();
    store.write(&batch(&k, &[(3, 62.0)])).unwrap();
    (wal, first)
}

#[test]
fn a_wal_cut_at_any_byte_of_the_last_record_recovers_the_records_before_it() {
    let template = tempfile::tempdir().unwrap();
    let (wal, first) = two_writes(template.path());
    let full = std::fs::read(&wal).unwrap();
    let k = key("alice", "heart_rate", None);
    for cut in first as usize..full.len() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wal")).unwrap();
        let copy = dir.path().join("wal").join(wal.file_name().unwrap());
        std::fs::write(&copy, &full[..cut]).unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(pairs(&store, &k), vec![(1, 60.0), (2, 61.0)], "cut at {cut}");
        let report = store.recovery_report();
        if cut as u64 == first {
            assert!(report.wal_damage.is_empty());
        } else {
            let damage = &report.wal_damage[0];
            assert_eq!(damage.offset, first);
            assert_eq!(damage.bytes_dropped, cut as u64 - first);
            assert!(damage.truncated);
            assert_eq!(std::fs::metadata(&copy).unwrap().len(), first, "file is cut at the last good record");
        }
    }
}

#[test]
fn a_corrupted_tail_byte_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, first) = two_writes(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(pairs(&store, &key("alice", "heart_rate", None)).len(), 2);
    let damage = &store.recovery_report().wal_damage[0];
    assert_eq!(damage.offset, first);
    assert_eq!(damage.reason, CorruptionKind::BadChecksum);
}

#[test]
fn garbage_appended_to_the_wal_is_dropped_and_later_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = two_writes(dir.path());
    let good = std::fs::metadata(&wal).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    std::io::Write::write_all(&mut f, b"\x07\x00\x00\x00garbage!garbage").unwrap();
    drop(f);
    let k = key("alice", "heart_rate", None);
    {
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(pairs(&store, &k).len(), 3);
        assert_eq!(store.recovery_report().wal_damage[0].offset, good);
        store.write(&batch(&k, &[(4, 63.0)])).unwrap();
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(pairs(&store, &k).len(), 4);
    assert!(store.recovery_report().wal_damage.is_empty());
}

#[test]
fn later_writes_win_across_head_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let k = key("alice", "heart_rate", None);
    store.write(&batch(&k, &[(10, 1.0), (20, 1.0), (30, 1.0)])).unwrap();
    store.flush().unwrap();
    store.write(&batch(&k, &[(20, 2.0), (25, 2.0)])).unwrap();
    store.flush().unwrap();
    // Two segments now disagree at t=20; the newer one wins.
    assert_eq!(pairs(&store, &k), vec![(10, 1.0), (20, 2.0), (25, 2.0), (30, 1.0)]);
    // Head over segment.
    store.write(&batch(&k, &[(10, 3.0), (5, 3.0)])).unwrap();
    assert_eq!(pairs(&store, &k), vec![(5, 3.0), (10, 3.0), (20, 2.0), (25, 2.0), (30, 1.0)]);
    let last = store.last(&query("alice", "heart_rate")).unwrap().unwrap();
    assert_eq!((last.1.time.as_nanos(), last.1.value.get()), (30, 1.0));
    store.compact().unwrap();
    assert_eq!(pairs(&store, &k), vec![(5, 3.0), (10, 3.0), (20, 2.0), (25, 2.0), (30, 1.0)]);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(pairs(&store, &k), vec![(5, 3.0), (10, 3.0), (20, 2.0), (25, 2.0), (30, 1.0)]);
}

fn twin(id: &str) -> TwinRecord {
    TwinRecord {
        id: TwinId::new(id).unwrap(),
        model: "person".into(),
        properties: serde_json::Map::new(),
        created: Timestamp::from_secs(1),
    }
}

#[test]
fn a_deleted_twin_is_invisible_and_not_resurrected_by_re_creation_or_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("bob", "steps", None);
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.put_twin(&twin("bob")).unwrap();
        store.put_twin(&twin("carol")).unwrap();
        store.write(&batch(&k, &[(1, 10.0)])).unwrap();
        store.flush().unwrap();
        store.write(&batch(&k, &[(2, 20.0)])).unwrap();
        assert!(store.delete_twin(&TwinId::new("bob").unwrap()).unwrap());
        assert!(!store.delete_twin(&TwinId::new("nobody").unwrap()).unwrap());
        assert!(store.twin(&TwinId::new("bob").unwrap()).is_none());
        assert!(pairs(&store, &k).is_empty());
        assert!(store.series(&TwinId::new("bob").unwrap()).unwrap().is_empty());
        store.put_twin(&twin("bob")).unwrap();
        store.write(&batch(&k, &[(3, 30.0)])).unwrap();
        assert_eq!(pairs(&store, &k), vec![(3, 30.0)]);
    }
    // Reopen replays the WAL (delete record included).
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(pairs(&store, &k), vec![(3, 30.0)]);
    assert_eq!(store.twin_count(), 2);
    // After flush the tombstone lives only in the catalog snapshot.
    store.flush().unwrap();
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(pairs(&store, &k), vec![(3, 30.0)]);
    let report = store.compact().unwrap();
    assert_eq!(report.points_dropped_deleted, 1);
    assert_eq!(pairs(&store, &k), vec![(3, 30.0)]);
    let page = store.twins(None, 1, Some("person"));
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id.as_str(), "bob");
    assert_eq!(store.twins(Some(&page[0].id), 10, None)[0].id.as_str(), "carol");
}

#[test]
fn retention_drops_old_points_at_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let hr = key("alice", "heart_rate", None);
    let steps = key("alice", "steps", None);
    let now = Timestamp::now().as_nanos();
    let day = 86_400_000_000_000i64;
    let old_and_new = [(now - 10 * day, 1.0), (now - 3 * day, 2.0), (now - day / 2, 3.0)];
    store.write(&batch(&hr, &old_and_new)).unwrap();
    store.write(&batch(&steps, &old_and_new)).unwrap();
    store.flush().unwrap();
    let mut policy = RetentionPolicy { default: Span::from_nanos(7 * day), ..Default::default() };
    policy.per_signal.insert(steps.signal.clone(), Span::from_nanos(day).unwrap());
    store.set_retention(policy);
    let report = store.compact().unwrap();
    assert_eq!(report.points_dropped_retention, 3);
    assert_eq!(pairs(&store, &hr).len(), 2);
    assert_eq!(pairs(&store, &steps), vec![(now - day / 2, 3.0)]);
    assert_eq!(store.stats().retention_dropped_points_total, 3);
}

#[test]
fn concurrent_writers_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(config(dir.path())).unwrap());
    let writes_per_thread = 50;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let k = key(&format!("twin{t}"), "heart_rate", None);
                for i in 0..writes_per_thread {
                    store.write(&batch(&k, &[(i, i as f64)])).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = store.stats();
    let writes = 8 * writes_per_thread as u64;
    assert_eq!(stats.points_written_total, writes);
    assert!(stats.fsyncs_total < writes, "{} fsyncs for {writes} writes", stats.fsyncs_total);
    assert_eq!(pairs(&store, &key("twin3", "heart_rate", None)).len(), writes_per_thread as usize);
}

#[test]
fn regular_minute_heart_rate_takes_at_most_1_5_bytes_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let k = key("alice", "heart_rate", Some("watch"));
    let start = 1_700_000_000_000_000_000i64;
    let minute = 60_000_000_000i64;
    let points = 100_000;
    // A bounded random walk in 50..150 bpm, as a wrist HR sensor reports.
    let mut hr = 70i64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let samples: Vec<(i64, f64)> = (0..points)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            hr = (hr + (seed % 5) as i64 - 2).clamp(50, 150);
            (start + i * minute, hr as f64)
        })
        .collect();
    for chunk in samples.chunks(5_000) {
        store.write(&batch(&k, chunk)).unwrap();
    }
    store.flush().unwrap();
    store.compact().unwrap();
    let stats = store.stats();
    let bytes_per_point = stats.segment_bytes as f64 / points as f64;
    assert!(bytes_per_point <= 1.5, "{bytes_per_point:.3} bytes/point");
    let mut q = query("alice", "heart_rate");
    q.from = Timestamp::from_nanos(start);
    let hourly =
        store.aggregate(&q, Span::from_nanos(60 * minute), &[Aggregate::Count, Aggregate::Mean]).unwrap();
    assert_eq!(hourly.iter().map(|b| b.count).sum::<u64>(), points as u64);
}

#[test]
fn twins_put_together_share_one_fsync_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        let before = store.stats().fsyncs_total;
        let records: Vec<TwinRecord> = (0..50).map(|i| twin(&format!("t{i:02}"))).collect();
        store.put_twins(&records).unwrap();
        assert_eq!(store.stats().fsyncs_total - before, 1);
        store.put_twins(&[]).unwrap();
        assert_eq!(store.stats().fsyncs_total - before, 1, "nothing to write, nothing to sync");
    }
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.twin_count(), 50);
    assert!(store.twin(&TwinId::new("t49").unwrap()).is_some());
}

/// The segment files of a store, sorted by id.
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Two flushed segments, one series each: alice's heart rate, then bob's.
fn two_segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let store = Store::open(config(dir)).unwrap();
    store.write(&batch(&key("alice", "heart_rate", None), &[(1, 60.0)])).unwrap();
    store.flush().unwrap();
    store.write(&batch(&key("bob", "heart_rate", None), &[(2, 70.0)])).unwrap();
    store.flush().unwrap();
    drop(store);
    segment_files(dir)
}

#[test]
fn a_segment_with_a_damaged_index_page_is_set_aside_at_open_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let segments = two_segments(dir.path());
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    // The footer's first field is where the directory starts; the index
    // page ends just before it (its last 4 bytes are its seal).
    let footer_at = bytes.len() - 36;
    let directory_at = u64::from_le_bytes(bytes[footer_at..footer_at + 8].try_into().unwrap()) as usize;
    bytes[directory_at - 6] ^= 0x01;
    std::fs::write(&segments[0], &bytes).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let discarded = &store.recovery_report().segments_discarded;
    assert_eq!(discarded.len(), 1, "{discarded:?}");
    assert_eq!(discarded[0].file, segments[0]);
    assert!(discarded[0].reason.contains("index page"), "{}", discarded[0].reason);
    assert!(discarded[0].moved_to.exists());
    assert!(pairs(&store, &key("alice", "heart_rate", None)).is_empty());
    assert_eq!(pairs(&store, &key("bob", "heart_rate", None)), vec![(2, 70.0)]);
    assert_eq!(store.stats().series, 1);
}

#[test]
fn a_segment_of_an_older_format_stops_the_open_with_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let segments = two_segments(dir.path());
    let mut bytes = std::fs::read(&segments[1]).unwrap();
    let footer_at = bytes.len() - 36;
    bytes[footer_at + 20..footer_at + 24].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[footer_at..footer_at + 24]);
    bytes[footer_at + 24..footer_at + 28].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segments[1], &bytes).unwrap();
    let err = Store::open(config(dir.path())).err().expect("an old segment must stop the open");
    let message = err.to_string();
    assert!(matches!(err, doppel_store::StoreError::UnsupportedSegmentVersion { found: 1, .. }), "{message}");
    assert!(message.contains(&segments[1].display().to_string()), "{message}");
    assert!(segments[1].exists(), "the old segment must be left in place");
}
