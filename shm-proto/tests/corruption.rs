//! A hostile producer scribbling over a live ring: the consumer must report a
//! typed corruption error every time (never panic, read out of bounds or
//! loop forever), and attaching to a scribbled ring must fail typed.
//!
//! The scribbling goes through a second mapping of the same memfd (as a child
//! process would), using the bounds-checked `RingMemory::debug_write_bytes`.

#![cfg(not(loom))]

use std::sync::Arc;
use std::time::Duration;

use shm_proto::{
    Consumer, CorruptField, ErrorKind, HEADER_BYTES, HeaderWord, Producer, Readiness, RecordKind,
    RecordMeta, RingConfig, RingError, RingMemory, record_size,
};
// The randomized test's generator (SplitMix64).
use ringworker_testkit::rng::SplitMix;

/// Offsets of header words (see `shm_proto::layout`).
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const CAPACITY_AT: usize = 16;
const MAX_PAYLOAD_AT: usize = 24;
const WRITE_INDEX_AT: usize = 128;
const READ_INDEX_AT: usize = 256;

struct Live {
    tx: Producer,
    rx: Consumer,
    /// A second mapping of the same memfd: the "hostile child".
    evil: RingMemory,
    capacity: usize,
    max_payload: usize,
}

impl Live {
    /// A ring that has already carried `warm` records (so indices are not 0
    /// and have wrapped), all consumed.
    fn new(capacity: usize, warm: u64) -> Self {
        let config = RingConfig::with_capacity(capacity);
        let memory = Arc::new(RingMemory::create(&config).unwrap());
        let evil = RingMemory::attach(memory.fd().try_clone_to_owned().unwrap(), Some(1)).unwrap();
        let mut tx = Producer::new(memory.clone()).unwrap();
        let mut rx = Consumer::new(memory).unwrap();
        for i in 0..warm {
            tx.push(
                RecordMeta::data(i, 0),
                &vec![i as u8; (i as usize * 13) % 200],
            )
            .unwrap();
            tx.flush();
            assert!(rx.try_recv().unwrap().is_some());
        }
        rx.flush();
        Live {
            tx,
            rx,
            evil,
            capacity,
            max_payload: config.max_payload,
        }
    }

    fn write_index(&self) -> u64 {
        self.evil.debug_load(HeaderWord::WriteIndex)
    }

    fn set_write_index(&self, value: u64) {
        self.evil
            .debug_write_bytes(WRITE_INDEX_AT, &value.to_le_bytes())
            .unwrap();
    }

    /// Where the consumer reads next (it has consumed and published everything).
    fn read_pos(&mut self) -> usize {
        self.rx.flush();
        let tail = self.evil.debug_load(HeaderWord::ReadIndex);
        (tail % self.capacity as u64) as usize
    }

    fn forge_header(&self, pos: usize, len: u32, kind: u8) {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        bytes[4] = kind;
        bytes[8..].copy_from_slice(&77u64.to_le_bytes());
        self.evil
            .debug_write_bytes(HEADER_BYTES + pos, &bytes)
            .unwrap();
    }

    /// The consumer's next read must fail with `field`, and keep failing.
    fn expect_corrupt(&mut self, field: CorruptField) {
        for _ in 0..2 {
            let err = self
                .rx
                .try_recv()
                .map(|r| r.map(|r| *r.header()))
                .unwrap_err();
            assert_corrupt(&err, field);
        }
        // `wait` validates indices only; a bad record behind a valid index
        // reads as Ready, and the receive that follows reports it.
        match self.rx.wait(Duration::from_millis(1)) {
            Ok(Readiness::Ready) => {}
            Ok(other) => panic!("wait on a corrupt ring returned {other:?}"),
            Err(err) => assert_corrupt(&err, field),
        }
        let err = self
            .rx
            .recv_timeout(Duration::from_millis(1))
            .map(|r| r.map(|r| *r.header()))
            .unwrap_err();
        assert_corrupt(&err, field);
        let err = self.rx.drain(10, |_| {}).unwrap_err();
        assert_corrupt(&err, field);
        let err = self.rx.recv_copy(&mut Vec::new()).unwrap_err();
        assert_corrupt(&err, field);
    }
}

