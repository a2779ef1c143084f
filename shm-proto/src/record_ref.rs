//! The record handed out by a [`Consumer`]: a validated header copied out
//! and a borrow of the payload in shared memory, released (its space handed
//! back to the producer) when dropped. How the consumer reads the ring, and
//! why nothing a racing hostile writer does can steer it, is in the docs of
//! `consumer`; what follows is about the borrow this type hands out.
//!
//! # Aliasing of borrowed payloads
//!
//! [`Record::payload`] hands out `&[u8]` pointing into shared memory. The
//! protocol gives the consumer exclusive use of a published record until it
//! publishes a read index past it: the producer only writes bytes in
//! `write_index .. read_index + capacity`, which excludes every record the
//! consumer has not released. A producer that breaks this (a buggy or hostile
//! child writing into committed records) can change payload bytes while a
//! sink looks at them, which corrupts only that child's own rows: the bytes
//! are already treated as untrusted input, their length and location were
//! fixed when the header was copied out and checked, and the slice never
//! leaves the mapping, which outlives it. Callers that want no shared borrow
//! at all use [`Record::copy_payload_into`] or [`Consumer::recv_copy`].

use crate::consumer::Consumer;
use crate::record::{RecordHeader, RecordKind};

/// A record borrowed from the ring; released (its space handed back to the
/// producer) when dropped.
pub struct Record<'a> {
    /// Copied out and validated; `header.len` bytes of payload follow.
    header: RecordHeader,
    kind: RecordKind,
    /// Start of the payload in the data area. Invariant: `header.len` bytes
    /// from it lie in the published, unreleased region of the mapping, which
    /// `consumer` (borrowed for `'a`) keeps alive and unreleased.
    payload: *const u8,
    size: u64,
    consumer: &'a mut Consumer,
}

// SAFETY: `payload` only points into the mapping owned (through an `Arc`) by the
// borrowed `Consumer`, which is `Send`; the pointer adds no thread affinity.
unsafe impl Send for Record<'_> {}
// SAFETY: `&Record` only reads the payload (as `&[u8]` or a copy), which is
// shareable like any `&[u8]`.
unsafe impl Sync for Record<'_> {}

impl<'a> Record<'a> {
    /// A record over `size` ring bytes whose payload starts at `payload`,
    /// released through `consumer` when dropped.
    ///
    /// # Safety
    ///
    /// `header.len` bytes from `payload` must lie in the published region of
    /// `consumer`'s mapping that `consumer` has not released (the field
    /// invariant of `payload`), and `size` must be the record's size in the
    /// ring, so that dropping the record releases exactly it.
    #[inline]
    pub(crate) unsafe fn new(
        header: RecordHeader,
        kind: RecordKind,
        payload: *const u8,
        size: u64,
        consumer: &'a mut Consumer,
    ) -> Self {
        Record {
            header,
            kind,
            payload,
            size,
            consumer,
        }
    }

    /// The header as copied out and validated.
    #[inline]
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The record's kind (never padding).
    #[inline]
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    /// Stream id.
    #[inline]
    pub fn stream(&self) -> u16 {
        self.header.stream
    }

    /// Request id.
    #[inline]
    pub fn request(&self) -> u64 {
        self.header.request
    }

    /// The payload bytes in shared memory (untrusted content; see the module
    /// docs on aliasing).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        // The record lies in the published region, which the producer does
        // not write until we release it (see the module docs for what a
        // producer that breaks this can and cannot do). The slice borrows
        // `self`, which holds the consumer mutably, so the record cannot be
        // released while the slice lives, and the mapping outlives the consumer.
        // SAFETY: `payload .. payload + header.len` is in the mapping (field invariant).
        unsafe { std::slice::from_raw_parts(self.payload, self.header.len as usize) }
    }

    /// Copies the payload into `buf` (replacing its contents) through raw
    /// pointers, without forming a shared `&[u8]` over the mapping: what the
    /// caller then parses is private memory a racing peer cannot change.
    #[inline]
    pub fn copy_payload_into(&self, buf: &mut Vec<u8>) {
        let len = self.header.len as usize;
        buf.clear();
        buf.reserve(len);
        // A `memcpy` of plain bytes (any value valid) from the mapping into
        // `buf`'s spare capacity; the two cannot overlap (one is private heap).
        // SAFETY: the source range is in the mapping (field invariant), `buf` has capacity >= len.
        unsafe { std::ptr::copy_nonoverlapping(self.payload, buf.as_mut_ptr(), len) };
        // SAFETY: the first `len` bytes were just initialized by the copy.
        unsafe { buf.set_len(len) };
    }

    /// Appends the payload bytes from offset `from` on (none if `from` is
    /// past the end) to `buf`, through raw pointers like
    /// [`Record::copy_payload_into`]: how fragments of a large row are
    /// reassembled in private memory. Returns the bytes appended.
    #[inline]
    pub fn append_payload_into(&self, from: usize, buf: &mut Vec<u8>) -> usize {
        let len = (self.header.len as usize).saturating_sub(from);
        if len == 0 {
            return 0;
        }
        buf.reserve(len);
        let old = buf.len();
        // A `memcpy` of plain bytes from the mapping into `buf`'s spare
        // capacity (private heap, no overlap); `from < header.len` here.
        // SAFETY: `payload + from .. + len` is in the mapping (field invariant), capacity >= old + len.
        unsafe {
            std::ptr::copy_nonoverlapping(self.payload.add(from), buf.as_mut_ptr().add(old), len)
        };
        // SAFETY: the `len` bytes after `old` were just initialized by the copy.
        unsafe { buf.set_len(old + len) };
        len
    }

    /// Copies the first `N` payload bytes out (raw-pointer copy into a private
    /// array), or `None` if the payload is shorter.
    #[inline]
    pub fn copy_prefix<const N: usize>(&self) -> Option<[u8; N]> {
        if (self.header.len as usize) < N {
            return None;
        }
        let mut out = [0u8; N];
        // Plain bytes from the mapping into a private array, no overlap.
        // SAFETY: `N <= header.len` bytes from `payload` are in the mapping (field invariant).
        unsafe { std::ptr::copy_nonoverlapping(self.payload, out.as_mut_ptr(), N) };
        Some(out)
    }
}

impl Drop for Record<'_> {
    #[inline]
    fn drop(&mut self) {
        self.consumer.advance(self.size);
    }
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("header", &self.header)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
