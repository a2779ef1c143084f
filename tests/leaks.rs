//! No leaks after any failure: after each failure scenario (and dropping its
//! `Worker`), this process has the same fds and threads as before, no child
//! processes (zombie or not), and `/dev/shm` has no new entries.
//!
//! A single test in its own binary: fds and threads are per process, so
//! tests running in parallel threads would see each other's.

use std::time::Duration;

use ringworker::{
    CancelToken, Error, MemoryLimits, RequestOptions, Row, SinkError, Worker, WorkerConfig,
};
use ringworker_testkit::faults::{After, Fault, FaultRequest, FaultSummary, GrandchildMode};
use ringworker_testkit::rows::{SyntheticRequest, SyntheticSummary, embedded_sequence};

#[path = "support/leak_check.rs"]
mod leak_check;
#[path = "support/mod.rs"]
mod support;

use leak_check::assert_no_leaks;
use support::{FAULT_ROWS, FaultRows, assert_usable, cancel_after, fixture};

/// Runs `fault` after [`FAULT_ROWS`] rows, expecting an error (or success
/// with `Ok`), then a verified request on the same worker.
fn fault(config: WorkerConfig, fault: Fault, options: RequestOptions, ok: bool) {
    let mut worker = Worker::spawn(config).unwrap();
    let mut rows = FaultRows::default();
    let result = worker.stream_with::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(fault, FAULT_ROWS),
        &mut rows,
        options,
    );
    assert_eq!(result.is_ok(), ok, "{fault:?}: {result:?}");
    assert_eq!(rows.count(), FAULT_ROWS, "{fault:?}: {result:?}");
    // A failed child is reaped before the request returns, not at drop.
    let live: Vec<u32> = worker.spawned_pid().into_iter().collect();
    assert_eq!(
        support::children(),
        live,
        "{fault:?}: children right after the request"
    );
    assert_usable(&mut worker);
}

fn simple_fault(which: Fault) -> impl Fn() {
    move || fault(fixture(), which, RequestOptions::default(), false)
}

fn harmless_fault(which: Fault) -> impl Fn() {
    move || fault(fixture(), which, RequestOptions::default(), true)
}

