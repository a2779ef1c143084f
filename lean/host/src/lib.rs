//! `ringworker-lean-host`: the Lean worker, without Lean.
//!
//! A *Lean worker* is a ringworker child process that hosts the Lean 4
//! runtime in process: it initialises the runtime, imports an environment
//! (a Mathlib-sized import costs tens of seconds and gigabytes), and then
//! serves requests against it, streaming rows through the ring like any
//! other worker. This crate is everything of it that needs no toolchain:
//! the commands and their row shapes, the [`LeanBackend`] trait a Lean
//! runtime implements (`ringworker-lean-runtime`, built only where `lean`
//! is on `PATH`), the wiring of a backend into a worker
//! ([`lean_worker`]) including warm templates, core dumps off, and the
//! `ringworker-lean-worker` binary with the [`Unavailable`] backend, which
//! answers its handshake and fails every Lean command with the typed
//! command error [`RUNTIME_MISSING`].
//!
//! # Commands and rows
//!
//! | command | request | row (stream 0, UTF-8 JSON) | summary |
//! | --- | --- | --- | --- |
//! | [`DECLS`] `decls` | [`DeclsRequest`]: constant `k` (environment order) is in the shard iff `k % shard_count == shard_index` | [`DeclRow`], one per constant of the shard, `line` and `record` 0; the lean4export workload's row, so both feed the same Parquet writer; [`decode_decl_row`] | [`DeclsSummary`] |
//! | [`ATTEMPT_PROOFS`] `attempt-proofs` | [`AttemptProofsRequest`]: candidates ([`ProofCandidate`]: id, goal, proof), `max_heartbeats`, `timeout_ms` | [`ProofResult`], one per candidate in order: the `synthetic-proofs` row | [`ProofSummary`] |
//!
//! The rows are specified by their bytes because a real backend lets Lean
//! write them (through `ringworker-lean-abi`'s C functions); the contracts
//! [`Decls`] and [`AttemptProofs`] give a supervisor the types to decode
//! them with (`Worker::run_typed::<Decls>`). Started by
//! [`lean_worker_main`], a worker also serves `core-dumps` ([`CoreDumps`]).
//!
//! # Map of the crate
//!
//! | module | concept |
//! | --- | --- |
//! | [`commands`] | names, request and summary types, the contracts, [`decode_decl_row`] and [`RowError`] |
//! | [`backend`] | [`LeanBackend`], [`BackendError`] and its kinds, [`Unavailable`], [`RUNTIME_MISSING`] |
//! | [`worker`](mod@worker) | [`lean_worker`]: a backend wired into a `ChildRuntime`; [`lean_worker_main`] |
//! | [`core_dumps`](mod@core_dumps) | [`suppress_core_dumps`], [`core_dump_state`], the `core-dumps` command |
//!
//! Layering: `commands` knows the row shapes only; `backend` the commands;
//! `worker` ties a backend to `ringworker-child`'s hooks (start-up step,
//! worker start, fork guard); `core_dumps` stands alone. Nothing here is
//! `unsafe`: the Lean FFI lives in the runtime crate, behind the trait.
//!
//! # Warm templates
//!
//! With the supervisor's `WorkerConfig::with_template(true)` one template
//! process per start-up runs [`LeanBackend::start`] (runtime initialised,
//! environment imported, task manager *not* started) and forks every
//! worker from that state: a restart costs a fork, and N workers share the
//! imported environment's pages. Each forked worker runs
//! [`LeanBackend::worker_start`] (which starts its own task manager)
//! before its handshake. An exec'd worker runs `start` and then
//! `worker_start` itself.
//!
//! # Fork-time conditions
//!
//! What must hold when the template forks, and why:
//!
//! 1. **The process is single-threaded.** A fork copies only the calling
//!    thread. A lock another thread held at that moment (the allocator's,
//!    Lean's task manager queue mutex, a stdio lock) stays locked forever
//!    in the child, whose first allocation or task then deadlocks; the
//!    template's raw clone runs no `pthread_atfork` handlers either.
//! 2. **Lean's task manager has not been started.** It owns worker threads
//!    and a queue; in the child its threads do not exist but its state says
//!    they do, so a task queued there never runs and finalisation joins
//!    threads that are not there. Start it in `worker_start`, after the
//!    fork.
//! 3. **No Lean `Task` is pending or running.** Its closure and promise
//!    live in the queue or on a thread the child does not have: its result
//!    never comes. (Without a task manager Lean runs `Task.spawn` inline,
//!    so this follows from 2 unless the start-up step bypassed it.)
//! 4. **No libuv loop or timer thread has been started** (Lean's
//!    asynchronous I/O, `IO.sleep` timers): the loop's thread is gone in
//!    the child and its epoll and event fds would be shared by the template
//!    and every child.
//! 5. **The environment is fully imported and its objects are in memory.**
//!    They are shared copy-on-write: nothing is loaded lazily after the
//!    fork (each child would redo it and hold a private copy). A
//!    reference-count write to a shared object unshares its page, so the
//!    template should mark the imported objects persistent (Lean's
//!    `lean_mark_persistent`, as an environment imported to be kept for the
//!    process's life is) when Lean allows it: persistent objects' counts
//!    are never written.
//! 6. **stdio is flushed.** Buffered output would be written twice, once by
//!    each process. The worker runtime flushes Rust's stdout and stderr
//!    before each fork; C `stdio` and Lean's own stream buffers are the
//!    backend's to flush in `start`.
//!
//! (Plus the runtime's rules for every template, see
//! `ChildRuntime::startup`: no fds it expects to own, nothing per-process.)
//!
//! What is checked before each fork: 1 by the runtime's thread count
//! (`/proc/self/task`; a refusal is the supervisor's
//! `Error::Template { class: MultiThreaded }`), and 2 by
//! [`LeanBackend::fork_check`], the template's fork guard, from the flag
//! the backend keeps when it starts the task manager (a refusal is
//! `Error::Template { class: ForkGuard }` with the backend's reason; the
//! template stays). A backend should refuse there for 3 and 4 as well when
//! it can tell; 3 to 6 are otherwise the backend's duty, not checked.
//!
//! # Core dumps
//!
//! [`lean_worker_main`] calls [`suppress_core_dumps`] first: a worker
//! killed by a signal must not write a core of the size of the imported
//! environment, nor be held by a core-dump handler (a pipe `core_pattern`)
//! for tens of seconds before the supervisor learns of its death.
#![forbid(unsafe_code)]

pub mod backend;
pub mod commands;
pub mod core_dumps;
pub mod worker;

pub use backend::{BackendError, BackendErrorKind, LeanBackend, RUNTIME_MISSING, Unavailable};
pub use commands::{
    ATTEMPT_PROOFS, AttemptProofs, AttemptProofsRequest, DECLS, Decls, DeclsRequest, DeclsSummary,
    ProofCandidate, RowError, RowErrorKind, decode_decl_row,
};
pub use core_dumps::{CoreDumpState, CoreDumps, core_dump_state, suppress_core_dumps};
pub use ringworker_child::builtins::proofs::{ProofResult, ProofSummary};
pub use ringworker_lean::DeclRow;
pub use worker::{lean_worker, lean_worker_main};
