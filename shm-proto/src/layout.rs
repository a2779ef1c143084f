//! The ring's shared-memory header: what lives where, and who may write it.
//!
//! Crate-private: outside this crate nothing can name a header word. Inside
//! it, the "written only by the producer/consumer" rules below are kept by
//! construction: each word is stored to only from the half that owns it
//! (`Producer` for the write index, heartbeat and producer state; `Consumer`
//! and its `ConsumerRemote` for the read index, cancel word, poison and
//! consumer state), and both halves can be claimed once per mapping. The
//! sleep words are the exception by design (the sleeper sets its own word,
//! either side resets it). A hostile peer in another process can still write
//! anything, which is why the consumer validates every value it loads.
//! Raw stores for tests exist only with the `fault-injection` feature.
//!
//! The mapping is `HEADER_BYTES` of header followed by `capacity` bytes of
//! record data. The header is split into 128-byte lines so that words written
//! by the producer, words written by the consumer and words written rarely
//! never share a cache line (two adjacent 64-byte lines are prefetched
//! together on current x86 parts, hence 128).

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// `b"RNGWRKR\x01"` read as a little-endian `u64`: the first word of every ring.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RNGWRKR\x01");

/// Version of the shared-memory layout described in this module. Bumped on
/// any change to the header or record format. 2: fragment records
/// (`RecordKind::Fragment`) for rows larger than the maximum record. 3: the
/// producer stats line carries the accepted-request word
/// ([`ConsumerRemote::accepted_request`](crate::ConsumerRemote::accepted_request)); a
/// version-2 producer never stores it, so a supervisor reading a v2 ring
/// would take every request for one the child never read.
pub const LAYOUT_VERSION: u32 = 3;

/// Bytes reserved for the header; record data starts right after, page aligned.
pub const HEADER_BYTES: usize = 4096;

/// Size of one header line.
#[cfg_attr(loom, allow(dead_code))]
pub const LINE: usize = 128;

/// Smallest allowed capacity of the data area.
pub const MIN_CAPACITY: usize = 4096;

/// Largest allowed capacity of the data area (1 GiB).
pub const MAX_CAPACITY: usize = 1 << 30;

/// Bits of [`ControlLine::state`].
pub mod state {
    /// The producer will write no more records.
    pub const PRODUCER_CLOSED: u32 = 1 << 0;
    /// The consumer will read no more records.
    pub const CONSUMER_CLOSED: u32 = 1 << 1;
    /// The supervisor found the ring corrupt; nobody may use it again.
    pub const POISONED: u32 = 1 << 2;
}

/// Fields fixed at creation. Written once by the creator before the fd is
/// handed to anyone, read-only afterwards (a hostile peer may still scribble
/// here, which is why the consumer re-checks `magic` and keeps private copies
/// of everything else).
#[repr(C, align(128))]
pub struct IdentityLine {
    /// Always [`MAGIC`].
    pub magic: AtomicU64,
    /// Always [`LAYOUT_VERSION`].
    pub layout_version: AtomicU32,
    /// Always [`HEADER_BYTES`].
    pub header_bytes: AtomicU32,
    /// Bytes in the data area; a power of two in `MIN_CAPACITY ..= MAX_CAPACITY`.
    pub capacity: AtomicU64,
    /// Largest payload a record may carry; `record_size(max_payload) <= capacity / 8`.
    pub max_payload: AtomicU32,
    _reserved: AtomicU32,
    /// Generation of the child this ring was made for; never changes.
    pub generation: AtomicU64,
}

/// The producer's publication line: written only by the producer.
#[repr(C, align(128))]
pub struct ProducerLine {
    /// Total bytes ever published ("head"). Invariant: `write_index` is a
    /// multiple of 8 and lies in `read_index ..= read_index + capacity`.
    /// Stored with `Release` by `Producer::publish` after the record bytes.
    pub write_index: AtomicU64,
}

/// The consumer's publication line: written only by the consumer.
#[repr(C, align(128))]
pub struct ConsumerLine {
    /// Total bytes ever released ("tail"). Invariant: `read_index` is a
    /// multiple of 8 and lies in `write_index - capacity ..= write_index`.
    /// Stored with `Release` by `Consumer::publish` after the consumer's last
    /// read of the released bytes.
    pub read_index: AtomicU64,
}

/// The sleep word's value of a sleeper that wants to be woken at once.
pub(crate) const SLEEPING: u32 = 1;

/// The consumer's sleep word's value of a lazy sleeper: wake it when you
/// publish, but do not publish early for it (see the consumer's *Adaptive
/// waiting*). A producer that does not know it treats it as [`SLEEPING`].
pub(crate) const SLEEPING_LAZY: u32 = 2;

/// A futex word on its own line: non-zero while the owning side has
/// announced that it is about to sleep ([`SLEEPING`], or for the consumer
/// also [`SLEEPING_LAZY`]), 0 otherwise. Set non-zero only by the sleeper,
/// reset to 0 by either side.
#[repr(C, align(128))]
pub struct SleepLine {
    /// The futex word.
    pub sleeping: AtomicU32,
}

/// Liveness and accounting words written by the producer.
#[repr(C, align(128))]
pub struct ProducerStatsLine {
    /// Bumped by the producer's runtime while it makes progress, and while it
    /// waits for space; a stale value means a hung producer.
    pub heartbeat: AtomicU64,
    /// How many times the producer found the ring full and had to wait.
    pub full_waits: AtomicU64,
    /// Id of the last request the child's runtime read off its control
    /// channel, stored (Release, by `Producer::accept`) before the command
    /// runs; 0 before the first. Lets the supervisor tell "died before it
    /// ever read this request" from "died running it". Untrusted: the peer
    /// may store anything, so it only ever informs a diagnosis.
    pub accepted_request: AtomicU64,
}

