//! The processes and directories a benchmark creates, and the guards that
//! remove them again on every exit path: success, error, or Ctrl-C (which
//! drops the running future, and with it every guard).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// How long a system may take to answer its readiness probe after start.
/// InfluxDB opening a large data directory is the slowest case seen.
pub const READY_TIMEOUT_MS: u64 = 60_000;

/// Pause between readiness probes.
const READY_POLL_MS: u64 = 50;

/// How long a stopped process gets to exit after SIGINT before it is
/// killed. A graceful Doppel shutdown flushes nothing heavy, so seconds do.
pub const STOP_GRACE_MS: u64 = 30_000;

/// How many bytes of a failed process's log an error message quotes.
const LOG_TAIL_BYTES: usize = 2_000;

/// A child process killed when dropped. Children run in their own process
/// group, so a Ctrl-C in the terminal reaches only the benchmark, which
/// then stops them itself.
pub struct ChildGuard {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot create log file {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("cannot reopen log file {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.as_std().get_program()))?;
        Ok(Self { name: name.to_owned(), child, log: log.to_owned() })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Fails, quoting the log, when the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("cannot poll child process")? {
            bail!("{} exited early ({status}); last log lines:\n{}", self.name, log_tail(&self.log));
        }
        Ok(())
    }

    /// Asks the process to stop with SIGINT (the signal every system here
    /// treats as a graceful shutdown), waits up to [`STOP_GRACE_MS`], then
    /// kills it.
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        if let Some(pid) = self.child.id() {
            // `kill` from procps instead of libc keeps this crate free of
            // unsafe code; it only fails when the process is already gone.
            let _ = Command::new("kill").arg("-INT").arg(pid.to_string()).status().await;
        }
        match tokio::time::timeout(Duration::from_millis(STOP_GRACE_MS), self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                tracing::warn!(name = %self.name, "did not stop after SIGINT; killing it");
                self.child.kill().await?;
                Ok(self.child.wait().await?)
            }
        }
    }

    /// The file its output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Polls `url` until it answers 2xx, the process exits, or
/// [`READY_TIMEOUT_MS`] passes.
pub async fn wait_ready(client: &reqwest::Client, url: &str, child: &mut ChildGuard) -> Result<Duration> {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(READY_TIMEOUT_MS);
    loop {
        child.ensure_running()?;
        if let Ok(response) = client.get(url).timeout(Duration::from_secs(2)).send().await
            && response.status().is_success()
        {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "{url} did not answer within {} s; last log lines:\n{}",
                READY_TIMEOUT_MS / 1000,
                log_tail(child.log())
            );
        }
        tokio::time::sleep(Duration::from_millis(READY_POLL_MS)).await;
    }
}

/// A free loopback port: bound, read, released. Another process could take
/// it in between; on a benchmark machine that is rare enough, and a start
/// failure then names the port.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// A directory removed with everything in it when dropped, unless kept.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates a fresh directory `<parent>/doppel-bench-<label>-<pid>-<nanos>`.
    pub fn new(parent: &Path, label: &str, keep: bool) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = parent.join(format!("doppel-bench-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path, keep })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else if let Err(err) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "cannot remove benchmark directory");
        }
    }
}

/// Bytes a directory tree holds, three ways: the summed lengths of its
/// regular files, the blocks the file system allocated for them (what `du`
/// reports: rounded up to whole blocks, larger for preallocated files,
/// smaller for sparse ones), and per file the smaller of the two, which is
/// what the benchmark reports: the bytes that hold data, without block
/// rounding penalising many small files and without the unwritten tail of
/// a sparse, preallocated file (InfluxDB's series file) counting.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DiskUsage {
    /// Sum of file lengths.
    pub file_bytes: u64,
    /// Sum of allocated blocks × 512.
    pub allocated_bytes: u64,
    /// Sum over files of min(length, allocated).
    pub data_bytes: u64,
}

/// Measures a directory tree without following symbolic links.
pub fn disk_usage(dir: &Path) -> Result<DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    let mut usage = DiskUsage::default();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            // Files vanish while a system compacts; what is gone holds no bytes.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("cannot list {}", path.display())),
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                let allocated = meta.blocks() * 512;
                usage.file_bytes += meta.len();
                usage.allocated_bytes += allocated;
                usage.data_bytes += meta.len().min(allocated);
            }
        }
    }
    Ok(usage)
}

/// The resident-set figures of this process from `/proc/self/status`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MemoryUsage {
    /// Current resident set (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// Peak resident set (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
}

/// Reads this process's memory figures (Linux only).
pub fn memory_usage() -> Result<MemoryUsage> {
    memory_usage_of("self")
}

/// Reads the memory figures of process `pid` (a number, or `self`).
pub fn memory_usage_of(pid: &str) -> Result<MemoryUsage> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path} (Linux only)"))?;
    parse_proc_status(&text).with_context(|| format!("{path} lacks VmRSS or VmHWM"))
}

/// Extracts `VmRSS` and `VmHWM` (in kB) from `/proc/<pid>/status` text.
pub fn parse_proc_status(text: &str) -> Option<MemoryUsage> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let mut words = line[name.len()..].split_whitespace();
        let kib: u64 = words.next()?.parse().ok()?;
        (words.next()? == "kB").then_some(kib * 1024)
    };
    Some(MemoryUsage { rss_bytes: field("VmRSS:")?, peak_rss_bytes: field("VmHWM:")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_memory_fields_are_parsed_in_bytes() {
        let text = "Name:\tdoppel\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        let usage = parse_proc_status(text).unwrap();
        assert_eq!(usage, MemoryUsage { rss_bytes: 1024 * 1024, peak_rss_bytes: 2048 * 1024 });
        assert_eq!(parse_proc_status("VmRSS: 1 kB\n"), None);
        assert_eq!(parse_proc_status("VmRSS: x kB\nVmHWM: 1 kB\n"), None);
        assert_eq!(parse_proc_status("VmRSS: 1 MB\nVmHWM: 1 kB\n"), None);
    }

    #[test]
    fn own_memory_usage_is_readable() {
        let usage = memory_usage().unwrap();
        assert!(usage.rss_bytes > 0 && usage.peak_rss_bytes >= usage.rss_bytes);
    }

    #[test]
    fn disk_usage_sums_nested_files_and_temp_dir_cleans_up() {
        let parent = std::env::temp_dir();
        let path;
        {
            let dir = TempDir::new(&parent, "test", false).unwrap();
            path = dir.path().to_owned();
            std::fs::create_dir(path.join("sub")).unwrap();
            std::fs::write(path.join("a"), [0u8; 100]).unwrap();
            std::fs::write(path.join("sub/b"), [0u8; 23]).unwrap();
            let usage = disk_usage(&path).unwrap();
            assert_eq!(usage.file_bytes, 123);
            assert!(usage.data_bytes <= usage.file_bytes && usage.data_bytes <= usage.allocated_bytes);
            // A sparse file: a long length, (almost) nothing allocated.
            let sparse = std::fs::File::create(path.join("sparse")).unwrap();
            sparse.set_len(64 << 20).unwrap();
            let with_sparse = disk_usage(&path).unwrap();
            assert_eq!(with_sparse.file_bytes, 123 + (64 << 20));
            assert!(with_sparse.data_bytes < 1 << 20, "{with_sparse:?}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
