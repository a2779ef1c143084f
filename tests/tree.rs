//! The whole process tree: nothing a worker leaves behind (a grandchild
//! holding its stdout, its ring, a double-forked or `setsid` daemon) can
//! keep a request, a restart or a drop from finishing, and every grandchild
//! dies with its worker: when the worker exits, when the supervisor stops
//! it, when the `Worker` is dropped and when the supervisor process itself
//! exits. Plus the documented limit of the fallback without the shim
//! (`with_contain_tree(false)`), and a child that never reads its control
//! socket.
//!
//! Real children (the fixture worker and its `fault` command's
//! grandchildren); each test runs alone in this binary (its leak check
//! looks at every child of this process) and ends with one: no zombies,
//! only the live worker's spawned process (or nothing after the drop), the
//! grandchild dead.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ringworker::{Error, RequestOptions, RestartReason, Worker};
use ringworker_child::builtins::echo::EchoRequest;
use ringworker_testkit::faults::{After, Fault, FaultRequest, FaultSummary, GrandchildMode};
use ringworker_testkit::harness::{KillOnDrop, is_reexec, reexec_test};

#[path = "support/mod.rs"]
mod support;
#[path = "support/tree_support.rs"]
mod tree_support;

use support::{FaultRows, alive, assert_usable, fixture, wait_until};
use tree_support::{
    Grandchild, assert_dead_within, assert_no_children, assert_only_child, drop_worker, pid_file,
    read_pid_file, serial,
};

/// Rows the grandchild faults write before spawning.
const ROWS: u64 = 10;

/// Bound for "promptly": a request that must end at once.
const PROMPT: Duration = Duration::from_secs(3);

fn grandchild(mode: GrandchildMode, then: After, pid_file: &std::path::Path) -> FaultRequest {
    FaultRequest::new(Fault::Grandchild { mode, then }, ROWS)
        .with_pid_file(pid_file.to_string_lossy().into_owned())
}

/// Runs the grandchild fault; returns the result, how long it took and the
/// grandchild (pinned, killed on drop if a check fails before it is dead).
fn run_grandchild(
    worker: &mut Worker,
    mode: GrandchildMode,
    then: After,
    name: &str,
) -> (Result<FaultSummary, Error>, Duration, Grandchild) {
    let path = pid_file(name);
    let mut rows = FaultRows::default();
    let started = Instant::now();
    let result = worker.stream_with::<_, FaultSummary, _>(
        "fault",
        &grandchild(mode, then, &path),
        &mut rows,
        RequestOptions::default(),
    );
    let took = started.elapsed();
    let pid = read_pid_file(&path);
    assert_eq!(
        rows.count(),
        ROWS,
        "{mode:?}: rows before the fault: {result:?}"
    );
    (result, took, Grandchild::pin(pid))
}

/// A grandchild holding the worker's stdout and stderr and writing to them
/// every 10 ms: the worker's exit ends the request with `ChildExited` at
/// once (the pipes staying open does not matter), the grandchild is dead,
/// the next request works and the drop returns within 3 s.
#[test]
fn stdout_writer_grandchild_does_not_hold_up_exit_or_drop() {
    let _serial = serial();
    let mut worker = Worker::spawn(fixture()).unwrap();
    let (result, took, grandchild) = run_grandchild(
        &mut worker,
        GrandchildMode::StdoutWriter,
        After::Exit { code: 0 },
        "stdout-writer-exit",
    );
    match &result {
        Err(Error::ChildExited {
            code: 0,
            rows_delivered: ROWS,
            ..
        }) => {}
        other => panic!("expected ChildExited {{ code: 0 }}, got {other:?}"),
    }
    assert!(took < PROMPT, "the request took {took:?} to end");
    assert!(
        grandchild.dead_within(Duration::from_secs(1)).is_some(),
        "the stdout writer {} survived its worker's exit",
        grandchild.pid
    );
    assert_only_child(&worker, "after the request");
    assert_usable(&mut worker);
    assert_only_child(&worker, "after the next request");
    let dropped = drop_worker(worker, "stdout writer, exit");
    assert!(dropped < Duration::from_secs(3), "drop took {dropped:?}");
}

