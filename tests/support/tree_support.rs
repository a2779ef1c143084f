//! Helpers of the process-tree, memory-limit and restart-policy tests
//! (`tree.rs`, `limits.rs`, `restarts.rs`): a lock that runs the tests of one
//! binary one at a time (the leak checks look at every child of this
//! process, and the timing checks want the machine to themselves), pid
//! files of the `fault` command's grandchildren, a guard that kills a
//! grandchild a failed test left behind, and the leak check run after each
//! test. Included with `#[path = "support/tree_support.rs"] mod tree_support;`
//! next to `support/mod.rs`.
#![allow(dead_code)]

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringworker::Worker;
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::support;

/// Held by every test of a binary for its whole run.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the calling test alone among the tests of its binary (a failed
/// test's poison is ignored: the next test starts from a clean slate anyway).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh, empty scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rw-tree-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where a `Fault::Grandchild` writes its grandchild's pid.
pub fn pid_file(name: &str) -> PathBuf {
    scratch_dir(name).join("grandchild.pid")
}

/// Reads a pid file the `fault` command wrote (it renames a complete file
/// into place), waiting up to 5 s for it to appear.
pub fn read_pid_file(path: &std::path::Path) -> u32 {
    let mut pid = None;
    let found = support::wait_until(Duration::from_secs(5), || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        pid.is_some()
    });
    assert!(found, "no pid in {} within 5 s", path.display());
    pid.unwrap()
}

/// A grandchild (not our child, so nothing reaps it for us): SIGKILLed
/// through a pidfd on drop if it still runs, so a failing test leaves
/// nothing behind and a recycled pid is never hit.
pub struct Grandchild {
    pub pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Grandchild {
    /// Pins `pid` (which must be alive: it was just read from its pid file).
    pub fn pin(pid: u32) -> Grandchild {
        let pidfd = Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        Grandchild { pid, pidfd }
    }

    /// Whether it runs (neither dead nor a zombie).
    pub fn alive(&self) -> bool {
        support::alive(self.pid)
    }

    /// Waits up to `timeout` for it to die; returns how long that took.
    pub fn dead_within(&self, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        support::wait_until(timeout, || !self.alive()).then(|| started.elapsed())
    }

    /// Kills it now (the test's own clean-up of a grandchild that escaped).
    pub fn kill(&self) {
        if let Some(pidfd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(pidfd, Signal::KILL);
        }
    }
}

impl Drop for Grandchild {
    fn drop(&mut self) {
        if self.alive() {
            self.kill();
        }
    }
}

/// Asserts that `pid` dies within `timeout`.
pub fn assert_dead_within(pid: u32, timeout: Duration, what: &str) {
    assert!(
        support::wait_until(timeout, || !support::alive(pid)),
        "{what} (pid {pid}) still alive {timeout:?} later"
    );
}

/// The leak check while a worker lives: no zombie children, and this
/// process's only child is the worker's spawned process (the shim), if it
/// has one.
pub fn assert_only_child(worker: &Worker, what: &str) {
    let live: Vec<u32> = worker.spawned_pid().into_iter().collect();
    // The watchdog reaps a child the moment it dies; give it a moment.
    let settled = support::wait_until(Duration::from_secs(2), || {
        support::zombie_children().is_empty() && support::children() == live
    });
    assert!(
        settled,
        "{what}: children {:?} (zombies {:?}), expected only {live:?}",
        support::children(),
        support::zombie_children()
    );
}

/// The leak check after the last worker was dropped: no children at all
/// (dropping a worker kills and reaps its child before it returns).
pub fn assert_no_children(what: &str) {
    assert!(
        support::children().is_empty(),
        "{what}: children {:?} (zombies {:?}) after the drop",
        support::children(),
        support::zombie_children()
    );
}

/// Drops `worker`, timing the drop, and checks that nothing is left.
pub fn drop_worker(worker: Worker, what: &str) -> Duration {
    let started = Instant::now();
    drop(worker);
    let took = started.elapsed();
    assert_no_children(what);
    took
}
