//! Single-process behaviour of the ring: delivery, wrap-around, blocking,
//! closing, limits.

#![cfg(not(loom))]

use std::time::{Duration, Instant};

use shm_proto::{
    ClosedBy, ErrorKind, Half, HeaderWord, Readiness, RecordKind, RecordMeta, RingConfig,
    RingError, record_size, ring,
};

fn small() -> RingConfig {
    RingConfig::with_capacity(4096)
}

#[test]
fn push_then_receive_in_order() {
    let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
    for i in 0..100u32 {
        tx.push(RecordMeta::data(7, (i % 3) as u16), &i.to_le_bytes())
            .unwrap();
    }
    tx.flush();
    for i in 0..100u32 {
        let rec = rx.try_recv().unwrap().expect("record");
        assert_eq!(rec.kind(), RecordKind::Data);
        assert_eq!(rec.request(), 7);
        assert_eq!(rec.stream(), (i % 3) as u16);
        assert_eq!(rec.payload(), &i.to_le_bytes());
    }
    assert!(rx.try_recv().unwrap().is_none());
}

#[test]
fn unpublished_records_are_invisible_until_flush() {
    let (mut tx, mut rx) = ring(&RingConfig::default()).unwrap();
    tx.push(RecordMeta::data(1, 0), b"hello").unwrap();
    assert!(rx.try_recv().unwrap().is_none());
    tx.flush();
    assert_eq!(rx.try_recv().unwrap().unwrap().payload(), b"hello");
}

#[test]
fn wraps_many_times_with_varied_sizes() {
    let (mut tx, mut rx) = ring(&small()).unwrap();
    let max = tx.max_payload();
    let mut expected = 0u64;
    for round in 0..2000u64 {
        let len = ((round * 37) % (max as u64 + 1)) as usize;
        let byte = (round % 251) as u8;
        tx.push(RecordMeta::data(round, 0), &vec![byte; len])
            .unwrap();
        tx.flush();
        let rec = rx.try_recv().unwrap().unwrap();
        assert_eq!(rec.request(), round);
        assert_eq!(rec.payload().len(), len);
        assert!(rec.payload().iter().all(|&b| b == byte));
        expected += 1;
    }
    assert_eq!(rx.stats().records, expected);
}

#[test]
fn oversized_record_is_rejected() {
    let (mut tx, _rx) = ring(&small()).unwrap();
    let max = tx.max_payload();
    let err = tx
        .push(RecordMeta::data(1, 0), &vec![0; max + 1])
        .unwrap_err();
    assert!(matches!(err, RingError::RecordTooLarge { len, max: m } if len == max + 1 && m == max));
    assert_eq!(err.kind(), ErrorKind::Usage);
}

#[test]
fn invalid_configs_are_rejected() {
    for (capacity, max_payload) in [(3000, 16), (1 << 31, 16), (4096, 0), (4096, 4096)] {
        let err = RingConfig::with_capacity(capacity)
            .with_max_payload(max_payload)
            .validate()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{capacity} {max_payload}");
    }
}

#[test]
fn full_ring_times_out_and_consumer_frees_space() {
    let (mut tx, mut rx) = ring(&small()).unwrap();
    let payload = [1u8; 100];
    let per = record_size(100);
    for _ in 0..4096 / per {
        tx.push(RecordMeta::data(1, 0), &payload).unwrap();
    }
    let err = tx
        .reserve_timeout(RecordMeta::data(1, 0), 100, Duration::from_millis(20))
        .err()
        .expect("ring should be full");
    assert!(matches!(err, RingError::TimedOut));
    assert!(rx.try_recv().unwrap().is_some());
    rx.flush();
    tx.push(RecordMeta::data(1, 0), &payload).unwrap();
}

#[test]
fn cancel_word_unblocks_a_full_producer_of_that_request_only() {
    let (mut tx, rx) = ring(&small()).unwrap();
    while tx
        .reserve_timeout(RecordMeta::data(5, 0), 200, Duration::from_millis(1))
        .map(|s| s.commit())
        .is_ok()
    {}
    rx.remote().request_cancel(4);
    let err = tx
        .reserve_timeout(RecordMeta::data(5, 0), 200, Duration::from_millis(20))
        .err()
        .unwrap();
    assert!(matches!(err, RingError::TimedOut), "{err:?}");
    rx.remote().request_cancel(5);
    let err = tx.reserve(RecordMeta::data(5, 0), 200).err().unwrap();
    assert!(
        matches!(err, RingError::Cancelled { request: 5 }),
        "{err:?}"
    );
    assert!(tx.is_cancelled(5) && !tx.is_cancelled(4));
}

