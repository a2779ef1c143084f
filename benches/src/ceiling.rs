//! The ceiling: the simplest fast SPSC ring between the same two processes,
//! for the ring case to be measured against.
//!
//! Fixed-size slots (an 8-byte length word, then the payload, the stride
//! rounded up to 8 bytes and sized for the case's largest row) in a sealed
//! memfd that the parent creates and a re-executed child maps. The producer
//! publishes its index in batches (Release), the consumer reads it (Acquire)
//! only when its cached copy runs out, and releases slots back in batches the
//! same way; both sides spin (no futex), napping briefly once a wait passes
//! 50 µs, bounded by a no-progress timeout.
//! The consumer checksums every payload byte with the same
//! [`checksum`](crate::checksum::checksum) as the ring case, and the child's
//! own tally, sent in an end slot, must match. No validation beyond what
//! keeps the parent memory-safe, no wake-ups, no record kinds: the fastest
//! this machine moves these bytes across processes, the limit the ring
//! approaches.
//!
//! Self-contained on purpose: it uses nothing of shm-proto's memory layout.
//! The only module of this crate with `unsafe` (allowed in `lib.rs`).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use memmap2::{MmapMut, MmapOptions};
use rustix::fs::{MemfdFlags, SealFlags};
use shm_proto::{ChildFds, RING_FD, take_inherited};

use crate::checksum::Tally;
use crate::child::{ChildProc, child_ready_then_wait_go, self_command};
use crate::ring_case::Throughput;
use crate::rows::{RowTemplates, SizeSpec};

/// Hidden subcommand of the ceiling producer child.
pub const CHILD_SUBCOMMAND: &str = "__child-ceiling";

/// Byte offsets in the shared file: the geometry words, the producer's
/// index, the consumer's index (each on its own pair of cache lines), slots.
const STRIDE_AT: usize = 0;
const SLOTS_AT: usize = 8;
const HEAD_AT: usize = 128;
const TAIL_AT: usize = 256;
const DATA_AT: usize = 512;

/// Length word of the end slot (its payload is the producer's [`Tally`]).
const END: u64 = u64::MAX;

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
const NO_PROGRESS: Duration = Duration::from_secs(30);

/// How often the waiting parent checks the child is alive.
const ALIVE_EVERY: Duration = Duration::from_millis(100);

/// Slot stride for rows of up to `max_bytes`: the length word and the row,
/// rounded up to 8 bytes, so fixed-size rows are packed back to back and
/// stream through the caches like the ring's records. (Rounding large slots
/// up to an odd number of cache lines, against 4 KiB set aliasing, measured
/// no better for mixed sizes and worse for 1 KiB rows.) For mixed sizes every
/// row sits at the start of a slot sized for the largest: the hardware
/// prefetcher cannot stream across the gaps, so this is no limit there and
/// the ring, which packs records, beats it.
pub fn stride_for(max_bytes: usize) -> usize {
    (8 + max_bytes.max(24)).next_multiple_of(8)
}

/// The shared mapping and its geometry.
struct Ring {
    /// Keeps the mapping alive; every access goes through `base`.
    _map: MmapMut,
    base: *mut u8,
    stride: usize,
    slots: u64,
}

impl Ring {
    /// Maps `fd` (whole file, shared, read-write).
    fn map(fd: &OwnedFd, len: usize) -> Result<MmapMut> {
        let file = File::from(fd.try_clone().context("dup of the ceiling memfd")?);
        // SAFETY: the file is a sealed memfd of exactly `len` bytes (it cannot
        // shrink under the mapping); the other process writes it concurrently,
        // which is why every access goes through raw pointers and atomics.
        let map = unsafe { MmapOptions::new().len(len).map_mut(&file) }
            .context("mmap of the ceiling memfd")?;
        Ok(map)
    }

