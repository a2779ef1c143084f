//! Backpressure: a slow sink makes the child wait on a full ring while the
//! supervisor's memory stays flat. Alone in its binary, so no other test's
//! allocations move this process's RSS.

use std::time::{Duration, Instant};

use ringworker::{Row, Worker};
use ringworker_testkit::rows::{RowCheck, SyntheticRequest, SyntheticSummary};

#[path = "support/mod.rs"]
mod support;

use support::{fixture, rss_anon_kib};

const ROWS: u64 = 3000;
const ROW_BYTES: u32 = 8000;

/// Runs the request with a sink that verifies every row and sleeps `delay`
/// per row; returns the largest RSS (KiB) seen while rows were arriving.
fn run(worker: &mut Worker, delay: Duration) -> u64 {
    let request = SyntheticRequest::fixed(ROWS, ROW_BYTES);
    // Verifies each row's embedded sequence number, length and bytes.
    let mut check = RowCheck::for_request(&request);
    let mut peak = rss_anon_kib();
    let mut sink = |row: Row<'_>| {
        let sequence = check
            .check(row.stream, row.payload)
            .unwrap_or_else(|err| panic!("{err}"));
        if sequence.is_multiple_of(50) {
            peak = peak.max(rss_anon_kib());
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    };
    let summary: SyntheticSummary = worker.stream("synthetic", &request, &mut sink).unwrap();
    assert_eq!(check.rows(), ROWS);
    assert_eq!(summary.rows, ROWS);
    check.finish(&summary).unwrap();
    peak.max(rss_anon_kib())
}

#[test]
fn a_slow_sink_blocks_the_child_on_a_full_ring_and_supervisor_memory_stays_flat() {
    // 64 KiB ring: eight rows fit; the request moves 24 MiB through it.
    let mut worker = Worker::spawn(fixture().with_ring(64 << 10, ROW_BYTES as usize)).unwrap();

    // A fast run first: the same rows, so the baseline includes whatever the
    // request path allocates once.
    run(&mut worker, Duration::ZERO);
    let baseline = rss_anon_kib();
    let waits_before = worker.stats().backpressure_waits;

    let started = Instant::now();
    let peak = run(&mut worker, Duration::from_millis(1));
    let elapsed = started.elapsed();
    let waits = worker.stats().backpressure_waits - waits_before;

    assert!(
        elapsed >= Duration::from_millis(ROWS),
        "the sink's delays: {elapsed:?}"
    );
    // The child outran the sink and had to wait for room, many times.
    assert!(waits > 0, "the child never found the ring full");
    // Rows waited in the ring, not in the supervisor: 24 MiB passed through
    // while anonymous memory grew by less than a third of that.
    let growth = peak.saturating_sub(baseline);
    assert!(
        growth < 8 << 10,
        "supervisor RSS grew by {growth} KiB over the fast run's {baseline} KiB"
    );
    assert_eq!(worker.stats().total_restarts(), 0);
    eprintln!("slow sink: {elapsed:?}, {waits} full-ring waits, RSS {baseline} KiB + {growth} KiB");
}
