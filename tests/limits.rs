//! Memory limits against real children: the hard `RssAnon` limit kills a
//! child that allocates past it during a request (`Error::MemoryLimit`,
//! with the sample that tripped it), the shared ring never counts, the
//! soft ceiling cycles the child before the next request, and the kernel
//! caps (`RLIMIT_DATA`, `RLIMIT_CORE`) are set in the worker itself and make
//! its own allocation fail, not the machine's.
//!
//! Not covered: `/proc` being unavailable (samples counted as
//! `rss_unavailable`, never a breach) cannot be simulated from a test
//! without a mount namespace; the supervisor's unit tests cover the reader.
//!
//! Each test runs alone in this binary and ends with the leak check.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use ringworker::{Error, ErrorKind, MemoryLimits, RestartReason, Worker};
use ringworker_testkit::faults::{Fault, FaultRequest, FaultSummary};
use ringworker_testkit::rows::{Sizes, SyntheticRequest};

#[path = "support/mod.rs"]
mod support;
#[path = "support/tree_support.rs"]
mod tree_support;

use support::{FaultRows, alive, assert_usable, fixture};
use tree_support::{assert_only_child, drop_worker, serial};

const MIB: u64 = 1 << 20;

fn allocate(mib: u64, hold_ms: u64) -> FaultRequest {
    FaultRequest::new(Fault::Allocate { mib, hold_ms }, 10)
}

/// The line of `/proc/<pid>/limits` for `name` ("Max data size", ...):
/// soft and hard limit as written there ("unlimited" or a number).
fn limit_line(pid: &str, name: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} in /proc/{pid}/limits:\n{limits}"));
    let mut fields = line[name.len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

/// 200 MiB touched against a 64 MiB hard limit sampled every 50 ms: the
/// watchdog kills the child within about a second, the error carries the
/// worker's own sample (not the shim's), the restart is `MemoryLimit`, and
/// the next request works on a fresh child.
#[test]
fn hard_limit_kills_the_child_during_the_request() {
    let _serial = serial();
    let limit = 64 * MIB;
    let config = fixture().with_memory(
        MemoryLimits::default()
            .with_hard_rss(Some(limit))
            .with_sample_interval(Duration::from_millis(50)),
    );
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid().unwrap();
    assert_ne!(
        Some(pid),
        worker.spawned_pid(),
        "the worker runs under its shim"
    );
    let mut rows = FaultRows::default();
    let started = Instant::now();
    let result: Result<FaultSummary, Error> =
        worker.stream("fault", &allocate(200, 3000), &mut rows);
    let took = started.elapsed();
    eprintln!("hard limit: {took:?}: {result:?}");
    let Err(Error::MemoryLimit {
        sample,
        limit: reported,
        rows_delivered,
    }) = &result
    else {
        panic!("expected MemoryLimit, got {result:?}");
    };
    assert!(
        took < Duration::from_millis(2500),
        "MemoryLimit after {took:?} (the allocation holds for 3 s)"
    );
    assert_eq!(*reported, limit);
    assert!(sample.rss_anon > limit, "{sample:?}");
    assert_eq!(sample.pid, pid, "sampled the worker itself");
    assert_eq!(*rows_delivered, 10);
    assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Resource);
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::MemoryLimit),
        Some(&1),
        "{:?}",
        worker.stats()
    );
    assert!(!alive(pid), "the child over its limit still runs");
    assert_only_child(&worker, "after the kill");
    assert_usable(&mut worker);
    assert_ne!(worker.pid(), Some(pid));
    drop_worker(worker, "hard limit");
}