    /// Creates the memfd for rows of up to `max_bytes`, `capacity` slot bytes.
    fn create(capacity: usize, max_bytes: usize) -> Result<(OwnedFd, Ring)> {
        let stride = stride_for(max_bytes);
        let slots = (capacity / stride) as u64;
        ensure!(
            slots >= 2,
            "ceiling ring of {capacity} B holds fewer than 2 slots of {stride} B"
        );
        let len = DATA_AT + slots as usize * stride;
        let fd = rustix::fs::memfd_create(
            "ringbench-ceiling",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .context("memfd_create")?;
        rustix::fs::ftruncate(&fd, len as u64).context("ftruncate of the ceiling memfd")?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .context("sealing the ceiling memfd")?;
        let mut map = Self::map(&fd, len)?;
        let base = map.as_mut_ptr();
        let ring = Ring {
            _map: map,
            base,
            stride,
            slots,
        };
        ring.word(STRIDE_AT).store(stride as u64, Ordering::Relaxed);
        ring.word(SLOTS_AT).store(slots, Ordering::Relaxed);
        Ok((fd, ring))
    }

    /// Maps an inherited memfd and checks its geometry against its size.
    fn attach(fd: &OwnedFd) -> Result<Ring> {
        let len = rustix::fs::fstat(fd)
            .context("fstat of the ceiling memfd")?
            .st_size as usize;
        ensure!(len >= DATA_AT, "ceiling memfd of {len} B has no header");
        let mut map = Self::map(fd, len)?;
        let base = map.as_mut_ptr();
        let mut ring = Ring {
            _map: map,
            base,
            stride: 0,
            slots: 0,
        };
        // The parent wrote the geometry before spawning this process.
        let stride = ring.word(STRIDE_AT).load(Ordering::Relaxed) as usize;
        let slots = ring.word(SLOTS_AT).load(Ordering::Relaxed);
        ensure!(
            stride >= 32
                && stride.is_multiple_of(8)
                && (slots as usize).checked_mul(stride) == Some(len - DATA_AT),
            "ceiling memfd geometry {slots} x {stride} B does not match its {len} B"
        );
        ring.stride = stride;
        ring.slots = slots;
        Ok(ring)
    }

    /// The atomic word at byte `at` of the header.
    fn word(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at + 8 <= DATA_AT && at.is_multiple_of(8));
        // SAFETY: `at` is an 8-aligned header offset inside the page-aligned
        // mapping, which lives as long as `self`; the header words are only
        // ever accessed atomically, by either process.
        unsafe { &*self.base.add(at).cast::<AtomicU64>() }
    }

    /// Pointer to slot `pos` (`pos < slots`).
    #[inline]
    fn slot(&self, pos: usize) -> *mut u8 {
        debug_assert!((pos as u64) < self.slots);
        // SAFETY: `pos < slots`, so the slot lies inside the mapping.
        unsafe { self.base.add(DATA_AT + pos * self.stride) }
    }

    /// Largest payload a slot holds.
    fn max_payload(&self) -> usize {
        self.stride - 8
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
fn spin_until(
    mut ready: impl FnMut() -> bool,
    mut on_check: impl FnMut() -> Result<()>,
    what: &str,
) -> Result<()> {
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
            bail!("ceiling ring: no progress for {NO_PROGRESS:?} waiting for {what}");
        }
        if waited > SPIN_FOR {
            std::thread::sleep(NAP);
        }
    }
}

/// Producer side: writes slots, publishes `head` in batches.
struct Producer {
    ring: Ring,
    head: u64,
    published: u64,
    cached_tail: u64,
    pos: usize,
    batch: u64,
}

impl Producer {
    fn new(ring: Ring) -> Self {
        // Shm-proto's producer default: capacity / 16, at most 64 KiB.
        let bytes = (ring.slots as usize * ring.stride / 16).clamp(256, 64 << 10);
        let batch = ring.batch(bytes);
        Producer {
            ring,
            head: 0,
            published: 0,
            cached_tail: 0,
            pos: 0,
            batch,
        }
    }

    #[inline]
    fn publish(&mut self) {
        // Release: makes the slots written so far visible to the consumer's
        // Acquire load of `head` in `Consumer::next`.
        self.ring.word(HEAD_AT).store(self.head, Ordering::Release);
        self.published = self.head;
    }

