//! Errors of the worker side: the runtime's own, and a command's typed failure.

use shm_proto::control::FrameError;
use shm_proto::payload::{FailureCode, RuntimeCode, WorkerFailure};
use shm_proto::{ErrorKind, RingError};

/// Why the worker runtime stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// An inherited fd (ring or control channel) is missing: the process was
    /// not started by a ringworker supervisor.
    #[error("fd {fd} was not inherited ({source}); start this worker from a ringworker supervisor")]
    MissingFd {
        /// The fd number.
        fd: i32,
        /// Why taking it failed.
        #[source]
        source: std::io::Error,
    },
    /// The ring could not be attached or was found unusable.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// The control channel failed.
    #[error("control channel: {0}")]
    Control(#[from] FrameError),
    /// The start-up step ([`ChildRuntime::startup`](crate::ChildRuntime::startup)) failed.
    #[error("start-up failed: {message}")]
    Startup {
        /// Its error.
        message: String,
    },
    /// The per-worker start-up step
    /// ([`ChildRuntime::worker_start`](crate::ChildRuntime::worker_start))
    /// failed.
    #[error("worker start failed: {message}")]
    WorkerStart {
        /// Its error.
        message: String,
    },
    /// The parent died before the worker could register for its death signal.
    #[error("parent process {expected} is gone")]
    Orphaned {
        /// The pid the worker expected as parent.
        expected: u32,
    },
}

impl ChildError {
    /// Classifies this error, in the classes of the ring's and the control
    /// channel's errors (re-exported as [`ErrorKind`](crate::ErrorKind)).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ChildError::MissingFd { .. } => ErrorKind::Usage,
            ChildError::Ring(err) => err.kind(),
            ChildError::Control(err) => err.kind(),
            ChildError::Orphaned { .. } => ErrorKind::Closed,
            ChildError::Startup { .. } | ChildError::WorkerStart { .. } => ErrorKind::Usage,
        }
    }
}

/// A request's failure: a machine-readable code and a message. Sent to the
/// supervisor in the request's end marker, after every row of the request.
///
/// Commands make their own codes with [`CommandError::new`]; those travel as
/// [`FailureCode::Command`] and can never be taken for a runtime failure,
/// whatever the string. Runtime codes come from the runtime (a caught panic,
/// an unknown command, a cancellation the command saw through the ring) or
/// from the few constructors offered for them, such as
/// [`CommandError::bad_request`]. The fields are private so no command can
/// claim the runtime caught a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CommandError {
    code: FailureCode,
    message: String,
}

impl CommandError {
    /// A failure with the command's own `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: FailureCode::Command(code.into()),
            message: message.into(),
        }
    }

    pub(crate) fn runtime(code: RuntimeCode, message: impl Into<String>) -> Self {
        CommandError {
            code: FailureCode::Runtime(code),
            message: message.into(),
        }
    }

    /// The request's arguments were not acceptable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::runtime(RuntimeCode::BadRequest, message)
    }

    /// The command stopped because the supervisor cancelled the request.
    /// Only for the runtime and the built-in commands, after they saw the
    /// request's cancel flag: commands get it from
    /// [`check_cancelled`](crate::check_cancelled) or from a write that found the flag set, so
    /// a child never reports a cancellation nobody asked for.
    pub(crate) fn cancelled() -> Self {
        Self::runtime(
            RuntimeCode::Cancelled,
            "request cancelled by the supervisor",
        )
    }

    /// The code.
    pub fn code(&self) -> &FailureCode {
        &self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn into_failure(self) -> WorkerFailure {
        WorkerFailure::new(self.code, self.message)
    }
}

impl From<RingError> for CommandError {
    fn from(err: RingError) -> Self {
        match err {
            RingError::Cancelled { .. } => CommandError::cancelled(),
            RingError::RecordTooLarge { .. } => {
                Self::runtime(RuntimeCode::RecordTooLarge, err.to_string())
            }
            RingError::RowTooLarge { .. } => {
                Self::runtime(RuntimeCode::RowTooLarge, err.to_string())
            }
            other => Self::runtime(RuntimeCode::Ring, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_codes_never_become_runtime_codes() {
        for name in ["panic", "cancelled", "bad_request"] {
            let err = CommandError::new(name, "m");
            assert_eq!(*err.code(), FailureCode::Command(name.into()));
            assert_eq!(err.into_failure().code, FailureCode::Command(name.into()));
        }
        assert_eq!(
            *CommandError::bad_request("m").code(),
            FailureCode::Runtime(RuntimeCode::BadRequest)
        );
    }

    #[test]
    fn ring_errors_map_to_runtime_codes() {
        let code = |err: RingError| CommandError::from(err).code().clone();
        assert_eq!(
            code(RingError::Cancelled { request: 3 }),
            FailureCode::Runtime(RuntimeCode::Cancelled)
        );
        assert_eq!(
            code(RingError::RecordTooLarge { len: 9, max: 8 }),
            FailureCode::Runtime(RuntimeCode::RecordTooLarge)
        );
        assert_eq!(
            code(RingError::Closed {
                by: shm_proto::ClosedBy::Consumer
            }),
            FailureCode::Runtime(RuntimeCode::Ring)
        );
    }

    #[test]
    fn child_errors_are_classified() {
        assert_eq!(
            ChildError::Orphaned { expected: 1 }.kind(),
            ErrorKind::Closed
        );
        assert_eq!(
            ChildError::Control(FrameError::Closed).kind(),
            ErrorKind::Closed
        );
        assert_eq!(
            ChildError::Ring(RingError::Closed {
                by: shm_proto::ClosedBy::Poison
            })
            .kind(),
            ErrorKind::Closed
        );
    }
}
