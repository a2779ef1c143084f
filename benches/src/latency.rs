//! Latency and idle cost: CPU burnt by a consumer waiting on an empty ring,
//! and wake-up latency of a sleeping consumer next to a bare shared-futex
//! ping-pong between the same two processes, interleaved in one run.
//!
//! The child alternates: sleep a few milliseconds (so the parent is truly
//! asleep), take `CLOCK_MONOTONIC`, then either commit + flush an 8-byte
//! ring record carrying that timestamp, or store it in a shared word, bump a
//! futex word and `FUTEX_WAKE`. The parent takes `CLOCK_MONOTONIC` as soon as
//! [`Consumer::wait`] returns `Ready`, or as soon as its bare `FUTEX_WAIT`
//! returns, and records the difference.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rustix::time::{ClockId, clock_gettime};
use shm_proto::{
    ChildFds, Consumer, Producer, RING_FD, Readiness, RecordKind, RecordMeta, RingMemory,
    SharedWords, take_inherited,
};

use crate::child::{ChildProc, child_ready_then_wait_go, self_command};
use crate::ring_case::ring_config;
use crate::rows::SplitMix;

/// Hidden subcommand of the latency child.
pub const CHILD_SUBCOMMAND: &str = "__child-wake";

/// Fd number at which the latency child finds the shared words page.
pub const WORDS_FD: RawFd = 5;

/// Futex word (u32 index) the bare ping-pong bumps.
const SEQ_WORD: usize = 0;
/// 64-bit word carrying the bare ping-pong's send timestamp.
const STAMP_WORD: usize = 0;

/// `CLOCK_MONOTONIC` in nanoseconds (the same clock in every process).
#[inline]
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time consumed by the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let ts = clock_gettime(ClockId::ThreadCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of a consumer waiting `duration` on an empty ring, as a
/// percentage of one core.
pub fn idle_cpu_pct(capacity: usize, duration: Duration) -> Result<f64> {
    let (_producer, mut consumer) = shm_proto::ring(&ring_config(capacity))?;
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let readiness = consumer.wait(duration)?;
    let wall = start.elapsed();
    let cpu = thread_cpu_ns() - cpu0;
    ensure!(
        readiness == Readiness::TimedOut,
        "an empty ring's wait ended with {readiness:?}"
    );
    Ok(cpu as f64 / wall.as_nanos() as f64 * 100.0)
}

/// Wake-up latencies in microseconds, ring and bare futex.
#[derive(Debug, Clone)]
pub struct WakeSamples {
    /// Ring: commit + flush in the child until `Consumer::wait` returned.
    pub ring_us: Vec<f64>,
    /// Bare futex: store + wake in the child until `FUTEX_WAIT` returned.
    pub futex_us: Vec<f64>,
}

/// The `p`-th percentile (0..=100) of `samples` (nearest rank).
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The sender child's arguments (parsed by `suite::ChildCmd::Wake`).
pub(crate) fn child_args(samples: usize, gap_us: u64) -> Vec<String> {
    vec![
        CHILD_SUBCOMMAND.to_string(),
        format!("--samples={samples}"),
        format!("--gap-us={gap_us}"),
    ]
}

/// Runs `samples` ring wake-ups and `samples` bare futex wake-ups,
/// interleaved, with the child sleeping `gap_us` (plus up to 50% jitter)
/// before each.
pub fn run_wake_parent(capacity: usize, samples: usize, gap_us: u64) -> Result<WakeSamples> {
    let memory = Arc::new(RingMemory::create(&ring_config(capacity))?);
    let words = SharedWords::create()?;
    let mut cmd = self_command(&child_args(samples, gap_us))?;
    ChildFds::new()
        .map(memory.fd(), RING_FD)
        .map(words.fd(), WORDS_FD)
        .die_with_parent(true)
        .apply(&mut cmd);
    let mut child = ChildProc::spawn(cmd, "wake-up")?;
    let mut consumer = Consumer::new(memory)?;
    match measure(&mut child, &mut consumer, &words, samples) {
        Ok(s) => {
            child.finish()?;
            Ok(s)
        }
        Err(e) => Err(child.fail(e)),
    }
}

fn measure(
    child: &mut ChildProc,
    consumer: &mut Consumer,
    words: &SharedWords,
    samples: usize,
) -> Result<WakeSamples> {
    let slice = Duration::from_millis(200);
    let mut out = WakeSamples {
        ring_us: Vec::with_capacity(samples),
        futex_us: Vec::with_capacity(samples),
    };
    let seq = words.word32(SEQ_WORD);
    let mut last_seq = seq.load(Ordering::Acquire);
    child.await_ready()?;
    child.go()?;
    for k in 0..2 * samples {
        if k % 2 == 0 {
            let woke_ns = loop {
                match consumer.wait(slice)? {
                    Readiness::Ready => break monotonic_ns(),
                    Readiness::Woken => {}
                    Readiness::TimedOut => child.check_alive()?,
                    Readiness::Closed => bail!("ring closed during the wake-up test"),
                }
            };
            let record = consumer.try_recv()?.context("ready but no record")?;
            ensure!(
                record.kind() == RecordKind::Data,
                "unexpected {:?} record",
                record.kind()
            );
            let sent = u64::from_le_bytes(
                record
                    .payload()
                    .try_into()
                    .context("wake-up record is not 8 bytes")?,
            );
            out.ring_us.push(woke_ns.saturating_sub(sent) as f64 / 1e3);
        } else {
            let woke_ns = loop {
                // Pairs with the Release fetch_add in the child.
                let now_seq = seq.load(Ordering::Acquire);
                if now_seq != last_seq {
                    last_seq = now_seq;
                    break monotonic_ns();
                }
                if !words.wait(SEQ_WORD, last_seq, slice)? {
                    child.check_alive()?;
                }
            };
            let sent = words.word64(STAMP_WORD).load(Ordering::Relaxed);
            out.futex_us.push(woke_ns.saturating_sub(sent) as f64 / 1e3);
        }
    }
    // Drain the end record so the child's close is observed cleanly.
    let _ = consumer.wait(slice)?;
    Ok(out)
}

/// Child side of the wake-up test.
pub fn run_wake_child(samples: usize, gap_us: u64) -> Result<()> {
    let fd = take_inherited(RING_FD).context("the ring fd was not inherited")?;
    let memory = Arc::new(RingMemory::attach(fd, None)?);
    let mut producer = Producer::new(memory)?;
    let fd = take_inherited(WORDS_FD).context("the words fd was not inherited")?;
    let words = SharedWords::attach(fd)?;
    let mut rng = SplitMix::new(42);
    child_ready_then_wait_go()?;
    for k in 0..2 * samples {
        let jitter = if gap_us > 1 {
            rng.next_u64() % (gap_us / 2)
        } else {
            0
        };
        std::thread::sleep(Duration::from_micros(gap_us + jitter));
        if k % 2 == 0 {
            let stamp = monotonic_ns();
            producer.push(RecordMeta::data(1, 0), &stamp.to_le_bytes())?;
            producer.flush();
        } else {
            let stamp = monotonic_ns();
            words.word64(STAMP_WORD).store(stamp, Ordering::Relaxed);
            // Pairs with the Acquire load in the parent's loop.
            words.word32(SEQ_WORD).fetch_add(1, Ordering::Release);
            words.wake(SEQ_WORD);
        }
    }
    producer.push(RecordMeta::of_kind(RecordKind::End, 1), &[])?;
    producer.close();
    Ok(())
}
