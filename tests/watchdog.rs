//! The watchdog thread against real fixture children: absolute startup
//! deadlines, request deadlines while the child beats, the cancel grace of
//! an abandoned request, verdicts carried out while the sink blocks, the
//! race of a cancel with a finished request, rows committed just before a
//! kill, reaping of children that die while idle, `Duration::MAX` as "no
//! limit", and an idle watchdog that costs no CPU.
//!
//! The tests share one lock: the leak checks look at every child of this
//! process, and the timing bounds assume the (2-core) machine is not also
//! running the other tests of this file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringworker::{CancelToken, Error, RequestOptions, Row, Sink, SinkError, Worker, WorkerConfig};
use ringworker_testkit::faults::{Fault, FaultRequest, FaultSummary};
use ringworker_testkit::rows::{RowCheck, SyntheticRequest, SyntheticSummary};

#[path = "support/mod.rs"]
mod support;

use support::{FaultRows, alive, assert_usable, fixture, wait_until};

/// Fallback deadline of every request that is not about deadlines.
const FALLBACK: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time (a failed test poisons the lock; the next goes on).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The fixture with a request deadline, so no request can hang a test.
fn config() -> WorkerConfig {
    fixture().with_request_timeout(FALLBACK)
}

/// The only child of this process is the worker's current one (the shim),
/// and there are no zombies (waits up to 1 s for a reap in progress).
fn assert_no_leaks(worker: &Worker) {
    let live: Vec<u32> = worker.spawned_pid().into_iter().collect();
    let clean = wait_until(Duration::from_secs(1), || {
        support::children() == live && support::zombie_children().is_empty()
    });
    assert!(
        clean,
        "children {:?} (zombies {:?}), expected only the live worker {live:?}",
        support::children(),
        support::zombie_children()
    );
}

/// Neither the worker nor the process the supervisor spawned for it runs.
fn dead(worker_pid: u32, spawned_pid: u32) -> bool {
    !alive(worker_pid) && !alive(spawned_pid)
}

fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a valid pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
}

fn small_request() -> SyntheticRequest {
    SyntheticRequest::fixed(10, 10)
}

/// A small synthetic request (rows dropped) with `options`.
fn small_call(worker: &mut Worker, options: RequestOptions) -> Result<SyntheticSummary, Error> {
    worker.stream_with(
        "synthetic",
        &small_request(),
        &mut |_row: Row<'_>| {},
        options,
    )
}

/// A sink for the `fault` command's rows that blocks for `sleep` in its
/// first row, then records whether the child (worker and spawned pid) was
/// still alive when it woke.
struct BlockingSink {
    rows: FaultRows,
    sleep: Duration,
    pids: (u32, u32),
    entered: Arc<AtomicBool>,
    alive_on_wake: Option<bool>,
}

impl BlockingSink {
    fn new(worker: &Worker, sleep: Duration) -> Self {
        BlockingSink {
            rows: FaultRows::default(),
            sleep,
            pids: (worker.pid().unwrap(), worker.spawned_pid().unwrap()),
            entered: Arc::new(AtomicBool::new(false)),
            alive_on_wake: None,
        }
    }
}

impl Sink for BlockingSink {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        self.rows.row(row)?;
        if self.alive_on_wake.is_none() {
            self.entered.store(true, Ordering::Release);
            std::thread::sleep(self.sleep);
            self.alive_on_wake = Some(!dead(self.pids.0, self.pids.1));
        }
        Ok(())
    }
}

// 1. Startup deadline and zero durations.

#[test]
fn dribbled_handshake_hits_the_absolute_startup_deadline() {
    let _serial = serial();
    let config = config()
        .with_env("FIXTURE_DRIBBLE_HELLO_MS", "20")
        .with_startup_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = Worker::spawn(config);
    let elapsed = started.elapsed();
    match result {
        Err(Error::StartupTimeout { .. }) => {}
        Err(other) => panic!("expected StartupTimeout, got {other:?}"),
        Ok(worker) => panic!("spawn succeeded: {worker:?}"),
    }
    assert!(
        elapsed < Duration::from_millis(1500),
        "the 300 ms startup deadline took {elapsed:?}: a per-read timeout?"
    );
    let clean = wait_until(Duration::from_secs(1), || support::children().is_empty());
    assert!(clean, "children left: {:?}", support::children());
}

