//! Append-only logs of framed, checksummed records, for state that changes
//! a little at a time (auth changes, new keys, catalog changes): each
//! change costs one appended record and one fsync, never a rewrite of
//! everything before it.
//!
//! A log file is a header the owner chooses (magic, generation), then
//! records:
//!
//! ```text
//! [u32 LE payload length][u32 LE crc32 of the payload][payload]
//! ```
//!
//! The payload is the owner's business (sealed or not). A crash during an
//! append leaves a torn last record, which [`read`] tells apart from a
//! damaged one in the middle: only the last record can be torn, because
//! nothing is appended after a failed append until it is cut off.

use std::io;
use std::path::{Path, PathBuf};

use crate::{Error, File, Op};

/// Bytes before each record's payload: length and checksum.
pub const FRAME_BYTES: usize = 8;

/// A record read back: where it starts in the file, and its payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the record's frame in the file.
    pub offset: u64,
    /// What was appended.
    pub payload: &'a [u8],
}

/// What [`read`] found after the header.
#[derive(Debug, PartialEq, Eq)]
pub struct Records<'a> {
    /// Every whole record, in order.
    pub records: Vec<Record<'a>>,
    /// Where the whole records end: the file's length, unless its end is
    /// torn.
    pub end: u64,
    /// The offset of a torn last record (a crash during its append), which
    /// the owner cuts off and reports.
    pub torn_at: Option<u64>,
}

/// A record in the middle of a log that does not verify: the log is
/// damaged, not torn, and the owner must refuse it rather than guess.
#[derive(Debug, PartialEq, Eq)]
pub struct Damaged {
    /// Offset of the record's frame in the file.
    pub offset: u64,
}

/// Splits `bytes` (a whole log file; its records start at `start`) into
/// records. A record that does not verify and reaches the end of the file
/// is torn; one followed by more bytes is damage.
pub fn read(bytes: &[u8], start: usize) -> Result<Records<'_>, Damaged> {
    let mut records = Vec::new();
    let mut at = start;
    while at < bytes.len() {
        let frame = &bytes[at..];
        let torn = Records { records: Vec::new(), end: at as u64, torn_at: Some(at as u64) };
        if frame.len() < FRAME_BYTES {
            return Ok(Records { records, ..torn });
        }
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let Some(payload) = frame.get(FRAME_BYTES..FRAME_BYTES + len) else {
            return Ok(Records { records, ..torn });
        };
        if crc32fast::hash(payload) != crc {
            if at + FRAME_BYTES + len == bytes.len() {
                return Ok(Records { records, ..torn });
            }
            return Err(Damaged { offset: at as u64 });
        }
        records.push(Record { offset: at as u64, payload });
        at += FRAME_BYTES + len;
    }
    Ok(Records { records, end: at as u64, torn_at: None })
}

/// Writes a new log holding only `header` in place of `path`, atomically
/// (see [`crate::write_atomic`]), and opens it for appending: how a log
/// starts, and how it is emptied once folded into a snapshot.
pub fn create(path: &Path, options: &std::fs::OpenOptions, header: &[u8]) -> Result<Appender, Error> {
    let tmp = tmp_path(path);
    crate::write_atomic(path, &tmp, options, header)?;
    Appender::open(path, header.len() as u64)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The appending end of a log. After a failed fsync it refuses every
/// append: the kernel may have dropped pages it could not write, so what
/// the log holds can no longer be vouched for until it is read again.
#[derive(Debug)]
pub struct Appender {
    file: File,
    len: u64,
    sync_failed: bool,
}

impl Appender {
    /// Opens the existing log `path` for appending after its first `end`
    /// bytes, cutting off (durably) whatever follows them: a torn record.
    pub fn open(path: &Path, end: u64) -> Result<Appender, Error> {
        let failed = |op: Op| {
            let path = path.to_path_buf();
            move |source| Error { op, path, source }
        };
        let file =
            File::open_with(std::fs::OpenOptions::new().append(true), path).map_err(failed(Op::Open))?;
        if file.len().map_err(failed(Op::Open))? != end {
            file.set_len(end).map_err(failed(Op::Truncate))?;
            file.sync_data().map_err(failed(Op::Sync))?;
        }
        Ok(Appender { file, len: end, sync_failed: false })
    }

    /// True after a failed fsync: every append is refused, and the owner
    /// must write what it holds elsewhere (a new snapshot) to go on.
    pub fn is_stopped(&self) -> bool {
        self.sync_failed
    }

    /// The log's size in bytes, header included.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Appends one record and fsyncs it: durable when this returns. A
    /// failed write is cut off the file, so the next append may succeed;
    /// a failed fsync stops the log for good.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), Error> {
        let failed = |op: Op, source: io::Error| Error { op, path: self.file.path().to_path_buf(), source };
        if self.sync_failed {
            let stopped = io::Error::other("an earlier fsync of this log failed; restart to read it again");
            return Err(failed(Op::Sync, stopped));
        }
        let len = u32::try_from(payload.len())
            .map_err(|_| failed(Op::Write, io::Error::other("a log record may hold at most 4 GiB")))?;
        let mut frame = Vec::with_capacity(FRAME_BYTES + payload.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        if let Err(source) = self.file.write_all(&frame) {
            if let Err(cut) = self.file.set_len(self.len) {
                // The torn record stays at the end, where reading the log
                // again finds it torn and cuts it; nothing follows it,
                // because every later append fails the same way.
                self.sync_failed = true;
                return Err(failed(Op::Truncate, cut));
            }
            return Err(failed(Op::Write, source));
        }
        if let Err(source) = self.file.sync_data() {
            self.sync_failed = true;
            return Err(failed(Op::Sync, source));
        }
        self.len += frame.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> std::fs::OpenOptions {
        crate::replace_options()
    }

    #[test]
    fn appended_records_read_back_in_order_after_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = create(&path, &options(), b"HEAD").unwrap();
        log.append(b"one").unwrap();
        log.append(b"").unwrap();
        log.append(b"three").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let read = read(&bytes, 4).unwrap();
        let payloads: Vec<&[u8]> = read.records.iter().map(|r| r.payload).collect();
        assert_eq!(payloads, [b"one".as_slice(), b"", b"three"]);
        assert_eq!(read.records[1].offset, 4 + 8 + 3);
        assert_eq!((read.end, read.torn_at), (bytes.len() as u64, None));
        assert_eq!(log.bytes(), bytes.len() as u64);
    }

    #[test]
    fn a_torn_last_record_is_found_and_cut_but_damage_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = create(&path, &options(), b"H").unwrap();
        log.append(b"kept").unwrap();
        log.append(b"torn record").unwrap();
        let whole = std::fs::read(&path).unwrap();
        let kept_end = 1 + 8 + 4;
        for cut in [whole.len() - 1, kept_end + 3, kept_end + 9] {
            let read = read(&whole[..cut], 1).unwrap();
            assert_eq!(read.records.len(), 1, "cut at {cut}");
            assert_eq!((read.end, read.torn_at), (kept_end as u64, Some(kept_end as u64)));
        }
        let mut flipped = whole.clone();
        flipped[1 + 8] ^= 1;
        assert_eq!(read(&flipped, 1), Err(Damaged { offset: 1 }));
        drop(log);
        std::fs::write(&path, &whole[..whole.len() - 2]).unwrap();
        let mut log = Appender::open(&path, kept_end as u64).unwrap();
        log.append(b"after").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let read = read(&bytes, 1).unwrap();
        assert_eq!(
            read.records.iter().map(|r| r.payload).collect::<Vec<_>>(),
            [b"kept".as_slice(), b"after"]
        );
    }
}
