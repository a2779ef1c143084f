//! `ringworker-lean-runtime`: the Lean-linked layer of ringworker's Lean
//! worker.
//!
//! With the `runtime` feature, `LeanRuntime` is a
//! [`ringworker_lean_host::LeanBackend`] that hosts the Lean 4 runtime in the
//! worker process: it initializes the runtime once, loads a Lake-built shared
//! library (`lean/lake/`, `lean_lib RingWorker`) by path, runs its module
//! initializer, looks up its `@[export]` entry points, imports an
//! environment, and runs `decls` and `attempt-proofs` with the row-emitting
//! context of `ringworker-lean-abi` installed, so the Lean code's rows go
//! straight into the ring. Without the feature the crate builds and tests
//! everything that needs no Lean (the worker's arguments, the process set-up)
//! and the worker binary serves [`ringworker_lean_host::Unavailable`].
//!
//! # Map
//!
//! | module | what |
//! | --- | --- |
//! | [`config`] | the worker's arguments (`--library`, `--package`, `--import`, `--search-path`), typed errors |
//! | [`process_setup`] | what happens before the runtime starts, while the process is single-threaded: Lean's panic settings in the environment, no core dumps |
//! | `runtime` (feature `runtime`) | `LeanRuntime`: the thin layer over `lean-sys` and `libloading`; the crate's only `unsafe` |
//! | `backend` (feature `runtime`) | `impl LeanBackend for LeanRuntime` |
//! | `src/bin/ringworker-lean-runtime-worker.rs` | the worker: process set-up, then `lean_worker` with `LeanRuntime` (feature on) or `Unavailable` (off) |
//!
//! Layering: `config` and `process_setup` know nothing of Lean's C API;
//! `runtime` turns every call into Lean into a safe method (each `unsafe`
//! block names the `lean.h` fact it relies on); `backend` maps those methods
//! onto the host crate's trait and its `CommandError`s; the binary wires it
//! together. The commands' request, row and summary shapes belong to
//! `ringworker-lean-host`; the C ABI the Lean side emits rows through
//! belongs to `ringworker-lean-abi`.
//!
//! # Its own workspace
//!
//! This crate is **not** a member of the root workspace: it has its own
//! `[workspace]` table and `Cargo.lock`, and the root `Cargo.toml` lists it
//! in `exclude`. `lean-sys`'s build script runs `lean --print-prefix` and
//! panics when `lean` is not on PATH, and `cargo test --workspace
//! --all-features` turns on every feature of every member, so as a member
//! this crate's `runtime` feature would break that command on every machine
//! without Lean. `default-members` cannot prevent it: it only picks what
//! runs when neither `-p` nor `--workspace` is given. As its own workspace,
//! nothing at the root can enable the feature, and the crate is built with
//! `cargo ... --manifest-path lean/runtime/Cargo.toml` (as `.ci/lean-runtime` does).
//!
//! # Linking: one Lean runtime
//!
//! `lean-sys` is pinned to `=0.0.9` with no default features. 0.0.9's
//! `lean-toolchain` is `leanprover/lean4:v4.23.0` (so is `lean/lake/`'s). Its
//! build script finds the toolchain by running `lean --print-prefix` and,
//! without the `static` feature, links `<prefix>/lib/lean/libleanshared.so`
//! dynamically. The Lake-built shared library links `libleanshared` too, so
//! the process holds exactly one Lean runtime (one heap, one set of
//! module-initialized globals, one task manager); a statically linked
//! runtime in the worker plus a `dlopen`ed library linked to
//! `libleanshared` would be two. This crate's `build.rs` adds the rpath to
//! `<prefix>/lib/lean` (a dependency's `rustc-link-arg` does not reach this
//! package's binaries) and exports the ABI's C functions from the worker
//! executable so the library's C shim resolves them at `dlopen`.
//!
//! # Verified here / only where Lean is installed
//!
//! | what | here (no Lean toolchain) | only where `lean` and `lake` are on PATH |
//! | --- | --- | --- |
//! | the C ABI the Lean side calls (`ringworker-lean-abi`), from a C program compiled with `cc`, inside real workers, bad arguments included | `lean/abi/tests/` (root `cargo test`) | |
//! | the Lean worker without Lean (`ringworker-lean-host`): commands, row decoding, template hooks, core dumps off, `lean-runtime-missing` | `lean/host/tests/` (root `cargo test`) | |
//! | argument parsing and its typed errors (`config`) | unit tests | |
//! | process set-up: variable names and values, the check that they are set, core dumps off | unit tests | |
//! | the worker binary without the feature: handshake, `decls` fails with `lean-runtime-missing` | `tests/no_runtime.rs` | |
//! | `runtime.rs`/`backend.rs` type-check against lean-sys 0.0.9's real declarations | `cargo clippy --features runtime` with a stand-in `lean` (`.ci/lean-runtime`, run by `.ci/run`) | |
//! | linking and running the runtime layer | | `tests/runtime.rs` |
//! | the Lake package (`lean/lake/`: Lean code and C shim) compiles | never compiled here | `lake build` |
//! | `decls` of `Init` through the worker, rows to Parquet and back, `Nat.add_succ`/`Nat` checked | | `tests/runtime.rs` |
//! | template fork: shards 0/2 and 1/2 from forked workers equal an exec'd worker's full run; task manager started after the fork | | `tests/runtime.rs` |
//! | `attempt-proofs`: one closed, one failed, one heartbeat-exhausted candidate | | `tests/runtime.rs` |
//!
//! The one command that runs the Lean tests, from the repository root, where
//! Lean v4.23.0 is installed:
//!
//! ```sh
//! (cd lean/lake && lake build) && cargo test --manifest-path lean/runtime/Cargo.toml --features runtime
//! ```
//!
//! # Process set-up and template mode
//!
//! The worker binary, in `main` before any thread exists, sets
//! `LEAN_ABORT_ON_PANIC=1` (a Lean `panic!` aborts the worker instead of
//! returning a default value and going on; the supervisor sees a crash of
//! this worker only) and `LEAN_BACKTRACE=0` (Lean's panic handler would
//! otherwise print a backtrace, which in recent Lean versions calls back
//! into Lean code that a minimal worker may not have initialized), and turns
//! core dumps off ([`process_setup`]). `LeanRuntime::start` refuses to
//! start if the two variables are not set.
//!
//! In template mode (`WorkerConfig::with_template(true)`) the template runs
//! `start` once: initialize the runtime, load the library, import the
//! environment (marked persistent, so forked workers share its pages
//! without reference-count writes), without starting Lean's task manager.
//! Each forked worker then runs `worker_start`, which starts its own task
//! manager, and serves requests. `fork_check` refuses a fork once the task
//! manager runs in the template or before the import has finished.
//!
//! The Lean side (`lean/lake/`) has not been compiled here: no Lean
//! toolchain exists on this machine. It was written against the Lean
//! v4.23.0 API, and its names and signatures (and every `lean_sys` item
//! `runtime.rs` uses) were reviewed against Lean's sources of that period.
//! Later toolchains changed the IO calling convention (lean4 PR #10625, no
//! world argument), which `runtime.rs`, the shim and `lean-sys` 0.0.9
//! assume: the pin is exact. `lean/lake/README.md` lists what to check on
//! the first build with Lean.
#![deny(unsafe_code)]

pub mod config;
pub mod process_setup;

#[cfg(feature = "runtime")]
mod backend;
#[cfg(feature = "runtime")]
mod runtime;

pub use config::{ConfigError, ConfigErrorKind, WorkerArgs};
pub use process_setup::{LEAN_ENVIRONMENT, SetupError, SetupErrorKind};

#[cfg(feature = "runtime")]
pub use backend::{LEAN_BAD_SUMMARY, LEAN_ERROR, LEAN_NOT_STARTED, TRACE_ENV};
#[cfg(feature = "runtime")]
pub use runtime::{LeanRuntime, RuntimeError, RuntimeErrorKind};

/// The worker's name in its handshake.
pub const WORKER_NAME: &str = "ringworker-lean-runtime-worker";
/// The worker's version in its handshake.
pub const WORKER_VERSION: &str = env!("CARGO_PKG_VERSION");
