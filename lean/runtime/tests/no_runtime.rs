//! The worker built without the `runtime` feature (what runs on a machine
//! without Lean): it parses its arguments like the Lean-linked one, answers
//! the handshake with both commands, and fails them with
//! `lean-runtime-missing`. The host crate's tests cover `Unavailable`
//! thoroughly; this checks that this binary is wired to it.
#![cfg(not(feature = "runtime"))]

use std::process::Command;

use ringworker::{Error, FailureCode, Worker, WorkerConfig};
use ringworker_lean_runtime::WorkerArgs;

const WORKER: &str = env!("CARGO_BIN_EXE_ringworker-lean-runtime-worker");

#[test]
fn the_worker_without_the_runtime_answers_and_refuses_typed() {
    // Arguments a Lean-linked worker would take are accepted.
    let args = WorkerArgs::new("/nonexistent/libRingWorker.so").with_imports(["Init"]);
    let mut worker = Worker::spawn(WorkerConfig::new(WORKER).with_args(args.to_args())).unwrap();
    let hello = worker.hello().unwrap();
    assert_eq!(hello.worker, ringworker_lean_runtime::WORKER_NAME);
    let names: Vec<&str> = hello.commands.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"decls"), "{names:?}");
    assert!(names.contains(&"attempt-proofs"), "{names:?}");

    let request = serde_json::json!({ "shard_index": 0, "shard_count": 1 });
    let err = worker
        .call::<_, serde_json::Value>("decls", &request)
        .unwrap_err();
    match &err {
        Error::Worker { code, message, .. } => {
            assert_eq!(
                code,
                &FailureCode::Command(ringworker_lean_host::RUNTIME_MISSING.to_owned())
            );
            assert!(message.contains("--features runtime"), "{message}");
        }
        other => panic!("expected the command's failure, got {other:?}"),
    }
}

#[test]
fn bad_arguments_end_the_worker_before_it_attaches() {
    let out = Command::new(WORKER)
        .args(["--library", "/l.so", "--package", "not-a-c-name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--package \"not-a-c-name\""), "{stderr}");
}
