//! The files: names, headers, frames, and a walk over one file's frames
//! that checks the chain as it goes.
//!
//! A log is a directory of files named by the sequence number of their
//! first record, `<first seq, 20 digits>.audit`, so that name order is
//! chain order. Each file is
//!
//! ```text
//! header  "DPLAUD01" ‖ mode (u8: 0 plain, 1 sealed) ‖ first seq (u64 LE) ‖ previous hash (32)
//! frame*  body length (u32 LE) ‖ body ‖ chain hash (32)
//! ```
//!
//! The previous hash in the header is the chain hash of the record before
//! the file's first one (the genesis value for record 1), so the files
//! chain to each other as the records do. A body is the record's
//! canonical bytes, or those bytes sealed with the log's data key under
//! associated data naming the role and the record's number; the chain
//! hash covers the body as stored.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use doppel_crypto::{DataKey, SEAL_OVERHEAD};

use crate::AuditError;
use crate::chain::{ChainHash, HASH_BYTES};
use crate::record::{self, Entry, MAX_FIELD_BYTES};

/// First bytes of every audit file.
const MAGIC: &[u8; 8] = b"DPLAUD01";
/// Bytes of a file header.
pub(crate) const HEADER_BYTES: u64 = 8 + 1 + 8 + HASH_BYTES as u64;
/// Bytes a frame adds to its body: the length before, the hash after.
pub(crate) const FRAME_OVERHEAD: usize = 4 + HASH_BYTES;
/// Largest body a frame may declare: a record with every field at its
/// limit, sealed, with room to spare. A larger length is damage.
pub(crate) const MAX_BODY_BYTES: usize = 4 * MAX_FIELD_BYTES + 256 + SEAL_OVERHEAD;
/// Ending of audit file names.
const FILE_SUFFIX: &str = ".audit";
/// Digits of the sequence number in a file name.
const NAME_DIGITS: usize = 20;
/// Associated data of sealed bodies starts with this, then the record's
/// sequence number (u64 LE): a body moved to another place, or into
/// another kind of file, does not open.
const SEAL_ROLE: &[u8] = b"doppel audit\0";

/// Whether a file's bodies are sealed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Canonical bytes as they are (encryption at rest off).
    Plain,
    /// Canonical bytes sealed with the log's data key.
    Sealed,
}

/// A file's header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Header {
    pub(crate) mode: Mode,
    pub(crate) first_seq: u64,
    pub(crate) previous: ChainHash,
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES as usize);
        out.extend_from_slice(MAGIC);
        out.push(match self.mode {
            Mode::Plain => 0,
            Mode::Sealed => 1,
        });
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(self.previous.as_bytes());
        out
    }

    fn decode(bytes: &[u8; HEADER_BYTES as usize]) -> Result<Header, String> {
        if &bytes[..8] != MAGIC {
            return Err("the file does not start with the audit magic DPLAUD01".to_owned());
        }
        let mode = match bytes[8] {
            0 => Mode::Plain,
            1 => Mode::Sealed,
            other => return Err(format!("unknown mode {other} in the header")),
        };
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[9..17]);
        let mut previous = [0u8; HASH_BYTES];
        previous.copy_from_slice(&bytes[17..]);
        Ok(Header { mode, first_seq: u64::from_le_bytes(seq), previous: ChainHash::from_bytes(previous) })
    }
}

/// The name of the file whose first record is `first_seq`.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}{FILE_SUFFIX}")
}

/// The audit files of `dir` in chain order, each with the first sequence
/// number its name claims. Other files are not the log's and are left
/// alone; a directory that does not exist holds no files.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(AuditError::io("list", dir)(error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(AuditError::io("list", dir))?;
        let name = entry.file_name();
        let Some(seq) = name.to_str().and_then(parse_file_name) else {
            continue;
        };
        files.push((seq, entry.path()));
    }
    files.sort_by_key(|(seq, _)| *seq);
    Ok(files)
}

fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Appends the frame of `body` with its chain hash to `out`.
pub(crate) fn put_frame(out: &mut Vec<u8>, body: &[u8], hash: &ChainHash) {
    // Bodies are bounded by MAX_BODY_BYTES, far below u32::MAX.
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(hash.as_bytes());
}

