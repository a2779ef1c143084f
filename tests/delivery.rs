//! Exact delivery through the public API against real child processes.

use ringworker::{Row, Worker};
use ringworker_child::builtins::synthetic::{
    Checksum, Sizes, SyntheticRequest, SyntheticSummary, fill_row, stream_of,
};

#[path = "support/mod.rs"]
mod support;

use support::fixture;

#[test]
fn ten_million_rows_of_random_sizes_arrive_exactly_once_in_order() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let request =
        SyntheticRequest::new(10_000_000, Sizes::Uniform { min: 0, max: 600 }).with_seed(0xD15EA5E);
    let mut checksum = Checksum::default();
    let mut next = 0u64;
    let mut bytes = 0u64;
    let mut sink = |row: Row<'_>| {
        assert_eq!(row.sequence, next, "rows out of order or duplicated");
        assert_eq!(row.payload.len(), request.sizes.size_of(request.seed, next));
        let head = row.payload.len().min(8);
        assert_eq!(row.payload[..head], next.to_le_bytes()[..head]);
        checksum.add(row.payload);
        bytes += row.payload.len() as u64;
        next += 1;
    };
    let summary: SyntheticSummary = worker.stream("synthetic", &request, &mut sink).unwrap();
    assert_eq!(next, request.rows);
    assert_eq!(summary.rows, request.rows);
    assert_eq!(summary.bytes, bytes);
    assert_eq!(summary.checksum, checksum.value());
    let stats = worker.stats();
    assert_eq!(stats.rows, request.rows);
    assert_eq!(stats.bytes, bytes);
    assert_eq!(stats.total_restarts(), 0);
    assert!(
        worker.config().ring_capacity < bytes as usize / 100,
        "must wrap many times"
    );
}

#[test]
fn three_interleaved_streams_keep_their_order_and_content() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let sizes = Sizes::LogNormal {
        median: 120,
        sigma: 1.0,
        min: 8,
        max: 8192,
    };
    let request = SyntheticRequest::new(300_000, sizes)
        .with_streams(3)
        .with_seed(9);
    let mut last_per_stream = [None::<u64>; 3];
    let mut expected = Vec::new();
    let mut sink = |row: Row<'_>| {
        let sequence = u64::from_le_bytes(row.payload[..8].try_into().unwrap());
        assert_eq!(row.stream, stream_of(3, sequence));
        let slot = &mut last_per_stream[usize::from(row.stream)];
        assert!(
            slot.is_none_or(|last| last < sequence),
            "stream {} reordered",
            row.stream
        );
        *slot = Some(sequence);
        expected.resize(row.payload.len(), 0);
        fill_row(request.seed, sequence, &mut expected);
        assert_eq!(row.payload, &expected[..]);
    };
    let summary: SyntheticSummary = worker.stream("synthetic", &request, &mut sink).unwrap();
    assert_eq!(summary.rows, 300_000);
    let per_stream = &worker.stats().per_stream;
    assert_eq!(per_stream.len(), 3);
    for stream in 0..3u16 {
        assert_eq!(per_stream[&stream].rows, 100_000);
    }
}
