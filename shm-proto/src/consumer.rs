//! The reading half of the ring (the supervisor's side).
//!
//! The consumer trusts nothing in shared memory. Its own read position lives
//! in private memory; the shared read index is only ever written by it. The
//! producer's write index is loaded once per refill and checked against the
//! private read position; every record header is copied out (one volatile
//! read) and checked before any of its fields is used. A check that fails
//! yields [`RingError::Corrupt`]; nothing is indexed with an unchecked value
//! and every loop advances the read position, so a hostile producer can cause
//! an error but no panic, out-of-bounds read or endless loop.
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
//! at all use [`Consumer::recv_copy`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{CorruptField, RingError};
use crate::layout::{MAGIC, state};
use crate::memory::RingMemory;
use crate::record::{RECORD_HEADER_BYTES, RecordHeader, RecordKind, record_size};
use crate::sync::{Ordering, fence, spin_hint};
use crate::wait::{WaitStrategy, Wakeup, futex_wait, futex_wake};

/// What ended a [`Consumer::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// At least one record (possibly padding only) is published.
    Ready,
    /// The timeout elapsed with nothing published.
    TimedOut,
    /// Someone woke the consumer without publishing (a watchdog, a closer):
    /// the caller should re-check its own conditions.
    Woken,
    /// The producer closed the ring (or it was poisoned) and everything
    /// published has been consumed.
    Closed,
}

/// Counters kept by a consumer (process-local, trusted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Records handed out (padding excluded).
    pub records: u64,
    /// Payload bytes handed out.
    pub payload_bytes: u64,
    /// Futex sleeps taken while waiting for data.
    pub sleeps: u64,
    /// Wake-ups sent to a producer blocked on a full ring.
    pub wakes_sent: u64,
}

/// The consumer half. One per ring; not `Clone`.
pub struct Consumer {
    memory: Arc<RingMemory>,
    mask: u64,
    capacity: u64,
    max_payload: u64,
    /// Private read position: every byte before it has been released.
    tail: u64,
    /// Last value stored to the shared read index.
    published: u64,
    /// Last write index loaded and validated: `tail <= head_cache <= tail + capacity`.
    head_cache: u64,
    publish_every: u64,
    wait: WaitStrategy,
    stats: ConsumerStats,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("tail", &self.tail)
            .field("head_cache", &self.head_cache)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Claims the consumer half of `memory`.
    pub fn new(memory: Arc<RingMemory>) -> Result<Self, RingError> {
        let capacity = memory.capacity() as u64;
        // Pairs with the Release store in `Consumer::publish` of a previous
        // consumer of this ring, if any.
        let tail = memory.header().consumer.read_index.load(Ordering::Acquire);
        // Untrusted like every shared word (a peer may have written to the
        // ring before this consumer took it over): record offsets derive from
        // it, so it must be 8-aligned; the write index is checked against it
        // on every refresh.
        if !tail.is_multiple_of(8) {
            return Err(RingError::corrupt(
                CorruptField::ReadIndex,
                tail,
                "read index is not 8-aligned",
            ));
        }
        memory.claim(false)?;
        Ok(Consumer {
            mask: capacity - 1,
            capacity,
            max_payload: memory.max_payload() as u64,
            tail,
            published: tail,
            head_cache: tail,
            publish_every: (capacity / 8).clamp(256, 256 << 10),
            wait: WaitStrategy::default(),
            stats: ConsumerStats::default(),
            memory,
        })
    }

    /// Replaces the wait tuning.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }

    /// Sets how many released bytes trigger a publication of the read index.
    pub fn set_publish_every(&mut self, bytes: usize) {
        self.publish_every = (bytes as u64).clamp(8, self.capacity / 2);
    }

    /// The ring this consumer reads.
    pub fn memory(&self) -> &Arc<RingMemory> {
        &self.memory
    }

    /// Counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }

