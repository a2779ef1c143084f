//! The supervisor's consumer over hostile ring memory.
//!
//! A small ring is created, optionally loaded with genuine records, then its
//! header and data area are overwritten with fuzzer bytes (through the same
//! bounds-checked hook a scribbling child uses), and the consumer runs a
//! fuzzer-chosen sequence of operations, interleaved with more scribbles and
//! genuine records. Whatever the bytes: no panic, no out-of-bounds access, no
//! hang, every error is typed, and every record handed out has a payload no
//! longer than the ring's maximum.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shm_proto::{
    Consumer, ErrorKind, HEADER_BYTES, HeaderWord, Producer, RecordKind, RecordMeta, RingConfig, RingError,
    RingMemory, WaitStrategy,
};

#[derive(Debug, Arbitrary)]
struct Input {
    /// 4, 8 or 16 KiB.
    capacity_shift: u8,
    /// Reduced to 1..=largest for the capacity.
    max_payload: u16,
    /// Create the consumer after the first scribbles (it then starts from a
    /// hostile read index) instead of before.
    consumer_after_scribbles: bool,
    /// Genuine records committed before the scribbles.
    warm: Vec<u16>,
    /// Raw bytes laid over the data area from offset 0 (then `scribbles`).
    data: Vec<u8>,
    scribbles: Vec<Scribble>,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Scribble {
    /// Bytes at an offset in the header page.
    Header { offset: u16, bytes: Vec<u8> },
    /// Bytes at an offset in the data area.
    Data { offset: u32, bytes: Vec<u8> },
    /// A 64-bit value into one of the header's words (index into the first
    /// 7 lines, 8-byte granular).
    Word { word: u8, value: u64 },
    /// The write index moved relative to its current value.
    WriteIndexDelta { delta: i32 },
    /// A forged record header at an (8-aligned) offset.
    Record {
        offset: u32,
        len: u32,
        kind: u8,
        flags: u8,
        stream: u16,
        request: u64,
    },
}

#[derive(Debug, Arbitrary)]
enum Op {
    TryRecv,
    RecvCopy,
    Drain(u8),
    Wait,
    RecvTimeout,
    ConsumerFlush,
    /// A genuine record from the (trusted, in-process) producer.
    Push(u16),
    ProducerFlush,
    Scribble(Scribble),
}

const NO_SPIN: WaitStrategy = WaitStrategy::new(Duration::ZERO, Duration::from_millis(1));

struct Ring {
    memory: Arc<RingMemory>,
    capacity: usize,
    max_payload: usize,
}

impl Ring {
    fn scribble(&self, s: &Scribble) {
        let result = match s {
            Scribble::Header { offset, bytes } => {
                let at = usize::from(*offset) % HEADER_BYTES;
                let n = bytes.len().min(HEADER_BYTES - at);
                self.memory.debug_write_bytes(at, &bytes[..n])
            }
            Scribble::Data { offset, bytes } => {
                let at = *offset as usize % self.capacity;
                let n = bytes.len().min(self.capacity - at);
                self.memory
                    .debug_write_bytes(HEADER_BYTES + at, &bytes[..n])
            }
            Scribble::Word { word, value } => {
                let at = usize::from(*word % (7 * 16)) * 8;
                self.memory.debug_write_bytes(at, &value.to_le_bytes())
            }
            Scribble::WriteIndexDelta { delta } => {
                let value = self
                    .memory
                    .debug_load(HeaderWord::WriteIndex)
                    .wrapping_add_signed(i64::from(*delta));
                self.memory.debug_store(HeaderWord::WriteIndex, value);
                Ok(())
            }
            Scribble::Record {
                offset,
                len,
                kind,
                flags,
                stream,
                request,
            } => {
                let at = (*offset as usize % (self.capacity - 15)) & !7;
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&len.to_le_bytes());
                bytes[4] = *kind;
                bytes[5] = *flags;
                bytes[6..8].copy_from_slice(&stream.to_le_bytes());
                bytes[8..].copy_from_slice(&request.to_le_bytes());
                self.memory.debug_write_bytes(HEADER_BYTES + at, &bytes)
            }
        };
        result.expect("scribbles are clamped into the mapping");
    }
}

/// Every error the consumer returns must be a corruption report (or, since
/// the state word is fair game, a close).
fn check_consumer_error(err: &RingError) {
    match err.kind() {
        ErrorKind::Corruption => assert!(matches!(err, RingError::Corrupt { .. })),
        ErrorKind::Closed => assert!(matches!(err, RingError::Closed { .. })),
        _ => panic!("consumer returned an untyped error: {err:?}"),
    }
}

