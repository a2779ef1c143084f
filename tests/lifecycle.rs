//! The life of a worker around its requests: startup failures (missing
//! program, slow or foreign handshake), cancellation, request deadlines,
//! failing sinks, and children dying with their supervisor.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringworker::sink::RowDecodeError;
use ringworker::{
    CancelToken, Command, Error, PROTOCOL_VERSION, RequestOptions, RestartReason, Row, Sink,
    SinkError, TypedSink, Worker, WorkerConfig,
};
use ringworker_child::builtins::echo::EchoRequest;
use ringworker_testkit::harness::{KillOnDrop, is_reexec, reexec_test};
use ringworker_testkit::rows::{RowCheck, SyntheticRequest, SyntheticSummary, embedded_sequence};
use serde::Deserialize;

#[path = "support/mod.rs"]
mod support;

#[path = "support/contract.rs"]
mod contract;

use contract::{Square, Squares, SquaresSummary, Upto};

use support::{alive, assert_usable, fixture, wait_until};

/// A synthetic request of 100-byte rows (seed 0) paced at `rate` rows/s.
fn paced(rows: u64, rate: f64) -> SyntheticRequest {
    SyntheticRequest::fixed(rows, 100).with_rate(rate)
}

/// A sink for [`paced`] rows that verifies each (exactly once, in order,
/// from the sequence number the child wrote into it; and every byte) and
/// counts them where another thread can see it.
fn counting_sink(count: &Arc<AtomicU64>) -> impl FnMut(Row<'_>) + '_ {
    let mut check = RowCheck::fixed(0, 100);
    move |row: Row<'_>| {
        let sequence = check
            .check(row.stream, row.payload)
            .unwrap_or_else(|err| panic!("{err}"));
        count.store(sequence + 1, Ordering::Release);
    }
}

#[test]
fn cancellation_mid_stream_reports_delivered_rows_and_keeps_the_child() {
    // A grace far beyond the child's reaction time (it checks the flag every
    // 1024 rows, ~10 ms here): the child must end the request itself.
    let mut worker = Worker::spawn(fixture().with_cancel_grace(Duration::from_secs(10))).unwrap();
    let pid = worker.pid();
    let token = CancelToken::new();
    let count = Arc::new(AtomicU64::new(0));
    let canceller = {
        let (token, count) = (token.clone(), count.clone());
        std::thread::spawn(move || {
            let reached = wait_until(Duration::from_secs(20), || {
                count.load(Ordering::Acquire) >= 5000
            });
            token.cancel();
            reached
        })
    };
    let started = Instant::now();
    let err = worker
        .stream_with::<_, SyntheticSummary, _>(
            "synthetic",
            &paced(10_000_000, 100_000.0),
            &mut counting_sink(&count),
            RequestOptions::default().cancel(token.clone()),
        )
        .expect_err("cancelled");
    let elapsed = started.elapsed();
    assert!(canceller.join().unwrap(), "rows never arrived: {err}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    let Error::Cancelled {
        rows_delivered,
        killed: false,
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(rows_delivered, count.load(Ordering::Acquire));
    assert!(
        (5000..10_000_000).contains(&rows_delivered),
        "{rows_delivered}"
    );
    assert!(token.is_cancelled());
    assert_eq!(worker.stats().total_restarts(), 0);
    assert_eq!(worker.stats().rows, rows_delivered);
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), pid, "a child that honours the cancel is kept");
}

#[test]
fn a_request_past_its_deadline_times_out_and_the_child_is_replaced() {
    let timeout = Duration::from_secs(1);
    let mut worker = Worker::spawn(fixture().with_request_timeout(timeout)).unwrap();
    let first_pid = worker.pid().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let err = worker
        .stream::<_, SyntheticSummary, _>(
            "synthetic",
            &paced(1_000_000, 2000.0),
            &mut counting_sink(&count),
        )
        .expect_err("the request takes 500 s");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(5),
        "took {elapsed:?}"
    );
    let Error::Timeout {
        after,
        rows_delivered,
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(after, timeout);
    assert!(
        rows_delivered > 0,
        "a paced request delivers rows before its deadline"
    );
    assert_eq!(rows_delivered, count.load(Ordering::Acquire));
    assert_eq!(worker.stats().restarts[&RestartReason::Timeout], 1);
    assert!(!alive(first_pid), "the timed-out child was killed");
    assert_usable(&mut worker);
    assert_ne!(worker.pid(), Some(first_pid));
}

