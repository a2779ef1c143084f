//! Loom models of the ring's index protocol and of the sleep handshakes, run
//! on the very producer/consumer code that ships (the ring's atomics are
//! loom's under `--cfg loom`; see `shm-proto/src/sync.rs`).
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p shm-proto --test loom --release`
//!
//! Under loom a futex sleep blocks until its word is reset (see
//! `shm-proto/src/wait.rs`), without the real sleep's timeout, so a lost
//! wake-up makes a thread spin forever and loom fails the model.

#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use loom::thread;
use shm_proto::{
    Consumer, HeaderWord, Producer, Readiness, RecordKind, RecordMeta, RingConfig, RingMemory,
    WaitStrategy, record_size,
};

const CAPACITY: usize = 4096;
const FOREVER: Duration = Duration::from_secs(3600);

/// No spinning (real time must not steer the model), "infinite" sleeps.
const MODEL_WAIT: WaitStrategy = WaitStrategy::new(Duration::ZERO, FOREVER);

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!("loom explored {} executions", runs.load(Ordering::Relaxed));
}

/// A 4 KiB ring whose shared indices both start at `start`, so a few records
/// suffice to reach the wrap point.
fn ring_at(start: u64) -> (Producer, Consumer) {
    let memory = Arc::new(RingMemory::new_for_model(&RingConfig::with_capacity(CAPACITY)).unwrap());
    memory.debug_store(HeaderWord::WriteIndex, start);
    memory.debug_store(HeaderWord::ReadIndex, start);
    let mut tx = Producer::new(memory.clone()).unwrap();
    let mut rx = Consumer::new(memory).unwrap();
    tx.set_wait_strategy(MODEL_WAIT);
    rx.set_wait_strategy(MODEL_WAIT);
    (tx, rx)
}

fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Receives one record, sleeping (announce, re-check, futex) while the ring is empty.
fn recv_one(rx: &mut Consumer, seq: u64, len: usize) {
    loop {
        if let Some(rec) = rx.try_recv().unwrap() {
            assert_eq!(rec.kind(), RecordKind::Data);
            assert_eq!(rec.request(), seq, "records out of order");
            assert_eq!(rec.stream(), seq as u16);
            assert_eq!(rec.payload(), &payload(seq, len)[..]);
            return;
        }
        let readiness = rx.wait(FOREVER).unwrap();
        assert_ne!(readiness, Readiness::Closed, "closed before record {seq}");
        assert_ne!(readiness, Readiness::TimedOut);
    }
}

fn push(tx: &mut Producer, seq: u64, len: usize) {
    tx.push(RecordMeta::data(seq, seq as u16), &payload(seq, len))
        .unwrap();
}

/// (a) In-order SPSC delivery across the wrap point. Both indices start near
/// the end of the buffer: at 256 B before it, the first full-size record
/// (512 B) needs a padding record and lands at offset 0; at 520 B before it,
/// the first record leaves 8 B, too few for a header, which both sides skip
/// by rule.
#[test]
fn spsc_delivery_across_the_wrap() {
    let max = RingConfig::largest_payload_for(CAPACITY);
    assert_eq!(record_size(max), 512);
    let sizes = [max, max, 8];
    for before_end in [256u64, 520] {
        let start = 3 * CAPACITY as u64 - before_end;
        model(move || {
            let (mut tx, mut rx) = ring_at(start);
            let producer = thread::spawn(move || {
                for (seq, &len) in sizes.iter().enumerate() {
                    push(&mut tx, seq as u64, len);
                }
                tx.close();
            });
            for (seq, &len) in sizes.iter().enumerate() {
                recv_one(&mut rx, seq as u64, len);
            }
            // Nobody in this process wakes the consumer deliberately, so a
            // wake-up without data (the producer's wake of an earlier
            // announcement) is never reported: the close must be.
            assert_eq!(rx.wait(FOREVER).unwrap(), Readiness::Closed);
            producer.join().unwrap();
            assert!(rx.try_recv().unwrap().is_none());
        });
    }
}

/// (b) The consumer's sleep handshake: it announces that it sleeps and
/// re-checks, the producer publishes and checks the announcement; whatever
/// the interleaving, the consumer is not left asleep with a record published.
/// The producer never closes the ring (closing wakes the consumer and would
/// hide a lost wake-up).
#[test]
fn consumer_sleep_has_no_lost_wakeup() {
    model(|| {
        let (mut tx, mut rx) = ring_at(0);
        let producer = thread::spawn(move || {
            push(&mut tx, 0, 24);
            tx.flush();
            push(&mut tx, 1, 5);
            tx.flush();
            // Returned, not dropped here: the consumer must not depend on
            // anything but the publication itself.
            tx
        });
        recv_one(&mut rx, 0, 24);
        recv_one(&mut rx, 1, 5);
        let _tx = producer.join().unwrap();
    });
}

/// (b') The producer's sleep handshake: the producer finds the ring full,
/// announces that it sleeps and re-checks; the consumer releases a record and
/// checks the announcement. The consumer is returned from its thread rather
/// than dropped (dropping closes the ring, which would wake the producer and
/// hide a lost wake-up).
#[test]
fn producer_sleep_has_no_lost_wakeup() {
    let max = RingConfig::largest_payload_for(CAPACITY);
    let per = record_size(max);
    let fill = CAPACITY / per;
    model(move || {
        let (mut tx, mut rx) = ring_at(0);
        for seq in 0..fill as u64 {
            push(&mut tx, seq, max);
        }
        tx.flush();
        let consumer = thread::spawn(move || {
            recv_one(&mut rx, 0, max);
            rx
        });
        // Needs the space of record 0.
        push(&mut tx, fill as u64, max);
        tx.flush();
        let mut rx = consumer.join().unwrap();
        for seq in 1..=fill as u64 {
            recv_one(&mut rx, seq, max);
        }
    });
}

/// (c) A deliberate wake through a `ConsumerRemote` is never lost: whether
/// it lands before the consumer announces its sleep, between announcement
/// and re-check, or while it sleeps, `wait` returns `Woken` (and the model
/// sleeps have no timeout, so a lost wake would hang the model).
#[test]
fn remote_wake_is_never_lost() {
    model(|| {
        let (tx, mut rx) = ring_at(0);
        let remote = rx.remote();
        let waker = thread::spawn(move || remote.wake());
        assert_eq!(rx.wait(FOREVER).unwrap(), Readiness::Woken);
        waker.join().unwrap();
        drop(tx);
    });
}
