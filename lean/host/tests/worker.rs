//! The `ringworker-lean-worker` binary (built without the Lean runtime)
//! under a real supervisor: its handshake lists the Lean commands with
//! their types; both commands fail with the typed `lean-runtime-missing`
//! command error, a failure of the request and not a crash (no restart, the
//! same process answers the next request); as a warm template it forks and
//! fails the same way; it is not dumpable and a signal leaves no core.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringworker::{Error, ErrorKind, FailureCode, MemoryLimits, RuntimeCode, Worker, WorkerConfig};
use ringworker_lean_host::{
    ATTEMPT_PROOFS, AttemptProofs, AttemptProofsRequest, CoreDumpState, CoreDumps, DECLS, Decls,
    DeclsRequest, ProofCandidate, RUNTIME_MISSING,
};

const BIN: &str = env!("CARGO_BIN_EXE_ringworker-lean-worker");

const MESSAGE: &str = "Lean runtime not built into this worker (build ringworker-lean-runtime with --features runtime where `lean` is on PATH)";

fn config() -> WorkerConfig {
    WorkerConfig::new(BIN).with_startup_timeout(Duration::from_secs(10))
}

fn proofs() -> AttemptProofsRequest {
    AttemptProofsRequest {
        candidates: vec![ProofCandidate {
            id: 1,
            goal: "∀ n : Nat, n + 0 = n".into(),
            proof: "by simp".into(),
        }],
        max_heartbeats: 200,
        timeout_ms: 1000,
    }
}

fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    condition()
}

/// `err` is the typed command failure `lean-runtime-missing` with no rows.
fn assert_runtime_missing(err: &Error) {
    match err {
        Error::Worker {
            code,
            message,
            rows_delivered,
        } => {
            assert_eq!(*code, FailureCode::Command(RUNTIME_MISSING.into()));
            assert_eq!(message, MESSAGE);
            assert_eq!(*rows_delivered, 0);
        }
        other => panic!("expected the command failure {RUNTIME_MISSING}, got {other:?}"),
    }
    assert_eq!(
        err.kind(),
        ErrorKind::Worker,
        "a command failure, not a crash"
    );
}

/// Both commands, twice each, by contract and by name, on the same process.
fn assert_commands_fail(worker: &mut Worker) {
    let pid = worker.pid().unwrap();
    let restarts = worker.stats().restarts.clone();
    for _ in 0..2 {
        let mut rows = 0;
        let err = worker
            .run_typed::<Decls>(&DeclsRequest::WHOLE, |_, _| rows += 1)
            .unwrap_err();
        assert_runtime_missing(&err);
        let err = worker
            .run_typed::<AttemptProofs>(&proofs(), |_, _| rows += 1)
            .unwrap_err();
        assert_runtime_missing(&err);
        assert_eq!(rows, 0);
        let by_name = worker
            .call::<_, serde_json::Value>(
                DECLS,
                &serde_json::json!({"shard_index": 0, "shard_count": 1}),
            )
            .unwrap_err();
        assert_runtime_missing(&by_name);
    }
    assert_eq!(worker.pid(), Some(pid), "the same process answered");
    assert!(worker.is_alive());
    assert_eq!(worker.stats().restarts, restarts, "no restart");
}

#[test]
fn the_handshake_lists_the_lean_commands_with_their_types() {
    let worker = Worker::spawn(config()).unwrap();
    let hello = worker.hello().expect("handshaken");
    assert_eq!(hello.worker, "ringworker-lean-worker");
    assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
    let find = |name: &str| {
        hello
            .commands
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", hello.commands))
    };
    let decls = find(DECLS);
    assert!(decls.request.ends_with("::DeclsRequest"), "{decls:?}");
    assert!(decls.summary.ends_with("::DeclsSummary"), "{decls:?}");
    assert!(
        decls.row.as_deref().unwrap().ends_with("::DeclRow"),
        "{decls:?}"
    );
    let proofs = find(ATTEMPT_PROOFS);
    assert!(
        proofs.request.ends_with("::AttemptProofsRequest"),
        "{proofs:?}"
    );
    assert!(proofs.summary.ends_with("::ProofSummary"), "{proofs:?}");
    assert!(
        proofs.row.as_deref().unwrap().ends_with("::ProofResult"),
        "{proofs:?}"
    );
    assert!(!decls.description.is_empty() && !proofs.description.is_empty());
    let names: Vec<&str> = hello.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [DECLS, ATTEMPT_PROOFS, "core-dumps"]);
}

