//! The writer: [`AuditLog`] appends records to memory and a background
//! thread writes and fsyncs them.
//!
//! Appending never touches the disk: the record is encoded, sealed when the
//! log has a key, chained and added to a buffer under one short lock, so a
//! request pays microseconds for its record. A background thread writes the
//! buffer and fsyncs the file every `sync_interval` (sooner when
//! [`FLUSH_AT_BYTES`] are waiting), and [`AuditLog::close`] does both a
//! last time. A record is therefore durable at most one interval after it
//! was appended; a crash loses at most that much, and leaves at worst a
//! record cut short at the end, which the next open removes.
//!
//! A write or fsync that fails stops the log: every later append fails with
//! [`AuditError::Failed`], so a server can refuse requests it could not
//! record rather than serve them unrecorded.

use std::fs::{self, OpenOptions};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use doppel_crypto::DataKey;
use doppel_model::{Timestamp, TwinId};
use parking_lot::{Condvar, Mutex};

use crate::AuditError;
use crate::chain::ChainHash;
use crate::record::{self, Entry, Record};
use crate::segment::{self, BodyError, FRAME_OVERHEAD, HEADER_BYTES, Header, Mode};
use crate::walk::{self, Segment, TornTail, Walked};

/// Default size at which a file is closed and the next one started: large
/// enough that a busy server starts a file a day or so, small enough that
/// a file is read quickly.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default longest time between an append and its fsync.
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 1000;
/// Buffered bytes that wake the writer before its interval is up, so a
/// burst is written in pieces of about this size.
pub const FLUSH_AT_BYTES: usize = 256 * 1024;
/// Most bytes of records waiting for the disk; past it appends fail with
/// [`AuditError::Backlog`] rather than grow memory while the disk stalls.
pub const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;
/// Most records one query answers.
pub const MAX_QUERY_LIMIT: usize = 1000;

/// How a log rolls its files and how often it fsyncs.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// A file that has reached this size gets no more records; the next
    /// one is started. A file always holds at least one record.
    pub max_file_bytes: u64,
    /// Longest time from an append to the fsync that makes it durable.
    pub sync_interval: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            sync_interval: Duration::from_millis(DEFAULT_SYNC_INTERVAL_MS),
        }
    }
}

/// What opening the log found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Recovery {
    /// Records in the log.
    pub records: u64,
    /// The chain hash of the newest record.
    pub head: ChainHash,
    /// The unfinished ends a crash left, now removed: a newest file
    /// without its header, then a torn record at the end of the file
    /// before it.
    pub truncated: Vec<TornTail>,
}

/// Which records a query wants. Records come in sequence order.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Only records naming this twin.
    pub twin: Option<TwinId>,
    /// Only records of the twin created at this time (see
    /// [`Entry::incarnation`]). A record written before incarnations were
    /// recorded counts when it is no older than the incarnation, which
    /// hides every earlier twin's records (and at worst the record of the
    /// request that created this one).
    pub incarnation: Option<Timestamp>,
    /// Only records at or after this time.
    pub from: Option<Timestamp>,
    /// Only records before this time.
    pub to: Option<Timestamp>,
    /// Only records after this sequence number (the `next` of the previous
    /// page); 0 for the start.
    pub after: u64,
    /// At most this many records, 1 to [`MAX_QUERY_LIMIT`].
    pub limit: usize,
}

impl Query {
    fn matches(&self, entry: &Entry) -> bool {
        self.twin.as_ref().is_none_or(|twin| entry.twin.as_ref() == Some(twin))
            && self.incarnation.is_none_or(|created| match entry.incarnation {
                Some(incarnation) => incarnation == created,
                None => entry.time >= created,
            })
            && self.from.is_none_or(|from| entry.time >= from)
            && self.to.is_none_or(|to| entry.time < to)
    }
}

/// One page of records.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Page {
    /// The records found, in sequence order.
    pub records: Vec<Record>,
    /// Pass as [`Query::after`] for the next page; `None` when the log was
    /// read to its end.
    pub next: Option<u64>,
}

/// An open audit log: append records, query them, close it. Cheap to
/// clone; the last clone dropped closes it (as [`AuditLog::close`] does,
/// but without reporting a failure).
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

