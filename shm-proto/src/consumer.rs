//! The reading half of the ring (the supervisor's side).
//!
//! The consumer trusts nothing in shared memory. Its own read position lives
//! in private memory; the shared read index is only ever written by it. The
//! producer's write index is loaded once per refill and checked against the
//! private read position; every record header is copied out (two atomic
//! loads) and checked before any of its fields is used. A check that fails
//! yields [`RingError::Corrupt`]; nothing is indexed with an unchecked value
//! and every loop advances the read position, so a hostile producer can cause
//! an error but no panic, out-of-bounds read or endless loop. Padding records
//! are bounded (shorter than a maximal record), so at most one occurs per
//! wrap.
//!
//! # A racing hostile writer under Rust's memory model
//!
//! A hostile child can store to any byte of the mapping at any time, with no
//! synchronization. Said plainly: where such a store overlaps a non-atomic
//! read of ours (the payload `memcpy`, a sink reading a borrowed payload), it
//! is a data race, which Rust's memory model leaves undefined. The writer is
//! another process, outside the abstract machine, so the compiler cannot
//! exploit the race; what remains is what the hardware does: the bytes read
//! are some mix of old and new values. The supervisor is sound because it
//! never lets such bytes steer it:
//!
//! - Header words are only ever accessed through atomics (every field of the
//!   header is one), and record headers are copied out with two `AtomicU64`
//!   loads through a raw pointer: no racy non-atomic read of anything that
//!   steers the consumer, and any bit pattern is a valid value, so a forged
//!   value is caught by validation.
//! - It never forms a reference into shared bytes that it then trusts: every
//!   value it acts on (index, length, kind) is copied into a private local,
//!   checked, and only then used; a later change in shared memory cannot
//!   change the checked value, and no Rust reference ever asserts that
//!   shared bytes stay unchanged.
//! - Payload bytes are plain `u8`s, for which every bit pattern is valid.
//!   [`Record::copy_payload_into`] and [`Consumer::recv_copy`] copy them with
//!   a raw-pointer `memcpy`, without forming a `&[u8]`; what the supervisor
//!   parses itself (progress, diagnostics, end markers) goes through that copy
//!   into private memory, so a racing writer can make the copy garbage,
//!   which the parser rejects, but cannot change bytes between a check and a
//!   use.
//! - Payload slices handed to raw sinks ([`Record::payload`]) are untrusted
//!   data that whoever parses them validates; an honest producer never
//!   writes them while they are borrowed (next section).
//!
//! # Aliasing of borrowed payloads
//!
//! [`Record::payload`] hands out `&[u8]` pointing into shared memory: why
//! that is sound even with a hostile producer is in the docs of
//! `record_ref`, next to the borrow.
//!
//! # Spurious wake-ups
//!
//! The sleep word lives in shared memory, so a child can reset it or send
//! `FUTEX_WAKE`s at will. [`Consumer::wait`] therefore reports
//! [`Readiness::Woken`] only for wakes sent through a [`ConsumerRemote`] of
//! this process (marked in a process-local flag before the `FUTEX_WAKE`).
//! Any other wake-up that brings neither data nor a state change is counted
//! as spurious; after a few in a row the consumer backs off with plain
//! sleeps of growing length (at most 2 ms, never past the
//! caller's deadline), so a storm of them costs a bounded number of syscalls
//! per second instead of a spinning core.
//!
//! # Adaptive waiting
//!
//! A consumer that sleeps as `SLEEPING` makes the producer publish (and
//! wake it) at its very next commit. Against a producer that streams at a
//! moderate pace (CPU-bound rows, a microsecond each) that means one
//! futex round trip per handful of records, plus a futile spin each time
//! (the producer, awake consumer in sight, batches again): the consumer
//! then costs about as much CPU per record as the producer. So
//! [`Consumer::wait`] adapts:
//!
//! - **Lazy sleep.** When the previous wait's data came within
//!   [`WaitStrategy::lazy`] of asking for it (the producer streams), the
//!   sleep starts as `SLEEPING_LAZY`: the producer does not publish early
//!   for it, but every publication it makes anyway (its batch of
//!   `publish_every` bytes, a flush, a commit after a cancel check or
//!   heartbeat, a full ring) wakes it. After `lazy` the consumer turns the
//!   announcement into `SLEEPING` and sleeps on as before. A record thus
//!   waits at most `lazy` longer than with an eager sleeper, and exactly as
//!   long as with a consumer that spins (which never makes the producer
//!   publish early either).
//! - **Adaptive spin.** A spin that ends in a lazy sleep which lasts longer
//!   than the full spin halves the next spin (down to none); a batch that
//!   arrives during a lazy sleep within [`WaitStrategy::spin`] restores it.
//!   A fast producer (batches every few microseconds) keeps the full spin
//!   and never makes a syscall; a slow one costs no spinning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{ClosedBy, CorruptField, RingError};
use crate::layout::{MAGIC, SLEEPING, SLEEPING_LAZY, state};
use crate::memory::RingMemory;
use crate::record::{RECORD_HEADER_BYTES, RecordHeader, RecordKind, record_size};
use crate::record_ref::Record;
use crate::sync::{Ordering, fence, spin_hint};
use crate::wait::{WaitStrategy, Wakeup, backoff_sleep, futex_wait, futex_wake};