/// A sink for [`paced`]-style rows that verifies and counts them like
/// [`counting_sink`] and then takes a millisecond per row.
fn slow_sink(count: &Arc<AtomicU64>) -> impl FnMut(Row<'_>) + '_ {
    let mut verify = counting_sink(count);
    move |row: Row<'_>| {
        verify(row);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_deadline_holds_while_a_slow_sink_keeps_rows_flowing() {
    // The ring holds tens of thousands of rows, so it never runs dry: the
    // deadline must be checked while rows keep coming, not only when they stop.
    let timeout = Duration::from_millis(500);
    let mut worker = Worker::spawn(fixture()).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let err = worker
        .stream_with::<_, SyntheticSummary, _>(
            "synthetic",
            &SyntheticRequest::fixed(1_000_000, 100),
            &mut slow_sink(&count),
            RequestOptions::default().timeout(timeout),
        )
        .expect_err("a million rows at 1 ms each take longer than 500 ms");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "a 500 ms deadline took {elapsed:?}"
    );
    let Error::Timeout { rows_delivered, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(rows_delivered, count.load(Ordering::Acquire));
    assert_eq!(worker.stats().restarts[&RestartReason::Timeout], 1);
    assert_usable(&mut worker);
}

#[test]
fn cancelling_while_a_slow_sink_lags_ends_promptly_and_keeps_the_child() {
    // The child blocks on a full ring; the cancel wakes it and it ends the
    // request at once. Rows still queued in the ring after the cancel are
    // not worth a millisecond each: the request must end within the grace
    // without the child being blamed (and killed) for the sink's lag.
    let mut worker = Worker::spawn(fixture().with_cancel_grace(Duration::from_secs(2))).unwrap();
    let pid = worker.pid();
    let token = CancelToken::new();
    let count = Arc::new(AtomicU64::new(0));
    let canceller = {
        let (token, count) = (token.clone(), count.clone());
        std::thread::spawn(move || {
            let reached = wait_until(Duration::from_secs(20), || {
                count.load(Ordering::Acquire) >= 200
            });
            token.cancel();
            reached
        })
    };
    let started = Instant::now();
    let err = worker
        .stream_with::<_, SyntheticSummary, _>(
            "synthetic",
            &SyntheticRequest::fixed(1_000_000, 100),
            &mut slow_sink(&count),
            RequestOptions::default().cancel(token),
        )
        .expect_err("cancelled");
    let elapsed = started.elapsed();
    assert!(canceller.join().unwrap(), "rows never arrived: {err}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}: {err}");
    let Error::Cancelled {
        rows_delivered,
        killed: false,
    } = err
    else {
        panic!("{err:?}");
    };
    assert!(rows_delivered >= 200, "{rows_delivered}");
    assert_eq!(rows_delivered, count.load(Ordering::Acquire));
    // The rows queued behind the cancel were skipped, not delivered.
    assert!(worker.stats().stale_records > 0, "{:?}", worker.stats());
    assert_eq!(worker.stats().rows, rows_delivered);
    assert_eq!(worker.stats().total_restarts(), 0);
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), pid);
}

#[test]
fn a_slow_handshake_is_a_startup_timeout() {
    let config = fixture()
        .with_env("FIXTURE_STARTUP_DELAY_MS", "30000")
        .with_startup_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = Worker::spawn(config).expect_err("no handshake within 300 ms");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(
        matches!(err, Error::StartupTimeout { waited, .. } if waited == Duration::from_millis(300)),
        "{err:?}"
    );
}

#[test]
fn another_protocol_version_is_refused() {
    let err =
        Worker::spawn(fixture().with_env("FIXTURE_PROTOCOL", "999")).expect_err("version 999");
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                expected: PROTOCOL_VERSION,
                found: 999
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_program_that_is_no_worker_fails_the_handshake() {
    let err = Worker::spawn(
        WorkerConfig::new("/bin/sh").with_args(["-c", "echo not a worker >&2; exit 7"]),
    )
    .expect_err("sh sends no handshake");
    let Error::Handshake { reason, output } = &err else {
        panic!("{err:?}");
    };
    assert!(reason.contains("code 7"), "{reason}");
    assert!(output.stderr.contains("not a worker"), "{output:?}");
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let err = Worker::spawn(WorkerConfig::new("/nonexistent/ringworker-worker"))
        .expect_err("no such file");
    let Error::Spawn { program, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(program.to_str(), Some("/nonexistent/ringworker-worker"));
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
}

#[test]
fn an_unknown_command_is_refused_without_disturbing_the_child() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let pid = worker.pid();
    let err = worker
        .call::<_, serde_json::Value>("no-such-command", &())
        .expect_err("unknown command");
    let Error::UnknownCommand { command, available } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(command, "no-such-command");
    for offered in ["synthetic", "echo", "fault"] {
        assert!(available.iter().any(|c| c == offered), "{available:?}");
    }
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), pid);
    assert_eq!(worker.stats().total_restarts(), 0);
}

