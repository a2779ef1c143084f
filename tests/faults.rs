//! Every fault of the `fault` command ends its request with its own error
//! variant within 5 s, after delivering exactly the rows written before the
//! fault, and the next request on the same `Worker` succeeds (on a fresh
//! child where the fault made one necessary). Plus the faults that must not
//! fail at all: stdout garbage, output floods, a large allocation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringworker::{
    CancelToken, Error, ErrorKind, FailureCode, RequestOptions, RestartReason, RuntimeCode, Worker,
    WorkerConfig,
};
use ringworker_testkit::faults::{Fault, FaultRequest, FaultSummary};
use shm_proto::RingError;

#[path = "support/mod.rs"]
mod support;

use support::{FAULT_ROWS, FaultRows, assert_usable, cancel_after, fixture};

/// The bound the issue fixes for every fault.
const FAULT_DEADLINE: Duration = Duration::from_secs(5);

/// Runs `fault` after [`FAULT_ROWS`] rows and checks what every fault must
/// show: it fails within [`FAULT_DEADLINE`], the rows before it arrived
/// exactly once and are the ones reported, the restart (if any) is recorded
/// with `restart`, and the same worker then serves a verified request, on a
/// new child exactly when one was needed. Returns the error for the caller
/// to check its variant.
fn fault_case(
    config: WorkerConfig,
    fault: Fault,
    options: RequestOptions,
    restart: Option<RestartReason>,
) -> Error {
    let mut worker = Worker::spawn(config).expect("spawn the fixture");
    let first_pid = worker.pid().expect("a running child");
    let mut rows = FaultRows::default();
    let started = Instant::now();
    let result = worker.stream_with::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(fault, FAULT_ROWS),
        &mut rows,
        options,
    );
    let elapsed = started.elapsed();
    let err = match result {
        Ok(summary) => panic!("{fault:?} succeeded: {summary:?}"),
        Err(err) => err,
    };
    assert!(
        elapsed < FAULT_DEADLINE,
        "{fault:?} took {elapsed:?} to fail: {err}"
    );
    assert_ne!(
        err.kind(),
        ErrorKind::Sink,
        "{fault:?}: rows were not delivered as written: {err}"
    );
    assert_eq!(
        rows.count(),
        FAULT_ROWS,
        "{fault:?}: rows delivered before the failure: {err}"
    );
    assert_eq!(
        err.rows_delivered(),
        Some(FAULT_ROWS),
        "{fault:?}: reported rows: {err}"
    );

    let stats = worker.stats().clone();
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.failed_requests, 1);
    assert_eq!(stats.rows, FAULT_ROWS);
    let expected_restarts: BTreeMap<RestartReason, u64> =
        restart.into_iter().map(|r| (r, 1)).collect();
    assert_eq!(
        stats.restarts, expected_restarts,
        "{fault:?}: restarts after {err}"
    );

    assert_usable(&mut worker);
    let pid = worker.pid().expect("a running child");
    if restart.is_some() {
        assert_ne!(
            pid, first_pid,
            "{fault:?}: the child must have been replaced"
        );
        assert_eq!(worker.stats().spawns, 2);
        assert!(
            !support::alive(first_pid),
            "{fault:?}: the old child still runs"
        );
    } else {
        assert_eq!(pid, first_pid, "{fault:?}: the child must have been kept");
        assert_eq!(worker.stats().spawns, 1);
    }
    assert_eq!(
        worker.stats().restarts,
        expected_restarts,
        "no further restarts"
    );
    err
}

#[test]
fn exit_0_is_child_exited() {
    let err = fault_case(
        fixture(),
        Fault::Exit { code: 0 },
        RequestOptions::default(),
        Some(RestartReason::Exited),
    );
    assert!(matches!(err, Error::ChildExited { code: 0, .. }), "{err:?}");
}

#[test]
fn exit_3_is_child_exited() {
    let err = fault_case(
        fixture(),
        Fault::Exit { code: 3 },
        RequestOptions::default(),
        Some(RestartReason::Exited),
    );
    assert!(matches!(err, Error::ChildExited { code: 3, .. }), "{err:?}");
}

