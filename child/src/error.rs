//! Errors of the worker side: the runtime's own, and a command's typed failure.

use shm_proto::RingError;
use shm_proto::control::{FrameError, WorkerFailure};

/// Why the worker runtime stopped serving.
#[derive(Debug, thiserror::Error)]
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
    /// The parent died before the worker could register for its death signal.
    #[error("parent process {expected} is gone")]
    Orphaned {
        /// The pid the worker expected as parent.
        expected: u32,
    },
}

/// A command's failure: a machine-readable code and a message. Sent to the
/// supervisor in the request's end marker, after every row of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CommandError {
    /// Machine-readable code, e.g. `bad_request`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl CommandError {
    /// A failure with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The request's arguments were not acceptable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(codes::BAD_REQUEST, message)
    }

    /// The command stopped because the supervisor cancelled the request.
    pub fn cancelled() -> Self {
        Self::new(codes::CANCELLED, "request cancelled by the supervisor")
    }

    pub(crate) fn into_failure(self) -> WorkerFailure {
        WorkerFailure {
            code: self.code,
            message: self.message,
        }
    }
}

impl From<RingError> for CommandError {
    fn from(err: RingError) -> Self {
        match err {
            RingError::Cancelled { .. } => CommandError::cancelled(),
            RingError::RecordTooLarge { .. } => Self::new(codes::RECORD_TOO_LARGE, err.to_string()),
            other => Self::new(codes::RING, other.to_string()),
        }
    }
}

/// Failure codes the runtime itself uses (commands may add their own).
pub mod codes {
    /// Arguments did not decode or were out of range.
    pub const BAD_REQUEST: &str = "bad_request";
    /// No command of that name is registered.
    pub const UNKNOWN_COMMAND: &str = "unknown_command";
    /// The request was cancelled.
    pub const CANCELLED: &str = "cancelled";
    /// A row was larger than the ring's maximum record.
    pub const RECORD_TOO_LARGE: &str = "record_too_large";
    /// The ring failed under the command (closed, corrupt).
    pub const RING: &str = "ring";
    /// The command panicked; the worker exits after reporting it.
    pub const PANIC: &str = "panic";
    /// The summary could not be serialized.
    pub const BAD_SUMMARY: &str = "bad_summary";
}