fn assert_corrupt(err: &RingError, field: CorruptField) {
    assert!(
        matches!(err, RingError::Corrupt { field: f, .. } if *f == field),
        "expected Corrupt {{ {field:?} }}, got {err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Corruption);
    // The message names the field.
    assert!(err.to_string().contains(&format!("{field:?}")), "{err}");
}

#[test]
fn overwritten_magic_is_reported() {
    let mut live = Live::new(4096, 50);
    live.evil
        .debug_write_bytes(MAGIC_AT, &0xDEAD_BEEF_u64.to_le_bytes())
        .unwrap();
    live.tx.push(RecordMeta::data(1, 0), b"after").unwrap();
    live.tx.flush();
    live.expect_corrupt(CorruptField::Magic);
}

#[test]
fn write_index_beyond_read_plus_capacity_is_reported() {
    let mut live = Live::new(4096, 50);
    let head = live.write_index();
    live.set_write_index(head + 4096 + 8);
    live.expect_corrupt(CorruptField::WriteIndex);
    live.set_write_index(!7u64);
    live.expect_corrupt(CorruptField::WriteIndex);
}

#[test]
fn write_index_moving_backwards_is_reported() {
    let mut live = Live::new(4096, 50);
    let head = live.write_index();
    assert!(head > 0);
    live.set_write_index(head - 8);
    live.expect_corrupt(CorruptField::WriteIndex);
    live.set_write_index(0);
    live.expect_corrupt(CorruptField::WriteIndex);
}

#[test]
fn misaligned_write_index_is_reported() {
    let mut live = Live::new(4096, 50);
    let head = live.write_index();
    for delta in [1u64, 3, 7, 4095] {
        live.set_write_index(head + delta);
        live.expect_corrupt(CorruptField::WriteIndex);
    }
}

#[test]
fn write_index_ending_inside_a_record_header_is_reported() {
    let mut live = Live::new(4096, 0);
    live.tx.push(RecordMeta::data(1, 0), b"x").unwrap();
    live.tx.flush();
    // Publish only the first 8 of the record header's 16 bytes.
    live.set_write_index(8);
    live.expect_corrupt(CorruptField::WriteIndex);
}

#[test]
fn unknown_record_kind_is_reported() {
    for kind in [0u8, 6, 0x7F, 0xFE] {
        let mut live = Live::new(4096, 30);
        live.tx.push(RecordMeta::data(1, 0), b"payload").unwrap();
        live.tx.flush();
        let pos = live.read_pos();
        live.forge_header(pos, 7, kind);
        live.expect_corrupt(CorruptField::RecordKind);
    }
}

#[test]
fn record_longer_than_max_payload_is_reported() {
    let mut live = Live::new(64 << 10, 30);
    live.tx.push(RecordMeta::data(1, 0), b"payload").unwrap();
    live.tx.flush();
    let pos = live.read_pos();
    for len in [live.max_payload as u32 + 1, u32::MAX] {
        live.forge_header(pos, len, RecordKind::Data as u8);
        live.expect_corrupt(CorruptField::RecordLength);
    }
}

#[test]
fn record_crossing_the_end_of_the_buffer_is_reported() {
    let mut live = Live::new(4096, 0);
    // Move both sides to 64 bytes before the end with small records.
    while live.write_index() % 4096 != 4096 - 64 {
        live.tx.push(RecordMeta::data(0, 0), &[0; 8]).unwrap();
        live.tx.flush();
        assert!(live.rx.try_recv().unwrap().is_some());
    }
    // A legitimate 40-byte record (56 bytes) fits; claim it is 100 bytes
    // (within max_payload, but past the end of the buffer).
    live.tx.push(RecordMeta::data(1, 0), &[1; 40]).unwrap();
    live.tx.flush();
    let pos = live.read_pos();
    assert_eq!(pos, 4096 - 64);
    live.forge_header(pos, 100, RecordKind::Data as u8);
    live.expect_corrupt(CorruptField::RecordLength);
}

#[test]
fn record_running_past_the_write_index_is_reported() {
    let mut live = Live::new(4096, 20);
    live.tx.push(RecordMeta::data(1, 0), &[5; 64]).unwrap();
    live.tx.flush();
    let pos = live.read_pos();
    // The published region holds 16 + 64 bytes; claim 200.
    live.forge_header(pos, 200, RecordKind::Data as u8);
    live.expect_corrupt(CorruptField::RecordLength);
}

#[test]
fn bad_padding_records_are_reported() {
    // Padding that does not end exactly at the end of the buffer.
    let mut live = Live::new(4096, 20);
    live.tx.push(RecordMeta::data(1, 0), &[5; 64]).unwrap();
    live.tx.flush();
    let pos = live.read_pos();
    live.forge_header(pos, 8, RecordKind::Padding as u8);
    live.expect_corrupt(CorruptField::Padding);

    // Padding of the right length whose end was never published.
    let mut live = Live::new(4096, 0);
    live.tx.push(RecordMeta::data(1, 0), &[5; 64]).unwrap();
    live.tx.flush();
    live.forge_header(0, (4096 - 16) as u32, RecordKind::Padding as u8);
    live.expect_corrupt(CorruptField::Padding);

    // Padding length overflowing when the header size is added.
    let mut live = Live::new(4096, 0);
    live.tx.push(RecordMeta::data(1, 0), &[5; 64]).unwrap();
    live.tx.flush();
    live.forge_header(0, u32::MAX, RecordKind::Padding as u8);
    live.expect_corrupt(CorruptField::Padding);
}

#[test]
fn records_before_the_corruption_are_delivered_intact() {
    let mut live = Live::new(4096, 0);
    for i in 0..3u64 {
        live.tx
            .push(RecordMeta::data(i, 0), &[i as u8; 24])
            .unwrap();
    }
    live.tx.flush();
    // Corrupt the third record's header (two 40-byte records before it).
    live.forge_header(2 * record_size(24), 24, 0x42);
    for i in 0..2u64 {
        let rec = live.rx.try_recv().unwrap().unwrap();
        assert_eq!(rec.request(), i);
        assert_eq!(rec.payload(), &[i as u8; 24]);
    }
    live.expect_corrupt(CorruptField::RecordKind);
}

#[test]
fn producer_reports_a_corrupt_read_index() {
    for bad in [!7u64, 3, 1 << 40] {
        let live = Live::new(4096, 10);
        let mut tx = live.tx;
        live.evil
            .debug_write_bytes(READ_INDEX_AT, &bad.to_le_bytes())
            .unwrap();
        // Fill until the producer has to look at the read index.
        let err = loop {
            match tx.reserve_timeout(RecordMeta::data(1, 0), 200, Duration::from_millis(5)) {
                Ok(slot) => slot.commit(),
                Err(e) => break e,
            }
        };
        assert_corrupt(&err, CorruptField::ReadIndex);
    }
}

#[test]
fn attach_rejects_a_scribbled_identity_line() {
    let cases: [(usize, u64, CorruptField); 5] = [
        (MAGIC_AT, 0, CorruptField::Magic),
        (VERSION_AT, 99, CorruptField::LayoutVersion),
        (CAPACITY_AT, 8192, CorruptField::Capacity),
        (CAPACITY_AT, 4095, CorruptField::Capacity),
        (MAX_PAYLOAD_AT, 4096, CorruptField::MaxRecord),
    ];
    for (offset, value, field) in cases {
        let memory = RingMemory::create(&RingConfig::with_capacity(4096)).unwrap();
        let bytes = value.to_le_bytes();
        let width = if offset == VERSION_AT || offset == MAX_PAYLOAD_AT {
            4
        } else {
            8
        };
        memory.debug_write_bytes(offset, &bytes[..width]).unwrap();
        let err = RingMemory::attach(memory.fd().try_clone_to_owned().unwrap(), None).unwrap_err();
        assert_corrupt(&err, field);
    }
}

#[test]
fn debug_write_bytes_is_bounds_checked() {
    let memory = RingMemory::create(&RingConfig::with_capacity(4096)).unwrap();
    let end = memory.mapped_bytes();
    assert!(memory.debug_write_bytes(end - 4, &[0; 4]).is_ok());
    assert!(memory.debug_write_bytes(end - 3, &[0; 4]).is_err());
    assert!(memory.debug_write_bytes(usize::MAX, &[0; 2]).is_err());
}

/// What one randomized round saw.
#[derive(Debug, Default)]
struct Outcome {
    records: u64,
    corrupt: bool,
}

fn scribble(live: &Live, rng: &mut SplitMix) {
    let capacity = live.capacity as u64;
    match rng.below(6) {
        // Random bytes anywhere in the header lines.
        0 => {
            let at = rng.below(7 * 128) as usize;
            let n = 1 + rng.below(8) as usize;
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            let n = n.min(HEADER_BYTES - at);
            live.evil.debug_write_bytes(at, &bytes[..n]).unwrap();
        }
        // The write index moved by a random amount.
        1 => {
            let head = live.write_index();
            let delta = rng.below(4 * capacity);
            let value = if rng.below(2) == 0 {
                head.wrapping_add(delta)
            } else {
                head.wrapping_sub(delta)
            };
            let value = if rng.below(3) == 0 { value } else { value & !7 };
            live.set_write_index(value);
        }
        // A forged record header at a random 8-aligned spot.
        2 => {
            let pos = (rng.below(capacity) & !7) as usize;
            let pos = pos.min(live.capacity - 16);
            let kind = match rng.below(4) {
                0 => rng.next_u64() as u8,
                1 => RecordKind::Padding as u8,
                _ => 1 + rng.below(4) as u8,
            };
            let len = match rng.below(4) {
                0 => rng.next_u64() as u32,
                1 => (live.max_payload as u64 + rng.below(16)) as u32,
                _ => rng.below(live.max_payload as u64 + 1) as u32,
            };
            live.forge_header(pos, len, kind);
        }
        // Random bytes anywhere in the data area.
        _ => {
            let at = rng.below(capacity) as usize;
            let n = (1 + rng.below(32) as usize).min(live.capacity - at);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            live.evil
                .debug_write_bytes(HEADER_BYTES + at, &bytes)
                .unwrap();
        }
    }
}

fn random_round(seed: u64) -> Outcome {
    let mut rng = SplitMix::new(seed);
    let capacity = 4096 << rng.below(3);
    let mut live = Live::new(capacity, rng.below(100));
    let mut outcome = Outcome::default();
    let mut buf = Vec::new();
    for step in 0..400u64 {
        // Keep records in flight.
        for _ in 0..rng.below(6) {
            let len = rng.below(live.max_payload as u64 + 1) as usize;
            let payload = vec![step as u8; len];
            match live
                .tx
                .reserve_timeout(RecordMeta::data(step, 1), len, Duration::ZERO)
            {
                Ok(mut slot) => {
                    slot.payload_mut().copy_from_slice(&payload);
                    slot.commit();
                }
                // A ring that looks full, closed or cancelled because of
                // scribbled header words, or a scribbled read index.
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Timeout | ErrorKind::Closed | ErrorKind::Corruption
                    ),
                    "{e:?}"
                ),
            }
        }
        if rng.below(2) == 0 {
            live.tx.flush();
        }
        if rng.below(4) == 0 {
            scribble(&live, &mut rng);
        }
        let result = match rng.below(4) {
            0 => live
                .rx
                .try_recv()
                .map(|r| r.map(|r| (r.header().len as usize, r.payload().len()))),
            1 => live
                .rx
                .recv_copy(&mut buf)
                .map(|h| h.map(|h| (h.len as usize, buf.len()))),
            2 => {
                let max = live.max_payload;
                live.rx
                    .drain(16, |r| {
                        assert!(r.payload().len() <= max);
                        assert_eq!(r.payload().len(), r.header().len as usize);
                        assert_ne!(r.kind(), RecordKind::Padding);
                    })
                    .map(|n| {
                        outcome.records += n as u64;
                        None
                    })
            }
            // (Scribbled state bits may make the ring look closed.)
            _ => live.rx.wait(Duration::ZERO).map(|_: Readiness| None),
        };
        match result {
            Ok(Some((header_len, payload_len))) => {
                assert_eq!(header_len, payload_len);
                assert!(payload_len <= live.max_payload);
                outcome.records += 1;
            }
            Ok(None) => {}
            Err(e) => {
                assert!(matches!(e, RingError::Corrupt { .. }), "{e:?}");
                assert_eq!(e.kind(), ErrorKind::Corruption);
                outcome.corrupt = true;
                live.rx.remote().poison();
                return outcome;
            }
        }
    }
    outcome
}

