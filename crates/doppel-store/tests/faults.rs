//! Injected faults at every write, fsync and rename of the store: no
//! acknowledged point is lost, nothing panics, the error says what
//! happened, a failed write is undone and writes resume once the fault
//! clears, and a failed fsync stops writes until the store is reopened.

mod common;

use std::path::Path;

use common::{batch, config, key, pairs};
use doppel_fs::Op;
use doppel_fs::failpoint::{Fault, Trigger, arm};
use doppel_model::{SeriesKey, Timestamp, TwinId};
use doppel_store::{Severity, Store, StoreError, TwinRecord};

const FAULTS: [Fault; 3] = [Fault::Eio, Fault::Enospc, Fault::ShortWrite];

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

fn twin(id: &str) -> TwinRecord {
    TwinRecord {
        id: TwinId::new(id).unwrap(),
        model: "person".into(),
        properties: serde_json::Map::new(),
        created: Timestamp::from_nanos(0),
    }
}

fn hr() -> SeriesKey {
    key("alice", "heart_rate", None)
}

/// Asserts the store stopped writes and says so in its problems.
fn assert_stopped(store: &Store, error: StoreError) {
    let StoreError::Stopped { cause } = &error else { panic!("expected a stopped store, got {error}") };
    assert!(cause.contains("fsync"), "{cause}");
    assert!(error.to_string().contains("restart"), "{error}");
    let problems = store.problems();
    assert!(
        problems.iter().any(|p| p.severity == Severity::Failing && p.detail.contains("writes are stopped")),
        "{problems:?}"
    );
    for later in [
        store.write(&batch(&hr(), &[(100, 1.0)])).err(),
        store.put_twin(&twin("bob")).err(),
        store.delete_twin(&TwinId::new("alice").unwrap()).err(),
        store.flush().err(),
        store.compact().err(),
    ] {
        assert!(matches!(later, Some(StoreError::Stopped { .. })), "{later:?}");
    }
    assert_eq!(problems.len(), store.problems().len(), "the stop is reported once");
}

#[test]
fn a_failed_wal_append_is_cut_off_and_writes_resume_once_the_fault_clears() {
    for fault in FAULTS {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        store.write(&batch(&hr(), &[(1, 60.0)])).unwrap();
        let acknowledged = wal_bytes(dir.path());
        let armed = arm(&dir.path().join("wal"), Op::Write, fault, Trigger::Always);
        let error = store.write(&batch(&hr(), &[(2, 61.0), (3, 62.0)])).unwrap_err();
        assert!(matches!(error, StoreError::WriteFailed { .. }), "{fault:?}: {error}");
        assert!(error.to_string().contains("nothing of this write was kept"), "{error}");
        assert_eq!(wal_bytes(dir.path()), acknowledged, "{fault:?}: no torn record is left");
        assert!(store.problems().is_empty());
        assert_eq!(armed.fired(), 1);
        armed.clear();
        store.write(&batch(&hr(), &[(4, 63.0)])).unwrap();
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (4, 63.0)]);
        drop(store);
        let store = Store::open(config(dir.path())).unwrap();
        assert!(store.recovery_report().wal_damage.is_empty(), "{fault:?}");
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (4, 63.0)]);
    }
}

#[test]
fn a_failed_wal_fsync_stops_writes_until_reopen_and_loses_nothing_acknowledged() {
    for fault in [Fault::Eio, Fault::Enospc] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        store.write(&batch(&hr(), &[(1, 60.0)])).unwrap();
        let armed = arm(&dir.path().join("wal"), Op::Sync, fault, Trigger::Nth(1));
        let error = store.write(&batch(&hr(), &[(2, 61.0)])).unwrap_err();
        assert_eq!(armed.fired(), 1);
        armed.clear();
        assert_stopped(&store, error);
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0)], "reads keep working");
        drop(store);
        let store = Store::open(config(dir.path())).unwrap();
        assert!(store.problems().is_empty());
        assert!(pairs(&store, &hr()).starts_with(&[(1, 60.0)]));
        store.write(&batch(&hr(), &[(5, 64.0)])).unwrap();
        assert_eq!(pairs(&store, &hr()).last(), Some(&(5, 64.0)));
    }
}

#[test]
fn a_failed_fsync_of_a_new_segment_stops_writes_and_the_wal_keeps_the_points() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    store.write(&batch(&hr(), &[(1, 60.0), (2, 61.0)])).unwrap();
    let armed = arm(&dir.path().join("segments"), Op::Sync, Fault::Eio, Trigger::Always);
    let error = store.flush().unwrap_err();
    armed.clear();
    assert_stopped(&store, error);
    assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0)]);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0)]);
    store.flush().unwrap();
    assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0)]);
}

#[test]
fn failed_fsyncs_of_the_catalog_and_of_directories_stop_writes() {
    let cases: [(&str, Op); 3] =
        [("catalog.bin.tmp", Op::Sync), ("wal", Op::SyncDir), ("segments", Op::SyncDir)];
    for (under, op) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        store.put_twin(&twin("alice")).unwrap();
        store.write(&batch(&hr(), &[(1, 60.0)])).unwrap();
        let armed = arm(&dir.path().join(under), op, Fault::Eio, Trigger::Always);
        let error = store.flush().unwrap_err();
        assert!(armed.fired() >= 1, "{under}: {error}");
        armed.clear();
        assert_stopped(&store, error);
        drop(store);
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0)], "{under}");
        assert!(store.twin(&TwinId::new("alice").unwrap()).is_some(), "{under}");
    }
}

