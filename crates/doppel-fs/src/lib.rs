//! The one layer through which Doppel's durable state is written: every
//! create, append, fsync, rename and removal of the store, the keyring, the
//! auth state, the audit log and the privacy budget goes through here.
//!
//! It exists so that tests can make those calls fail. With the
//! `failpoints` feature, [`failpoint::arm`] injects EIO, ENOSPC or a short
//! write into the calls on paths under a directory, on the nth call or on
//! every call until cleared, and [`failpoint::hold`] blocks them until
//! the test releases them (a flush stalled mid-way); without it, each function is the `std` call
//! it wraps and nothing else. Reads are not wrapped: a fault in a read is
//! the business of the code that verifies what it reads.
//!
//! Every call is also counted ([`counters`]: bytes written, fsyncs,
//! renames), so that tests and `/metrics` can measure what a change costs
//! on disk by counting rather than timing; and [`log`] holds the framed,
//! checksummed append-only log the small state files grow by.

mod counters;
#[cfg(feature = "failpoints")]
pub mod failpoint;
mod file;
pub mod log;

pub use counters::{Counters, counters};
pub use file::{Error, File, create_dir_all, remove_file, rename, replace_options, sync_dir, write_atomic};

/// The kind of call a fault is injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening or creating a file for writing.
    Open,
    /// Writing bytes to a file.
    Write,
    /// `fsync`/`fdatasync` of a file.
    Sync,
    /// `fsync` of a directory.
    SyncDir,
    /// Truncating a file to a length.
    Truncate,
    /// Renaming a file (the source path is matched).
    Rename,
    /// Removing a file.
    Remove,
    /// Creating a directory and its parents.
    CreateDir,
}

impl Op {
    /// The verb an error message uses for this call.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Write => "write",
            Op::Sync => "fsync",
            Op::SyncDir => "fsync directory",
            Op::Truncate => "truncate",
            Op::Rename => "rename",
            Op::Remove => "remove",
            Op::CreateDir => "create directory",
        }
    }

    /// True for the calls after whose failure the kernel may have dropped
    /// dirty pages, so that nothing written before can be trusted durable.
    pub fn is_sync(self) -> bool {
        matches!(self, Op::Sync | Op::SyncDir)
    }
}
