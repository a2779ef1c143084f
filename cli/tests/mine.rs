//! `ringworker mine-proofs` end to end: the real binary over a pool of its
//! own worker processes, candidates that hang and blow up memory among the
//! others, and the output read back against what `fate` predicts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ringworker_child::builtins::proofs::{Fate, ProofBatch, Status, fate, render};
use serde_json::Value;

mod support;
use support::{background, ringworker, stderr};

/// The names in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// One output row, from either format.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    status: String,
    goals: Option<String>,
    diagnostics: String,
    time_us: Option<u64>,
    failure_detail: Option<String>,
}

/// The rows of an NDJSON output by id (a list each, to catch repeats).
fn read_ndjson(path: &Path) -> BTreeMap<u64, Vec<Row>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        rows.entry(v["id"].as_u64().unwrap())
            .or_default()
            .push(Row {
                status: text("status").unwrap(),
                goals: text("goals"),
                diagnostics: text("diagnostics").unwrap_or_default(),
                time_us: v.get("time_us").and_then(Value::as_u64),
                failure_detail: text("failure_detail"),
            });
    }
    rows
}

/// The rows of a Parquet output by id.
fn read_parquet(path: &Path) -> BTreeMap<u64, Vec<Row>> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let (id, status, goals) = (column("id"), column("status"), column("goals"));
        let (diagnostics, time_us) = (column("diagnostics"), column("time_us"));
        let failure_detail = column("failure_detail");
        let id = id.as_primitive::<UInt64Type>();
        let status = status.as_string::<i32>();
        let goals = goals.as_string::<i32>();
        let diagnostics = diagnostics.as_string::<i32>();
        let time_us = time_us.as_primitive::<UInt64Type>();
        let failure_detail = failure_detail.as_string::<i32>();
        assert_eq!(status.null_count() + diagnostics.null_count(), 0);
        for i in 0..batch.num_rows() {
            let text = |a: &arrow_array::StringArray| a.is_valid(i).then(|| a.value(i).to_owned());
            rows.entry(id.value(i)).or_default().push(Row {
                status: status.value(i).to_owned(),
                goals: text(goals),
                diagnostics: diagnostics.value(i).to_owned(),
                time_us: time_us.is_valid(i).then(|| time_us.value(i)),
                failure_detail: text(failure_detail),
            });
        }
    }
    rows
}

/// Checks that `rows` hold exactly one row for each of `ids`, each as
/// `fate` predicts under `template`: hangs as `hung` failures, blow-ups as
/// `memory_limit` failures, the others as result rows with `render`'s text.
/// Returns how many hangs and blow-ups there were.
fn check_rows(rows: &BTreeMap<u64, Vec<Row>>, ids: &[u64], template: &ProofBatch) -> (u64, u64) {
    let keys: Vec<u64> = rows.keys().copied().collect();
    assert_eq!(keys, ids, "one row per candidate, no other");
    let rates = template.rates();
    let (mut hangs, mut blowups) = (0, 0);
    for &id in ids {
        let [row] = rows[&id].as_slice() else {
            panic!("candidate {id}: {} rows", rows[&id].len());
        };
        match fate(template.seed, id, &rates) {
            Fate::Hang | Fate::BlowUp => {
                let hang = fate(template.seed, id, &rates) == Fate::Hang;
                let expected = if hang { "hung" } else { "memory_limit" };
                assert_eq!(row.status, expected, "candidate {id}: {row:?}");
                assert!(row.failure_detail.is_some(), "candidate {id}");
                assert_eq!((&row.goals, row.time_us), (&None, None), "candidate {id}");
                if hang {
                    hangs += 1;
                } else {
                    blowups += 1;
                }
            }
            Fate::Result(outcome) => {
                assert_eq!(row.status, outcome.status.as_str(), "candidate {id}");
                assert_eq!(row.failure_detail, None, "candidate {id}");
                let (mut goals, mut diagnostics) = (String::new(), String::new());
                render(template.seed, id, &outcome, &mut goals, &mut diagnostics);
                assert!(row.goals.as_ref() == Some(&goals), "candidate {id}: goals");
                assert!(
                    row.diagnostics == diagnostics,
                    "candidate {id}: diagnostics"
                );
                assert!(row.time_us.unwrap() >= outcome.work_us, "candidate {id}");
            }
            other => panic!("unexpected fate {other:?}"),
        }
    }
    (hangs, blowups)
}

