//! The row writer a command gets: rows, progress and diagnostics, all ordered
//! in the request's ring, plus cancellation and heartbeat.

use std::marker::PhantomData;

use serde::Serialize;
use shm_proto::payload::{Diagnostic, Level, Progress};
use shm_proto::{Producer, RecordKind, RecordMeta, RingError, Slot};

use crate::error::CommandError;

/// Writes the records of one request. Every method that writes returns a
/// [`CommandError`] a command can pass on with `?` (cancellation while
/// blocked on a full ring included).
pub struct RowWriter<'a> {
    producer: &'a mut Producer,
    request: u64,
    rows: u64,
    bytes: u64,
    /// The failure of a large [`RowSlot`]'s commit, reported as the
    /// request's outcome if the command ends `Ok`.
    deferred: Option<CommandError>,
}

impl<'a> RowWriter<'a> {
    pub(crate) fn new(producer: &'a mut Producer, request: u64) -> Self {
        RowWriter {
            producer,
            request,
            rows: 0,
            bytes: 0,
            deferred: None,
        }
    }

    pub(crate) fn take_deferred_error(&mut self) -> Option<CommandError> {
        self.deferred.take()
    }

    /// The id of the request being served.
    pub fn request(&self) -> u64 {
        self.request
    }

    /// Rows written so far in this request.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Payload bytes written so far in this request.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Largest row this writer accepts: the per-row limit
    /// ([`RowWriter::max_row_bytes`]), rows above the maximum record
    /// ([`RowWriter::max_record`]) being fragmented.
    pub fn max_row(&self) -> usize {
        usize::try_from(self.producer.max_row_bytes()).unwrap_or(usize::MAX)
    }

    /// The ring's maximum record payload: rows up to this length are one
    /// record (and reach the sink borrowed from the ring); longer ones travel
    /// as fragments and are reassembled by the supervisor.
    pub fn max_record(&self) -> usize {
        self.producer.max_payload()
    }

    /// The per-row limit agreed with the supervisor in the handshake: a
    /// longer row fails with the runtime code `row_too_large` and nothing of
    /// it is delivered; the request goes on.
    pub fn max_row_bytes(&self) -> u64 {
        self.producer.max_row_bytes()
    }

    /// Copies `payload` into a row on `stream`. A row longer than the maximum
    /// record is written as fragments (out of line) up to
    /// [`RowWriter::max_row_bytes`]; above that the write fails with the
    /// runtime code `row_too_large`, writes nothing, and the command may go on.
    #[inline]
    pub fn row(&mut self, stream: u16, payload: &[u8]) -> Result<(), CommandError> {
        let meta = RecordMeta::data(self.request, stream);
        match self.producer.push(meta, payload) {
            Ok(()) => {}
            // Checked before anything is written: take the fragment path.
            Err(RingError::RecordTooLarge { .. }) => {
                self.producer.push_fragmented(meta, payload)?
            }
            Err(err) => return Err(err.into()),
        }
        self.count(payload.len());
        Ok(())
    }

