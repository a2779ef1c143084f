//! `synthetic-proofs` against real child processes (the fixture worker,
//! which serves `ringworker-child`'s built-in commands): one row per
//! candidate as `fate` predicts it; a hang ends the request with a typed
//! timeout or hang after exactly the rows before it; a blow-up ends it with
//! the memory limit (or, under a kernel cap, with the command's
//! `out_of_memory`). The mining over a pool, with its culprit isolation,
//! is the CLI's (`ringworker mine-proofs`, tested in `cli/tests/mine.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringworker::{Error, FailureCode, MemoryLimits, RequestOptions, RestartReason, Worker};
use ringworker_child::builtins::proofs::{
    Fate, Outcome, ProofBatch, ProofResult, ProofSummary, Rates, Status, SyntheticProofs, fate,
    render,
};

#[path = "support/mod.rs"]
mod support;

use support::fixture;

const MIB: u64 = 1 << 20;

/// Checks `row` against what `fate` and `render` predict for `id`.
fn check_row(seed: u64, rates: &Rates, id: u64, row: &ProofResult) {
    assert_eq!(row.id, id);
    let Fate::Result(outcome) = fate(seed, id, rates) else {
        panic!(
            "candidate {id} has a row but its fate is {:?}",
            fate(seed, id, rates)
        );
    };
    check_outcome(seed, id, &outcome, row);
}

fn check_outcome(seed: u64, id: u64, outcome: &Outcome, row: &ProofResult) {
    assert_eq!(row.status, outcome.status, "candidate {id}");
    let (mut goals, mut diagnostics) = (String::new(), String::new());
    render(seed, id, outcome, &mut goals, &mut diagnostics);
    assert!(row.goals == goals, "candidate {id}: goals differ");
    assert!(
        row.diagnostics == diagnostics,
        "candidate {id}: diagnostics differ"
    );
    assert!(
        row.time_us >= outcome.work_us,
        "candidate {id}: {} µs, planned {} µs",
        row.time_us,
        outcome.work_us
    );
}

/// The first candidate of `0..` with `wanted` fate, which must come after
/// at least `min_before` candidates with rows.
fn first_with(seed: u64, rates: &Rates, wanted: Fate, min_before: u64) -> u64 {
    let id = (0..10_000)
        .find(|&id| fate(seed, id, rates) == wanted)
        .expect("rate too low");
    assert!(
        id >= min_before,
        "seed {seed}: first {wanted:?} at {id}, pick another seed"
    );
    id
}

#[test]
fn a_batch_gives_one_row_per_candidate_in_order_as_fate_predicts() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let seed = 42;
    // Ids out of order, with a repeat: rows follow the batch.
    let mut ids: Vec<u64> = (1000..1400).rev().collect();
    ids.push(1005);
    let batch = ProofBatch::new(ids.clone()).with_seed(seed);
    let rates = batch.rates();
    let mut rows = Vec::new();
    let summary: ProofSummary = worker
        .run_typed::<SyntheticProofs>(&batch, |stream, row| {
            assert_eq!(stream, 0);
            rows.push(row);
        })
        .unwrap();
    assert_eq!(rows.len(), ids.len());
    let mut by_status = BTreeMap::<Status, u64>::new();
    let mut text = 0u64;
    for (row, &id) in rows.iter().zip(&ids) {
        check_row(seed, &rates, id, row);
        *by_status.entry(row.status).or_default() += 1;
        text += (row.goals.len() + row.diagnostics.len()) as u64;
    }
    assert_eq!(summary.candidates, ids.len() as u64);
    for status in Status::ALL {
        assert_eq!(
            summary.count(status),
            by_status.get(&status).copied().unwrap_or(0),
            "{status}"
        );
    }
    assert!(by_status.len() == 4, "every status occurs: {by_status:?}");
    assert_eq!(summary.text_bytes, text);
    assert!(summary.bytes > text);
    assert!(
        rows.iter()
            .any(|r| r.goals.len() + r.diagnostics.len() > 16 << 10)
    );

    // The defaults of `{"candidates": [...]}` are the same batch.
    let mut again = Vec::new();
    let summary_json: ProofSummary = worker
        .stream(
            "synthetic-proofs",
            &serde_json::json!({ "candidates": [1, 2, 3] }),
            &mut ringworker::TypedSink::new(|_, row: ProofResult| again.push(row)),
        )
        .unwrap();
    assert_eq!(summary_json.candidates, 3);
    for (row, id) in again.iter().zip(1..) {
        check_row(0, &Rates::default(), id, row);
    }
}

/// Runs `batch` on `worker` and returns its rows and error.
fn run_failing(
    worker: &mut Worker,
    batch: &ProofBatch,
    options: RequestOptions,
) -> (Vec<ProofResult>, Error) {
    let mut rows = Vec::new();
    let result = worker.run_typed_with::<SyntheticProofs>(batch, |_, row| rows.push(row), options);
    match result {
        Ok(summary) => panic!("expected a failure, got {summary:?}"),
        Err(err) => (rows, err),
    }
}

