//! The log's promises on disk: records survive a restart, a crash's torn
//! end is cut off, and every kind of tampering fails verification naming
//! the file and the record where the chain breaks.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use doppel_audit::{
    AuditAction, AuditError, AuditLog, AuditOptions, ChainHash, Entry, Outcome, Query, verify,
};
use doppel_crypto::DataKey;
use doppel_model::{Timestamp, TwinId};

/// Small files, so that a few dozen records span several.
fn small_files() -> AuditOptions {
    AuditOptions { max_file_bytes: 1024, sync_interval: Duration::from_millis(50) }
}

fn entry(n: u64) -> Entry {
    Entry {
        time: Timestamp::from_secs(1_700_000_000 + i64::try_from(n).unwrap()),
        principal: format!("user user{} (token abcdefgh2345)", n % 3),
        action: if n.is_multiple_of(2) { AuditAction::Read } else { AuditAction::Write },
        twin: Some(TwinId::new(&format!("twin-{}", n % 4)).unwrap()),
        incarnation: None,
        target: "GET /api/v1/twins/{id}/signals/{signal}".to_owned(),
        detail: "heart_rate".to_owned(),
        outcome: Outcome::Status(200),
    }
}

/// A closed log of `count` records in `dir`, with `key` if given.
fn write_log(dir: &Path, count: u64, key: Option<DataKey>) {
    let log = AuditLog::open(dir, key, small_files()).unwrap();
    for n in 1..=count {
        assert_eq!(log.append(&entry(n)).unwrap(), n);
    }
    log.close().unwrap();
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

/// The frame offsets of a plaintext-or-sealed file: header, then
/// `u32 length ‖ body ‖ 32-byte hash` each.
fn frame_offsets(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).unwrap();
    let mut offsets = Vec::new();
    let mut at = 49usize;
    while at < bytes.len() {
        offsets.push(at as u64);
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + length + 32;
    }
    offsets
}

/// The first record of a file, from its name.
fn first_seq(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

fn broken(dir: &Path) -> (PathBuf, u64, String) {
    match verify(dir, None) {
        Err(AuditError::Broken { file, record, reason, .. }) => (file, record, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn records_survive_a_restart_and_the_chain_continues_across_files() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, None);
    assert!(files(dir.path()).len() >= 3, "small files should roll: {:?}", files(dir.path()));
    let log = AuditLog::open(dir.path(), None, small_files()).unwrap();
    assert_eq!(log.recovery().records, 30);
    assert!(log.recovery().truncated.is_empty());
    assert_eq!(log.append(&entry(31)).unwrap(), 31);
    let head_before_close =
        log.query(&Query { after: 30, limit: 1, ..Query::default() }).unwrap().records[0].hash;
    log.close().unwrap();
    let verified = verify(dir.path(), None).unwrap();
    assert_eq!(verified.records, 31);
    assert_eq!(verified.files, files(dir.path()).len());
    assert_eq!(verified.head, head_before_close);
    assert_eq!(verified.unopened, 0);
}

#[test]
fn an_empty_log_verifies_with_the_genesis_head() {
    let dir = tempfile::tempdir().unwrap();
    AuditLog::open(dir.path(), None, small_files()).unwrap().close().unwrap();
    let verified = verify(dir.path(), None).unwrap();
    assert_eq!((verified.records, verified.files), (0, 1));
    assert_eq!(verified.head, ChainHash::genesis());
}

#[test]
fn queries_filter_by_twin_and_time_and_page_by_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, small_files()).unwrap();
    for n in 1..=40 {
        log.append(&entry(n)).unwrap();
    }
    // Unsynced records are visible too.
    let twin = TwinId::new("twin-1").unwrap();
    let first = log.query(&Query { twin: Some(twin.clone()), limit: 4, ..Query::default() }).unwrap();
    let seqs: Vec<u64> = first.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 5, 9, 13]);
    assert_eq!(first.next, Some(13));
    let rest = log.query(&Query { twin: Some(twin), after: 13, limit: 100, ..Query::default() }).unwrap();
    let seqs: Vec<u64> = rest.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [17, 21, 25, 29, 33, 37]);
    assert_eq!(rest.next, None);
    let window = Query {
        from: Some(Timestamp::from_secs(1_700_000_010)),
        to: Some(Timestamp::from_secs(1_700_000_013)),
        limit: 100,
        ..Query::default()
    };
    let seqs: Vec<u64> = log.query(&window).unwrap().records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [10, 11, 12]);
    assert_eq!(log.query(&Query { limit: 1, ..Query::default() }).unwrap().records[0].entry, entry(1));
}

#[test]
fn records_become_durable_within_the_sync_interval_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, small_files()).unwrap();
    log.append(&entry(1)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if verify(dir.path(), None).unwrap().records == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the record never reached the file");
        std::thread::sleep(Duration::from_millis(10));
    }
    log.close().unwrap();
}

