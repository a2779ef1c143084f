//! Warm templates against real processes: workers forked from a template
//! that ran the fixture's start-up step once (`RINGWORKER_STARTUP_*`, see
//! `ringworker_child::builtins::startup`) are the supervisor's children,
//! restart in a fork's time, are reaped by the watchdog, survive their
//! template, share its memory (PSS), and nothing leaks.
//!
//! The tests run one at a time (a lock): the leak test compares this
//! process's fds and threads, and the timing bounds want the two cores.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringworker::{Error, ErrorKind, RequestOptions, TemplateClass, Worker, WorkerConfig};
use ringworker_child::builtins::startup::{
    ENV_FORK_GUARD_REFUSE_IF, ENV_STARTUP_COUNTER, ENV_STARTUP_FAIL_IF, ENV_STARTUP_MIB,
    ENV_STARTUP_MS, ENV_STARTUP_THREAD, ENV_WORKER_START_COUNTER, ENV_WORKER_START_FAIL_IF,
    StartupState, expected_checksum,
};
use ringworker_testkit::faults::{Fault, FaultRequest, FaultSummary};
use ringworker_testkit::procfs;

#[path = "support/mod.rs"]
mod support;

use support::{FAULT_ROWS, FaultRows, assert_usable, fixture, wait_until};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fixture config in template mode; `case` makes its start-up (and so its
/// template) its own.
fn templated(case: &str, startup_ms: u64, mib: u64) -> WorkerConfig {
    fixture()
        .with_template(true)
        .with_env("RINGWORKER_TEST_CASE", case)
        .with_env(ENV_STARTUP_MS, startup_ms.to_string())
        .with_env(ENV_STARTUP_MIB, mib.to_string())
}

fn scratch(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("ringworker-template-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn counter_lines(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn state(worker: &mut Worker) -> StartupState {
    worker.call("startup_state", &()).unwrap()
}

fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

/// Not our child any more (reaped) and not a zombie.
fn gone(pid: u32) -> bool {
    wait_until(Duration::from_secs(5), || {
        !procfs::children().contains(&pid) && !procfs::zombie_children().contains(&pid)
    })
}

#[test]
fn forked_workers_are_our_children_and_restart_in_a_fork() {
    let _serial = serial();
    let counter = scratch("counter");
    let config = templated("children", 2000, 8).with_env(ENV_STARTUP_COUNTER, &counter);
    let mut worker = Worker::spawn(config).unwrap();
    let template = worker.template_pid().expect("a template runs");
    let pid = worker.pid().unwrap();
    // Contained (the fixture's default): the forked process is the
    // worker's shim, our child; the worker is the shim's child.
    let shim = worker.spawned_pid().unwrap();
    assert_ne!(shim, pid);
    assert_ne!(pid, template);
    let children = procfs::children();
    assert!(
        children.contains(&shim),
        "{shim} is our child: {children:?}"
    );
    assert!(children.contains(&template), "{children:?}");
    assert_eq!(parent_of(pid), Some(shim));
    // Not exec'd: it has the state the template's start-up step built.
    let seen = state(&mut worker);
    assert_eq!(seen.startup_pid, Some(template));
    assert_eq!(seen.pid, pid);
    assert_eq!(seen.mib, 8);
    assert_eq!(seen.checksum, expected_checksum(8));
    assert_eq!(counter_lines(&counter), vec![template], "start-up ran once");

    // SIGKILL: the next one is a fork, far below the 2 s start-up.
    sigkill(pid);
    assert!(wait_until(Duration::from_secs(5), || !worker.is_alive()));
    let old_shim = shim;
    let started = Instant::now();
    worker.ensure_ready().unwrap();
    let restart = started.elapsed();
    eprintln!("kill -> ready through the template: {restart:?}");
    assert!(restart < Duration::from_secs(1), "{restart:?}");
    let second = worker.pid().unwrap();
    assert_ne!(second, pid);
    assert!(gone(old_shim), "the killed worker's shim was reaped");
    assert!(!procfs::alive(pid));
    let shim = worker.spawned_pid().unwrap();
    assert!(procfs::children().contains(&shim));
    assert_eq!(parent_of(second), Some(shim));
    assert_usable(&mut worker);
    let seen = state(&mut worker);
    assert_eq!(seen.startup_pid, Some(template));
    assert_eq!(seen.checksum, expected_checksum(8));
    assert_eq!(counter_lines(&counter), vec![template], "start-up ran once");
    let stats = worker.stats();
    assert_eq!(stats.template_forks, 2, "{stats:?}");
    assert_eq!(stats.template_respawns, 0, "{stats:?}");
    drop(worker);
    assert!(gone(shim) && gone(template));
    assert!(!procfs::alive(second));
    let _ = std::fs::remove_file(counter);
}

#[test]
fn uncontained_forked_workers_are_our_children() {
    let _serial = serial();
    let config = templated("uncontained", 300, 1).with_contain_tree(false);
    let mut worker = Worker::spawn(config).unwrap();
    let template = worker.template_pid().unwrap();
    let pid = worker.pid().unwrap();
    assert_eq!(worker.spawned_pid(), Some(pid), "no shim between us and it");
    assert_eq!(parent_of(pid), Some(std::process::id()));
    assert_eq!(state(&mut worker).startup_pid, Some(template));
    sigkill(pid);
    let started = Instant::now();
    assert_usable(&mut worker);
    eprintln!("kill -> served, uncontained: {:?}", started.elapsed());
    assert!(gone(pid), "reaped by the watchdog");
    assert_eq!(parent_of(worker.pid().unwrap()), Some(std::process::id()));
    assert_eq!(worker.stats().template_forks, 2);
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_worker_dying_in_a_request_is_reaped_with_the_usual_error() {
    let _serial = serial();
    let mut worker = Worker::spawn(templated("death", 100, 1)).unwrap();
    let template = worker.template_pid().unwrap();
    for (fault, check) in [
        (
            Fault::KillSelf,
            (|e: &Error| matches!(e, Error::ChildKilled { signal: 9, .. })) as fn(&Error) -> bool,
        ),
        (Fault::Exit { code: 3 }, |e: &Error| {
            matches!(e, Error::ChildExited { code: 3, .. })
        }),
        // `abort` raises SIGABRT in the forked worker, not in the template.
        (Fault::Abort, |e: &Error| {
            matches!(e, Error::ChildKilled { signal: 6, .. })
        }),
    ] {
        let pid = worker.spawned_pid().unwrap();
        let mut rows = FaultRows::default();
        let result = worker.stream_with::<_, FaultSummary, _>(
            "fault",
            &FaultRequest::new(fault, FAULT_ROWS),
            &mut rows,
            RequestOptions::default(),
        );
        let err = result.unwrap_err();
        assert!(check(&err), "{fault:?}: {err:?}");
        assert_eq!(err.rows_delivered(), Some(FAULT_ROWS));
        assert!(gone(pid), "{fault:?}: the dead worker is reaped");
        assert!(procfs::alive(template), "{fault:?}: the template lives");
        assert_usable(&mut worker);
    }
    assert_eq!(worker.template_pid(), Some(template));
    assert_eq!(worker.stats().template_respawns, 0);
}

#[test]
fn a_killed_template_leaves_its_workers_and_is_respawned() {
    let _serial = serial();
    let counter = scratch("respawn");
    let config = templated("respawn", 200, 1).with_env(ENV_STARTUP_COUNTER, &counter);
    let mut worker = Worker::spawn(config).unwrap();
    let template = worker.template_pid().unwrap();
    let pid = worker.pid().unwrap();
    sigkill(template);
    assert!(gone(template), "the watchdog reaps the template");
    assert_eq!(worker.template_pid(), None);
    // The running worker goes on serving.
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), Some(pid));
    // The next fork starts a new template.
    worker.cycle().unwrap();
    let respawned = worker.template_pid().unwrap();
    assert_ne!(respawned, template);
    assert_ne!(worker.pid(), Some(pid));
    assert_eq!(state(&mut worker).startup_pid, Some(respawned));
    assert_usable(&mut worker);
    let stats = worker.stats();
    assert_eq!(stats.template_respawns, 1, "{stats:?}");
    assert_eq!(stats.template_forks, 2, "{stats:?}");
    assert_eq!(counter_lines(&counter), vec![template, respawned]);
    drop(worker);
    let _ = std::fs::remove_file(counter);
}

/// A template that dies with a fork request unread in its socket makes our
/// read fail with `ECONNRESET`, not end-of-file (a template SIGKILLed
/// moments before a fork, not yet reaped, so it still looked alive). That
/// is a dead template like any other: the fork goes to a new one (it used
/// to fail the start with a `Protocol` error). Made certain here by
/// stopping the template so it cannot read the request, and killing it
/// while the fork waits for the answer.
#[test]
fn a_template_dying_with_the_fork_request_unread_is_replaced() {
    let _serial = serial();
    let mut worker = Worker::spawn(templated("reset-on-fork", 0, 0)).unwrap();
    for round in 1..=3 {
        let template = worker.template_pid().unwrap();
        let pid = rustix::process::Pid::from_raw(template as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            sigkill(template);
        });
        worker.cycle().unwrap();
        killer.join().unwrap();
        assert_ne!(worker.template_pid(), Some(template));
        assert_usable(&mut worker);
        assert_eq!(
            worker.stats().template_respawns,
            round,
            "{:?}",
            worker.stats()
        );
    }
}

