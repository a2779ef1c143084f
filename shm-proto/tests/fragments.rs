//! Property test of fragment framing: rows up to several times the ring's
//! capacity, written with `Producer::push_fragmented` between ordinary rows,
//! on random capacities and maximum records, so fragments cross the wrap
//! point at every offset. A consumer thread reassembles them by the rules in
//! `shm_proto::record`; every row must come out once, in order, byte exact.

#![cfg(not(loom))]

use std::time::Duration;

use proptest::prelude::*;
use shm_proto::record::fragment;
use shm_proto::{RecordKind, RecordMeta, RingConfig};

fn row(seq: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(131) ^ i.wrapping_mul(7) ^ (i >> 9)) as u8)
        .collect()
}

/// Reassembles what the consumer sees until `count` rows have arrived.
fn consume(mut rx: shm_proto::Consumer, count: usize) -> Vec<(u16, Vec<u8>)> {
    let mut rows = Vec::new();
    let mut partial: Option<(u16, usize, Vec<u8>)> = None;
    while rows.len() < count {
        let Some(record) = rx.recv_timeout(Duration::from_secs(10)).unwrap() else {
            panic!("no record within 10 s after {} rows", rows.len());
        };
        match record.kind() {
            RecordKind::Data => {
                assert!(partial.is_none(), "data row inside a fragmented row");
                rows.push((record.stream(), record.payload().to_vec()));
            }
            RecordKind::Fragment => {
                let flags = record.header().flags;
                if flags & fragment::FIRST != 0 {
                    assert!(partial.is_none(), "first fragment inside a row");
                    let total = u64::from_le_bytes(record.copy_prefix().unwrap()) as usize;
                    let mut buf = Vec::with_capacity(total);
                    record.append_payload_into(fragment::TOTAL_PREFIX_BYTES, &mut buf);
                    partial = Some((record.stream(), total, buf));
                } else {
                    let (stream, _, buf) = partial.as_mut().expect("continuation without first");
                    assert_eq!(*stream, record.stream());
                    record.append_payload_into(0, buf);
                }
                let (_, total, buf) = partial.as_ref().unwrap();
                assert!(buf.len() <= *total, "fragments past the announced total");
                if flags & fragment::LAST != 0 {
                    let (stream, total, buf) = partial.take().unwrap();
                    assert_eq!(buf.len(), total, "last fragment short of the total");
                    rows.push((stream, buf));
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fragmented_rows_survive_every_wrap_offset(
        capacity_log in 12u32..=16,
        max_seed in 0usize..10_000,
        lens in prop::collection::vec((0usize..4, 0usize..300_000), 1..12),
    ) {
        let capacity = 1usize << capacity_log;
        let largest = RingConfig::largest_payload_for(capacity);
        let max = fragment::MIN_FRAGMENT_PAYLOAD + max_seed % (largest - fragment::MIN_FRAGMENT_PAYLOAD + 1);
        let config = RingConfig::with_capacity(capacity).with_max_payload(max);
        let (mut tx, rx) = shm_proto::ring(&config).unwrap();
        // Small rows (often one record, sometimes a few fragments) and large
        // ones (many times the ring) mixed.
        let rows: Vec<(u16, Vec<u8>)> = lens
            .iter()
            .enumerate()
            .map(|(i, &(kind, len))| {
                let len = if kind == 0 { len % (max + 40) } else { len };
                ((i % 3) as u16, row(i, len))
            })
            .collect();
        let count = rows.len();
        let consumer = std::thread::spawn(move || consume(rx, count));
        for (stream, payload) in &rows {
            let meta = RecordMeta::data(7, *stream);
            if payload.len() <= tx.max_payload() {
                tx.push(meta, payload).unwrap();
            } else {
                tx.push_fragmented(meta, payload).unwrap();
            }
        }
        tx.flush();
        let got = consumer.join().unwrap();
        prop_assert_eq!(got.len(), rows.len());
        for (i, (got, want)) in got.iter().zip(&rows).enumerate() {
            prop_assert_eq!(got.0, want.0, "row {} stream", i);
            prop_assert!(got.1 == want.1, "row {} ({} bytes) differs", i, want.1.len());
        }
    }
}
