//! Passing fds to a child by inheritance onto fixed numbers, and taking them
//! over in the child.
//!
//! The ring's memfd (and later the control socket) must reach the child as a
//! known fd number and nothing else may leak into it: every fd ringworker
//! creates is `O_CLOEXEC`, and [`ChildFds`] duplicates just the chosen ones
//! onto their target numbers between `fork` and `exec`. The same hook sets
//! the worker's process group and resource limits and, with
//! [`ChildFds::contain_tree`], turns the forked child into the subreaper
//! shim of `contain` that holds the worker's whole process tree.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

use crate::contain::{self, Rlimit, WorkerOptions};

/// Fd number on which a child finds its ring's memfd.
pub const RING_FD: RawFd = 3;
/// Fd number on which a child finds its control channel.
pub const CONTROL_FD: RawFd = 4;

/// Sources are first moved above this number so that no source is
/// overwritten by another's target.
const SCRATCH_FD_BASE: RawFd = 64;

/// Fds to place in a child at fixed numbers, plus the parent-death signal,
/// the worker's process group and resource limits, and containment of its
/// process tree. The defaults change nothing but the mapped fds.
#[derive(Debug, Default, Clone)]
pub struct ChildFds {
    mappings: Vec<(RawFd, RawFd)>,
    die_with_parent: bool,
    contain_tree: bool,
    worker: WorkerOptions,
}

impl ChildFds {
    /// No fds, no death signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `fd` at `target` in the child. `fd` must stay open until the
    /// command is spawned.
    pub fn map(mut self, fd: BorrowedFd<'_>, target: RawFd) -> Self {
        self.mappings.push((fd.as_raw_fd(), target));
        self
    }

    /// Makes the kernel SIGKILL the child when the spawning *thread* exits
    /// (`PR_SET_PDEATHSIG`), and fails the spawn if the parent already died
    /// between `fork` and `prctl`. Spawn from a thread that lives as long as
    /// the children should. With [`ChildFds::contain_tree`] the shim gets
    /// SIGTERM instead, and takes the whole tree down.
    pub fn die_with_parent(mut self, yes: bool) -> Self {
        self.die_with_parent = yes;
        self
    }

    /// Makes the worker the leader of a new process group (`setpgid(0, 0)`),
    /// so that `kill(-pgid)` reaches it and the descendants that stay in its
    /// group.
    pub fn own_process_group(mut self, yes: bool) -> Self {
        self.worker.own_process_group = yes;
        self
    }

    /// Sets `resource` in the worker (not in the shim, see
    /// [`ChildFds::contain_tree`]): soft and hard limit both `value`, capped
    /// at the inherited hard limit, which an unprivileged worker cannot
    /// raise. `None` undoes an earlier call: the worker keeps the inherited
    /// limits.
    pub fn rlimit(mut self, resource: Rlimit, value: Option<u64>) -> Self {
        self.worker.rlimits[resource.index()] = value;
        self
    }

    /// Contains the worker's whole process tree (Linux) in a subreaper shim
    /// between the supervisor and the worker: the spawned `Child` is the
    /// shim, SIGTERM to it kills the tree, it exits only after every
    /// descendant is dead and reaped, and its exit status mirrors the
    /// worker's; [`shim_worker_pid`](crate::shim_worker_pid) finds the
    /// worker. The protocol and its limits: [`crate::contain`]. Where
    /// [`tree_containment_available`](crate::tree_containment_available) is
    /// `false`, this means [`ChildFds::own_process_group`] only.
    pub fn contain_tree(mut self, yes: bool) -> Self {
        self.contain_tree = yes;
        self
    }

    /// Installs the `pre_exec` hook on `command`.
    pub fn apply(self, command: &mut Command) {
        let parent = std::process::id() as libc::pid_t;
        let ChildFds {
            mappings,
            die_with_parent,
            contain_tree,
            mut worker,
        } = self;
        // Decided here, in the parent: the check allocates and is cached.
        let shim = contain_tree && contain::tree_containment_available();
        if contain_tree && !shim {
            worker.own_process_group = true;
        }
        let hook = move || -> io::Result<()> {
            // Only async-signal-safe calls from here on: raw syscalls, no
            // allocation (`mappings` was allocated before fork), no locks.
            let mut scratch = [0 as RawFd; 16];
            if mappings.len() > scratch.len() {
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            for (i, &(source, _)) in mappings.iter().enumerate() {
                // SAFETY: plain fcntl on an fd number; failure is reported.
                let dup = unsafe { libc::fcntl(source, libc::F_DUPFD_CLOEXEC, SCRATCH_FD_BASE) };
                if dup < 0 {
                    return Err(io::Error::last_os_error());
                }
                scratch[i] = dup;
            }
            for (i, &(_, target)) in mappings.iter().enumerate() {
                // The new fd has no CLOEXEC, so it survives exec, while the
                // scratch copy does not.
                // SAFETY: dup2 of an fd we just duplicated onto a fixed number.
                if unsafe { libc::dup2(scratch[i], target) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if shim {
                // Returns only in the worker, or with an error before it exists.
                return contain::become_shim(parent, die_with_parent, &worker, false);
            }
            if die_with_parent {
                // SAFETY: prctl with integer arguments only.
                if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) }
                    < 0
                {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: getppid cannot fail.
                if unsafe { libc::getppid() } != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            worker.apply()
        };
        // SAFETY: the hook makes only async-signal-safe calls, without allocating or locking.
        unsafe { command.pre_exec(hook) };
    }
}

/// Fd numbers already taken over in this process (each may be taken once).
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of an fd this process inherited at `fd` (e.g.
/// [`RING_FD`]), marking it close-on-exec so it does not leak further. Fails
/// if the fd is not open or was already taken.
pub fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("inherited fd {fd} was already taken"),
        ));
    }
    // SAFETY: F_GETFD on an arbitrary number only reports whether it is open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("fd {fd} was not inherited: {}", io::Error::last_os_error()),
        ));
    }
    // SAFETY: setting FD_CLOEXEC on an open fd.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    taken.push(fd);
    // The fd was inherited rather than opened by any Rust owner here.
    // SAFETY: the fd is open (F_GETFD succeeded) and `TAKEN` makes this its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