#[test]
fn a_template_whose_start_up_fails_trips_the_restart_cap() {
    let _serial = serial();
    let fail = scratch("fail");
    let policy = ringworker::RestartPolicy::default()
        .with_restart_limit(2, Duration::from_secs(60))
        .with_spawn_backoff(Duration::from_millis(1), Duration::from_millis(1));
    let config = templated("fail", 50, 1)
        .with_env(ENV_STARTUP_FAIL_IF, &fail)
        .with_restart_policy(policy);

    // Failing from the start: a typed error from `spawn`.
    std::fs::write(&fail, b"").unwrap();
    let err = Worker::spawn(config.clone()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Template {
                class: TemplateClass::StartupFailed,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Startup);

    // Failing after a good start: each request is one failed start-up,
    // until the cap.
    std::fs::remove_file(&fail).unwrap();
    let mut worker = Worker::spawn(config).unwrap();
    std::fs::write(&fail, b"").unwrap();
    sigkill(worker.template_pid().unwrap());
    sigkill(worker.pid().unwrap());
    assert!(wait_until(Duration::from_secs(5), || !worker.is_alive()));
    let mut template_errors = 0;
    let mut limited = None;
    for _ in 0..10 {
        match worker.call::<_, serde_json::Value>("startup_state", &()) {
            Err(Error::Template {
                class: TemplateClass::StartupFailed,
                reason,
                ..
            }) => {
                assert!(reason.contains("exists"), "{reason}");
                template_errors += 1;
            }
            Err(err @ Error::RestartLimit { .. }) => {
                limited = Some(err);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let limited = limited.expect("the restart cap trips");
    assert_eq!(limited.kind(), ErrorKind::Unavailable);
    assert!(template_errors >= 1);
    assert!(worker.stats().restart_limited >= 1);
    drop(worker);
    let _ = std::fs::remove_file(fail);
}

#[test]
fn a_multi_threaded_template_is_refused() {
    let _serial = serial();
    let config = templated("threads", 0, 0).with_env(ENV_STARTUP_THREAD, "1");
    let err = Worker::spawn(config).unwrap_err();
    match &err {
        Error::Template {
            class: TemplateClass::MultiThreaded { threads },
            ..
        } => assert!(*threads >= 2, "{err:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Startup);
    // The refused template went with the worker.
    assert!(wait_until(Duration::from_secs(5), || procfs::children().is_empty()));
}

/// `ChildRuntime::worker_start` runs once in every worker process: in each
/// forked worker after the fork, in an exec'd worker after the start-up
/// step; never in the template (whose memory every fork would inherit: a
/// forked worker would then report the template's pid).
#[test]
fn the_worker_start_hook_runs_once_per_worker_and_never_in_the_template() {
    let _serial = serial();
    let started = scratch("wstart-startup");
    let counter = scratch("wstart");
    let config = templated("wstart", 0, 1)
        .with_env(ENV_STARTUP_COUNTER, &started)
        .with_env(ENV_WORKER_START_COUNTER, &counter);
    let mut first = Worker::spawn(config.clone()).unwrap();
    let template = first.template_pid().unwrap();
    let one = first.pid().unwrap();
    let seen = state(&mut first);
    assert_eq!(seen.startup_pid, Some(template));
    assert_eq!(seen.worker_start_pid, Some(one), "ran in the worker itself");
    let mut second = Worker::spawn(config).unwrap();
    assert_eq!(second.template_pid(), Some(template), "one template");
    let two = second.pid().unwrap();
    assert_eq!(state(&mut second).worker_start_pid, Some(two));
    // A restart is a fork: the hook runs in the new worker too.
    sigkill(one);
    assert!(wait_until(Duration::from_secs(5), || !first.is_alive()));
    first.ensure_ready().unwrap();
    let three = first.pid().unwrap();
    assert_eq!(state(&mut first).worker_start_pid, Some(three));
    assert_eq!(counter_lines(&counter), vec![one, two, three]);
    assert!(!counter_lines(&counter).contains(&template));
    assert_eq!(counter_lines(&started), vec![template], "start-up ran once");
    assert_usable(&mut first);
    drop((first, second));

    // Exec'd: once, in the worker, which also ran the start-up step.
    let counter_exec = scratch("wstart-exec");
    let started_exec = scratch("wstart-exec-startup");
    let mut exec = Worker::spawn(
        fixture()
            .with_env(ENV_STARTUP_COUNTER, &started_exec)
            .with_env(ENV_WORKER_START_COUNTER, &counter_exec),
    )
    .unwrap();
    assert_eq!(exec.template_pid(), None);
    let pid = exec.pid().unwrap();
    let seen = state(&mut exec);
    assert_eq!(seen.startup_pid, Some(pid));
    assert_eq!(seen.worker_start_pid, Some(pid));
    assert_eq!(counter_lines(&counter_exec), vec![pid]);
    assert_eq!(counter_lines(&started_exec), vec![pid]);
    // Without the hook declared, nothing reports one.
    drop(exec);
    let mut plain = Worker::spawn(templated("wstart-none", 0, 1)).unwrap();
    assert_eq!(state(&mut plain).worker_start_pid, None);
    for path in [started, counter, counter_exec, started_exec] {
        let _ = std::fs::remove_file(path);
    }
}

/// A fork guard that allows forks changes nothing; one that refuses makes
/// the start fail with `Error::Template { class: ForkGuard }` naming its
/// reason, the template stays (no respawn), and forks work again once the
/// guard allows them.
#[test]
fn a_refusing_fork_guard_fails_the_start_with_its_reason() {
    let _serial = serial();
    let refuse = scratch("guard");
    let config = templated("guard", 0, 1).with_env(ENV_FORK_GUARD_REFUSE_IF, &refuse);
    // Allowing: an ordinary templated worker.
    let mut worker = Worker::spawn(config.clone()).unwrap();
    let template = worker.template_pid().unwrap();
    assert_eq!(state(&mut worker).startup_pid, Some(template));
    assert_usable(&mut worker);

    std::fs::write(&refuse, b"").unwrap();
    let check = |err: &Error| {
        match err {
            Error::Template {
                class: TemplateClass::ForkGuard,
                reason,
                ..
            } => assert!(
                reason.contains(&*refuse.to_string_lossy()) && reason.contains("exists"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(err.kind(), ErrorKind::Startup);
        assert!(
            err.to_string().contains("fork guard"),
            "the message names the guard: {err}"
        );
    };
    let err = Worker::spawn(config.clone()).unwrap_err();
    check(&err);
    sigkill(worker.pid().unwrap());
    assert!(wait_until(Duration::from_secs(5), || !worker.is_alive()));
    let err = worker.ensure_ready().unwrap_err();
    check(&err);
    assert!(procfs::alive(template), "the refusing template stays");
    assert_eq!(worker.template_pid(), Some(template));

    std::fs::remove_file(&refuse).unwrap();
    worker.ensure_ready().unwrap();
    assert_eq!(state(&mut worker).startup_pid, Some(template));
    assert_usable(&mut worker);
    let stats = worker.stats();
    assert_eq!(stats.template_respawns, 0, "{stats:?}");
    assert_eq!(stats.template_forks, 2, "{stats:?}");
}

/// A worker-start step that fails is a failed start-up of that worker: the
/// same `Error::Handshake` (kind `Startup`) as an exec'd worker whose
/// start-up step failed, exec'd or forked; a template stays and forks
/// again once the step succeeds.
#[test]
fn a_failing_worker_start_fails_the_start_like_a_start_up_failure() {
    let _serial = serial();
    let fail = scratch("wstart-fail");
    std::fs::write(&fail, b"").unwrap();
    let startup = Worker::spawn(fixture().with_env(ENV_STARTUP_FAIL_IF, &fail)).unwrap_err();
    assert!(matches!(startup, Error::Handshake { .. }), "{startup:?}");
    let check = |err: &Error| {
        match err {
            Error::Handshake { reason, .. } => assert!(
                reason.contains("worker start failed") && reason.contains("exists"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(err.kind(), startup.kind());
    };
    let exec = Worker::spawn(fixture().with_env(ENV_WORKER_START_FAIL_IF, &fail)).unwrap_err();
    check(&exec);

    std::fs::remove_file(&fail).unwrap();
    let config = templated("wstart-fail", 0, 1).with_env(ENV_WORKER_START_FAIL_IF, &fail);
    let mut worker = Worker::spawn(config).unwrap();
    let template = worker.template_pid().unwrap();
    std::fs::write(&fail, b"").unwrap();
    sigkill(worker.pid().unwrap());
    assert!(wait_until(Duration::from_secs(5), || !worker.is_alive()));
    check(&worker.ensure_ready().unwrap_err());
    assert!(procfs::alive(template));
    std::fs::remove_file(&fail).unwrap();
    worker.ensure_ready().unwrap();
    assert_eq!(state(&mut worker).startup_pid, Some(template));
    assert_eq!(worker.stats().template_respawns, 0);
    assert_usable(&mut worker);
}

#[test]
fn four_forked_workers_share_the_template_memory() {
    let _serial = serial();
    const MIB: u64 = 64;
    let config = templated("pss", 0, MIB);
    let mut workers: Vec<Worker> = (0..4)
        .map(|_| Worker::spawn(config.clone()).unwrap())
        .collect();
    let template = workers[0].template_pid().unwrap();
    for worker in &mut workers {
        assert_eq!(worker.template_pid(), Some(template), "one template");
        // Reads every page of the state.
        let seen = state(worker);
        assert_eq!(seen.startup_pid, Some(template));
        assert_eq!(seen.checksum, expected_checksum(MIB));
    }
    let pss = |pid: u32| procfs::pss_kib(pid).expect("smaps_rollup") << 10;
    let workers_pss: Vec<u64> = workers.iter().map(|w| pss(w.pid().unwrap())).collect();
    // The shims (when contained) count too: every process that maps a page.
    let shims_pss: Vec<u64> = workers
        .iter()
        .filter(|w| w.spawned_pid() != w.pid())
        .map(|w| pss(w.spawned_pid().unwrap()))
        .collect();
    let template_pss = pss(template);
    let total = workers_pss.iter().sum::<u64>() + shims_pss.iter().sum::<u64>() + template_pss;
    let mib = |v: &[u64]| v.iter().map(|b| b >> 20).collect::<Vec<_>>();
    eprintln!(
        "PSS: workers {:?} MiB, shims {:?} MiB, template {} MiB, total {} MiB (state {MIB} MiB)",
        mib(&workers_pss),
        mib(&shims_pss),
        template_pss >> 20,
        total >> 20
    );
    assert!(total < 2 * (MIB << 20), "total PSS {} MiB", total >> 20);
}

#[test]
fn memory_limits_count_what_a_forked_worker_adds_to_the_template() {
    let _serial = serial();
    let limits = ringworker::MemoryLimits::default()
        .with_hard_rss(Some(32 << 20))
        .with_sample_interval(Duration::from_millis(20));
    let mut worker = Worker::spawn(templated("limits", 0, 64).with_memory(limits)).unwrap();
    // 64 MiB of the template's state is mapped (RssAnon counts it), under
    // a 32 MiB limit: not its own, so not limited.
    assert_eq!(state(&mut worker).checksum, expected_checksum(64));
    assert_usable(&mut worker);
    let small = FaultRequest::new(
        Fault::Allocate {
            mib: 8,
            hold_ms: 200,
        },
        0,
    );
    let summary: Result<FaultSummary, Error> = worker.call("fault", &small);
    assert!(summary.is_ok(), "{summary:?}");
    let big = FaultRequest::new(
        Fault::Allocate {
            mib: 64,
            hold_ms: 2000,
        },
        0,
    );
    let err = worker.call::<_, FaultSummary>("fault", &big).unwrap_err();
    match &err {
        Error::MemoryLimit { sample, limit, .. } => {
            assert_eq!(*limit, 32 << 20);
            assert!(sample.inherited >= 64 << 20, "{sample:?}");
            assert!(sample.limited() > 32 << 20, "{sample:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_usable(&mut worker);
}

#[test]
fn nothing_leaks_after_drop() {
    let _serial = serial();
    // The process-wide threads (watchdog, spawner) exist before the baseline.
    drop(Worker::spawn(templated("leaks-warmup", 0, 0)).unwrap());
    assert!(wait_until(Duration::from_secs(5), || procfs::children().is_empty()));
    let fds = procfs::open_fds();
    let threads = procfs::threads();
    {
        let mut worker = Worker::spawn(templated("leaks", 50, 1)).unwrap();
        let mut rows = FaultRows::default();
        let _ = worker.stream_with::<_, FaultSummary, _>(
            "fault",
            &FaultRequest::new(Fault::KillSelf, FAULT_ROWS),
            &mut rows,
            RequestOptions::default(),
        );
        assert_usable(&mut worker);
        sigkill(worker.template_pid().unwrap());
        worker.cycle().unwrap();
        assert_usable(&mut worker);
        // A second worker on the same template.
        let mut other = Worker::spawn(templated("leaks", 50, 1)).unwrap();
        assert_eq!(other.template_pid(), worker.template_pid());
        assert_usable(&mut other);
    }
    let clean = wait_until(Duration::from_secs(5), || {
        procfs::children().is_empty() && procfs::open_fds() == fds && procfs::threads() == threads
    });
    assert!(
        clean,
        "children {:?}, fds now {:?} (before {fds:?}), threads {} (before {threads})",
        procfs::children(),
        procfs::open_fds(),
        procfs::threads()
    );
}

/// Marks the re-executed test binary that plays the supervisor of
/// [`template_and_forked_workers_die_with_the_supervisor_process`].
const SUB_SUPERVISOR: &str = "RINGWORKER_TEMPLATE_SUB_SUPERVISOR";
const SUPERVISOR_EXIT_TEST: &str = "template_and_forked_workers_die_with_the_supervisor_process";

/// The supervisor process exits abruptly (no drop): its template, a
/// contained forked worker (shim and worker) and an uncontained one all die
/// through their parent-death signals (with `CLONE_PARENT` the forked
/// processes' parent is the supervisor's spawner thread).
#[test]
fn template_and_forked_workers_die_with_the_supervisor_process() {
    use ringworker_testkit::harness::{KillOnDrop, is_reexec, reexec_test};
    use std::io::BufRead;

    if is_reexec(SUB_SUPERVISOR) {
        let mut contained = Worker::spawn(templated("sub-exit", 0, 1)).unwrap();
        let mut uncontained =
            Worker::spawn(templated("sub-exit", 0, 1).with_contain_tree(false)).unwrap();
        assert_usable(&mut contained);
        assert_usable(&mut uncontained);
        println!(
            "template-pids {} {} {} {}",
            contained.template_pid().unwrap(),
            contained.spawned_pid().unwrap(),
            contained.pid().unwrap(),
            uncontained.pid().unwrap()
        );
        std::process::exit(0);
    }
    let _serial = serial();
    let sub = reexec_test(SUPERVISOR_EXIT_TEST, SUB_SUPERVISOR)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    let mut sub = KillOnDrop(sub);
    let stdout = sub.0.stdout.take().unwrap();
    let pids: Vec<u32> = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, pids) = line.split_once("template-pids ")?;
            Some(
                pids.split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect(),
            )
        })
        .expect("the sub-supervisor reports its processes");
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert!(wait_until(Duration::from_secs(10), || sub
        .0
        .try_wait()
        .ok()
        .flatten()
        .is_some()));
    for (pid, what) in pids
        .iter()
        .zip(["template", "shim", "worker", "uncontained worker"])
    {
        assert!(
            wait_until(Duration::from_secs(3), || !procfs::alive(*pid)),
            "the {what} ({pid}) outlived its supervisor by 3 s"
        );
    }
}
