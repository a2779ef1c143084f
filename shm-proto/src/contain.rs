//! Containing a worker's whole process tree (Linux), and the worker-side
//! spawn options (own process group, resource limits) of [`ChildFds`].
//!
//! # The shim
//!
//! With [`ChildFds::contain_tree`], the process `Command::spawn` forks does
//! not exec. Inside the `pre_exec` hook it becomes a tiny *subreaper shim*
//! P, forks the worker W, and W returns to std, which execs the program. The
//! supervisor's own process never becomes a subreaper; P is one, so every
//! descendant of W that is orphaned (a double fork, a `setsid` daemon)
//! reparents to P instead of escaping to init. The protocol:
//!
//! - The spawned [`std::process::Child`]'s pid is P's. W is P's first
//!   child: [`shim_worker_pid`] finds it (to sample its memory or signal it).
//!   `Command::spawn` returns once W has exec'd, and reports a failed exec
//!   of W as usual: W itself inherits std's error-report pipe (P closes its
//!   copy), so a missing program is still an `Err` from `spawn`.
//! - SIGTERM (or SIGINT, SIGHUP, SIGQUIT) to P kills the whole tree: P
//!   SIGKILLs W, then every other descendant, then exits.
//! - When W exits on its own, P SIGKILLs every remaining descendant.
//! - P exits only after every descendant is dead and reaped, so P's pidfd
//!   becoming readable means the whole tree is gone.
//! - P's exit status mirrors W's: W's exit code, or death by W's signal
//!   (P re-raises it with core dumps off); a tree stopped through P ends
//!   "killed by SIGKILL", because that is how W died.
//! - With [`ChildFds::die_with_parent`], P gets SIGTERM when the spawning
//!   thread exits (and takes the tree down); W always gets SIGKILL when P
//!   dies.
//! - P holds no fds (so a pipe to W's stdout ends with the tree), has `/` as
//!   its working directory, blocks every signal from the hook on (no handler
//!   of the host runs in P once it is the shim) and runs with `RLIMIT_CORE` 0.
//! - P is a fork of the host that never execs, so it lets go of the host's
//!   memory: it unmaps every shared mapping (a ring the host drops is
//!   freed) and drops its copy-on-write references to the host's private
//!   anonymous memory (heap, buffers, other threads' stacks), keeping only
//!   file-backed mappings and windows around the stack it runs on and its
//!   thread's TLS block.
//!   Otherwise each shim would keep the old copy of every page the host
//!   writes after the spawn.
//!
//! Limits: SIGKILL to P (for example `Child::kill`) kills W through its
//! parent-death signal but skips the clean-up, so W's descendants escape;
//! stop a contained tree with SIGTERM to P, and escalate by SIGKILL to W,
//! never to P. What P keeps of the host's private memory (written pages of
//! file-backed mappings such as `.data`, the spawning thread's stack) stays
//! pinned while P lives. P must not touch the memory it let go of: it runs
//! only this module's code and libc's syscall wrappers, each called once
//! before the release so that lazy binding cannot need the host's heap
//! later; thread-locals of a `dlopen`ed module other than libc's errno
//! would be out of reach, and none is used. Hooks installed on the
//! `Command` after [`ChildFds::apply`] run only in W; hooks before it and
//! std's own child set-up (stdio, `process_group`, `current_dir`) run in P
//! and are inherited by W.
//!
//! Where the kernel lacks `PR_SET_CHILD_SUBREAPER` or
//! `/proc/thread-self/children` ([`tree_containment_available`]),
//! `contain_tree` degrades to [`ChildFds::own_process_group`]: `kill(-pgid)`
//! then reaches the worker's group, but a descendant that changes its
//! group or session escapes, and nothing waits for descendants.

use std::io;
use std::ptr;
use std::sync::OnceLock;

#[cfg(doc)]
use crate::ChildFds;

/// The children list of the calling thread; P is single-threaded, so it is
/// P's, and orphans reparent to this thread.
const CHILDREN: &std::ffi::CStr = c"/proc/thread-self/children";

