//! The commands of the `ringworker-child` binary: synthetic rows for
//! benchmarks, echo, and fault injection for the supervisor's tests. Their
//! request and summary types are public so supervisors can build requests
//! and verify what they receive.

pub mod echo;
pub mod faults;
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
        .command(
            "fault",
            "misbehaves on purpose (exit, panic, abort, kill, hang, floods, corruption) for tests",
            faults::run,
        )
}
