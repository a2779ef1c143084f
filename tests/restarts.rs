//! The restart policy against real children: cycling after `max_requests`,
//! the watchdog's idle restart, the restart intensity cap (trips, fails
//! fast without spawning, recovers after its window), explicit cycles
//! (planned, never counted against the cap), the spawn backoff between
//! failed starts, and the prewarmed spare (a replacement is a swap, faster
//! than a cold spawn, and nothing is left after the drop).
//!
//! Each test runs alone in this binary and ends with the leak check.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ringworker::{Error, ErrorKind, RestartPolicy, RestartReason, Worker, WorkerConfig};
use ringworker_testkit::faults::{Fault, FaultRequest, FaultSummary};

#[path = "support/mod.rs"]
mod support;
#[path = "support/tree_support.rs"]
mod tree_support;

use support::{FaultRows, alive, assert_usable, fixture, fixture_path, wait_until};
use tree_support::{assert_no_children, assert_only_child, drop_worker, serial};

fn with_policy(policy: RestartPolicy) -> WorkerConfig {
    fixture().with_restart_policy(policy)
}

fn kill_self(worker: &mut Worker) -> Error {
    worker
        .stream::<_, FaultSummary, _>(
            "fault",
            &FaultRequest::new(Fault::KillSelf, 0),
            &mut FaultRows::default(),
        )
        .expect_err("the child killed itself")
}

fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

/// `max_requests = 2`: five requests run on three children, two cycles.
#[test]
fn max_requests_cycles_the_child() {
    let _serial = serial();
    let mut worker = Worker::spawn(with_policy(
        RestartPolicy::default().with_max_requests(Some(2)),
    ))
    .unwrap();
    let mut pids = Vec::new();
    for _ in 0..5 {
        assert_usable(&mut worker);
        pids.push(worker.pid().unwrap());
    }
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    let distinct: BTreeSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    for &old in &pids[..4] {
        assert!(!alive(old), "retired child {old} still runs");
    }
    let stats = worker.stats();
    assert_eq!(
        stats.restarts.get(&RestartReason::MaxRequests),
        Some(&2),
        "{stats:?}"
    );
    assert_eq!(stats.total_restarts(), 2, "{stats:?}");
    assert_eq!(stats.spawns, 3, "{stats:?}");
    assert_only_child(&worker, "after five requests");
    drop_worker(worker, "max requests");
}

/// `idle_restart = 300 ms`: a second after a request the watchdog has
/// stopped the idle child without any call; the next request starts a new
/// one (`Idle`).
#[test]
fn idle_child_is_stopped_by_the_watchdog() {
    let _serial = serial();
    let mut worker = Worker::spawn(with_policy(
        RestartPolicy::default().with_idle_restart(Some(Duration::from_millis(300))),
    ))
    .unwrap();
    assert_usable(&mut worker);
    let (old, old_shim) = (worker.pid().unwrap(), worker.spawned_pid().unwrap());
    std::thread::sleep(Duration::from_secs(1));
    assert!(!alive(old), "idle child {old} still runs after 1 s");
    assert!(!worker.is_alive());
    // Reaped by the watchdog too, not left a zombie until the next call.
    assert!(
        !support::children().contains(&old_shim),
        "children {:?}",
        support::children()
    );
    assert_usable(&mut worker);
    assert_ne!(worker.pid(), Some(old));
    let stats = worker.stats();
    assert_eq!(
        stats.restarts.get(&RestartReason::Idle),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(stats.total_restarts(), 1, "{stats:?}");
    assert_only_child(&worker, "after the idle restart");
    drop_worker(worker, "idle");
}

/// At most 2 unplanned restarts within the window: the fourth request
/// after three children killed themselves fails fast with `RestartLimit`
/// (no spawn), and once the window has passed a request works again.
///
/// The window is 2 s rather than 1 s, so three spawns and deaths surely
/// fit in it on a loaded machine.
#[test]
fn restart_cap_trips_and_recovers() {
    let _serial = serial();
    let window = Duration::from_secs(2);
    let mut worker = Worker::spawn(with_policy(
        RestartPolicy::default().with_restart_limit(2, window),
    ))
    .unwrap();
    let started = Instant::now();
    for round in 0..3 {
        let err = kill_self(&mut worker);
        assert!(
            matches!(err, Error::ChildKilled { signal: 9, .. }),
            "round {round}: {err:?}"
        );
    }
    let deaths = started.elapsed();
    assert!(deaths < window, "three deaths took {deaths:?}");
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::Signalled),
        Some(&3)
    );
    let spawns = worker.stats().spawns;
    let asked = Instant::now();
    let err = worker
        .call::<_, FaultSummary>("fault", &FaultRequest::new(Fault::Exit { code: 0 }, 0))
        .expect_err("the cap is reached");
    let fail_fast = asked.elapsed();
    let Error::RestartLimit {
        restarts,
        window: reported,
        last,
        retry_after,
    } = err
    else {
        panic!("expected RestartLimit, got {err:?}");
    };
    assert_eq!(restarts, 3);
    assert_eq!(reported, window);
    assert_eq!(last, Some(RestartReason::Signalled));
    assert!(
        retry_after > Duration::ZERO && retry_after <= window,
        "{retry_after:?}"
    );
    assert!(fail_fast < Duration::from_secs(1), "took {fail_fast:?}");
    assert_eq!(worker.stats().spawns, spawns, "spawned while capped");
    assert_eq!(worker.stats().restart_limited, 1);
    // `ensure_ready` fails fast the same way.
    let err = worker.ensure_ready().expect_err("still capped");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert_eq!(worker.stats().spawns, spawns);
    assert_no_children("while capped");

    std::thread::sleep(retry_after + Duration::from_millis(100));
    assert_usable(&mut worker);
    assert_eq!(worker.stats().spawns, spawns + 1);
    assert_only_child(&worker, "after the window");
    drop_worker(worker, "restart cap");
}