#[test]
fn a_torn_tail_is_reported_by_verify_and_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, None);
    let newest = files(dir.path()).pop().unwrap();
    let good_length = fs::metadata(&newest).unwrap().len();
    // A crash in the middle of writing record 6: its length and part of it.
    let mut torn = fs::read(&newest).unwrap();
    let last = *frame_offsets(&newest).last().unwrap() as usize;
    let partial = torn[last..last + 20].to_vec();
    torn.extend_from_slice(&partial);
    fs::write(&newest, &torn).unwrap();

    let verified = verify(dir.path(), None).unwrap();
    assert_eq!(verified.records, 5);
    let tail = verified.torn_tail.unwrap();
    assert_eq!((tail.file.clone(), tail.offset, tail.bytes), (newest.clone(), good_length, 20));

    let log = AuditLog::open(dir.path(), None, small_files()).unwrap();
    assert_eq!(log.recovery().truncated, [tail]);
    assert_eq!(fs::metadata(&newest).unwrap().len(), good_length);
    assert_eq!(log.append(&entry(6)).unwrap(), 6);
    log.close().unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, 6);
}

#[test]
fn zeros_left_by_a_crash_and_a_file_without_its_header_count_as_torn() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3, None);
    let newest = files(dir.path()).pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&newest).unwrap();
    std::io::Write::write_all(&mut file, &[0u8; 300]).unwrap();
    drop(file);
    // A new file whose header never reached the disk.
    let unborn = dir.path().join("00000000000000000004.audit");
    fs::write(&unborn, b"DPLAU").unwrap();

    let log = AuditLog::open(dir.path(), None, small_files()).unwrap();
    assert_eq!(log.recovery().records, 3);
    let truncated: Vec<(PathBuf, u64, u64)> =
        log.recovery().truncated.iter().map(|t| (t.file.clone(), t.offset, t.bytes)).collect();
    let good_length = fs::metadata(&newest).unwrap().len();
    assert_eq!(truncated, [(unborn, 0, 5), (newest, good_length, 300)]);
    assert_eq!(log.append(&entry(4)).unwrap(), 4);
    log.close().unwrap();
    let verified = verify(dir.path(), None).unwrap();
    assert_eq!((verified.records, verified.torn_tail), (4, None));
}

#[test]
fn a_flipped_byte_in_a_record_is_caught_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, None);
    let target = files(dir.path())[1].clone();
    let offsets = frame_offsets(&target);
    let mut bytes = fs::read(&target).unwrap();
    // A byte inside the second record's body (its principal text).
    bytes[offsets[1] as usize + 4 + 30] ^= 0x01;
    fs::write(&target, bytes).unwrap();
    let (file, record, reason) = broken(dir.path());
    assert_eq!(file, target);
    assert_eq!(record, first_seq(&target) + 1);
    assert!(reason.contains("hash"), "{reason}");
    // A server refuses to start on a log tampered in its newest file too.
    let newest = files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&newest).unwrap();
    bytes[frame_offsets(&newest)[0] as usize + 10] ^= 0x80;
    fs::write(&newest, bytes).unwrap();
    assert!(matches!(
        AuditLog::open(dir.path(), None, small_files()),
        Err(AuditError::Broken { file, .. }) if file == newest
    ));
}

#[test]
fn a_deleted_record_is_caught_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, None);
    let target = files(dir.path())[1].clone();
    let offsets = frame_offsets(&target);
    let mut bytes = fs::read(&target).unwrap();
    bytes.drain(offsets[2] as usize..offsets[3] as usize);
    fs::write(&target, bytes).unwrap();
    let (file, record, _) = broken(dir.path());
    assert_eq!((file, record), (target.clone(), first_seq(&target) + 2));
}

#[test]
fn a_file_truncated_in_the_middle_of_the_log_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, None);
    let target = files(dir.path())[1].clone();
    let offsets = frame_offsets(&target);
    let file = OpenOptions::new().write(true).open(&target).unwrap();
    file.set_len(offsets[2] + 10).unwrap();
    let (file, record, reason) = broken(dir.path());
    assert_eq!((file, record), (target.clone(), first_seq(&target) + 2));
    assert!(reason.contains("truncated"), "{reason}");
    // Cut exactly at a record boundary, the next file no longer follows on.
    let file = OpenOptions::new().write(true).open(&target).unwrap();
    file.set_len(offsets[2]).unwrap();
    let (file, record, reason) = broken(dir.path());
    assert_eq!((file, record), (files(dir.path())[2].clone(), first_seq(&target) + 2));
    assert!(reason.contains("removed"), "{reason}");
}