fn check_record(ring: &Ring, header_len: u32, kind: RecordKind, payload_len: usize) {
    assert!(
        payload_len <= ring.max_payload,
        "payload {payload_len} > max"
    );
    assert_eq!(payload_len, header_len as usize);
    assert_ne!(kind, RecordKind::Padding, "padding handed out");
}

fuzz_target!(|input: Input| {
    let capacity = 4096usize << (input.capacity_shift % 3);
    let largest = RingConfig::largest_payload_for(capacity);
    let max_payload = 1 + usize::from(input.max_payload) % largest;
    let memory = Arc::new(
        RingMemory::create(&RingConfig::with_capacity(capacity).with_max_payload(max_payload))
            .expect("create"),
    );
    let ring = Ring {
        memory: memory.clone(),
        capacity,
        max_payload,
    };
    // The producer is the trusted side here (in the system it is the child,
    // which trusts the supervisor's fresh ring): create it first.
    let mut tx = Producer::new(memory.clone()).expect("producer");
    tx.set_wait_strategy(NO_SPIN);
    let new_consumer = || -> Option<Consumer> {
        match Consumer::new(memory.clone()) {
            Ok(mut rx) => {
                rx.set_wait_strategy(NO_SPIN);
                Some(rx)
            }
            Err(e) => {
                check_consumer_error(&e);
                None
            }
        }
    };
    let mut rx = if input.consumer_after_scribbles {
        None
    } else {
        new_consumer()
    };

    for (i, &len) in input.warm.iter().take(64).enumerate() {
        let len = usize::from(len) % (max_payload + 1);
        if tx
            .reserve_timeout(RecordMeta::data(i as u64, 0), len, Duration::ZERO)
            .map(|slot| slot.commit())
            .is_err()
        {
            break;
        }
    }
    tx.flush();

    let n = input.data.len().min(capacity);
    memory
        .debug_write_bytes(HEADER_BYTES, &input.data[..n])
        .unwrap();
    for s in input.scribbles.iter().take(64) {
        ring.scribble(s);
    }
    if rx.is_none() {
        rx = new_consumer();
    }
    let Some(mut rx) = rx else {
        return;
    };

    let mut buf = Vec::new();
    for op in input.ops.iter().take(256) {
        let result: Result<(), RingError> = match op {
            Op::TryRecv => rx.try_recv().map(|r| {
                if let Some(r) = r {
                    check_record(&ring, r.header().len, r.kind(), r.payload().len());
                }
            }),
            Op::RecvCopy => rx.recv_copy(&mut buf).map(|h| {
                if let Some(h) = h {
                    let kind = RecordKind::from_code(h.kind).expect("validated kind");
                    check_record(&ring, h.len, kind, buf.len());
                }
            }),
            Op::Drain(max) => rx
                .drain(usize::from(*max), |r| {
                    check_record(&ring, r.header().len, r.kind(), r.payload().len())
                })
                .map(|n| assert!(n <= usize::from(*max))),
            Op::Wait => rx.wait(Duration::ZERO).map(drop),
            Op::RecvTimeout => rx.recv_timeout(Duration::ZERO).map(|r| {
                if let Some(r) = r {
                    check_record(&ring, r.header().len, r.kind(), r.payload().len());
                }
            }),
            Op::ConsumerFlush => {
                rx.flush();
                Ok(())
            }
            Op::Push(len) => {
                let len = usize::from(*len) % (max_payload + 1);
                // The producer validates what the consumer side publishes;
                // its errors are typed too, and never fatal here.
                if let Err(e) = tx
                    .reserve_timeout(RecordMeta::data(7, 1), len, Duration::ZERO)
                    .map(|slot| slot.commit())
                {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::Corruption | ErrorKind::Timeout | ErrorKind::Closed
                        ),
                        "{e:?}"
                    );
                }
                Ok(())
            }
            Op::ProducerFlush => {
                tx.flush();
                Ok(())
            }
            Op::Scribble(s) => {
                ring.scribble(s);
                Ok(())
            }
        };
        if let Err(e) = result {
            check_consumer_error(&e);
            if e.kind() == ErrorKind::Corruption {
                // What the supervisor does: poison the ring and stop reading.
                rx.remote().poison();
                return;
            }
        }
    }
});