    /// Reserves `len` bytes for a row on `stream`, to be filled in place and
    /// committed with [`RowSlot::commit`] / [`RowSlot::commit_len`]. The row
    /// is counted (with the bytes committed) when it is committed; a slot
    /// dropped uncommitted is no row.
    ///
    /// A `len` above the maximum record (up to [`RowWriter::max_row_bytes`],
    /// else `row_too_large`) gets a slot in private memory that is written to
    /// the ring as fragments on commit: a large row cannot be built in place,
    /// because the ring may be smaller than the row. Such a commit can fail
    /// (the request was cancelled, the ring closed) after the command moved
    /// on; the failure is then the request's outcome, unless the command
    /// fails itself. [`RowSlot::try_commit`] reports it at once instead.
    #[inline]
    pub fn reserve(&mut self, stream: u16, len: usize) -> Result<RowSlot<'_>, CommandError> {
        let meta = RecordMeta::data(self.request, stream);
        if len > self.producer.max_payload() {
            return self.reserve_large(meta, len);
        }
        let slot = self.producer.reserve(meta, len)?;
        Ok(RowSlot {
            inner: SlotInner::Ring(slot),
            len,
            rows: &mut self.rows,
            bytes: &mut self.bytes,
        })
    }

    #[cold]
    #[inline(never)]
    fn reserve_large(&mut self, meta: RecordMeta, len: usize) -> Result<RowSlot<'_>, CommandError> {
        let max = self.producer.max_row_bytes();
        if len as u64 > max {
            return Err(RingError::RowTooLarge { len, max }.into());
        }
        Ok(RowSlot {
            inner: SlotInner::Private(Box::new(PrivateSlot {
                producer: &mut *self.producer,
                meta,
                buf: vec![0; len],
                deferred: &mut self.deferred,
            })),
            len,
            rows: &mut self.rows,
            bytes: &mut self.bytes,
        })
    }

    /// Serializes `value` as JSON straight into a row on `stream`.
    #[inline]
    pub fn json<T: Serialize + ?Sized>(
        &mut self,
        stream: u16,
        value: &T,
    ) -> Result<(), CommandError> {
        let len = self
            .producer
            .push_json(RecordMeta::data(self.request, stream), value)?;
        self.count(len);
        Ok(())
    }

    /// Reports progress, ordered after the rows written so far.
    pub fn progress(
        &mut self,
        done: u64,
        total: Option<u64>,
        message: Option<&str>,
    ) -> Result<(), CommandError> {
        let progress = Progress::new(done)
            .with_total(total)
            .with_message(message.map(str::to_owned));
        self.producer.push_json(
            RecordMeta::of_kind(RecordKind::Progress, self.request),
            &progress,
        )?;
        self.producer.flush();
        self.producer.beat();
        Ok(())
    }

    /// Sends a diagnostic message, ordered after the rows written so far.
    pub fn diagnostic(&mut self, level: Level, message: &str) -> Result<(), CommandError> {
        let diagnostic = Diagnostic::new(level, message);
        self.producer.push_json(
            RecordMeta::of_kind(RecordKind::Diagnostic, self.request),
            &diagnostic,
        )?;
        self.producer.flush();
        Ok(())
    }

    /// True once the supervisor has asked to cancel this request. One load
    /// from shared memory plus a heartbeat store; no syscall. Calling it
    /// counts as a sign of life.
    ///
    /// The next row committed after it is published at once rather than
    /// with its batch, so a command that checks, writes a row and then
    /// computes for a long time has that row delivered even if it is killed
    /// meanwhile. The flip side: checking before every row publishes every
    /// row (a store and a fence each); check every few hundred rows instead.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.producer.beat();
        self.producer.is_cancelled(self.request)
    }

    /// Tells the supervisor this worker is alive (busy, not hung), and makes
    /// the rows written so far visible; like [`RowWriter::is_cancelled`], it
    /// also publishes the next row at its commit.
    pub fn beat(&mut self) {
        self.producer.beat();
        self.producer.flush();
    }

    /// Makes the rows written so far visible to the supervisor now instead of
    /// at the next batch boundary.
    pub fn flush(&mut self) {
        self.producer.flush();
    }

    /// The ring itself, for fault injection (scribbling over shared memory).
    #[doc(hidden)]
    #[cfg(feature = "fault-injection")]
    pub fn ring_memory(&self) -> &std::sync::Arc<shm_proto::RingMemory> {
        self.producer.memory()
    }

    #[inline]
    fn count(&mut self, len: usize) {
        self.rows += 1;
        self.bytes += len as u64;
    }
}

/// Aborts a command with a runtime `cancelled` failure if the request was cancelled.
pub fn check_cancelled(writer: &RowWriter<'_>) -> Result<(), CommandError> {
    if writer.is_cancelled() {
        Err(CommandError::cancelled())
    } else {
        Ok(())
    }
}