#[test]
fn reordered_renamed_and_deleted_files_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, None);
    let all = files(dir.path());
    // Swap the contents of the first two files (as a rename would).
    let (a, b) = (fs::read(&all[0]).unwrap(), fs::read(&all[1]).unwrap());
    fs::write(&all[0], &b).unwrap();
    fs::write(&all[1], &a).unwrap();
    let (file, _, reason) = broken(dir.path());
    assert_eq!(file, all[0]);
    assert!(reason.contains("renamed"), "{reason}");
    fs::write(&all[0], &a).unwrap();
    fs::write(&all[1], &b).unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, 30);

    // A middle file removed: the next one does not follow on.
    fs::remove_file(&all[1]).unwrap();
    let (file, record, _) = broken(dir.path());
    assert_eq!((file, record), (all[2].clone(), first_seq(&all[1])));
    fs::write(&all[1], &b).unwrap();

    // The first file removed: the log no longer starts at record 1.
    fs::remove_file(&all[0]).unwrap();
    let (file, record, reason) = broken(dir.path());
    assert_eq!((file, record), (all[1].clone(), 1));
    assert!(reason.contains("start at record 1"), "{reason}");
}

#[test]
fn a_rewritten_header_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, None);
    let target = files(dir.path())[2].clone();
    let mut bytes = fs::read(&target).unwrap();
    bytes[20] ^= 0xff; // inside the previous hash
    fs::write(&target, bytes).unwrap();
    let (file, record, reason) = broken(dir.path());
    assert_eq!((file, record), (target.clone(), first_seq(&target)));
    assert!(reason.contains("previous hash"), "{reason}");
}

#[test]
fn sealed_records_keep_twins_and_people_out_of_the_files_and_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate().unwrap();
    write_log(dir.path(), 30, Some(key.clone()));
    for path in files(dir.path()) {
        let bytes = fs::read(&path).unwrap();
        for needle in ["twin-1", "user0", "heart_rate", "/api/v1"] {
            assert!(
                !bytes.windows(needle.len()).any(|window| window == needle.as_bytes()),
                "{needle} in plaintext in {}",
                path.display()
            );
        }
    }
    let with_key = verify(dir.path(), Some(&key)).unwrap();
    assert_eq!((with_key.records, with_key.unopened), (30, 0));
    let without_key = verify(dir.path(), None).unwrap();
    assert_eq!((without_key.records, without_key.unopened, without_key.head), (30, 30, with_key.head));

    let log = AuditLog::open(dir.path(), Some(key.clone()), small_files()).unwrap();
    assert!(log.is_sealed());
    let page = log.query(&Query { twin: Some(TwinId::new("twin-2").unwrap()), limit: 2, ..Query::default() });
    assert_eq!(
        page.unwrap().records.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(),
        [entry(2), entry(6)]
    );
    log.close().unwrap();

    // Another key cannot append to this log.
    let other = DataKey::generate().unwrap();
    assert!(matches!(
        AuditLog::open(dir.path(), Some(other.clone()), small_files()),
        Err(AuditError::WrongKey { record: 30, .. })
    ));
    assert!(matches!(verify(dir.path(), Some(&other)), Err(AuditError::Broken { record: 1, .. })));
}

#[test]
fn altered_ciphertext_breaks_the_chain_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30, Some(DataKey::generate().unwrap()));
    let target = files(dir.path())[0].clone();
    let offsets = frame_offsets(&target);
    let mut bytes = fs::read(&target).unwrap();
    bytes[offsets[3] as usize + 40] ^= 0x04;
    fs::write(&target, bytes).unwrap();
    let (file, record, _) = broken(dir.path());
    assert_eq!((file, record), (target, 4));
}

#[test]
fn turning_sealing_on_starts_a_sealed_file_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3, None);
    let key = DataKey::generate().unwrap();
    let log = AuditLog::open(dir.path(), Some(key.clone()), small_files()).unwrap();
    log.append(&entry(4)).unwrap();
    let all = log.query(&Query { limit: 10, ..Query::default() }).unwrap();
    assert_eq!(all.records.len(), 4);
    log.close().unwrap();
    assert_eq!(files(dir.path()).len(), 2);
    let verified = verify(dir.path(), Some(&key)).unwrap();
    assert_eq!((verified.records, verified.unopened), (4, 0));
    assert_eq!(verify(dir.path(), None).unwrap().unopened, 1);
}

#[test]
fn appends_after_close_and_overlong_fields_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), None, small_files()).unwrap();
    let mut long = entry(1);
    long.target = "x".repeat(doppel_audit::MAX_FIELD_BYTES + 1);
    assert!(matches!(log.append(&long), Err(AuditError::FieldTooLong { field: "target", .. })));
    log.close().unwrap();
    assert!(matches!(log.append(&entry(1)), Err(AuditError::Closed)));
    assert!(log.check_writable().is_err());
    assert!(matches!(
        AuditLog::open(dir.path(), None, AuditOptions { max_file_bytes: 10, ..small_files() }),
        Err(AuditError::InvalidOptions(_))
    ));
}