#[test]
fn panic_is_worker_panicked() {
    let err = fault_case(
        fixture(),
        Fault::Panic,
        RequestOptions::default(),
        Some(RestartReason::Panicked),
    );
    let Error::WorkerPanicked { message, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        message.contains("injected panic after 1000 rows"),
        "{message}"
    );
}

#[test]
fn abort_is_child_killed_by_sigabrt() {
    let err = fault_case(
        fixture(),
        Fault::Abort,
        RequestOptions::default(),
        Some(RestartReason::Signalled),
    );
    assert!(
        matches!(err, Error::ChildKilled { signal: 6, .. }),
        "{err:?}"
    );
}

#[test]
fn kill_self_is_child_killed_by_sigkill() {
    let err = fault_case(
        fixture(),
        Fault::KillSelf,
        RequestOptions::default(),
        Some(RestartReason::Signalled),
    );
    assert!(
        matches!(err, Error::ChildKilled { signal: 9, .. }),
        "{err:?}"
    );
}

#[test]
fn hang_without_heartbeat_is_hung() {
    let err = fault_case(
        fixture(),
        Fault::Hang,
        RequestOptions::default(),
        Some(RestartReason::Hung),
    );
    let Error::Hung { silent_for, .. } = err else {
        panic!("{err:?}");
    };
    assert!(
        silent_for >= Duration::from_secs(1),
        "declared hung after {silent_for:?}"
    );
}

