//! Injected faults at every write, fsync and file creation of the audit
//! log: a failed append is cut off the file and retried, with records
//! refused meanwhile and the refusal named in `problem()`; a failed fsync
//! stops the log until it is reopened; nothing panics, and the chain on
//! disk always verifies, holding every record written before the fault.

use std::path::Path;
use std::time::Duration;

use doppel_audit::{AuditAction, AuditLog, AuditOptions, Entry, Outcome, verify};
use doppel_fs::Op;
use doppel_fs::failpoint::{Fault, Trigger, arm};
use doppel_model::Timestamp;

/// The syncer never runs on its own during a test; `sync` writes.
fn manual(max_file_bytes: u64) -> AuditOptions {
    AuditOptions { max_file_bytes, sync_interval: Duration::from_secs(3600) }
}

fn entry(n: u64) -> Entry {
    Entry {
        time: Timestamp::from_secs(1_700_000_000 + i64::try_from(n).unwrap()),
        principal: "user alice (token abcdefgh2345)".to_owned(),
        action: AuditAction::Write,
        twin: None,
        incarnation: None,
        target: "POST /api/v1/points".to_owned(),
        detail: format!("record {n}"),
        outcome: Outcome::Status(200),
    }
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

#[test]
fn a_failed_append_is_cut_off_refuses_records_meanwhile_and_is_retried() {
    for fault in [Fault::Eio, Fault::Enospc, Fault::ShortWrite] {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None, manual(1 << 20)).unwrap();
        log.append(&entry(1)).unwrap();
        log.sync().unwrap();
        let written = log_bytes(dir.path());
        log.append(&entry(2)).unwrap();
        let armed = arm(dir.path(), Op::Write, fault, Trigger::Always);
        let error = log.sync().unwrap_err();
        assert!(error.to_string().contains("write"), "{fault:?}: {error}");
        assert_eq!(log_bytes(dir.path()), written, "{fault:?}: no torn record is left");
        assert!(log.check_writable().is_err(), "{fault:?}: audited work is refused");
        assert!(log.append(&entry(3)).is_err());
        let problem = log.problem().unwrap();
        assert!(problem.contains("cannot write its records"), "{problem}");
        armed.clear();
        log.sync().unwrap();
        assert_eq!(log.problem(), None, "{fault:?}");
        assert_eq!(log.append(&entry(3)).unwrap(), 3);
        log.close().unwrap();
        let verified = verify(dir.path(), None).unwrap();
        assert_eq!(verified.records, 3, "{fault:?}: every accepted record is there, in order");
    }
}

#[test]
fn a_failed_fsync_stops_the_log_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, manual(1 << 20)).unwrap();
    log.append(&entry(1)).unwrap();
    log.sync().unwrap();
    log.append(&entry(2)).unwrap();
    let armed = arm(dir.path(), Op::Sync, Fault::Eio, Trigger::Nth(1));
    let error = log.sync().unwrap_err();
    assert!(error.to_string().contains("fsync"), "{error}");
    drop(armed);
    assert!(log.sync().is_err(), "a failed fsync is never retried");
    assert!(log.append(&entry(3)).is_err());
    assert!(log.problem().unwrap().contains("stopped recording"));
    assert!(log.close().is_err(), "close reports the failure");
    drop(log);
    let log = AuditLog::open(dir.path(), None, manual(1 << 20)).unwrap();
    let next = log.append(&entry(3)).unwrap();
    assert!(next >= 2, "record 1 was durable: {next}");
    log.close().unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, next);
}

#[test]
fn a_failed_roll_to_a_new_file_stops_the_log_and_the_chain_still_verifies() {
    for op in [Op::Open, Op::Sync, Op::SyncDir] {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None, manual(300)).unwrap();
        log.append(&entry(1)).unwrap();
        log.append(&entry(2)).unwrap();
        log.sync().unwrap();
        let armed = arm(dir.path(), op, Fault::Eio, Trigger::Always);
        for n in 3..6 {
            log.append(&entry(n)).unwrap();
        }
        assert!(log.sync().is_err(), "{op:?}");
        drop(armed);
        assert!(log.check_writable().is_err(), "{op:?}");
        drop(log);
        let log = AuditLog::open(dir.path(), None, manual(300)).unwrap();
        let next = log.append(&entry(9)).unwrap();
        log.close().unwrap();
        assert_eq!(verify(dir.path(), None).unwrap().records, next, "{op:?}");
        assert!(next >= 3, "{op:?}: the records synced before are kept");
    }
}
