//! The commands of the `ringworker-child` binary: synthetic rows for
//! benchmarks and echo. Their request and summary types are public so
//! supervisors can build requests and verify what they receive.

pub mod echo;
pub mod synthetic;

use crate::ChildRuntime;

/// Registers every built-in command on `worker`.
pub fn register(worker: ChildRuntime) -> ChildRuntime {
    worker
        .command(
            "synthetic",
            "N deterministic rows: fixed/uniform/log-normal sizes, several streams, optional rate and CPU work",
            synthetic::run,
        )
        .command_typed::<echo::Echo>(echo::run)
}
