//! The shared mapping behind a ring: an unnamed, sealed memfd mapped
//! `MAP_SHARED`, created by the supervisor and attached by the child.

#[cfg(not(loom))]
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

#[cfg(not(loom))]
use crate::error::CorruptField;
use crate::error::{Half, RingError};
#[cfg(not(loom))]
use crate::layout::MAGIC;
use crate::layout::{self, HEADER_BYTES, RingHeader, state};
use crate::record::{RECORD_HEADER_BYTES, record_size};
#[cfg(not(loom))]
use crate::sealed;
use crate::sync::{AtomicBool, Ordering, fence};
use crate::wait;

/// Size and identity of a ring to create. Build it with
/// [`RingConfig::with_capacity`] (or `default()`) and the `with_*` setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingConfig {
    /// Bytes of record data; a power of two in
    /// [`MIN_CAPACITY`](crate::MIN_CAPACITY)`..=`[`MAX_CAPACITY`](crate::MAX_CAPACITY).
    pub capacity: usize,
    /// Largest record payload; `record_size(max_payload)` must not exceed
    /// `capacity / 8`, so a full-size record always fits after a wrap.
    pub max_payload: usize,
    /// Generation of the child the ring is made for.
    pub generation: u64,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            capacity: 4 << 20,
            max_payload: 256 << 10,
            generation: 1,
        }
    }
}

impl RingConfig {
    /// A config with `capacity` bytes and the largest payload it allows.
    pub fn with_capacity(capacity: usize) -> Self {
        RingConfig {
            capacity,
            max_payload: Self::largest_payload_for(capacity),
            generation: 1,
        }
    }

    /// Sets the largest record payload.
    #[must_use]
    pub fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = max_payload;
        self
    }

    /// Sets the generation of the child the ring is made for.
    #[must_use]
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The largest `max_payload` a ring of `capacity` bytes accepts.
    pub const fn largest_payload_for(capacity: usize) -> usize {
        (capacity / 8).saturating_sub(RECORD_HEADER_BYTES)
    }

    /// Checks the rules stated on the fields.
    pub fn validate(&self) -> Result<(), RingError> {
        check_geometry(self.capacity as u64, self.max_payload as u64).map_err(|reason| {
            RingError::InvalidConfig {
                reason: reason.to_string(),
            }
        })
    }
}

fn check_geometry(capacity: u64, max_payload: u64) -> Result<(), &'static str> {
    if !capacity.is_power_of_two() {
        return Err("capacity must be a power of two");
    }
    if capacity < layout::MIN_CAPACITY as u64 || capacity > layout::MAX_CAPACITY as u64 {
        return Err("capacity must be between 4 KiB and 1 GiB");
    }
    if max_payload == 0 {
        return Err("max_payload must be at least 1 byte");
    }
    if record_size(max_payload as usize) as u64 > capacity / 8 {
        return Err("a record of max_payload bytes must fit in capacity / 8");
    }
    Ok(())
}

enum Backing {
    #[cfg(not(loom))]
    Shared {
        /// Owns the mapping that `header` and `data` point into.
        _map: memmap2::MmapRaw,
        fd: OwnedFd,
    },
    #[cfg(loom)]
    Heap {
        /// Owns the header that `RingMemory::header` points into.
        _header: Box<RingHeader>,
        /// Owns the data area that `RingMemory::data` points into.
        _data: Box<[std::cell::UnsafeCell<u8>]>,
    },
}

/// A mapped ring: header plus data area, shared by the two halves (each half
/// holds an `Arc<RingMemory>`; the mapping lives until both are gone).
pub struct RingMemory {
    #[cfg_attr(loom, allow(dead_code))]
    backing: Backing,
    header: *const RingHeader,
    data: *mut u8,
    capacity: u64,
    max_payload: u32,
    generation: u64,
    /// Set once a [`Producer`](crate::Producer) took this mapping; never reset.
    producer_claimed: AtomicBool,
    /// Set once a [`Consumer`](crate::Consumer) took this mapping; never reset.
    consumer_claimed: AtomicBool,
    /// Process-local (never in shared memory, so a peer cannot forge it):
    /// set by a deliberate wake through a
    /// [`ConsumerRemote`](crate::ConsumerRemote) before its `FUTEX_WAKE`,
    /// cleared by the consumer when it reports
    /// [`Readiness::Woken`](crate::Readiness::Woken).
    consumer_woken: AtomicBool,
}