/// Space reserved for one row by [`RowWriter::reserve`]. Fill it in place,
/// then commit it; dropping it uncommitted abandons the row (nothing reaches
/// the supervisor and nothing is counted).
#[must_use = "a reserved row is written only when committed"]
pub struct RowSlot<'w> {
    inner: SlotInner<'w>,
    len: usize,
    // The writer's counters, bumped on commit only.
    rows: &'w mut u64,
    bytes: &'w mut u64,
}

/// Where a reserved row lives until it is committed.
enum SlotInner<'w> {
    /// In the ring, written in place (rows up to the maximum record).
    Ring(Slot<'w>),
    /// In private memory, fragmented into the ring on commit (boxed so the
    /// common variant stays small).
    Private(Box<PrivateSlot<'w>>),
}

struct PrivateSlot<'w> {
    producer: &'w mut Producer,
    meta: RecordMeta,
    buf: Vec<u8>,
    deferred: &'w mut Option<CommandError>,
}

impl PrivateSlot<'_> {
    #[cold]
    #[inline(never)]
    fn write(&mut self, used: usize) -> Result<(), CommandError> {
        let row = &self.buf[..used];
        if used <= self.producer.max_payload() {
            self.producer.push(self.meta, row)?;
        } else {
            self.producer.push_fragmented(self.meta, row)?;
        }
        Ok(())
    }
}

impl RowSlot<'_> {
    /// The reserved payload bytes (their prior content is unspecified).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            SlotInner::Ring(slot) => slot.payload_mut(),
            SlotInner::Private(private) => &mut private.buf,
        }
    }

    /// Copies `src` into the payload at `offset`.
    ///
    /// # Panics
    /// If `offset + src.len()` exceeds the reserved length.
    #[inline(always)]
    pub fn copy_at(&mut self, offset: usize, src: &[u8]) {
        match &mut self.inner {
            SlotInner::Ring(slot) => slot.copy_at(offset, src),
            SlotInner::Private(private) => {
                private.buf[offset..offset + src.len()].copy_from_slice(src)
            }
        }
    }

    /// The reserved length.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if zero bytes were reserved.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Commits the whole reserved length as one row.
    #[inline]
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len);
    }

    /// Commits the first `used` bytes (at most the reserved length) as one
    /// row. For a large slot (see [`RowWriter::reserve`]) a failure to write
    /// it becomes the request's outcome; use [`RowSlot::try_commit_len`] to
    /// see it here.
    #[inline]
    pub fn commit_len(self, used: usize) {
        match self.inner {
            SlotInner::Ring(slot) => {
                let used = used.min(self.len);
                *self.rows += 1;
                *self.bytes += used as u64;
                slot.commit_len(used);
            }
            SlotInner::Private(mut private) => {
                if let Err(err) = commit_private(&mut private, used, self.rows, self.bytes) {
                    private.deferred.get_or_insert(err);
                }
            }
        }
    }

    /// Commits the whole reserved length, reporting a failure to write a
    /// large slot to the ring (cancellation, a closed ring) here.
    #[inline]
    pub fn try_commit(self) -> Result<(), CommandError> {
        let len = self.len;
        self.try_commit_len(len)
    }

    /// Commits the first `used` bytes, reporting a failure to write a large
    /// slot here (a slot in the ring cannot fail to commit).
    #[inline]
    pub fn try_commit_len(self, used: usize) -> Result<(), CommandError> {
        match self.inner {
            SlotInner::Ring(_) => {
                self.commit_len(used);
                Ok(())
            }
            SlotInner::Private(mut private) => {
                commit_private(&mut private, used, self.rows, self.bytes)
            }
        }
    }
}

