//! Warm templates: forking workers from a process that ran an expensive
//! start-up once, and handing each forked worker its own ring, control
//! socket and output pipes over the template's control socket.
//!
//! The protocol (see `ARCHITECTURE.md`, "Warm templates"):
//!
//! - The supervisor starts the template directly (no containment shim) with
//!   [`ENV_TEMPLATE`] set and its control socket on
//!   [`CONTROL_FD`](crate::CONTROL_FD); no ring. The template runs its
//!   start-up step and answers [`TemplateFrame::Ready`], or
//!   [`TemplateFrame::Failed`] and exits.
//! - For each worker the supervisor creates the ring's memfd, a control
//!   socketpair and stdout/stderr pipes as for an exec'd child, and sends a
//!   [`ForkRequest`] with the four fds attached (`SCM_RIGHTS`,
//!   [`send_fork_request`]). The template receives them
//!   ([`recv_fork_request`]), forks ([`fork_worker`]) and answers
//!   [`TemplateFrame::Forked`] with the new pid, or [`TemplateFrame::Refused`].
//! - The fork is a raw `clone(CLONE_PARENT | SIGCHLD)`: the worker is the
//!   supervisor's child, not the template's, so the supervisor's watchdog is
//!   its only reaper, and the pid the template reports stays the worker's
//!   until the supervisor reaps it (which makes `pidfd_open` on it
//!   race-free).
//!
//! Frames are the control channel's (4-byte length, JSON); the fds travel
//! as ancillary data of the request's first byte.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::contain::WorkerOptions;
use crate::control::{self, FrameError, MAX_FRAME_BYTES};

/// Environment variable that starts a worker program as a template (value
/// `1`); set by the supervisor, read by the child runtime.
pub const ENV_TEMPLATE: &str = "RINGWORKER_TEMPLATE";

/// What the supervisor asks the template for: one forked worker, and the
/// values an exec'd worker would find in its environment (a forked worker
/// must not set its environment: `set_var` is unsafe in a process that may
/// have had threads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForkRequest {
    /// The worker's ring generation.
    pub generation: u64,
    /// The supervisor's pid: the forked worker's parent, re-checked after
    /// it set its parent-death signal.
    pub parent_pid: u32,
    /// The per-row limit.
    pub max_row_bytes: u64,
    /// Whether the worker leads its own process group.
    pub own_process_group: bool,
    /// Whether the forked process becomes the worker's subreaper shim
    /// (`contain`) and forks the worker, as an exec'd child's does.
    #[serde(default)]
    pub contain_tree: bool,
    /// `RLIMIT_CORE`, `RLIMIT_DATA`, `RLIMIT_AS` for the worker.
    pub core: Option<u64>,
    /// See `core`.
    pub data: Option<u64>,
    /// See `core`.
    pub address_space: Option<u64>,
}

impl ForkRequest {
    /// A request for worker `generation` of supervisor `parent_pid`, with
    /// its own process group and no resource limits.
    pub fn new(generation: u64, parent_pid: u32, max_row_bytes: u64) -> Self {
        ForkRequest {
            generation,
            parent_pid,
            max_row_bytes,
            own_process_group: true,
            contain_tree: false,
            core: None,
            data: None,
            address_space: None,
        }
    }

    /// Contains the worker's tree in a subreaper shim: the forked process
    /// becomes the shim and forks the worker (see [`fork_worker`]). Pass
    /// `true` only where
    /// [`tree_containment_available`](crate::tree_containment_available).
    pub fn with_contain_tree(mut self, contain: bool) -> Self {
        self.contain_tree = contain;
        self
    }

    /// Sets the worker's resource limits (`None`: inherited).
    pub fn with_rlimits(
        mut self,
        core: Option<u64>,
        data: Option<u64>,
        address_space: Option<u64>,
    ) -> Self {
        self.core = core;
        self.data = data;
        self.address_space = address_space;
        self
    }
}