/// Associated data of record `seq`'s sealed body.
pub(crate) fn seal_aad(seq: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_ROLE.len() + 8);
    aad.extend_from_slice(SEAL_ROLE);
    aad.extend_from_slice(&seq.to_le_bytes());
    aad
}

/// Why a body did not yield its record.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// A sealed body that does not open with the key given.
    Key,
    /// Bytes that are not record `seq`'s canonical form.
    Record(String),
}

impl BodyError {
    /// The reason, for a [`AuditError::Broken`].
    pub(crate) fn reason(self) -> String {
        match self {
            BodyError::Key => {
                "the sealed record does not open with the data key (another key, or altered and re-chained)"
                    .to_owned()
            }
            BodyError::Record(reason) => reason,
        }
    }
}

/// The entry a body holds, checked to be record `seq`. `None` for a sealed
/// body when no key is given: its chain can be checked, not its contents.
pub(crate) fn open_body(
    mode: Mode,
    key: Option<&DataKey>,
    seq: u64,
    body: &[u8],
) -> Result<Option<Entry>, BodyError> {
    let opened;
    let plain = match (mode, key) {
        (Mode::Plain, _) => body,
        (Mode::Sealed, None) => return Ok(None),
        (Mode::Sealed, Some(key)) => {
            opened = key.open(&seal_aad(seq), body).map_err(|_| BodyError::Key)?;
            &opened
        }
    };
    let (stored_seq, entry) = record::decode(plain).map_err(BodyError::Record)?;
    if stored_seq != seq {
        return Err(BodyError::Record(format!("the record says it is number {stored_seq}")));
    }
    Ok(Some(entry))
}

/// One frame read from a file, its hash already checked against the chain.
pub(crate) struct Frame {
    pub(crate) seq: u64,
    pub(crate) offset: u64,
    pub(crate) body: Vec<u8>,
    pub(crate) hash: ChainHash,
}

impl Frame {
    /// The chain holds at this frame of `file`, but its record does not.
    pub(crate) fn broken(&self, file: &Path, error: BodyError) -> AuditError {
        AuditError::Broken {
            file: file.to_path_buf(),
            record: self.seq,
            offset: self.offset,
            reason: error.reason(),
        }
    }
}

/// What comes next in a file.
pub(crate) enum Step {
    /// A frame whose hash continues the chain.
    Frame(Frame),
    /// The file ends after the last frame.
    End,
    /// The file ends in something that is not a whole frame: a frame cut
    /// short, or zero bytes to the end. A crash mid-write leaves this;
    /// only the newest file may end so.
    Torn {
        /// Where the good part ends.
        offset: u64,
        /// Bytes after it.
        bytes: u64,
    },
}

/// A file opened for walking.
pub(crate) enum Opened {
    /// Its header, and a walk over its frames.
    Walk(Header, FileWalk),
    /// The file is shorter than a header: created by a crash that came
    /// before its header was written.
    TornHeader {
        /// Its length.
        bytes: u64,
    },
}

/// Reads one file's frames in order, checking that each hash continues the
/// chain from the header's previous hash. Reads at most the length the
/// file had when opened (or the limit given), so a walk never sees a frame
/// being written.
pub(crate) struct FileWalk {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    end: u64,
    next_seq: u64,
    previous: ChainHash,
}

impl FileWalk {
    /// Opens `path`, reading at most `limit` bytes of it when given.
    pub(crate) fn open(path: &Path, limit: Option<u64>) -> Result<Opened, AuditError> {
        let file = File::open(path).map_err(AuditError::io("open", path))?;
        let length = file.metadata().map_err(AuditError::io("inspect", path))?.len();
        let end = limit.map_or(length, |limit| limit.min(length));
        if end < HEADER_BYTES {
            return Ok(Opened::TornHeader { bytes: end });
        }
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut bytes = [0u8; HEADER_BYTES as usize];
        reader.read_exact(&mut bytes).map_err(AuditError::io("read", path))?;
        let header = Header::decode(&bytes).map_err(|reason| AuditError::Broken {
            file: path.to_path_buf(),
            record: parse_file_name(&path.file_name().unwrap_or_default().to_string_lossy()).unwrap_or(0),
            offset: 0,
            reason,
        })?;
        let walk = FileWalk {
            path: path.to_path_buf(),
            reader,
            offset: HEADER_BYTES,
            end,
            next_seq: header.first_seq,
            previous: header.previous,
        };
        Ok(Opened::Walk(header, walk))
    }

