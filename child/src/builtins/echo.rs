//! `echo`: returns its value; optionally also streams it as JSON rows.

use serde::{Deserialize, Serialize};

use crate::{Command, CommandError, TypedRows};

/// The `echo` command's contract: a JSON value in, the same value back as
/// the summary and as each row.
#[derive(Debug, Clone, Copy)]
pub struct Echo;

impl Command for Echo {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "returns its argument; optionally also as N JSON rows";
    type Request = EchoRequest;
    type Row = serde_json::Value;
    type Summary = serde_json::Value;
}

/// Arguments of `echo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EchoRequest {
    /// Any JSON value.
    pub value: serde_json::Value,
    /// Also write `value` as this many JSON rows on stream 0.
    #[serde(default)]
    pub rows: u64,
}

impl EchoRequest {
    /// Echoes `value` as the summary only.
    pub fn new(value: serde_json::Value) -> Self {
        EchoRequest { value, rows: 0 }
    }

    /// Also writes `value` as `rows` JSON rows.
    pub fn with_rows(mut self, rows: u64) -> Self {
        self.rows = rows;
        self
    }
}

/// Runs the command.
pub fn run(
    request: EchoRequest,
    rows: &mut TypedRows<'_, '_, serde_json::Value>,
) -> Result<serde_json::Value, CommandError> {
    for _ in 0..request.rows {
        rows.row(0, &request.value)?;
    }
    Ok(request.value)
}
