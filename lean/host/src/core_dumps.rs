//! Core dumps off in a Lean worker, and the `core-dumps` command that
//! reports whether they are.
//!
//! A worker that dies of a signal (a segfault in native code, Lean's
//! `abort` on a panic in a non-`partial` function, a stack overflow) would
//! write a core of gigabytes (the imported environment), and where the
//! host's `core_pattern` pipes cores to a handler (systemd-coredump,
//! apport) the kernel holds the dying process until the handler has read
//! it all: the supervisor's death notice, and so the restart, comes tens of
//! seconds late.

use ringworker_child::{Command, CommandError, TypedRows};
use rustix::process::{DumpableBehavior, Resource, Rlimit};
use serde::{Deserialize, Serialize};

/// Makes this process never dump core: `prctl(PR_SET_DUMPABLE, 0)` and a
/// soft `RLIMIT_CORE` of 0 (the hard limit stays, for a debugging session
/// to raise the soft one again in a process of its own).
///
/// Both, because each misses a case: a `core_pattern` that pipes to a
/// handler ignores `RLIMIT_CORE` (the kernel dumps to the pipe anyway, so
/// only the dumpable flag stops it), and the dumpable flag is reset by
/// `execve` of a set-uid program and does not cover a process that sets it
/// back. Call it first in `main`: a forked worker inherits both from its
/// template.
///
/// Side effect of the flag: `/proc/<pid>/` entries that need ptrace access
/// (`smaps_rollup`, `fd/`, `environ`, `mem`) become root's; `status`,
/// `stat` and `limits`, which the supervisor reads, stay readable. PSS
/// measurements of such a worker need root.
pub fn suppress_core_dumps() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    let current = rustix::process::getrlimit(Resource::Core);
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: current.maximum,
        },
    )?;
    Ok(())
}

/// Whether this process may dump core: what the `core-dumps` command
/// reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreDumpState {
    /// `prctl(PR_GET_DUMPABLE)` is not 0.
    pub dumpable: bool,
    /// The soft `RLIMIT_CORE` in bytes (`None`: unlimited).
    pub core_limit: Option<u64>,
    /// This process's pid.
    pub pid: u32,
}

/// Reads this process's [`CoreDumpState`].
pub fn core_dump_state() -> std::io::Result<CoreDumpState> {
    let dumpable = rustix::process::dumpable_behavior()? != DumpableBehavior::NotDumpable;
    Ok(CoreDumpState {
        dumpable,
        core_limit: rustix::process::getrlimit(Resource::Core).current,
        pid: std::process::id(),
    })
}

/// The `core-dumps` contract: no arguments, no rows, the worker's
/// [`CoreDumpState`] back. Registered by
/// [`lean_worker_main`](crate::lean_worker_main), so a supervisor (or
/// `ringworker run --child ... core-dumps`) can check a deployed worker.
#[derive(Debug, Clone, Copy)]
pub struct CoreDumps;

impl Command for CoreDumps {
    const NAME: &'static str = "core-dumps";
    const DESCRIPTION: &'static str =
        "whether this worker may dump core: PR_GET_DUMPABLE and RLIMIT_CORE";
    type Request = ();
    type Row = ();
    type Summary = CoreDumpState;
}

/// Runs `core-dumps`.
pub fn core_dumps(_: (), _: &mut TypedRows<'_, '_, ()>) -> Result<CoreDumpState, CommandError> {
    core_dump_state().map_err(|e| CommandError::new("prctl", e.to_string()))
}