#[test]
fn wait_times_out_on_an_empty_ring() {
    let (_tx, mut rx) = ring(&small()).unwrap();
    let start = Instant::now();
    assert_eq!(
        rx.wait(Duration::from_millis(30)).unwrap(),
        Readiness::TimedOut
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn close_drains_then_reports_closed() {
    let (mut tx, mut rx) = ring(&small()).unwrap();
    tx.push(RecordMeta::of_kind(RecordKind::End, 3), b"done")
        .unwrap();
    tx.close();
    assert_eq!(rx.wait(Duration::from_secs(1)).unwrap(), Readiness::Ready);
    assert_eq!(rx.try_recv().unwrap().unwrap().kind(), RecordKind::End);
    assert_eq!(rx.wait(Duration::from_secs(1)).unwrap(), Readiness::Closed);
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RingError::Closed {
            by: ClosedBy::Producer
        })
    ));
}

#[test]
fn dropping_the_consumer_unblocks_the_producer() {
    let (mut tx, rx) = ring(&small()).unwrap();
    let handle = std::thread::spawn(move || {
        loop {
            if let Err(e) = tx.push(RecordMeta::data(1, 0), &[0; 64]) {
                return e;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    drop(rx);
    let err = handle.join().unwrap();
    assert!(
        matches!(
            err,
            RingError::Closed {
                by: ClosedBy::Consumer
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wake_consumer_interrupts_a_wait() {
    let (_tx, mut rx) = ring(&small()).unwrap();
    let remote = rx.remote();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        remote.wake();
    });
    let start = Instant::now();
    let outcome = rx.wait(Duration::from_secs(5)).unwrap();
    waker.join().unwrap();
    assert_eq!(outcome, Readiness::Woken);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn threads_stream_a_million_records_with_blocking_on_both_sides() {
    let (mut tx, mut rx) = ring(&RingConfig::with_capacity(64 << 10)).unwrap();
    const N: u64 = 1_000_000;
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            let len = (i % 300) as usize;
            let mut slot = tx.reserve(RecordMeta::data(i, 0), len + 8).unwrap();
            let buf = slot.payload_mut();
            buf[..8].copy_from_slice(&i.to_le_bytes());
            buf[8..].fill(i as u8);
            slot.commit();
        }
        tx.close();
    });
    let mut next = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(rec)) => {
                let p = rec.payload();
                assert_eq!(u64::from_le_bytes(p[..8].try_into().unwrap()), next);
                assert_eq!(p.len(), (next % 300) as usize + 8);
                assert!(p[8..].iter().all(|&b| b == next as u8));
                next += 1;
            }
            Ok(None) => panic!("stalled at {next}"),
            Err(RingError::Closed { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    producer.join().unwrap();
    assert_eq!(next, N);
}

#[test]
fn json_values_are_written_in_place() {
    let (mut tx, mut rx) = ring(&RingConfig::with_capacity(64 << 10)).unwrap();
    let small = serde_json::json!({"a": 1});
    let big = serde_json::json!({"s": "x".repeat(3000)});
    tx.push_json(RecordMeta::data(1, 0), &small).unwrap();
    tx.push_json(RecordMeta::data(1, 0), &big).unwrap();
    tx.push_json(RecordMeta::data(1, 0), &small).unwrap();
    tx.flush();
    for expect in [&small, &big, &small] {
        let rec = rx.try_recv().unwrap().unwrap();
        let got: serde_json::Value = serde_json::from_slice(rec.payload()).unwrap();
        assert_eq!(&got, expect);
    }
    assert_eq!(tx.stats().json_retries, 1);
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed as u8).wrapping_mul(29).wrapping_add(i as u8 ^ 0x5A))
        .collect()
}

#[test]
fn copy_payload_into_and_recv_copy_are_byte_exact_across_wraps() {
    let config = small();
    let max = config.max_payload;
    let (mut tx, mut rx) = ring(&config).unwrap();
    let lens = [0, 1, 7, 8, 9, 15, 16, 17, 100, 255, 256, 257, max - 1, max];
    // Starts longer than any payload and full of junk: must be replaced.
    let mut buf = vec![0xEEu8; 2 * max];
    let mut seq = 0u64;
    // Enough rounds to wrap the 4 KiB ring many times.
    for round in 0..40 {
        for &len in &lens {
            let expect = pattern(seq, len);
            tx.push(RecordMeta::data(seq, round as u16), &expect)
                .unwrap();
            tx.flush();
            if seq.is_multiple_of(2) {
                let rec = rx.try_recv().unwrap().expect("record");
                rec.copy_payload_into(&mut buf);
                assert_eq!(buf, expect, "copy_payload_into, record {seq}");
                assert_eq!(rec.payload(), &expect[..]);
            } else {
                let header = rx.recv_copy(&mut buf).unwrap().expect("record");
                assert_eq!(header.len as usize, len);
                assert_eq!(header.request, seq);
                assert_eq!(buf, expect, "recv_copy, record {seq}");
            }
            seq += 1;
        }
    }
    assert!(rx.recv_copy(&mut buf).unwrap().is_none());
}

/// A hostile peer that resets the consumer's sleep word and sends
/// `FUTEX_WAKE`s as fast as it can, until dropped.
struct WakeStorm {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl WakeStorm {
    fn start(memory: std::sync::Arc<shm_proto::RingMemory>) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut wakes = 0u64;
            while !flag.load(Ordering::Relaxed) {
                memory.debug_store(HeaderWord::ConsumerSleep, 0);
                memory.debug_futex_wake(HeaderWord::ConsumerSleep);
                wakes += 1;
            }
            wakes
        });
        WakeStorm {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for WakeStorm {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let wakes = thread.join().unwrap();
            assert!(wakes > 0, "the storm never ran");
        }
    }
}

#[test]
fn a_storm_of_spurious_wakes_does_not_make_the_consumer_spin() {
    let (_tx, mut rx) = ring(&small()).unwrap();
    let storm = WakeStorm::start(rx.memory().clone());
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        assert!(
            rx.recv_timeout(Duration::from_millis(100))
                .unwrap()
                .is_none()
        );
        calls += 1;
    }
    drop(storm);
    let stats = rx.stats();
    // Without back-off every spurious wake-up is a futex call (hundreds of
    // thousands in 500 ms), and reporting them as `Woken` returns at once.
    assert!(
        calls <= 20,
        "{calls} receive calls in 500 ms: spurious wakes were reported"
    );
    assert!(
        stats.sleeps < 2_000,
        "{} futex sleeps in 500 ms: the consumer spins ({stats:?})",
        stats.sleeps
    );
    assert!(stats.spurious_wakeups > 0, "{stats:?}");
    assert!(stats.backoffs > 0, "{stats:?}");
}

#[test]
fn under_a_wake_storm_deadlines_hold_and_real_wakes_are_seen() {
    let (mut tx, mut rx) = ring(&small()).unwrap();
    let _storm = WakeStorm::start(rx.memory().clone());
    // Timeouts still hold (and are not cut short by the storm).
    let start = Instant::now();
    assert_eq!(
        rx.wait(Duration::from_millis(150)).unwrap(),
        Readiness::TimedOut
    );
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // A deliberate wake from this process is still reported as `Woken`.
    let remote = rx.remote();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        remote.wake();
    });
    let start = Instant::now();
    assert_eq!(rx.wait(Duration::from_secs(10)).unwrap(), Readiness::Woken);
    assert!(start.elapsed() < Duration::from_secs(3));
    waker.join().unwrap();
    // And data is still delivered.
    tx.push(RecordMeta::data(9, 0), b"row").unwrap();
    tx.flush();
    let rec = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("record under a wake storm");
    assert_eq!(rec.payload(), b"row");
}

