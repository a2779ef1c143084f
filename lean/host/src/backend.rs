//! The backend a Lean worker serves its commands with: the trait a Lean
//! runtime implements, its error, and [`Unavailable`], the backend of a
//! worker built without the runtime.

use ringworker_child::builtins::proofs::ProofSummary;
use ringworker_child::{CommandError, RowWriter};

use crate::commands::{AttemptProofsRequest, DeclsRequest, DeclsSummary};

/// Code of the command error of a worker built without the Lean runtime.
pub const RUNTIME_MISSING: &str = "lean-runtime-missing";

/// What hosts Lean in a worker. [`lean_worker`](crate::lean_worker) calls
/// it from the worker runtime's hooks (see the crate docs, *Fork-time
/// conditions*, for what each step may and must not leave behind):
///
/// | call | exec'd worker | warm template | forked worker |
/// | --- | --- | --- | --- |
/// | [`start`](LeanBackend::start) | once, first | once | — (inherited) |
/// | [`fork_check`](LeanBackend::fork_check) | — | before every fork | — |
/// | [`worker_start`](LeanBackend::worker_start) | once, after `start` | — | once, after the fork |
/// | [`decls`](LeanBackend::decls), [`attempt_proofs`](LeanBackend::attempt_proofs) | per request | — | per request |
///
/// Requests run one at a time, on the worker's main thread.
pub trait LeanBackend: Send + Sync + 'static {
    /// Once per process (exec'd worker) or once in the warm template:
    /// initialise the Lean runtime, load the library, import the
    /// environment. Must not start Lean's task manager.
    fn start(&self) -> Result<(), BackendError>;

    /// Once in every worker process before its handshake: after `start` in
    /// an exec'd worker, after the fork in a forked one (starts Lean's task
    /// manager).
    fn worker_start(&self) -> Result<(), BackendError>;

    /// In the template before every fork: `Ok` when forking now is sound,
    /// else why not.
    fn fork_check(&self) -> Result<(), String>;

    /// `decls`: one row per constant of the shard (see
    /// [`commands`](crate::commands) for the row's bytes).
    fn decls(
        &self,
        request: &DeclsRequest,
        out: &mut RowWriter<'_>,
    ) -> Result<DeclsSummary, CommandError>;

    /// `attempt-proofs`: one row per candidate, in order.
    fn attempt_proofs(
        &self,
        request: &AttemptProofsRequest,
        out: &mut RowWriter<'_>,
    ) -> Result<ProofSummary, CommandError>;
}

/// Why a backend could not start, or could not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// This worker was built without the Lean runtime.
    #[error(
        "Lean runtime not built into this worker (build ringworker-lean-runtime with --features runtime where `lean` is on PATH)"
    )]
    RuntimeMissing,
    /// The worker's set-up is wrong: a missing search path or library file,
    /// a bad option.
    #[error("Lean worker set-up: {what}: {message}")]
    Setup {
        /// What was being set up (`LEAN_PATH`, the library's path, ...).
        what: String,
        /// Why it failed.
        message: String,
    },
    /// Importing the environment failed (a module not found, an `.olean`
    /// of another Lean version, an error while elaborating the header).
    #[error("importing {modules:?} failed: {message}")]
    Import {
        /// The modules asked for.
        modules: Vec<String>,
        /// Lean's message.
        message: String,
    },
    /// The Lean runtime failed: its initialisation, the task manager's
    /// start, an `IO` error it returned.
    #[error("Lean runtime: {step}: {message}")]
    Runtime {
        /// The step (`initialize`, `task manager`, ...).
        step: String,
        /// Lean's message.
        message: String,
    },
}

/// Coarse classes of [`BackendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The runtime is not in this build: use another worker binary.
    Unavailable,
    /// The worker's configuration or files: fix the set-up.
    Setup,
    /// The environment could not be imported.
    Import,
    /// Lean itself failed.
    Runtime,
}

impl BackendError {
    /// Classifies this error.
    pub fn kind(&self) -> BackendErrorKind {
        match self {
            BackendError::RuntimeMissing => BackendErrorKind::Unavailable,
            BackendError::Setup { .. } => BackendErrorKind::Setup,
            BackendError::Import { .. } => BackendErrorKind::Import,
            BackendError::Runtime { .. } => BackendErrorKind::Runtime,
        }
    }

    /// The command error code this error travels as when it fails a request
    /// ([`RUNTIME_MISSING`], `lean-setup`, `lean-import`, `lean-runtime`).
    pub fn code(&self) -> &'static str {
        match self.kind() {
            BackendErrorKind::Unavailable => RUNTIME_MISSING,
            BackendErrorKind::Setup => "lean-setup",
            BackendErrorKind::Import => "lean-import",
            BackendErrorKind::Runtime => "lean-runtime",
        }
    }
}

/// A request failed by a backend error: the command's own code
/// ([`BackendError::code`]) and the error's message.
impl From<BackendError> for CommandError {
    fn from(error: BackendError) -> Self {
        CommandError::new(error.code(), error.to_string())
    }
}

/// The backend of a worker built without the Lean runtime: it starts (so
/// the worker answers its handshake and lists its commands) and allows
/// forks, and fails both commands with the command error
/// [`RUNTIME_MISSING`] (a typed failure of that request; the worker stays
/// and answers the next one the same way).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unavailable;

impl LeanBackend for Unavailable {
    fn start(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn worker_start(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn fork_check(&self) -> Result<(), String> {
        Ok(())
    }

    fn decls(&self, _: &DeclsRequest, _: &mut RowWriter<'_>) -> Result<DeclsSummary, CommandError> {
        Err(BackendError::RuntimeMissing.into())
    }

    fn attempt_proofs(
        &self,
        _: &AttemptProofsRequest,
        _: &mut RowWriter<'_>,
    ) -> Result<ProofSummary, CommandError> {
        Err(BackendError::RuntimeMissing.into())
    }
}

#[cfg(test)]
mod tests {
    use ringworker_child::FailureCode;

    use super::*;

    #[test]
    fn the_missing_runtime_is_a_command_failure_with_its_own_code() {
        let err = CommandError::from(BackendError::RuntimeMissing);
        assert_eq!(*err.code(), FailureCode::Command(RUNTIME_MISSING.into()));
        assert_eq!(
            err.message(),
            "Lean runtime not built into this worker (build ringworker-lean-runtime with --features runtime where `lean` is on PATH)"
        );
        assert_eq!(
            BackendError::RuntimeMissing.kind(),
            BackendErrorKind::Unavailable
        );
    }

    #[test]
    fn every_error_has_its_kind_and_code() {
        let cases = [
            (
                BackendError::Setup {
                    what: "LEAN_PATH".into(),
                    message: "unset".into(),
                },
                BackendErrorKind::Setup,
                "lean-setup",
            ),
            (
                BackendError::Import {
                    modules: vec!["Mathlib".into()],
                    message: "unknown module".into(),
                },
                BackendErrorKind::Import,
                "lean-import",
            ),
            (
                BackendError::Runtime {
                    step: "initialize".into(),
                    message: "x".into(),
                },
                BackendErrorKind::Runtime,
                "lean-runtime",
            ),
        ];
        for (err, kind, code) in cases {
            assert_eq!(err.kind(), kind, "{err}");
            assert_eq!(err.code(), code, "{err}");
            let command = CommandError::from(err.clone());
            assert_eq!(*command.code(), FailureCode::Command(code.into()));
            assert_eq!(command.message(), err.to_string());
        }
    }
}
