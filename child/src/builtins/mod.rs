//! The commands of the `ringworker-child` binary: synthetic rows for
//! benchmarks, echo, and (with the `fault-injection` feature) fault
//! injection for the supervisor's tests. Their
//! request and summary types are public so supervisors can build requests
//! and verify what they receive.

pub mod echo;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod synthetic;

use crate::ChildRuntime;

/// Registers every built-in command on `worker`.
///
/// The `fault` command is registered only with the `fault-injection` feature.
pub fn register(worker: ChildRuntime) -> ChildRuntime {
    let worker = worker
        .command(
            "synthetic",
            "N deterministic rows: fixed/uniform/log-normal sizes, several streams, optional rate and CPU work",
            synthetic::run,
        )
        .command_typed::<echo::Echo>(echo::run);
    #[cfg(feature = "fault-injection")]
    let worker = worker.command(
        "fault",
        "misbehaves on purpose (exit, panic, abort, kill, hang, floods, corruption) for tests",
        faults::run,
    );
    worker
}
