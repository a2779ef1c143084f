//! Exact delivery through the public API against real child processes.

use ringworker::{Row, Worker};
use ringworker_testkit::checksum::Checksum;
use ringworker_testkit::rows::{
    Sizes, SyntheticRequest, SyntheticSummary, check_sequence, embedded_sequence, stream_of,
    verify_row,
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
        // The sequence number the child wrote into the row: order and
        // exactly-once from what was sent, not from the supervisor's count.
        if let Err(err) = check_sequence(row.payload, next) {
            panic!("rows out of order or duplicated: {err}");
        }
        assert_eq!(row.payload.len(), request.sizes.size_of(request.seed, next));
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
    let mut sink = |row: Row<'_>| {
        let sequence = embedded_sequence(row.payload).expect("rows of at least 8 bytes");
        assert_eq!(row.stream, stream_of(3, sequence));
        let slot = &mut last_per_stream[usize::from(row.stream)];
        // Each stream gets every third row, none lost, repeated or reordered.
        let expected = slot.map_or(u64::from(row.stream), |last| last + 3);
        assert_eq!(sequence, expected, "stream {} reordered", row.stream);
        *slot = Some(sequence);
        assert_eq!(
            row.payload.len(),
            request.sizes.size_of(request.seed, sequence)
        );
        verify_row(request.seed, sequence, row.payload).unwrap();
    };
    let summary: SyntheticSummary = worker.stream("synthetic", &request, &mut sink).unwrap();
    assert_eq!(summary.rows, 300_000);
    assert_eq!(
        last_per_stream,
        [Some(299_997), Some(299_998), Some(299_999)],
        "the last row of each stream"
    );
    let per_stream = &worker.stats().per_stream;
    assert_eq!(per_stream.len(), 3);
    for stream in 0..3u16 {
        assert_eq!(per_stream[&stream].rows, 100_000);
    }
}
