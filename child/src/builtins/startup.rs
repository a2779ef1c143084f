//! A start-up step with a configurable cost, for tests and benchmarks of
//! warm templates ([`ChildRuntime::startup`](crate::ChildRuntime::startup)),
//! chosen by environment, and the `startup_state` command that reads what
//! it built.
//!
//! - [`ENV_STARTUP_MS`]: sleep this long (the import's latency).
//! - [`ENV_STARTUP_MIB`]: allocate and write this many MiB of deterministic,
//!   read-mostly state (the imported environment).
//! - [`ENV_STARTUP_THREAD`] (`1`): start a thread and keep it (a template
//!   that must be refused).
//! - [`ENV_STARTUP_FAIL_IF`]: a path; the step fails while it exists.
//! - [`ENV_STARTUP_COUNTER`]: a path; the step appends its pid there, once
//!   per run of the step.
//!
//! Without any of them no start-up step is declared. Independently, for
//! the per-worker hooks:
//!
//! - [`ENV_WORKER_START_COUNTER`]: a path; a
//!   [`ChildRuntime::worker_start`](crate::ChildRuntime::worker_start) step
//!   appends its pid there (and `startup_state` reports it).
//! - [`ENV_WORKER_START_FAIL_IF`]: a path; that step fails while it exists.
//! - [`ENV_FORK_GUARD_REFUSE_IF`]: a path; a
//!   [`ChildRuntime::fork_guard`](crate::ChildRuntime::fork_guard) refuses
//!   every fork while it exists, naming it.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ChildRuntime, Command, CommandError, TypedRows};

/// Milliseconds the start-up step sleeps.
pub const ENV_STARTUP_MS: &str = "RINGWORKER_STARTUP_MS";
/// MiB of state the start-up step writes.
pub const ENV_STARTUP_MIB: &str = "RINGWORKER_STARTUP_MIB";
/// `1`: the start-up step leaves a thread running.
pub const ENV_STARTUP_THREAD: &str = "RINGWORKER_STARTUP_THREAD";
/// A path: the start-up step fails while it exists.
pub const ENV_STARTUP_FAIL_IF: &str = "RINGWORKER_STARTUP_FAIL_IF";
/// A path the start-up step appends its pid to.
pub const ENV_STARTUP_COUNTER: &str = "RINGWORKER_STARTUP_COUNTER";
/// A path the worker-start step appends its pid to.
pub const ENV_WORKER_START_COUNTER: &str = "RINGWORKER_WORKER_START_COUNTER";
/// A path: the worker-start step fails while it exists.
pub const ENV_WORKER_START_FAIL_IF: &str = "RINGWORKER_WORKER_START_FAIL_IF";
/// A path: the fork guard refuses while it exists.
pub const ENV_FORK_GUARD_REFUSE_IF: &str = "RINGWORKER_FORK_GUARD_REFUSE_IF";

struct State {
    pid: u32,
    data: Vec<u8>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// The pid of the process that ran the worker-start step.
static WORKER_START: OnceLock<u32> = OnceLock::new();

/// Declares the start-up step, worker-start step and fork guard the
/// environment asks for, if any.
pub fn apply(worker: ChildRuntime) -> ChildRuntime {
    let worker = apply_startup(worker);
    let set = |k| std::env::var_os(k).is_some();
    let worker = if set(ENV_WORKER_START_COUNTER) || set(ENV_WORKER_START_FAIL_IF) {
        worker.worker_start(worker_start)
    } else {
        worker
    };
    match std::env::var_os(ENV_FORK_GUARD_REFUSE_IF) {
        Some(path) => worker.fork_guard(move || {
            if std::path::Path::new(&path).exists() {
                Err(format!("{} exists", path.to_string_lossy()))
            } else {
                Ok(())
            }
        }),
        None => worker,
    }
}

/// The worker-start step: fails while [`ENV_WORKER_START_FAIL_IF`] exists,
/// else appends this pid to [`ENV_WORKER_START_COUNTER`] and remembers it.
pub fn worker_start() -> Result<(), String> {
    if let Some(path) = std::env::var_os(ENV_WORKER_START_FAIL_IF)
        && std::path::Path::new(&path).exists()
    {
        return Err(format!("{} exists", path.to_string_lossy()));
    }
    if let Some(path) = std::env::var_os(ENV_WORKER_START_COUNTER) {
        append_pid(&path)?;
    }
    let _ = WORKER_START.set(std::process::id());
    Ok(())
}

fn append_pid(path: &std::ffi::OsStr) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    writeln!(file, "{}", std::process::id()).map_err(|e| e.to_string())
}

