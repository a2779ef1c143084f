//! A hostile producer that keeps changing records after publishing them,
//! while the consumer reads them: what the supervisor parses itself
//! (progress, diagnostics, end markers) must be copied into private memory
//! first and parsed there.
//!
//! A producer thread publishes progress / diagnostic / end records whose
//! JSON carries multi-byte UTF-8, and a mutator thread (through a second
//! mapping of the same memfd, as a child would) keeps writing bytes into
//! the payloads of records that are published but not yet released, bytes
//! that occur nowhere in valid UTF-8 (`0xC0`, `0xF8`, `0xFF`) and so nowhere
//! in valid JSON. The consumer copies each payload with
//! [`Record::copy_payload_into`], releases the record and parses the copy.
//!
//! What that guarantees, and what is checked: every parse either fails with
//! a typed `serde_json` error or yields exactly the value the producer
//! wrote, since every byte the mutator writes breaks the JSON; so a copy
//! that decodes is a snapshot of the original bytes. A parser working in
//! place could validate a string's UTF-8 before a byte flipped and copy it
//! after, yielding a `String` holding a `0xFF`: that string differs from
//! every value the producer wrote, which the checks catch (demonstrated by the ignored `in_place_parsing_is_caught`, which
//! parses in place on purpose; it is a race, so not deterministic, and
//! ignored because what it provokes is undefined behaviour).

#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shm_proto::payload::{Diagnostic, EndPayload, FailureCode, Level, Progress, WorkerFailure};
use shm_proto::{
    Consumer, HEADER_BYTES, HeaderWord, Producer, Readiness, Record, RecordKind, RecordMeta,
    RingConfig, RingMemory, record_size,
};

/// Every record has this payload length (JSON padded with spaces), so that
/// records tile the data area exactly: no wrap padding, and record `k` of
/// the stream (request id `k`) starts at ring index `k * RECORD`.
const PAYLOAD: usize = 240;
const RECORD: usize = record_size(PAYLOAD);
const CAPACITY: usize = 16 * 1024;
const _: () = assert!(RECORD == 256 && CAPACITY.is_multiple_of(RECORD));

/// Messages with one-, two-, three- and four-byte UTF-8 sequences.
const MESSAGES: [&str; 4] = [
    "plain ascii progress message, long enough to take a while to validate",
    "héllo wörld: ünïcödé ïn thé mïddlé öf à lòng mèssàgé",
    "∀ x ∈ ℕ, x + 0 = x ∧ 0 + x = x — proved ✓",
    "𝔽𝕚𝕟𝕚𝕤𝕙𝕖𝕕 𝕥𝕙𝕖 𝕤𝕨𝕖𝕖𝕡 🦀🦀",
];

/// The record the producer writes as request `k`.
fn expected(k: u64) -> (RecordKind, Vec<u8>) {
    let message = MESSAGES[(k % 4) as usize];
    let (kind, json) = match k % 3 {
        0 => (
            RecordKind::Progress,
            serde_json::to_vec(
                &Progress::new(k)
                    .with_total(Some(k + 1))
                    .with_message(Some(message.to_owned())),
            ),
        ),
        1 => (
            RecordKind::Diagnostic,
            serde_json::to_vec(&Diagnostic::new(Level::Warn, message)),
        ),
        _ if k.is_multiple_of(2) => (
            RecordKind::End,
            serde_json::to_vec(&serde_json::json!({ "ok": { "rows": k, "note": message } })),
        ),
        _ => (
            RecordKind::End,
            serde_json::to_vec(&EndPayload::Err(WorkerFailure::new(
                FailureCode::Command(format!("code-{k}")),
                message,
            ))),
        ),
    };
    let mut json = json.unwrap();
    assert!(json.len() <= PAYLOAD, "{} bytes", json.len());
    json.resize(PAYLOAD, b' ');
    (kind, json)
}

/// What a consumer obtained from one record.
#[derive(Debug, Default)]
struct Tally {
    intact: u64,
    rejected: u64,
    /// Parses that succeeded with a value the producer never wrote.
    violations: Vec<String>,
}