#[test]
fn random_scribbles_yield_records_or_typed_errors() {
    // Each round runs on its own thread so that a hang fails the test
    // instead of stalling it.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut corrupt = 0;
        let mut records = 0;
        for seed in 0..300 {
            let outcome = random_round(seed);
            corrupt += u64::from(outcome.corrupt);
            records += outcome.records;
        }
        done_tx.send((corrupt, records)).unwrap();
    });
    let (corrupt, records) = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("randomized corruption rounds hung or panicked");
    // The rounds must actually exercise both outcomes.
    assert!(corrupt > 100, "only {corrupt} rounds detected corruption");
    assert!(records > 1000, "only {records} records delivered");
}

#[test]
fn consumer_created_over_a_scribbled_read_index_fails_typed() {
    // A consumer taking over a ring a hostile child already wrote to must not
    // trust the read index it starts from.
    for bad_tail in [3u64, 4093, u64::MAX - 2] {
        let memory = Arc::new(RingMemory::create(&RingConfig::with_capacity(4096)).unwrap());
        let mut tx = Producer::new(memory.clone()).unwrap();
        tx.push(RecordMeta::data(1, 0), &[7; 100]).unwrap();
        tx.flush();
        memory
            .debug_write_bytes(READ_INDEX_AT, &bad_tail.to_le_bytes())
            .unwrap();
        memory
            .debug_write_bytes(
                WRITE_INDEX_AT,
                &(bad_tail.wrapping_add(64) & !7).to_le_bytes(),
            )
            .unwrap();
        // Record offsets derive from the read index: a misaligned one would
        // mean misaligned (undefined) header reads.
        let err = Consumer::new(memory.clone()).unwrap_err();
        assert_corrupt(&err, CorruptField::ReadIndex);
    }
    // The consumer half stays claimable once the index is repaired.
    let memory = Arc::new(RingMemory::create(&RingConfig::with_capacity(4096)).unwrap());
    memory
        .debug_write_bytes(READ_INDEX_AT, &5u64.to_le_bytes())
        .unwrap();
    assert!(Consumer::new(memory.clone()).is_err());
    memory
        .debug_write_bytes(READ_INDEX_AT, &0u64.to_le_bytes())
        .unwrap();
    assert!(Consumer::new(memory).is_ok());
}

