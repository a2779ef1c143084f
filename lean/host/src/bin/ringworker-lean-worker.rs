//! `ringworker-lean-worker`: the Lean worker of this build. Built without
//! the Lean runtime (the default: no toolchain is needed), it answers its
//! handshake, lists `decls` and `attempt-proofs` with their types, and
//! fails both with the command error `lean-runtime-missing`. Core dumps are
//! turned off before anything else. Started by a ringworker supervisor
//! (`ringworker run --child ringworker-lean-worker decls ...`), never by
//! hand.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ringworker_lean_host::{Unavailable, lean_worker_main};

fn main() -> ExitCode {
    // `lean_worker_main` calls `suppress_core_dumps` before anything else.
    lean_worker_main(
        "ringworker-lean-worker",
        env!("CARGO_PKG_VERSION"),
        Unavailable,
    )
}
