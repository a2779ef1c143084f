//! The reference ring (feature `reference-ring`): the simplest fast SPSC ring
//! of fixed-size slots between two processes, the "ceiling" that `ringbench`
//! measures the real ring against. Not part of the protocol: it shares
//! nothing with the ring's memory layout, records or wake-ups.
//!
//! Fixed-size slots (an 8-byte length word, then the payload, the stride
//! rounded up to 8 bytes and sized for the largest payload; see
//! [`stride_for`]) in a sealed memfd that one process creates
//! ([`SlotRing::create`]) and another maps ([`SlotRing::attach`]). The
//! producer publishes its index in batches (Release), the consumer reads it
//! (Acquire) only when its cached copy runs out, and releases slots back in
//! batches the same way; both sides spin (no futex), napping briefly once a
//! wait passes 50 µs, bounded by a no-progress timeout.
//!
//! It validates only what keeps each side memory-safe: the geometry at
//! attach, the peer's index (within one ring of ours) and every slot's
//! length (within the slot). The peer is meant to be trusted (the benchmark's
//! own child): no record kinds, no wake-ups, no recovery.
//!
//! # Aliasing of borrowed slots
//!
//! [`ReadSlot::payload`] hands out `&[u8]` pointing into shared memory, on
//! the same terms as [`Record::payload`](crate::Record::payload) (see the
//! aliasing note of `record_ref`): the producer only writes slots the
//! consumer has released, so an honest peer never writes a slot while it is
//! borrowed; a peer that breaks this can change bytes under the borrow,
//! which only garbles its own data (plain bytes, any value valid; the slot's
//! length was copied out and checked before the slice was formed, and the
//! slice never leaves the mapping, which outlives it).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::RingError;
use crate::sealed;

/// Byte offsets in the shared file: the geometry words, the producer's
/// index, the consumer's index (each on its own pair of cache lines), slots.
const STRIDE_AT: usize = 0;
const SLOTS_AT: usize = 8;
const HEAD_AT: usize = 128;
const TAIL_AT: usize = 256;
const DATA_AT: usize = 512;

/// Bytes of a slot's length word.
const WORD: usize = 8;

/// Smallest stride: the length word and 24 bytes.
const MIN_STRIDE: usize = 32;

/// Spins between clock reads while waiting.
const SPINS_PER_CHECK: u32 = 256;

/// How long a side spins before it naps between checks: on a machine whose
/// CPUs are shared with other work, a side that only spins burns the time
/// slices its peer (or the other work) could have had, and the "ceiling"
/// then ran at a fifth of the ring under load.
const SPIN_FOR: Duration = Duration::from_micros(50);

/// The nap between checks once [`SPIN_FOR`] has passed.
const NAP: Duration = Duration::from_micros(20);

/// How long a side waits without progress before giving up.
pub const NO_PROGRESS: Duration = Duration::from_secs(30);

/// Slot stride for payloads of up to `max_bytes`: the length word and the
/// payload, rounded up to 8 bytes, so fixed-size rows are packed back to back
/// and stream through the caches like the ring's records. (Rounding large
/// slots up to an odd number of cache lines, against 4 KiB set aliasing,
/// measured no better for mixed sizes and worse for 1 KiB rows.) For mixed
/// sizes every row sits at the start of a slot sized for the largest: the
/// hardware prefetcher cannot stream across the gaps, so this is no limit
/// there and the ring, which packs records, beats it.
pub fn stride_for(max_bytes: usize) -> usize {
    (WORD + max_bytes.max(MIN_STRIDE - WORD)).next_multiple_of(8)
}