/// The same grandchild with the worker staying alive: the drop (which has
/// to stop the tree while the grandchild holds the pipes the output drain
/// reads) returns within 3 s and leaves nothing.
#[test]
fn stdout_writer_grandchild_of_a_live_worker_does_not_hold_up_drop() {
    let _serial = serial();
    let mut worker = Worker::spawn(fixture()).unwrap();
    let (result, _, grandchild) = run_grandchild(
        &mut worker,
        GrandchildMode::StdoutWriter,
        After::Stay,
        "stdout-writer-stay",
    );
    assert_eq!(result.unwrap().rows, ROWS);
    assert!(grandchild.alive(), "the grandchild did not start");
    assert_usable(&mut worker);
    assert_only_child(&worker, "after the requests");
    let dropped = drop_worker(worker, "stdout writer, stay");
    assert!(dropped < Duration::from_secs(3), "drop took {dropped:?}");
    assert!(
        grandchild.dead_within(Duration::from_secs(1)).is_some(),
        "the stdout writer {} survived the drop",
        grandchild.pid
    );
}

/// A grandchild that inherited the ring and keeps appending valid-looking
/// records of a request that does not exist: the worker's exit still ends
/// the request with a typed error within a few seconds, the grandchild
/// dies, and the next request (on a fresh ring) works.
#[test]
fn ring_producer_grandchild_does_not_keep_the_request_alive() {
    let _serial = serial();
    let mut worker = Worker::spawn(fixture()).unwrap();
    let (result, took, grandchild) = run_grandchild(
        &mut worker,
        GrandchildMode::RingProducer,
        After::Exit { code: 0 },
        "ring-producer",
    );
    let err = result.expect_err("the worker exited");
    assert_eq!(err.kind(), ringworker::ErrorKind::Crash, "{err:?}");
    assert!(
        matches!(err, Error::ChildExited { code: 0, .. }),
        "expected ChildExited {{ code: 0 }}: {err:?}"
    );
    assert!(took < Duration::from_secs(5), "the request took {took:?}");
    assert!(
        grandchild.dead_within(Duration::from_secs(1)).is_some(),
        "the ring squatter {} survived its worker",
        grandchild.pid
    );
    assert_only_child(&worker, "after the request");
    assert_usable(&mut worker);
    assert_only_child(&worker, "after the next request");
    drop_worker(worker, "ring producer");
}

/// `then: Stay`: the request succeeds with the grandchild running; the drop
/// kills it within 2 s.
fn grandchild_dies_with_the_drop(mode: GrandchildMode, name: &str) {
    let _serial = serial();
    let mut worker = Worker::spawn(fixture()).unwrap();
    let (result, _, grandchild) = run_grandchild(&mut worker, mode, After::Stay, name);
    assert_eq!(result.unwrap().rows, ROWS);
    assert!(grandchild.alive(), "{mode:?}: the grandchild did not start");
    assert_only_child(&worker, "after the request");
    let (shim, pid) = (worker.spawned_pid().unwrap(), worker.pid().unwrap());
    let dropped = drop_worker(worker, name);
    assert!(dropped < Duration::from_secs(3), "drop took {dropped:?}");
    assert!(
        grandchild.dead_within(Duration::from_secs(2)).is_some(),
        "{mode:?}: grandchild {} alive 2 s after the drop",
        grandchild.pid
    );
    assert!(
        !alive(pid) && !alive(shim),
        "worker {pid} or shim {shim} alive"
    );
}