/// The template's frames to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TemplateFrame {
    /// The start-up step ran; the template waits for fork requests.
    Ready {
        /// The template's pid.
        pid: u32,
    },
    /// The start-up step failed; the template exits.
    Failed {
        /// Its error.
        message: String,
    },
    /// A worker was forked.
    Forked {
        /// Its pid (a child of the supervisor).
        pid: u32,
    },
    /// No worker was forked; the template goes on waiting.
    Refused {
        /// Threads of the template when it had more than one (a fork would
        /// not be safe), else 0.
        threads: u64,
        /// Why.
        reason: String,
        /// The worker program's own fork guard refused (its start-up state
        /// cannot be forked now; `reason` is the guard's), not the thread
        /// count or the kernel. Absent from (and defaulted for) templates
        /// before the guard: an older supervisor sees a refusal with 0
        /// threads, a fork failure with the guard's reason.
        #[serde(default, skip_serializing_if = "is_false")]
        guard: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The fds of one forked worker, received by the template.
#[derive(Debug)]
pub struct WorkerFds {
    /// The ring's memfd.
    pub ring: OwnedFd,
    /// The worker's end of its control socketpair.
    pub control: OwnedFd,
    /// Becomes the worker's fd 1.
    pub stdout: OwnedFd,
    /// Becomes the worker's fd 2.
    pub stderr: OwnedFd,
}

/// Sends `request` with the worker's fds (ring, control, stdout, stderr)
/// over the template's control socket (`MSG_NOSIGNAL`: a dead template is
/// `EPIPE`, not a signal).
pub fn send_fork_request(
    socket: BorrowedFd<'_>,
    request: &ForkRequest,
    fds: [BorrowedFd<'_>; 4],
) -> io::Result<()> {
    let mut frame = Vec::new();
    control::write_frame(&mut frame, request).map_err(io::Error::other)?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    if !ancillary.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("ancillary buffer too small"));
    }
    let mut sent = loop {
        match rustix::net::sendmsg(
            socket,
            &[IoSlice::new(&frame)],
            &mut ancillary,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    while sent < frame.len() {
        match rustix::net::send(socket, &frame[sent..], SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            other => sent += other?,
        }
    }
    Ok(())
}

/// Receives the next fork request and its fds (blocking). `Ok(None)`: the
/// supervisor closed the channel.
pub fn recv_fork_request(socket: BorrowedFd<'_>) -> io::Result<Option<(ForkRequest, WorkerFds)>> {
    // A request is a few hundred bytes; a longer one is read on from the
    // socket (no 64 KiB buffer to allocate and zero for each fork).
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut buf)],
            &mut ancillary,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    if received.bytes == 0 {
        return Ok(None);
    }
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(4);
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let mut reader = io::Read::chain(&buf[..received.bytes], SocketReader(socket));
    let request: ForkRequest =
        control::read_frame(&mut reader, MAX_FRAME_BYTES).map_err(|e| match e {
            FrameError::Io { source } => source,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        })?;
    if fds.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("fork request with {} fds instead of 4", fds.len()),
        ));
    }
    let mut fds = fds.into_iter();
    let mut next = || fds.next().expect("four fds");
    let fds = WorkerFds {
        ring: next(),
        control: next(),
        stdout: next(),
        stderr: next(),
    };
    Ok(Some((request, fds)))
}

struct SocketReader<'a>(BorrowedFd<'a>);

impl io::Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::io::read(self.0, &mut *buf) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }
}

/// Threads of this process (`/proc/self/task`): its link count, which
/// procfs makes 2 plus the threads (one `stat`), or its entries where that
/// does not hold.
pub fn thread_count() -> io::Result<usize> {
    let links = rustix::fs::stat("/proc/self/task")?.st_nlink;
    if links >= 3 {
        return Ok(links as usize - 2);
    }
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Why [`fork_worker`] forked nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The template has more than one thread: a fork would copy locks other
    /// threads may hold (allocator, runtime) into a child without them.
    #[error("the template has {threads} threads; it must be single-threaded to fork")]
    MultiThreaded {
        /// Threads counted.
        threads: usize,
    },
    /// The kernel refused (`EAGAIN`, `ENOMEM`, ...), or `/proc` could not
    /// be read.
    #[error("fork failed: {0}")]
    Os(#[from] io::Error),
}

/// The outcome of [`fork_worker`], in each process.
#[derive(Debug)]
pub enum Forked {
    /// In the template: the worker's pid, and the template's control socket
    /// back.
    Template {
        /// The forked worker (a child of the template's parent).
        pid: u32,
        /// The template's control socket.
        control: OwnedFd,
        /// Holds the forked process back: drop it once the supervisor has
        /// its answer ([`TemplateFrame::Forked`]), not before.
        gate: OwnedFd,
    },
    /// In the forked worker, ready to attach: fd 1 and 2 are its own pipes,
    /// the template's control socket is closed, the parent-death signal is
    /// set and the parent checked, the process group and limits applied.
    Worker {
        /// The ring's memfd.
        ring: OwnedFd,
        /// The worker's control socket.
        control: OwnedFd,
    },
}

/// Forks one worker from this (template) process with
/// `clone(CLONE_PARENT | SIGCHLD)`: the worker is a child of the template's
/// parent, the supervisor. Refuses with [`ForkError::MultiThreaded`] unless
/// this process has exactly one thread. On failure the template's control
/// socket comes back with the error.
///
/// In the worker, before this returns: the template's control socket is
/// closed, `fds.stdout` / `fds.stderr` are placed on fd 1 / 2,
/// `PR_SET_PDEATHSIG` (SIGKILL) is set and the parent re-checked against
/// `request.parent_pid` (a mismatch, or any failure of these steps, ends
/// the worker with exit code 126 before it talks to anyone), then its own
/// process group and resource limits. With
/// [`ForkRequest::contain_tree`] the forked process (the pid reported)
/// becomes the worker's subreaper shim exactly as after `Command::spawn`'s
/// fork in `contain` (parent-death signal SIGTERM, parent re-checked) and
/// forks the worker, which is where this returns; the shim never returns,
/// and lets go of the template's memory and fds. Every other fd of the template is
/// inherited: a template must not keep fds it expects to own.
pub fn fork_worker(
    template: OwnedFd,
    fds: WorkerFds,
    request: &ForkRequest,
) -> Result<Forked, (ForkError, OwnedFd)> {
    let threads = match thread_count() {
        Ok(n) => n,
        Err(e) => return Err((ForkError::Os(e), template)),
    };
    if threads != 1 {
        return Err((ForkError::MultiThreaded { threads }, template));
    }
    // Cached before the fork: the check reads `/proc` once per process.
    crate::tree_containment_available();
    let options = WorkerOptions {
        own_process_group: request.own_process_group,
        rlimits: [request.core, request.data, request.address_space],
    };
    // The forked process waits on this pipe until the template has answered
    // (the template drops the write end): on a busy CPU the new process
    // would otherwise run first, both forks and the worker's start-up
    // included, and the supervisor would learn the pid only when the
    // worker is already waiting for it.
    let (gate_read, gate_write) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(pair) => pair,
        Err(e) => return Err((ForkError::Os(e.into()), template)),
    };
    // SAFETY: this process is single-threaded (counted just above; only this thread could have started another since), so no lock is held by a thread the child lacks.
    let pid = unsafe { raw_fork() };
    match pid {
        -1 => {
            let error = io::Error::last_os_error();
            drop((gate_read, gate_write));
            Err((ForkError::Os(error), template))
        }
        0 => {
            drop((template, gate_write));
            // End of file once the template has answered (or died).
            while let Err(rustix::io::Errno::INTR) = rustix::io::read(&gate_read, &mut [0u8; 1]) {}
            drop(gate_read);
            let contain = request.contain_tree && crate::tree_containment_available();
            // Returns only in the worker (under the shim, if `contain`).
            if let Err(e) = become_worker(
                fds.stdout,
                fds.stderr,
                request.parent_pid,
                contain,
                &options,
            ) {
                eprintln!("ringworker: forked worker set-up failed: {e}");
                std::process::exit(126);
            }
            Ok(Forked::Worker {
                ring: fds.ring,
                control: fds.control,
            })
        }
        pid => {
            drop((fds, gate_read));
            Ok(Forked::Template {
                pid: pid as u32,
                control: template,
                gate: gate_write,
            })
        }
    }
}