/// Parses a payload like the supervisor does and checks the result against
/// what record `k` held: either a typed decode error or the exact original.
fn check(k: u64, kind: RecordKind, bytes: &[u8], tally: &mut Tally) {
    let (want_kind, want) = expected(k);
    assert_eq!(kind, want_kind, "record headers are never mutated here");
    let message = MESSAGES[(k % 4) as usize];
    let outcome: Result<Vec<String>, serde_json::Error> = match kind {
        RecordKind::Progress => serde_json::from_slice::<Progress>(bytes).map(|p| {
            let want: Progress = serde_json::from_slice(&want).unwrap();
            if p == want {
                vec![]
            } else {
                vec![describe(k, p.message.as_deref().unwrap_or(""))]
            }
        }),
        RecordKind::Diagnostic => serde_json::from_slice::<Diagnostic>(bytes).map(|d| {
            if d == Diagnostic::new(Level::Warn, message) {
                vec![]
            } else {
                vec![describe(k, &d.message)]
            }
        }),
        RecordKind::End => serde_json::from_slice::<EndPayload>(bytes).map(|end| match end {
            EndPayload::Ok(summary) => {
                let got: serde_json::Value = match serde_json::from_str(summary.get()) {
                    Ok(v) => v,
                    Err(e) => return vec![format!("summary reparse: {e}")],
                };
                if got == serde_json::json!({ "rows": k, "note": message }) {
                    vec![]
                } else {
                    vec![describe(k, got["note"].as_str().unwrap_or(""))]
                }
            }
            EndPayload::Err(failure) => {
                if failure == WorkerFailure::new(FailureCode::Command(format!("code-{k}")), message)
                {
                    vec![]
                } else {
                    vec![describe(k, &failure.message)]
                }
            }
            _ => vec![format!("record {k}: an end marker of an unknown shape")],
        }),
        other => panic!("unexpected kind {other:?}"),
    };
    match outcome {
        Ok(bad) if bad.is_empty() => tally.intact += 1,
        Ok(bad) => tally.violations.extend(bad),
        // Typed: serde_json's error, whatever the bytes were.
        Err(err) => {
            let _ = err.classify();
            tally.rejected += 1;
        }
    }
}

/// Describes a string no snapshot held without formatting it as a `str`
/// (from a parser working in place it may not be UTF-8, and `str` code may
/// then misbehave): only its bytes are looked at.
fn describe(k: u64, s: &str) -> String {
    let bytes = s.as_bytes();
    format!(
        "record {k}: {:?} (valid UTF-8: {})",
        String::from_utf8_lossy(bytes),
        std::str::from_utf8(bytes).is_ok()
    )
}

