//! Record framing inside the ring's data area.
//!
//! A record is a [`RecordHeader`] followed by its payload, padded to 8 bytes.
//! Records never straddle the end of the data area: when the next record does
//! not fit before the end, the producer writes a [`RecordKind::Padding`]
//! record that fills the rest, or, when fewer than [`RECORD_HEADER_BYTES`]
//! remain, both sides skip those bytes by rule without any header. So a
//! padding record is always shorter than `record_size(max_payload)` (the
//! record that did not fit), and the consumer rejects longer ones: at most
//! one padding record occurs per wrap.
//!
//! # Large rows
//!
//! A row longer than the ring's maximum record payload travels as a run of
//! [`RecordKind::Fragment`] records, every one of them of the same request
//! and stream, with nothing of that request in between:
//!
//! - the first carries [`fragment::FIRST`] in its flags and starts with the
//!   row's total length as an 8-byte little-endian prefix
//!   ([`fragment::TOTAL_PREFIX_BYTES`]), followed by the row's first bytes;
//! - the middle ones carry no flag and only row bytes;
//! - the last carries [`fragment::LAST`] and completes exactly the announced
//!   total.
//!
//! The announced total lets the consumer check the row against its per-row
//! limit before it accumulates anything, and preallocate. Each fragment is
//! an ordinary record for the ring (at most the maximum payload), so the
//! producer streams fragments while the consumer frees space and a row may be
//! far larger than the ring itself. Rows that fit one record stay one
//! [`RecordKind::Data`] record: the small-row path knows nothing of this.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Size of [`RecordHeader`] in bytes.
pub const RECORD_HEADER_BYTES: usize = 16;

/// Alignment of every record start and of every index value.
pub const RECORD_ALIGN: usize = 8;

/// The fixed header in front of every record, copied out of shared memory
/// before any of its fields is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RecordHeader {
    /// Payload length in bytes (excluding this header and padding).
    pub len: u32,
    /// A [`RecordKind`] as its `u8` code.
    pub kind: u8,
    /// Free for the layers above (the runtime marks e.g. error end markers).
    pub flags: u8,
    /// Stream the record belongs to (rows of one request may be spread over
    /// several streams).
    pub stream: u16,
    /// Id of the request that produced the record.
    pub request: u64,
}

const _: () = assert!(std::mem::size_of::<RecordHeader>() == RECORD_HEADER_BYTES);

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A data row for the request's sink.
    Data = 1,
    /// A progress report, ordered with the rows.
    Progress = 2,
    /// A diagnostic message (log line, warning), ordered with the rows.
    Diagnostic = 3,
    /// The end-of-request marker: nothing of this request follows it.
    End = 4,
    /// A piece of a row larger than the maximum record (see the module docs
    /// and [`fragment`]).
    Fragment = 5,
    /// Filler up to the end of the data area; never handed to callers.
    Padding = 0xFF,
}

impl RecordKind {
    /// Decodes a kind byte read from shared memory.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => RecordKind::Data,
            2 => RecordKind::Progress,
            3 => RecordKind::Diagnostic,
            4 => RecordKind::End,
            5 => RecordKind::Fragment,
            0xFF => RecordKind::Padding,
            _ => return None,
        })
    }
}

/// Header flags and framing of [`RecordKind::Fragment`] records.
pub mod fragment {
    /// The first fragment of a row: its payload starts with the row's total
    /// length ([`TOTAL_PREFIX_BYTES`], little endian).
    pub const FIRST: u8 = 1;
    /// The last fragment of a row: the row is complete after it.
    pub const LAST: u8 = 2;
    /// Length of the total-length prefix of a [`FIRST`] fragment.
    pub const TOTAL_PREFIX_BYTES: usize = 8;
    /// The smallest maximum record payload that can carry fragments (a
    /// prefix and at least as many row bytes).
    pub const MIN_FRAGMENT_PAYLOAD: usize = 2 * TOTAL_PREFIX_BYTES;
}

/// Who a record is for and what it is: everything in the header but its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// What the record carries.
    pub kind: RecordKind,
    /// Stream id.
    pub stream: u16,
    /// Request id.
    pub request: u64,
    /// Flags for the layers above.
    pub flags: u8,
}

impl RecordMeta {
    /// A data row on `stream` of `request`.
    pub fn data(request: u64, stream: u16) -> Self {
        RecordMeta {
            kind: RecordKind::Data,
            stream,
            request,
            flags: 0,
        }
    }

    /// A record of `kind` for `request` on stream 0.
    pub fn of_kind(kind: RecordKind, request: u64) -> Self {
        RecordMeta {
            kind,
            stream: 0,
            request,
            flags: 0,
        }
    }

    pub(crate) fn header(&self, len: u32) -> RecordHeader {
        RecordHeader {
            len,
            kind: self.kind as u8,
            flags: self.flags,
            stream: self.stream,
            request: self.request,
        }
    }
}

/// Bytes a record with `payload` bytes occupies in the ring, header and
/// padding included.
#[inline]
pub const fn record_size(payload: usize) -> usize {
    (RECORD_HEADER_BYTES + payload + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}