/// Errors of the reference ring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlotRingError {
    /// Creating, sizing or mapping the memfd failed.
    #[error(transparent)]
    Os(#[from] RingError),
    /// The requested or found geometry is unusable.
    #[error("slot ring: {0}")]
    Geometry(String),
    /// A payload (pushed, or claimed by a slot's reader) exceeds the slot.
    #[error("slot ring: payload of {len} B exceeds the slot's {max} B")]
    TooLong {
        /// The payload length.
        len: u64,
        /// What a slot holds ([`SlotRing::max_payload`]).
        max: u64,
    },
    /// The producer's published index is not within one ring of the
    /// consumer's.
    #[error("slot ring: producer index {head} is not within one ring of {tail}")]
    Index {
        /// The producer's index as loaded.
        head: u64,
        /// The consumer's index.
        tail: u64,
    },
    /// The peer made no progress for [`NO_PROGRESS`].
    #[error("slot ring: no progress for {NO_PROGRESS:?} waiting for {0}")]
    NoProgress(&'static str),
}

/// The shared mapping and its geometry.
pub struct SlotRing {
    /// Keeps the mapping alive; every access goes through `base`.
    _map: memmap2::MmapRaw,
    /// Start of the mapping (page-aligned): `DATA_AT + slots * stride` bytes,
    /// live as long as `self`. The header words are only ever accessed
    /// atomically, by either process.
    base: *mut u8,
    /// Bytes per slot: a multiple of 8, at least [`MIN_STRIDE`].
    stride: usize,
    /// Slots in the ring: at least 2, `slots * stride` bytes after `DATA_AT`.
    slots: u64,
}

// SAFETY: `base` points into `_map`, which `SlotRing` owns and which moves with it; nothing in it is tied to a thread, and shared access goes through atomics and the single-producer single-consumer protocol.
unsafe impl Send for SlotRing {}

impl std::fmt::Debug for SlotRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotRing")
            .field("stride", &self.stride)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl SlotRing {
    /// Creates the memfd (allocated, sealed, mapped and prefaulted like a
    /// ring's) for payloads of up to `max_bytes` in about `capacity` slot
    /// bytes, and writes its geometry. Returns the fd to hand to the peer.
    pub fn create(capacity: usize, max_bytes: usize) -> Result<(OwnedFd, SlotRing), SlotRingError> {
        let stride = stride_for(max_bytes);
        let slots = (capacity / stride) as u64;
        if slots < 2 {
            return Err(SlotRingError::Geometry(format!(
                "ring of {capacity} B holds fewer than 2 slots of {stride} B"
            )));
        }
        let len = DATA_AT + slots as usize * stride;
        let fd = sealed::create(c"shm-proto-slot-ring", len as u64)?;
        let map = sealed::map(&fd, len)?;
        let base = map.as_mut_ptr();
        let ring = SlotRing {
            _map: map,
            base,
            stride,
            slots,
        };
        ring.word(STRIDE_AT).store(stride as u64, Ordering::Relaxed);
        ring.word(SLOTS_AT).store(slots, Ordering::Relaxed);
        Ok((fd, ring))
    }

    /// Maps a memfd made by [`SlotRing::create`] (typically inherited) and
    /// checks its geometry against its size.
    pub fn attach(fd: &OwnedFd) -> Result<SlotRing, SlotRingError> {
        let len = rustix::fs::fstat(fd)
            .map_err(|e| RingError::os("fstat", e))?
            .st_size as usize;
        if len < DATA_AT {
            return Err(SlotRingError::Geometry(format!(
                "memfd of {len} B has no header"
            )));
        }
        let map = sealed::map(fd, len)?;
        let base = map.as_mut_ptr();
        let mut ring = SlotRing {
            _map: map,
            base,
            stride: 0,
            slots: 0,
        };
        // The creator wrote the geometry before handing the fd over (a
        // spawn, which orders it before this process exists).
        let stride = ring.word(STRIDE_AT).load(Ordering::Relaxed) as usize;
        let slots = ring.word(SLOTS_AT).load(Ordering::Relaxed);
        if !(stride >= MIN_STRIDE
            && stride.is_multiple_of(8)
            && slots >= 2
            && (slots as usize).checked_mul(stride) == Some(len - DATA_AT))
        {
            return Err(SlotRingError::Geometry(format!(
                "memfd geometry {slots} x {stride} B does not match its {len} B"
            )));
        }
        ring.stride = stride;
        ring.slots = slots;
        Ok(ring)
    }

    /// Largest payload a slot holds.
    pub fn max_payload(&self) -> usize {
        self.stride - WORD
    }

    /// Bytes per slot.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Slots in the ring.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// The atomic word at byte `at` of the header.
    #[inline]
    fn word(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at + 8 <= DATA_AT && at.is_multiple_of(8));
        // SAFETY: `at` is an 8-aligned header offset inside the page-aligned mapping, which lives as long as `self`; the header words are only ever accessed atomically, by either process.
        unsafe { &*self.base.add(at).cast::<AtomicU64>() }
    }

    /// Pointer to slot `pos` (`pos < slots`, which both callers keep).
    #[inline]
    fn slot(&self, pos: usize) -> *mut u8 {
        debug_assert!((pos as u64) < self.slots);
        // SAFETY: `pos < slots`, so the slot lies inside the mapping.
        unsafe { self.base.add(DATA_AT + pos * self.stride) }
    }

    /// Slots per index publication: about `bytes`, at least 1, at most a
    /// quarter of the ring.
    fn batch(&self, bytes: usize) -> u64 {
        ((bytes / self.stride) as u64).clamp(1, (self.slots / 4).max(1))
    }
}

