//! The crate's one error type.

use std::path::PathBuf;

use doppel_crypto::CryptoError;
use thiserror::Error;

/// Why the audit log could not record, read or vouch for its records.
/// Messages name the file, the record number and the byte offset where
/// one is known; they never repeat a sealed record's contents.
#[derive(Debug, Error)]
pub enum AuditError {
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (open, read, write, fsync, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A text field of an entry is longer than a record may hold.
    #[error("audit entry field {field} is {bytes} bytes, more than the {max} a record holds")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        bytes: usize,
        /// [`MAX_FIELD_BYTES`](crate::MAX_FIELD_BYTES).
        max: usize,
    },
    /// Sealing a record failed (the random source, most likely).
    #[error("cannot seal audit record {record}: {source}")]
    Seal {
        /// The record's sequence number.
        record: u64,
        /// What the cipher said.
        #[source]
        source: CryptoError,
    },
    /// The chain does not hold: a record was altered, removed, inserted or
    /// moved, or a file was deleted, truncated or renamed. Verification
    /// stops at the first such place.
    #[error("audit log broken at record {record} ({}, byte {offset}): {reason}", file.display())]
    Broken {
        /// The file where the chain breaks.
        file: PathBuf,
        /// The sequence number the record at that place should have.
        record: u64,
        /// Byte offset of that record in the file.
        offset: u64,
        /// What does not hold.
        reason: String,
    },
    /// A file holds sealed records but no key was given to open them.
    #[error("{} holds sealed records and no data key was given to open them", file.display())]
    KeyMissing {
        /// The sealed file.
        file: PathBuf,
    },
    /// The newest sealed record does not open with the given key: the log
    /// was written under another key.
    #[error("audit record {record} in {} does not open with the given data key (sealed under another key?)", file.display())]
    WrongKey {
        /// The file.
        file: PathBuf,
        /// The record tried.
        record: u64,
    },
    /// An earlier write or fsync failed; the log accepts no more records
    /// until it is reopened (which truncates what was left half written).
    #[error("the audit log stopped recording after a failure: {reason}")]
    Failed {
        /// The first failure.
        reason: String,
    },
    /// More records wait for the disk than the log buffers.
    #[error("{bytes} bytes of audit records are waiting for the disk, more than the {max} buffered")]
    Backlog {
        /// Bytes waiting.
        bytes: usize,
        /// [`MAX_PENDING_BYTES`](crate::MAX_PENDING_BYTES).
        max: usize,
    },
    /// The log was closed.
    #[error("the audit log is closed")]
    Closed,
    /// Options that cannot work.
    #[error("invalid audit log options: {0}")]
    InvalidOptions(String),
}

impl AuditError {
    /// A closure mapping an I/O error on `path` during `action`.
    pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| AuditError::Io { action, path, source }
    }
}