/// The handle's side: the syncer thread, joined when the log closes.
struct Shared {
    core: Arc<Core>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    recovery: Recovery,
}

/// What the appenders and the syncer thread share.
struct Core {
    dir: PathBuf,
    key: Option<DataKey>,
    options: AuditOptions,
    tail: Mutex<Tail>,
    /// Wakes the syncer early (a full buffer) or for good (closing).
    wake: Condvar,
    output: Mutex<Output>,
}

/// The chain's end and the records not yet written.
struct Tail {
    next_seq: u64,
    head: ChainHash,
    /// Size the current file will have once everything pending is written.
    file_bytes: u64,
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// A failed fsync or roll: the log is stopped until reopened.
    failure: Option<String>,
    /// A failed append, cut off and retried at each flush; appends are
    /// refused until one succeeds.
    write_error: Option<String>,
    closed: bool,
}

/// Work for the writer, in order.
enum Pending {
    /// Frames to append to the current file.
    Frames(Vec<u8>),
    /// Close the current file and start one with this header.
    Roll(Header),
}

/// The file being written.
struct Output {
    file: doppel_fs::File,
    path: PathBuf,
    written: u64,
    unsynced: bool,
}

impl AuditLog {
    /// Opens the log in `dir` (created, private to its owner, if absent),
    /// sealing new records with `key` when one is given. The newest file is
    /// checked record by record: a torn end left by a crash is cut off (and
    /// reported in [`AuditLog::recovery`]); anything else wrong there fails
    /// the open, naming the file and record. Older files are checked by
    /// [`verify`](crate::verify), not here, so opening stays quick.
    ///
    /// When the newest file's mode (sealed or not) differs from what `key`
    /// asks, new records go to a new file in the asked mode.
    pub fn open(dir: &Path, key: Option<DataKey>, options: AuditOptions) -> Result<AuditLog, AuditError> {
        if options.max_file_bytes < HEADER_BYTES + FRAME_OVERHEAD as u64 {
            return Err(AuditError::InvalidOptions(format!(
                "max_file_bytes = {} cannot hold a record; use at least a few KiB",
                options.max_file_bytes
            )));
        }
        if options.sync_interval.is_zero() {
            return Err(AuditError::InvalidOptions("sync_interval must be longer than zero".to_owned()));
        }
        doppel_fs::create_dir_all(dir, Some(&private_dir_builder()))
            .map_err(AuditError::io("create", dir))?;
        let mode = if key.is_some() { Mode::Sealed } else { Mode::Plain };
        let (walked, truncated) = recover(dir, key.as_ref())?;
        let recovery = Recovery { records: walked.next_seq - 1, head: walked.head, truncated };
        let output = match walked.last {
            Some((path, header, end)) if header.mode == mode => Output {
                file: doppel_fs::File::open_with(OpenOptions::new().append(true), &path)
                    .map_err(AuditError::io("open", &path))?,
                path,
                written: end,
                unsynced: false,
            },
            Some((path, header, end)) if end == HEADER_BYTES => {
                // An empty file in the other mode: replace it, since the
                // new one takes its name.
                doppel_fs::remove_file(&path).map_err(AuditError::io("remove", &path))?;
                create_file(dir, &Header { mode, ..header })?
            }
            _ => create_file(dir, &Header { mode, first_seq: walked.next_seq, previous: walked.head })?,
        };
        let tail = Tail {
            next_seq: walked.next_seq,
            head: walked.head,
            file_bytes: output.written,
            pending: Vec::new(),
            pending_bytes: 0,
            failure: None,
            write_error: None,
            closed: false,
        };
        let core = Arc::new(Core {
            dir: dir.to_path_buf(),
            key,
            options,
            tail: Mutex::new(tail),
            wake: Condvar::new(),
            output: Mutex::new(output),
        });
        let syncer_core = core.clone();
        let syncer = std::thread::Builder::new()
            .name("doppel-audit-sync".to_owned())
            .spawn(move || syncer_core.run_syncer())
            .map_err(AuditError::io("start the syncer thread of", dir))?;
        Ok(AuditLog { shared: Arc::new(Shared { core, syncer: Mutex::new(Some(syncer)), recovery }) })
    }

    /// What opening found: records, head, and any torn end removed.
    pub fn recovery(&self) -> &Recovery {
        &self.shared.recovery
    }