/// Waits for `ready` to hold: spins for [`SPIN_FOR`], then naps [`NAP`]
/// between checks; `on_check` runs about every [`SPINS_PER_CHECK`] spins and
/// may fail; gives up after [`NO_PROGRESS`].
#[inline(never)]
fn spin_until<E: From<SlotRingError>>(
    mut ready: impl FnMut() -> bool,
    mut on_check: impl FnMut() -> Result<(), E>,
    what: &'static str,
) -> Result<(), E> {
    let started = Instant::now();
    loop {
        for _ in 0..SPINS_PER_CHECK {
            if ready() {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        on_check()?;
        let waited = started.elapsed();
        if waited > NO_PROGRESS {
            return Err(SlotRingError::NoProgress(what).into());
        }
        if waited > SPIN_FOR {
            std::thread::sleep(NAP);
        }
    }
}

/// Producer side: writes slots, publishes its index in batches.
#[derive(Debug)]
pub struct SlotProducer {
    ring: SlotRing,
    /// Slots written so far (private).
    head: u64,
    /// Last value stored to the shared producer index.
    published: u64,
    /// Last consumer index loaded: slots below it are free.
    cached_tail: u64,
    /// `head % slots`: the next slot to write.
    pos: usize,
    /// Slots per publication.
    batch: u64,
}

impl SlotProducer {
    /// The producer over `ring` (one per ring), publishing about every
    /// `capacity / 16` bytes, at most 64 KiB (shm-proto's producer default).
    pub fn new(ring: SlotRing) -> Self {
        let bytes = (ring.slots as usize * ring.stride / 16).clamp(256, 64 << 10);
        let batch = ring.batch(bytes);
        SlotProducer {
            ring,
            head: 0,
            published: 0,
            cached_tail: 0,
            pos: 0,
            batch,
        }
    }

    /// The ring written.
    pub fn ring(&self) -> &SlotRing {
        &self.ring
    }

    /// Publishes every slot written so far.
    #[inline]
    pub fn publish(&mut self) {
        // Release: makes the slots written so far visible to the consumer's
        // Acquire load of `head` in `SlotConsumer::next`.
        self.ring.word(HEAD_AT).store(self.head, Ordering::Release);
        self.published = self.head;
    }

    /// Appends one slot with length word `word` and `payload` (at most
    /// [`SlotRing::max_payload`] bytes; the word need not be its length),
    /// waiting (spin, then naps) while the ring is full.
    #[inline]
    pub fn push(&mut self, word: u64, payload: &[u8]) -> Result<(), SlotRingError> {
        if payload.len() > self.ring.max_payload() {
            return Err(SlotRingError::TooLong {
                len: payload.len() as u64,
                max: self.ring.max_payload() as u64,
            });
        }
        if self.head.wrapping_sub(self.cached_tail) == self.ring.slots {
            self.publish();
            let (ring, head) = (&self.ring, self.head);
            let mut tail = self.cached_tail;
            spin_until(
                || {
                    // Acquire: pairs with the consumer's Release store of
                    // `tail` in `SlotConsumer::release`, so its reads of the
                    // freed slots are done before they are overwritten.
                    tail = ring.word(TAIL_AT).load(Ordering::Acquire);
                    head.wrapping_sub(tail) < ring.slots
                },
                || Ok::<(), SlotRingError>(()),
                "a free slot",
            )?;
            self.cached_tail = tail;
        }
        let slot = self.ring.slot(self.pos);
        // SAFETY: the slot is inside the mapping, 8-aligned, `payload` fits after the length word (checked above), and the slot is free: the consumer released it (tail passed it) and will not read it before `head` is published past it.
        unsafe {
            slot.cast::<u64>().write(word);
            std::ptr::copy_nonoverlapping(payload.as_ptr(), slot.add(WORD), payload.len());
        }
        self.head += 1;
        self.pos += 1;
        if self.pos as u64 == self.ring.slots {
            self.pos = 0;
        }
        if self.head - self.published >= self.batch {
            self.publish();
        }
        Ok(())
    }
}

/// Consumer side: reads slots, releases them in batches.
#[derive(Debug)]
pub struct SlotConsumer {
    ring: SlotRing,
    /// Slots consumed so far (private).
    tail: u64,
    /// Last value stored to the shared consumer index.
    released: u64,
    /// Last producer index loaded and checked: `tail <= cached_head <= tail + slots`.
    cached_head: u64,
    /// `tail % slots`: the next slot to read.
    pos: usize,
    /// Slots per release.
    batch: u64,
}

impl SlotConsumer {
    /// The consumer over `ring` (one per ring), releasing about every
    /// `capacity / 8` bytes, at most 256 KiB (shm-proto's consumer default).
    pub fn new(ring: SlotRing) -> Self {
        let bytes = (ring.slots as usize * ring.stride / 8).clamp(256, 256 << 10);
        let batch = ring.batch(bytes);
        SlotConsumer {
            ring,
            tail: 0,
            released: 0,
            cached_head: 0,
            pos: 0,
            batch,
        }
    }

    /// The ring read.
    pub fn ring(&self) -> &SlotRing {
        &self.ring
    }

    /// Releases every slot consumed so far to the producer.
    #[inline]
    pub fn release(&mut self) {
        // Release: our reads of the consumed slots happen before the
        // producer's Acquire load of `tail` in `SlotProducer::push` lets it
        // overwrite them.
        self.ring.word(TAIL_AT).store(self.tail, Ordering::Release);
        self.released = self.tail;
    }

    /// The next slot, waiting for the producer (spin, then naps; `on_check`
    /// runs about every 256 spins and may fail, e.g. when the peer died).
    /// The slot is released (in a batch) when the [`ReadSlot`] is dropped.
    #[inline]
    pub fn next<E: From<SlotRingError>>(
        &mut self,
        on_check: impl FnMut() -> Result<(), E>,
    ) -> Result<ReadSlot<'_>, E> {
        if self.tail == self.cached_head {
            self.release();
            let (ring, tail) = (&self.ring, self.tail);
            let mut head = tail;
            spin_until(
                || {
                    // Acquire: pairs with the producer's Release store of
                    // `head` in `SlotProducer::publish`: the slots below it
                    // are fully written.
                    head = ring.word(HEAD_AT).load(Ordering::Acquire);
                    head != tail
                },
                on_check,
                "slots",
            )?;
            if !(head > tail && head - tail <= ring.slots) {
                return Err(SlotRingError::Index { head, tail }.into());
            }
            self.cached_head = head;
        }
        let slot = self.ring.slot(self.pos);
        // SAFETY: the slot is inside the mapping and 8-aligned; the producer wrote it before publishing `head` past it and will not touch it again until `tail` is released past it.
        let word = unsafe { slot.cast::<u64>().read() };
        Ok(ReadSlot {
            consumer: self,
            slot: slot.cast_const(),
            word,
        })
    }

    /// Moves past the current slot, releasing a batch when one is complete.
    #[inline]
    fn advance(&mut self) {
        self.tail += 1;
        self.pos += 1;
        if self.pos as u64 == self.ring.slots {
            self.pos = 0;
        }
        if self.tail - self.released >= self.batch {
            self.release();
        }
    }
}

/// A published slot borrowed from a [`SlotConsumer`]; moved past (and
/// released with its batch) when dropped.
pub struct ReadSlot<'a> {
    /// Held mutably, so the slot cannot be released while `self` lives.
    consumer: &'a mut SlotConsumer,
    /// Start of the slot. Invariant: inside the mapping (which `consumer`
    /// keeps alive), published and not yet released.
    slot: *const u8,
    /// The slot's length word, read once.
    word: u64,
}