/// Words written by the supervisor, read by the producer.
#[repr(C, align(128))]
pub struct ControlLine {
    /// Id of the request the supervisor wants cancelled (0: none). Compared
    /// against the request being served, so a late cancel of an earlier
    /// request never hits a later one.
    pub cancel_request: AtomicU64,
    /// Bit set of [`state`] flags.
    pub state: AtomicU32,
}

/// The whole shared header. `#[repr(C)]`, every field atomic.
#[repr(C)]
pub struct RingHeader {
    /// Creation-time constants.
    pub identity: IdentityLine,
    /// The producer's index.
    pub producer: ProducerLine,
    /// The consumer's index.
    pub consumer: ConsumerLine,
    /// Futex word of a sleeping consumer ("waiting for data").
    pub consumer_sleep: SleepLine,
    /// Futex word of a sleeping producer ("waiting for space").
    pub producer_sleep: SleepLine,
    /// Heartbeat and backpressure counter.
    pub producer_stats: ProducerStatsLine,
    /// Cancel word and close/poison state.
    pub control: ControlLine,
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<IdentityLine>() == LINE);
    assert!(size_of::<ProducerLine>() == LINE);
    assert!(size_of::<ConsumerLine>() == LINE);
    assert!(size_of::<SleepLine>() == LINE);
    assert!(size_of::<ProducerStatsLine>() == LINE);
    assert!(size_of::<ControlLine>() == LINE);
    assert!(align_of::<RingHeader>() == LINE);
    assert!(offset_of!(RingHeader, identity) == 0);
    assert!(offset_of!(RingHeader, producer) == LINE);
    assert!(offset_of!(RingHeader, consumer) == 2 * LINE);
    assert!(offset_of!(RingHeader, consumer_sleep) == 3 * LINE);
    assert!(offset_of!(RingHeader, producer_sleep) == 4 * LINE);
    assert!(offset_of!(RingHeader, producer_stats) == 5 * LINE);
    assert!(offset_of!(RingHeader, control) == 6 * LINE);
    assert!(size_of::<RingHeader>() <= HEADER_BYTES);
    assert!(offset_of!(IdentityLine, magic) == 0);
    assert!(offset_of!(IdentityLine, layout_version) == 8);
    assert!(offset_of!(IdentityLine, header_bytes) == 12);
    assert!(offset_of!(IdentityLine, capacity) == 16);
    assert!(offset_of!(IdentityLine, max_payload) == 24);
    assert!(offset_of!(IdentityLine, generation) == 32);
    assert!(offset_of!(ProducerStatsLine, heartbeat) == 0);
    assert!(offset_of!(ProducerStatsLine, full_waits) == 8);
    assert!(offset_of!(ProducerStatsLine, accepted_request) == 16);
    assert!(HEADER_BYTES.is_multiple_of(4096));
};

impl RingHeader {
    /// A header in its initial state (used for the loom model, which cannot
    /// place loom atomics in shared memory).
    #[cfg(loom)]
    pub(crate) fn new_for_model(capacity: u64, max_payload: u32, generation: u64) -> Self {
        let header = RingHeader {
            identity: IdentityLine {
                magic: AtomicU64::new(0),
                layout_version: AtomicU32::new(0),
                header_bytes: AtomicU32::new(0),
                capacity: AtomicU64::new(0),
                max_payload: AtomicU32::new(0),
                _reserved: AtomicU32::new(0),
                generation: AtomicU64::new(0),
            },
            producer: ProducerLine {
                write_index: AtomicU64::new(0),
            },
            consumer: ConsumerLine {
                read_index: AtomicU64::new(0),
            },
            consumer_sleep: SleepLine {
                sleeping: AtomicU32::new(0),
            },
            producer_sleep: SleepLine {
                sleeping: AtomicU32::new(0),
            },
            producer_stats: ProducerStatsLine {
                heartbeat: AtomicU64::new(0),
                full_waits: AtomicU64::new(0),
                accepted_request: AtomicU64::new(0),
            },
            control: ControlLine {
                cancel_request: AtomicU64::new(0),
                state: AtomicU32::new(0),
            },
        };
        header.initialize(capacity, max_payload, generation);
        header
    }

    /// Writes the identity line and zeroes the rest. Called by the creator
    /// before the ring is shared.
    pub(crate) fn initialize(&self, capacity: u64, max_payload: u32, generation: u64) {
        let id = &self.identity;
        id.layout_version.store(LAYOUT_VERSION, Ordering::Relaxed);
        id.header_bytes
            .store(HEADER_BYTES as u32, Ordering::Relaxed);
        id.capacity.store(capacity, Ordering::Relaxed);
        id.max_payload.store(max_payload, Ordering::Relaxed);
        id.generation.store(generation, Ordering::Relaxed);
        self.producer.write_index.store(0, Ordering::Relaxed);
        self.consumer.read_index.store(0, Ordering::Relaxed);
        self.consumer_sleep.sleeping.store(0, Ordering::Relaxed);
        self.producer_sleep.sleeping.store(0, Ordering::Relaxed);
        self.producer_stats.heartbeat.store(0, Ordering::Relaxed);
        self.producer_stats.full_waits.store(0, Ordering::Relaxed);
        self.producer_stats
            .accepted_request
            .store(0, Ordering::Relaxed);
        self.control.cancel_request.store(0, Ordering::Relaxed);
        self.control.state.store(0, Ordering::Relaxed);
        // Magic last: a reader that sees it sees an initialized header. The
        // fd is only handed over after this, so Relaxed suffices in practice;
        // Release documents the intent. Pairs with the Acquire load in
        // `RingMemory::attach`.
        id.magic.store(MAGIC, Ordering::Release);
    }
}
