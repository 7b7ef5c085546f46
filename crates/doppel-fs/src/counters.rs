//! Process-wide counts of the durable work done through this crate, so
//! that write amplification can be measured by counting (bytes written,
//! fsyncs) rather than timing, by tests and on `/metrics`.
//!
//! Always on: a relaxed atomic add per call costs nothing next to the
//! system call it counts.

use std::sync::atomic::{AtomicU64, Ordering};

static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);
static FILE_SYNCS: AtomicU64 = AtomicU64::new(0);
static DIR_SYNCS: AtomicU64 = AtomicU64::new(0);
static RENAMES: AtomicU64 = AtomicU64::new(0);
static FILES_OPENED: AtomicU64 = AtomicU64::new(0);

/// What this process has written through `doppel-fs` since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes handed to the kernel by successful writes.
    pub bytes_written: u64,
    /// Successful `fsync`/`fdatasync` calls on files.
    pub file_syncs: u64,
    /// Successful `fsync` calls on directories.
    pub dir_syncs: u64,
    /// Successful renames.
    pub renames: u64,
    /// Files opened (or created) for writing.
    pub files_opened: u64,
}

impl Counters {
    /// Every fsync, of files and of directories.
    pub fn syncs(&self) -> u64 {
        self.file_syncs + self.dir_syncs
    }

    /// What was done between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            bytes_written: self.bytes_written - earlier.bytes_written,
            file_syncs: self.file_syncs - earlier.file_syncs,
            dir_syncs: self.dir_syncs - earlier.dir_syncs,
            renames: self.renames - earlier.renames,
            files_opened: self.files_opened - earlier.files_opened,
        }
    }
}

/// The counts so far.
pub fn counters() -> Counters {
    Counters {
        bytes_written: BYTES_WRITTEN.load(Ordering::Relaxed),
        file_syncs: FILE_SYNCS.load(Ordering::Relaxed),
        dir_syncs: DIR_SYNCS.load(Ordering::Relaxed),
        renames: RENAMES.load(Ordering::Relaxed),
        files_opened: FILES_OPENED.load(Ordering::Relaxed),
    }
}

pub(crate) fn wrote(bytes: usize) {
    BYTES_WRITTEN.fetch_add(bytes as u64, Ordering::Relaxed);
}

pub(crate) fn synced_file() {
    FILE_SYNCS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn synced_dir() {
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn renamed() {
    RENAMES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn opened() {
    FILES_OPENED.fetch_add(1, Ordering::Relaxed);
}