/// Spurious wake-ups in a row that [`Consumer::wait`] takes without backing
/// off (an honest producer causes one now and then: a wake aimed at an
/// earlier announcement).
const SPURIOUS_ALLOWANCE: u32 = 8;

/// First back-off sleep after [`SPURIOUS_ALLOWANCE`] spurious wake-ups.
const MIN_BACKOFF: Duration = Duration::from_micros(50);

/// Longest back-off sleep: what a storm of spurious wake-ups can add to the
/// latency of the next record.
const MAX_BACKOFF: Duration = Duration::from_millis(2);

/// Spins shorter than this are not worth a loop of clock reads: the spin
/// drops to zero instead.
const MIN_SPIN: Duration = Duration::from_micros(2);

/// What ended a [`Consumer::wait`].
///
/// Deliberately exhaustive: a wait loop must handle every outcome, and a new
/// one would need every caller's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// At least one record (possibly padding only) is published.
    Ready,
    /// The timeout elapsed with nothing published.
    TimedOut,
    /// A [`ConsumerRemote::wake`] of this process woke the consumer without
    /// anything published (a watchdog, a cancel token): the caller should
    /// re-check its own conditions. Never caused by the peer.
    Woken,
    /// The producer closed the ring (or it was poisoned) and everything
    /// published has been consumed.
    Closed,
}

/// Counters kept by a consumer (process-local, trusted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Records handed out (padding excluded).
    pub records: u64,
    /// Payload bytes handed out.
    pub payload_bytes: u64,
    /// Futex sleeps taken while waiting for data.
    pub sleeps: u64,
    /// Wake-ups sent to a producer blocked on a full ring.
    pub wakes_sent: u64,
    /// Futex wake-ups that brought neither data, nor a state change, nor a
    /// wake of this process (see the module docs).
    pub spurious_wakeups: u64,
    /// Back-off sleeps taken because of repeated spurious wake-ups.
    pub backoffs: u64,
}

