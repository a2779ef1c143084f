//! The supervisor's consumer while the peer keeps changing published
//! records: the race the single-threaded `consumer` target cannot reach.
//!
//! A real producer thread publishes progress / diagnostic / end-marker /
//! row records (JSON, multi-byte UTF-8) into a small ring, a mutator thread
//! stores fuzzer-chosen bytes at fuzzer-chosen places of the published,
//! unreleased region (payloads and record headers alike) after a
//! fuzzer-chosen delay, and the consumer does what the supervisor does:
//! copy each payload into private memory, release the record, parse the
//! copy into `shm_proto::payload` types. Whatever the timing: no panic, no
//! out-of-bounds access, no hang; every ring error is a typed corruption (or
//! close) report, every parse error a `serde_json` error, every record
//! handed out no longer than the maximum, and every string a parse yields is
//! valid UTF-8.

#![no_main]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shm_proto::payload::{Diagnostic, EndPayload, Level, Progress, WorkerFailure};
use shm_proto::{
    Consumer, ErrorKind, HEADER_BYTES, HeaderWord, Producer, Readiness, RecordKind, RecordMeta,
    RingConfig, RingError, RingMemory, WaitStrategy,
};

#[derive(Debug, Arbitrary)]
struct Input {
    /// 4 or 8 KiB.
    capacity_shift: bool,
    records: Vec<Rec>,
    mutations: Vec<Mutation>,
}

#[derive(Debug, Arbitrary)]
struct Rec {
    kind: u8,
    text: u8,
    /// Repeats of the text: payload sizes from tens of bytes to kilobytes.
    repeat: u8,
}

#[derive(Debug, Arbitrary)]
struct Mutation {
    /// Spin iterations before this mutation.
    delay: u16,
    /// Where, within the published, unreleased region.
    offset: u16,
    /// Header bytes too (else only the part of the region past its first
    /// 16 bytes, more often a payload).
    anywhere: bool,
    /// The bytes stored, one after another at the same place.
    values: Vec<u8>,
}

const TEXTS: [&str; 4] = [
    "ascii",
    "héllo wörld ünïcödé",
    "∀ x ∈ ℕ, x + 0 = x ✓",
    "𝔽𝕚𝕟𝕚𝕤𝕙𝕖𝕕 🦀",
];

const NO_SPIN: WaitStrategy = WaitStrategy::new(Duration::ZERO, Duration::from_millis(1));

fn payload(rec: &Rec, k: u64) -> (RecordKind, Vec<u8>) {
    let text = TEXTS[usize::from(rec.text) % TEXTS.len()].repeat(1 + usize::from(rec.repeat % 40));
    let json = match rec.kind % 5 {
        0 => (
            RecordKind::Progress,
            serde_json::to_vec(&Progress::new(k).with_message(Some(text))),
        ),
        1 => (
            RecordKind::Diagnostic,
            serde_json::to_vec(&Diagnostic::new(Level::Info, text)),
        ),
        2 => (
            RecordKind::End,
            serde_json::to_vec(&serde_json::json!({ "ok": { "note": text } })),
        ),
        3 => (
            RecordKind::End,
            serde_json::to_vec(&EndPayload::Err(WorkerFailure::new(
                shm_proto::payload::FailureCode::Command(text.clone()),
                text,
            ))),
        ),
        _ => (RecordKind::Data, serde_json::to_vec(&(k, text))),
    };
    (json.0, json.1.expect("serializable"))
}

fn utf8(s: &str) {
    // Looked at as bytes: a `str` that is not UTF-8 is what this target
    // hunts for.
    assert!(std::str::from_utf8(s.as_bytes()).is_ok(), "not UTF-8");
}

/// Parses a private copy like the supervisor does; checks what comes out.
fn parse(kind: RecordKind, bytes: &[u8]) {
    match kind {
        RecordKind::Progress => {
            if let Ok(p) = serde_json::from_slice::<Progress>(bytes) {
                p.message.as_deref().map(utf8);
            }
        }
        RecordKind::Diagnostic => {
            if let Ok(d) = serde_json::from_slice::<Diagnostic>(bytes) {
                utf8(&d.message);
            }
        }
        RecordKind::End => match serde_json::from_slice::<EndPayload>(bytes) {
            Ok(EndPayload::Ok(summary)) => {
                utf8(summary.get());
                // The summary is re-parsed later, from this private copy.
                let _ = serde_json::from_str::<serde_json::Value>(summary.get());
            }
            Ok(EndPayload::Err(failure)) => {
                utf8(&failure.message);
                utf8(&failure.code.to_string());
            }
            Ok(_) | Err(_) => {}
        },
        // What `TypedSink` does with a row's private copy.
        RecordKind::Data => {
            if let Ok((_, text)) = serde_json::from_slice::<(u64, String)>(bytes) {
                utf8(&text);
            }
        }
        // This target sends no fragments, but a mutated kind byte can make
        // one; the supervisor copies fragments into private memory for
        // reassembly (`supervisor/src/reassembly.rs`), not checked here.
        RecordKind::Fragment => {}
        RecordKind::Padding => panic!("padding handed out"),
    }
}