#[test]
fn zero_durations_are_config_errors() {
    let _serial = serial();
    let cases: [(&str, WorkerConfig); 3] = [
        (
            "startup_timeout",
            config().with_startup_timeout(Duration::ZERO),
        ),
        (
            "request_timeout",
            config().with_request_timeout(Duration::ZERO),
        ),
        ("hang_timeout", config().with_hang_timeout(Duration::ZERO)),
    ];
    for (name, config) in cases {
        match config.validate() {
            Err(Error::Config { field, .. }) => assert_eq!(field, name),
            other => panic!("{name}: validate gave {other:?}"),
        }
        match Worker::spawn(config) {
            Err(Error::Config { field, .. }) => assert_eq!(field, name),
            Err(other) => panic!("{name}: spawn gave {other:?}"),
            Ok(worker) => panic!("{name}: spawn succeeded: {worker:?}"),
        }
        assert!(support::children().is_empty(), "{name}: a child started");
    }
    let mut worker = Worker::spawn(config()).unwrap();
    let result = small_call(
        &mut worker,
        RequestOptions::default().timeout(Duration::ZERO),
    );
    match result {
        Err(Error::Config { field, .. }) => assert_eq!(field, "RequestOptions::timeout"),
        other => panic!("a zero request timeout gave {other:?}"),
    }
    assert_eq!(worker.stats().spawns, 1);
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

// 2. Request deadline while the child beats.

#[test]
fn busy_child_with_heartbeat_times_out_and_the_worker_recovers() {
    let _serial = serial();
    let mut worker =
        Worker::spawn(config().with_request_timeout(Duration::from_millis(300))).unwrap();
    let (pid, spawned) = (worker.pid().unwrap(), worker.spawned_pid().unwrap());
    let mut rows = FaultRows::default();
    let started = Instant::now();
    let result = worker.stream::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(Fault::BusyHeartbeat, 0),
        &mut rows,
    );
    let elapsed = started.elapsed();
    match result {
        Err(Error::Timeout { rows_delivered, .. }) => assert_eq!(rows_delivered, 0),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_millis(1300),
        "a 300 ms deadline took {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300),
        "timed out early: {elapsed:?}"
    );
    assert!(dead(pid, spawned), "the busy child still runs");
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

#[test]
fn request_timeout_defaults() {
    let config = WorkerConfig::new("/bin/true");
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert_eq!(config.long_running().request_timeout, Duration::MAX);
    assert!(
        WorkerConfig::new("/bin/true")
            .long_running()
            .validate()
            .is_ok()
    );
}

// 3. An abandoned request whose child floods diagnostics and ignores the cancel.

/// Fails on its first row.
struct FailingSink;

impl Sink for FailingSink {
    fn row(&mut self, _row: Row<'_>) -> Result<(), SinkError> {
        Err(SinkError::new("the sink gives up"))
    }
}

/// Runs the diagnostic flood into `sink`, which fails (`after_rows` rows
/// first), checks the error with `expected`, then checks the next request
/// gets a fresh child within the grace.
fn assert_flood_is_cut_off(
    sink: &mut dyn Sink,
    after_rows: u64,
    expected: impl Fn(&Error) -> bool,
) {
    let _serial = serial();
    let grace = Duration::from_millis(500);
    let mut worker = Worker::spawn(config().with_cancel_grace(grace)).unwrap();
    let (pid, spawned) = (worker.pid().unwrap(), worker.spawned_pid().unwrap());
    let result = worker.stream::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(Fault::FloodDiagnostics, after_rows),
        sink,
    );
    match result {
        Err(err) if expected(&err) => assert_eq!(err.rows_delivered(), Some(0)),
        other => panic!("expected the sink's failure, got {other:?}"),
    }
    let started = Instant::now();
    let summary = small_call(&mut worker, RequestOptions::default().timeout(FALLBACK));
    let elapsed = started.elapsed();
    let summary = summary.unwrap_or_else(|err| panic!("the next request failed: {err}"));
    assert_eq!(summary.rows, small_request().rows);
    assert!(
        elapsed < grace + Duration::from_millis(1500),
        "the next request took {elapsed:?} (grace {grace:?})"
    );
    assert_ne!(worker.pid(), Some(pid), "the flooding child was kept");
    assert!(dead(pid, spawned), "the flooding child still runs");
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

#[test]
fn flooding_child_after_a_sink_error_is_replaced_within_the_grace() {
    // `Sink::diagnostic` cannot fail: the sink fails on the row written
    // before the flood.
    assert_flood_is_cut_off(&mut FailingSink, 1, |err| matches!(err, Error::Sink { .. }));
}

/// Panics on its first diagnostic (`Sink::diagnostic` has no error to
/// return; a panic is how it fails).
struct PanickingDiagnostics;

impl Sink for PanickingDiagnostics {
    fn row(&mut self, _row: Row<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn diagnostic(&mut self, _diagnostic: &ringworker::sink::Diagnostic) {
        panic!("the diagnostic sink gives up");
    }
}

#[test]
fn flooding_child_after_a_diagnostic_sink_panic_is_replaced_within_the_grace() {
    assert_flood_is_cut_off(&mut PanickingDiagnostics, 0, |err| {
        matches!(err, Error::SinkPanicked { .. })
    });
}

// 4. Verdicts carried out while the sink blocks.

const SINK_SLEEP: Duration = Duration::from_secs(2);

#[test]
fn hung_child_is_killed_while_the_sink_blocks() {
    let _serial = serial();
    let mut worker = Worker::spawn(config().with_hang_timeout(Duration::from_millis(300))).unwrap();
    let mut sink = BlockingSink::new(&worker, SINK_SLEEP);
    let result =
        worker.stream::<_, FaultSummary, _>("fault", &FaultRequest::new(Fault::Hang, 1), &mut sink);
    match result {
        Err(Error::Hung { rows_delivered, .. }) => assert_eq!(rows_delivered, 1),
        other => panic!("expected Hung, got {other:?}"),
    }
    assert_eq!(sink.rows.count(), 1);
    assert_eq!(
        sink.alive_on_wake,
        Some(false),
        "the hung child was still alive when the sink returned after {SINK_SLEEP:?}"
    );
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

#[test]
fn deadline_kills_while_the_sink_blocks() {
    let _serial = serial();
    let mut worker = Worker::spawn(config()).unwrap();
    let mut sink = BlockingSink::new(&worker, SINK_SLEEP);
    let result = worker.stream_with::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(Fault::BusyHeartbeat, 1),
        &mut sink,
        RequestOptions::default().timeout(Duration::from_millis(300)),
    );
    match result {
        Err(Error::Timeout { rows_delivered, .. }) => assert_eq!(rows_delivered, 1),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(
        sink.alive_on_wake,
        Some(false),
        "the child was still alive when the sink returned, past its 300 ms deadline"
    );
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

#[test]
fn cancel_grace_kills_while_the_sink_blocks() {
    let _serial = serial();
    let mut worker = Worker::spawn(config().with_cancel_grace(Duration::from_millis(300))).unwrap();
    let mut sink = BlockingSink::new(&worker, SINK_SLEEP);
    let token = CancelToken::new();
    let canceller = {
        let (token, entered) = (token.clone(), Arc::clone(&sink.entered));
        std::thread::spawn(move || {
            let reached = wait_until(FALLBACK, || entered.load(Ordering::Acquire));
            std::thread::sleep(Duration::from_millis(100));
            token.cancel();
            reached
        })
    };
    let result = worker.stream_with::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(Fault::IgnoreCancel, 1),
        &mut sink,
        RequestOptions::default().cancel(token).timeout(FALLBACK),
    );
    assert!(canceller.join().unwrap(), "the sink was never entered");
    match result {
        Err(Error::Cancelled {
            killed: true,
            rows_delivered,
        }) => assert_eq!(rows_delivered, 1),
        other => panic!("expected Cancelled {{ killed: true }}, got {other:?}"),
    }
    assert_eq!(
        sink.alive_on_wake,
        Some(false),
        "the child ignoring the cancel was still alive when the sink returned"
    );
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

// 5. A cancel racing a request the child has already finished.

/// Verifies synthetic rows, cancels `token` after `cancel_at` rows and
/// sleeps 1 ms per row for the first `slow_rows` (50 ms in the first, so
/// the child is done before anything is cancelled).
struct LaggingSink {
    check: RowCheck,
    rows: u64,
    token: CancelToken,
    cancel_at: u64,
    slow_rows: u64,
}

impl Sink for LaggingSink {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        self.check
            .check(row.stream, row.payload)
            .map_err(SinkError::new)?;
        self.rows += 1;
        if self.rows == 1 {
            std::thread::sleep(Duration::from_millis(50));
        } else if self.rows <= self.slow_rows {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.rows == self.cancel_at {
            self.token.cancel();
        }
        Ok(())
    }
}

#[test]
fn cancel_after_the_end_marker_is_cancelled_never_a_short_ok() {
    let _serial = serial();
    let mut worker = Worker::spawn(config()).unwrap();
    let pid = worker.pid();
    let request = SyntheticRequest::fixed(10_000, 100);
    for round in 0..20 {
        let token = CancelToken::new();
        let mut sink = LaggingSink {
            check: RowCheck::for_request(&request),
            rows: 0,
            token: token.clone(),
            cancel_at: 5,
            slow_rows: 300,
        };
        let result = worker.stream_with::<_, SyntheticSummary, _>(
            "synthetic",
            &request,
            &mut sink,
            RequestOptions::default().cancel(token).timeout(FALLBACK),
        );
        match result {
            Err(Error::Cancelled { rows_delivered, .. }) => {
                assert_eq!(rows_delivered, sink.rows, "round {round}");
                assert!(rows_delivered < request.rows, "round {round}");
            }
            Ok(summary) => panic!(
                "round {round}: Ok after a cancel, {} rows delivered, summary says {}",
                sink.rows, summary.rows
            ),
            Err(other) => panic!("round {round}: expected Cancelled, got {other:?}"),
        }
    }
    assert_eq!(worker.pid(), pid, "a finished child needs no restart");
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

// 6. The row committed right after a cancel check survives the kill.

#[test]
fn row_committed_before_the_kill_is_delivered() {
    let _serial = serial();
    let mut worker =
        Worker::spawn(config().with_request_timeout(Duration::from_millis(500))).unwrap();
    let mut rows = FaultRows::default();
    let result = worker.stream::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(Fault::CommitAfterCheck { compute_ms: 2000 }, 0),
        &mut rows,
    );
    match result {
        Err(Error::Timeout { rows_delivered, .. }) => assert_eq!(
            rows_delivered, 1,
            "the committed row was not delivered before the Timeout"
        ),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(rows.count(), 1);
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

// 7. Children that die while idle.

#[test]
fn request_right_after_an_idle_sigkill_succeeds_200_times() {
    let _serial = serial();
    let mut worker = Worker::spawn(config()).unwrap();
    for round in 0..200 {
        let pid = worker.pid().expect("a child");
        sigkill(pid);
        let summary = small_call(&mut worker, RequestOptions::default().timeout(FALLBACK))
            .unwrap_or_else(|err| panic!("round {round}: request after SIGKILL failed: {err}"));
        assert_eq!(summary.rows, small_request().rows, "round {round}");
        assert_ne!(
            worker.pid(),
            Some(pid),
            "round {round}: the dead child kept"
        );
    }
    let stats = worker.stats().clone();
    eprintln!(
        "200 idle SIGKILLs: resent {}, restarts {:?}, spawns {}",
        stats.resent_requests, stats.restarts, stats.spawns
    );
    assert_eq!(stats.spawns, 201, "{stats:?}");
    assert_eq!(stats.total_restarts(), 200, "{stats:?}");
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

#[test]
fn idle_child_killed_is_reaped_without_a_request() {
    let _serial = serial();
    let mut worker = Worker::spawn(config()).unwrap();
    let (pid, spawned) = (worker.pid().unwrap(), worker.spawned_pid().unwrap());
    sigkill(pid);
    let reaped = wait_until(Duration::from_secs(1), || {
        !support::children().contains(&spawned) && support::zombie_children().is_empty()
    });
    assert!(
        reaped,
        "1 s after the SIGKILL: children {:?}, zombies {:?} (shim {spawned})",
        support::children(),
        support::zombie_children()
    );
    assert!(!worker.is_alive());
    assert_usable(&mut worker);
    assert_ne!(worker.pid(), Some(pid));
    assert_no_leaks(&worker);
}

// 8. `Duration::MAX` is "no limit".

#[test]
fn duration_max_means_no_limit() {
    let _serial = serial();
    let config = fixture()
        .with_request_timeout(Duration::MAX)
        .with_hang_timeout(Duration::MAX)
        .with_cancel_grace(Duration::MAX)
        .with_startup_timeout(Duration::MAX)
        .with_control_timeout(Duration::MAX);
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid();
    // Nothing here may hang: each request has a canceller with a 10 s fallback.
    let run = |worker: &mut Worker, options: RequestOptions, token: CancelToken| {
        let done = Arc::new(AtomicBool::new(false));
        let fallback = {
            let (token, done) = (token.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                if !wait_until(FALLBACK, || done.load(Ordering::Acquire)) {
                    token.cancel();
                }
            })
        };
        let result = small_call(worker, options.cancel(token));
        done.store(true, Ordering::Release);
        fallback.join().unwrap();
        result
    };
    for options in [
        RequestOptions::default(),
        RequestOptions::default().timeout(Duration::MAX),
    ] {
        let summary = run(&mut worker, options, CancelToken::new())
            .unwrap_or_else(|err| panic!("request with no limits failed: {err}"));
        assert_eq!(summary.rows, small_request().rows);
    }
    assert_usable(&mut worker);

    assert_eq!(worker.pid(), pid, "no limit was hit: the child stays");
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

#[test]
fn cancel_grace_duration_max_never_expires() {
    let _serial = serial();
    let mut worker = Worker::spawn(config().with_cancel_grace(Duration::MAX)).unwrap();
    let (pid, spawned) = (worker.pid().unwrap(), worker.spawned_pid().unwrap());
    let token = CancelToken::new();
    let rows = FaultRows::default();
    let canceller = support::cancel_after(token.clone(), rows.clone(), 1);
    let mut sink = rows;
    // The child never honours the cancel and the grace is infinite: only
    // the request's deadline may end it.
    let deadline = Duration::from_millis(1500);
    let started = Instant::now();
    let result = worker.stream_with::<_, FaultSummary, _>(
        "fault",
        &FaultRequest::new(Fault::IgnoreCancel, 1),
        &mut sink,
        RequestOptions::default().timeout(deadline).cancel(token),
    );
    let elapsed = started.elapsed();
    assert!(canceller.join().unwrap());
    match result {
        Err(Error::Timeout { rows_delivered, .. }) => assert_eq!(rows_delivered, 1),
        other => panic!(
            "an infinite cancel grace expired: expected Timeout after {deadline:?}, \
             got {other:?} after {elapsed:?}"
        ),
    }
    assert!(elapsed >= deadline, "ended after {elapsed:?}");
    assert!(dead(pid, spawned), "the child still runs");
    assert_usable(&mut worker);
    assert_no_leaks(&worker);
}

// 9. An idle watchdog costs nothing.

/// utime + stime (clock ticks) of this process's thread named `name`.
fn thread_ticks(name: &str) -> Option<(u32, u64)> {
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let tid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // Fields after the parenthesized name start with the state (field 3);
        // utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some((tid, utime + stime));
    }
    None
}

#[test]
fn idle_watchdog_accumulates_no_cpu() {
    let _serial = serial();
    let mut workers: Vec<Worker> = (0..4).map(|_| Worker::spawn(config()).unwrap()).collect();
    for worker in &mut workers {
        // One request each, so every watch has been armed and disarmed.
        small_call(worker, RequestOptions::default().timeout(FALLBACK)).unwrap();
    }
    // Comm names are cut at 15 bytes.
    let name = "ringworker-watchdog";
    let short = &name[..15];
    let ticks = || thread_ticks(name).or_else(|| thread_ticks(short));
    let (tid, before) = ticks().expect("a ringworker-watchdog thread");
    std::thread::sleep(Duration::from_secs(2));
    let (tid_after, after) = ticks().expect("the watchdog thread is gone");
    assert_eq!(tid, tid_after, "the watchdog thread was replaced");
    let spent = after - before;
    assert!(
        spent < 5,
        "the idle watchdog used {spent} ticks in 2 s with 4 idle workers"
    );
    for worker in &workers {
        assert!(worker.is_alive());
    }
    let shims: Vec<u32> = workers.iter().filter_map(Worker::spawned_pid).collect();
    let mut children = support::children();
    children.sort_unstable();
    let mut expected = shims.clone();
    expected.sort_unstable();
    assert_eq!(children, expected);
    drop(workers);
    let clean = wait_until(Duration::from_secs(2), || support::children().is_empty());
    assert!(clean, "children after drop: {:?}", support::children());
}