#[test]
fn a_failed_catalog_log_append_fails_the_flush_a_failed_fsync_stops_writes_and_nothing_is_lost() {
    let cases: [(Op, Fault); 3] =
        [(Op::Write, Fault::Enospc), (Op::Write, Fault::ShortWrite), (Op::Sync, Fault::Eio)];
    for (op, fault) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        store.put_twin(&twin("alice")).unwrap();
        store.write(&batch(&hr(), &[(1, 60.0)])).unwrap();
        store.flush().unwrap();
        // The next flush appends bob's record to catalog.log.
        store.put_twin(&twin("bob")).unwrap();
        store.write(&batch(&hr(), &[(2, 61.0)])).unwrap();
        let armed = arm(&dir.path().join("catalog.log"), op, fault, Trigger::Always);
        let error = store.flush().unwrap_err();
        assert!(armed.fired() >= 1, "{op:?} {fault:?}: {error}");
        armed.clear();
        if op == Op::Sync {
            assert_stopped(&store, error);
        } else {
            assert!(error.to_string().contains("catalog.log"), "the error names the file: {error}");
            store.flush().unwrap();
        }
        drop(store);
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0)], "{op:?} {fault:?}");
        assert!(store.twin(&TwinId::new("bob").unwrap()).is_some(), "{op:?} {fault:?}");
    }
}

#[test]
fn failed_segment_writes_renames_and_removals_fail_the_flush_and_a_retry_succeeds() {
    let cases: [(&str, Op, Fault); 5] = [
        ("segments", Op::Open, Fault::Eio),
        ("segments", Op::Write, Fault::Enospc),
        ("segments", Op::Write, Fault::ShortWrite),
        ("segments", Op::Rename, Fault::Eio),
        ("wal", Op::Remove, Fault::Eio),
    ];
    for (under, op, fault) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        store.write(&batch(&hr(), &[(1, 60.0)])).unwrap();
        let armed = arm(&dir.path().join(under), op, fault, Trigger::Always);
        let error = store.flush().unwrap_err();
        assert!(matches!(error, StoreError::Io { .. }), "{op:?} {fault:?}: {error}");
        assert!(error.to_string().contains(under), "the error names the file: {error}");
        store.write(&batch(&hr(), &[(2, 61.0)])).unwrap();
        armed.clear();
        assert!(store.problems().is_empty());
        store.flush().unwrap();
        store.write(&batch(&hr(), &[(3, 62.0)])).unwrap();
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0), (3, 62.0)], "{op:?} {fault:?}");
        drop(store);
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0), (3, 62.0)], "{op:?} {fault:?}");
    }
}

#[test]
fn a_failed_wal_file_creation_at_roll_over_fails_the_write_and_a_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = config(dir.path());
    small.wal_segment_bytes = 64;
    let store = Store::open(small.clone()).unwrap();
    store.write(&batch(&hr(), &[(1, 60.0), (2, 61.0), (3, 62.0)])).unwrap();
    let armed = arm(&dir.path().join("wal"), Op::Open, Fault::Eio, Trigger::Always);
    let error = store.write(&batch(&hr(), &[(4, 63.0), (5, 64.0), (6, 65.0)])).unwrap_err();
    assert!(matches!(error, StoreError::Io { .. }), "{error}");
    armed.clear();
    store.write(&batch(&hr(), &[(7, 66.0), (8, 67.0), (9, 68.0)])).unwrap();
    drop(store);
    let store = Store::open(small).unwrap();
    assert_eq!(pairs(&store, &hr()), vec![(1, 60.0), (2, 61.0), (3, 62.0), (7, 66.0), (8, 67.0), (9, 68.0)]);
}

#[test]
fn a_failed_fsync_wakes_every_waiting_writer_with_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(config(dir.path())).unwrap());
    let armed = arm(&dir.path().join("wal"), Op::Sync, Fault::Eio, Trigger::Always);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || store.write(&batch(&hr(), &[(i, 1.0)])))
        })
        .collect();
    for writer in writers {
        let result = writer.join().unwrap();
        assert!(matches!(result, Err(StoreError::Stopped { .. })), "{result:?}");
    }
    drop(armed);
    assert!(store.problems().iter().any(|p| p.severity == Severity::Failing));
}

#[test]
fn a_fault_while_recovery_cuts_a_torn_tail_fails_the_open_and_a_later_open_recovers() {
    for op in [Op::Open, Op::Truncate, Op::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        store.write(&batch(&hr(), &[(1, 60.0)])).unwrap();
        drop(store);
        let mut wal: Vec<_> =
            std::fs::read_dir(dir.path().join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
        wal.sort();
        let newest = wal.iter().rev().find(|p| std::fs::metadata(p).unwrap().len() > 0).unwrap().clone();
        let mut bytes = std::fs::read(&newest).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1]);
        std::fs::write(&newest, &bytes).unwrap();
        let armed = arm(&dir.path().join("wal"), op, Fault::Eio, Trigger::Always);
        let error = Store::open(config(dir.path())).err().unwrap();
        assert!(armed.fired() >= 1, "{op:?}");
        assert!(error.to_string().contains(".wal"), "{op:?}: {error}");
        armed.clear();
        let store = Store::open(config(dir.path())).unwrap();
        assert_eq!(pairs(&store, &hr()), vec![(1, 60.0)], "{op:?}");
    }
}