    /// Whether the records are sealed.
    pub fn is_sealed(&self) -> bool {
        self.shared.core.key.is_some()
    }

    /// Fails when an append would fail now (the log stopped after an I/O
    /// failure, is closed, or its buffer is full), so a caller can refuse
    /// work it could not record before doing it.
    pub fn check_writable(&self) -> Result<(), AuditError> {
        self.shared.core.tail.lock().check_writable()
    }

    /// Adds a record for `entry` and answers its sequence number. The
    /// record is in memory when this returns, and durable within the sync
    /// interval.
    pub fn append(&self, entry: &Entry) -> Result<u64, AuditError> {
        entry.check()?;
        let core = &self.shared.core;
        let mut tail = core.tail.lock();
        tail.check_writable()?;
        let seq = tail.next_seq;
        let canonical = record::encode(seq, entry);
        let body = match &core.key {
            None => canonical,
            Some(key) => key
                .seal(&segment::seal_aad(seq), &canonical)
                .map_err(|source| AuditError::Seal { record: seq, source })?,
        };
        let hash = tail.head.link(&body);
        let frame_bytes = (FRAME_OVERHEAD + body.len()) as u64;
        if tail.file_bytes > HEADER_BYTES && tail.file_bytes + frame_bytes > core.options.max_file_bytes {
            let mode = if core.key.is_some() { Mode::Sealed } else { Mode::Plain };
            let header = Header { mode, first_seq: seq, previous: tail.head };
            tail.pending.push(Pending::Roll(header));
            tail.file_bytes = HEADER_BYTES;
        }
        if !matches!(tail.pending.last(), Some(Pending::Frames(_))) {
            tail.pending.push(Pending::Frames(Vec::with_capacity(4096)));
        }
        if let Some(Pending::Frames(frames)) = tail.pending.last_mut() {
            segment::put_frame(frames, &body, &hash);
        }
        tail.file_bytes += frame_bytes;
        tail.pending_bytes += FRAME_OVERHEAD + body.len();
        tail.next_seq = seq + 1;
        tail.head = hash;
        if tail.pending_bytes >= FLUSH_AT_BYTES {
            core.wake.notify_one();
        }
        Ok(seq)
    }

    /// Why the log refuses records now, `None` while it takes them: for
    /// the server's health report, so that an operator learns of it
    /// without waiting for a refused request.
    pub fn problem(&self) -> Option<String> {
        let tail = self.shared.core.tail.lock();
        match (&tail.failure, &tail.write_error) {
            (Some(reason), _) => {
                Some(format!("stopped recording after {reason}; restart once the disk is fixed"))
            }
            (None, Some(reason)) => Some(format!("cannot write its records ({reason}); retrying")),
            (None, None) => None,
        }
    }

    /// Writes and fsyncs every record appended so far, now.
    pub fn sync(&self) -> Result<(), AuditError> {
        self.shared.core.flush(true).map(drop)
    }

