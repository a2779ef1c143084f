//! The reader's one error type, [`ReadError`], and its classifier
//! [`ErrorKind`].
//!
//! Every variant that comes from the input carries the 1-based line number of
//! the offending line, so a report points straight at the record. Reading
//! stops at the first error: the tables after a bad line are not trustworthy.

use std::fmt;

/// Which id table an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Names (`in`). Id 0 is the anonymous name and is never written.
    Name,
    /// Universe levels (`il`). Id 0 is level zero and is never written.
    Level,
    /// Expressions (`ie`). The first expression has id 0.
    Expr,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Name => "name",
            Table::Level => "level",
            Table::Expr => "expression",
        })
    }
}

/// An error while reading a lean4export NDJSON stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The underlying reader failed.
    #[error("line {line}: I/O error: {source}")]
    Io {
        /// The line being read when the error occurred.
        line: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not valid UTF-8 or JSON, is not an object, lacks a required
    /// field, has a field of the wrong type, or is no known record.
    #[error("line {line}: malformed record: {reason}")]
    Malformed {
        /// The offending line.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A line defines an id other than the next one of its table (ids are
    /// written densely, in increasing order, each exactly once).
    #[error("line {line}: {table} id {id} out of order (the next {table} id is {expected})")]
    OutOfOrderId {
        /// The offending line.
        line: u64,
        /// The table the id belongs to.
        table: Table,
        /// The id the line defines.
        id: u64,
        /// The id it should have defined.
        expected: u64,
    },
    /// A line refers to an id its table does not hold (yet): every reference
    /// must point to an earlier line.
    #[error("line {line}: dangling {table} id {id} (ids 0..{defined} are defined)")]
    DanglingId {
        /// The offending line.
        line: u64,
        /// The table the id belongs to.
        table: Table,
        /// The id referred to.
        id: u64,
        /// How many ids of that table are defined so far.
        defined: u64,
    },
    /// The first line is not a `meta` record (or the input is empty).
    #[error(
        "line {line}: the export does not start with a `meta` record carrying `format.version`"
    )]
    MissingMeta {
        /// The line where the `meta` record was expected.
        line: u64,
    },
    /// The `meta` record names a format version this reader does not read.
    #[error(
        "line {line}: unsupported lean4export format version {version:?} (this reader reads 3.0.x and 3.1.x)"
    )]
    UnsupportedVersion {
        /// The `meta` line.
        line: u64,
        /// The version string found.
        version: String,
    },
    /// An id or count exceeds what the reader's compact tables hold (ids are
    /// stored as `u32`).
    #[error("line {line}: {table} id {id} exceeds the reader's limit of {limit}")]
    Limit {
        /// The offending line.
        line: u64,
        /// The table the id belongs to.
        table: Table,
        /// The id.
        id: u64,
        /// The largest id the reader holds.
        limit: u64,
    },
}

/// The class of a [`ReadError`], for matching without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`ReadError::Io`].
    Io,
    /// [`ReadError::Malformed`].
    Malformed,
    /// [`ReadError::OutOfOrderId`].
    OutOfOrderId,
    /// [`ReadError::DanglingId`].
    DanglingId,
    /// [`ReadError::MissingMeta`].
    MissingMeta,
    /// [`ReadError::UnsupportedVersion`].
    UnsupportedVersion,
    /// [`ReadError::Limit`].
    Limit,
}

impl ReadError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReadError::Io { .. } => ErrorKind::Io,
            ReadError::Malformed { .. } => ErrorKind::Malformed,
            ReadError::OutOfOrderId { .. } => ErrorKind::OutOfOrderId,
            ReadError::DanglingId { .. } => ErrorKind::DanglingId,
            ReadError::MissingMeta { .. } => ErrorKind::MissingMeta,
            ReadError::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            ReadError::Limit { .. } => ErrorKind::Limit,
        }
    }

    /// The 1-based line number the error refers to.
    pub fn line(&self) -> u64 {
        match self {
            ReadError::Io { line, .. }
            | ReadError::Malformed { line, .. }
            | ReadError::OutOfOrderId { line, .. }
            | ReadError::DanglingId { line, .. }
            | ReadError::MissingMeta { line }
            | ReadError::UnsupportedVersion { line, .. }
            | ReadError::Limit { line, .. } => *line,
        }
    }

    pub(crate) fn malformed(line: u64, reason: impl Into<String>) -> Self {
        ReadError::Malformed {
            line,
            reason: reason.into(),
        }
    }
}
