//! The writing half of the ring (the child's side).
//!
//! Writes go into a private "head" first; the shared write index is published
//! in batches ([`Producer::publish_every`] bytes), before blocking on a full
//! ring, on [`Producer::flush`], and at once when the consumer has announced
//! that it sleeps (unless it sleeps lazily: then the batch wakes it, see the
//! consumer's *Adaptive waiting*). So a busy stream costs one Release store and one fence per
//! batch, and no syscall at all unless the consumer is asleep.
//!
//! A check for cancellation ([`Producer::is_cancelled`]) or a heartbeat
//! ([`Producer::beat`]) also arms "publish the next commit": a command that
//! checks, writes one row and then computes for a long time would otherwise
//! leave that row unpublished, and lost if the child is killed meanwhile.
//! Arming lowers the batch threshold the commit compares against anyway, so
//! rows that do not follow a check cost nothing extra; a loop that checks
//! before every row publishes every row, which is why the built-in commands
//! check every few hundred rows.

use std::io;
use std::sync::Arc;
// Process-private, not a shared-memory word: loom need not model it.
use std::sync::atomic::AtomicU64 as PrivateU64;
use std::time::{Duration, Instant};

use crate::error::{ClosedBy, CorruptField, RingError};
use crate::layout::{SLEEPING, state};
use crate::memory::RingMemory;
use crate::record::{
    RECORD_HEADER_BYTES, RecordHeader, RecordKind, RecordMeta, fragment, record_size,
};
use crate::sync::{Ordering, fence, spin_hint};
use crate::wait::{WaitStrategy, Wakeup, futex_wait, futex_wake};

/// Counters kept by a producer (process-local, trusted). Only slow-path
/// events are counted: rows and bytes are the caller's to count, so the
/// per-row path stores nothing but the record and the private head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Times the ring was found full.
    pub full_waits: u64,
    /// Futex sleeps taken while waiting for space.
    pub sleeps: u64,
    /// Wake-ups sent to a sleeping consumer.
    pub wakes_sent: u64,
    /// JSON values that did not fit the first slot guess and were re-serialized.
    pub json_retries: u64,
}

/// Capacity above which the JSON scratch buffer is freed after use.
const KEEP_JSON_SCRATCH: usize = 32 << 20;

/// [`Producer::publish_at`] when armed: every head is at least this, so the
/// next commit publishes.
const ARMED: u64 = 0;

/// The producer half. One per ring; not `Clone`.
pub struct Producer {
    memory: Arc<RingMemory>,
    mask: u64,
    capacity: u64,
    max_payload: usize,
    /// Largest row [`Producer::push_fragmented`] writes.
    max_row: u64,
    /// Private write position: everything before it is written, everything
    /// between `published` and it is not yet visible to the consumer.
    head: u64,
    /// Last value stored to the shared write index.
    published: u64,
    /// Last read index seen; only ever re-read when it looks too small.
    tail_cache: u64,
    publish_every: u64,
    /// A commit that brings `head` to at least this publishes. Invariant:
    /// either [`ARMED`] (set by `beat` / `is_cancelled`, cleared by the next
    /// commit) or `published + publish_every`. An atomic only so that the
    /// `&self` methods can arm it; only the owning thread touches it, hence
    /// Relaxed throughout (it orders nothing).
    publish_at: PrivateU64,
    wait: WaitStrategy,
    json_hint: usize,
    json_scratch: Vec<u8>,
    stats: ProducerStats,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("head", &self.head)
            .field("published", &self.published)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Claims the producer half of `memory`.
    pub fn new(memory: Arc<RingMemory>) -> Result<Self, RingError> {
        memory.claim(true)?;
        let capacity = memory.capacity() as u64;
        // A producer starts where the shared index says (normally 0), so a
        // ring can be handed over once its first producer is gone.
        // Pairs with the Release store in `Producer::publish` of a previous
        // producer of this ring, if any.
        let head = memory.header().producer.write_index.load(Ordering::Acquire);
        let publish_every = (capacity / 16).clamp(256, 64 << 10);
        Ok(Producer {
            mask: capacity - 1,
            capacity,
            max_payload: memory.max_payload(),
            max_row: crate::control::DEFAULT_MAX_ROW_BYTES,
            head,
            published: head,
            tail_cache: head,
            publish_every,
            publish_at: PrivateU64::new(head + publish_every),
            wait: WaitStrategy::default(),
            json_hint: 256,
            json_scratch: Vec::new(),
            stats: ProducerStats::default(),
            memory,
        })
    }

