//! A child process: started on the long-lived spawner thread, handed to the
//! watchdog (which reaps it, in its one reaping place, the moment it dies),
//! killed race-free through its pidfd.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags};
use shm_proto::ConsumerRemote;

use crate::output::OutputDrain;
use crate::watchdog::{self, RssConfig, Watch, Watched};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        }
    }
}

type SpawnJob = (Command, mpsc::SyncSender<io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process; spawning from whatever thread calls `Worker::spawn` would
/// kill children when, say, a thread pool retires that thread.
fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("ringworker-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the ringworker spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// How to watch a child once it runs.
pub(crate) struct WatchPlan {
    /// `None` for a template.
    pub(crate) ring: Option<ConsumerRemote>,
    pub(crate) rss: RssConfig,
    pub(crate) contained: bool,
    pub(crate) own_group: bool,
}

/// A running (or finished) child under the watchdog, which reaps it.
pub(crate) struct ChildProcess {
    watch: Arc<Watch>,
    output: OutputDrain,
}

impl ChildProcess {
    /// Spawns `command` (stdout and stderr must be piped), puts it under the
    /// watchdog and starts draining its output into tails of `tail_bytes` each.
    pub(crate) fn spawn(command: Command, tail_bytes: usize, plan: WatchPlan) -> io::Result<Self> {
        let mut child = spawn_from_long_lived_thread(command)?;
        let pid = child.id();
        let pidfd = match Pid::from_raw(pid as i32)
            .ok_or_else(|| io::Error::other("child has pid 0"))
            .and_then(|pid| {
                rustix::process::pidfd_open(pid, PidfdFlags::empty()).map_err(io::Error::from)
            }) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let output = OutputDrain::start(child.stdout.take(), child.stderr.take(), tail_bytes);
        // From here on the watchdog reaps it through the pidfd; `child` is
        // dropped without waiting (std's `Child` never waits on drop).
        drop(child);
        Ok(Self::register(pid, pidfd, output, plan, false))
    }

    /// Takes over a child a template forked for us (`clone(CLONE_PARENT)`):
    /// `pid` is our child, so it stays that process (a zombie at worst)
    /// until the watchdog reaps it, and `pidfd_open` on it is race-free.
    /// Checks that it is our child before trusting it. `stdout` and
    /// `stderr` are the read ends of its output pipes.
    pub(crate) fn adopt(
        pid: u32,
        stdout: OwnedFd,
        stderr: OwnedFd,
        tail_bytes: usize,
        plan: WatchPlan,
    ) -> io::Result<Self> {
        let raw = Pid::from_raw(pid as i32).ok_or_else(|| io::Error::other("pid 0"))?;
        let pidfd = match rustix::process::pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                // No pidfd (out of fds): if it is our child, nobody else
                // can reap it, so kill and reap it here, as `spawn` does
                // with a child it cannot hand over.
                if parent_of(pid) == Some(std::process::id()) {
                    let _ = rustix::process::kill_process(raw, rustix::process::Signal::KILL);
                    let _ =
                        rustix::process::waitpid(Some(raw), rustix::process::WaitOptions::empty());
                }
                return Err(e.into());
            }
        };
        // Pinned by the pidfd; only we can reap it if it is ours.
        if parent_of(pid) != Some(std::process::id()) {
            return Err(io::Error::other(format!(
                "the template reported pid {pid}, which is not a child of this process"
            )));
        }
        let output = OutputDrain::start(
            Some(ChildStdout::from(stdout)),
            Some(ChildStderr::from(stderr)),
            tail_bytes,
        );
        Ok(Self::register(pid, pidfd, output, plan, true))
    }

    /// Under a forked shim, names the worker (the shim's first child) by
    /// the pid its handshake reported: the watch looks it up and pins it
    /// when it first needs it (see `Watch::expect_worker`).
    pub(crate) fn expect_forked_worker(&self, pid: u32) {
        if self.watch.contained() {
            self.watch.expect_worker(pid);
        }
    }

    fn register(
        pid: u32,
        pidfd: OwnedFd,
        output: OutputDrain,
        plan: WatchPlan,
        forked: bool,
    ) -> Self {
        // A forked shim may not have forked its worker yet: see
        // `expect_forked_worker`.
        let worker_pid = if plan.contained && !forked {
            // The shim forked the worker before `spawn` returned.
            shm_proto::shim_worker_pid(pid).unwrap_or(pid)
        } else {
            pid
        };
        // Its own pidfd: the escalation when the shim does not stop the tree.
        let worker_pidfd = (worker_pid != pid)
            .then(|| Pid::from_raw(worker_pid as i32))
            .flatten()
            .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        let watch = Arc::new(Watch::new(
            Watched {
                pid,
                pidfd,
                worker_pid,
                worker_pidfd,
                contained: plan.contained,
                own_group: plan.own_group,
            },
            plan.ring,
            plan.rss,
        ));
        watchdog::register(Arc::clone(&watch));
        ChildProcess { watch, output }
    }

    /// The spawned process's pid (the containment shim's, if contained).
    pub(crate) fn pid(&self) -> u32 {
        self.watch.pid()
    }

    /// The worker's own pid.
    pub(crate) fn worker_pid(&self) -> u32 {
        self.watch.worker_pid()
    }

    /// Its liveness state.
    pub(crate) fn watch(&self) -> &Arc<Watch> {
        &self.watch
    }

    /// True once the process has terminated, reaped or not: the watchdog
    /// may not have run yet after a death that just happened.
    pub(crate) fn has_exited(&self) -> bool {
        if self.watch.exit().is_some() {
            return true;
        }
        let mut fds = [PollFd::from_borrowed_fd(self.watch.pidfd(), PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }

    /// Kills the child's whole tree (race-free: through the pidfd).
    pub(crate) fn kill(&self) {
        self.watch.stop();
    }

    /// Waits up to `timeout` until the watchdog has reaped the child.
    pub(crate) fn reap(&mut self, timeout: Duration) -> Option<Exit> {
        self.watch.wait_exit(timeout)
    }

    /// Kills and waits for the reaping.
    pub(crate) fn kill_and_reap(&mut self) -> Option<Exit> {
        self.kill();
        self.reap(Duration::from_secs(5))
    }

    /// The last output of the child so far.
    pub(crate) fn output_tail(&self) -> crate::OutputTail {
        self.output.tail()
    }

    /// The last output of a child that has exited, after giving the drain a
    /// moment (bounded) to read what is still in the pipes.
    pub(crate) fn final_output(&self) -> crate::OutputTail {
        self.output.finish();
        self.output.tail()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.kill_and_reap().is_none() {
            tracing::error!(
                pid = self.pid(),
                "worker did not die within 5 s of its kill"
            );
        }
        self.output.stop();
        watchdog::forget(&self.watch);
    }
}