#[test]
fn halves_are_claimed_once_and_the_remote_reports_state() {
    let (mut tx, rx) = ring(&small()).unwrap();
    let err = shm_proto::Consumer::new(rx.memory().clone()).unwrap_err();
    assert!(
        matches!(
            err,
            RingError::AlreadyClaimed {
                half: Half::Consumer
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the ring's consumer half is already in use"
    );
    let err = shm_proto::Producer::new(tx.memory().clone()).unwrap_err();
    assert!(
        matches!(
            err,
            RingError::AlreadyClaimed {
                half: Half::Producer
            }
        ),
        "{err:?}"
    );
    let remote = rx.remote();
    assert!(remote.same_ring(&rx.remote().clone()));
    assert_eq!(remote.closed_by(), None);
    tx.beat();
    tx.beat();
    assert_eq!(remote.heartbeat(), 2);
    tx.close();
    assert_eq!(remote.closed_by(), Some(ClosedBy::Producer));
    remote.poison();
    assert_eq!(remote.closed_by(), Some(ClosedBy::Poison));
}

#[test]
fn a_wake_sent_while_the_consumer_is_busy_is_not_lost() {
    let (_tx, mut rx) = ring(&small()).unwrap();
    rx.remote().wake();
    let start = Instant::now();
    assert_eq!(rx.wait(Duration::from_secs(10)).unwrap(), Readiness::Woken);
    assert!(start.elapsed() < Duration::from_secs(3));
    // Taken once: the next wait sleeps until its timeout.
    assert_eq!(
        rx.wait(Duration::from_millis(20)).unwrap(),
        Readiness::TimedOut
    );
}