fn apply_startup(worker: ChildRuntime) -> ChildRuntime {
    let any = [
        ENV_STARTUP_MS,
        ENV_STARTUP_MIB,
        ENV_STARTUP_THREAD,
        ENV_STARTUP_FAIL_IF,
        ENV_STARTUP_COUNTER,
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some());
    if any { worker.startup(run) } else { worker }
}

fn env_u64(key: &str) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The step itself.
pub fn run() -> Result<(), String> {
    if let Some(path) = std::env::var_os(ENV_STARTUP_FAIL_IF)
        && std::path::Path::new(&path).exists()
    {
        return Err(format!("{} exists", path.to_string_lossy()));
    }
    if let Some(path) = std::env::var_os(ENV_STARTUP_COUNTER) {
        append_pid(&path)?;
    }
    let ms = env_u64(ENV_STARTUP_MS);
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let bytes = (env_u64(ENV_STARTUP_MIB) << 20) as usize;
    let mut data = vec![0u8; bytes];
    for (i, word) in data.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&pattern(i as u64).to_le_bytes());
    }
    let _ = STATE.set(State {
        pid: std::process::id(),
        data,
    });
    if std::env::var_os(ENV_STARTUP_THREAD).is_some_and(|v| v == "1") {
        std::thread::Builder::new()
            .name("startup-helper".into())
            .spawn(|| {
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn pattern(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7)
}

/// The checksum [`StartupState::checksum`] must have for `mib` MiB of state.
pub fn expected_checksum(mib: u64) -> u64 {
    let words = (mib << 20) / 8;
    (0..words).fold(0u64, |sum, i| sum.wrapping_add(pattern(i)))
}

/// The `startup_state` command's contract: reads the start-up step's state.
#[derive(Debug, Clone, Copy)]
pub struct StartupStateCommand;

impl Command for StartupStateCommand {
    const NAME: &'static str = "startup_state";
    const DESCRIPTION: &'static str = "what the start-up step built: its pid, size, checksum";
    type Request = ();
    type Row = ();
    type Summary = StartupState;
}

/// Summary of `startup_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StartupState {
    /// Pid of the process that ran the start-up step (the template's, in a
    /// forked worker), if it ran.
    pub startup_pid: Option<u32>,
    /// This worker's pid.
    pub pid: u32,
    /// MiB of state.
    pub mib: u64,
    /// Wrapping sum of the state's little-endian u64 words.
    pub checksum: u64,
    /// Pid of the process that ran the worker-start step, if it ran (it is
    /// never the template's: the step runs after the fork).
    #[serde(default)]
    pub worker_start_pid: Option<u32>,
}

/// Runs `startup_state`.
pub fn state(_: (), _: &mut TypedRows<'_, '_, ()>) -> Result<StartupState, CommandError> {
    let (startup_pid, mib, checksum) = match STATE.get() {
        Some(state) => (
            Some(state.pid),
            (state.data.len() >> 20) as u64,
            state.data.chunks_exact(8).fold(0u64, |sum, w| {
                sum.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")))
            }),
        ),
        None => (None, 0, 0),
    };
    Ok(StartupState {
        startup_pid,
        pid: std::process::id(),
        mib,
        checksum,
        worker_start_pid: WORKER_START.get().copied(),
    })
}