// SAFETY: the raw pointers point into `backing`, which `RingMemory` owns and
// which lives as long as it does; all cross-thread access to the header goes
// through atomics, and to the data area through the single-producer /
// single-consumer protocol enforced by the claim flags.
unsafe impl Send for RingMemory {}
// SAFETY: as above; `&RingMemory` only exposes atomics and claim-checked halves.
unsafe impl Sync for RingMemory {}

impl std::fmt::Debug for RingMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingMemory")
            .field("capacity", &self.capacity)
            .field("max_payload", &self.max_payload)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl RingMemory {
    /// Creates a ring in a new unnamed memfd: sized, backed by allocated pages
    /// (`fallocate`, so a memory shortage fails here and not as SIGBUS later),
    /// sealed against shrinking and growing, mapped shared and prefaulted.
    #[cfg(not(loom))]
    pub fn create(config: &RingConfig) -> Result<Self, RingError> {
        config.validate()?;
        let total = (HEADER_BYTES + config.capacity) as u64;
        let fd = sealed::create(c"ringworker-ring", total)?;
        let memory = Self::map(fd, total as usize, true)?;
        memory.header().initialize(
            config.capacity as u64,
            config.max_payload as u32,
            config.generation,
        );
        Ok(RingMemory {
            capacity: config.capacity as u64,
            max_payload: config.max_payload as u32,
            generation: config.generation,
            ..memory
        })
    }

    /// Attaches to a ring created by [`RingMemory::create`] in another
    /// process, given its fd. Validates magic, layout version, geometry
    /// against the file size and, if given, the expected generation.
    #[cfg(not(loom))]
    pub fn attach(fd: OwnedFd, expected_generation: Option<u64>) -> Result<Self, RingError> {
        let size = rustix::fs::fstat(&fd)
            .map_err(|e| RingError::os("fstat", e))?
            .st_size as u64;
        if size < (HEADER_BYTES + layout::MIN_CAPACITY) as u64
            || size > (HEADER_BYTES + layout::MAX_CAPACITY) as u64
        {
            return Err(RingError::corrupt(
                CorruptField::Capacity,
                size,
                "file size is not header + a valid capacity",
            ));
        }
        // Not prefaulted: the child's start-up is on a caller's clock.
        let mut memory = Self::map(fd, size as usize, false)?;
        let id = &memory.header().identity;
        // Pairs with the Release store of `magic` in `RingHeader::initialize`.
        let magic = id.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(RingError::corrupt(
                CorruptField::Magic,
                magic,
                "not a ringworker ring",
            ));
        }
        let version = id.layout_version.load(Ordering::Relaxed);
        if version != layout::LAYOUT_VERSION {
            return Err(RingError::corrupt(
                CorruptField::LayoutVersion,
                u64::from(version),
                "unsupported layout version",
            ));
        }
        let header_bytes = id.header_bytes.load(Ordering::Relaxed);
        let capacity = id.capacity.load(Ordering::Relaxed);
        if header_bytes as usize != HEADER_BYTES || capacity + HEADER_BYTES as u64 != size {
            return Err(RingError::corrupt(
                CorruptField::Capacity,
                capacity,
                "capacity does not match the file size",
            ));
        }
        let max_payload = id.max_payload.load(Ordering::Relaxed);
        if let Err(detail) = check_geometry(capacity, u64::from(max_payload)) {
            let field = if capacity.is_power_of_two() {
                CorruptField::MaxRecord
            } else {
                CorruptField::Capacity
            };
            return Err(RingError::corrupt(field, u64::from(max_payload), detail));
        }
        let generation = id.generation.load(Ordering::Relaxed);
        if let Some(expected) = expected_generation
            && generation != expected
        {
            return Err(RingError::corrupt(
                CorruptField::Generation,
                generation,
                "generation differs from the expected one",
            ));
        }
        memory.capacity = capacity;
        memory.max_payload = max_payload;
        memory.generation = generation;
        Ok(memory)
    }

    #[cfg(not(loom))]
    fn map(fd: OwnedFd, len: usize, populate: bool) -> Result<Self, RingError> {
        let map = sealed::map_with(&fd, len, populate)?;
        let base = map.as_mut_ptr();
        // SAFETY: `len >= HEADER_BYTES` (checked by both callers): still inside the mapping.
        let data = unsafe { base.add(HEADER_BYTES) };
        Ok(RingMemory {
            header: base.cast::<RingHeader>().cast_const(),
            data,
            backing: Backing::Shared { _map: map, fd },
            capacity: 0,
            max_payload: 0,
            generation: 0,
            producer_claimed: AtomicBool::new(false),
            consumer_claimed: AtomicBool::new(false),
            consumer_woken: AtomicBool::new(false),
        })
    }

    /// Faults the whole mapping in now (`MADV_POPULATE_WRITE`, Linux 5.14+;
    /// a no-op where the kernel lacks it). A child attaches without
    /// prefaulting so its handshake is not delayed, and calls this after the
    /// handshake, while it waits for its first request, so the first lap of
    /// the ring does not pay a page fault per page.
    #[cfg(not(loom))]
    pub fn prefault(&self) {
        let Backing::Shared { _map: map, .. } = &self.backing;
        // Populating changes no content and fails harmlessly (EINVAL) on
        // kernels without it.
        // SAFETY: advice on exactly the range this mapping owns.
        unsafe {
            libc::madvise(
                map.as_mut_ptr().cast(),
                map.len(),
                libc::MADV_POPULATE_WRITE,
            );
        }
    }

    /// A heap-backed ring for the loom model.
    #[cfg(loom)]
    pub fn new_for_model(config: &RingConfig) -> Result<Self, RingError> {
        config.validate()?;
        let header = Box::new(RingHeader::new_for_model(
            config.capacity as u64,
            config.max_payload as u32,
            config.generation,
        ));
        let data: Box<[std::cell::UnsafeCell<u8>]> = (0..config.capacity)
            .map(|_| std::cell::UnsafeCell::new(0))
            .collect();
        let header_ptr: *const RingHeader = &*header;
        let data_ptr = data.as_ptr() as *mut u8;
        Ok(RingMemory {
            backing: Backing::Heap {
                _header: header,
                _data: data,
            },
            header: header_ptr,
            data: data_ptr,
            capacity: config.capacity as u64,
            max_payload: config.max_payload as u32,
            generation: config.generation,
            producer_claimed: AtomicBool::new(false),
            consumer_claimed: AtomicBool::new(false),
            consumer_woken: AtomicBool::new(false),
        })
    }

    /// The shared header (crate-private: nothing outside this crate stores
    /// to a header word; see `layout` for who writes what).
    #[inline]
    pub(crate) fn header(&self) -> &RingHeader {
        // Every field of `RingHeader` is an atomic, valid for any bit pattern
        // and for concurrent access from other processes.
        // SAFETY: `header` starts a live, page-aligned mapping of >= HEADER_BYTES owned by `self`.
        unsafe { &*self.header }
    }

    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data
    }

    /// The memfd, to hand to a child (see [`crate::ChildFds`]).
    #[cfg(not(loom))]
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.backing {
            Backing::Shared { fd, .. } => fd.as_fd(),
        }
    }

    /// Bytes of record data.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Largest record payload.
    pub fn max_payload(&self) -> usize {
        self.max_payload as usize
    }

    /// Generation recorded at creation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Total bytes of the mapping (header + data), i.e. the shared memory it pins.
    pub fn mapped_bytes(&self) -> usize {
        HEADER_BYTES + self.capacity as usize
    }

    /// The producer's heartbeat counter (untrusted: a value the peer writes).
    #[inline]
    pub(crate) fn heartbeat(&self) -> u64 {
        self.header()
            .producer_stats
            .heartbeat
            .load(Ordering::Relaxed)
    }

    /// Bumps the heartbeat counter (producer side only: called through
    /// [`Producer::beat`](crate::Producer::beat)).
    ///
    /// A plain load and store, not a locked read-modify-write: the producer
    /// side is the heartbeat's only writer, and callers may beat once per row.
    #[inline]
    pub(crate) fn beat(&self) {
        let heartbeat = &self.header().producer_stats.heartbeat;
        heartbeat.store(
            heartbeat.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// How often the producer found the ring full (untrusted, as reported by the peer).
    #[inline]
    pub(crate) fn full_waits(&self) -> u64 {
        self.header()
            .producer_stats
            .full_waits
            .load(Ordering::Relaxed)
    }

    /// Records that the child read `request` off its control channel
    /// (producer side only: called through
    /// [`Producer::accept`](crate::Producer::accept)).
    #[inline]
    pub(crate) fn accept(&self, request: u64) {
        // Pairs with the Acquire load in `accepted_request`: what the child
        // published before taking the request (the previous request's end
        // marker) is visible to a supervisor that sees the new id.
        self.header()
            .producer_stats
            .accepted_request
            .store(request, Ordering::Release);
    }

    /// The id of the last request the child read (untrusted, as reported by the peer).
    #[inline]
    pub(crate) fn accepted_request(&self) -> u64 {
        // Pairs with the Release store in `accept`.
        self.header()
            .producer_stats
            .accepted_request
            .load(Ordering::Acquire)
    }

    /// Asks the producer to stop working on `request` (0 clears) and wakes it
    /// if it is blocked on a full ring (consumer side only).
    pub(crate) fn request_cancel(&self, request: u64) {
        // Pairs with the Acquire load in `cancel_requested`.
        self.header()
            .control
            .cancel_request
            .store(request, Ordering::Release);
        self.wake_producer();
    }

    /// The request id whose cancellation was requested (0: none). A plain
    /// load, cheap enough to call per row.
    #[inline]
    pub(crate) fn cancel_requested(&self) -> u64 {
        // Pairs with the Release store in `request_cancel`.
        self.header().control.cancel_request.load(Ordering::Acquire)
    }

    /// The [`state`] bits.
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        // Pairs with the Release `fetch_or` in `set_state`.
        self.header().control.state.load(Ordering::Acquire)
    }

    /// Sets state bits and wakes both sides so blocked calls notice.
    pub(crate) fn set_state(&self, bits: u32) {
        self.header()
            .control
            .state
            .fetch_or(bits, Ordering::Release);
        self.wake_consumer_word();
        self.wake_producer();
    }

    /// Marks the ring unusable (after corruption was found) and wakes both sides.
    pub(crate) fn poison(&self) {
        self.set_state(state::POISONED);
    }

    /// A deliberate wake of the consumer from this process (a watchdog, a
    /// cancel token): marks it in the process-local [`RingMemory::consumer_woken`]
    /// flag, so [`Consumer::wait`](crate::Consumer::wait) tells it from a
    /// spurious wake-up and returns [`Readiness::Woken`](crate::Readiness::Woken).
    pub(crate) fn wake_consumer(&self) {
        // Pairs with the Acquire swap in `take_consumer_wake`; the SeqCst
        // fence in `wake_consumer_word` orders it before the sleep-word reset.
        self.consumer_woken.store(true, Ordering::Release);
        self.wake_consumer_word();
    }

    /// Takes (clears) a pending deliberate wake of the consumer.
    #[inline]
    pub(crate) fn take_consumer_wake(&self) -> bool {
        // Cheap pre-check: the flag is almost always false.
        // Pairs with the Release store in `wake_consumer`.
        self.consumer_woken.load(Ordering::Relaxed)
            && self.consumer_woken.swap(false, Ordering::Acquire)
    }

    /// Resets the consumer's sleep word and `FUTEX_WAKE`s it.
    fn wake_consumer_word(&self) {
        // Orders the caller's earlier stores (state, cancel word, wake flag)
        // before the reset of the sleep word; pairs with the fence the
        // sleeper issues between announcing itself and re-checking.
        fence(Ordering::SeqCst);
        let word = &self.header().consumer_sleep.sleeping;
        word.store(0, Ordering::Relaxed);
        wait::futex_wake(word);
    }

    /// Wakes a producer sleeping on a full ring.
    pub(crate) fn wake_producer(&self) {
        // Orders the caller's earlier stores (state, cancel word) before
        // the reset of the sleep word; pairs with the fence the sleeper
        // issues between announcing itself and re-checking.
        fence(Ordering::SeqCst);
        let word = &self.header().producer_sleep.sleeping;
        word.store(0, Ordering::Relaxed);
        wait::futex_wake(word);
    }

    pub(crate) fn claim(&self, producer: bool) -> Result<(), RingError> {
        let (flag, half) = if producer {
            (&self.producer_claimed, Half::Producer)
        } else {
            (&self.consumer_claimed, Half::Consumer)
        };
        // Only the flag itself is synchronized here (no data is published
        // through it), so Relaxed would do; AcqRel keeps claims totally ordered.
        if flag.swap(true, Ordering::AcqRel) {
            return Err(RingError::AlreadyClaimed { half });
        }
        Ok(())
    }
}