/// Flips bytes of published records until `stop`: each shot picks a record
/// in `read_index .. write_index` and a byte of its payload, and stores a
/// run of bytes that break the JSON into it. Never a valid byte: the shared
/// indices are loaded at different times, so the slot may already hold a
/// later record, and "restoring" a byte of the record it held before would
/// forge valid JSON with other content (which a hostile child may do, but
/// which no check could tell from the producer's own writes).
fn mutate(evil: &RingMemory, stop: &AtomicBool, seed: u64, shots: &AtomicU64) {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const BAD: [u8; 3] = [0xFF, 0xC0, 0xF8];
    while !stop.load(Ordering::Relaxed) {
        let read = evil.debug_load(HeaderWord::ReadIndex);
        let write = evil.debug_load(HeaderWord::WriteIndex);
        if write <= read {
            std::hint::spin_loop();
            continue;
        }
        let records = (write - read) / RECORD as u64;
        if records == 0 {
            continue;
        }
        let k = read / RECORD as u64 + next() % records;
        let (_, original) = expected(k);
        // Mostly inside the JSON text (the strings are in its middle).
        let len = original.iter().rposition(|&b| b != b' ').unwrap_or(0) + 1;
        let at = (next() as usize) % len;
        let offset = HEADER_BYTES + (k as usize * RECORD) % CAPACITY + 16 + at;
        let flips = 1 + next() % 64;
        for _ in 0..flips {
            let byte = BAD[(next() % 3) as usize];
            evil.debug_write_bytes(offset, &[byte]).unwrap();
        }
        shots.fetch_add(1, Ordering::Relaxed);
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Run {
    tally: Tally,
    shots: u64,
}

/// `records` records through a ring under a mutator, each copied out and
/// parsed (or, `in_place`, parsed straight out of the ring).
fn run_hostile(records: u64, in_place: bool, stop_on_violation: bool) -> Run {
    let config = RingConfig::with_capacity(CAPACITY).with_max_payload(PAYLOAD);
    let memory = Arc::new(RingMemory::create(&config).unwrap());
    let evil = RingMemory::attach(memory.fd().try_clone_to_owned().unwrap(), Some(1)).unwrap();
    let mut tx = Producer::new(memory.clone()).unwrap();
    let mut rx = Consumer::new(memory).unwrap();
    // Publish the read index often, so the mutator aims at live records.
    rx.set_publish_every(RECORD);
    let stop = Arc::new(AtomicBool::new(false));
    let shots = Arc::new(AtomicU64::new(0));

    std::thread::scope(|scope| {
        let producer_stop = stop.clone();
        scope.spawn(move || {
            for k in 0..records {
                if producer_stop.load(Ordering::Relaxed) {
                    break;
                }
                let (kind, payload) = expected(k);
                if tx.push(RecordMeta::of_kind(kind, k), &payload).is_err() {
                    break;
                }
                tx.flush();
            }
            tx.close();
        });
        let (mutator_stop, mutator_shots, evil) = (stop.clone(), shots.clone(), &evil);
        scope.spawn(move || mutate(evil, &mutator_stop, 0x9E37_79B9_7F4A_7C15, &mutator_shots));

        // Stops the other threads however this one leaves (a failed check
        // included), so a failure cannot turn into a hang.
        let _stop = StopOnDrop(stop.clone());
        let mut tally = Tally::default();
        let mut buf = Vec::new();
        let mut seen = 0u64;
        while seen < records {
            if rx.pending_bytes() == 0 {
                match rx.wait(Duration::from_millis(50)).unwrap() {
                    Readiness::Closed => break,
                    _ => continue,
                }
            }
            let record: Record<'_> = match rx.try_recv().expect("headers are never mutated") {
                Some(record) => record,
                None => continue,
            };
            let (kind, k) = (record.kind(), record.request());
            assert_eq!(k, seen, "records arrive in order");
            seen += 1;
            if in_place {
                // What the supervisor must not do: parse shared bytes.
                let bytes = record.payload();
                check(k, kind, bytes, &mut tally);
                drop(record);
            } else {
                record.copy_payload_into(&mut buf);
                drop(record);
                check(k, kind, &buf, &mut tally);
            }
            if stop_on_violation && !tally.violations.is_empty() {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        // Unblock a producer waiting for space.
        drop(rx);
        Run {
            tally,
            shots: shots.load(Ordering::Relaxed),
        }
    })
}

#[test]
fn copied_payloads_parse_as_written_or_fail_typed_under_a_mutating_peer() {
    let run = run_hostile(200_000, false, false);
    let Tally {
        intact,
        rejected,
        violations,
    } = &run.tally;
    eprintln!(
        "{intact} intact, {rejected} rejected, {} mutator shots",
        run.shots
    );
    assert!(
        violations.is_empty(),
        "{} values no snapshot held, e.g. {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    assert_eq!(intact + rejected, 200_000);
}

/// The same checks catch the bug they are there for: parsing in place. A
/// race, so it may need a while (and may, rarely, not hit at all within the
/// budget); ignored because a hit is undefined behaviour in this process.
#[test]
#[ignore = "provokes the undefined behaviour the copy prevents; run by hand"]
fn in_place_parsing_is_caught() {
    let start = Instant::now();
    let mut total = Tally::default();
    while start.elapsed() < Duration::from_secs(60) {
        let run = run_hostile(200_000, true, true);
        total.intact += run.tally.intact;
        total.rejected += run.tally.rejected;
        if !run.tally.violations.is_empty() {
            eprintln!(
                "caught after {:?}: {:?}",
                start.elapsed(),
                run.tally.violations
            );
            return;
        }
    }
    panic!(
        "no violation within 60 s ({} intact, {} rejected)",
        total.intact, total.rejected
    );
}

/// Without a race: records mutated before the consumer reads them are
/// rejected typed, the others arrive intact (so the checks above do see
/// both outcomes).
#[test]
fn payloads_mutated_before_the_read_are_rejected_typed() {
    let config = RingConfig::with_capacity(CAPACITY).with_max_payload(PAYLOAD);
    let memory = Arc::new(RingMemory::create(&config).unwrap());
    let evil = RingMemory::attach(memory.fd().try_clone_to_owned().unwrap(), Some(1)).unwrap();
    let mut tx = Producer::new(memory.clone()).unwrap();
    let mut rx = Consumer::new(memory).unwrap();
    let n = (CAPACITY / RECORD) as u64;
    for k in 0..n {
        let (kind, payload) = expected(k);
        tx.push(RecordMeta::of_kind(kind, k), &payload).unwrap();
    }
    tx.flush();
    for k in (1..n).step_by(2) {
        // Somewhere in each message string: its last byte before the quote.
        let (_, original) = expected(k);
        let message = MESSAGES[(k % 4) as usize].as_bytes();
        let at = original
            .windows(message.len())
            .position(|w| w == message)
            .unwrap()
            + message.len()
            - 1;
        let offset = HEADER_BYTES + (k as usize * RECORD) % CAPACITY + 16 + at;
        evil.debug_write_bytes(offset, &[0xFF]).unwrap();
    }
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    for k in 0..n {
        let record = rx.try_recv().unwrap().expect("published");
        let kind = record.kind();
        record.copy_payload_into(&mut buf);
        drop(record);
        check(k, kind, &buf, &mut tally);
    }
    assert!(tally.violations.is_empty(), "{:?}", tally.violations);
    assert_eq!((tally.intact, tally.rejected), (n / 2, n / 2));
}