impl ReadSlot<'_> {
    /// The slot's length word as the producer wrote it.
    #[inline]
    pub fn word(&self) -> u64 {
        self.word
    }

    /// The first `len` payload bytes of the slot (untrusted content; see the
    /// module docs on aliasing), or an error if the slot holds fewer.
    #[inline]
    pub fn payload(&self, len: u64) -> Result<&[u8], SlotRingError> {
        let max = self.consumer.ring.max_payload() as u64;
        if len > max {
            return Err(SlotRingError::TooLong { len, max });
        }
        // SAFETY: `len` bytes after the length word are inside the slot (checked above, field invariant), and an honest producer writes none of them while the slice borrows `self`.
        Ok(unsafe { std::slice::from_raw_parts(self.slot.add(WORD), len as usize) })
    }
}

impl Drop for ReadSlot<'_> {
    #[inline]
    fn drop(&mut self) {
        self.consumer.advance();
    }
}

impl std::fmt::Debug for ReadSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSlot")
            .field("word", &self.word)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cross_threads_in_order() {
        let (fd, ring) = SlotRing::create(64 << 10, 100).unwrap();
        assert_eq!(ring.stride(), stride_for(100));
        assert_eq!(ring.max_payload(), 104);
        let attached = SlotRing::attach(&fd).unwrap();
        assert_eq!(
            (attached.stride(), attached.slots()),
            (ring.stride(), ring.slots())
        );
        let rows = 10 * ring.slots();
        let producer = std::thread::spawn(move || {
            let mut producer = SlotProducer::new(attached);
            for i in 0..rows {
                let row = vec![i as u8; (i % 100) as usize];
                producer.push(row.len() as u64, &row).unwrap();
            }
            producer.push(u64::MAX, b"end").unwrap();
            producer.publish();
        });
        let mut consumer = SlotConsumer::new(ring);
        for i in 0..rows {
            let slot = consumer.next(|| Ok::<(), SlotRingError>(())).unwrap();
            assert_eq!(slot.word(), i % 100);
            assert_eq!(
                slot.payload(slot.word()).unwrap(),
                vec![i as u8; (i % 100) as usize]
            );
        }
        let slot = consumer.next(|| Ok::<(), SlotRingError>(())).unwrap();
        assert_eq!(slot.word(), u64::MAX);
        assert_eq!(slot.payload(3).unwrap(), b"end");
        assert!(matches!(
            slot.payload(105),
            Err(SlotRingError::TooLong { .. })
        ));
        drop(slot);
        consumer.release();
        producer.join().unwrap();
    }

    #[test]
    fn geometry_is_checked() {
        assert!(matches!(
            SlotRing::create(100, 100),
            Err(SlotRingError::Geometry(_))
        ));
        let (fd, ring) = SlotRing::create(4096, 24).unwrap();
        let mut producer = SlotProducer::new(ring);
        assert!(matches!(
            producer.push(0, &[0; 25]),
            Err(SlotRingError::TooLong { len: 25, max: 24 })
        ));
        // A memfd too short for the header.
        let short = crate::sealed::create(c"short", 64).unwrap();
        assert!(matches!(
            SlotRing::attach(&short),
            Err(SlotRingError::Geometry(_))
        ));
        drop(fd);
    }
}
