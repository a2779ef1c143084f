//! A child process: started on the long-lived spawner thread, watched through
//! a pidfd, killed race-free, reaped in exactly one place
//! ([`ChildProcess::reap`]).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::output::OutputDrain;

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

/// A running (or finished but not yet reaped) child.
pub(crate) struct ChildProcess {
    child: Child,
    pidfd: OwnedFd,
    exit: Option<Exit>,
    output: OutputDrain,
}

impl ChildProcess {
    /// Spawns `command` (stdout and stderr must be piped) and starts draining
    /// its output into tails of `tail_bytes` each.
    pub(crate) fn spawn(command: Command, tail_bytes: usize) -> io::Result<Self> {
        let mut child = spawn_from_long_lived_thread(command)?;
        let pid =
            Pid::from_raw(child.id() as i32).ok_or_else(|| io::Error::other("child has pid 0"))?;
        let pidfd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
        };
        let output = OutputDrain::start(child.stdout.take(), child.stderr.take(), tail_bytes);
        Ok(ChildProcess {
            child,
            pidfd,
            exit: None,
            output,
        })
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the process has terminated (reaped or not). No reaping.
    pub(crate) fn has_exited(&self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }

    /// Sends SIGKILL through the pidfd (never hits a recycled pid).
    pub(crate) fn kill(&self) {
        if self.exit.is_none() {
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
        }
    }

    /// Reaps the child, waiting up to `timeout` for it to terminate; `None`
    /// if it is still running. The only place children are reaped.
    pub(crate) fn reap(&mut self, timeout: Duration) -> Option<Exit> {
        if let Some(exit) = self.exit {
            return Some(exit);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.has_exited() {
                // Terminated: `wait` returns at once.
                if let Ok(status) = self.child.wait() {
                    self.exit = Some(status.into());
                    self.output.finish();
                }
                return self.exit;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            let left = deadline - now;
            let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
        }
    }

    /// Kills and reaps.
    pub(crate) fn kill_and_reap(&mut self) -> Option<Exit> {
        self.kill();
        self.reap(Duration::from_secs(5))
    }

    /// The last output of the child so far.
    pub(crate) fn output_tail(&self) -> crate::OutputTail {
        self.output.tail()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.kill_and_reap().is_none() {
            tracing::error!(pid = self.pid(), "worker did not die within 5 s of SIGKILL");
        }
        self.output.stop();
    }
}
