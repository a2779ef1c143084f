//! Property test of the ring in one thread: random capacities, record sizes,
//! start positions and interleavings of producer and consumer operations,
//! crossing the wrap point many times. Every record must come out exactly
//! once, in commit order, byte for byte, with its header fields intact, and
//! everything explicitly flushed must be visible.

#![cfg(not(loom))]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ringworker_testkit::rows::{fill_row, verify_row};
use shm_proto::{
    Consumer, HeaderWord, Producer, Readiness, RecordHeader, RecordKind, RecordMeta, RingConfig,
    RingError, RingMemory, WaitStrategy, record_size,
};

/// Fills the payload of the record with sequence number `seq`: the test
/// kit's row format (the sequence number, then filler that depends on it),
/// so corruption, reordering or duplication shows up as a mismatch. The
/// content of a shorter row is a prefix of a longer one's.
fn fill(seq: u64, buf: &mut [u8]) {
    fill_row(0, seq, buf);
}

#[derive(Debug, Clone)]
enum Op {
    /// `push` a record; `len` is reduced modulo `max_payload + 1`.
    Push { len: usize, meta: MetaSeed },
    /// `reserve(len)`, write `used` bytes, `commit_len(used)` (used <= len).
    ReserveCommit {
        len: usize,
        used: usize,
        meta: MetaSeed,
    },
    /// `reserve(len)`, scribble, drop the slot uncommitted.
    Abandon { len: usize },
    /// Producer `flush`.
    Flush,
    /// Up to `n` zero-copy `try_recv`s.
    Recv { n: usize },
    /// One `recv_copy`.
    RecvCopy,
    /// `drain(max)`.
    Drain { max: usize },
    /// `wait(0)`.
    Wait,
    /// Consumer `flush` (publishes the read index).
    ConsumerFlush,
}

#[derive(Debug, Clone, Copy)]
struct MetaSeed {
    kind: u8,
    stream: u16,
    request: u64,
    flags: u8,
}

impl MetaSeed {
    fn meta(self) -> RecordMeta {
        let kind = match self.kind % 4 {
            0 => RecordKind::Data,
            1 => RecordKind::Progress,
            2 => RecordKind::Diagnostic,
            _ => RecordKind::End,
        };
        RecordMeta {
            kind,
            stream: self.stream,
            request: self.request,
            flags: self.flags,
        }
    }
}

fn meta_seed() -> impl Strategy<Value = MetaSeed> {
    (any::<u8>(), any::<u16>(), any::<u64>(), any::<u8>()).prop_map(
        |(kind, stream, request, flags)| MetaSeed {
            kind,
            stream,
            request,
            flags,
        },
    )
}

/// A length that is 0, the maximum, or anything in between.
fn len_seed() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        1 => Just(usize::MAX),
        6 => any::<usize>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (len_seed(), meta_seed()).prop_map(|(len, meta)| Op::Push { len, meta }),
        4 => (len_seed(), any::<usize>(), meta_seed())
            .prop_map(|(len, used, meta)| Op::ReserveCommit { len, used, meta }),
        1 => len_seed().prop_map(|len| Op::Abandon { len }),
        3 => Just(Op::Flush),
        6 => (1usize..8).prop_map(|n| Op::Recv { n }),
        2 => Just(Op::RecvCopy),
        2 => (1usize..64).prop_map(|max| Op::Drain { max }),
        1 => Just(Op::Wait),
        1 => Just(Op::ConsumerFlush),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    capacity: usize,
    max_payload: usize,
    /// Where both shared indices start (a multiple of 8, possibly huge).
    start: u64,
    producer_publish_every: Option<usize>,
    consumer_publish_every: Option<usize>,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (12u32..=16)
        .prop_flat_map(|shift| {
            let capacity = 1usize << shift;
            let largest = RingConfig::largest_payload_for(capacity);
            (
                Just(capacity),
                prop_oneof![Just(largest), 1..=largest],
                prop_oneof![Just(0u64), any::<u64>().prop_map(|s| (s >> 8) & !7)],
                proptest::option::of(8usize..4096),
                proptest::option::of(8usize..4096),
                proptest::collection::vec(op(), 500..2500),
            )
        })
        .prop_map(|(capacity, max_payload, start, ppe, cpe, ops)| Case {
            capacity,
            max_payload,
            start,
            producer_publish_every: ppe,
            consumer_publish_every: cpe,
            ops,
        })
}

struct Expected {
    seq: u64,
    len: usize,
    meta: RecordMeta,
}

struct Harness {
    tx: Producer,
    rx: Consumer,
    max_payload: usize,
    capacity: usize,
    next_seq: u64,
    /// Committed, not yet received, in commit order.
    queue: VecDeque<Expected>,
    /// How many of the queue's front records were explicitly flushed (must be visible).
    flushed: usize,
    delivered: u64,
    wrapped_bytes: u64,
    copy_buf: Vec<u8>,
}

