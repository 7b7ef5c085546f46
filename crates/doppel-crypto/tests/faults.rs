//! Injected faults at every write, fsync, rename and removal of the
//! keyring: the operation fails with an error naming the call and the
//! file, the shard on disk stays as it was, memory agrees with it, and
//! the same operation succeeds once the fault clears.

use std::path::Path;

use doppel_crypto::{CryptoError, Keyring, MasterKey};
use doppel_fs::Op;
use doppel_fs::failpoint::{Fault, Trigger, arm};

fn master_copy(master: &MasterKey) -> MasterKey {
    MasterKey::from_base64("test", master.to_base64().as_bytes()).unwrap()
}

fn shard_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Every (call, fault) a shard rewrite makes; the rename and the directory
/// fsync come after the temporary file is complete.
const CASES: [(Op, Fault); 6] = [
    (Op::Open, Fault::Eio),
    (Op::Write, Fault::Enospc),
    (Op::Write, Fault::ShortWrite),
    (Op::Sync, Fault::Eio),
    (Op::Rename, Fault::Eio),
    (Op::SyncDir, Fault::Eio),
];

#[test]
fn a_first_key_creation_that_cannot_start_the_key_log_fails_cleanly_and_can_be_retried() {
    for (op, fault) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        let armed = arm(dir.path(), op, fault, Trigger::Always);
        let error = keyring.create_many(&[20, 276]).unwrap_err();
        assert!(armed.fired() >= 1, "{op:?}");
        let CryptoError::Io { op: failed, .. } = &error else { panic!("{op:?}: {error}") };
        assert_eq!(*failed, op.as_str(), "{error}");
        assert!(keyring.get(20).is_none() && keyring.get(276).is_none(), "{op:?}: no key is half made");
        armed.clear();
        let keys = keyring.create_many(&[20, 276]).unwrap();
        drop(keyring);
        let reopened = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        let sealed = keys[0].seal(b"aad", b"secret").unwrap();
        assert_eq!(reopened.get(20).unwrap().open(b"aad", &sealed).unwrap(), b"secret", "{op:?}");
        assert!(reopened.get(276).is_some(), "{op:?}");
    }
}

#[test]
fn a_key_creation_whose_log_append_fails_is_cut_off_and_can_be_retried() {
    for fault in [Fault::Enospc, Fault::ShortWrite] {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        keyring.create(20).unwrap();
        let before = shard_bytes(dir.path());
        let armed = arm(dir.path(), Op::Write, fault, Trigger::Always);
        assert!(keyring.create_many(&[276, 532]).is_err(), "{fault:?}");
        armed.clear();
        assert!(keyring.get(276).is_none(), "{fault:?}: no key is half made");
        assert_eq!(shard_bytes(dir.path()), before, "{fault:?}: the torn record is cut off");
        keyring.create_many(&[276, 532]).unwrap();
        drop(keyring);
        let reopened = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        assert_eq!((reopened.len(), reopened.torn_log_at()), (3, None), "{fault:?}");
    }
}

#[test]
fn after_a_failed_key_log_fsync_no_key_is_created_until_the_keyring_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
    let first = keyring.create(20).unwrap();
    let armed = arm(dir.path(), Op::Sync, Fault::Eio, Trigger::Nth(1));
    assert!(keyring.create(276).is_err());
    drop(armed);
    assert!(keyring.get(276).is_none(), "a key whose record may be lost is never handed out");
    assert!(keyring.create(532).is_err(), "the log is stopped after a failed fsync");
    drop(keyring);
    let reopened = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
    let sealed = first.seal(b"aad", b"secret").unwrap();
    assert_eq!(reopened.get(20).unwrap().open(b"aad", &sealed).unwrap(), b"secret");
    reopened.create(788).unwrap();
}

#[test]
fn a_key_destruction_that_cannot_be_stored_keeps_the_key_and_can_be_retried() {
    for (op, fault) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        let key = keyring.create(20).unwrap();
        keyring.create(276).unwrap();
        let sealed = key.seal(b"aad", b"secret").unwrap();
        let armed = arm(dir.path(), op, fault, Trigger::Always);
        let error = keyring.destroy(20).unwrap_err();
        assert!(matches!(error, CryptoError::Io { .. }), "{op:?}: {error}");
        armed.clear();
        if !matches!(op, Op::SyncDir) {
            // Memory agrees with the shard on disk, which still holds it.
            assert_eq!(keyring.get(20).unwrap().open(b"aad", &sealed).unwrap(), b"secret", "{op:?}");
        }
        assert!(keyring.destroy(20).unwrap() || matches!(op, Op::SyncDir), "{op:?}");
        drop(keyring);
        let reopened = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
        assert!(reopened.get(20).is_none(), "{op:?}: destroyed for good once stored");
        assert!(reopened.get(276).is_some());
    }
}

#[test]
fn removing_the_last_key_of_a_shard_fails_cleanly_when_the_file_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    let keyring = Keyring::open(dir.path(), master_copy(&master), Vec::new()).unwrap();
    keyring.create(20).unwrap();
    let armed = arm(dir.path(), Op::Remove, Fault::Eio, Trigger::Always);
    let error = keyring.destroy(20).unwrap_err();
    assert!(error.to_string().contains("remove"), "{error}");
    assert!(keyring.get(20).is_some());
    armed.clear();
    assert!(keyring.destroy(20).unwrap());
    drop(keyring);
    assert!(Keyring::open(dir.path(), master, Vec::new()).unwrap().get(20).is_none());
}