/// The ring is shared memory (`RssShmem`): a child that touches every page
/// of its 64 MiB ring, over and over, is nowhere near a 32 MiB limit on
/// anonymous memory, and the samples are counted.
#[test]
fn the_ring_does_not_count() {
    let _serial = serial();
    let config = fixture().with_ring(64 << 20, 256 << 10).with_memory(
        MemoryLimits::default()
            .with_hard_rss(Some(32 * MIB))
            .with_sample_interval(Duration::from_millis(10)),
    );
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid().unwrap();
    // About 5 ring's worth: 7000 rows of 32..64 KiB.
    let request = SyntheticRequest::new(
        7000,
        Sizes::Uniform {
            min: 32 << 10,
            max: 64 << 10,
        },
    )
    .with_seed(5);
    let summary = support::stream_verified(&mut worker, &request)
        .unwrap_or_else(|err| panic!("the ring counted against the limit: {err:?}"));
    assert!(
        summary.bytes > 4 * (64 << 20),
        "only {} bytes: the ring was not filled many times over",
        summary.bytes
    );
    assert_eq!(worker.pid(), Some(pid));
    assert!(worker.stats().restarts.is_empty(), "{:?}", worker.stats());
    let live = worker.stats().rss_samples;
    // The live child's samples are counted at the end of each request; the
    // rest when it is retired.
    worker.cycle().unwrap();
    let after_cycle = worker.stats().rss_samples;
    assert!(
        live > 0,
        "stats().rss_samples is {live} after a request sampled every 10 ms \
         ({after_cycle} once the child was cycled)"
    );
    assert_only_child(&worker, "after the request");
    drop_worker(worker, "ring");
}

/// The soft ceiling does not end the request that crossed it: 150 MiB held
/// for 400 ms against a 64 MiB soft ceiling succeeds, and the child is
/// cycled before the next request (`MemorySoft`, planned).
#[test]
fn soft_ceiling_cycles_the_child_before_the_next_request() {
    let _serial = serial();
    let config = fixture().with_memory(
        MemoryLimits::default()
            .with_soft_rss(Some(64 * MIB))
            .with_sample_interval(Duration::from_millis(50)),
    );
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid().unwrap();
    let summary: FaultSummary = worker
        .stream("fault", &allocate(150, 400), &mut FaultRows::default())
        .unwrap_or_else(|err| panic!("the soft ceiling failed the request: {err:?}"));
    assert_eq!(summary.rows, 10);
    assert_eq!(worker.pid(), Some(pid));
    assert_usable(&mut worker);
    assert_ne!(
        worker.pid(),
        Some(pid),
        "the next request ran on the same child"
    );
    assert!(!alive(pid));
    let stats = worker.stats();
    assert_eq!(
        stats.restarts.get(&RestartReason::MemorySoft),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(stats.total_restarts(), 1, "{stats:?}");
    assert_only_child(&worker, "after the cycle");
    drop_worker(worker, "soft ceiling");
}

/// `RLIMIT_DATA` is set in the worker (visible in its `/proc/<pid>/limits`),
/// so a 1 GiB allocation against a 256 MiB cap fails in the child (Rust
/// aborts on allocation failure): a typed crash of that child, the next
/// request works. Core dumps are off in the worker by default
/// (`RLIMIT_CORE` 0) and inherited from the supervisor with
/// `with_core_dumps(true)`.
#[test]
fn kernel_caps_are_set_in_the_worker() {
    let _serial = serial();
    let cap = 256 * MIB;
    let config = fixture().with_memory(MemoryLimits::default().with_data_limit(Some(cap)));
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid().unwrap().to_string();
    assert_eq!(
        limit_line(&pid, "Max data size"),
        (cap.to_string(), cap.to_string())
    );
    assert_eq!(
        limit_line(&pid, "Max core file size"),
        ("0".to_owned(), "0".to_owned())
    );
    let started = Instant::now();
    let result: Result<FaultSummary, Error> =
        worker.stream("fault", &allocate(1024, 100), &mut FaultRows::default());
    let took = started.elapsed();
    let err = result.expect_err("a 1 GiB allocation under a 256 MiB RLIMIT_DATA");
    assert_eq!(err.kind(), ErrorKind::Crash, "{err:?}");
    // Rust's allocation-failure handler aborts.
    assert!(
        matches!(err, Error::ChildKilled { signal: 6, .. }),
        "{err:?}"
    );
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::Signalled),
        Some(&1)
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("allocation failure: {err}");
    assert_only_child(&worker, "after the crash");
    assert_usable(&mut worker);
    drop_worker(worker, "data limit");

    let inherited = limit_line("self", "Max core file size");
    let worker =
        Worker::spawn(fixture().with_memory(MemoryLimits::default().with_core_dumps(true)))
            .unwrap();
    let pid = worker.pid().unwrap().to_string();
    assert_eq!(limit_line(&pid, "Max core file size"), inherited);
    assert_eq!(
        limit_line(&pid, "Max data size"),
        limit_line("self", "Max data size"),
        "no data limit asked for: inherited"
    );
    assert_only_child(&worker, "core dumps on");
    drop_worker(worker, "core dumps");
}