    /// The records `query` asks for, newest appends included. Reads the
    /// files from the one holding `query.after + 1`, so a page costs what
    /// lies between its start and its last match; blocks on file reads.
    pub fn query(&self, query: &Query) -> Result<Page, AuditError> {
        let limit = query.limit.clamp(1, MAX_QUERY_LIMIT);
        let core = &self.shared.core;
        // Everything appended is written (not fsynced) first, and the walk
        // stops at the length written, so it never meets a frame in flight.
        let (current, written) = core.flush(false)?;
        let mut files: Vec<Segment> = walk::segments(&core.dir)?
            .into_iter()
            .filter(|segment| segment.path <= current)
            .map(|segment| {
                let limit = (segment.path == current).then_some(written);
                Segment { limit, ..segment }
            })
            .collect();
        let start =
            files.iter().rposition(|segment| segment.seq <= query.after.saturating_add(1)).unwrap_or(0);
        files.drain(..start);
        let mut page = Page { records: Vec::new(), next: None };
        walk::walk(&files, None, |path, header, frame| {
            if frame.seq <= query.after {
                return Ok(ControlFlow::Continue(()));
            }
            let entry = match segment::open_body(header.mode, core.key.as_ref(), frame.seq, &frame.body) {
                Ok(Some(entry)) => entry,
                Ok(None) => return Err(AuditError::KeyMissing { file: path.to_path_buf() }),
                Err(error) => return Err(frame.broken(path, error)),
            };
            if !query.matches(&entry) {
                return Ok(ControlFlow::Continue(()));
            }
            page.records.push(Record { seq: frame.seq, entry, hash: frame.hash });
            if page.records.len() == limit {
                page.next = Some(frame.seq);
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(page)
    }

    /// Stops the syncer after it has written and fsynced every record, and
    /// refuses appends from then on. Reports the first write failure the
    /// log met, if any, since such a failure means records were lost.
    pub fn close(&self) -> Result<(), AuditError> {
        self.shared.close()
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.shared.core.dir)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn close(&self) -> Result<(), AuditError> {
        self.core.tail.lock().closed = true;
        self.core.wake.notify_all();
        if let Some(syncer) = self.syncer.lock().take() {
            // The syncer only ends by returning; a panic in it would have
            // been a bug, and the flush below still runs.
            let _ = syncer.join();
        }
        self.core.flush(true).map(drop)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Tail {
    fn check_writable(&self) -> Result<(), AuditError> {
        if let Some(reason) = self.failure.as_ref().or(self.write_error.as_ref()) {
            return Err(AuditError::Failed { reason: reason.clone() });
        }
        if self.closed {
            return Err(AuditError::Closed);
        }
        if self.pending_bytes > MAX_PENDING_BYTES {
            return Err(AuditError::Backlog { bytes: self.pending_bytes, max: MAX_PENDING_BYTES });
        }
        Ok(())
    }
}

impl Core {
    /// Until closed: wait for the interval or a full buffer, then write and
    /// fsync what is pending. A failure is kept in the tail, where appends
    /// find it.
    fn run_syncer(&self) {
        loop {
            let closing = {
                let mut tail = self.tail.lock();
                if !tail.closed && tail.pending_bytes < FLUSH_AT_BYTES {
                    self.wake.wait_for(&mut tail, self.options.sync_interval);
                }
                tail.closed
            };
            let _ = self.flush(true);
            if closing {
                return;
            }
        }
    }

    /// Writes everything pending (fsyncing when `sync`), and answers the
    /// current file and its written length. The output lock is taken
    /// before the pending work, so writers never reorder it.
    fn flush(&self, sync: bool) -> Result<(PathBuf, u64), AuditError> {
        let mut output = self.output.lock();
        let pending = {
            let mut tail = self.tail.lock();
            if let Some(reason) = &tail.failure {
                return Err(AuditError::Failed { reason: reason.clone() });
            }
            tail.pending_bytes = 0;
            std::mem::take(&mut tail.pending)
        };
        match self.write(&mut output, pending, sync) {
            Ok(()) => {
                self.tail.lock().write_error = None;
                Ok((output.path.clone(), output.written))
            }
            Err(Unwritten { error, mut rest, lasting }) => {
                let mut tail = self.tail.lock();
                if lasting {
                    tail.failure.get_or_insert_with(|| reason(&error));
                } else {
                    // Back in front of what was appended since, for the
                    // next flush to retry; appends are refused meanwhile.
                    tail.write_error = Some(reason(&error));
                    tail.pending_bytes += rest
                        .iter()
                        .map(|work| match work {
                            Pending::Frames(frames) => frames.len(),
                            Pending::Roll(_) => 0,
                        })
                        .sum::<usize>();
                    rest.append(&mut tail.pending);
                    tail.pending = rest;
                }
                Err(error)
            }
        }
    }

    /// Writes `pending` in order. A failed append of frames is cut off the
    /// file and handed back with the rest, to be retried; a failed fsync
    /// (after which the kernel may have dropped the pages it could not
    /// write, so a retry could report success for lost records) or a
    /// failed roll to a new file stops the log for good.
    fn write(&self, output: &mut Output, pending: Vec<Pending>, sync: bool) -> Result<(), Unwritten> {
        let mut pending = pending.into_iter();
        while let Some(work) = pending.next() {
            match work {
                Pending::Frames(frames) => {
                    if let Err(source) = output.file.write_all(&frames) {
                        let error = AuditError::io("write", &output.path)(source);
                        let lasting = output.file.set_len(output.written).is_err();
                        let rest = std::iter::once(Pending::Frames(frames)).chain(pending).collect();
                        return Err(Unwritten { error, rest, lasting });
                    }
                    output.written += frames.len() as u64;
                    output.unsynced = true;
                }
                Pending::Roll(header) => {
                    output
                        .file
                        .sync_data()
                        .map_err(AuditError::io("fsync", &output.path))
                        .map_err(Unwritten::lasting)?;
                    *output = create_file(&self.dir, &header).map_err(Unwritten::lasting)?;
                }
            }
        }
        if sync && output.unsynced {
            output
                .file
                .sync_data()
                .map_err(AuditError::io("fsync", &output.path))
                .map_err(Unwritten::lasting)?;
            output.unsynced = false;
        }
        Ok(())
    }
}

/// What went wrong, naming a file by its name alone: the text reaches
/// the server's public health report.
fn reason(error: &AuditError) -> String {
    match error {
        AuditError::Io { action, path, source } => {
            let name = path.file_name().map_or_else(|| "?".into(), |name| name.to_string_lossy());
            format!("cannot {action} {name}: {source}")
        }
        other => other.to_string(),
    }
}

/// Why [`Core::write`] stopped, and the work it did not do.
struct Unwritten {
    error: AuditError,
    /// The work not written, in order; empty when `lasting`.
    rest: Vec<Pending>,
    /// The log cannot go on: an fsync failed, or the file's end is unknown.
    lasting: bool,
}

impl Unwritten {
    fn lasting(error: AuditError) -> Unwritten {
        Unwritten { error, rest: Vec::new(), lasting: true }
    }
}

/// Checks the newest file and cuts off a torn end; a newest file shorter
/// than its header is removed and the one before it becomes the newest.
fn recover(dir: &Path, key: Option<&DataKey>) -> Result<(Walked, Vec<TornTail>), AuditError> {
    let mut files = walk::segments(dir)?;
    let mut truncated = Vec::new();
    loop {
        let Some(newest) = files.pop() else {
            return Ok((walk::walk(&[], None, |_, _, _| Ok(ControlFlow::Continue(())))?, truncated));
        };
        let mut last = None;
        let mut walked = walk::walk(std::slice::from_ref(&newest), None, |path, header, frame| {
            last = Some((path.to_path_buf(), *header, frame));
            Ok(ControlFlow::Continue(()))
        })?;
        if let Some((path, header, frame)) = last {
            match segment::open_body(header.mode, key, frame.seq, &frame.body) {
                Ok(_) => {}
                Err(BodyError::Key) => return Err(AuditError::WrongKey { file: path, record: frame.seq }),
                Err(error @ BodyError::Record(_)) => return Err(frame.broken(&path, error)),
            }
        }
        let Some(torn) = walked.torn.take() else {
            return Ok((walked, truncated));
        };
        if torn.offset == 0 {
            doppel_fs::remove_file(&torn.file).map_err(AuditError::io("remove", &torn.file))?;
            sync_dir(dir)?;
            truncated.push(torn);
            continue;
        }
        let file = doppel_fs::File::open_with(OpenOptions::new().write(true), &torn.file)
            .map_err(AuditError::io("open", &torn.file))?;
        file.set_len(torn.offset).map_err(AuditError::io("truncate", &torn.file))?;
        file.sync_all().map_err(AuditError::io("fsync", &torn.file))?;
        truncated.push(torn);
        return Ok((walked, truncated));
    }
}

/// Creates the file `header` starts, durably: header written and fsynced,
/// then the directory fsynced, so the file exists after a crash.
fn create_file(dir: &Path, header: &Header) -> Result<Output, AuditError> {
    let path = dir.join(segment::file_name(header.first_seq));
    let mut options = OpenOptions::new();
    options.append(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = doppel_fs::File::open_with(&options, &path).map_err(AuditError::io("create", &path))?;
    file.write_all(&header.encode()).map_err(AuditError::io("write", &path))?;
    file.sync_all().map_err(AuditError::io("fsync", &path))?;
    sync_dir(dir)?;
    Ok(Output { file, path, written: HEADER_BYTES, unsynced: false })
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    doppel_fs::sync_dir(dir).map_err(AuditError::io("fsync", dir))
}

/// The audit log says who looked at whose twin: only its owner may list it.
fn private_dir_builder() -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}
