//! The ceiling: the simplest fast SPSC ring between the same two processes,
//! for the ring case to be measured against: shm-proto's reference ring
//! ([`shm_proto::slot_ring`], feature `reference-ring`), driven here.
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
//! All of the ring (the mapping, the slots, the index words, the waiting)
//! is in [`shm_proto::slot_ring`]; this module is safe code.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use shm_proto::slot_ring::{SlotConsumer, SlotProducer, SlotRing};
use shm_proto::{ChildFds, RING_FD, take_inherited};

use crate::checksum::Tally;
use crate::child::{ChildProc, child_ready_then_wait_go, self_command};
use crate::ring_case::Throughput;
use crate::rows::{RowTemplates, SizeSpec};

/// Hidden subcommand of the ceiling producer child.
pub const CHILD_SUBCOMMAND: &str = "__child-ceiling";

/// Length word of the end slot (its payload is the producer's [`Tally`]).
const END: u64 = u64::MAX;

/// Payload bytes of the end slot ([`Tally::to_bytes`]).
const END_BYTES: u64 = 24;

/// How often the waiting parent checks the child is alive.
const ALIVE_EVERY: Duration = Duration::from_millis(100);

/// Consumes every row into a tally until the end slot; returns what was
/// seen and what the end slot reports.
fn consume(
    consumer: &mut SlotConsumer,
    mut on_idle: impl FnMut() -> Result<()>,
) -> Result<(Tally, Tally)> {
    let mut seen = Tally::default();
    let mut last_alive = Instant::now();
    loop {
        let slot = consumer.next(|| -> Result<()> {
            if last_alive.elapsed() >= ALIVE_EVERY {
                last_alive = Instant::now();
                on_idle()?;
            }
            Ok(())
        })?;
        let len = slot.word();
        if len == END {
            let sent = Tally::from_bytes(slot.payload(END_BYTES)?)
                .context("malformed ceiling end slot")?;
            drop(slot);
            consumer.release();
            return Ok((seen, sent));
        }
        seen.add(slot.payload(len)?);
    }
}

/// The producer child's arguments (parsed by `suite::ChildCmd::Ceiling`).
pub(crate) fn child_args(rows: u64, spec: SizeSpec, seed: u64) -> Vec<String> {
    vec![
        CHILD_SUBCOMMAND.to_string(),
        format!("--rows={rows}"),
        format!("--size={spec}"),
        format!("--seed={seed}"),
    ]
}

/// One ceiling run: `rows` rows of `spec` over `capacity` slot bytes.
pub fn run_parent(capacity: usize, rows: u64, spec: SizeSpec, seed: u64) -> Result<Throughput> {
    let (fd, ring) = SlotRing::create(capacity, spec.max_bytes()).context("ceiling ring")?;
    let mut cmd = self_command(&child_args(rows, spec, seed))?;
    ChildFds::new()
        .map(fd.as_fd(), RING_FD)
        .die_with_parent(true)
        .apply(&mut cmd);
    let mut child = ChildProc::spawn(cmd, "ceiling producer")?;
    drop(fd);
    let mut consumer = SlotConsumer::new(ring);
    let timed = (|| {
        child.await_ready()?;
        let start = Instant::now();
        child.go()?;
        let (seen, sent) = consume(&mut consumer, || child.check_alive())?;
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
    let ring = SlotRing::attach(&fd).context("ceiling ring")?;
    ensure!(
        spec.max_bytes() <= ring.max_payload(),
        "rows of {} B do not fit the ceiling's {} B slots",
        spec.max_bytes(),
        ring.max_payload()
    );
    let mut producer = SlotProducer::new(ring);
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
