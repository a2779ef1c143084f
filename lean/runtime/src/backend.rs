//! `impl LeanBackend for LeanRuntime`: the host crate's trait over the
//! runtime's methods, with the failures turned into its error types.
//!
//! With `RINGWORKER_LEAN_RUNTIME_TRACE=<file>` in its environment the
//! backend appends `start <pid>` after a successful `start` and
//! `worker_start <pid>` after a successful `worker_start` to that file, so
//! a test can see in which process each step ran (the template's or a
//! forked worker's) and in which order.

use ringworker_child::builtins::proofs::ProofSummary;
use ringworker_child::{CommandError, RowWriter, check_cancelled};
use ringworker_lean_host::{
    AttemptProofsRequest, BackendError, DeclsRequest, DeclsSummary, LeanBackend,
};

use crate::runtime::{LeanRuntime, RuntimeError, RuntimeErrorKind};

/// Command code: the Lean side returned an IO error (its text is the
/// message).
pub const LEAN_ERROR: &str = "lean-error";
/// Command code: the Lean side's summary JSON does not decode.
pub const LEAN_BAD_SUMMARY: &str = "lean-bad-summary";
/// Command code: a command ran before the runtime started.
pub const LEAN_NOT_STARTED: &str = "lean-not-started";

/// The variable naming the trace file.
pub const TRACE_ENV: &str = "RINGWORKER_LEAN_RUNTIME_TRACE";

impl LeanBackend for LeanRuntime {
    fn start(&self) -> Result<(), BackendError> {
        LeanRuntime::start(self).map_err(backend_error)?;
        trace("start");
        Ok(())
    }

    fn worker_start(&self) -> Result<(), BackendError> {
        LeanRuntime::worker_start(self).map_err(backend_error)?;
        trace("worker_start");
        Ok(())
    }

    fn fork_check(&self) -> Result<(), String> {
        LeanRuntime::fork_check(self)
    }

    fn decls(
        &self,
        request: &DeclsRequest,
        out: &mut RowWriter<'_>,
    ) -> Result<DeclsSummary, CommandError> {
        if request.shard_count == 0 || request.shard_index >= request.shard_count {
            return Err(CommandError::bad_request(format!(
                "shard {}/{}: need shard_index < shard_count",
                request.shard_index, request.shard_count
            )));
        }
        let result = self.decls_json(request.shard_index, request.shard_count, out);
        // The Lean side stops at RINGWORKER_CANCELLED and returns normally:
        // the request's outcome is the cancellation, whatever it returned.
        check_cancelled(out)?;
        decode_summary(&result.map_err(command_error)?)
    }

    fn attempt_proofs(
        &self,
        request: &AttemptProofsRequest,
        out: &mut RowWriter<'_>,
    ) -> Result<ProofSummary, CommandError> {
        let json = serde_json::to_string(request)
            .map_err(|e| CommandError::bad_request(format!("cannot encode the request: {e}")))?;
        let result = self.attempt_proofs_json(&json, out);
        check_cancelled(out)?;
        decode_summary(&result.map_err(command_error)?)
    }
}

fn decode_summary<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, CommandError> {
    serde_json::from_str(json).map_err(|e| {
        CommandError::new(
            LEAN_BAD_SUMMARY,
            format!("the Lean side's summary {json:?} does not decode: {e}"),
        )
    })
}

/// A runtime failure during a command, as the command's error.
fn command_error(error: RuntimeError) -> CommandError {
    let code = match error.kind() {
        RuntimeErrorKind::Usage => LEAN_NOT_STARTED,
        RuntimeErrorKind::Library | RuntimeErrorKind::Lean => LEAN_ERROR,
    };
    CommandError::new(code, error.to_string())
}

/// A start-up failure, as the host crate's error.
fn backend_error(error: RuntimeError) -> BackendError {
    match error {
        RuntimeError::Import { imports, message } => BackendError::Import {
            modules: imports.split(',').map(str::to_owned).collect(),
            message,
        },
        RuntimeError::Initializer { symbol, message } => BackendError::Runtime {
            step: symbol,
            message,
        },
        RuntimeError::Lean { export, message } => BackendError::Runtime {
            step: export.to_owned(),
            message,
        },
        RuntimeError::Load { ref path, .. } | RuntimeError::Symbol { ref path, .. } => {
            BackendError::Setup {
                what: format!("the library {}", path.display()),
                message: error.to_string(),
            }
        }
        other => BackendError::Setup {
            what: "the process".to_owned(),
            message: other.to_string(),
        },
    }
}

/// Appends `<event> <pid>` to the trace file, if one is named. A failure to
/// write is reported on stderr and otherwise ignored: tracing never changes
/// what the worker does.
fn trace(event: &str) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os(TRACE_ENV) else {
        return;
    };
    let line = format!("{event} {}\n", std::process::id());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!(
            "{TRACE_ENV}: cannot append to {}: {err}",
            path.to_string_lossy()
        );
    }
}
