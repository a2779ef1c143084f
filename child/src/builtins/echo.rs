//! `echo`: returns its value; optionally also streams it as JSON rows.

use serde::{Deserialize, Serialize};

use crate::{CommandError, RowWriter};

/// Arguments of `echo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoRequest {
    /// Any JSON value.
    pub value: serde_json::Value,
    /// Also write `value` as this many JSON rows on stream 0.
    #[serde(default)]
    pub rows: u64,
}

/// Runs the command.
pub fn run(
    request: EchoRequest,
    writer: &mut RowWriter<'_>,
) -> Result<serde_json::Value, CommandError> {
    for _ in 0..request.rows {
        writer.json(0, &request.value)?;
    }
    Ok(request.value)
}