/// `cycle()` replaces the child (`Requested`) and is planned: with a cap of
/// zero unplanned restarts, three cycles in a row still work, while one
/// crash then trips the cap.
#[test]
fn cycle_is_planned_and_not_counted() {
    let _serial = serial();
    let mut worker = Worker::spawn(with_policy(
        RestartPolicy::default().with_restart_limit(0, Duration::from_secs(60)),
    ))
    .unwrap();
    let mut pids = vec![worker.pid().unwrap()];
    for _ in 0..3 {
        worker.cycle().unwrap();
        let pid = worker.pid().unwrap();
        assert!(!pids.contains(&pid), "cycle kept pid {pid}");
        assert!(!alive(*pids.last().unwrap()));
        pids.push(pid);
    }
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::Requested),
        Some(&3)
    );
    assert_usable(&mut worker);
    assert_only_child(&worker, "after the cycles");
    // The cap itself is live: one unplanned restart trips it.
    kill_self(&mut worker);
    let err = worker
        .ensure_ready()
        .expect_err("one crash is over a cap of 0");
    assert!(
        matches!(err, Error::RestartLimit { restarts: 1, .. }),
        "{err:?}"
    );
    drop_worker(worker, "cycle");
}

/// Later generations that fail to start (a wrapper that execs the fixture
/// only as generation 1 and exits 7 otherwise): consecutive failed starts
/// are spaced by the backoff, doubling from 200 ms up to its 1 s cap.
#[test]
fn failed_starts_back_off() {
    let _serial = serial();
    let first = Duration::from_millis(200);
    let max = Duration::from_secs(1);
    let config = WorkerConfig::new("/bin/sh")
        .with_args([
            "-c",
            r#"if [ "$RINGWORKER_GENERATION" = 1 ]; then exec "$FIXTURE_BIN"; fi; exit 7"#,
        ])
        .with_env("FIXTURE_BIN", fixture_path())
        .with_startup_timeout(Duration::from_secs(10))
        .with_restart_policy(support::many_restarts().with_spawn_backoff(first, max));
    let mut worker = Worker::spawn(config).unwrap();
    assert_usable(&mut worker);
    let err = worker.cycle().expect_err("generation 2 exits 7");
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("code 7"), "{err}");
    let mut failed_at = vec![Instant::now()];
    for _ in 0..4 {
        let err = worker.ensure_ready().expect_err("every later start fails");
        assert_eq!(err.kind(), ErrorKind::Startup, "{err:?}");
        failed_at.push(Instant::now());
    }
    let gaps: Vec<Duration> = failed_at.windows(2).map(|w| w[1] - w[0]).collect();
    let expected = [first, first * 2, first * 4, max];
    for (i, (&gap, &backoff)) in gaps.iter().zip(&expected).enumerate() {
        // The backoff is set before the failing call returns, and the next
        // start comes after it plus a spawn: at least the backoff apart,
        // give or take the instants' own placement.
        assert!(
            gap + Duration::from_millis(2) >= backoff,
            "start {i}: failures {gap:?} apart, backoff {backoff:?} (gaps {gaps:?})"
        );
        assert!(
            gap < backoff + Duration::from_millis(1500),
            "start {i}: failures {gap:?} apart, backoff {backoff:?} (gaps {gaps:?})"
        );
    }
    assert_eq!(worker.stats().failed_spawns, 5, "{:?}", worker.stats());
    assert_no_children("after the failed starts");
    drop_worker(worker, "backoff");
}