/// `then: Exit { code: 3 }`: the request returns `ChildExited { code: 3 }`
/// and the grandchild is dead by then (or within 1 s).
fn grandchild_dies_with_the_worker(mode: GrandchildMode, name: &str) {
    let _serial = serial();
    let mut worker = Worker::spawn(fixture()).unwrap();
    let (result, took, grandchild) =
        run_grandchild(&mut worker, mode, After::Exit { code: 3 }, name);
    match &result {
        Err(Error::ChildExited {
            code: 3,
            rows_delivered: ROWS,
            ..
        }) => {}
        other => panic!("{mode:?}: expected ChildExited {{ code: 3 }}, got {other:?}"),
    }
    assert!(took < PROMPT, "{mode:?}: the request took {took:?}");
    assert!(
        grandchild.dead_within(Duration::from_secs(1)).is_some(),
        "{mode:?}: grandchild {} alive 1 s after its worker's exit was reported",
        grandchild.pid
    );
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::Exited),
        Some(&1)
    );
    assert_only_child(&worker, "after the request");
    assert_usable(&mut worker);
    assert_only_child(&worker, "after the next request");
    drop_worker(worker, name);
}

#[test]
fn sleep_grandchild_dies_with_the_drop() {
    grandchild_dies_with_the_drop(GrandchildMode::Sleep, "sleep-stay");
}

#[test]
fn setsid_grandchild_dies_with_the_drop() {
    grandchild_dies_with_the_drop(GrandchildMode::Setsid, "setsid-stay");
}

#[test]
fn double_forked_grandchild_dies_with_the_drop() {
    grandchild_dies_with_the_drop(GrandchildMode::DoubleFork, "double-fork-stay");
}

#[test]
fn sleep_grandchild_dies_with_the_worker() {
    grandchild_dies_with_the_worker(GrandchildMode::Sleep, "sleep-exit");
}

#[test]
fn setsid_grandchild_dies_with_the_worker() {
    grandchild_dies_with_the_worker(GrandchildMode::Setsid, "setsid-exit");
}

#[test]
fn double_forked_grandchild_dies_with_the_worker() {
    grandchild_dies_with_the_worker(GrandchildMode::DoubleFork, "double-fork-exit");
}

/// Marks the re-executed test binary that plays the supervisor of
/// [`grandchildren_die_with_the_supervisor_process`].
const SUB_SUPERVISOR: &str = "RINGWORKER_TREE_SUB_SUPERVISOR";
/// Where the sub-supervisor's grandchild writes its pid.
const SUB_PID_FILE: &str = "RINGWORKER_TREE_PID_FILE";
const SUPERVISOR_EXIT_TEST: &str = "grandchildren_die_with_the_supervisor_process";

/// The supervisor process exits abruptly (`std::process::exit(0)`, no
/// `Worker` drop, no clean-up of any kind) while its worker has a `setsid`
/// grandchild: the shim's parent-death signal takes the whole tree down,
/// the grandchild included, within 3 s.
#[test]
fn grandchildren_die_with_the_supervisor_process() {
    if is_reexec(SUB_SUPERVISOR) {
        be_the_exiting_supervisor();
        return;
    }
    let _serial = serial();
    let path = pid_file("supervisor-exit");
    let sub = reexec_test(SUPERVISOR_EXIT_TEST, SUB_SUPERVISOR)
        .env(SUB_PID_FILE, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    let mut sub = KillOnDrop(sub);
    let stdout = sub.0.stdout.take().unwrap();
    let pids: Option<Vec<u32>> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            // libtest may have printed "test <name> ... " on the same line.
            let (_, pids) = line.split_once("tree-pids ")?;
            Some(
                pids.split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect(),
            )
        });
    let Some(pids) = pids else {
        let _ = sub.0.kill();
        panic!(
            "the sub-supervisor ended without reporting its tree: {:?}",
            sub.0.wait()
        );
    };
    let [grandchild_pid, worker_pid, shim_pid] = pids[..] else {
        panic!("pids {pids:?}");
    };
    let grandchild = Grandchild::pin(grandchild_pid);
    assert_eq!(read_pid_file(&path), grandchild_pid);
    // The sub-supervisor exits right after printing.
    let exited = wait_until(Duration::from_secs(10), || {
        sub.0.try_wait().ok().flatten().is_some()
    });
    assert!(exited, "the sub-supervisor did not exit");
    let gone = Instant::now();
    assert!(
        grandchild.dead_within(Duration::from_secs(3)).is_some(),
        "setsid grandchild {grandchild_pid} alive 3 s after its supervisor exited"
    );
    assert_dead_within(worker_pid, Duration::from_secs(1), "the worker");
    assert_dead_within(shim_pid, Duration::from_secs(1), "the shim");
    eprintln!("tree gone {:?} after the supervisor's exit", gone.elapsed());
    drop(sub);
    assert!(support::zombie_children().is_empty());
    assert_no_children("supervisor exit");
}