/// Signals that ask P to take the tree down.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// A resource limit [`ChildFds::rlimit`] can set in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rlimit {
    /// `RLIMIT_CORE`: the largest core dump, in bytes (0: none).
    Core,
    /// `RLIMIT_DATA`: data segment plus private writable mappings, in bytes.
    Data,
    /// `RLIMIT_AS`: the address space, in bytes.
    AddressSpace,
}

impl Rlimit {
    const ALL: [Rlimit; 3] = [Rlimit::Core, Rlimit::Data, Rlimit::AddressSpace];

    pub(crate) fn index(self) -> usize {
        match self {
            Rlimit::Core => 0,
            Rlimit::Data => 1,
            Rlimit::AddressSpace => 2,
        }
    }
}

/// What is applied in the process that execs the program (W under the
/// shim, else the spawned child itself).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WorkerOptions {
    pub(crate) own_process_group: bool,
    pub(crate) rlimits: [Option<u64>; 3],
}

impl WorkerOptions {
    /// Async-signal-safe: raw syscalls only.
    pub(crate) fn apply(&self) -> io::Result<()> {
        if self.own_process_group {
            // SAFETY: setpgid with integer arguments only.
            if unsafe { libc::setpgid(0, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        for resource in Rlimit::ALL {
            if let Some(value) = self.rlimits[resource.index()] {
                set_limit(resource, value)?;
            }
        }
        Ok(())
    }
}

/// Soft and hard limit both `value`, capped at the current hard limit (an
/// unprivileged process cannot raise it).
fn set_limit(resource: Rlimit, value: u64) -> io::Result<()> {
    let resource = match resource {
        Rlimit::Core => libc::RLIMIT_CORE,
        Rlimit::Data => libc::RLIMIT_DATA,
        Rlimit::AddressSpace => libc::RLIMIT_AS,
    };
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a local.
    if unsafe { libc::getrlimit(resource, &mut current) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let value = libc::rlim_t::try_from(value)
        .unwrap_or(libc::RLIM_INFINITY)
        .min(current.rlim_max);
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads one rlimit through a pointer to a local.
    if unsafe { libc::setrlimit(resource, &limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether [`ChildFds::contain_tree`] can run the subreaper shim here (checked
/// once per process): the kernel knows `PR_SET_CHILD_SUBREAPER` and offers
/// `/proc/thread-self/children`. When it is `false`, `contain_tree` means
/// only "own process group".
pub fn tree_containment_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let mut subreaper: libc::c_int = 0;
        // Both prctl options came in one kernel release; GET leaves the host
        // as it is.
        // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through a pointer to a local.
        let known = unsafe {
            libc::prctl(
                libc::PR_GET_CHILD_SUBREAPER,
                &mut subreaper as *mut libc::c_int,
            )
        } == 0;
        use std::os::unix::ffi::OsStrExt;
        known && std::fs::File::open(std::ffi::OsStr::from_bytes(CHILDREN.to_bytes())).is_ok()
    })
}

/// The worker W under the shim whose pid is `shim_pid` (the spawned
/// `Child`'s id): P's first child, since the kernel lists children in
/// the order they became P's and every other one is a descendant of W. Read
/// it right after `spawn` (W has exec'd by then) and pin it (a pidfd) if it
/// is kept: once P has reaped W, P is tearing the tree down and this returns
/// `None` or a descendant about to be killed. `None` also if `shim_pid` has
/// no children or `/proc` does not say.
pub fn shim_worker_pid(shim_pid: u32) -> Option<u32> {
    let list =
        std::fs::read_to_string(format!("/proc/{shim_pid}/task/{shim_pid}/children")).ok()?;
    list.split_ascii_whitespace().next()?.parse().ok()
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain bit array, for which all zeroes is a value.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset writes through a pointer to a local.
    unsafe { libc::sigemptyset(&mut set) };
    set
}

fn sigset_of(signals: &[libc::c_int]) -> libc::sigset_t {
    let mut set = empty_sigset();
    for &signal in signals {
        // SAFETY: sigaddset writes through a pointer to a local; the numbers are valid signals.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    set
}

/// Runs in the child `Command::spawn` forked, from the `pre_exec` hook,
/// after the fd mappings: becomes the shim P and forks W. Returns only in
/// W (`Ok`, so std execs the program) or, before W exists, with the error
/// that fails the spawn. Async-signal-safe: raw syscalls only, no
/// allocation.
pub(crate) fn become_shim(
    parent: libc::pid_t,
    die_with_parent: bool,
    worker: &WorkerOptions,
    defer_release: bool,
) -> io::Result<()> {
    // An ignored SIGCHLD (SIG_IGN, SA_NOCLDWAIT) would auto-reap W and lose
    // its status; W gets the host's disposition back.
    // SAFETY: sigaction is a plain C struct, for which all zeroes is a value (SIG_DFL, no flags).
    let default: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut host_sigchld: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sigaction reads and writes structs behind pointers to locals.
    if unsafe { libc::sigaction(libc::SIGCHLD, &default, &mut host_sigchld) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // P takes every signal it cares about through sigtimedwait; the host's
    // handlers, copied by fork, must never run in this copy of the host.
    let mut all = empty_sigset();
    // SAFETY: sigfillset writes through a pointer to a local.
    unsafe { libc::sigfillset(&mut all) };
    let mut host_mask = empty_sigset();
    // SAFETY: sigprocmask reads and writes sets behind pointers to locals.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &all, &mut host_mask) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if die_with_parent {
        // SIGTERM, not SIGKILL: the supervisor's death is P's cue to clean up.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    // SAFETY: getpid cannot fail.
    let shim = unsafe { libc::getpid() };
    // libc's fork runs the host's atfork handlers again, as a fork of a
    // single-threaded process: std's fork has just run their child halves
    // in this copy, so no lock in them is held by a thread that is gone.
    // SAFETY: fork in a single-threaded process; both sides go on with raw syscalls only.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: sigaction reads a struct behind a pointer to a local.
            if unsafe { libc::sigaction(libc::SIGCHLD, &host_sigchld, ptr::null_mut()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: sigprocmask reads a set behind a pointer to a local.
            if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &host_mask, ptr::null_mut()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: getppid cannot fail.
            if unsafe { libc::getppid() } != shim {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            worker.apply()
        }
        worker => run_shim(worker, defer_release),
    }
}

/// How long a shim forked from a warm template lets W run before it lets
/// go of the template's memory and fds (see [`run_shim`]).
const RELEASE_AFTER: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 10_000_000,
};

/// P from W's fork on: never returns.
///
/// With `defer_release` (a shim forked from a warm template, where nobody
/// waits for P's fds to close), P first sleeps up to [`RELEASE_AFTER`] (or
/// until W dies or P is told to stop) and only then lets go of the
/// template's memory and closes its fds: on a busy CPU that clean-up would
/// otherwise run before W's first instruction, on the path of the
/// worker's start-up. Until then P shares the template's pages
/// copy-on-write and holds copies of the fds W also holds.
fn run_shim(worker: libc::pid_t, defer_release: bool) -> ! {
    // SAFETY: chdir with a NUL-terminated literal.
    unsafe { libc::chdir(c"/".as_ptr()) };
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads one rlimit through a pointer to a local.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    let mut wake = sigset_of(&STOP_SIGNALS);
    // SAFETY: sigaddset writes through a pointer to a local.
    unsafe { libc::sigaddset(&mut wake, libc::SIGCHLD) };
    let mut status = None;
    if defer_release {
        // SAFETY: sigtimedwait reads a set and a timeout behind pointers to locals; no siginfo.
        let signal = unsafe { libc::sigtimedwait(&wake, ptr::null_mut(), &RELEASE_AFTER) };
        if STOP_SIGNALS.contains(&signal) {
            // W is P's unreaped child, so the pid is still W's.
            // SAFETY: kill with integer arguments only.
            unsafe { libc::kill(worker, libc::SIGKILL) };
        }
    }
    bind_symbols(worker, &mut status);
    unmap_shared();
    release_private_memory();
    // Last: closing std's error-report pipe lets `spawn` return (once W has
    // exec'd, W's copy being close-on-exec), and the spawner may look at
    // the shim's state from then on.
    close_all_fds();

    loop {
        let children_left = reap(worker, &mut status);
        if status.is_some() {
            break;
        }
        if !children_left {
            // Only P reaps W, so this cannot happen; exit like a failed exec.
            exit_now(127);
        }
        // SAFETY: sigtimedwait reads a set behind a pointer to a local; no siginfo, no timeout.
        let signal = unsafe { libc::sigtimedwait(&wake, ptr::null_mut(), ptr::null()) };
        if STOP_SIGNALS.contains(&signal) {
            // W is P's unreaped child, so the pid is still W's.
            // SAFETY: kill with integer arguments only.
            unsafe { libc::kill(worker, libc::SIGKILL) };
        }
    }
    let chld = sigset_of(&[libc::SIGCHLD]);
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    // Orphans reparent to P as their parents die, so each round kills the
    // children P has now, until none is left.
    while reap(worker, &mut status) {
        if kill_children() > 0 {
            let mut ignored = 0;
            // One killed child dying is progress; the next round reaps the rest.
            // SAFETY: waitpid writes a status through a pointer to a local.
            unsafe { libc::waitpid(-1, &mut ignored, libc::__WALL) };
        } else {
            // Children exist but none was listed (one just reparented, or
            // /proc went away): wait a little for one to change state.
            // SAFETY: sigtimedwait reads a set and a timeout behind pointers to locals.
            unsafe { libc::sigtimedwait(&chld, ptr::null_mut(), &pause) };
        }
    }
    exit_like(status.unwrap_or(0))
}

/// Calls, with no effect, each libc function P uses after
/// [`release_private_memory`] and had not called yet, so that a lazily bound
/// symbol is resolved while the host's memory is still there. `reap` may
/// already collect W's status.
fn bind_symbols(worker: libc::pid_t, status: &mut Option<libc::c_int>) {
    reap(worker, status);
    let empty = empty_sigset();
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // None of these changes anything: signal 0, an empty set with a zero
    // timeout, getters, empty ranges.
    // SAFETY: integer arguments or pointers to locals only.
    unsafe {
        libc::kill(worker, 0);
        libc::sigtimedwait(&empty, ptr::null_mut(), &now);
        libc::syscall(libc::SYS_getpid);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        libc::madvise(ptr::null_mut(), 0, libc::MADV_DONTNEED);
        libc::munmap(ptr::null_mut(), 0);
    }
    let _ = io::Error::last_os_error();
}

/// Ends P with `code`, through the raw syscall (bound in [`bind_symbols`]).
fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: exit_group ends the process without running anything of the host.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    // SAFETY: as above; exit_group does not return, so this is never reached.
    unsafe { libc::_exit(code) }
}

/// Reaps every child that has ended, recording W's wait status; returns
/// whether any child is left.
fn reap(worker: libc::pid_t, status: &mut Option<libc::c_int>) -> bool {
    loop {
        let mut wait_status = 0;
        // __WALL: a descendant's clone with another exit signal reparents too.
        // SAFETY: waitpid writes a status through a pointer to a local.
        let pid = unsafe { libc::waitpid(-1, &mut wait_status, libc::WNOHANG | libc::__WALL) };
        if pid > 0 {
            if pid == worker {
                *status = Some(wait_status);
            }
        } else if pid == 0 {
            return true;
        } else if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// SIGKILLs every child listed in P's children file; returns how many. The
/// pids cannot be reused under P: they are its children, and only P reaps
/// them.
fn kill_children() -> usize {
    // SAFETY: open with a NUL-terminated literal path.
    let fd = unsafe { libc::open(CHILDREN.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return 0;
    }
    let mut killed = 0;
    let mut buf = [0u8; 1024];
    let mut pid: libc::pid_t = 0;
    let mut in_number = false;
    let mut kill = |pid: libc::pid_t| {
        // SAFETY: kill with integer arguments only.
        if pid > 0 && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            killed += 1;
        }
    };
    loop {
        // SAFETY: read writes at most buf.len() bytes into the local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        let Ok(n @ 1..) = usize::try_from(n) else {
            break;
        };
        // A pid may straddle two reads, so the number is carried over.
        for &byte in &buf[..n] {
            if byte.is_ascii_digit() {
                pid = pid
                    .saturating_mul(10)
                    .saturating_add(libc::pid_t::from(byte - b'0'));
                in_number = true;
            } else if in_number {
                kill(pid);
                pid = 0;
                in_number = false;
            }
        }
    }
    if in_number {
        kill(pid);
    }
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(fd) };
    killed
}

/// Closes every fd of P (close_range, or a bounded loop where the kernel
/// predates it).
fn close_all_fds() {
    // SAFETY: close_range with integer arguments only; P owns no Rust fd objects.
    let closed = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            0 as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    } == 0;
    if closed {
        return;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a local.
    let bound = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(1 << 20)
    } else {
        1 << 16
    };
    for fd in 0..bound as libc::c_int {
        // SAFETY: close on an fd number; closing an unopened one is EBADF.
        unsafe { libc::close(fd) };
    }
}

/// One line of `/proc/self/maps`, as far as P needs it.
struct Mapping<'a> {
    start: usize,
    end: usize,
    /// `rwxp` or `rwxs`.
    perms: &'a [u8],
    inode: u64,
    /// Truncated for long paths; only compared against short names.
    path: &'a [u8],
}

impl Mapping<'_> {
    fn parse(line: &[u8]) -> Option<Mapping<'_>> {
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let range = fields.next()?;
        let dash = range.iter().position(|&b| b == b'-')?;
        let start = parse_number(&range[..dash], 16)?;
        let end = parse_number(&range[dash + 1..], 16)?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let _device = fields.next()?;
        let inode = parse_number(fields.next()?, 10)? as u64;
        let path = fields.next().unwrap_or(&[]);
        (perms.len() == 4 && start < end).then_some(Mapping {
            start,
            end,
            perms,
            inode,
            path,
        })
    }
}

fn parse_number(digits: &[u8], radix: u32) -> Option<usize> {
    let mut value = 0usize;
    for &digit in digits {
        let digit = (digit as char).to_digit(radix)? as usize;
        value = value.checked_mul(radix as usize)?.checked_add(digit)?;
    }
    Some(value)
}

/// Calls `visit` for each line of `/proc/self/maps` until it returns
/// `false`; `false` if the file cannot be read. Lines are gathered in a
/// stack buffer; a longer line (a long path) is cut, which only shortens its
/// path.
fn for_each_mapping(mut visit: impl FnMut(&Mapping<'_>) -> bool) -> bool {
    // SAFETY: open with a NUL-terminated literal path.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 1024];
    let mut line = [0u8; 256];
    let mut len = 0;
    'read: loop {
        // SAFETY: read writes at most buf.len() bytes into the local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        let Ok(n @ 1..) = usize::try_from(n) else {
            break;
        };
        for &byte in &buf[..n] {
            if byte == b'\n' {
                let more = Mapping::parse(&line[..len]).is_none_or(|m| visit(&m));
                len = 0;
                if !more {
                    break 'read;
                }
            } else if len < line.len() {
                line[len] = byte;
                len += 1;
            }
        }
    }
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(fd) };
    true
}