    /// Takes the next record without blocking. `Ok(None)`: nothing published.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Option<Record<'_>>, RingError> {
        match self.next_record()? {
            Some((header, kind, offset)) => Ok(Some(self.make_record(header, kind, offset))),
            None => Ok(None),
        }
    }

    /// Takes the next record, waiting up to `timeout`. `Ok(None)`: timed out
    /// or woken without data; `Err(Closed)`: the producer closed the ring and
    /// everything was consumed.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Record<'_>>, RingError> {
        match self.wait(timeout)? {
            Readiness::Ready => self.try_recv(),
            Readiness::TimedOut | Readiness::Woken => Ok(None),
            Readiness::Closed => Err(self.closed_error()),
        }
    }

    /// Copies the next record's payload into `buf` (replacing its contents),
    /// so no borrow of shared memory outlives the call.
    pub fn recv_copy(&mut self, buf: &mut Vec<u8>) -> Result<Option<RecordHeader>, RingError> {
        match self.try_recv()? {
            Some(record) => {
                buf.clear();
                buf.extend_from_slice(record.payload());
                Ok(Some(*record.header()))
            }
            None => Ok(None),
        }
    }

    /// Hands every published record (up to `max`) to `f`, releasing each after
    /// `f` returns. Returns how many were handed out.
    pub fn drain<F>(&mut self, max: usize, mut f: F) -> Result<usize, RingError>
    where
        F: FnMut(&Record<'_>),
    {
        let mut n = 0;
        while n < max {
            let Some(record) = self.try_recv()? else {
                break;
            };
            f(&record);
            drop(record);
            n += 1;
        }
        Ok(n)
    }

    /// Waits until a record is published, the ring is closed, someone wakes
    /// the consumer, or `timeout` passes. Spins for
    /// [`WaitStrategy::spin`], then announces that it sleeps, re-checks, and
    /// sleeps on the shared futex in slices of at most
    /// [`WaitStrategy::max_sleep`].
    pub fn wait(&mut self, timeout: Duration) -> Result<Readiness, RingError> {
        if self.poll_ready()? {
            return Ok(Readiness::Ready);
        }
        let start = Instant::now();
        let deadline = start + timeout;
        let spin_until = start + self.wait.spin.min(timeout);
        while Instant::now() < spin_until {
            for _ in 0..64 {
                spin_hint();
            }
            if self.poll_ready()? {
                return Ok(Readiness::Ready);
            }
        }
        // A producer blocked on a full ring needs every released byte.
        self.flush();
        let memory = Arc::clone(&self.memory);
        let word = &memory.header().consumer_sleep.sleeping;
        loop {
            word.store(1, Ordering::Relaxed);
            // Store-load barrier of the sleep handshake; pairs with the fence
            // in `Producer::publish` (for records) and with the one in
            // `RingMemory::wake_consumer` (for close/poison/wake), so the
            // state is checked only after the announcement: a close that
            // lands before it is seen below, one that lands after it resets
            // the word and the futex does not sleep.
            fence(Ordering::SeqCst);
            if memory.state() & (state::PRODUCER_CLOSED | state::POISONED) != 0 {
                word.store(0, Ordering::Relaxed);
                // Closed flags are set after the final publication, so this
                // re-check sees the last records.
                return Ok(if self.poll_ready()? {
                    Readiness::Ready
                } else {
                    Readiness::Closed
                });
            }
            if self.poll_ready()? {
                word.store(0, Ordering::Relaxed);
                return Ok(Readiness::Ready);
            }
            let now = Instant::now();
            if now >= deadline {
                word.store(0, Ordering::Relaxed);
                return Ok(Readiness::TimedOut);
            }
            self.stats.sleeps += 1;
            let woke = futex_wait(word, 1, self.wait.max_sleep.min(deadline - now))?;
            word.store(0, Ordering::Relaxed);
            if self.poll_ready()? {
                return Ok(Readiness::Ready);
            }
            if woke == Wakeup::Woken {
                return Ok(Readiness::Woken);
            }
        }
    }

    /// Publishes the read index, waking a producer that sleeps on a full ring.
    pub fn flush(&mut self) {
        if self.tail != self.published {
            self.publish();
        }
    }

    /// Marks the ring closed by the consumer: a producer blocked on a full
    /// ring, or reserving later, gets [`RingError::Closed`].
    pub fn close(&mut self) {
        self.flush();
        self.memory.set_state(state::CONSUMER_CLOSED);
    }

    /// Bytes published by the producer and not yet released (per the last
    /// validated refill).
    pub fn pending_bytes(&self) -> u64 {
        self.head_cache - self.tail
    }

    fn closed_error(&self) -> RingError {
        if self.memory.state() & state::POISONED != 0 {
            RingError::Closed { by: "poison" }
        } else {
            RingError::Closed { by: "producer" }
        }
    }

    /// Refreshes the cached write index if everything cached was consumed;
    /// true if something is published past the read position.
    #[inline]
    fn poll_ready(&mut self) -> Result<bool, RingError> {
        if self.tail == self.head_cache {
            self.refresh_head()?;
        }
        Ok(self.tail != self.head_cache)
    }

    #[inline(never)]
    fn refresh_head(&mut self) -> Result<(), RingError> {
        let header = self.memory.header();
        let magic = header.identity.magic.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(RingError::corrupt(
                CorruptField::Magic,
                magic,
                "ring header overwritten",
            ));
        }
        // Pairs with the Release store in `Producer::publish`: record bytes
        // written before the index are visible once we see it.
        let head = header.producer.write_index.load(Ordering::Acquire);
        if head < self.tail || head - self.tail > self.capacity || !head.is_multiple_of(8) {
            return Err(RingError::corrupt(
                CorruptField::WriteIndex,
                head,
                "write index outside read_index ..= read_index + capacity",
            ));
        }
        self.head_cache = head;
        Ok(())
    }

    /// Finds the next non-padding record: its copied header, kind and offset.
    #[inline]
    fn next_record(&mut self) -> Result<Option<(RecordHeader, RecordKind, usize)>, RingError> {
        loop {
            if !self.poll_ready()? {
                // Nothing more: let a blocked producer see the freed space.
                if self.tail != self.published {
                    self.publish();
                }
                return Ok(None);
            }
            let available = self.head_cache - self.tail;
            let pos = self.tail & self.mask;
            let to_end = self.capacity - pos;
            if to_end < RECORD_HEADER_BYTES as u64 {
                // Too short for a header: skipped by rule on both sides.
                if available < to_end {
                    return Err(RingError::corrupt(
                        CorruptField::WriteIndex,
                        self.head_cache,
                        "write index ends inside the skipped tail of the buffer",
                    ));
                }
                self.advance(to_end);
                continue;
            }
            if available < RECORD_HEADER_BYTES as u64 {
                return Err(RingError::corrupt(
                    CorruptField::WriteIndex,
                    self.head_cache,
                    "write index ends inside a record header",
                ));
            }
            // `pos` is 8-aligned (tail is a sum of 8-aligned sizes and capacity
            // is a power of two >= 4096); the volatile read copies the header
            // out exactly once, and any bit pattern is a valid `RecordHeader`.
            // SAFETY: `pos + 16 <= capacity` (checked above) and `pos` is 8-aligned.
            let header = unsafe {
                self.memory
                    .data_ptr()
                    .add(pos as usize)
                    .cast::<RecordHeader>()
                    .read_volatile()
            };
            let Some(kind) = RecordKind::from_code(header.kind) else {
                return Err(RingError::corrupt(
                    CorruptField::RecordKind,
                    u64::from(header.kind),
                    "unknown record kind",
                ));
            };
            let len = u64::from(header.len);
            if kind == RecordKind::Padding {
                if len + RECORD_HEADER_BYTES as u64 != to_end || available < to_end {
                    return Err(RingError::corrupt(
                        CorruptField::Padding,
                        len,
                        "padding must end exactly at the end of the buffer",
                    ));
                }
                self.advance(to_end);
                continue;
            }
            if len > self.max_payload {
                return Err(RingError::corrupt(
                    CorruptField::RecordLength,
                    len,
                    "record longer than the maximum payload",
                ));
            }
            let size = record_size(len as usize) as u64;
            if size > to_end {
                return Err(RingError::corrupt(
                    CorruptField::RecordLength,
                    len,
                    "record crosses the end of the buffer",
                ));
            }
            if size > available {
                return Err(RingError::corrupt(
                    CorruptField::RecordLength,
                    len,
                    "record runs past the published write index",
                ));
            }
            return Ok(Some((header, kind, pos as usize)));
        }
    }

    #[inline]
    fn make_record(&mut self, header: RecordHeader, kind: RecordKind, offset: usize) -> Record<'_> {
        let len = header.len as usize;
        // The record lies in the published region, which the producer does
        // not write until we release it (see the module docs for what a
        // producer that breaks this can and cannot do). The slice borrows
        // `self` mutably through `Record`, so the record cannot be released
        // while the slice lives, and the mapping outlives `self`.
        // SAFETY: `next_record` checked `offset + record_size(len) <= capacity`.
        let payload = unsafe {
            std::slice::from_raw_parts(
                self.memory
                    .data_ptr()
                    .add(offset + RECORD_HEADER_BYTES)
                    .cast_const(),
                len,
            )
        };
        self.stats.records += 1;
        self.stats.payload_bytes += len as u64;
        Record {
            header,
            kind,
            payload,
            size: record_size(len) as u64,
            consumer: self,
        }
    }

    #[inline]
    fn advance(&mut self, bytes: u64) {
        self.tail += bytes;
        if self.tail - self.published >= self.publish_every
            || self
                .memory
                .header()
                .producer_sleep
                .sleeping
                .load(Ordering::Relaxed)
                != 0
        {
            self.publish();
        }
    }

    fn publish(&mut self) {
        // Pairs with the Acquire load in `Producer::refresh_tail`: our reads
        // of the released bytes happen before the producer reuses them.
        self.memory
            .header()
            .consumer
            .read_index
            .store(self.tail, Ordering::Release);
        self.published = self.tail;
        // Store-load barrier of the sleep handshake; pairs with the fence in
        // `Producer::wait_for_space`.
        fence(Ordering::SeqCst);
        let sleeping = &self.memory.header().producer_sleep.sleeping;
        if sleeping.load(Ordering::Relaxed) != 0 {
            sleeping.store(0, Ordering::Relaxed);
            futex_wake(sleeping);
            self.stats.wakes_sent += 1;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // A producer must never block forever on a reader that is gone.
        self.close();
    }
}

/// A record borrowed from the ring; released (its space handed back to the
/// producer) when dropped.
pub struct Record<'a> {
    header: RecordHeader,
    kind: RecordKind,
    payload: &'a [u8],
    size: u64,
    consumer: &'a mut Consumer,
}

impl Record<'_> {
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
        self.payload
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