/// A consumer whose read position (and the write index) start at `start`,
/// with a forged padding record at the read position that fills `to_end`
/// bytes up to the end of the buffer, published.
fn ring_with_padding(capacity: usize, to_end: usize) -> (Arc<RingMemory>, Consumer) {
    let memory = Arc::new(RingMemory::create(&RingConfig::with_capacity(capacity)).unwrap());
    let start = (3 * capacity - to_end) as u64;
    memory.debug_store(HeaderWord::ReadIndex, start);
    memory.debug_store(HeaderWord::WriteIndex, start);
    let rx = Consumer::new(memory.clone()).unwrap();
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&((to_end - 16) as u32).to_le_bytes());
    bytes[4] = RecordKind::Padding as u8;
    memory
        .debug_write_bytes(HEADER_BYTES + capacity - to_end, &bytes)
        .unwrap();
    memory.debug_store(HeaderWord::WriteIndex, start + to_end as u64);
    (memory, rx)
}

#[test]
fn padding_as_long_as_a_maximal_record_is_corrupt() {
    let capacity = 4096;
    let max_record = record_size(RingConfig::with_capacity(capacity).max_payload);
    assert_eq!(max_record, 512);
    // The longest honest padding (the next record is maximal and misses the
    // end by 8 bytes) is skipped.
    let (_memory, mut rx) = ring_with_padding(capacity, max_record - 8);
    assert!(rx.try_recv().unwrap().is_none());
    assert_eq!(rx.pending_bytes(), 0);
    // Any padding a maximal record would have fitted in is corruption, up to
    // a padding spanning the whole buffer (which would let a hostile
    // producer make the consumer skip laps without any records).
    for to_end in [max_record, max_record + 8, 2048, capacity] {
        let (_memory, mut rx) = ring_with_padding(capacity, to_end);
        for _ in 0..2 {
            let err = rx.try_recv().map(|r| r.map(|r| *r.header())).unwrap_err();
            assert_corrupt(&err, CorruptField::Padding);
        }
        let err = rx.recv_copy(&mut Vec::new()).unwrap_err();
        assert_corrupt(&err, CorruptField::Padding);
    }
}
