//! The Lean-linked worker against a real Lean toolchain: only with the
//! `runtime` feature, which builds only where `lean` is on PATH. Needs the
//! Lake library built first:
//!
//! ```sh
//! (cd lean/lake && lake build) && cargo test --manifest-path lean/runtime/Cargo.toml --features runtime
//! ```
//!
//! `RINGWORKER_LEAN_LIBRARY` overrides where the library is looked for.
#![cfg(feature = "runtime")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringworker::{Row, Worker, WorkerConfig};
use ringworker_lean::DeclKind;
use ringworker_lean::parquet::{DeclParquetWriter, ParquetOptions, read_decls};
use ringworker_lean_host::decode_decl_row;
use ringworker_lean_runtime::{TRACE_ENV, WorkerArgs};

const WORKER: &str = env!("CARGO_BIN_EXE_ringworker-lean-runtime-worker");

/// The Lake-built library: `RINGWORKER_LEAN_LIBRARY`, else where
/// `lake build` puts it in `lean/lake/`.
fn library() -> PathBuf {
    if let Some(path) = std::env::var_os("RINGWORKER_LEAN_LIBRARY") {
        return PathBuf::from(path);
    }
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lake/.lake/build/lib");
    for candidate in [
        build.join("libRingWorker.so"),
        build.join("lean/libRingWorker.so"),
    ] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "no libRingWorker.so under {}: run `(cd lean/lake && lake build)` first",
        build.display()
    );
}

fn config() -> WorkerConfig {
    WorkerConfig::new(WORKER)
        .with_args(WorkerArgs::new(library()).with_imports(["Init"]).to_args())
        // Importing Init takes seconds; a cold page cache more.
        .with_startup_timeout(Duration::from_secs(180))
        .with_request_timeout(Duration::from_secs(600))
}

/// Runs `decls` of one shard; the decoded rows and the summary.
fn decls(
    worker: &mut Worker,
    index: u64,
    count: u64,
) -> (Vec<ringworker_lean::DeclRow>, serde_json::Value) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut sink = |row: Row<'_>| match decode_decl_row(row.payload) {
        Ok(decl) => rows.push(decl),
        Err(err) => errors.push(err.to_string()),
    };
    let request = serde_json::json!({ "shard_index": index, "shard_count": count });
    let summary: serde_json::Value = worker.stream("decls", &request, &mut sink).unwrap();
    assert!(errors.is_empty(), "rows that do not decode: {errors:?}");
    (rows, summary)
}

