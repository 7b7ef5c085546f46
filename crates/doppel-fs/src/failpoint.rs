//! Fault injection, scoped by path so that tests running in parallel in
//! one process each break only their own files.
//!
//! A test arms a fault for an [`Op`] on every path under a directory (its
//! own temporary directory, or one file); the fault fires on the nth
//! matching call or on every one, until the returned [`Armed`] is cleared
//! or dropped. A test may instead [`hold`] the calls of an [`Op`]: each
//! blocks until the returned [`Held`] is released, which is how a flush
//! is stalled mid-way to see what the writers before and behind it get.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::Op;

/// What an armed call does instead of its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fails with EIO, having done nothing.
    Eio,
    /// Fails with ENOSPC, having done nothing.
    Enospc,
    /// For a write, writes the first half of the buffer, then fails with
    /// ENOSPC, as a full disk does; any other call fails with ENOSPC.
    ShortWrite,
}

impl Fault {
    /// The error the call returns.
    pub(crate) fn error(self) -> io::Error {
        match self {
            Fault::Eio => io::Error::from_raw_os_error(libc::EIO),
            Fault::Enospc | Fault::ShortWrite => io::Error::from_raw_os_error(libc::ENOSPC),
        }
    }
}

/// On which matching calls a fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Only the nth matching call (1-based) after arming.
    Nth(u64),
    /// Every matching call until cleared.
    Always,
}

struct Point {
    id: u64,
    under: PathBuf,
    op: Op,
    fault: Fault,
    trigger: Trigger,
    calls: u64,
    fired: Arc<AtomicU64>,
}

static POINTS: Mutex<Vec<Point>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An armed fault; cleared when dropped.
#[must_use = "the fault is cleared when this is dropped"]
pub struct Armed {
    id: u64,
    fired: Arc<AtomicU64>,
}

impl Armed {
    /// How many calls the fault has failed so far.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Acquire)
    }

    /// Clears the fault: later calls succeed.
    pub fn clear(self) {}
}

impl Drop for Armed {
    fn drop(&mut self) {
        POINTS.lock().retain(|p| p.id != self.id);
    }
}

/// Arms `fault` for `op` on every path under `under` (a directory, or a
/// file itself).
pub fn arm(under: &Path, op: Op, fault: Fault, trigger: Trigger) -> Armed {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let fired = Arc::new(AtomicU64::new(0));
    POINTS.lock().push(Point {
        id,
        under: under.to_path_buf(),
        op,
        fault,
        trigger,
        calls: 0,
        fired: Arc::clone(&fired),
    });
    Armed { id, fired }
}

/// The fault this call must suffer, if an armed point matches it.
pub(crate) fn fire(op: Op, path: &Path) -> Option<Fault> {
    let mut points = POINTS.lock();
    for point in points.iter_mut().filter(|p| p.op == op && path.starts_with(&p.under)) {
        point.calls += 1;
        let hit = match point.trigger {
            Trigger::Always => true,
            Trigger::Nth(n) => point.calls == n,
        };
        if hit {
            point.fired.fetch_add(1, Ordering::AcqRel);
            return Some(point.fault);
        }
    }
    None
}

/// A hold on the calls of one [`Op`] under one path; released (and the
/// blocked calls let through) by [`Held::release`] or when dropped.
#[must_use = "the held calls are released when this is dropped"]
pub struct Held {
    id: u64,
    gate: Arc<Gate>,
}

/// What a held call waits on: how many calls are blocked, and whether the
/// hold is released.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    blocked: u64,
    released: bool,
}

struct HoldPoint {
    id: u64,
    under: PathBuf,
    op: Op,
    gate: Arc<Gate>,
}

static HOLDS: Mutex<Vec<HoldPoint>> = Mutex::new(Vec::new());

impl Held {
    /// Blocks until `calls` calls in all have come to the hold, so a test
    /// knows the work behind it is stalled there rather than not started.
    pub fn wait_until_blocked(&self, calls: u64) {
        let mut state = self.gate.state.lock();
        while state.blocked < calls {
            self.gate.changed.wait(&mut state);
        }
    }

    /// Lets every blocked call and every later one through.
    pub fn release(self) {}
}

impl Drop for Held {
    fn drop(&mut self) {
        HOLDS.lock().retain(|h| h.id != self.id);
        self.gate.state.lock().released = true;
        self.gate.changed.notify_all();
    }
}

/// Holds every call of `op` on paths under `under` until the returned
/// [`Held`] is released: the call blocks before doing anything, then does
/// its work as usual.
pub fn hold(under: &Path, op: Op) -> Held {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let gate = Arc::new(Gate::default());
    HOLDS.lock().push(HoldPoint { id, under: under.to_path_buf(), op, gate: Arc::clone(&gate) });
    Held { id, gate }
}

/// Blocks this call while a hold matches it.
pub(crate) fn wait_if_held(op: Op, path: &Path) {
    let gate =
        HOLDS.lock().iter().find(|h| h.op == op && path.starts_with(&h.under)).map(|h| Arc::clone(&h.gate));
    let Some(gate) = gate else { return };
    let mut state = gate.state.lock();
    state.blocked += 1;
    gate.changed.notify_all();
    while !state.released {
        gate.changed.wait(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_only_under_its_path_and_on_its_call() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let armed = arm(dir.path(), Op::Sync, Fault::Eio, Trigger::Nth(2));
        assert_eq!(fire(Op::Sync, &other.path().join("a")), None);
        assert_eq!(fire(Op::Write, &dir.path().join("a")), None);
        assert_eq!(fire(Op::Sync, &dir.path().join("a")), None);
        assert_eq!(fire(Op::Sync, &dir.path().join("b")), Some(Fault::Eio));
        assert_eq!(fire(Op::Sync, &dir.path().join("c")), None);
        assert_eq!(armed.fired(), 1);
        let always = arm(dir.path(), Op::Write, Fault::Enospc, Trigger::Always);
        assert_eq!(fire(Op::Write, &dir.path().join("a")), Some(Fault::Enospc));
        assert_eq!(fire(Op::Write, &dir.path().join("a")), Some(Fault::Enospc));
        always.clear();
        assert_eq!(fire(Op::Write, &dir.path().join("a")), None);
    }

    #[test]
    fn a_held_call_waits_for_the_release_and_other_paths_pass() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let held = hold(dir.path(), Op::Open);
        wait_if_held(Op::Open, &other.path().join("a"));
        wait_if_held(Op::Write, &dir.path().join("a"));
        let path = dir.path().join("a");
        let call = std::thread::spawn(move || wait_if_held(Op::Open, &path));
        held.wait_until_blocked(1);
        assert!(!call.is_finished(), "the held call waits for the release");
        held.release();
        call.join().unwrap();
        wait_if_held(Op::Open, &dir.path().join("b"));
    }

    #[test]
    fn errors_carry_the_operating_system_codes() {
        assert_eq!(Fault::Eio.error().raw_os_error(), Some(libc::EIO));
        assert_eq!(Fault::Enospc.error().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(Fault::ShortWrite.error().kind(), io::ErrorKind::StorageFull);
    }
}