    /// Appends one slot with length word `len` and `payload`.
    #[inline]
    fn push(&mut self, len: u64, payload: &[u8]) -> Result<()> {
        debug_assert!(payload.len() <= self.ring.max_payload());
        if self.head - self.cached_tail == self.ring.slots {
            self.publish();
            let (ring, head) = (&self.ring, self.head);
            let mut tail = self.cached_tail;
            spin_until(
                || {
                    // Acquire: pairs with the consumer's Release store of
                    // `tail` in `Consumer::release`, so its reads of the
                    // freed slots are done before they are overwritten.
                    tail = ring.word(TAIL_AT).load(Ordering::Acquire);
                    head - tail < ring.slots
                },
                || Ok(()),
                "a free slot",
            )?;
            self.cached_tail = tail;
        }
        let slot = self.ring.slot(self.pos);
        // SAFETY: the slot is inside the mapping, 8-aligned, and free: the
        // consumer released it (tail passed it) and will not read it before
        // `head` is published past it.
        unsafe {
            slot.cast::<u64>().write(len);
            std::ptr::copy_nonoverlapping(payload.as_ptr(), slot.add(8), payload.len());
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

/// Consumer side: reads slots, releases `tail` in batches.
struct Consumer {
    ring: Ring,
    tail: u64,
    released: u64,
    cached_head: u64,
    pos: usize,
    batch: u64,
}

impl Consumer {
    fn new(ring: Ring) -> Self {
        // Shm-proto's consumer default: capacity / 8, at most 256 KiB.
        let bytes = (ring.slots as usize * ring.stride / 8).clamp(256, 256 << 10);
        let batch = ring.batch(bytes);
        Consumer {
            ring,
            tail: 0,
            released: 0,
            cached_head: 0,
            pos: 0,
            batch,
        }
    }

    #[inline]
    fn release(&mut self) {
        // Release: our reads of the consumed slots happen before the
        // producer's Acquire load of `tail` in `Producer::push` lets it
        // overwrite them.
        self.ring.word(TAIL_AT).store(self.tail, Ordering::Release);
        self.released = self.tail;
    }

    /// Consumes every row into a tally until the end slot; returns what was
    /// seen and what the end slot reports.
    fn run(&mut self, mut on_idle: impl FnMut() -> Result<()>) -> Result<(Tally, Tally)> {
        let mut seen = Tally::default();
        let max = self.ring.max_payload() as u64;
        let mut last_alive = Instant::now();
        loop {
            if self.tail == self.cached_head {
                self.release();
                let (ring, tail) = (&self.ring, self.tail);
                let mut head = tail;
                spin_until(
                    || {
                        // Acquire: pairs with the producer's Release store of
                        // `head` in `Producer::publish`: the slots below it
                        // are fully written.
                        head = ring.word(HEAD_AT).load(Ordering::Acquire);
                        head != tail
                    },
                    || {
                        if last_alive.elapsed() >= ALIVE_EVERY {
                            last_alive = Instant::now();
                            on_idle()?;
                        }
                        Ok(())
                    },
                    "rows",
                )?;
                ensure!(
                    head > tail && head - tail <= ring.slots,
                    "ceiling ring: producer index {head} is not within one ring of {tail}"
                );
                self.cached_head = head;
            }
            let slot = self.ring.slot(self.pos);
            // SAFETY: the slot is inside the mapping and 8-aligned; the
            // producer wrote it before publishing `head` past it and will not
            // touch it again until `tail` is released past it.
            let len = unsafe { slot.cast::<u64>().read() };
            let n = if len == END { 24 } else { len };
            ensure!(
                n <= max,
                "ceiling ring: slot length {len} exceeds the slot's {max} B"
            );
            // SAFETY: as above; `n` bytes after the length word are inside the
            // slot, and nothing writes them while the slice lives.
            let payload = unsafe { std::slice::from_raw_parts(slot.add(8), n as usize) };
            if len == END {
                let sent = Tally::from_bytes(payload).context("malformed ceiling end slot")?;
                self.tail += 1;
                self.release();
                return Ok((seen, sent));
            }
            seen.add(payload);
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
}

/// One ceiling run: `rows` rows of `spec` over `capacity` slot bytes.
pub fn run_parent(capacity: usize, rows: u64, spec: SizeSpec, seed: u64) -> Result<Throughput> {
    let (fd, ring) = Ring::create(capacity, spec.max_bytes())?;
    let args = vec![
        CHILD_SUBCOMMAND.to_string(),
        format!("--rows={rows}"),
        format!("--size={spec}"),
        format!("--seed={seed}"),
    ];
    let mut cmd = self_command(&args)?;
    ChildFds::new()
        .map(fd.as_fd(), RING_FD)
        .die_with_parent(true)
        .apply(&mut cmd);
    let mut child = ChildProc::spawn(cmd, "ceiling producer")?;
    drop(fd);
    let mut consumer = Consumer::new(ring);
    let timed = (|| {
        child.await_ready()?;
        let start = Instant::now();
        child.go()?;
        let (seen, sent) = consumer.run(|| child.check_alive())?;
        let secs = start.elapsed().as_secs_f64();
        seen.verify(&sent)?;
        Ok(Throughput {
            rows: seen.rows,
            bytes: seen.bytes,
            secs,
        })
    })();
    match timed {
        Ok(t) => {
            child.finish()?;
            Ok(t)
        }
        Err(e) => Err(child.fail(e)),
    }
}

/// Child side: map the inherited memfd, wait for go, produce, end slot.
pub fn run_child(rows: u64, spec: SizeSpec, seed: u64) -> Result<()> {
    let fd = take_inherited(RING_FD).context("the ceiling memfd was not inherited")?;
    let ring = Ring::attach(&fd)?;
    ensure!(
        spec.max_bytes() <= ring.max_payload(),
        "rows of {} B do not fit the ceiling's {} B slots",
        spec.max_bytes(),
        ring.max_payload()
    );
    let mut producer = Producer::new(ring);
    let templates = RowTemplates::new(spec, seed);
    child_ready_then_wait_go()?;
    let mut sent = Tally::default();
    for i in 0..rows {
        let (payload, sum) = templates.row(i);
        producer.push(payload.len() as u64, payload)?;
        sent.add_known(payload.len(), sum);
    }
    producer.push(END, &sent.to_bytes())?;
    producer.publish();
    Ok(())
}