/// Mappings handled per round: they are collected while the maps file is
/// open and changed only after it is closed, so no read sees a change.
const BATCH: usize = 64;

/// Unmaps every shared mapping P inherited from the host (rings of other
/// workers, memfds, shm segments), so that P does not keep their memory
/// alive after the host drops them. Nothing P runs touches a shared
/// mapping.
fn unmap_shared() {
    for _round in 0..1024 {
        let mut ranges = [(0usize, 0usize); BATCH];
        let mut found = 0;
        let readable = for_each_mapping(|m| {
            if m.perms[3] == b's' {
                ranges[found] = (m.start, m.end);
                found += 1;
            }
            found < BATCH
        });
        for &(start, end) in &ranges[..found] {
            // SAFETY: nothing in P refers into a shared mapping (see above).
            unsafe { libc::munmap(start as *mut libc::c_void, end - start) };
        }
        if !readable || found < BATCH {
            return;
        }
    }
}

/// Drops P's references to the host's private anonymous memory (heap,
/// buffers, other threads' stacks), so that P does not pin a copy of pages
/// the host writes after the spawn. Left alone: file-backed mappings (code,
/// libc's data and relocations), and windows around the stack P runs on
/// and around the block that holds its thread's TLS (errno, the thread
/// control block): the kernel merges adjacent anonymous mappings, so the
/// mapping that holds either may also hold a large buffer of the host (a
/// warm template's state), which is released outside the windows. P must
/// not read anything else of the host's memory afterwards, so the functions
/// it calls from then on have all been called once before (a lazily bound
/// symbol would be resolved through the host's heap).
fn release_private_memory() {
    let marker = 0u8;
    let stack = ptr::addr_of!(marker) as usize;
    // SAFETY: __errno_location has no preconditions; it returns this thread's errno address.
    let errno = unsafe { libc::__errno_location() } as usize;
    // SAFETY: pthread_self has no preconditions; it reads the thread pointer only.
    let thread = unsafe { libc::pthread_self() } as usize;
    // Callers' frames lie above the stack pointer (a thread stack is at
    // most a few MiB); the static TLS blocks lie next to the thread
    // pointer, below it (x86-64) or above it (AArch64).
    let keep = [
        window(stack, KEEP_MARGIN, STACK_ABOVE),
        window(
            errno.min(thread),
            KEEP_MARGIN,
            errno.max(thread) - errno.min(thread) + KEEP_MARGIN,
        ),
    ];
    let mut cursor = 0usize;
    for _round in 0..1024 {
        let mut ranges = [(0usize, 0usize); BATCH];
        let mut found = 0;
        let mut last_end = cursor;
        let mut full = false;
        let readable = for_each_mapping(|m| {
            let anonymous = m.inode == 0 && (m.path.is_empty() || m.path == b"[heap]");
            if m.start >= cursor && anonymous && m.perms.starts_with(b"rw") && m.perms[3] == b'p' {
                if found + 3 > BATCH {
                    full = true;
                    return false;
                }
                found += outside(m.start, m.end, &keep, &mut ranges[found..]);
                last_end = m.end;
            }
            true
        });
        for &(start, end) in &ranges[..found] {
            // MADV_DONTNEED, not munmap: the mapping stays, so a stray read
            // finds zeroes instead of faulting; a locked one is skipped.
            // SAFETY: the range is private anonymous memory outside P's stack and TLS windows, which P no longer reads (see above).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
        if !readable || !full {
            return;
        }
        cursor = last_end;
    }
}

/// Kept below an address of the stack or TLS, and above the TLS block.
const KEEP_MARGIN: usize = 1 << 20;
/// Kept above P's stack pointer: its callers' frames.
const STACK_ABOVE: usize = 16 << 20;

/// `[at - below, at + above)`, page-aligned, saturating.
fn window(at: usize, below: usize, above: usize) -> (usize, usize) {
    const PAGE: usize = 4096;
    let start = at.saturating_sub(below) & !(PAGE - 1);
    let end = at.saturating_add(above).saturating_add(PAGE - 1) & !(PAGE - 1);
    (start, end)
}

/// Writes the parts of `[start, end)` outside both `keep` windows into
/// `out` (at most three); returns how many.
fn outside(
    start: usize,
    end: usize,
    keep: &[(usize, usize); 2],
    out: &mut [(usize, usize)],
) -> usize {
    let (mut a, mut b) = (keep[0], keep[1]);
    if a.0 > b.0 {
        std::mem::swap(&mut a, &mut b);
    }
    let mut count = 0;
    let mut from = start;
    for (keep_start, keep_end) in [a, b] {
        let cut = keep_start.clamp(from, end);
        if cut > from {
            out[count] = (from, cut);
            count += 1;
        }
        from = from.max(keep_end.min(end));
    }
    if end > from {
        out[count] = (from, end);
        count += 1;
    }
    count
}

/// Ends P the way W ended.
fn exit_like(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: sigaction is a plain C struct, for which all zeroes is a value (SIG_DFL).
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        // SIGKILL needs no reset (and refuses one); a signal whose action
        // cannot be reset would run a host handler, so P just exits then.
        let reset = signal == libc::SIGKILL
            // SAFETY: sigaction reads a struct behind a pointer to a local.
            || unsafe { libc::sigaction(signal, &default, ptr::null_mut()) } == 0;
        if reset {
            let only = sigset_of(&[signal]);
            // SAFETY: sigprocmask reads a set behind a pointer to a local.
            unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &only, ptr::null_mut()) };
            // SAFETY: getpid cannot fail; kill with integer arguments only.
            unsafe { libc::kill(libc::getpid(), signal) };
        }
        exit_now(128 + signal);
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    exit_now(code)
}
