//! The commands of the `ringworker-child` binary: synthetic rows for
//! benchmarks, echo, synthetic proof-candidate checking (with hangs and
//! memory blow-ups), and a start-up step of configurable cost (warm
//! templates) with the command that reads its state. Their request and
//! summary types (and the proofs' row type) are public so supervisors can
//! build requests and verify what they receive.

pub mod echo;
pub mod proofs;
pub mod startup;
pub mod synthetic;

use crate::ChildRuntime;

/// Registers every built-in command on `worker`, and the start-up step the
/// environment asks for (see [`startup`]).
pub fn register(worker: ChildRuntime) -> ChildRuntime {
    startup::apply(worker)
        .command(
            "synthetic",
            "N deterministic rows: fixed/uniform/log-normal sizes, several streams, optional rate and CPU work",
            synthetic::run,
        )
        .command_typed::<echo::Echo>(echo::run)
        .command_typed::<proofs::SyntheticProofs>(proofs::run)
        .command_typed::<startup::StartupStateCommand>(startup::state)
}
