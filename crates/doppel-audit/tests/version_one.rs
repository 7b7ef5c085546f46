//! Logs written before records carried their twin's incarnation (record
//! format version 1) still verify, read back, take new records after them,
//! and answer incarnation queries by time.

use std::path::Path;

use doppel_audit::{AuditAction, AuditLog, AuditOptions, ChainHash, Entry, Outcome, Query, verify};
use doppel_model::{Timestamp, TwinId};

fn text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&u16::try_from(text.len()).unwrap().to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The canonical bytes of a version 1 record: a read of `twin` at `secs`.
fn version_one_body(seq: u64, secs: i64, twin: &str) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&Timestamp::from_secs(secs).as_nanos().to_le_bytes());
    out.push(AuditAction::Read.code());
    out.push(0);
    out.extend_from_slice(&200u16.to_le_bytes());
    text(&mut out, "user alice (token abcdefgh2345)");
    out.push(1);
    text(&mut out, twin);
    text(&mut out, "GET /api/v1/twins/{id}");
    text(&mut out, "");
    out
}

/// A plain log file of version 1 records at 100 s and 200 s, as an older
/// Doppel wrote it.
fn write_version_one_log(dir: &Path) {
    let mut file = b"DPLAUD01".to_vec();
    file.push(0);
    file.extend_from_slice(&1u64.to_le_bytes());
    let mut hash = ChainHash::genesis();
    file.extend_from_slice(hash.as_bytes());
    for (seq, secs) in [(1, 100), (2, 200)] {
        let body = version_one_body(seq, secs, "del-1");
        hash = hash.link(&body);
        file.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        file.extend_from_slice(&body);
        file.extend_from_slice(hash.as_bytes());
    }
    std::fs::write(dir.join(format!("{:020}.audit", 1)), file).unwrap();
}

#[test]
fn a_version_one_log_verifies_reads_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    write_version_one_log(dir.path());
    assert_eq!(verify(dir.path(), None).unwrap().records, 2);

    let log = AuditLog::open(dir.path(), None, AuditOptions::default()).unwrap();
    let twin = TwinId::new("del-1").unwrap();
    let page = log.query(&Query { twin: Some(twin.clone()), limit: 10, ..Query::default() }).unwrap();
    assert_eq!(page.records.len(), 2);
    assert!(page.records.iter().all(|record| record.entry.incarnation.is_none()));

    let created = Timestamp::from_secs(150);
    let entry = Entry {
        time: Timestamp::from_secs(300),
        principal: "user bob (token bbbbbbbb2345)".to_owned(),
        action: AuditAction::Write,
        twin: Some(twin.clone()),
        incarnation: Some(created),
        target: "POST /api/v2/write".to_owned(),
        detail: String::new(),
        outcome: Outcome::Status(204),
    };
    assert_eq!(log.append(&entry).unwrap(), 3);
    // The twin created at 150 s owns the old record from after its
    // creation and its own new one, not the one from before.
    let mine = Query { twin: Some(twin), incarnation: Some(created), limit: 10, ..Query::default() };
    let seqs: Vec<u64> = log.query(&mine).unwrap().records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [2, 3]);
    log.close().unwrap();
    assert_eq!(verify(dir.path(), None).unwrap().records, 3);
}