#[test]
fn a_panicking_sink_ends_the_request_and_the_worker_stays_usable() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let mut verify = counting_sink(&count);
    let mut sink = |row: Row<'_>| {
        let sequence = embedded_sequence(row.payload).expect("100-byte rows");
        if sequence == 500 {
            panic!("sink gives up at row {sequence}");
        }
        verify(row);
    };
    let err = worker
        .stream::<_, SyntheticSummary, _>(
            "synthetic",
            &SyntheticRequest::fixed(200_000, 100),
            &mut sink,
        )
        .expect_err("the sink panics");
    let Error::SinkPanicked {
        message,
        rows_delivered,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(message, "sink gives up at row 500");
    assert_eq!(*rows_delivered, 500);
    assert_eq!(count.load(Ordering::Acquire), 500);
    assert_eq!(worker.stats().rows, 500);
    assert_usable(&mut worker);
    // The rest of the abandoned request (at least its end marker) was
    // discarded, never delivered to the next request's sink.
    assert!(worker.stats().stale_records > 0, "{:?}", worker.stats());
    assert_eq!(worker.stats().rows, 500 + 20_000);
}

#[test]
fn a_failing_sink_ends_the_request_with_its_error() {
    let mut worker = Worker::spawn(fixture()).unwrap();

    // Binary rows do not decode as JSON: the typed sink fails on the first.
    let mut typed =
        TypedSink::new(|_stream, _row: serde_json::Value| panic!("decoded a binary row"));
    let err = worker
        .stream::<_, SyntheticSummary, _>(
            "synthetic",
            &SyntheticRequest::fixed(100_000, 100),
            &mut typed,
        )
        .expect_err("binary rows are no JSON");
    let Error::Sink {
        source,
        rows_delivered,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*rows_delivered, 0);
    let decode = source
        .inner()
        .downcast_ref::<RowDecodeError>()
        .expect("a decode error");
    assert_eq!((decode.sequence, decode.stream), (0, 0));

    // A sink's own error after some rows.
    struct FailAt(u64);
    impl Sink for FailAt {
        fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
            if embedded_sequence(row.payload) == Some(self.0) {
                return Err(SinkError::new("disk full"));
            }
            Ok(())
        }
    }
    let err = worker
        .stream::<_, SyntheticSummary, _>(
            "synthetic",
            &SyntheticRequest::fixed(100_000, 100),
            &mut FailAt(300),
        )
        .expect_err("the sink fails");
    let Error::Sink {
        source,
        rows_delivered,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*rows_delivered, 300);
    assert_eq!(source.to_string(), "disk full");

    // The same worker decodes JSON rows into the typed sink.
    #[derive(Deserialize)]
    struct Value {
        n: u32,
    }
    let mut decoded = 0u64;
    let mut typed = TypedSink::new(|stream, row: Value| {
        assert_eq!((stream, row.n), (0, 7));
        decoded += 1;
    });
    let request = EchoRequest::new(serde_json::json!({ "n": 7 })).with_rows(1000);
    let echoed: serde_json::Value = worker.stream("echo", &request, &mut typed).unwrap();
    assert_eq!(echoed, request.value);
    assert_eq!(decoded, 1000);
    assert_usable(&mut worker);
}

/// Set in the environment of the re-executed test binary that plays the
/// supervisor killed by [`killing_the_supervisor_takes_its_children_down`].
const SUB_SUPERVISOR: &str = "RINGWORKER_TESTS_SUB_SUPERVISOR";
const SIGKILL_TEST: &str = "killing_the_supervisor_takes_its_children_down";