#[cold]
fn commit_private(
    private: &mut PrivateSlot<'_>,
    used: usize,
    rows: &mut u64,
    bytes: &mut u64,
) -> Result<(), CommandError> {
    let used = used.min(private.buf.len());
    private.write(used)?;
    *rows += 1;
    *bytes += used as u64;
    Ok(())
}

/// The row writer of a typed command
/// ([`ChildRuntime::command_typed`](crate::ChildRuntime::command_typed)):
/// rows are `R`, serialized as JSON, so a handler cannot write a row its
/// contract does not declare. Everything else a [`RowWriter`] offers
/// (cancellation, counters, progress, diagnostics) is here too; raw byte
/// rows are not.
pub struct TypedRows<'w, 'a, R> {
    writer: &'w mut RowWriter<'a>,
    _row: PhantomData<fn(&R)>,
}

impl<'w, 'a, R: Serialize> TypedRows<'w, 'a, R> {
    pub(crate) fn new(writer: &'w mut RowWriter<'a>) -> Self {
        TypedRows {
            writer,
            _row: PhantomData,
        }
    }

    /// Writes `row` as JSON on `stream`.
    #[inline]
    pub fn row(&mut self, stream: u16, row: &R) -> Result<(), CommandError> {
        self.writer.json(stream, row)
    }

    /// Reports progress (see [`RowWriter::progress`]).
    pub fn progress(
        &mut self,
        done: u64,
        total: Option<u64>,
        message: Option<&str>,
    ) -> Result<(), CommandError> {
        self.writer.progress(done, total, message)
    }

    /// Sends a diagnostic (see [`RowWriter::diagnostic`]).
    pub fn diagnostic(&mut self, level: Level, message: &str) -> Result<(), CommandError> {
        self.writer.diagnostic(level, message)
    }

    /// Signals life and publishes the rows so far (see [`RowWriter::beat`]).
    pub fn beat(&mut self) {
        self.writer.beat();
    }

    /// Publishes the rows so far (see [`RowWriter::flush`]).
    pub fn flush(&mut self) {
        self.writer.flush();
    }
}

/// Read-only access to the underlying writer: request id, counters,
/// [`RowWriter::is_cancelled`], [`check_cancelled`]. Writing goes through
/// the typed methods.
impl<'a, R> std::ops::Deref for TypedRows<'_, 'a, R> {
    type Target = RowWriter<'a>;

    fn deref(&self) -> &RowWriter<'a> {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use shm_proto::{Consumer, RingConfig, ring};

    use super::RowWriter;

    fn visible(rx: &mut Consumer) -> usize {
        let mut n = 0;
        while rx.try_recv().unwrap().is_some() {
            n += 1;
        }
        n
    }

    #[test]
    fn a_row_after_a_cancel_check_is_visible_at_commit() {
        let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
        let mut writer = RowWriter::new(&mut tx, 1);
        writer.row(0, b"batched").unwrap();
        assert_eq!(visible(&mut rx), 0, "rows are published in batches");
        assert!(!writer.is_cancelled());
        writer.row(0, b"after the check").unwrap();
        // No flush, no drop of the writer: the commit itself published.
        assert_eq!(visible(&mut rx), 2);
        writer.row(0, b"batched again").unwrap();
        assert_eq!(visible(&mut rx), 0, "batching resumes after that row");
    }

    #[test]
    fn a_row_after_a_beat_is_visible_at_commit() {
        let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
        let mut writer = RowWriter::new(&mut tx, 1);
        writer.beat();
        writer.json(0, &42u32).unwrap();
        assert_eq!(visible(&mut rx), 1);
        let mut slot = writer.reserve(0, 8).unwrap();
        slot.copy_at(0, &[7; 8]);
        slot.commit();
        assert_eq!(visible(&mut rx), 0);
        assert!(!writer.is_cancelled());
        let mut slot = writer.reserve(0, 8).unwrap();
        slot.copy_at(0, &[8; 8]);
        slot.commit();
        assert_eq!(visible(&mut rx), 2, "a reserved row is urgent too");
    }
}