/// A word of the shared header, for [`RingMemory::debug_store`] and friends.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderWord {
    /// The identity line's magic number (64 bits).
    Magic,
    /// The producer's write index (64 bits).
    WriteIndex,
    /// The consumer's read index (64 bits).
    ReadIndex,
    /// The consumer's futex sleep word (32 bits).
    ConsumerSleep,
    /// The producer's futex sleep word (32 bits).
    ProducerSleep,
    /// The close/poison state bits (32 bits).
    State,
    /// The cancel word (64 bits).
    CancelRequest,
    /// The heartbeat counter (64 bits).
    Heartbeat,
    /// The id of the last request the child accepted (64 bits).
    AcceptedRequest,
}

/// Fault injection: raw, protocol-free access to the shared header and data,
/// for tests, benchmarks and the worker's scribble faults. Only with the
/// non-default `fault-injection` feature; never used by the halves.
#[cfg(feature = "fault-injection")]
impl RingMemory {
    /// Stores `value` into a header word without any protocol (32-bit words
    /// take the low 32 bits), as a hostile or buggy peer would.
    pub fn debug_store(&self, word: HeaderWord, value: u64) {
        let h = self.header();
        let o = Ordering::Release;
        match word {
            HeaderWord::Magic => h.identity.magic.store(value, o),
            HeaderWord::WriteIndex => h.producer.write_index.store(value, o),
            HeaderWord::ReadIndex => h.consumer.read_index.store(value, o),
            HeaderWord::ConsumerSleep => h.consumer_sleep.sleeping.store(value as u32, o),
            HeaderWord::ProducerSleep => h.producer_sleep.sleeping.store(value as u32, o),
            HeaderWord::State => h.control.state.store(value as u32, o),
            HeaderWord::CancelRequest => h.control.cancel_request.store(value, o),
            HeaderWord::Heartbeat => h.producer_stats.heartbeat.store(value, o),
            HeaderWord::AcceptedRequest => h.producer_stats.accepted_request.store(value, o),
        }
    }

