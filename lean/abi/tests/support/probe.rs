//! What the `abi-probe` worker and the tests share: command names, request
//! and summary shapes, the row pattern of the C driver. Included by both
//! with `#[path = "../support/probe.rs"]` / `#[path = "support/probe.rs"]`.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};

/// Emits rows from C: [`EmitRequest`] → [`EmitSummary`].
pub const C_EMIT: &str = "c-emit";
/// Runs every bad-argument case of the driver: one [`CaseRow`] per case on
/// [`REPORT_STREAM`], after the rows the cases emitted; summary: the count.
pub const C_BAD_ARGS: &str = "c-bad-args";
/// Rows and progress from C: [`ProgressRequest`] → [`StatusSummary`].
pub const C_PROGRESS: &str = "c-progress";
/// One diagnostic per level from C → [`StatusSummary`] (one per level).
pub const C_DIAGNOSTIC: &str = "c-diagnostic";
/// Emits from C until cancelled: [`UntilCancelled`]; ends the request as
/// cancelled after a diagnostic holding a [`CancelReport`].
pub const C_UNTIL_CANCELLED: &str = "c-until-cancelled";
/// Calls from outside a request → [`OutsideSummary`].
pub const C_OUTSIDE: &str = "c-outside";
/// What the C compiler made of the header and layouts → [`Facts`].
pub const C_FACTS: &str = "c-facts";

/// The stream the `c-bad-args` report rows go to (the cases may use 0 and 1).
pub const REPORT_STREAM: u16 = 2;

/// How C hands a row over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `ringworker_emit_row(stream, data, len)`.
    Ptr,
    /// `ringworker_emit_row_bytes(stream, byte_array)`.
    Bytes,
    /// `ringworker_emit_row_string(stream, string)`.
    String,
}

impl Via {
    /// The driver's code for it.
    pub fn code(self) -> u32 {
        match self {
            Via::Ptr => 0,
            Via::Bytes => 1,
            Via::String => 2,
        }
    }
}

/// Byte `byte` of row `row` on `stream` as the C driver fills it.
pub fn pattern(via: Via, stream: u32, row: u32, byte: usize) -> u8 {
    let x = row
        .wrapping_mul(251)
        .wrapping_add((byte as u32).wrapping_mul(7))
        .wrapping_add(stream.wrapping_mul(13));
    match via {
        Via::String => b'a' + (x % 26) as u8,
        _ => x as u8,
    }
}

/// Row `row` of `len` bytes as the C driver fills it.
pub fn pattern_row(via: Via, stream: u32, row: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| pattern(via, stream, row, j)).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmitRequest {
    pub via: Via,
    pub stream: u32,
    pub count: u32,
    pub row_len: usize,
    /// The command's largest stream, given to `with_row_context`.
    pub max_stream: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmitSummary {
    pub status: u32,
    pub emitted: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRow {
    pub case: String,
    pub status: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressRequest {
    pub steps: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSummary {
    pub statuses: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UntilCancelled {
    pub row_len: usize,
    /// Check every this many rows (0: never).
    pub check_every: u32,
    /// Microseconds to sleep after each check (< 1 000 000).
    pub pause_us: u32,
}

/// Sent as an info diagnostic (JSON) by `c-until-cancelled` before the
/// request ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelReport {
    pub status: u32,
    /// Rows the C loop emitted with status OK.
    pub emitted: u64,
    /// "check" (`ringworker_check_cancelled`), "emit" (a row write) or "none".
    pub seen_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideSummary {
    /// `driver_outside` in `main`, before the runtime started.
    pub startup: Vec<u32>,
    /// The C++ translation unit's call in `main`.
    pub startup_cxx: u32,
    /// `driver_outside` on a thread spawned inside the context.
    pub thread: Vec<u32>,
    /// `in_request()` inside the context, on the command's thread.
    pub in_request_inside: bool,
    /// `driver_outside` in the command after its context returned.
    pub after: Vec<u32>,
    /// `driver_outside` after a context whose closure panicked.
    pub after_panic: Vec<u32>,
    /// One row emitted inside a fresh context after that.
    pub again: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The `RINGWORKER_*` constants as compiled, in code order.
    pub constants: Vec<u32>,
    /// A C `lean_object` with `m_rc` 0x01020304, `m_cs_sz` 0x1234,
    /// `m_other` 0xAB, `m_tag` 0xCD, as bytes.
    pub c_header: Vec<u8>,
    /// The same header built from the Rust mirror.
    pub rust_header: Vec<u8>,
    /// sizeof/offsetof of the C structs (see `driver_layout`).
    pub c_layout: Vec<usize>,
    /// The same from the Rust mirrors.
    pub rust_layout: Vec<usize>,
}