    /// The sequence number the next frame should carry.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The chain hash of the last frame read (the header's previous hash
    /// before any).
    pub(crate) fn previous(&self) -> ChainHash {
        self.previous
    }

    /// Where the next frame starts.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The chain broke here.
    pub(crate) fn broken(&self, reason: impl Into<String>) -> AuditError {
        self.broken_at(self.next_seq, reason)
    }

    /// The chain broke here, where record `record` was expected.
    pub(crate) fn broken_at(&self, record: u64, reason: impl Into<String>) -> AuditError {
        AuditError::Broken { file: self.path.clone(), record, offset: self.offset, reason: reason.into() }
    }

    /// The next frame, the end, or a torn tail.
    pub(crate) fn step(&mut self) -> Result<Step, AuditError> {
        let remaining = self.end - self.offset;
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < 4 {
            return Ok(self.torn());
        }
        let mut length = [0u8; 4];
        self.read(&mut length)?;
        let length = u32::from_le_bytes(length) as usize;
        let frame_bytes = (FRAME_OVERHEAD + length) as u64;
        if length == 0 {
            return if self.rest_is_zero(remaining - 4)? {
                Ok(self.torn())
            } else {
                Err(self.broken("a record of length 0"))
            };
        }
        if frame_bytes > remaining {
            return Ok(self.torn());
        }
        if length > MAX_BODY_BYTES {
            return Err(
                self.broken(format!("a record of {length} bytes, more than the {MAX_BODY_BYTES} allowed"))
            );
        }
        let mut body = vec![0u8; length];
        self.read(&mut body)?;
        let mut stored = [0u8; HASH_BYTES];
        self.read(&mut stored)?;
        let hash = self.previous.link(&body);
        if hash != ChainHash::from_bytes(stored) {
            return Err(self.broken(
                "its hash does not follow from the record before it (the record, or one before it, was changed, removed or inserted)",
            ));
        }
        let frame = Frame { seq: self.next_seq, offset: self.offset, body, hash };
        self.offset += frame_bytes;
        self.next_seq += 1;
        self.previous = hash;
        Ok(Step::Frame(frame))
    }

    fn torn(&self) -> Step {
        Step::Torn { offset: self.offset, bytes: self.end - self.offset }
    }

    fn read(&mut self, into: &mut [u8]) -> Result<(), AuditError> {
        self.reader.read_exact(into).map_err(AuditError::io("read", &self.path))
    }

    /// Whether the next `count` bytes are all zero (a file extended by a
    /// crash before its data reached the disk).
    fn rest_is_zero(&mut self, count: u64) -> Result<bool, AuditError> {
        let mut buffer = [0u8; 8192];
        let mut left = count;
        while left > 0 {
            let chunk = usize::try_from(left).unwrap_or(buffer.len()).min(buffer.len());
            self.read(&mut buffer[..chunk])?;
            if buffer[..chunk].iter().any(|b| *b != 0) {
                return Ok(false);
            }
            left -= chunk as u64;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_in_chain_order_and_others_are_ignored() {
        assert_eq!(file_name(1), "00000000000000000001.audit");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in ["1.audit", "00000000000000000001.audit.tmp", "0000000000000000000x.audit", "notes.txt"]
        {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn headers_round_trip_and_foreign_files_are_refused() {
        let header = Header { mode: Mode::Sealed, first_seq: 42, previous: ChainHash::genesis() };
        let bytes: [u8; HEADER_BYTES as usize] = header.encode().try_into().unwrap();
        assert_eq!(Header::decode(&bytes).unwrap(), header);
        let mut foreign = bytes;
        foreign[0] = b'X';
        assert!(Header::decode(&foreign).unwrap_err().contains("magic"));
    }
}