/// The sub-supervisor: a worker whose fault leaves a `setsid` grandchild,
/// then an abrupt exit without dropping the worker.
fn be_the_exiting_supervisor() {
    let path = std::env::var(SUB_PID_FILE).expect("the pid file's path");
    let mut worker = Worker::spawn(fixture()).unwrap();
    let request = FaultRequest::new(
        Fault::Grandchild {
            mode: GrandchildMode::Setsid,
            then: After::Stay,
        },
        0,
    )
    .with_pid_file(path.clone());
    let summary: FaultSummary = worker.call("fault", &request).unwrap();
    assert_eq!(summary.rows, 0);
    let grandchild = read_pid_file(std::path::Path::new(&path));
    assert!(alive(grandchild));
    println!(
        "tree-pids {grandchild} {} {}",
        worker.pid().unwrap(),
        worker.spawned_pid().unwrap()
    );
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

/// The documented limit of the fallback without the shim
/// (`with_contain_tree(false)`, also what `contain_tree` degrades to where
/// the kernel lacks `PR_SET_CHILD_SUBREAPER`; see `shm-proto/src/contain.rs`):
/// the worker only leads its own process group, and the supervisor kills
/// that group when it kills the worker. So a plain `Sleep` grandchild (in
/// the worker's group) dies when the supervisor kills the worker (here for a
/// request timeout), but a grandchild that left the group (`setsid`)
/// survives even that, and nothing at all kills the group when the worker
/// exits on its own: a double-forked sleeper (still in the group) survives
/// the worker's exit. The test kills the survivors itself.
#[test]
fn without_the_shim_only_the_process_group_is_killed() {
    let _serial = serial();
    let config = || fixture().with_contain_tree(false);
    let timeout = RequestOptions::default().timeout(Duration::from_millis(300));
    let hang = FaultRequest::new(Fault::Hang, 0);

    // A double-forked grandchild survives the worker's own exit.
    let mut worker = Worker::spawn(config()).unwrap();
    assert_eq!(worker.spawned_pid(), worker.pid(), "no shim");
    let (result, _, orphan) = run_grandchild(
        &mut worker,
        GrandchildMode::DoubleFork,
        After::Exit { code: 0 },
        "fallback-double-fork",
    );
    assert!(
        matches!(result, Err(Error::ChildExited { code: 0, .. })),
        "{result:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        orphan.alive(),
        "the double-forked grandchild died with its worker: the fallback got better, update the docs"
    );
    orphan.kill();
    assert!(orphan.dead_within(Duration::from_secs(2)).is_some());
    assert_only_child(&worker, "after the exit");
    assert_usable(&mut worker);

    // A setsid grandchild survives the supervisor's kill of the worker's group.
    let (result, _, escaped) = run_grandchild(
        &mut worker,
        GrandchildMode::Setsid,
        After::Stay,
        "fallback-setsid",
    );
    assert_eq!(result.unwrap().rows, ROWS);
    let err = worker
        .stream_with::<_, FaultSummary, _>(
            "fault",
            &hang,
            &mut FaultRows::default(),
            timeout.clone(),
        )
        .expect_err("the hang times out");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        escaped.alive(),
        "the setsid grandchild died with its worker's group: the fallback got better, update the docs"
    );
    escaped.kill();
    assert!(escaped.dead_within(Duration::from_secs(2)).is_some());
    assert_only_child(&worker, "after the timeout");

    // A plain grandchild in the worker's group dies with the group.
    let (result, _, member) = run_grandchild(
        &mut worker,
        GrandchildMode::Sleep,
        After::Stay,
        "fallback-sleep",
    );
    assert_eq!(result.unwrap().rows, ROWS);
    assert!(member.alive());
    let err = worker
        .stream_with::<_, FaultSummary, _>("fault", &hang, &mut FaultRows::default(), timeout)
        .expect_err("the hang times out");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        member.dead_within(Duration::from_secs(1)).is_some(),
        "the grandchild {} in the worker's group survived the group kill",
        member.pid
    );
    assert_only_child(&worker, "after the second timeout");
    assert_usable(&mut worker);
    drop_worker(worker, "fallback");
}

