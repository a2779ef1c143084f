//! Cancellation through the C ABI: the supervisor cancels, the C loop sees
//! `RINGWORKER_CANCELLED` (from `ringworker_check_cancelled`, or from a row
//! write that waited for room), returns, and the request ends as cancelled
//! without the worker being killed; the rows delivered are exactly the
//! first rows the C loop emitted, byte-exact, none lost in between and none
//! invented.

use std::time::Duration;

use ringworker::sink::{Diagnostic, Level, Progress};
use ringworker::{CancelToken, Error, RequestOptions, Row, Sink, SinkError, Worker};
use ringworker_lean_abi::Status;

#[path = "support/mod.rs"]
mod support;

use support::probe::{C_UNTIL_CANCELLED, CancelReport, UntilCancelled, Via, pattern};
use support::{assert_usable, probe_config};

/// Checks every row against the C driver's pattern as it arrives, cancels
/// the request's token at `cancel_at` rows and then blocks for `stall`,
/// and keeps the loop's report.
struct CancellingSink {
    token: CancelToken,
    row_len: usize,
    cancel_at: u64,
    stall: Duration,
    received: u64,
    report: Option<CancelReport>,
}

impl Sink for CancellingSink {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        let i = self.received as u32;
        assert_eq!(row.stream, 0);
        assert_eq!(row.sequence, self.received);
        assert_eq!(row.payload.len(), self.row_len, "row {i}");
        assert!(
            row.payload
                .iter()
                .enumerate()
                .all(|(j, &b)| b == pattern(Via::Ptr, 0, i, j)),
            "row {i} is not the C loop's row {i}"
        );
        self.received += 1;
        if self.received == self.cancel_at {
            self.token.cancel();
            std::thread::sleep(self.stall);
        }
        Ok(())
    }

    fn progress(&mut self, _: &Progress) {}

    fn diagnostic(&mut self, diagnostic: &Diagnostic) {
        assert_eq!(diagnostic.level, Level::Info);
        self.report = Some(serde_json::from_str(&diagnostic.message).expect("a cancel report"));
    }
}

/// Runs `c-until-cancelled` with a sink that cancels at `cancel_at` rows;
/// returns the report and the rows delivered.
fn run(
    worker: &mut Worker,
    request: &UntilCancelled,
    cancel_at: u64,
    stall: Duration,
) -> (CancelReport, u64) {
    let token = CancelToken::new();
    let mut sink = CancellingSink {
        token: token.clone(),
        row_len: request.row_len,
        cancel_at,
        stall,
        received: 0,
        report: None,
    };
    let result = worker.stream_with::<_, serde_json::Value, _>(
        C_UNTIL_CANCELLED,
        request,
        &mut sink,
        RequestOptions::default().cancel(token),
    );
    let rows_delivered = match result {
        // Not killed: the C loop returned and the command ended the request.
        Err(Error::Cancelled {
            rows_delivered,
            killed: false,
        }) => rows_delivered,
        other => panic!("expected a cancellation the worker honoured, got {other:?}"),
    };
    assert_eq!(
        rows_delivered, sink.received,
        "every row delivered was seen"
    );
    let report = sink.report.expect("the loop's report arrives");
    assert_eq!(report.status, Status::Cancelled.code(), "{report:?}");
    // Delivered rows are a prefix of what C emitted: nothing invented, and
    // (the sink checked each row's number) nothing lost in between.
    assert!(
        (cancel_at..=report.emitted).contains(&rows_delivered),
        "{rows_delivered} delivered, {report:?}"
    );
    (report, rows_delivered)
}

#[test]
fn the_c_loop_sees_the_cancel_through_check_cancelled() {
    // A paced loop (64 rows per millisecond at most) that checks every 64
    // rows: it would need the supervisor to lag by most of a second to get
    // a 4 MiB ring's worth ahead, so the check is what sees the cancel.
    let config = probe_config()
        .with_ring(4 << 20, support::MAX_RECORD)
        .with_cancel_grace(Duration::from_secs(30));
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid();
    let request = UntilCancelled {
        row_len: 64,
        check_every: 64,
        pause_us: 1000,
    };
    let (report, _) = run(&mut worker, &request, 1000, Duration::ZERO);
    assert_eq!(report.seen_by, "check", "{report:?}");
    assert_eq!(worker.pid(), pid, "the worker was not killed");
    assert_usable(&mut worker);
}

#[test]
fn a_write_waiting_for_room_in_a_cancelled_request_returns_cancelled() {
    // The loop never checks; the sink cancels and then stalls, so the ring
    // fills and the next write waits for room, where it sees the cancel.
    let mut worker =
        Worker::spawn(probe_config().with_cancel_grace(Duration::from_secs(30))).unwrap();
    let pid = worker.pid();
    let request = UntilCancelled {
        row_len: 100,
        check_every: 0,
        pause_us: 0,
    };
    let (report, delivered) = run(&mut worker, &request, 100, Duration::from_millis(500));
    assert_eq!(report.seen_by, "emit", "{report:?}");
    // The ring (1 MiB) held thousands of rows the supervisor dropped after
    // the cancel: the loop got well past what was delivered.
    assert!(report.emitted > delivered + 1000, "{report:?}, {delivered}");
    assert_eq!(worker.pid(), pid, "the worker was not killed");
    assert_usable(&mut worker);
}
