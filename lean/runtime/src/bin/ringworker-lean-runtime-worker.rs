//! The Lean worker: process set-up, then `ringworker_lean_host::lean_worker`
//! with `LeanRuntime` (feature
//! `runtime`) or `ringworker_lean_host::Unavailable` (without it).
//!
//! ```text
//! ringworker-lean-runtime-worker --library PATH [--package NAME]
//!     [--import MOD[,MOD...]] [--search-path DIR]...
//! ```
//!
//! Without the `runtime` feature the arguments are still checked (so a
//! command line that works with the feature is accepted) but no library is
//! loaded, and both commands fail with `lean-runtime-missing`. Exit status
//! 2: bad arguments or a failed set-up; 1: the worker runtime failed.
#![deny(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

use ringworker_lean_runtime::{WORKER_NAME, WORKER_VERSION, WorkerArgs, process_setup};

fn main() -> ExitCode {
    // Single-threaded from here to `serve`: nothing below spawns a thread
    // before the loop ends.
    let settings = process_setup::missing().into_iter().chain(lean_sysroot());
    for (name, value) in settings {
        // SAFETY: `set_var` is unsafe because another thread might read the
        // environment at the same time; this is the first code of `main`,
        // the Rust runtime starts no thread of its own, and none has been
        // spawned yet, so no other thread exists.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(name, value)
        };
    }
    if let Err(err) = process_setup::suppress_core_dumps() {
        eprintln!("{WORKER_NAME}: {err}");
        return ExitCode::from(2);
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let parsed = if args.is_empty() && !cfg!(feature = "runtime") {
        None
    } else {
        match WorkerArgs::parse(args) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                eprintln!("{WORKER_NAME}: {err}");
                return ExitCode::from(2);
            }
        }
    };
    let worker = build(parsed);
    match worker.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{WORKER_NAME}: {err}");
            ExitCode::from(1)
        }
    }
}

/// `LEAN_SYSROOT` for Lean's `findSysroot` (which otherwise runs `lean
/// --print-prefix`): the prefix of the toolchain this worker was linked
/// against, unless the caller set one.
#[cfg(feature = "runtime")]
fn lean_sysroot() -> Option<(&'static str, &'static str)> {
    std::env::var_os("LEAN_SYSROOT")
        .is_none()
        .then_some(("LEAN_SYSROOT", env!("RINGWORKER_LEAN_PREFIX")))
}

/// Without the runtime nothing reads `LEAN_SYSROOT`.
#[cfg(not(feature = "runtime"))]
fn lean_sysroot() -> Option<(&'static str, &'static str)> {
    None
}

#[cfg(feature = "runtime")]
fn build(args: Option<WorkerArgs>) -> ringworker_child::ChildRuntime {
    // `parse` ran (args are required with the feature), so this is `Some`.
    let args = args.unwrap_or_else(|| WorkerArgs::new(""));
    ringworker_lean_host::lean_worker(
        WORKER_NAME,
        WORKER_VERSION,
        ringworker_lean_runtime::LeanRuntime::new(args),
    )
}

#[cfg(not(feature = "runtime"))]
fn build(_args: Option<WorkerArgs>) -> ringworker_child::ChildRuntime {
    ringworker_lean_host::lean_worker(
        WORKER_NAME,
        WORKER_VERSION,
        ringworker_lean_host::Unavailable,
    )
}