/// A hang with a short job deadline (hang detection far off): the request
/// times out after exactly the rows before the hang, and the next request
/// runs on a fresh child.
#[test]
fn a_hang_ends_in_a_timeout_after_the_rows_before_it() {
    let config = fixture().with_hang_timeout(Duration::from_secs(60));
    let mut worker = Worker::spawn(config).unwrap();
    let seed = 3;
    let batch = ProofBatch::new(Vec::new())
        .with_seed(seed)
        .with_failure_rates(100_000, 0);
    let rates = batch.rates();
    let hang = first_with(seed, &rates, Fate::Hang, 3);
    let mut batch = batch;
    batch.candidates = (0..hang + 5).collect();
    let started = Instant::now();
    let (rows, err) = run_failing(
        &mut worker,
        &batch,
        RequestOptions::default().timeout(Duration::from_secs(1)),
    );
    let Error::Timeout { rows_delivered, .. } = err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(rows_delivered, hang);
    assert_eq!(rows.len() as u64, hang);
    for (row, id) in rows.iter().zip(0..) {
        check_row(seed, &rates, id, row);
    }
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::Timeout),
        Some(&1)
    );
    let after: ProofSummary = worker
        .run_typed::<SyntheticProofs>(&ProofBatch::new(vec![1, 2]), |_, _| {})
        .unwrap();
    assert_eq!(after.candidates, 2);
}

/// A hang with an ample deadline: the hang detection (the fixture's 1 s)
/// ends it as `Hung` after exactly the rows before it.
#[test]
fn a_hang_is_detected_as_hung_after_the_rows_before_it() {
    let mut worker =
        Worker::spawn(fixture().with_request_timeout(Duration::from_secs(60))).unwrap();
    let seed = 5;
    let batch = ProofBatch::new(Vec::new())
        .with_seed(seed)
        .with_failure_rates(100_000, 0);
    let rates = batch.rates();
    let hang = first_with(seed, &rates, Fate::Hang, 3);
    let mut batch = batch;
    batch.candidates = (0..hang + 5).collect();
    let (rows, err) = run_failing(&mut worker, &batch, RequestOptions::default());
    let Error::Hung { rows_delivered, .. } = err else {
        panic!("expected a hang, got {err:?}");
    };
    assert_eq!(rows_delivered, hang);
    assert_eq!(rows.len() as u64, hang);
    for (row, id) in rows.iter().zip(0..) {
        check_row(seed, &rates, id, row);
    }
}

/// A blow-up of 256 MiB under a hard limit of 128 MiB: `MemoryLimit` after
/// exactly the rows before it.
#[test]
fn a_blowup_ends_in_the_memory_limit_after_the_rows_before_it() {
    let config = fixture()
        .with_request_timeout(Duration::from_secs(60))
        .with_memory(
            MemoryLimits::default()
                .with_hard_rss(Some(128 * MIB))
                .with_sample_interval(Duration::from_millis(50)),
        );
    let mut worker = Worker::spawn(config).unwrap();
    let seed = 11;
    let batch = ProofBatch::new(Vec::new())
        .with_seed(seed)
        .with_failure_rates(0, 100_000)
        .with_blowup_bytes(256 * MIB);
    let rates = batch.rates();
    let blowup = first_with(seed, &rates, Fate::BlowUp, 3);
    let mut batch = batch;
    batch.candidates = (0..blowup + 5).collect();
    let (rows, err) = run_failing(&mut worker, &batch, RequestOptions::default());
    let Error::MemoryLimit {
        rows_delivered,
        sample,
        limit,
    } = err
    else {
        panic!("expected the memory limit, got {err:?}");
    };
    assert_eq!(limit, 128 * MIB);
    assert!(sample.limited() > limit, "{sample:?}");
    assert_eq!(rows_delivered, blowup);
    assert_eq!(rows.len() as u64, blowup);
    for (row, id) in rows.iter().zip(0..) {
        check_row(seed, &rates, id, row);
    }
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::MemoryLimit),
        Some(&1)
    );
}

/// Under a kernel cap (`RLIMIT_DATA` 192 MiB) a blow-up of 256 MiB cannot
/// allocate: the command fails with `out_of_memory` after the rows before
/// it, frees what it took, and the same child serves the next request.
#[test]
fn a_blowup_under_a_kernel_cap_fails_with_out_of_memory() {
    let config = fixture()
        .with_request_timeout(Duration::from_secs(60))
        .with_memory(MemoryLimits::default().with_data_limit(Some(192 * MIB)));
    let mut worker = Worker::spawn(config).unwrap();
    let pid = worker.pid();
    let seed = 11;
    let batch = ProofBatch::new(Vec::new())
        .with_seed(seed)
        .with_failure_rates(0, 100_000)
        .with_blowup_bytes(256 * MIB);
    let rates = batch.rates();
    let blowup = first_with(seed, &rates, Fate::BlowUp, 3);
    let mut batch = batch;
    batch.candidates = (0..blowup + 5).collect();
    let (rows, err) = run_failing(&mut worker, &batch, RequestOptions::default());
    let Error::Worker {
        code: FailureCode::Command(code),
        rows_delivered,
        ..
    } = &err
    else {
        panic!("expected out_of_memory, got {err:?}");
    };
    assert_eq!(code, "out_of_memory");
    assert_eq!(*rows_delivered, blowup);
    assert_eq!(rows.len() as u64, blowup);
    let after: ProofSummary = worker
        .run_typed::<SyntheticProofs>(&ProofBatch::new(vec![1, 2]), |_, _| {})
        .unwrap();
    assert_eq!(after.candidates, 2);
    assert_eq!(worker.pid(), pid, "the command's failure keeps the child");
}