#[test]
fn both_commands_fail_with_lean_runtime_missing_and_the_worker_stays() {
    let mut worker = Worker::spawn(config()).unwrap();
    assert_commands_fail(&mut worker);
    // An invalid shard is the caller's mistake, caught before the backend.
    let err = worker
        .run_typed::<Decls>(
            &DeclsRequest {
                shard_index: 2,
                shard_count: 2,
            },
            |_, _| {},
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Worker {
                code: FailureCode::Runtime(RuntimeCode::BadRequest),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(worker.stats().spawns, 1);
    assert_eq!(worker.stats().failed_requests, 7);
}

#[test]
fn a_warm_template_forks_workers_that_fail_the_same_way() {
    let mut worker = Worker::spawn(config().with_template(true)).unwrap();
    let template = worker.template_pid().expect("a template runs");
    let pid = worker.pid().unwrap();
    assert_ne!(pid, template);
    assert_commands_fail(&mut worker);
    // A restart is another fork of the same template.
    let target = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(target, rustix::process::Signal::KILL).unwrap();
    assert!(wait_until(Duration::from_secs(5), || !worker.is_alive()));
    worker.ensure_ready().unwrap();
    assert_ne!(worker.pid(), Some(pid));
    assert_eq!(worker.template_pid(), Some(template));
    assert_commands_fail(&mut worker);
    let stats = worker.stats();
    assert_eq!(stats.template_forks, 2, "{stats:?}");
    assert_eq!(stats.template_respawns, 0, "{stats:?}");
}

/// `Max core file size` of `pid`: (soft, hard).
fn core_limit_line(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let mut fields = line["Max core file size".len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

fn cores_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("core"))
        })
        .collect()
}

/// Marks the re-executed test binary that plays a process allowed to dump
/// core (the control of the core-dump test).
const DUMPER: &str = "RINGWORKER_LEAN_HOST_DUMPER";
const CORE_TEST: &str = "a_worker_is_not_dumpable_and_leaves_no_core";

/// The supervisor is told to allow core dumps (`with_core_dumps(true)`:
/// it sets no `RLIMIT_CORE` of its own) and this process's soft limit is
/// raised, so only the worker's own `suppress_core_dumps` stands between a
/// signal and a core. A control process in the same directory with the
/// same limit does dump core, when the host's `core_pattern` writes cores
/// into the working directory (checked; with a pipe or an absolute
/// pattern only the flag and the limit are checked).
#[test]
fn a_worker_is_not_dumpable_and_leaves_no_core() {
    use rustix::process::{Resource, Rlimit, Signal};

    if std::env::var_os(DUMPER).is_some() {
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let saved = rustix::process::getrlimit(Resource::Core);
    let raised = Rlimit {
        current: saved.maximum,
        maximum: saved.maximum,
    };
    rustix::process::setrlimit(Resource::Core, raised).unwrap();
    struct Restore(Rlimit);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = rustix::process::setrlimit(Resource::Core, self.0);
        }
    }
    let _restore = Restore(saved);
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let files_in_cwd = !pattern.trim().is_empty()
        && !pattern.starts_with('|')
        && !pattern.starts_with('/')
        && saved.maximum != Some(0);
    let dir = tempfile::tempdir().unwrap();

    let signal = |pid: u32, sig: Signal| {
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    };
    if files_in_cwd {
        let mut control = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CORE_TEST, "--nocapture", "--test-threads=1"])
            .env(DUMPER, "1")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        signal(control.id(), Signal::QUIT);
        let status = control.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(Signal::QUIT.as_raw()), "{status:?}");
        assert!(
            status.core_dumped() && !cores_in(dir.path()).is_empty(),
            "the control process dumps core here ({status:?}, pattern {pattern:?})"
        );
        for core in cores_in(dir.path()) {
            std::fs::remove_file(core).unwrap();
        }
    } else {
        eprintln!(
            "core_pattern {pattern:?} (hard limit {:?}): cores are not files in the \
             working directory; checking the dumpable flag and the limit only",
            saved.maximum
        );
    }

    for template in [false, true] {
        let config = config()
            .with_cwd(dir.path())
            .with_template(template)
            .with_memory(MemoryLimits::default().with_core_dumps(true));
        // Not SIGSEGV from outside: Rust's own SIGSEGV handler (stack
        // overflow detection) swallows the first one that is not a fault.
        // SIGQUIT and SIGABRT take the same core-dump path a real fault
        // does once that handler has stepped aside.
        for sig in [Signal::QUIT, Signal::ABORT] {
            let mut worker = Worker::spawn(config.clone()).unwrap();
            let pid = worker.pid().unwrap();
            let state: CoreDumpState = worker.run_typed::<CoreDumps>(&(), |_, _| {}).unwrap();
            assert_eq!(
                state,
                CoreDumpState {
                    dumpable: false,
                    core_limit: Some(0),
                    pid,
                },
                "template {template}"
            );
            // Seen from outside, too.
            assert_eq!(core_limit_line(pid).0, "0", "template {template}");
            signal(pid, sig);
            assert!(wait_until(Duration::from_secs(10), || !worker.is_alive()));
            // A core is written before the death is reported: none came.
            assert_eq!(
                cores_in(dir.path()),
                Vec::<PathBuf>::new(),
                "template {template}, {sig:?}"
            );
            // The next request runs on a fresh worker, failing as before.
            assert_runtime_missing(
                &worker
                    .run_typed::<Decls>(&DeclsRequest::WHOLE, |_, _| {})
                    .unwrap_err(),
            );
        }
    }
}