/// A named failure scenario.
type Scenario = (&'static str, Box<dyn Fn()>);

fn scenarios() -> Vec<Scenario> {
    vec![
        ("exit(0)", Box::new(simple_fault(Fault::Exit { code: 0 }))),
        ("exit(3)", Box::new(simple_fault(Fault::Exit { code: 3 }))),
        ("panic", Box::new(simple_fault(Fault::Panic))),
        ("abort", Box::new(simple_fault(Fault::Abort))),
        ("SIGKILL self", Box::new(simple_fault(Fault::KillSelf))),
        ("hang", Box::new(simple_fault(Fault::Hang))),
        ("oversized record", Box::new(simple_fault(Fault::Oversized))),
        (
            "scribbled header",
            Box::new(simple_fault(Fault::ScribbleHeader)),
        ),
        (
            "scribbled record",
            Box::new(simple_fault(Fault::ScribbleRecord)),
        ),
        ("stdout garbage", Box::new(harmless_fault(Fault::Garbage))),
        (
            "output flood",
            Box::new(harmless_fault(Fault::Flood {
                stdout_bytes: 4 << 20,
                stderr_bytes: 4 << 20,
            })),
        ),
        (
            "busy past the deadline",
            Box::new(|| {
                let options = RequestOptions::default().timeout(Duration::from_millis(1500));
                fault(fixture(), Fault::BusyHeartbeat, options, false)
            }),
        ),
        (
            "ignored cancel",
            Box::new(|| {
                let token = CancelToken::new();
                let mut worker = Worker::spawn(fixture()).unwrap();
                let rows = FaultRows::default();
                let canceller = cancel_after(token.clone(), rows.clone(), FAULT_ROWS);
                let err = worker
                    .stream_with::<_, FaultSummary, _>(
                        "fault",
                        &FaultRequest::new(Fault::IgnoreCancel, FAULT_ROWS),
                        &mut rows.clone(),
                        RequestOptions::default().cancel(token),
                    )
                    .expect_err("cancelled");
                assert!(canceller.join().unwrap());
                assert!(
                    matches!(err, Error::Cancelled { killed: true, .. }),
                    "{err:?}"
                );
                assert_usable(&mut worker);
            }),
        ),
        (
            "honoured cancel",
            Box::new(|| {
                let token = CancelToken::new();
                let mut worker = Worker::spawn(fixture()).unwrap();
                let rows = FaultRows::default();
                let canceller = cancel_after(token.clone(), rows.clone(), 1);
                let err = worker
                    .stream_with::<_, FaultSummary, _>(
                        "fault",
                        &FaultRequest::new(Fault::BusyHeartbeat, 1),
                        &mut rows.clone(),
                        RequestOptions::default().cancel(token),
                    )
                    .expect_err("cancelled");
                assert!(canceller.join().unwrap());
                assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
                assert_usable(&mut worker);
            }),
        ),
        (
            "sink panic",
            Box::new(|| {
                let mut worker = Worker::spawn(fixture()).unwrap();
                // Panics at the row the child numbered 100.
                let mut sink = |row: Row<'_>| {
                    assert!(
                        embedded_sequence(row.payload).expect("100-byte rows") < 100,
                        "sink panics"
                    )
                };
                let request = SyntheticRequest::fixed(200_000, 100);
                let err = worker.stream::<_, SyntheticSummary, _>("synthetic", &request, &mut sink);
                assert!(
                    matches!(
                        err,
                        Err(Error::SinkPanicked {
                            rows_delivered: 100,
                            ..
                        })
                    ),
                    "{err:?}"
                );
                assert_usable(&mut worker);
            }),
        ),
        (
            "sink error",
            Box::new(|| {
                let mut worker = Worker::spawn(fixture()).unwrap();
                let mut sink = |_: Row<'_>| -> Result<(), SinkError> { Err(SinkError::new("no")) };
                let mut sink = SinkFn(&mut sink);
                let request = SyntheticRequest::fixed(200_000, 100);
                let err = worker.stream::<_, SyntheticSummary, _>("synthetic", &request, &mut sink);
                assert!(
                    matches!(
                        err,
                        Err(Error::Sink {
                            rows_delivered: 0,
                            ..
                        })
                    ),
                    "{err:?}"
                );
                assert_usable(&mut worker);
            }),
        ),
        (
            "unknown command",
            Box::new(|| {
                let mut worker = Worker::spawn(fixture()).unwrap();
                let err = worker.call::<_, serde_json::Value>("nope", &());
                assert!(matches!(err, Err(Error::UnknownCommand { .. })), "{err:?}");
                assert_usable(&mut worker);
            }),
        ),
        (
            "memory hard limit",
            Box::new(|| {
                let memory = MemoryLimits::default()
                    .with_hard_rss(Some(48 << 20))
                    .with_sample_interval(Duration::from_millis(20));
                fault(
                    fixture().with_memory(memory),
                    Fault::Allocate {
                        mib: 160,
                        hold_ms: 5000,
                    },
                    RequestOptions::default(),
                    false,
                );
            }),
        ),
        (
            "idle restart",
            Box::new(|| {
                let policy =
                    support::many_restarts().with_idle_restart(Some(Duration::from_millis(50)));
                let mut worker = Worker::spawn(fixture().with_restart_policy(policy)).unwrap();
                assert_usable(&mut worker);
                let pid = worker.pid().unwrap();
                assert!(support::wait_until(Duration::from_secs(5), || {
                    !support::alive(pid)
                }));
                assert_usable(&mut worker);
            }),
        ),
        (
            "prewarmed spare",
            Box::new(|| {
                let policy = support::many_restarts().with_prewarm(true);
                let mut worker = Worker::spawn(fixture().with_restart_policy(policy)).unwrap();
                assert!(support::wait_until(Duration::from_secs(10), || worker
                    .spare_ready()
                    == Some(true)));
                let err =
                    worker.call::<_, FaultSummary>("fault", &FaultRequest::new(Fault::KillSelf, 0));
                assert!(matches!(err, Err(Error::ChildKilled { .. })), "{err:?}");
                assert_usable(&mut worker);
                assert_eq!(worker.stats().prewarm_swaps, 1);
            }),
        ),
        (
            "grandchild in its own session",
            Box::new(|| {
                let dir =
                    std::env::temp_dir().join(format!("ringworker-leaks-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let pid_file = dir.join("grandchild.pid");
                let mut worker = Worker::spawn(fixture()).unwrap();
                let request = FaultRequest::new(
                    Fault::Grandchild {
                        mode: GrandchildMode::Setsid,
                        then: After::Exit { code: 3 },
                    },
                    10,
                )
                .with_pid_file(pid_file.to_str().unwrap());
                let err = worker.call::<_, FaultSummary>("fault", &request);
                assert!(
                    matches!(err, Err(Error::ChildExited { code: 3, .. })),
                    "{err:?}"
                );
                let grandchild: u32 = std::fs::read_to_string(&pid_file)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                assert!(
                    !support::alive(grandchild),
                    "the setsid grandchild outlived the worker"
                );
                std::fs::remove_dir_all(&dir).unwrap();
                assert_usable(&mut worker);
            }),
        ),
        (
            "startup timeout",
            Box::new(|| {
                let config = fixture()
                    .with_env("FIXTURE_STARTUP_DELAY_MS", "30000")
                    .with_startup_timeout(Duration::from_millis(200));
                let err = Worker::spawn(config);
                assert!(matches!(err, Err(Error::StartupTimeout { .. })), "{err:?}");
            }),
        ),
        (
            "version mismatch",
            Box::new(|| {
                let err = Worker::spawn(fixture().with_env("FIXTURE_PROTOCOL", "999"));
                assert!(matches!(err, Err(Error::VersionMismatch { .. })), "{err:?}");
            }),
        ),
        (
            "handshake failure",
            Box::new(|| {
                let err = Worker::spawn(WorkerConfig::new("/bin/sh").with_args(["-c", "exit 7"]));
                assert!(matches!(err, Err(Error::Handshake { .. })), "{err:?}");
            }),
        ),
        (
            "missing program",
            Box::new(|| {
                let err = Worker::spawn(WorkerConfig::new("/nonexistent/ringworker-worker"));
                assert!(matches!(err, Err(Error::Spawn { .. })), "{err:?}");
            }),
        ),
    ]
}

/// A sink from a fallible closure.
struct SinkFn<'a, F>(&'a mut F);

impl<F: FnMut(Row<'_>) -> Result<(), SinkError>> ringworker::Sink for SinkFn<'_, F> {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        (self.0)(row)
    }
}

#[test]
fn no_fds_threads_children_or_shm_entries_survive_a_failure() {
    assert_no_leaks(scenarios());
}
