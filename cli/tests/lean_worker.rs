//! `ringworker run` and `ringworker doctor` against the
//! `ringworker-lean-worker` binary of `ringworker-lean-host`, built without
//! the Lean runtime: the run fails with the child-failure status (5) and
//! one line naming `lean-runtime-missing`; doctor lists the Lean commands.
//!
//! That binary belongs to another package, so cargo does not build it for
//! this one's tests: the test builds it first (`cargo build -p
//! ringworker-lean-host --bin ringworker-lean-worker`, into the target
//! directory and profile of the `ringworker` binary; a no-op when it is
//! fresh, as after `cargo test --workspace`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

mod support;
use support::{BIN, ringworker, stderr};

/// The `ringworker-lean-worker` binary next to `ringworker`, built fresh.
fn lean_worker() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = Path::new(BIN).parent().expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("the target directory");
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "ringworker-lean-host",
                "--bin",
                "ringworker-lean-worker",
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null());
        match profile {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        let status = cargo.status().expect("run cargo");
        assert!(
            status.success(),
            "building ringworker-lean-worker: {status}"
        );
        let path = profile_dir.join("ringworker-lean-worker");
        assert!(path.is_file(), "{} was built", path.display());
        path
    })
}

#[test]
fn run_fails_with_the_child_status_and_names_lean_runtime_missing() {
    let child = lean_worker().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for command in ["decls", "attempt-proofs"] {
        let request = match command {
            "decls" => r#"{"shard_index":0,"shard_count":1}"#,
            _ => {
                r#"{"candidates":[{"id":1,"goal":"True","proof":"trivial"}],"max_heartbeats":200,"timeout_ms":1000}"#
            }
        };
        let out = ringworker(
            &["run", "--child", child, command, "--request", request],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(5), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("ringworker: "), "{err}");
        assert!(err.contains("lean-runtime-missing"), "{err}");
        assert!(
            err.contains("Lean runtime not built into this worker"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "no rows");
    }
}

#[test]
fn doctor_lists_the_lean_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringworker(
        &[
            "doctor",
            "--child",
            lean_worker().to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = report.to_string();
    for name in [
        "\"decls\"",
        "\"attempt-proofs\"",
        "DeclsRequest",
        "DeclRow",
        "AttemptProofsRequest",
        "ProofResult",
    ] {
        assert!(text.contains(name), "{name} in {text}");
    }
}