/// `clone(CLONE_PARENT | SIGCHLD)` with a null stack: fork semantics (the
/// child runs on a copy of this stack), the child's parent being this
/// process's parent. Returns as `fork` does: the child's pid, 0 in the
/// child, -1 with `errno`.
///
/// # Safety
///
/// The calling process must be single-threaded. The child is a copy of it
/// in which no `pthread_atfork` handler ran: this is sound because no other
/// thread can hold a lock (allocator, stdio, std's) at the moment of the
/// copy. glibc's cached thread id in the child's thread descriptor stays
/// the template's (glibc's `raise`/`abort` ask the kernel; error-checking
/// and recursive pthread mutexes initialised before the fork would see a
/// wrong owner).
unsafe fn raw_fork() -> libc::pid_t {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    let null: libc::c_ulong = 0;
    // SAFETY: clone without CLONE_VM and with a null stack is fork; the caller guarantees a single thread.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, null, null, null, null) };
    ret as libc::pid_t
}

/// The forked worker's first steps (see [`fork_worker`]). With `contain`,
/// this process becomes the subreaper shim P of `contain` (its own process
/// group first, so that stopping the template's group never reaches it),
/// which forks the worker W; only W returns.
fn become_worker(
    stdout: OwnedFd,
    stderr: OwnedFd,
    parent: u32,
    contain: bool,
    options: &WorkerOptions,
) -> io::Result<()> {
    for (fd, target) in [(stdout.as_fd(), 1), (stderr.as_fd(), 2)] {
        // SAFETY: dup2 of an open fd onto the standard fd number it replaces (the template's copy, owned by no Rust value).
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    drop((stdout, stderr));
    if contain {
        // SAFETY: setpgid with integer arguments only.
        if unsafe { libc::setpgid(0, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // P: PR_SET_PDEATHSIG SIGTERM, the parent re-checked, then W forked
        // with SIGKILL as its own, its parent checked, `options` applied.
        return crate::contain::become_shim(parent as libc::pid_t, true, options, true);
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    options.apply()
}

#[cfg(test)]
mod tests {
    use super::TemplateFrame;

    #[test]
    fn a_refusal_without_the_guard_is_the_frame_older_supervisors_read() {
        let threads = TemplateFrame::Refused {
            threads: 3,
            reason: "r".into(),
            guard: false,
        };
        let json = serde_json::to_string(&threads).unwrap();
        assert_eq!(json, r#"{"frame":"refused","threads":3,"reason":"r"}"#);
        assert_eq!(
            serde_json::from_str::<TemplateFrame>(&json).unwrap(),
            threads
        );
        let guard = TemplateFrame::Refused {
            threads: 0,
            reason: "task manager started".into(),
            guard: true,
        };
        let json = serde_json::to_string(&guard).unwrap();
        assert!(json.contains(r#""guard":true"#), "{json}");
        assert_eq!(serde_json::from_str::<TemplateFrame>(&json).unwrap(), guard);
    }
}
