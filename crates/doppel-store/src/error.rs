//! The store's one error type.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a store operation failed, naming the file and byte offset involved
/// where there is one.
#[derive(Debug, Error)]
pub enum StoreError {
    /// An operating-system call on a file or directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the store was doing (`open`, `write`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk failed a checksum or could not be decoded.
    #[error("corrupt data in {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The file holding the bad bytes.
        path: PathBuf,
        /// Byte offset of the bad structure within the file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A batch or twin record would make a WAL record larger than the store
    /// accepts; split the batch.
    #[error("{what} encodes to {bytes} bytes, more than the {limit}-byte WAL record limit")]
    RecordTooLarge {
        /// What was being written (`batch`, `twin record`).
        what: &'static str,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A segment file is in a format version this build does not read.
    /// Versions before 2 (an index held whole in memory) were never
    /// released; their data has to be re-imported.
    #[error("{path} is a segment of format version {found}; this build reads only version {supported}")]
    UnsupportedSegmentVersion {
        /// The segment file.
        path: PathBuf,
        /// The version its footer names.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// One series has more blocks in one segment than an index page may
    /// list: billions of samples, more than a flush or a compaction holds
    /// in memory, so in practice never.
    #[error("{series} has {blocks} blocks in one segment, more than the {limit} an index page lists")]
    SeriesTooLarge {
        /// The series.
        series: String,
        /// Its block count.
        blocks: usize,
        /// The limit.
        limit: usize,
    },
    /// Numeric compression failed while writing a segment.
    #[error("compressing a block for {series}: {reason}")]
    Compression {
        /// The series whose block could not be compressed.
        series: String,
        /// What pco reported.
        reason: String,
    },
    /// The keyring failed: a key could not be created, destroyed or
    /// stored, or a frame could not be sealed.
    #[error("keyring: {0}")]
    Keyring(#[source] doppel_crypto::CryptoError),
    /// The store, or the file named, is sealed and was opened without a
    /// keyring.
    #[error("{path} is encrypted at rest; open the store with its keyring and master key")]
    KeyringRequired {
        /// The sealed file.
        path: PathBuf,
    },
    /// The keyring given is not the one this store was sealed with.
    #[error(
        "{path}: this store was sealed with another keyring (master key {found}); check the keyring directory and master key"
    )]
    WrongKeyring {
        /// The store's marker file.
        path: PathBuf,
        /// The master key id of the keyring given.
        found: String,
    },
    /// A write named a twin the catalog does not hold, in a sealed store,
    /// where a twin's data can only be sealed under a key made when the
    /// twin is created.
    #[error("twin {twin} is not in the catalog; create it before writing its data")]
    UnknownTwin {
        /// The twin.
        twin: String,
    },
    /// An fsync of a file or directory failed. The kernel may have
    /// dropped the dirty pages it could not write, so retrying it could
    /// report success for data that is gone (PostgreSQL's 2018 "fsync
    /// problem"): the store stops writes at once, and the caller gets
    /// [`StoreError::Stopped`] instead of this.
    #[error("fsync {path} failed: {source}")]
    SyncFailed {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writes are stopped since an fsync failed; reads still work. Only a
    /// restart, which replays the WAL, makes the store writable again.
    #[error("writes are stopped since {cause}; reads still work; restart once the disk is fixed")]
    Stopped {
        /// The failed fsync, naming its file.
        cause: String,
    },
    /// The heads hold [`crate::StoreConfig::head_limit_points`] points or
    /// more: flushing has fallen behind the writes (a slow disk, a flush
    /// that keeps failing), and the write was refused before anything of
    /// it was logged, so the head cannot grow without bound. It may be
    /// retried once a flush has caught up.
    #[error(
        "the store is flushing behind: {head_points} points wait in memory, the limit is {limit}; nothing of this write was kept, retry shortly"
    )]
    FlushBehind {
        /// Points in the heads when the write was refused.
        head_points: usize,
        /// The limit.
        limit: usize,
    },
    /// Writing a WAL record failed (an I/O error, a full disk, a short
    /// write) and the file was cut back to its acknowledged length, so
    /// nothing of this write was kept; it may be retried once the fault
    /// clears.
    #[error("writing {path} failed: {source}; nothing of this write was kept")]
    WriteFailed {
        /// The WAL file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// Builds an [`StoreError::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }

    /// Replaces `path` atomically through `tmp`, naming the failed call.
    pub(crate) fn write_atomic(
        path: &std::path::Path,
        tmp: &std::path::Path,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        doppel_fs::write_atomic(path, tmp, &doppel_fs::replace_options(), bytes).map_err(|e| {
            if e.op.is_sync() {
                StoreError::SyncFailed { path: e.path, source: e.source }
            } else {
                StoreError::Io { op: e.op.as_str(), path: e.path, source: e.source }
            }
        })
    }

    /// The operation and I/O error of a keyring file that could not be
    /// written, if that is what this is. The keyring replaces its files
    /// atomically, so such a failure changed nothing and the request may be
    /// retried once the disk takes writes again.
    pub fn keyring_io(&self) -> Option<(&'static str, &io::Error)> {
        match self {
            StoreError::Keyring(doppel_crypto::CryptoError::Io { op, source, .. }) => Some((op, source)),
            _ => None,
        }
    }

    /// Builds a [`StoreError::SyncFailed`] for `path`.
    pub(crate) fn sync(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::SyncFailed { path, source }
    }
}