#[test]
fn busy_heartbeat_is_not_hung_but_times_out() {
    // Twice the hang timeout: only the deadline may end it, not hang detection.
    let timeout = Duration::from_secs(2);
    let err = fault_case(
        fixture(),
        Fault::BusyHeartbeat,
        RequestOptions::default().timeout(timeout),
        Some(RestartReason::Timeout),
    );
    let Error::Timeout { after, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(after, timeout);
}

#[test]
fn oversized_row_is_a_worker_error_and_keeps_the_child() {
    // One byte over the per-row limit (rows over the maximum record are
    // fragmented, not refused).
    let err = fault_case(fixture(), Fault::Oversized, RequestOptions::default(), None);
    let Error::Worker { code, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        *code,
        FailureCode::Runtime(RuntimeCode::RowTooLarge),
        "{err}"
    );
}

#[test]
fn scribbled_ring_header_is_ring_corrupt() {
    let err = fault_case(
        fixture(),
        Fault::ScribbleHeader,
        RequestOptions::default(),
        Some(RestartReason::Corrupt),
    );
    assert!(
        matches!(
            err,
            Error::RingCorrupt {
                source: RingError::Corrupt { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn scribbled_record_header_is_ring_corrupt() {
    let err = fault_case(
        fixture(),
        Fault::ScribbleRecord,
        RequestOptions::default(),
        Some(RestartReason::Corrupt),
    );
    assert!(
        matches!(
            err,
            Error::RingCorrupt {
                source: RingError::Corrupt { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn ignored_cancel_kills_and_respawns_the_child() {
    let token = CancelToken::new();
    // Cancel from another thread once every row before the fault arrived.
    let rows = FaultRows::default();
    let canceller = cancel_after(token.clone(), rows.clone(), FAULT_ROWS);
    let mut worker = Worker::spawn(fixture()).expect("spawn the fixture");
    let first_pid = worker.pid().expect("a running child");
    let mut sink = rows.clone();
    let started = Instant::now();
    let err = worker
        .stream_with::<_, FaultSummary, _>(
            "fault",
            &FaultRequest::new(Fault::IgnoreCancel, FAULT_ROWS),
            &mut sink,
            RequestOptions::default().cancel(token),
        )
        .expect_err("an ignored cancellation must fail the request");
    let elapsed = started.elapsed();
    assert!(canceller.join().unwrap(), "rows never arrived: {err}");
    assert!(elapsed < FAULT_DEADLINE, "took {elapsed:?}: {err}");
    assert!(
        matches!(
            err,
            Error::Cancelled {
                killed: true,
                rows_delivered: FAULT_ROWS
            }
        ),
        "{err:?}"
    );
    assert_eq!(rows.count(), FAULT_ROWS);
    assert_eq!(
        worker.stats().restarts,
        BTreeMap::from([(RestartReason::Cancelled, 1)])
    );
    assert!(
        !support::alive(first_pid),
        "the child that ignored the cancel still runs"
    );
    assert_usable(&mut worker);
    assert_ne!(
        worker.pid(),
        Some(first_pid),
        "a new child serves the next request"
    );
}

#[test]
fn stdout_garbage_does_not_disturb_the_protocol() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let pid = worker.pid();
    let mut rows = FaultRows::default();
    let summary: FaultSummary = worker
        .stream(
            "fault",
            &FaultRequest::new(Fault::Garbage, FAULT_ROWS),
            &mut rows,
        )
        .expect("garbage on stdout is not protocol");
    assert_eq!(summary.rows, FAULT_ROWS);
    assert_eq!(rows.count(), FAULT_ROWS);
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), pid);
    assert_eq!(worker.stats().total_restarts(), 0);

    // The garbage (with its fake handshake frame) is in the stdout tail that
    // comes with the next exit error, and nowhere else.
    let err = worker
        .call::<_, FaultSummary>("fault", &FaultRequest::new(Fault::Exit { code: 0 }, 0))
        .expect_err("exit");
    let Error::ChildExited {
        code: 0, output, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(
        output.stdout.contains(r#"{"hello":{"protocol":999}}"#),
        "{output:?}"
    );
    assert_usable(&mut worker);
}

#[test]
fn output_floods_do_not_stall_the_protocol_and_tails_stay_bounded() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let pid = worker.pid();
    let tail_bytes = worker.config().output_tail_bytes;
    let mut rows = FaultRows::default();
    let flood = Fault::Flood {
        stdout_bytes: 16 << 20,
        stderr_bytes: 100 << 20,
    };
    let started = Instant::now();
    let summary: FaultSummary = worker
        .stream("fault", &FaultRequest::new(flood, FAULT_ROWS), &mut rows)
        .expect("a flood of output is not a failure");
    let elapsed = started.elapsed();
    // Draining 116 MiB of pipes takes well under a second; anything near the
    // bound means the child blocked on a full pipe.
    assert!(elapsed < Duration::from_secs(30), "flood took {elapsed:?}");
    assert_eq!(summary.rows, FAULT_ROWS);
    assert_eq!(rows.count(), FAULT_ROWS);
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), pid);
    assert_eq!(worker.stats().total_restarts(), 0);

    let err = worker
        .call::<_, FaultSummary>("fault", &FaultRequest::new(Fault::Exit { code: 3 }, 0))
        .expect_err("exit");
    let Error::ChildExited {
        code: 3, output, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    for (name, tail) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert_eq!(
            tail.len(),
            tail_bytes,
            "{name} tail is the last {tail_bytes} bytes"
        );
        assert!(
            tail.bytes().all(|b| b == b'x'),
            "{name} tail is the flood's end"
        );
    }
    // The error message stays short however much the child wrote.
    assert!(err.to_string().len() < 2048, "{}", err.to_string().len());
    assert_usable(&mut worker);
}

#[test]
fn allocation_without_a_limit_succeeds() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let mut rows = FaultRows::default();
    let fault = Fault::Allocate {
        mib: 32,
        hold_ms: 100,
    };
    let summary: FaultSummary = worker
        .stream("fault", &FaultRequest::new(fault, FAULT_ROWS), &mut rows)
        .expect("allocating is not a failure");
    assert_eq!(summary.rows, FAULT_ROWS);
    assert_eq!(rows.count(), FAULT_ROWS);
    assert_usable(&mut worker);
    assert_eq!(worker.stats().total_restarts(), 0);
}