    /// Sets how many unpublished bytes trigger a publication.
    pub fn set_publish_every(&mut self, bytes: usize) {
        self.publish_every = (bytes as u64).clamp(8, self.capacity / 2);
        self.rebudget();
    }

    /// Replaces the wait tuning.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }

    /// The ring this producer writes.
    pub fn memory(&self) -> &Arc<RingMemory> {
        &self.memory
    }

    /// Largest payload a record may carry.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Sets the largest row [`Producer::push_fragmented`] (and so
    /// [`Producer::push_json`] of a large data row) accepts; default
    /// [`DEFAULT_MAX_ROW_BYTES`](crate::control::DEFAULT_MAX_ROW_BYTES).
    pub fn set_max_row_bytes(&mut self, bytes: u64) {
        self.max_row = bytes;
    }

    /// The largest row [`Producer::push_fragmented`] accepts.
    pub fn max_row_bytes(&self) -> u64 {
        self.max_row
    }

    /// Counters so far.
    pub fn stats(&self) -> ProducerStats {
        self.stats
    }

    /// Reserves space for a record of `len` payload bytes, blocking while the
    /// ring is full. The record becomes visible only after
    /// [`Slot::commit`] (and a publication).
    #[inline]
    pub fn reserve(&mut self, meta: RecordMeta, len: usize) -> Result<Slot<'_>, RingError> {
        self.reserve_until(meta, len, None)
    }

    /// Like [`Producer::reserve`] but gives up with [`RingError::TimedOut`]
    /// after `timeout`.
    pub fn reserve_timeout(
        &mut self,
        meta: RecordMeta,
        len: usize,
        timeout: Duration,
    ) -> Result<Slot<'_>, RingError> {
        self.reserve_until(meta, len, Some(Instant::now() + timeout))
    }

    // Always inlined: this is the whole per-row cost of a write; everything
    // slow (refreshing the tail, waiting, padding) is out of line.
    #[inline(always)]
    fn reserve_until(
        &mut self,
        meta: RecordMeta,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<Slot<'_>, RingError> {
        if len > self.max_payload {
            return Err(RingError::RecordTooLarge {
                len,
                max: self.max_payload,
            });
        }
        debug_assert!(meta.kind != RecordKind::Padding, "padding is internal");
        let size = record_size(len) as u64;
        let to_end = self.capacity - (self.head & self.mask);
        let skip = if size > to_end { to_end } else { 0 };
        // Cancellation only unblocks data rows: the end marker (and progress
        // or diagnostics) of a cancelled request must still get through.
        let cancellable = if matches!(meta.kind, RecordKind::Data | RecordKind::Fragment) {
            meta.request
        } else {
            0
        };
        self.ensure_space(skip + size, cancellable, deadline)?;
        if skip > 0 {
            self.write_padding(skip);
        }
        Ok(Slot {
            offset: (self.head & self.mask) as usize,
            len,
            meta,
            producer: self,
        })
    }

    /// Copies `payload` into a new record and commits it.
    #[inline(always)]
    pub fn push(&mut self, meta: RecordMeta, payload: &[u8]) -> Result<(), RingError> {
        let mut slot = self.reserve(meta, payload.len())?;
        copy_payload(slot.payload_mut(), payload);
        slot.commit();
        Ok(())
    }

    /// Serializes `value` as JSON straight into a reserved slot and commits
    /// it. The slot is sized from the previous values' sizes; a value that
    /// outgrows the guess is serialized once more into a reusable buffer.
    pub fn push_json<T: serde::Serialize + ?Sized>(
        &mut self,
        meta: RecordMeta,
        value: &T,
    ) -> Result<usize, RingError> {
        let guess = self.json_hint.min(self.max_payload);
        let mut slot = self.reserve(meta, guess)?;
        let mut cursor = SlotCursor {
            buf: slot.payload_mut(),
            pos: 0,
        };
        match serde_json::to_writer(&mut cursor, value) {
            Ok(()) => {
                let used = cursor.pos;
                slot.commit_len(used);
                self.json_hint = self.json_hint.max(used + used / 2 + 8);
                Ok(used)
            }
            Err(e) if e.is_io() => {
                self.stats.json_retries += 1;
                let mut scratch = std::mem::take(&mut self.json_scratch);
                scratch.clear();
                let result = serde_json::to_writer(&mut scratch, value)
                    .map_err(|source| RingError::Serialize { source })
                    .and_then(|()| {
                        if scratch.len() > self.max_payload && meta.kind == RecordKind::Data {
                            self.push_fragmented(meta, &scratch)
                        } else {
                            self.push(meta, &scratch)
                        }
                        .map(|()| scratch.len())
                    });
                self.json_hint = (scratch.len() + scratch.len() / 2 + 8).min(self.max_payload);
                // Kept for the next large value, unless it grew so large (a
                // one-off huge row) that keeping it would pin the memory.
                if scratch.capacity() > KEEP_JSON_SCRATCH {
                    scratch = Vec::new();
                }
                self.json_scratch = scratch;
                result
            }
            Err(source) => Err(RingError::Serialize { source }),
        }
    }

    /// Writes `payload` as one row of `meta` (a [`RecordKind::Data`] meta)
    /// that may be longer than the maximum record: as a run of
    /// [`RecordKind::Fragment`] records (framing in [`record`](crate::record)),
    /// each reserved, filled and committed in turn, so the consumer frees
    /// space while the row streams and the row may exceed the ring.
    ///
    /// Fails with [`RingError::RowTooLarge`] (nothing written) above
    /// [`Producer::max_row_bytes`], and with [`RingError::RecordTooLarge`]
    /// (nothing written) if the ring's records are too small to carry
    /// fragments. A failure while streaming (cancellation, a closed ring)
    /// leaves a partial row that the consumer never delivers: it is
    /// cancelled, or the ring is going away.
    #[cold]
    #[inline(never)]
    pub fn push_fragmented(&mut self, meta: RecordMeta, payload: &[u8]) -> Result<(), RingError> {
        let total = payload.len();
        if total as u64 > self.max_row {
            return Err(RingError::RowTooLarge {
                len: total,
                max: self.max_row,
            });
        }
        let max = self.max_payload;
        if max < fragment::MIN_FRAGMENT_PAYLOAD {
            return Err(RingError::RecordTooLarge { len: total, max });
        }
        let piece = |flags: u8| RecordMeta {
            kind: RecordKind::Fragment,
            flags,
            ..meta
        };
        let prefix = fragment::TOTAL_PREFIX_BYTES;
        let first = total.min(max - prefix);
        let first_flags = if first == total {
            fragment::FIRST | fragment::LAST
        } else {
            fragment::FIRST
        };
        let mut slot = self.reserve(piece(first_flags), prefix + first)?;
        slot.copy_at(0, &(total as u64).to_le_bytes());
        slot.copy_at(prefix, &payload[..first]);
        slot.commit();
        let mut done = first;
        while done < total {
            let len = (total - done).min(max);
            let flags = if done + len == total {
                fragment::LAST
            } else {
                0
            };
            let mut slot = self.reserve(piece(flags), len)?;
            slot.copy_at(0, &payload[done..done + len]);
            slot.commit();
            done += len;
        }
        Ok(())
    }

    /// Makes every committed record visible to the consumer, waking it if it
    /// announced that it sleeps.
    #[inline]
    pub fn flush(&mut self) {
        if self.head != self.published {
            self.publish();
            // An armed commit stays armed: `RowWriter::beat` beats, then
            // flushes, and the row after it must still publish at once.
            self.rebudget();
        }
    }

    /// Records that the runtime read request `request` off its control
    /// channel, before running it: the supervisor reads it through
    /// [`ConsumerRemote::accepted_request`](crate::ConsumerRemote::accepted_request)
    /// to tell a child that died before reading a request from one that
    /// died running it. One Release store.
    #[inline]
    pub fn accept(&self, request: u64) {
        self.memory.accept(request);
    }

    /// Publishes, then marks the ring closed by the producer: the consumer
    /// drains what is left and then sees the ring as closed.
    pub fn close(&mut self) {
        self.flush();
        self.memory.set_state(state::PRODUCER_CLOSED);
    }

    /// Bumps the shared heartbeat counter, and arms the next commit to
    /// publish at once (see the module docs).
    #[inline]
    pub fn beat(&self) {
        self.memory.beat();
        self.arm_publish();
    }

    /// True if the supervisor asked to cancel `request` (one shared load).
    /// Arms the next commit to publish at once (see the module docs).
    #[inline]
    pub fn is_cancelled(&self, request: u64) -> bool {
        self.arm_publish();
        self.cancel_requested_for(request)
    }

    /// The cancellation check without arming, for the wait loop (which
    /// flushes before it waits, so nothing there needs the early publish).
    #[inline]
    fn cancel_requested_for(&self, request: u64) -> bool {
        request != 0 && self.memory.cancel_requested() == request
    }

    /// Makes the next commit publish, whatever the batch budget says.
    #[inline]
    fn arm_publish(&self) {
        self.publish_at.store(ARMED, Ordering::Relaxed);
    }

    /// Restarts the batch budget from the last publication, unless armed.
    #[inline]
    fn rebudget(&self) {
        if self.publish_at.load(Ordering::Relaxed) != ARMED {
            self.publish_at
                .store(self.published + self.publish_every, Ordering::Relaxed);
        }
    }

    fn publish(&mut self) {
        // Pairs with the Acquire load in `Consumer::refresh_head`: the record
        // bytes written before this store are visible to a consumer that sees
        // the new index.
        self.memory
            .header()
            .producer
            .write_index
            .store(self.head, Ordering::Release);
        self.published = self.head;
        // Store-load barrier of the sleep handshake: either the consumer's
        // re-check after announcing sees the index just stored, or this load
        // sees its announcement (pairs with the fence in `Consumer::wait`).
        fence(Ordering::SeqCst);
        let sleeping = &self.memory.header().consumer_sleep.sleeping;
        if sleeping.load(Ordering::Relaxed) != 0 {
            sleeping.store(0, Ordering::Relaxed);
            futex_wake(sleeping);
            self.stats.wakes_sent += 1;
        }
    }

    #[inline]
    fn free_space(&self) -> u64 {
        self.capacity - (self.head - self.tail_cache)
    }

    #[inline(never)]
    fn refresh_tail(&mut self) -> Result<(), RingError> {
        // Pairs with the Release store in `Consumer::publish`: the consumer's
        // reads of the released bytes happen before we overwrite them.
        let tail = self
            .memory
            .header()
            .consumer
            .read_index
            .load(Ordering::Acquire);
        if tail > self.head || self.head - tail > self.capacity || !tail.is_multiple_of(8) {
            return Err(RingError::corrupt(
                CorruptField::ReadIndex,
                tail,
                "read index outside write_index - capacity ..= write_index",
            ));
        }
        self.tail_cache = tail;
        Ok(())
    }

    #[inline]
    fn ensure_space(
        &mut self,
        need: u64,
        request: u64,
        deadline: Option<Instant>,
    ) -> Result<(), RingError> {
        if self.free_space() >= need {
            return Ok(());
        }
        self.refresh_tail()?;
        if self.free_space() >= need {
            return Ok(());
        }
        self.wait_for_space(need, request, deadline)
    }

    #[cold]
    #[inline(never)]
    fn wait_for_space(
        &mut self,
        need: u64,
        request: u64,
        deadline: Option<Instant>,
    ) -> Result<(), RingError> {
        // The consumer can only free what it can see.
        self.flush();
        self.stats.full_waits += 1;
        self.memory
            .header()
            .producer_stats
            .full_waits
            .fetch_add(1, Ordering::Relaxed);
        // A zero spin goes straight to the sleep handshake (as in
        // `Consumer::wait`), which the loom model relies on.
        let spin_until = Instant::now() + self.wait.spin;
        while Instant::now() < spin_until {
            for _ in 0..64 {
                spin_hint();
            }
            self.refresh_tail()?;
            if self.free_space() >= need {
                return Ok(());
            }
            self.check_blocked(request)?;
        }
        let memory = Arc::clone(&self.memory);
        let word = &memory.header().producer_sleep.sleeping;
        loop {
            word.store(1, Ordering::Relaxed);
            // Pairs with the fence in `Consumer::publish` (see `publish` here).
            fence(Ordering::SeqCst);
            self.refresh_tail()?;
            if self.free_space() >= need {
                word.store(0, Ordering::Relaxed);
                return Ok(());
            }
            self.check_blocked(request)?;
            let mut slice = self.wait.max_sleep;
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    word.store(0, Ordering::Relaxed);
                    return Err(RingError::TimedOut);
                }
                slice = slice.min(deadline - now);
            }
            self.stats.sleeps += 1;
            let _: Wakeup = futex_wait(word, 1, slice)?;
            word.store(0, Ordering::Relaxed);
            // Blocked on a slow consumer is alive, not hung.
            memory.beat();
        }
    }

    fn check_blocked(&self, request: u64) -> Result<(), RingError> {
        let st = self.memory.state();
        if st & state::POISONED != 0 {
            return Err(RingError::Closed {
                by: ClosedBy::Poison,
            });
        }
        if st & state::CONSUMER_CLOSED != 0 {
            return Err(RingError::Closed {
                by: ClosedBy::Consumer,
            });
        }
        if self.cancel_requested_for(request) {
            return Err(RingError::Cancelled { request });
        }
        Ok(())
    }

    #[cold]
    fn write_padding(&mut self, skip: u64) {
        let pos = (self.head & self.mask) as usize;
        if skip as usize >= RECORD_HEADER_BYTES {
            let header = RecordHeader {
                len: (skip as usize - RECORD_HEADER_BYTES) as u32,
                kind: RecordKind::Padding as u8,
                flags: 0,
                stream: 0,
                request: 0,
            };
            // The bytes are free (ensure_space) and only this producer writes
            // them until they are published.
            // SAFETY: `pos` is 8-aligned and `pos + 16 <= capacity` (skip runs to the end).
            unsafe { self.write_header(pos, header) };
        }
        self.head += skip;
    }

    /// # Safety
    /// `pos` must be 8-aligned with `pos + RECORD_HEADER_BYTES <= capacity`,
    /// and the bytes must be free space owned by this producer.
    #[inline]
    unsafe fn write_header(&self, pos: usize, header: RecordHeader) {
        // Two 8-byte stores instead of one per field: the header is written
        // once per row on the hottest path there is.
        let words: [u64; 2] = zerocopy::transmute!(header);
        // The consumer does not read unpublished bytes: no concurrent access.
        // SAFETY: in bounds and 8-aligned by the caller's contract.
        unsafe {
            self.memory
                .data_ptr()
                .add(pos)
                .cast::<[u64; 2]>()
                .write(words)
        };
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Rows committed but unpublished would otherwise be lost.
        self.flush();
    }
}