/// The consumer half. One per ring; not `Clone`.
pub struct Consumer {
    memory: Arc<RingMemory>,
    mask: u64,
    capacity: u64,
    max_payload: u64,
    /// `record_size(max_payload)`: an honest padding record is shorter.
    max_record: u64,
    /// Private read position: every byte before it has been released.
    tail: u64,
    /// Last value stored to the shared read index.
    published: u64,
    /// Last write index loaded and validated: `tail <= head_cache <= tail + capacity`.
    head_cache: u64,
    publish_every: u64,
    wait: WaitStrategy,
    /// The spin of the next wait: `wait.spin`, halved after each spin that
    /// a lazy sleep then showed to be too short, back to `wait.spin` when a
    /// batch came within it (see *Adaptive waiting*).
    spin_limit: Duration,
    /// The last wait's data came within `wait.lazy` of asking for it: the
    /// producer streams, the next sleep starts lazy.
    busy: bool,
    /// Spurious wake-ups in a row (reset by data, a deliberate wake or a
    /// futex timeout); above [`SPURIOUS_ALLOWANCE`] each one backs off.
    spurious: u32,
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
            max_record: record_size(memory.max_payload()) as u64,
            tail,
            published: tail,
            head_cache: tail,
            publish_every: (capacity / 8).clamp(256, 256 << 10),
            wait: WaitStrategy::default(),
            spin_limit: WaitStrategy::default().spin,
            busy: false,
            spurious: 0,
            stats: ConsumerStats::default(),
            memory,
        })
    }

    /// Replaces the wait tuning.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
        self.spin_limit = wait.spin;
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

    /// A handle for other threads of this process: wake this consumer,
    /// request cancellation, poison the ring, read the peer's counters.
    pub fn remote(&self) -> ConsumerRemote {
        ConsumerRemote {
            memory: Arc::clone(&self.memory),
        }
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
                record.copy_payload_into(buf);
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

    /// Waits until a record is published, the ring is closed, a
    /// [`ConsumerRemote::wake`] of this process arrives (also one sent before
    /// this call, since the last `Woken`), or `timeout` passes. Spins for at
    /// most [`WaitStrategy::spin`] (less while spinning has not paid off, see
    /// *Adaptive waiting* in the module docs), then announces that it sleeps,
    /// re-checks, and sleeps on the shared futex in slices of at most
    /// [`WaitStrategy::max_sleep`]. While the producer streams, the first
    /// [`WaitStrategy::lazy`] of the sleep is *lazy*: the producer wakes it
    /// with its next batch, not with its next record. Wake-ups the peer
    /// causes without data are not reported; repeated ones make it back off
    /// (see the module docs), which never extends the wait past `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Result<Readiness, RingError> {
        if self.poll_ready()? {
            self.spurious = 0;
            return Ok(Readiness::Ready);
        }
        let start = Instant::now();
        let deadline = start + timeout;
        let spin = self.spin_limit.min(timeout);
        if !spin.is_zero() {
            let spin_until = start + spin;
            while Instant::now() < spin_until {
                for _ in 0..64 {
                    spin_hint();
                }
                if self.poll_ready()? {
                    return Ok(Readiness::Ready);
                }
            }
        }
        // A producer blocked on a full ring needs every released byte.
        self.flush();
        let memory = Arc::clone(&self.memory);
        let word = &memory.header().consumer_sleep.sleeping;
        let slept_from = Instant::now();
        // Lazy only while the stream was busy at the last wait, and for at
        // most `wait.lazy`: then the producer is asked to wake us at once.
        let lazy_until = (self.busy && !cfg!(loom)).then(|| slept_from + self.wait.lazy);
        let mut announced = slept_from;
        loop {
            let now = Instant::now();
            let lazy = lazy_until.is_some_and(|until| now < until);
            let value = if lazy { SLEEPING_LAZY } else { SLEEPING };
            if value == SLEEPING && announced == slept_from && lazy_until.is_some() {
                announced = now;
            }
            word.store(value, Ordering::Relaxed);
            // Store-load barrier of the sleep handshake; pairs with the fence
            // in `Producer::publish` (for records) and with the one in
            // `RingMemory::wake_consumer_word` (for close/poison/wake), so the
            // state and the wake flag are checked only after the
            // announcement: a close or wake that lands before it is seen
            // below, one that lands after it resets the word and the futex
            // does not sleep.
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
                self.spurious = 0;
                self.adapt(slept_from, announced, lazy);
                return Ok(Readiness::Ready);
            }
            if memory.take_consumer_wake() {
                word.store(0, Ordering::Relaxed);
                self.spurious = 0;
                return Ok(Readiness::Woken);
            }
            if now >= deadline {
                word.store(0, Ordering::Relaxed);
                self.busy = false;
                return Ok(Readiness::TimedOut);
            }
            let mut slice = self.wait.max_sleep.min(deadline - now);
            if let Some(until) = lazy_until.filter(|_| lazy) {
                slice = slice.min(until - now);
            }
            self.stats.sleeps += 1;
            let woke = futex_wait(word, value, slice)?;
            word.store(0, Ordering::Relaxed);
            if self.poll_ready()? {
                self.spurious = 0;
                self.adapt(slept_from, announced, lazy);
                return Ok(Readiness::Ready);
            }
            if memory.take_consumer_wake() {
                self.spurious = 0;
                return Ok(Readiness::Woken);
            }
            if woke == Wakeup::TimedOut {
                self.spurious = 0;
                continue;
            }
            // Neither data nor a wake of ours: a close (seen at the top of
            // the loop), a producer's wake aimed at an earlier announcement,
            // a signal, or a peer resetting the word / sending FUTEX_WAKEs.
            self.stats.spurious_wakeups += 1;
            self.spurious = self.spurious.saturating_add(1);
            if self.spurious > SPURIOUS_ALLOWANCE {
                let doublings = (self.spurious - SPURIOUS_ALLOWANCE - 1).min(16);
                let pause = MIN_BACKOFF
                    .saturating_mul(1 << doublings)
                    .min(MAX_BACKOFF)
                    .min(deadline.saturating_duration_since(Instant::now()));
                self.stats.backoffs += 1;
                backoff_sleep(pause);
            }
        }
    }

    /// Data arrived after a sleep that began at `slept_from` (the eager
    /// announcement, if any, at `announced`; `lazy`: it came during the lazy
    /// part). Tunes the next wait: the stream is busy if data came within
    /// [`WaitStrategy::lazy`] of asking for it; the spin is worth its full
    /// length again if a batch came (unforced) within it, else it halves.
    fn adapt(&mut self, slept_from: Instant, announced: Instant, lazy: bool) {
        let now = Instant::now();
        self.busy = now.saturating_duration_since(announced) < self.wait.lazy;
        if lazy {
            if now.saturating_duration_since(slept_from) + self.spin_limit < self.wait.spin {
                self.spin_limit = self.wait.spin;
            } else {
                self.spin_limit /= 2;
                if self.spin_limit < MIN_SPIN {
                    self.spin_limit = Duration::ZERO;
                }
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
            RingError::Closed {
                by: ClosedBy::Poison,
            }
        } else {
            RingError::Closed {
                by: ClosedBy::Producer,
            }
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
            // `pos` is 8-aligned: tail is a sum of 8-aligned sizes (and was
            // checked 8-aligned at claim) and capacity is a power of two >= 4096.
            // SAFETY: `pos + 16 <= capacity` (checked above), so both words lie in the data area.
            let header = unsafe { load_record_header(self.memory.data_ptr().add(pos as usize)) };
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
                // The producer pads only when the next record (at most
                // `max_record` bytes) does not fit before the end.
                if to_end >= self.max_record {
                    return Err(RingError::corrupt(
                        CorruptField::Padding,
                        len,
                        "padding as long as a maximal record",
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
        // SAFETY: `next_record` checked `offset + record_size(len) <= capacity`, so the payload start is inside the data area.
        let payload = unsafe {
            self.memory
                .data_ptr()
                .add(offset + RECORD_HEADER_BYTES)
                .cast_const()
        };
        self.stats.records += 1;
        self.stats.payload_bytes += len as u64;
        // SAFETY: `next_record` checked that the record (`len` payload bytes after its header) lies in the published region, up to `head_cache`, which this consumer does not release before the `Record` (borrowing it mutably) is dropped.
        unsafe { Record::new(header, kind, payload, record_size(len) as u64, self) }
    }

    /// Releases `bytes` more. The read index is published only every
    /// `publish_every` bytes and whenever the ring runs dry, never per
    /// record, and the producer's sleep word is read only then (in
    /// `publish`): a producer waits for space only while more than
    /// `capacity - record_size(max_payload) >= 7/8 capacity` bytes are
    /// unread, which exceeds `publish_every <= capacity / 2`, so this
    /// consumer always reaches a publication (and wakes it) before it runs
    /// out of records. Waking it after every record instead would hand it
    /// one record's worth of space per futex round trip.
    #[inline]
    pub(crate) fn advance(&mut self, bytes: u64) {
        self.tail += bytes;
        if self.tail - self.published >= self.publish_every {
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

/// Copies a record header out of the data area with two `AtomicU64` loads.
///
/// Atomic loads (Relaxed: the Acquire load of the write index in
/// `refresh_head` already ordered the producer's writes before them) are
/// never a racy non-atomic read, whatever a hostile peer does meanwhile, and
/// cost the same two plain moves as a non-atomic copy.
///
/// # Safety
/// `at` must be 8-aligned and `at .. at + 16` must lie in the live mapping.
#[inline(always)]
unsafe fn load_record_header(at: *mut u8) -> RecordHeader {
    use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
    let words = at.cast::<u64>();
    // SAFETY: 8-aligned and inside the mapping (caller); shared memory may be accessed atomically from any thread.
    let first = unsafe { StdAtomicU64::from_ptr(words) }.load(StdOrdering::Relaxed);
    // SAFETY: as above, for the second word (`at + 8 .. at + 16` is in the mapping).
    let second = unsafe { StdAtomicU64::from_ptr(words.add(1)) }.load(StdOrdering::Relaxed);
    zerocopy::transmute!([first, second])
}

/// A handle on a [`Consumer`] for other threads of the supervisor process
/// (cancel tokens, watchdogs): cheap to clone, `Send + Sync`, obtainable only
/// from a claimed consumer via [`Consumer::remote`]. It offers exactly the
/// consumer side's control operations and reads of the peer's counters.
#[derive(Clone)]
pub struct ConsumerRemote {
    memory: Arc<RingMemory>,
}

impl std::fmt::Debug for ConsumerRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRemote")
            .field("ring", &self.memory)
            .finish()
    }
}

impl ConsumerRemote {
    /// Wakes the consumer if it sleeps in [`Consumer::wait`], which then
    /// returns [`Readiness::Woken`] (unless data arrived first). A wake sent
    /// while the consumer is not waiting makes its next wait return `Woken`.
    pub fn wake(&self) {
        self.memory.wake_consumer();
    }

    /// Asks the producer to stop working on `request` (0 clears) and wakes it
    /// if it is blocked on a full ring.
    pub fn request_cancel(&self, request: u64) {
        self.memory.request_cancel(request);
    }

    /// Marks the ring unusable (after corruption was found) and wakes both sides.
    pub fn poison(&self) {
        self.memory.poison();
    }

    /// The producer's heartbeat counter (untrusted: a value the peer writes).
    pub fn heartbeat(&self) -> u64 {
        self.memory.heartbeat()
    }

    /// How often the producer found the ring full (untrusted, as reported by the peer).
    pub fn full_waits(&self) -> u64 {
        self.memory.full_waits()
    }

    /// Id of the last request the child's runtime read off its control
    /// channel ([`Producer::accept`](crate::Producer::accept)), 0 before the
    /// first. A request id above it was never read: the child died (or
    /// stalled) before it, not while running it. Untrusted: the peer writes
    /// it, so use it to classify a failure, never to decide delivery.
    pub fn accepted_request(&self) -> u64 {
        // The Acquire load in `RingMemory::accepted_request` pairs with the
        // Release store in `RingMemory::accept` (`Producer::accept`).
        self.memory.accepted_request()
    }

    /// Whether and by whom the ring was closed (untrusted: the peer can set
    /// state bits too). Poison wins over a producer close, which wins over a
    /// consumer close.
    pub fn closed_by(&self) -> Option<ClosedBy> {
        let st = self.memory.state();
        if st & state::POISONED != 0 {
            Some(ClosedBy::Poison)
        } else if st & state::PRODUCER_CLOSED != 0 {
            Some(ClosedBy::Producer)
        } else if st & state::CONSUMER_CLOSED != 0 {
            Some(ClosedBy::Consumer)
        } else {
            None
        }
    }

    /// Whether both handles control the same ring.
    pub fn same_ring(&self, other: &ConsumerRemote) -> bool {
        Arc::ptr_eq(&self.memory, &other.memory)
    }
}