/// A child that never reads its control socket (only the first generation:
/// `FIXTURE_DEAF=1`, `FIXTURE_MODE_GENERATIONS=1`) and a request large
/// enough to fill the socket's buffer: the write gives up after the
/// `control_timeout` (500 ms), the child is replaced (`Unresponsive`) and,
/// since it never accepted the request, the request is resent once to the
/// fresh child and succeeds there.
///
/// The argument is 768 KiB, not 1 MiB: control frames are capped at
/// `MAX_FRAME_BYTES` (1 MiB, arguments included), and the socket buffers
/// hold about 200 KiB (`net.core.wmem_default`), so this fills them with
/// room to spare. The ring's records are made large enough for `echo`'s
/// summary (the argument itself).
#[test]
fn deaf_child_gets_replaced_and_the_request_resent() {
    let _serial = serial();
    let config = fixture()
        .with_env("FIXTURE_DEAF", "1")
        .with_env("FIXTURE_MODE_GENERATIONS", "1")
        .with_control_timeout(Duration::from_millis(500))
        // `echo` returns its argument as the summary, which travels in one
        // end-marker record: the record must hold it.
        .with_ring(16 << 20, 1 << 20);
    let mut worker = Worker::spawn(config).unwrap();
    let deaf = worker.pid().unwrap();
    let big = "x".repeat(768 << 10);
    let request = EchoRequest::new(serde_json::Value::String(big));
    let started = Instant::now();
    let echoed: Result<serde_json::Value, Error> = worker.call("echo", &request);
    let took = started.elapsed();
    let echoed = echoed.unwrap_or_else(|err| panic!("the resent request failed: {err:?}"));
    assert_eq!(echoed, request.value);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        took >= Duration::from_millis(400),
        "took {took:?}: the control timeout cannot have passed"
    );
    let stats = worker.stats();
    assert_eq!(stats.resent_requests, 1, "{stats:?}");
    assert_eq!(
        stats.restarts.get(&RestartReason::Unresponsive),
        Some(&1),
        "{stats:?}"
    );
    assert_ne!(worker.pid(), Some(deaf));
    assert!(!alive(deaf), "the deaf child {deaf} lives on");
    assert_only_child(&worker, "after the resent request");
    assert_usable(&mut worker);
    drop_worker(worker, "deaf child");
}

/// A request over the control channel's frame limit (`MAX_FRAME_BYTES`,
/// 1 MiB) cannot be sent at all: it fails at once with a typed error of the
/// caller's (`ErrorKind::Usage`), the healthy child stays, nothing is resent.
#[test]
fn request_over_the_frame_limit_is_refused_without_a_restart() {
    let _serial = serial();
    let mut worker = Worker::spawn(fixture().with_ring(16 << 20, 1 << 20)).unwrap();
    let pid = worker.pid().unwrap();
    let request = EchoRequest::new(serde_json::Value::String("x".repeat(3 << 19)));
    let started = Instant::now();
    let result: Result<serde_json::Value, Error> = worker.call("echo", &request);
    let took = started.elapsed();
    let err = result.expect_err("1.5 MiB of arguments exceed the frame limit");
    let stats = worker.stats().clone();
    eprintln!("oversized request: {took:?}: {err}; {stats:?}");
    assert_eq!(
        err.kind(),
        ringworker::ErrorKind::Usage,
        "{err:?} after {took:?}; stats {stats:?}"
    );
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert_eq!(worker.pid(), Some(pid), "the child was replaced");
    assert_eq!(stats.resent_requests, 0, "{stats:?}");
    assert!(stats.restarts.is_empty(), "{stats:?}");
    assert_only_child(&worker, "after the refused request");
    assert_usable(&mut worker);
    drop_worker(worker, "oversized request");
}
