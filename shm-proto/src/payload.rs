//! Payloads of the ring's non-row records: how a request ended (the end
//! marker with its summary or typed failure), progress and diagnostics.
//!
//! These are JSON inside ring records, not control frames: everything a child
//! says about a request travels through the ring so it is ordered after the
//! rows it wrote before. Their versions move with
//! [`PROTOCOL_VERSION`](crate::control::PROTOCOL_VERSION).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Payload of a [`RecordKind::End`](crate::RecordKind::End) record: how the
/// request ended, written by the child runtime after the request's last row.
/// The record's header `flags` carry nothing; the outcome is this payload.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndPayload {
    /// The command succeeded with this summary (JSON).
    Ok(Box<RawValue>),
    /// The command failed.
    Err(WorkerFailure),
}

/// Failures the child runtime itself reports, as opposed to the codes a
/// command defines. Only these carry protocol meaning to the supervisor
/// (a panic restarts the child; a cancellation answers a cancel request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuntimeCode {
    /// The command panicked; the child exits right after reporting it.
    Panic,
    /// The command stopped because the supervisor cancelled the request.
    Cancelled,
    /// The arguments did not decode or were out of range.
    BadRequest,
    /// No command of that name is registered.
    UnknownCommand,
    /// A record (progress, diagnostic, or a row on a ring too small to
    /// fragment) was larger than the ring's maximum record.
    RecordTooLarge,
    /// A row was larger than the per-row limit agreed in the handshake.
    RowTooLarge,
    /// The ring failed under the command (closed, corrupt).
    Ring,
    /// The command's summary could not be serialized.
    BadSummary,
}

impl RuntimeCode {
    /// The code's wire name, e.g. `bad_request`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeCode::Panic => "panic",
            RuntimeCode::Cancelled => "cancelled",
            RuntimeCode::BadRequest => "bad_request",
            RuntimeCode::UnknownCommand => "unknown_command",
            RuntimeCode::RecordTooLarge => "record_too_large",
            RuntimeCode::RowTooLarge => "row_too_large",
            RuntimeCode::Ring => "ring",
            RuntimeCode::BadSummary => "bad_summary",
        }
    }
}

impl std::fmt::Display for RuntimeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Machine-readable code of a [`WorkerFailure`]. The wire keeps the two
/// origins apart (`{"runtime":"panic"}` vs `{"command":"panic"}`), so a
/// command's own code can never be read as a runtime panic or cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureCode {
    /// Reported by the child runtime.
    Runtime(RuntimeCode),
    /// Defined by the command; opaque to the runtime and the supervisor.
    Command(String),
}

impl FailureCode {
    /// True if this is the runtime code `code`.
    pub fn is_runtime(&self, code: RuntimeCode) -> bool {
        matches!(self, FailureCode::Runtime(c) if *c == code)
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureCode::Runtime(code) => code.fmt(f),
            // Prefixed so a log line cannot pass a command's "panic" off as
            // the runtime's.
            FailureCode::Command(code) => write!(f, "command:{code}"),
        }
    }
}

impl From<RuntimeCode> for FailureCode {
    fn from(code: RuntimeCode) -> Self {
        FailureCode::Runtime(code)
    }
}

/// A request's typed failure, as the child reports it in the end marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerFailure {
    /// Who failed and how.
    pub code: FailureCode,
    /// Human-readable message.
    pub message: String,
}

impl WorkerFailure {
    /// A failure with `code` and `message`.
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        WorkerFailure {
            code,
            message: message.into(),
        }
    }
}

/// Payload of a [`RecordKind::Progress`](crate::RecordKind::Progress) record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// Units done so far.
    pub done: u64,
    /// Units expected in total, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// What is being done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Progress {
    /// `done` units, total unknown, no message.
    pub fn new(done: u64) -> Self {
        Progress {
            done,
            total: None,
            message: None,
        }
    }

    /// Sets the expected total.
    pub fn with_total(mut self, total: Option<u64>) -> Self {
        self.total = total;
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: Option<String>) -> Self {
        self.message = message;
        self
    }
}

/// Severity of a [`Diagnostic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Level {
    /// Detail.
    Debug,
    /// Information.
    Info,
    /// Something looks wrong but work goes on.
    Warn,
    /// Something failed.
    Error,
}

/// Payload of a [`RecordKind::Diagnostic`](crate::RecordKind::Diagnostic) record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Severity.
    pub level: Level,
    /// The message.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic of `level`.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Diagnostic {
            level,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_payload_shapes() {
        let ok: EndPayload = serde_json::from_str(r#"{"ok":{"rows":3}}"#).unwrap();
        assert!(matches!(ok, EndPayload::Ok(raw) if raw.get() == r#"{"rows":3}"#));
        let err: EndPayload =
            serde_json::from_str(r#"{"err":{"code":{"runtime":"bad_request"},"message":"m"}}"#)
                .unwrap();
        assert!(matches!(
            err,
            EndPayload::Err(WorkerFailure { code, .. }) if code.is_runtime(RuntimeCode::BadRequest)
        ));
    }

    #[test]
    fn a_command_code_named_like_a_runtime_code_stays_a_command_code() {
        for name in ["panic", "cancelled"] {
            let failure = WorkerFailure::new(FailureCode::Command(name.into()), "m");
            let json = serde_json::to_string(&EndPayload::Err(failure)).unwrap();
            let back: EndPayload = serde_json::from_str(&json).unwrap();
            let EndPayload::Err(back) = back else {
                panic!("{json}")
            };
            assert_eq!(back.code, FailureCode::Command(name.into()), "{json}");
            assert!(!back.code.is_runtime(RuntimeCode::Panic));
            assert!(!back.code.is_runtime(RuntimeCode::Cancelled));
        }
        let panic = serde_json::to_string(&FailureCode::Runtime(RuntimeCode::Panic)).unwrap();
        assert_eq!(panic, r#"{"runtime":"panic"}"#);
    }

    #[test]
    fn runtime_code_names_match_their_wire_form() {
        for code in [
            RuntimeCode::Panic,
            RuntimeCode::Cancelled,
            RuntimeCode::BadRequest,
            RuntimeCode::UnknownCommand,
            RuntimeCode::RecordTooLarge,
            RuntimeCode::RowTooLarge,
            RuntimeCode::Ring,
            RuntimeCode::BadSummary,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn a_bare_string_code_is_rejected() {
        // Protocol 1 sent codes as bare strings; they must not decode as
        // either origin.
        let old = r#"{"err":{"code":"panic","message":"m"}}"#;
        assert!(serde_json::from_str::<EndPayload>(old).is_err());
    }
}