const NO_SPIN: WaitStrategy = WaitStrategy::new(Duration::ZERO, Duration::from_millis(1));

impl Harness {
    fn new(case: &Case) -> Self {
        let memory = RingMemory::create(
            &RingConfig::with_capacity(case.capacity)
                .with_max_payload(case.max_payload)
                .with_generation(7),
        )
        .unwrap();
        memory.debug_store(HeaderWord::WriteIndex, case.start);
        memory.debug_store(HeaderWord::ReadIndex, case.start);
        let memory = Arc::new(memory);
        let mut tx = Producer::new(memory.clone()).unwrap();
        let mut rx = Consumer::new(memory).unwrap();
        tx.set_wait_strategy(NO_SPIN);
        rx.set_wait_strategy(NO_SPIN);
        if let Some(n) = case.producer_publish_every {
            tx.set_publish_every(n);
        }
        if let Some(n) = case.consumer_publish_every {
            rx.set_publish_every(n);
        }
        Harness {
            tx,
            rx,
            max_payload: case.max_payload,
            capacity: case.capacity,
            next_seq: 0,
            queue: VecDeque::new(),
            flushed: 0,
            delivered: 0,
            wrapped_bytes: 0,
            copy_buf: Vec::new(),
        }
    }

    fn clamp_len(&self, len: usize) -> usize {
        len % (self.max_payload + 1)
    }

    fn in_flight_bytes(&self) -> usize {
        self.queue.iter().map(|e| record_size(e.len)).sum()
    }