    /// Loads a header word (untrusted, as any shared value).
    pub fn debug_load(&self, word: HeaderWord) -> u64 {
        let h = self.header();
        // Pairs with the Release stores of the halves (and of `debug_store`).
        let o = Ordering::Acquire;
        match word {
            HeaderWord::Magic => h.identity.magic.load(o),
            HeaderWord::WriteIndex => h.producer.write_index.load(o),
            HeaderWord::ReadIndex => h.consumer.read_index.load(o),
            HeaderWord::ConsumerSleep => u64::from(h.consumer_sleep.sleeping.load(o)),
            HeaderWord::ProducerSleep => u64::from(h.producer_sleep.sleeping.load(o)),
            HeaderWord::State => u64::from(h.control.state.load(o)),
            HeaderWord::CancelRequest => h.control.cancel_request.load(o),
            HeaderWord::Heartbeat => h.producer_stats.heartbeat.load(o),
            HeaderWord::AcceptedRequest => h.producer_stats.accepted_request.load(o),
        }
    }

    /// `FUTEX_WAKE` on a sleep word, without touching it or any
    /// process-local flag: the spurious wake-up a hostile peer can send.
    /// Other words are ignored.
    pub fn debug_futex_wake(&self, word: HeaderWord) {
        let h = self.header();
        match word {
            HeaderWord::ConsumerSleep => wait::futex_wake(&h.consumer_sleep.sleeping),
            HeaderWord::ProducerSleep => wait::futex_wake(&h.producer_sleep.sleeping),
            _ => {}
        }
    }

    /// Overwrites bytes of the mapping at `offset` (from the start of the
    /// header) without any protocol. Bounds-checked.
    #[cfg(not(loom))]
    pub fn debug_write_bytes(&self, offset: usize, bytes: &[u8]) -> Result<(), RingError> {
        let end = offset.checked_add(bytes.len());
        if end.is_none_or(|end| end > self.mapped_bytes()) {
            return Err(RingError::InvalidConfig {
                reason: format!(
                    "write of {} bytes at {offset} is outside the mapping",
                    bytes.len()
                ),
            });
        }
        let base = self.header.cast::<u8>().cast_mut();
        for (i, &byte) in bytes.iter().enumerate() {
            // A volatile byte store: the same racy-but-bounded write a hostile
            // peer makes.
            // SAFETY: `offset + i < mapped_bytes()` (checked above): inside the live mapping.
            unsafe { base.add(offset + i).write_volatile(byte) };
        }
        Ok(())
    }
}