#[test]
fn killing_the_supervisor_takes_its_children_down() {
    if is_reexec(SUB_SUPERVISOR) {
        be_the_supervisor();
        return;
    }
    let sub = reexec_test(SIGKILL_TEST, SUB_SUPERVISOR)
        .stdout(Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    let mut sub = KillOnDrop(sub);
    let sub = &mut sub.0;
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let pids: Option<Vec<u32>> = lines.by_ref().map_while(Result::ok).find_map(|line| {
        // libtest may have printed "test <name> ... " on the same line.
        let (_, pids) = line.split_once("worker-pids ")?;
        Some(
            pids.split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect(),
        )
    });
    let Some(pids) = pids else {
        let _ = sub.kill();
        panic!(
            "the sub-supervisor ended without starting its workers: {:?}",
            sub.wait()
        );
    };
    assert_eq!(pids.len(), 2);
    for &pid in &pids {
        assert!(alive(pid), "worker {pid} died before its supervisor");
    }

    let killed = Instant::now();
    sub.kill().expect("SIGKILL the sub-supervisor");
    let status = sub.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let all_gone = wait_until(Duration::from_secs(1), || {
        pids.iter().all(|&pid| !alive(pid))
    });
    let waited = killed.elapsed();
    assert!(
        all_gone,
        "workers still alive {waited:?} after their supervisor was killed: {:?}",
        pids.iter().filter(|&&pid| alive(pid)).collect::<Vec<_>>()
    );
}

/// The sub-supervisor: one idle worker, and one spawned from a thread that
/// has exited since (the death signal must follow the process, not that
/// thread) and is in the middle of a slow request when the kill comes.
fn be_the_supervisor() {
    let idle = Worker::spawn(fixture()).unwrap();
    let mut busy = std::thread::spawn(|| Worker::spawn(fixture()).unwrap())
        .join()
        .unwrap();
    let busy_pid = busy.pid().unwrap();
    assert_usable(&mut busy);
    assert_eq!(
        busy.pid(),
        Some(busy_pid),
        "the worker died with the thread that spawned it"
    );
    println!("worker-pids {} {busy_pid}", idle.pid().unwrap());
    // About a minute of rows: ends on its own if nobody kills this process.
    let _ = busy.stream::<_, SyntheticSummary, _>(
        "synthetic",
        &paced(60_000, 1000.0),
        &mut |_: Row<'_>| {},
    );
}

/// Runs `squares` of `rows` rows with a sink that cancels the request's
/// token once it has received `cancel_at` rows. `squares` never looks at the
/// cancel flag, and with the default 4 MiB ring its small rows (at most 48
/// bytes with their header here) never fill the ring (where a blocked write
/// would notice the flag), so the child always ends the request `Ok`, having
/// committed every row. Each row carries its number `n`, written by the
/// child: the sink checks that they arrive exactly once, in order. Returns
/// the result and the rows the sink received.
fn squares_cancelled_by_sink(
    worker: &mut Worker,
    rows: u64,
    cancel_at: u64,
) -> (Result<SquaresSummary, Error>, u64) {
    let token = CancelToken::new();
    let mut received = 0u64;
    let mut sink = |row: Row<'_>| {
        let square: Square = serde_json::from_slice(row.payload).expect("a square row");
        assert_eq!(
            square,
            Square {
                n: received,
                square: received * received
            },
            "rows out of order"
        );
        received += 1;
        if received == cancel_at {
            token.cancel();
        }
    };
    let result = worker.stream_with(
        Squares::NAME,
        &Upto { n: rows },
        &mut sink,
        RequestOptions::default().cancel(token.clone()),
    );
    (result, received)
}

#[test]
fn a_cancelled_request_whose_child_finishes_anyway_is_not_ok_when_rows_were_dropped() {
    // The grace is far beyond the request's length: the child is not killed,
    // it ends the request with an Ok end marker after its last row.
    let mut worker = Worker::spawn(fixture().with_cancel_grace(Duration::from_secs(30))).unwrap();
    let pid = worker.pid();
    let rows = 50_000;
    let (result, received) = squares_cancelled_by_sink(&mut worker, rows, 10);
    assert!(
        received < rows,
        "the cancel should have cut delivery short ({received} rows)"
    );
    // The child committed all 50 000 rows before its Ok end marker; Ok here
    // would tell the caller the delivery was complete.
    match result {
        Err(Error::Cancelled {
            rows_delivered,
            killed: false,
        }) => assert_eq!(rows_delivered, received),
        other => panic!("expected Cancelled after {received} of {rows} rows, got {other:?}"),
    }
    assert!(worker.stats().stale_records >= rows - received);
    assert_eq!(worker.stats().rows, received);
    // The child ended the request itself: no kill, no restart.
    assert_eq!(worker.pid(), pid);
    assert_eq!(worker.stats().total_restarts(), 0, "{:?}", worker.stats());
    assert_usable(&mut worker);
}

#[test]
fn a_cancel_that_drops_no_row_leaves_a_complete_request_ok() {
    let mut worker = Worker::spawn(fixture().with_cancel_grace(Duration::from_secs(30))).unwrap();
    // The token fires on the last row: nothing is left to drop, so the Ok
    // end marker stands and every row was delivered.
    let (result, received) = squares_cancelled_by_sink(&mut worker, 5, 5);
    assert_eq!(
        result.unwrap(),
        SquaresSummary {
            rows: 5,
            sum: 1 + 4 + 9 + 16
        }
    );
    assert_eq!(received, 5);
    assert_eq!(worker.stats().rows, 5);
    assert_usable(&mut worker);
}
