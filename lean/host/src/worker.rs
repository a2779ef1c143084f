//! [`lean_worker`]: a [`ChildRuntime`] serving a [`LeanBackend`], and
//! [`lean_worker_main`], the `main` of a Lean worker binary.

use std::process::ExitCode;
use std::sync::Arc;

use ringworker_child::ChildRuntime;

use crate::backend::LeanBackend;
use crate::commands::{AttemptProofs, Decls};
use crate::core_dumps::{CoreDumps, core_dumps, suppress_core_dumps};

/// A worker named `name` serving `backend`: registers `decls` and
/// `attempt-proofs` by their contracts ([`Decls`], [`AttemptProofs`]: the
/// handshake names their request, row and summary types, so `ringworker
/// doctor` lists them), [`LeanBackend::start`] as the shared start-up step
/// (run once per exec'd worker, or once in a warm template),
/// [`LeanBackend::worker_start`] as the per-worker step and
/// [`LeanBackend::fork_check`] as the template's fork guard.
///
/// A `decls` request whose shard is invalid fails with the runtime's
/// `bad_request` before the backend sees it. A failing `start` or
/// `worker_start` fails the worker's start with the error's message (a
/// typed start-up error on the supervisor's side).
pub fn lean_worker<B: LeanBackend>(name: &str, version: &str, backend: B) -> ChildRuntime {
    let backend = Arc::new(backend);
    let (start, worker_start, guard, decls, proofs) = (
        Arc::clone(&backend),
        Arc::clone(&backend),
        Arc::clone(&backend),
        Arc::clone(&backend),
        backend,
    );
    ChildRuntime::new(name, version)
        .startup(move || start.start())
        .worker_start(move || worker_start.worker_start())
        .fork_guard(move || guard.fork_check())
        .command_typed_raw::<Decls>(move |request, out| {
            request.validate()?;
            decls.decls(&request, out)
        })
        .command_typed_raw::<AttemptProofs>(move |request, out| {
            proofs.attempt_proofs(&request, out)
        })
}

/// The `main` of a Lean worker binary: [`suppress_core_dumps`] first (so a
/// template and every worker forked from it inherit it), then
/// [`lean_worker`] plus the `core-dumps` diagnostic command
/// ([`CoreDumps`]), served until the supervisor is done. Exit status 0
/// after a clean shutdown, 2 (with one line on stderr) when the worker
/// could not serve (not started by a supervisor, a failed start-up).
pub fn lean_worker_main<B: LeanBackend>(name: &str, version: &str, backend: B) -> ExitCode {
    if let Err(err) = suppress_core_dumps() {
        // Not fatal: the supervisor's own RLIMIT_CORE 0 still applies
        // unless it allows core dumps.
        eprintln!("{name}: cannot turn core dumps off: {err}");
    }
    let worker = lean_worker(name, version, backend).command_typed::<CoreDumps>(core_dumps);
    match worker.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::from(2)
        }
    }
}
