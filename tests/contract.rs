//! The typed protocol against a real child: commands run by their shared
//! contract type, failure codes that keep runtime failures apart from a
//! command's own, and rows reserved in place counted only when committed.

use ringworker::{
    Command, Error, FailureCode, RequestOptions, RestartReason, Row, RuntimeCode, Worker,
    WorkerStats,
};
use ringworker_child::builtins::echo::{Echo, EchoRequest};

#[path = "support/mod.rs"]
mod support;

#[path = "support/contract.rs"]
mod contract;

use contract::{
    Fail, FailRequest, SELF_CANCEL, SLOTS, SlotsRequest, SlotsSummary, Square, Squares,
};
use support::{assert_usable, fixture};

#[test]
fn echo_runs_by_its_contract_type() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let announced = &worker.hello().expect("a live child").commands;
    assert!(
        announced
            .iter()
            .any(|c| c.name == Echo::NAME && c.description == Echo::DESCRIPTION),
        "{announced:?}"
    );
    let request = EchoRequest::new(serde_json::json!({ "n": 7, "tags": ["a", "b"] })).with_rows(3);
    let mut rows = Vec::new();
    let summary = worker
        .run_typed::<Echo>(&request, |stream, row| rows.push((stream, row)))
        .unwrap();
    assert_eq!(summary, request.value);
    assert_eq!(rows, vec![(0, request.value.clone()); 3]);
    assert_eq!(worker.stats().rows, 3);
}

#[test]
fn a_contract_shared_by_child_and_test_fixes_rows_and_summary() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let mut next = 0u64;
    let summary = worker
        .run_typed_with::<Squares>(
            &contract::Upto { n: 1000 },
            |stream, row: Square| {
                assert_eq!(stream, 0);
                assert_eq!(
                    row,
                    Square {
                        n: next,
                        square: next * next
                    }
                );
                next += 1;
            },
            RequestOptions::default(),
        )
        .unwrap();
    assert_eq!(next, 1000);
    assert_eq!(summary.rows, 1000);
    assert_eq!(summary.sum, (0..1000u64).map(|n| n * n).sum::<u64>());
}

/// Runs `fail` with `code`, expecting the command's own failure back.
fn expect_command_failure(worker: &mut Worker, code: &str) {
    let mut delivered = 0u64;
    let err = worker
        .run_typed::<Fail>(
            &FailRequest {
                code: code.to_owned(),
                rows: 40,
            },
            |_, row| {
                assert_eq!(row, delivered);
                delivered += 1;
            },
        )
        .expect_err("fail fails");
    let Error::Worker {
        code: got,
        rows_delivered,
        ..
    } = &err
    else {
        panic!("code {code:?} came back as {err:?}");
    };
    assert_eq!(*got, FailureCode::Command(code.to_owned()), "{err}");
    assert_eq!((*rows_delivered, delivered), (40, 40));
}

#[test]
fn command_codes_named_like_runtime_codes_are_the_commands_failures() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let pid = worker.pid();
    // Each of these strings is the wire name of a runtime code; coming from
    // the command they mean nothing to the supervisor: no panic restart, no
    // cancellation (nobody asked for one).
    for code in [
        "panic",
        "cancelled",
        "bad_request",
        "unknown_command",
        "ring",
    ] {
        expect_command_failure(&mut worker, code);
    }
    assert_eq!(worker.pid(), pid, "the child was replaced");
    let stats: &WorkerStats = worker.stats();
    assert_eq!(stats.total_restarts(), 0, "{stats:?}");
    assert_eq!(stats.failed_requests, 5);
    assert_usable(&mut worker);
}

#[test]
fn a_runtime_cancellation_nobody_asked_for_is_a_protocol_error() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let mut delivered = 0u64;
    let mut sink = |_: Row<'_>| delivered += 1;
    let err = worker
        .stream::<_, (), _>(SELF_CANCEL, &25u64, &mut sink)
        .expect_err("the child claims a cancellation");
    let Error::Protocol { rows_delivered, .. } = &err else {
        panic!("an unrequested cancellation came back as {err:?}");
    };
    assert_eq!((*rows_delivered, delivered), (25, 25));
    assert_eq!(
        worker.stats().restarts.get(&RestartReason::Protocol),
        Some(&1),
        "{:?}",
        worker.stats()
    );
    assert_usable(&mut worker);
}

#[test]
fn arguments_that_do_not_decode_are_a_runtime_bad_request() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let pid = worker.pid();
    let err = worker
        .call::<_, serde_json::Value>(Echo::NAME, &serde_json::json!({ "bogus": 1 }))
        .expect_err("echo refuses unknown fields");
    let Error::Worker { code, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        *code,
        FailureCode::Runtime(RuntimeCode::BadRequest),
        "{err}"
    );
    assert_eq!(worker.pid(), pid);
    assert_usable(&mut worker);
}

#[test]
fn reserved_rows_are_counted_when_committed_not_when_reserved() {
    let mut worker = Worker::spawn(fixture()).unwrap();
    let request = SlotsRequest {
        reserved: 1001,
        committed_len: 24,
    };
    let mut delivered = Vec::new();
    let mut sink = |row: Row<'_>| {
        assert_eq!(row.payload.len(), 24);
        delivered.push(u64::from_le_bytes(row.payload[..8].try_into().unwrap()));
    };
    let summary: SlotsSummary = worker.stream(SLOTS, &request, &mut sink).unwrap();
    // Every other reservation was dropped uncommitted.
    let committed: Vec<u64> = (0..request.reserved).step_by(2).collect();
    assert_eq!(delivered, committed);
    assert_eq!(
        summary,
        SlotsSummary {
            rows: committed.len() as u64,
            bytes: committed.len() as u64 * 24,
        }
    );
    assert_eq!(worker.stats().rows, summary.rows);
    assert_eq!(worker.stats().bytes, summary.bytes);
}
