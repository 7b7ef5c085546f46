//! Walking the chain across files, and [`verify`], which walks all of it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use doppel_crypto::DataKey;

use crate::AuditError;
use crate::chain::ChainHash;
use crate::segment::{self, FileWalk, Frame, Header, Opened, Step};

/// The end of a log left unfinished by a crash: bytes after the last whole
/// record of the newest file, or a newest file shorter than its header.
/// Opening the log for writing removes them; verification reports them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TornTail {
    /// The newest file.
    pub file: PathBuf,
    /// Where its last whole record ends (0: the file is removed whole).
    pub offset: u64,
    /// Bytes after that.
    pub bytes: u64,
}

/// One file to walk: the first sequence number its name claims, and how
/// much of it to read.
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    /// Read at most this many bytes (the length the writer has finished).
    pub(crate) limit: Option<u64>,
}

/// Where a walk ended.
pub(crate) struct Walked {
    /// The sequence number the next record would take.
    pub(crate) next_seq: u64,
    /// The chain hash of the last record walked.
    pub(crate) head: ChainHash,
    /// The last file walked whole: its header and where its records end.
    pub(crate) last: Option<(PathBuf, Header, u64)>,
    /// A torn end of the newest file.
    pub(crate) torn: Option<TornTail>,
}

/// Walks `files` in order, checking that every file starts where the one
/// before it ended (by number and hash) and that every record's hash
/// continues the chain, and hands each record to `visit`, which may stop
/// the walk. `expect` is where the first file must start; `None` trusts its
/// header (a walk that starts in the middle of the log). Only the last
/// file may end torn.
pub(crate) fn walk(
    files: &[Segment],
    mut expect: Option<(u64, ChainHash)>,
    mut visit: impl FnMut(&Path, &Header, Frame) -> Result<ControlFlow<()>, AuditError>,
) -> Result<Walked, AuditError> {
    let (next_seq, head) = expect.unwrap_or((1, ChainHash::genesis()));
    let mut walked = Walked { next_seq, head, last: None, torn: None };
    for (index, segment) in files.iter().enumerate() {
        let newest = index + 1 == files.len();
        let (header, mut file) = match FileWalk::open(&segment.path, segment.limit)? {
            Opened::Walk(header, file) => (header, file),
            Opened::TornHeader { bytes } if newest => {
                walked.torn = Some(TornTail { file: segment.path.clone(), offset: 0, bytes });
                break;
            }
            Opened::TornHeader { bytes } => {
                return Err(AuditError::Broken {
                    file: segment.path.clone(),
                    record: segment.seq,
                    offset: 0,
                    reason: format!(
                        "the file is {bytes} bytes, shorter than its header, and newer files follow"
                    ),
                });
            }
        };
        check_header(&file, &header, segment.seq, expect)?;
        let stopped = loop {
            match file.step()? {
                Step::Frame(frame) => {
                    if visit(&segment.path, &header, frame)?.is_break() {
                        break true;
                    }
                }
                Step::End => break false,
                Step::Torn { offset, bytes } if newest => {
                    walked.torn = Some(TornTail { file: segment.path.clone(), offset, bytes });
                    break false;
                }
                Step::Torn { .. } => {
                    return Err(file.broken(
                        "the file ends inside this record and newer files follow: it was truncated",
                    ));
                }
            }
        };
        walked.next_seq = file.next_seq();
        walked.head = file.previous();
        walked.last = Some((segment.path.clone(), header, file.offset()));
        if stopped {
            break;
        }
        expect = Some((file.next_seq(), file.previous()));
    }
    Ok(walked)
}

fn check_header(
    file: &FileWalk,
    header: &Header,
    named_seq: u64,
    expect: Option<(u64, ChainHash)>,
) -> Result<(), AuditError> {
    if header.first_seq != named_seq {
        return Err(file.broken_at(
            named_seq,
            format!(
                "the file's name says it starts at record {named_seq} but its header says {}: files were renamed",
                header.first_seq
            ),
        ));
    }
    let Some((seq, hash)) = expect else {
        return Ok(());
    };
    if header.first_seq != seq {
        let before = if seq == 1 {
            "the log should start at record 1".to_owned()
        } else {
            format!("the file before ends at record {}", seq - 1)
        };
        return Err(file.broken_at(
            seq,
            format!(
                "{before} but this file starts at record {}: files were removed, added or renamed",
                header.first_seq
            ),
        ));
    }
    if header.previous != hash {
        return Err(file.broken(
            "the header's previous hash is not the hash the chain reached before this file: files were replaced or reordered",
        ));
    }
    Ok(())
}

/// The audit files of `dir`, each read whole.
pub(crate) fn segments(dir: &Path) -> Result<Vec<Segment>, AuditError> {
    Ok(segment::list(dir)?.into_iter().map(|(seq, path)| Segment { seq, path, limit: None }).collect())
}

/// What a verification found: the chain holds from the genesis value to
/// `head`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Verified {
    /// Records in the log.
    pub records: u64,
    /// Files they are in.
    pub files: usize,
    /// The chain hash of the newest record (the genesis value for an empty
    /// log). Kept somewhere an attacker cannot write, it shows later that
    /// the log was not cut back or rewritten before this point.
    pub head: ChainHash,
    /// Sealed records whose chain was checked but whose contents were not
    /// opened, because no key was given.
    pub unopened: u64,
    /// An unfinished record at the end, left by a crash; the next start of
    /// the server removes it.
    pub torn_tail: Option<TornTail>,
}

/// Walks the whole log in `dir`: every file in order from record 1, every
/// record's hash, and, where the record can be read (plaintext, or sealed
/// and `key` given), that it is the record its place says. Fails at the
/// first place where the chain does not hold, naming the file, the record
/// number and the byte offset.
///
/// Run it on the directory of a stopped server, or expect the newest
/// records, still being written, to show as a torn tail.
pub fn verify(dir: &Path, key: Option<&DataKey>) -> Result<Verified, AuditError> {
    let files = segments(dir)?;
    let mut unopened = 0;
    let walked = walk(&files, Some((1, ChainHash::genesis())), |path, header, frame| {
        match segment::open_body(header.mode, key, frame.seq, &frame.body) {
            Ok(Some(_)) => {}
            Ok(None) => unopened += 1,
            Err(error) => return Err(frame.broken(path, error)),
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let files_with_header =
        files.len() - usize::from(walked.torn.as_ref().is_some_and(|torn| torn.offset == 0));
    Ok(Verified {
        records: walked.next_seq - 1,
        files: files_with_header,
        head: walked.head,
        unopened,
        torn_tail: walked.torn,
    })
}
