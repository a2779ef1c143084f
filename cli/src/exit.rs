//! The exit statuses scripts can rely on, and the error that carries one.
//!
//! | status | class | examples |
//! | --- | --- | --- |
//! | 0 | success | |
//! | 1 | internal | a bug; a worker's row that does not decode |
//! | 2 | usage | bad arguments, unknown command, malformed request JSON |
//! | 3 | input | missing or unreadable input, malformed export |
//! | 4 | output | output not writable, an existing export without `--resume` |
//! | 5 | child | the child is not executable, fails its handshake, lacks the command, or is a Lean worker built without the Lean runtime (`lean-runtime-missing`) |
//! | 6 | jobs | jobs failed (more than `--max-failed-jobs`) |
//! | 130 | interrupted | Ctrl-C (SIGINT) or SIGTERM: jobs cancelled, workers reaped, no partial output |

use std::fmt;
use std::process::ExitCode;

/// Which kind of failure ended the command, and so its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A bug or an unexpected condition.
    Internal,
    /// Bad arguments or request.
    Usage,
    /// The input is missing, unreadable or malformed.
    Input,
    /// The output cannot be written.
    Output,
    /// The child cannot be started or does not serve the command.
    Child,
    /// Jobs failed.
    Jobs,
    /// Interrupted by a signal.
    Interrupted,
}

impl Class {
    /// The process exit status.
    pub fn status(self) -> u8 {
        match self {
            Class::Internal => 1,
            Class::Usage => 2,
            Class::Input => 3,
            Class::Output => 4,
            Class::Child => 5,
            Class::Jobs => 6,
            Class::Interrupted => 130,
        }
    }

    /// The class of a supervisor error met while starting or running a
    /// worker command.
    pub fn of(error: &ringworker::Error) -> Class {
        use ringworker::ErrorKind;
        match error.kind() {
            ErrorKind::Usage => Class::Usage,
            ErrorKind::Startup => Class::Child,
            ErrorKind::Cancelled => Class::Interrupted,
            _ => Class::Jobs,
        }
    }
}

/// An error with its exit class. Displayed as one line: the context chain
/// joined with `: `.
#[derive(Debug)]
pub struct Failure {
    /// The class (exit status).
    pub class: Class,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl Failure {
    /// A failure of `class` saying `message`.
    pub fn new(class: Class, message: impl fmt::Display) -> Failure {
        Failure {
            class,
            error: anyhow::anyhow!("{message}"),
        }
    }

    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.class.status())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Attaches a class to an error: `result.class(Class::Input)?`.
pub trait ClassExt<T> {
    /// The error becomes a [`Failure`] of `class`.
    fn class(self, class: Class) -> Result<T, Failure>;
    /// The error becomes a [`Failure`] of `class`, with `context` before it.
    fn class_with<C: fmt::Display>(
        self,
        class: Class,
        context: impl FnOnce() -> C,
    ) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> ClassExt<T> for Result<T, E> {
    fn class(self, class: Class) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            class,
            error: e.into(),
        })
    }

    fn class_with<C: fmt::Display>(
        self,
        class: Class,
        context: impl FnOnce() -> C,
    ) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            class,
            error: e.into().context(context().to_string()),
        })
    }
}

/// Shorthand for the commands' results.
pub type Outcome<T = ()> = Result<T, Failure>;