/// Space reserved for one record. Write the payload with
/// [`Slot::payload_mut`], then [`Slot::commit`]; dropping it uncommitted
/// abandons the record.
pub struct Slot<'a> {
    producer: &'a mut Producer,
    offset: usize,
    len: usize,
    meta: RecordMeta,
}

impl Slot<'_> {
    /// The reserved payload bytes (their prior content is unspecified).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        // The bytes are free space the consumer will not read before this
        // record is published, and `&mut self` guarantees one writer.
        // SAFETY: `offset + 16 + len <= capacity` (reserve checked the record fits).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.producer
                    .memory
                    .data_ptr()
                    .add(self.offset + RECORD_HEADER_BYTES),
                self.len,
            )
        }
    }

    /// Copies `src` into the payload at `offset`, inline for small sizes
    /// (see [`Producer::push`]).
    ///
    /// # Panics
    /// If `offset + src.len()` exceeds the reserved length.
    #[inline(always)]
    pub fn copy_at(&mut self, offset: usize, src: &[u8]) {
        copy_payload(&mut self.payload_mut()[offset..offset + src.len()], src);
    }

    /// Commits the whole reserved length.
    #[inline]
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len);
    }

    /// Commits the first `used` bytes (at most the reserved length).
    #[inline]
    pub fn commit_len(self, used: usize) {
        let used = used.min(self.len);
        let producer = self.producer;
        // The space is ours until published.
        // SAFETY: `offset` is 8-aligned (all record sizes are) and the record fits before the end.
        unsafe { producer.write_header(self.offset, self.meta.header(used as u32)) };
        producer.head += record_size(used) as u64;
        // One compare either way: arming lowered `publish_at` to 0. A lazy
        // sleeper (`SLEEPING_LAZY`) waits for the batch; `publish` wakes it.
        if producer.head >= producer.publish_at.load(Ordering::Relaxed)
            || producer
                .memory
                .header()
                .consumer_sleep
                .sleeping
                .load(Ordering::Relaxed)
                == SLEEPING
        {
            producer.publish();
            // Disarms: only the first commit after a check is urgent.
            producer
                .publish_at
                .store(producer.head + producer.publish_every, Ordering::Relaxed);
        }
    }
}

