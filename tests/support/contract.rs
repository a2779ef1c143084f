//! Command contracts shared by the fixture worker (which serves them) and
//! the tests (which run them): both compile this one file, so a test and the
//! child cannot disagree on a command's name or types. Included with
//! `#[path = "support/contract.rs"] mod contract;`.
#![allow(dead_code)]

use ringworker_child::Command;
use serde::{Deserialize, Serialize};

/// `squares`: rows `i` and `i * i` for `i` in `0..n`; the summary counts
/// and sums them.
pub struct Squares;

/// Arguments of [`Squares`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upto {
    /// How many rows.
    pub n: u64,
}

/// One row of [`Squares`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Square {
    /// The number.
    pub n: u64,
    /// Its square.
    pub square: u64,
}

/// Summary of [`Squares`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquaresSummary {
    /// Rows written.
    pub rows: u64,
    /// Sum of the squares.
    pub sum: u64,
}

impl Command for Squares {
    const NAME: &'static str = "squares";
    const DESCRIPTION: &'static str = "rows i and i*i for i in 0..n";
    type Request = Upto;
    type Row = Square;
    type Summary = SquaresSummary;
}

/// `fail`: writes `rows` rows, then fails with the command-defined `code`.
pub struct Fail;

/// Arguments of [`Fail`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailRequest {
    /// The command's own failure code (any string, runtime names included).
    pub code: String,
    /// Rows (their index) written before failing.
    pub rows: u64,
}

impl Command for Fail {
    const NAME: &'static str = "fail";
    const DESCRIPTION: &'static str = "writes N rows, then fails with a command-defined code";
    type Request = FailRequest;
    type Row = u64;
    type Summary = ();
}

/// Name of the untyped `slots` command: it reserves `reserved` 64-byte rows
/// and commits every other one with its first `committed_len` bytes (the
/// rest are dropped uncommitted), then reports what its writer counted.
pub const SLOTS: &str = "slots";

/// Arguments of [`SLOTS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotsRequest {
    /// Rows reserved.
    pub reserved: u64,
    /// Bytes committed of each committed row (at most 64).
    pub committed_len: usize,
}

/// Summary of [`SLOTS`]: the child writer's own counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotsSummary {
    /// Rows the writer counted.
    pub rows: u64,
    /// Bytes the writer counted.
    pub bytes: u64,
}

/// Name of the untyped `self_cancel` command: writes `rows` rows (their
/// index), then sets its own request's cancel word in the ring, which only
/// the supervisor may do, and so reports a cancellation nobody asked for.
/// Its argument is the row count.
pub const SELF_CANCEL: &str = "self_cancel";