    /// `reserve` with no waiting; on a full ring, checks that it is full
    /// (after the consumer publishes its read index) and returns `None`.
    fn reserve(&mut self, meta: RecordMeta, len: usize) -> Option<shm_proto::Slot<'_>> {
        for attempt in 0..2 {
            match self.tx.reserve_timeout(meta, len, Duration::ZERO) {
                Ok(_) => break,
                Err(RingError::TimedOut) if attempt == 0 => self.rx.flush(),
                Err(RingError::TimedOut) => {
                    // Besides the records, the ring holds at most one
                    // padding record (it spans less than one wrap), and the
                    // new record may need a skip smaller than itself.
                    let size = record_size(len);
                    let padding = record_size(self.max_payload);
                    assert!(
                        self.in_flight_bytes() + padding + 2 * size > self.capacity,
                        "ring reported full with {} of {} bytes in flight, record of {size}",
                        self.in_flight_bytes(),
                        self.capacity
                    );
                    return None;
                }
                Err(e) => panic!("reserve failed: {e}"),
            }
        }
        // Space is known to be there now; this does not wait.
        Some(self.tx.reserve_timeout(meta, len, Duration::ZERO).unwrap())
    }

    fn committed(&mut self, seq: u64, len: usize, meta: RecordMeta) {
        self.queue.push_back(Expected { seq, len, meta });
    }

    fn check(expected: &Expected, header: &RecordHeader, kind: RecordKind, payload: &[u8]) {
        assert_eq!(kind, expected.meta.kind, "kind of record {}", expected.seq);
        assert_eq!(header.kind, expected.meta.kind as u8);
        assert_eq!(
            header.request, expected.meta.request,
            "request of {}",
            expected.seq
        );
        assert_eq!(
            header.stream, expected.meta.stream,
            "stream of {}",
            expected.seq
        );
        assert_eq!(
            header.flags, expected.meta.flags,
            "flags of {}",
            expected.seq
        );
        assert_eq!(header.len as usize, expected.len, "len of {}", expected.seq);
        assert_eq!(payload.len(), expected.len);
        if let Err(err) = verify_row(0, expected.seq, payload) {
            panic!("record {}: {err}", expected.seq);
        }
    }

    fn pop_expected(&mut self) -> Expected {
        let e = self
            .queue
            .pop_front()
            .expect("consumer produced a record that was never committed");
        self.flushed = self.flushed.saturating_sub(1);
        self.delivered += 1;
        self.wrapped_bytes += record_size(e.len) as u64;
        e
    }

    /// One zero-copy receive; false if nothing was visible.
    fn recv_one(&mut self) -> bool {
        let got = self
            .rx
            .try_recv()
            .unwrap()
            .map(|rec| (*rec.header(), rec.kind(), rec.payload().to_vec()));
        match got {
            Some((header, kind, payload)) => {
                let e = self.pop_expected();
                Self::check(&e, &header, kind, &payload);
                true
            }
            None => {
                assert_eq!(self.flushed, 0, "flushed records are not visible");
                false
            }
        }
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Push { len, meta } => {
                let len = self.clamp_len(len);
                let meta = meta.meta();
                let seq = self.next_seq;
                let mut payload = vec![0; len];
                fill(seq, &mut payload);
                // Reserved and abandoned: the space is there, so the push
                // below cannot block.
                if self.reserve(meta, len).is_some() {
                    self.tx.push(meta, &payload).unwrap();
                    self.next_seq += 1;
                    self.committed(seq, len, meta);
                }
            }
            Op::ReserveCommit { len, used, meta } => {
                let len = self.clamp_len(len);
                let used = used % (len + 1);
                let meta = meta.meta();
                let seq = self.next_seq;
                if let Some(mut slot) = self.reserve(meta, len) {
                    let buf = slot.payload_mut();
                    assert_eq!(buf.len(), len);
                    buf.fill(0xEE);
                    fill(seq, &mut buf[..used]);
                    slot.commit_len(used);
                    self.next_seq += 1;
                    self.committed(seq, used, meta);
                }
            }
            Op::Abandon { len } => {
                let len = self.clamp_len(len);
                if let Some(mut slot) = self.reserve(RecordMeta::data(u64::MAX, 0), len) {
                    slot.payload_mut().fill(0xAB);
                }
            }
            Op::Flush => {
                self.tx.flush();
                self.flushed = self.queue.len();
            }
            Op::Recv { n } => {
                for _ in 0..n {
                    if !self.recv_one() {
                        break;
                    }
                }
            }
            Op::RecvCopy => {
                let mut buf = std::mem::take(&mut self.copy_buf);
                buf.extend_from_slice(b"stale");
                match self.rx.recv_copy(&mut buf).unwrap() {
                    Some(header) => {
                        let e = self.pop_expected();
                        let kind = RecordKind::from_code(header.kind).unwrap();
                        Self::check(&e, &header, kind, &buf);
                    }
                    None => assert_eq!(self.flushed, 0, "flushed records are not visible"),
                }
                self.copy_buf = buf;
            }
            Op::Drain { max } => {
                let mut got = Vec::new();
                let n = self
                    .rx
                    .drain(max, |rec| {
                        got.push((*rec.header(), rec.kind(), rec.payload().to_vec()));
                    })
                    .unwrap();
                assert_eq!(n, got.len());
                assert!(n <= max);
                let flushed_before = self.flushed;
                for (header, kind, payload) in &got {
                    let e = self.pop_expected();
                    Self::check(&e, header, *kind, payload);
                }
                if n < max {
                    assert!(n >= flushed_before, "drain stopped before flushed records");
                }
            }
            Op::Wait => {
                let readiness = self.rx.wait(Duration::ZERO).unwrap();
                // (Published padding alone also reads as Ready.)
                if self.flushed > 0 {
                    assert_eq!(readiness, Readiness::Ready);
                } else {
                    assert_ne!(readiness, Readiness::Closed);
                }
            }
            Op::ConsumerFlush => self.rx.flush(),
        }
    }

    /// Flushes and receives everything left.
    fn finish(&mut self) {
        self.tx.flush();
        self.flushed = self.queue.len();
        while self.recv_one() {}
        assert!(
            self.queue.is_empty(),
            "{} records never arrived",
            self.queue.len()
        );
        assert_eq!(self.delivered, self.next_seq);
        assert_eq!(self.rx.stats().records, self.delivered);
        assert!(self.rx.try_recv().unwrap().is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_deliver_exactly_in_order(case in case()) {
        let mut h = Harness::new(&case);
        for op in &case.ops {
            h.run(op);
        }
        h.finish();
    }
}

/// Deterministic companion: a long run in the smallest ring with maximum
/// records and the producer always one record ahead, so the wrap point (with
/// padding records and header-less skips) is crossed hundreds of times.
#[test]
fn wrap_point_is_crossed_many_times() {
    for max_payload in [RingConfig::largest_payload_for(4096), 100, 1] {
        let case = Case {
            capacity: 4096,
            max_payload,
            start: 0,
            producer_publish_every: None,
            consumer_publish_every: None,
            ops: Vec::new(),
        };
        let mut h = Harness::new(&case);
        let seed = MetaSeed {
            kind: 0,
            stream: 9,
            request: 42,
            flags: 3,
        };
        for i in 0..20_000usize {
            // Sizes cycle through every length, so record ends land on every
            // 8-byte position before the end of the buffer.
            let len = (i * 7) % (max_payload + 1);
            h.run(&Op::Push { len, meta: seed });
            h.run(&Op::Flush);
            if i % 3 != 0 {
                h.run(&Op::Recv { n: 1 });
            }
        }
        h.finish();
        assert!(
            h.wrapped_bytes > 50 * 4096,
            "only {} bytes moved",
            h.wrapped_bytes
        );
    }
}