/// Kills the current child, waits until the worker sees it dead, and
/// times the `ensure_ready` that replaces it.
fn time_replacement(worker: &mut Worker) -> Duration {
    sigkill(worker.pid().unwrap());
    assert!(wait_until(Duration::from_secs(5), || !worker.is_alive()));
    let started = Instant::now();
    worker.ensure_ready().unwrap();
    started.elapsed()
}

fn wait_spare(worker: &Worker) {
    assert!(
        wait_until(Duration::from_secs(10), || worker.spare_ready()
            == Some(true)),
        "the spare did not start"
    );
}

/// With prewarm, the replacement of a dead child is the spare: a swap
/// (`prewarm_swaps`), faster than a cold spawn measured the same way on a
/// worker without prewarm; the next request works, and the drop leaves
/// neither the child nor the spare.
#[test]
fn prewarmed_spare_replaces_a_dead_child() {
    let _serial = serial();
    let mut cold_worker = Worker::spawn(fixture()).unwrap();
    assert_eq!(cold_worker.spare_ready(), None);
    let mut cold: Vec<Duration> = (0..3).map(|_| time_replacement(&mut cold_worker)).collect();
    assert_eq!(cold_worker.stats().prewarm_swaps, 0);
    assert_usable(&mut cold_worker);
    drop_worker(cold_worker, "cold worker");

    let mut worker =
        Worker::spawn(with_policy(RestartPolicy::default().with_prewarm(true))).unwrap();
    let mut warm = Vec::new();
    for round in 1..=3u64 {
        wait_spare(&worker);
        assert_eq!(support::children().len(), 2, "the child and its spare");
        let dead = worker.pid().unwrap();
        warm.push(time_replacement(&mut worker));
        assert_eq!(worker.stats().prewarm_swaps, round, "{:?}", worker.stats());
        assert_ne!(worker.pid(), Some(dead));
        assert_usable(&mut worker);
    }
    cold.sort();
    warm.sort();
    eprintln!("replacement: cold {cold:?}, prewarmed {warm:?}");
    assert!(
        warm[1] < cold[1],
        "a prewarmed swap ({warm:?}) is no faster than a cold spawn ({cold:?})"
    );
    assert_eq!(
        worker
            .stats()
            .restarts
            .get(&RestartReason::Signalled)
            .copied(),
        Some(3)
    );
    wait_spare(&worker);
    let children = support::children();
    assert_eq!(children.len(), 2, "{children:?}");
    assert!(children.contains(&worker.spawned_pid().unwrap()));
    drop_worker(worker, "prewarm (child and spare)");
}

/// Dropping a worker whose spare is still starting leaves nothing either.
#[test]
fn drop_while_the_spare_starts_leaves_nothing() {
    let _serial = serial();
    let worker = Worker::spawn(with_policy(RestartPolicy::default().with_prewarm(true))).unwrap();
    let starting = worker.spare_ready() == Some(false);
    drop(worker);
    let left = support::children();
    eprintln!("spare still starting at the drop: {starting}; children after it: {left:?}");
    let gone = wait_until(Duration::from_secs(5), || support::children().is_empty());
    assert!(
        left.is_empty(),
        "children {left:?} right after the drop (spare still starting: {starting}; \
         all gone within 5 s: {gone})"
    );
}