#[test]
fn decls_of_init_through_the_worker_to_parquet_and_back() {
    let mut worker = Worker::spawn(config()).unwrap();
    let (rows, summary) = decls(&mut worker, 0, 1);
    assert_eq!(summary["rows"].as_u64(), Some(rows.len() as u64));
    assert_eq!(summary["constants"].as_u64(), Some(rows.len() as u64));
    assert!(
        rows.len() > 10_000,
        "Init has tens of thousands of constants, got {}",
        rows.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = DeclParquetWriter::new(file, ParquetOptions::default()).unwrap();
    for row in &rows {
        writer.write(row).unwrap();
    }
    writer.finish().unwrap();
    let back = read_decls(&path).unwrap();
    assert_eq!(back, rows);

    let find = |name: &str| {
        back.iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let add_succ = find("Nat.add_succ");
    assert_eq!(add_succ.kind, DeclKind::Thm);
    assert_eq!(add_succ.namespace.as_deref(), Some("Nat"));
    assert!(
        add_succ.type_consts.iter().any(|c| c == "Nat.succ")
            || add_succ.value_consts.iter().any(|c| c == "Nat.succ"),
        "{add_succ:?}"
    );
    assert!(add_succ.value_dag_size.is_some_and(|n| n > 0));
    let nat = find("Nat");
    assert_eq!(nat.kind, DeclKind::Inductive);
    assert_eq!(nat.ctors, ["Nat.zero", "Nat.succ"]);
    assert!(nat.recs.iter().any(|r| r == "Nat.rec"), "{nat:?}");
    let succ = find("Nat.succ");
    assert_eq!(succ.kind, DeclKind::Ctor);
    assert_eq!(succ.induct.as_deref(), Some("Nat"));
    assert_eq!(succ.cidx, Some(1));
}

#[test]
fn forked_workers_split_the_shards_of_an_execd_run() {
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("trace");
    let forked = config()
        .with_template(true)
        .with_env(TRACE_ENV, trace.as_os_str());
    let mut a = Worker::spawn(forked.clone()).unwrap();
    let mut b = Worker::spawn(forked).unwrap();
    let template = a.template_pid().expect("a template");
    assert_eq!(b.template_pid(), Some(template), "one template for both");
    let (rows_a, _) = decls(&mut a, 0, 2);
    let (rows_b, _) = decls(&mut b, 1, 2);

    let mut execd = Worker::spawn(config()).unwrap();
    let (all, _) = decls(&mut execd, 0, 1);

    let names = |rows: &[ringworker_lean::DeclRow]| -> BTreeSet<String> {
        rows.iter().map(|r| r.name.clone()).collect()
    };
    let (set_a, set_b) = (names(&rows_a), names(&rows_b));
    assert!(set_a.is_disjoint(&set_b));
    assert_eq!(rows_a.len() + rows_b.len(), all.len());
    let union: BTreeSet<String> = set_a.union(&set_b).cloned().collect();
    assert_eq!(union, names(&all));

    // The template ran `start` (import, no task manager); each forked
    // worker started its own task manager after the fork, in its own
    // process.
    let pid_a = a.pid().unwrap();
    let pid_b = b.pid().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("start {template}").as_str()),
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("start ")).count(),
        1,
        "{text}"
    );
    for pid in [pid_a, pid_b] {
        assert_ne!(pid, template);
        assert!(
            lines.contains(&format!("worker_start {pid}").as_str()),
            "{text}"
        );
    }
    assert!(
        !lines.contains(&format!("worker_start {template}").as_str()),
        "{text}"
    );
}

#[test]
fn attempt_proofs_closes_fails_and_runs_out_of_heartbeats() {
    let mut worker = Worker::spawn(config()).unwrap();
    let request = serde_json::json!({
        "candidates": [
            { "id": 1, "goal": "2 + 2 = 4", "proof": "by decide" },
            { "id": 2, "goal": "2 + 2 = 5", "proof": "by decide" },
            // Rewrites f 0 to f 1, f 2, ... until the heartbeat limit.
            { "id": 3, "goal": "∀ (f : Nat → Nat), (∀ x, f x = f (x + 1)) → f 0 = 0",
              "proof": "by intro f h; simp only [h]" }
        ],
        "max_heartbeats": 1000,
        "timeout_ms": 0
    });
    let mut results = Vec::new();
    let mut sink = |row: Row<'_>| {
        results.push(serde_json::from_slice::<serde_json::Value>(row.payload).unwrap());
    };
    let summary: serde_json::Value = worker
        .stream("attempt-proofs", &request, &mut sink)
        .unwrap();
    let status = |id: u64| {
        let row = results
            .iter()
            .find(|r| r["id"].as_u64() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}: {results:?}"));
        (
            row["status"].as_str().unwrap().to_owned(),
            row["diagnostics"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(results.len(), 3);
    assert_eq!(status(1).0, "closed", "{results:?}");
    assert_eq!(status(2).0, "failed", "{results:?}");
    let (third, diagnostics) = status(3);
    assert_eq!(third, "timeout", "{results:?}");
    assert!(diagnostics.contains("heartbeats"), "{diagnostics}");
    assert_eq!(summary["candidates"], 3);
    assert_eq!(summary["closed"], 1);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["timeout"], 1);
}
