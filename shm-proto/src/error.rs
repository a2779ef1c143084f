//! The one error type of the ring, and the classifier callers match on.

use std::io;

/// What part of the shared ring was found inconsistent.
///
/// Every value read from shared memory that fails validation maps to exactly
/// one of these, so a corruption report says *what* was wrong, not just that
/// something was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptField {
    /// The header's magic number changed or never matched.
    Magic,
    /// The header's layout version is not the one this build speaks.
    LayoutVersion,
    /// Capacity is not a power of two in range, or changed after attach.
    Capacity,
    /// The maximum record size is out of range or changed after attach.
    MaxRecord,
    /// The generation does not match the expected one.
    Generation,
    /// The producer's write index moved backwards, past the read index plus
    /// capacity, or is misaligned.
    WriteIndex,
    /// The consumer's read index (as seen by the producer) is out of range.
    ReadIndex,
    /// A record header names a kind this protocol does not define.
    RecordKind,
    /// A record header's length exceeds the maximum record size, crosses the
    /// end of the buffer, or runs past the published write index.
    RecordLength,
    /// A padding record does not exactly fill the space to the end of the
    /// buffer, or is at least as long as a maximal record (an honest producer
    /// pads only when the next record does not fit before the end).
    Padding,
}

/// Who closed a ring, in [`RingError::Closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClosedBy {
    /// The producer closed the ring (it will write no more records).
    Producer,
    /// The consumer closed the ring (it will read no more records).
    Consumer,
    /// The ring was poisoned after corruption was found.
    Poison,
}

impl std::fmt::Display for ClosedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClosedBy::Producer => "producer",
            ClosedBy::Consumer => "consumer",
            ClosedBy::Poison => "poison",
        })
    }
}

/// One half of a ring, in [`RingError::AlreadyClaimed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Half {
    /// The writing half ([`Producer`](crate::Producer)).
    Producer,
    /// The reading half ([`Consumer`](crate::Consumer)).
    Consumer,
}

impl std::fmt::Display for Half {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Half::Producer => "producer",
            Half::Consumer => "consumer",
        })
    }
}

/// Errors of the shared-memory ring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring configuration is unusable (bad capacity, record size, ...).
    #[error("invalid ring configuration: {reason}")]
    InvalidConfig {
        /// Why the configuration was rejected.
        reason: String,
    },
    /// A record payload is larger than the ring's maximum record size.
    #[error("record of {len} bytes exceeds the ring's maximum record size of {max} bytes")]
    RecordTooLarge {
        /// Requested payload length.
        len: usize,
        /// The ring's maximum payload length.
        max: usize,
    },
    /// A row is larger than the per-row limit agreed in the handshake (rows
    /// larger than the maximum record travel as fragments up to that limit).
    #[error("row of {len} bytes exceeds the per-row limit of {max} bytes")]
    RowTooLarge {
        /// The row's length.
        len: usize,
        /// The per-row limit.
        max: u64,
    },
    /// The peer wrote values into shared memory that break the ring's invariants.
    #[error("ring memory corrupted: {field:?} (found {found:#x}, {detail})")]
    Corrupt {
        /// Which field or record part failed validation.
        field: CorruptField,
        /// The offending value as read.
        found: u64,
        /// The bound or expectation it violated.
        detail: &'static str,
    },
    /// The other side closed the ring (or the ring was poisoned).
    #[error("ring closed by the {by}")]
    Closed {
        /// Which side closed it, or whether it was poisoned.
        by: ClosedBy,
    },
    /// The request this write belongs to was cancelled through the ring's cancel word.
    #[error("request {request} was cancelled")]
    Cancelled {
        /// The cancelled request id.
        request: u64,
    },
    /// A blocking operation reached its deadline.
    #[error("ring operation timed out")]
    TimedOut,
    /// This half of the ring was already claimed in this process.
    #[error("the ring's {half} half is already in use")]
    AlreadyClaimed {
        /// The half that was claimed twice.
        half: Half,
    },
    /// A value could not be serialized into a record.
    #[error("could not serialize record: {source}")]
    Serialize {
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A system call failed.
    #[error("{op} failed: {source}")]
    Os {
        /// The operation that failed (`memfd_create`, `mmap`, `futex_wait`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Coarse classes of [`RingError`], for callers that decide what to do next
/// without matching every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input or configuration is wrong; retrying will not help.
    Usage,
    /// The peer broke the protocol; the peer must be killed and the ring discarded.
    Corruption,
    /// The peer went away or asked us to stop; not a bug on either side.
    Closed,
    /// A deadline passed; the operation may be retried.
    Timeout,
    /// The operating system refused something (memory, fds, ...).
    System,
}

impl RingError {
    /// Classifies this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RingError::InvalidConfig { .. }
            | RingError::RecordTooLarge { .. }
            | RingError::RowTooLarge { .. }
            | RingError::AlreadyClaimed { .. }
            | RingError::Serialize { .. } => ErrorKind::Usage,
            RingError::Corrupt { .. } => ErrorKind::Corruption,
            RingError::Closed { .. } | RingError::Cancelled { .. } => ErrorKind::Closed,
            RingError::TimedOut => ErrorKind::Timeout,
            RingError::Os { .. } => ErrorKind::System,
        }
    }

    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn os(op: &'static str, err: impl Into<io::Error>) -> Self {
        RingError::Os {
            op,
            source: err.into(),
        }
    }

    pub(crate) fn corrupt(field: CorruptField, found: u64, detail: &'static str) -> Self {
        RingError::Corrupt {
            field,
            found,
            detail,
        }
    }
}