/// 2000 candidates on two workers, 2 of them hanging and 4 blowing up
/// 256 MiB under a limit of 128 MiB: exit 0, one row per candidate, the
/// hangs `hung` and the blow-ups `memory_limit`, every other as `fate`
/// predicts, and a summary that says so with nothing lost.
#[test]
fn hangs_and_blowups_end_as_failure_rows_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, n, hang_rate, blowup_rate) = (13, 2000, 1000, 2000);
    let template = ProofBatch::new(Vec::new())
        .with_seed(seed)
        .with_failure_rates(hang_rate, blowup_rate);
    let started = Instant::now();
    let out = ringworker(
        &[
            "mine-proofs",
            "--candidates",
            &n.to_string(),
            "--workers",
            "2",
            "--batch",
            "40",
            "--seed",
            &seed.to_string(),
            "--hang-rate",
            &hang_rate.to_string(),
            "--blowup-rate",
            &blowup_rate.to_string(),
            "--memory-limit",
            "128MiB",
            "--blowup-bytes",
            "256MiB",
            "--out",
            "results.ndjson",
            "--json",
            "--progress",
            "off",
        ],
        dir.path(),
    );
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{summary} in {elapsed:?}");

    let rows = read_ndjson(&dir.path().join("results.ndjson"));
    let ids: Vec<u64> = (0..n).collect();
    let (hangs, blowups) = check_rows(&rows, &ids, &template);
    assert!(
        (2..=3).contains(&hangs) && (2..=5).contains(&blowups),
        "seed {seed}: {hangs} hangs, {blowups} blow-ups; pick another"
    );
    assert_eq!(summary["candidates"], n);
    assert_eq!(summary["lost"], 0);
    assert_eq!(summary["results"], n - hangs - blowups);
    assert_eq!(
        summary["failures"],
        serde_json::json!({ "hung": hangs, "memory_limit": blowups })
    );
    assert_eq!(summary["restarts"], hangs + blowups);
    let statuses: u64 = Status::ALL
        .iter()
        .map(|s| summary["statuses"][s.as_str()].as_u64().unwrap())
        .sum();
    assert_eq!(statuses, n - hangs - blowups);
    assert!(summary["candidates_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(listing(dir.path()), ["results.ndjson"]);
}

/// `--shard 1/3` of 600 candidates from id 5, into Parquet: exactly the
/// ids k with k % 3 == 1, each as `fate` predicts.
#[test]
fn a_shard_gives_exactly_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringworker(
        &[
            "mine-proofs",
            "--candidates",
            "600",
            "--first",
            "5",
            "--shard",
            "1/3",
            "--workers",
            "2",
            "--seed",
            "4",
            "--out",
            "shard.parquet",
            "--progress",
            "off",
        ],
        dir.path(),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("200 candidates"), "{err}");
    assert!(err.contains("lost 0"), "{err}");
    let rows = read_parquet(&dir.path().join("shard.parquet"));
    let ids: Vec<u64> = (5..605).filter(|k| k % 3 == 1).collect();
    assert_eq!(ids.len(), 200);
    let template = ProofBatch::new(Vec::new()).with_seed(4);
    assert_eq!(check_rows(&rows, &ids, &template), (0, 0));
}

#[test]
fn an_output_in_a_missing_directory_exits_4_leaving_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringworker(
        &[
            "mine-proofs",
            "--candidates",
            "10",
            "--out",
            "no/such/dir/results.parquet",
        ],
        dir.path(),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("no/such/dir/results.parquet"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn bad_arguments_are_usage_errors_of_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--candidates", "10", "--hang-rate", "x"], "--hang-rate"),
        (
            &["--candidates", "10", "--blowup-rate", "1000001"],
            "--blowup-rate",
        ),
        (
            &["--candidates", "10", "--out", "x.csv"],
            "cannot tell the format",
        ),
        (&["--candidates", "10", "--shard", "3/3"], "shard"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["mine-proofs"];
        all.extend(args);
        let out = ringworker(&all, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert!(listing(dir.path()).is_empty());
}

/// SIGINT while candidates hang and run: the jobs are cancelled (a hang
/// is killed after the cancel grace), no fresh candidate is taken, the
/// command exits 130 soon after, and no output is left.
#[test]
fn sigint_cancels_the_jobs_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = background(
        [
            "mine-proofs",
            "--candidates",
            "10000000",
            "--workers",
            "2",
            "--hang-rate",
            "20000",
            "--out",
            "big.ndjson",
            "--progress",
            "off",
        ],
        dir.path(),
    )
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while listing(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "no temporary output after 60 s");
        assert!(child.try_wait().unwrap().is_none(), "ended too soon");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let signalled = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        signalled.elapsed()
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}