/// `dst.copy_from_slice(src)` for equal lengths, without a `memcpy` call
/// for rows of 16 to 256 bytes, where the call costs as much as the copy.
/// Two fixed-size copies that overlap in the middle cover any length between
/// `N` and `2N` (the overlap writes the same source bytes twice), and fixed
/// sizes compile to plain vector moves; a loop would be turned back into a
/// `memcpy` call by the optimizer.
#[inline(always)]
fn copy_payload(dst: &mut [u8], src: &[u8]) {
    #[inline(always)]
    fn ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
        let len = src.len();
        dst[..N].copy_from_slice(&src[..N]);
        dst[len - N..].copy_from_slice(&src[len - N..]);
    }
    let len = src.len();
    debug_assert_eq!(dst.len(), len);
    match len {
        16..=32 => ends::<16>(dst, src),
        33..=64 => ends::<32>(dst, src),
        65..=128 => ends::<64>(dst, src),
        129..=256 => ends::<128>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

struct SlotCursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl io::Write for SlotCursor<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self.pos + data.len();
        if end > self.buf.len() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.buf[self.pos..end].copy_from_slice(data);
        self.pos = end;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{RecordMeta, RingConfig, ring};

    fn visible(rx: &mut crate::Consumer) -> usize {
        let mut n = 0;
        while rx.try_recv().unwrap().is_some() {
            n += 1;
        }
        n
    }

    #[test]
    fn accept_is_visible_through_the_remote() {
        let (tx, rx) = ring(&RingConfig::default()).unwrap();
        let remote = rx.remote();
        assert_eq!(remote.accepted_request(), 0);
        tx.accept(7);
        assert_eq!(remote.accepted_request(), 7);
        tx.accept(8);
        assert_eq!(remote.accepted_request(), 8);
    }

    #[test]
    fn the_commit_after_a_cancel_check_publishes_at_once() {
        let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
        tx.push(RecordMeta::data(1, 0), b"batched").unwrap();
        assert_eq!(visible(&mut rx), 0, "a lone row waits for its batch");
        assert!(!tx.is_cancelled(1));
        tx.push(RecordMeta::data(1, 0), b"after the check").unwrap();
        assert_eq!(visible(&mut rx), 2, "the row after a check is published");
        tx.push(RecordMeta::data(1, 0), b"batched again").unwrap();
        assert_eq!(visible(&mut rx), 0, "only the first commit is urgent");
    }

    #[test]
    fn a_flush_after_a_beat_keeps_the_next_commit_urgent() {
        let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
        tx.push(RecordMeta::data(1, 0), b"before").unwrap();
        tx.beat();
        tx.flush();
        assert_eq!(visible(&mut rx), 1);
        tx.push(RecordMeta::data(1, 0), b"after the beat").unwrap();
        assert_eq!(visible(&mut rx), 1);
    }

    #[test]
    fn the_batch_budget_still_publishes_unarmed_rows() {
        let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
        tx.set_publish_every(64);
        for _ in 0..4 {
            tx.push(RecordMeta::data(1, 0), &[0u8; 8]).unwrap();
        }
        // 4 records of 24 bytes: the third crosses the 64-byte budget.
        assert_eq!(visible(&mut rx), 3);
    }
}
