//! Files opened for writing, and the directory calls durable writes need.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::Op;
use crate::counters;

/// Fails the call when a fault is armed for it.
#[inline(always)]
fn check(op: Op, path: &Path) -> io::Result<()> {
    #[cfg(feature = "failpoints")]
    crate::failpoint::wait_if_held(op, path);
    #[cfg(feature = "failpoints")]
    if let Some(fault) = crate::failpoint::fire(op, path) {
        return Err(fault.error());
    }
    let _ = (op, path);
    Ok(())
}

/// A file opened for writing, which remembers its path so that faults can
/// be scoped by it and errors can name it.
#[derive(Debug)]
pub struct File {
    file: std::fs::File,
    path: PathBuf,
}

impl File {
    /// Opens `path` with `options` (which say create, append, truncate and
    /// mode).
    pub fn open_with(options: &std::fs::OpenOptions, path: &Path) -> io::Result<File> {
        check(Op::Open, path)?;
        let file = options.open(path)?;
        counters::opened();
        Ok(File { file, path: path.to_path_buf() })
    }

    /// Creates or truncates `path` for writing.
    pub fn create(path: &Path) -> io::Result<File> {
        File::open_with(&replace_options(), path)
    }

    /// Opens `path` for appending, creating it when missing.
    pub fn append(path: &Path) -> io::Result<File> {
        File::open_with(std::fs::OpenOptions::new().append(true).create(true), path)
    }

    /// The path the file was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes all of `buf`. On failure some prefix of it may be written.
    pub fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut &*self, buf)
    }

    /// `fsync`: data and metadata.
    pub fn sync_all(&self) -> io::Result<()> {
        check(Op::Sync, &self.path)?;
        self.file.sync_all()?;
        counters::synced_file();
        Ok(())
    }

    /// `fdatasync`: data, and the metadata needed to read it back.
    pub fn sync_data(&self) -> io::Result<()> {
        check(Op::Sync, &self.path)?;
        self.file.sync_data()?;
        counters::synced_file();
        Ok(())
    }

    /// Truncates or extends the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        check(Op::Truncate, &self.path)?;
        self.file.set_len(len)
    }

    /// The length of the file now.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// True when the file holds no bytes.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The file, for reading it back.
    pub fn as_std(&self) -> &std::fs::File {
        &self.file
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "failpoints")]
        crate::failpoint::wait_if_held(Op::Write, &self.path);
        #[cfg(feature = "failpoints")]
        if let Some(fault) = crate::failpoint::fire(Op::Write, &self.path) {
            if fault == crate::failpoint::Fault::ShortWrite && buf.len() > 1 {
                (&self.file).write_all(&buf[..buf.len() / 2])?;
            }
            return Err(fault.error());
        }
        let written = (&self.file).write(buf)?;
        counters::wrote(written);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Options that create or truncate a file for writing: what
/// [`write_atomic`] needs for its temporary file when no mode is wanted.
pub fn replace_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    options
}

/// Renames `from` to `to`, replacing `to` (faults match `from`).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    check(Op::Rename, from)?;
    std::fs::rename(from, to)?;
    counters::renamed();
    Ok(())
}

/// Removes a file.
pub fn remove_file(path: &Path) -> io::Result<()> {
    check(Op::Remove, path)?;
    std::fs::remove_file(path)
}

/// Creates `path` and its missing parents with `builder` (which says
/// recursive and mode), or with default permissions when `None`.
pub fn create_dir_all(path: &Path, builder: Option<&std::fs::DirBuilder>) -> io::Result<()> {
    check(Op::CreateDir, path)?;
    match builder {
        Some(builder) => builder.create(path),
        None => std::fs::create_dir_all(path),
    }
}

/// Fsyncs a directory, so that file creations, renames and removals in it
/// are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    check(Op::SyncDir, dir)?;
    std::fs::File::open(dir)?.sync_all()?;
    counters::synced_dir();
    Ok(())
}

/// Why [`write_atomic`] failed: the call and the file.
#[derive(Debug)]
pub struct Error {
    /// The call that failed.
    pub op: Op,
    /// The file or directory it was made on.
    pub path: PathBuf,
    /// What the operating system said.
    pub source: io::Error,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.op.as_str(), self.path.display(), self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Replaces `path` with `bytes` so that a crash or a failed call leaves
/// either the old file or the new one, never a mix: the bytes go to `tmp`
/// (opened with `options`, which must create and truncate it), which is
/// fsynced, renamed over `path`, and the directory is fsynced. On failure
/// before the rename, `tmp` is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    tmp: &Path,
    options: &std::fs::OpenOptions,
    bytes: &[u8],
) -> Result<(), Error> {
    let failed = |op: Op, at: &Path| {
        let at = at.to_path_buf();
        move |source| Error { op, path: at, source }
    };
    let written = File::open_with(options, tmp)
        .map_err(failed(Op::Open, tmp))
        .and_then(|file| {
            file.write_all(bytes).map_err(failed(Op::Write, tmp))?;
            file.sync_all().map_err(failed(Op::Sync, tmp))
        })
        .and_then(|()| rename(tmp, path).map_err(failed(Op::Rename, tmp)));
    if let Err(e) = written {
        // Best effort: the old file is intact; the temporary one is only
        // litter, which the next write truncates anyway.
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sync_dir(dir).map_err(failed(Op::SyncDir, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let tmp = dir.path().join("state.tmp");
        let options = replace_options();
        write_atomic(&path, &tmp, &options, b"one").unwrap();
        write_atomic(&path, &tmp, &options, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!tmp.exists());
    }

    #[test]
    fn appends_land_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = File::append(&path).unwrap();
        file.write_all(b"ab").unwrap();
        file.write_all(b"cd").unwrap();
        file.sync_data().unwrap();
        assert_eq!(file.len().unwrap(), 4);
        file.set_len(2).unwrap();
        file.write_all(b"x").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abx");
    }
}