fn check_ring_error(err: &RingError) {
    match err.kind() {
        ErrorKind::Corruption => assert!(matches!(err, RingError::Corrupt { .. })),
        ErrorKind::Closed => assert!(matches!(err, RingError::Closed { .. })),
        _ => panic!("untyped consumer error: {err:?}"),
    }
}

fuzz_target!(
    init: {
        // Spawning scoped threads registers this thread's thread-local
        // destructors (glibc allocates their list once, freed only at exit):
        // done here, before inputs run, LeakSanitizer does not report that
        // one-time allocation as a leak of the first input.
        std::thread::scope(|scope| {
            scope.spawn(|| {}).join().expect("warm-up thread");
        });
    },
    |input: Input| {
    if input.records.is_empty() {
        return;
    }
    let capacity = 4096usize << usize::from(input.capacity_shift);
    let config = RingConfig::with_capacity(capacity);
    let max_payload = config.max_payload;
    let memory = Arc::new(RingMemory::create(&config).expect("create"));
    // The hostile peer's own mapping of the memfd.
    let evil = RingMemory::attach(memory.fd().try_clone_to_owned().expect("dup"), Some(1))
        .expect("attach");
    let mut tx = Producer::new(memory.clone()).expect("producer");
    tx.set_wait_strategy(NO_SPIN);
    let mut rx = Consumer::new(memory).expect("consumer");
    rx.set_wait_strategy(NO_SPIN);
    let stop = AtomicBool::new(false);
    let records: Vec<(RecordKind, Vec<u8>)> = input
        .records
        .iter()
        .take(64)
        .enumerate()
        .map(|(k, rec)| payload(rec, k as u64))
        .filter(|(_, p)| p.len() <= max_payload)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(2);

    std::thread::scope(|scope| {
        let stop = &stop;
        let producer = scope.spawn(move || {
            for (k, (kind, bytes)) in records.iter().enumerate() {
                let meta = if *kind == RecordKind::Data {
                    RecordMeta::data(k as u64, 0)
                } else {
                    RecordMeta::of_kind(*kind, k as u64)
                };
                // Blocks while the ring is full; fails once the consumer
                // has gone (closed on drop).
                if tx
                    .reserve_timeout(meta, bytes.len(), Duration::from_secs(1))
                    .map(|mut slot| {
                        slot.payload_mut().copy_from_slice(bytes);
                        slot.commit();
                    })
                    .is_err()
                {
                    break;
                }
                tx.flush();
            }
            tx.close();
        });
        let evil = &evil;
        let mutator = scope.spawn(move || {
            for m in input.mutations.iter().take(32) {
                for _ in 0..m.delay % 4096 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::hint::spin_loop();
                }
                let read = evil.debug_load(HeaderWord::ReadIndex);
                let write = evil.debug_load(HeaderWord::WriteIndex);
                let skip = if m.anywhere { 0 } else { 16 };
                let Some(span) = write.checked_sub(read).and_then(|s| s.checked_sub(skip)) else {
                    continue;
                };
                if span == 0 || span > capacity as u64 {
                    continue;
                }
                let at = read + skip + u64::from(m.offset) % span;
                let offset = HEADER_BYTES + (at % capacity as u64) as usize;
                for &value in m.values.iter().take(64) {
                    evil.debug_write_bytes(offset, &[value])
                        .expect("in the mapping");
                }
            }
        });

        let mut buf = Vec::new();
        let remote = rx.remote();
        loop {
            assert!(Instant::now() < deadline, "consumer did not finish");
            match rx.try_recv() {
                Ok(Some(record)) => {
                    let kind = record.kind();
                    assert_ne!(kind, RecordKind::Padding);
                    assert!(record.header().len as usize <= max_payload);
                    record.copy_payload_into(&mut buf);
                    drop(record);
                    assert!(buf.len() <= max_payload);
                    parse(kind, &buf);
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    check_ring_error(&err);
                    // What the supervisor does: poison and stop reading.
                    remote.poison();
                    break;
                }
            }
            match rx.wait(Duration::from_millis(10)) {
                Ok(Readiness::Closed) => break,
                Ok(_) => {}
                Err(err) => {
                    check_ring_error(&err);
                    remote.poison();
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        // Joined explicitly: the scope's own join returns once the closures
        // are done, before the threads have run their thread-local
        // destructors, which LeakSanitizer would then report.
        producer.join().expect("producer thread");
        mutator.join().expect("mutator thread");
    });
}
);
