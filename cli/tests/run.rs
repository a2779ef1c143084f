//! `ringworker run` and `ringworker doctor` against real worker processes:
//! the built-in worker and the `ringworker-child` binary.

use std::path::Path;
use std::process::Command;

mod support;
use support::{BIN, ringworker, stderr};

#[test]
fn one_request_streams_json_rows_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringworker(
        &["run", "echo", "--request", r#"{"value":{"n":7},"rows":4}"#],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines, [r#"{"n":7}"#; 4]);
    assert!(stderr(&out).contains("4 rows"), "{}", stderr(&out));
}

#[test]
fn many_requests_over_a_pool_keep_request_order_and_shard() {
    let dir = tempfile::tempdir().unwrap();
    let requests: String = (0..30)
        .map(|i| format!("{{\"value\":{i},\"rows\":{}}}\n", i % 4))
        .collect();
    std::fs::write(dir.path().join("reqs.ndjson"), requests).unwrap();
    let out = ringworker(
        &[
            "run",
            "echo",
            "--requests",
            "reqs.ndjson",
            "--workers",
            "3",
            "--out",
            "rows.ndjson",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["jobs_done"], 30);
    let rows: Vec<u64> = std::fs::read_to_string(dir.path().join("rows.ndjson"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let expected: Vec<u64> = (0..30u64)
        .flat_map(|i| std::iter::repeat_n(i, (i % 4) as usize))
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(summary["rows"], expected.len());

    // Shards of the requests: together, the same rows.
    let mut all = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let name = format!("shard{i}.ndjson");
        let out = ringworker(
            &[
                "run",
                "echo",
                "--requests",
                "reqs.ndjson",
                "--shard",
                &shard,
                "--out",
                &name,
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let text = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        for l in text.lines() {
            let v: u64 = l.parse().unwrap();
            assert_eq!(v % 3, i, "request {v} in shard {i}");
            all.push(v);
        }
    }
    all.sort_unstable();
    assert_eq!(all, expected);
}

#[test]
fn binary_rows_to_parquet_with_the_child_binary() {
    let dir = tempfile::tempdir().unwrap();
    let child = Path::new(BIN).with_file_name("ringworker-child");
    if !child.exists() {
        // Built by `cargo test --workspace`; a lone `-p ringworker-cli` run may lack it.
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "ringworker-child",
                "--bin",
                "ringworker-child",
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = ringworker(
        &[
            "run",
            "--child",
            child.to_str().unwrap(),
            "synthetic",
            "--request",
            r#"{"rows":5000}"#,
            "--out",
            "rows.parquet",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], 5000);
    let file = std::fs::File::open(dir.path().join("rows.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 5000);
    // The same binary rows cannot be NDJSON: a clear error, no file.
    let out = ringworker(
        &[
            "run",
            "--child",
            child.to_str().unwrap(),
            "synthetic",
            "--request",
            r#"{"rows":5}"#,
            "--out",
            "x.ndjson",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not JSON"));
    assert!(!dir.path().join("x.ndjson").exists());
}

#[test]
fn failures_have_documented_statuses_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reqs.ndjson"),
        "{\"value\":1}\n{\"valu\":2}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.ndjson"), "{\"value\":1}\nnot json\n").unwrap();
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["run", "no-such-command", "--out", "o.ndjson"],
            5,
            "no command",
        ),
        (
            &[
                "run",
                "--child",
                "/nonexistent/worker",
                "echo",
                "--out",
                "o.ndjson",
            ],
            5,
            "/nonexistent/worker",
        ),
        (
            &["run", "echo", "--request", "{oops", "--out", "o.ndjson"],
            2,
            "not JSON",
        ),
        (
            &[
                "run",
                "echo",
                "--requests",
                "missing.ndjson",
                "--out",
                "o.ndjson",
            ],
            3,
            "missing.ndjson",
        ),
        (
            &[
                "run",
                "echo",
                "--requests",
                "bad.ndjson",
                "--out",
                "o.ndjson",
            ],
            3,
            "bad.ndjson:2",
        ),
        (
            &[
                "run",
                "echo",
                "--requests",
                "reqs.ndjson",
                "--out",
                "o.ndjson",
            ],
            6,
            "1 of 2 requests failed",
        ),
        (
            &[
                "run",
                "echo",
                "--request",
                "{\"value\":1}",
                "--out",
                "no/dir/o.ndjson",
            ],
            4,
            "no/dir/o.ndjson",
        ),
    ];
    for (args, code, needle) in cases {
        let out = ringworker(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            !dir.path().join("o.ndjson").exists(),
            "{args:?} left output"
        );
    }
    // Tolerated failures: the output holds the good request's rows.
    let out = ringworker(
        &[
            "run",
            "echo",
            "--requests",
            "reqs.ndjson",
            "--max-failed-jobs",
            "1",
            "--out",
            "o.ndjson",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["jobs_failed"], 1);
    assert_eq!(summary["failed"][0]["request"], 1);
}

#[test]
fn a_worker_over_its_memory_limit_fails_its_job_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // The echo command cannot crash, so the crash comes from the memory
    // limit: synthetic-proofs' blow-up candidates allocate past it.
    let requests = "{\"candidates\":[1,2,3],\"blowup_per_million\":1000000,\"blowup_bytes\":268435456}\n\
                    {\"candidates\":[4,5]}\n";
    std::fs::write(dir.path().join("reqs.ndjson"), requests).unwrap();
    let out = ringworker(
        &[
            "run",
            "synthetic-proofs",
            "--requests",
            "reqs.ndjson",
            "--memory-limit",
            "64MiB",
            "--max-failed-jobs",
            "1",
            "--out",
            "o.ndjson",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["jobs_failed"], 1, "{summary}");
    assert_eq!(summary["failed"][0]["kind"], "resource", "{summary}");
    assert_eq!(summary["rows"], 2, "{summary}");
    assert!(
        summary["restarts"]["memory_limit"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
}

#[test]
fn doctor_lists_commands_types_and_mechanisms() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringworker(&["doctor", "--json"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["protocol"], report["supervisor_protocol"]);
    let commands = report["commands"].as_array().unwrap();
    let export = commands
        .iter()
        .find(|c| c["name"] == "export-decls")
        .unwrap();
    assert!(
        export["request"]
            .as_str()
            .unwrap()
            .ends_with("ExportRequest"),
        "{export}"
    );
    let proofs = commands
        .iter()
        .find(|c| c["name"] == "synthetic-proofs")
        .unwrap();
    assert!(
        proofs["row"].as_str().unwrap().ends_with("ProofResult"),
        "{proofs}"
    );
    assert!(report["rss_bytes"].as_u64().unwrap() > 0);
    let mechanisms = report["mechanisms"].as_array().unwrap();
    assert!(
        mechanisms
            .iter()
            .any(|m| m["name"] == "process-tree containment")
    );
    // Human form, and a child that cannot start.
    let out = ringworker(&["doctor"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("containment"));
    let out = ringworker(&["doctor", "--child", "/nonexistent"], dir.path());
    assert_eq!(out.status.code(), Some(5));
}
