//! The built-in worker: `ringworker __serve` (hidden), the child every
//! command starts unless `--child` names another. It serves the
//! `ringworker-child` built-ins (`synthetic`, `echo`, ...) and the
//! workloads of this crate (`export-decls`).

use std::process::ExitCode;

use ringworker_child::{ChildRuntime, builtins};

use crate::export;

/// The hidden subcommand that makes this binary a worker.
pub const SERVE: &str = "__serve";

/// The worker's command registry.
pub fn runtime() -> ChildRuntime {
    builtins::register(ChildRuntime::new("ringworker", env!("CARGO_PKG_VERSION"))).command(
        export::command::NAME,
        "rows of a lean4export file (a shard's, a worker's parts), in the wire form of ringworker-lean",
        export::command::run,
    )
}

/// Serves requests until the supervisor says stop.
pub fn serve() -> ExitCode {
    match runtime().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringworker worker: {err}");
            ExitCode::from(2)
        }
    }
}

/// The config of a built-in worker: this executable with [`SERVE`].
pub fn config() -> Result<ringworker::WorkerConfig, std::io::Error> {
    let exe = std::env::current_exe()?;
    Ok(ringworker::WorkerConfig::new(exe).with_args([SERVE]))
}
