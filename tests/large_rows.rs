//! Rows larger than the ring's maximum record, end to end against real
//! child processes: fragmented, reassembled, delivered as one row; refused
//! above the per-row limit; never delivered partially.

use std::path::PathBuf;
use std::time::Duration;

use ringworker::{CancelToken, Error, RequestOptions, Row, Worker, WorkerConfig};
use shm_proto::control::DEFAULT_MAX_ROW_BYTES;

#[path = "support/big_rows.rs"]
mod big_rows;

use big_rows::{
    BIG_ROWS, BigRowsRequest, BigRowsSummary, ENV_ANNOUNCE_MAX_ROW, RowSpec, Via, checksum,
    expected_row,
};

const MIB: usize = 1 << 20;
/// Maximum record payload of the test rings: 64 KiB in a 2 MiB ring.
const MAX_RECORD: usize = 64 << 10;

fn config() -> WorkerConfig {
    WorkerConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_ringworker-fixture")))
        .with_ring(2 * MIB, MAX_RECORD)
        .with_startup_timeout(Duration::from_secs(10))
        .with_hang_timeout(Duration::from_secs(5))
        .with_cancel_grace(Duration::from_millis(500))
}

fn small(len: usize) -> RowSpec {
    RowSpec { len, via: Via::Row }
}

/// A request that writes `rows` and misbehaves in no way.
fn plain(rows: Vec<RowSpec>) -> BigRowsRequest {
    BigRowsRequest {
        rows,
        kill_after_bytes: None,
        forge_interrupted: false,
    }
}

/// Rows 0..3 small, row 3 of 64 MiB (fragmented), row 4 small: the shape
/// of the tests that interrupt a request inside its big row.
fn three_small_rows_around_a_64_mib_row() -> Vec<RowSpec> {
    vec![small(10), small(20), small(30), small(64 * MIB), small(40)]
}

/// A delivered row: its stream, sequence and a private copy.
struct Got {
    stream: u16,
    sequence: u64,
    payload: Vec<u8>,
}

fn collect(rows: &mut Vec<Got>) -> impl FnMut(Row<'_>) + '_ {
    |row: Row<'_>| {
        rows.push(Got {
            stream: row.stream,
            sequence: row.sequence,
            payload: row.payload.to_vec(),
        })
    }
}

/// Checks `got` is exactly the rows of `request` at `indexes`, in order,
/// byte for byte and by the checksums the child computed.
fn assert_rows(got: &[Got], request: &BigRowsRequest, indexes: &[usize], summary: &BigRowsSummary) {
    assert_eq!(got.len(), indexes.len(), "rows delivered");
    for (seq, (got, &index)) in got.iter().zip(indexes).enumerate() {
        let spec = request.rows[index];
        assert_eq!(got.sequence, seq as u64, "row {index}: sequence");
        assert_eq!(got.stream, 0);
        let expected = expected_row(index, spec);
        assert_eq!(got.payload.len(), expected.len(), "row {index}: length");
        // Explicit content first (finds the first wrong byte), then the sum.
        if let Some(at) = got.payload.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!("row {index} ({spec:?}) differs at byte {at}");
        }
        assert_eq!(
            checksum(&got.payload),
            summary.checksums[index],
            "row {index}: checksum"
        );
    }
}

#[test]
fn a_64_mib_row_through_a_2_mib_ring_arrives_byte_exact_between_small_rows() {
    let mut worker = Worker::spawn(config()).unwrap();
    let request = plain(vec![
        small(0),
        small(100),
        small(MAX_RECORD),
        RowSpec {
            len: 64 * MIB,
            via: Via::Row,
        },
        small(7),
        // Just over one record, and one byte short of two fragments' worth.
        small(MAX_RECORD + 1),
        small(2 * MAX_RECORD - 9),
        RowSpec {
            len: 3 * MIB + 5,
            via: Via::Json,
        },
        small(33),
        RowSpec {
            len: 5 * MIB + 3,
            via: Via::Reserve,
        },
        RowSpec {
            len: 100,
            via: Via::Reserve,
        },
        small(1),
    ]);
    let mut got = Vec::new();
    let summary: BigRowsSummary = worker
        .stream(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap();
    assert!(summary.too_large.is_empty(), "{:?}", summary.too_large);
    assert_eq!(summary.written, request.rows.len() as u64);
    let all: Vec<usize> = (0..request.rows.len()).collect();
    assert_rows(&got, &request, &all, &summary);
    // One row each in the stats, whatever its size.
    let stats = worker.stats();
    assert_eq!(stats.rows, request.rows.len() as u64);
    let bytes: usize = got.iter().map(|g| g.payload.len()).sum();
    assert_eq!(stats.bytes, bytes as u64);
    assert_eq!(stats.total_restarts(), 0);
    // The worker goes on serving, big rows included.
    let mut again = Vec::new();
    let summary: BigRowsSummary = worker
        .stream(BIG_ROWS, &request, &mut collect(&mut again))
        .unwrap();
    assert_rows(&again, &request, &all, &summary);
}

#[test]
fn a_row_over_the_limit_fails_typed_and_the_request_goes_on() {
    let limit = 4 * MIB;
    let mut worker = Worker::spawn(config().with_max_row_bytes(limit as u64)).unwrap();
    let request = plain(vec![
        small(10),
        small(limit + 1),
        small(20),
        RowSpec {
            len: 5 * MIB,
            via: Via::Reserve,
        },
        RowSpec {
            // Its JSON is 2 bytes longer than the string: over the limit.
            len: limit - 1,
            via: Via::Json,
        },
        small(limit),
        small(30),
    ]);
    let mut got = Vec::new();
    let summary: BigRowsSummary = worker
        .stream(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap();
    assert_eq!(summary.too_large, vec![1, 3, 4]);
    assert_eq!(summary.written, 4);
    assert_rows(&got, &request, &[0, 2, 5, 6], &summary);
    assert_eq!(worker.stats().rows, 4);
    assert_eq!(worker.stats().total_restarts(), 0);
}

#[test]
fn a_child_killed_inside_a_fragmented_row_delivers_only_the_rows_before_it() {
    let mut worker = Worker::spawn(config()).unwrap();
    let request = BigRowsRequest {
        rows: three_small_rows_around_a_64_mib_row(),
        // Well inside the 64 MiB row, far from its end.
        kill_after_bytes: Some(8 * MIB as u64),
        forge_interrupted: false,
    };
    let mut got = Vec::new();
    let err = worker
        .stream::<_, BigRowsSummary, _>(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap_err();
    match err {
        Error::ChildKilled {
            signal,
            rows_delivered,
            ..
        } => {
            assert_eq!(signal, 9);
            assert_eq!(rows_delivered, 3);
        }
        other => panic!("expected ChildKilled, got {other:?}"),
    }
    assert_eq!(got.len(), 3, "the partial row must not be delivered");
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.payload, expected_row(i, request.rows[i]));
    }
    // The next request runs on a fresh child and gets its big row.
    let request = plain(vec![
        small(5),
        RowSpec {
            len: 16 * MIB,
            via: Via::Row,
        },
    ]);
    let mut got = Vec::new();
    let summary: BigRowsSummary = worker
        .stream(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap();
    assert_rows(&got, &request, &[0, 1], &summary);
    assert_eq!(worker.stats().total_restarts(), 1);
}

#[test]
fn a_child_announcing_another_row_limit_fails_the_handshake() {
    const LIMIT: usize = 1_000_003;
    let announce = LIMIT.to_string();
    let err = Worker::spawn(config().with_env(ENV_ANNOUNCE_MAX_ROW, &announce)).unwrap_err();
    match err {
        Error::RowLimitMismatch { expected, found } => {
            assert_eq!(expected, DEFAULT_MAX_ROW_BYTES);
            assert_eq!(found, LIMIT as u64);
        }
        other => panic!("expected RowLimitMismatch, got {other:?}"),
    }
    // The same limit on both sides is fine, and it is the child's limit.
    let mut worker = Worker::spawn(
        config()
            .with_max_row_bytes(LIMIT as u64)
            .with_env(ENV_ANNOUNCE_MAX_ROW, &announce),
    )
    .unwrap();
    let request = plain(vec![small(LIMIT), small(LIMIT + 1)]);
    let summary: BigRowsSummary = worker.call(BIG_ROWS, &request).unwrap();
    assert_eq!(summary.too_large, vec![1]);
    // A limit below the record size is refused before anything starts.
    let err = Worker::spawn(config().with_max_row_bytes(MAX_RECORD as u64 - 1)).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[test]
fn a_request_cancelled_inside_a_fragmented_row_never_delivers_it() {
    let mut worker = Worker::spawn(config()).unwrap();
    let request = plain(three_small_rows_around_a_64_mib_row());
    let token = CancelToken::new();
    let mut got = Vec::new();
    let mut sink = |row: Row<'_>| {
        got.push(row.payload.to_vec());
        // After the small rows, while the big one streams through a ring a
        // 32nd of its size: the child is blocked inside it.
        if got.len() == 3 {
            token.cancel();
        }
    };
    let err = worker
        .stream_with::<_, BigRowsSummary, _>(
            BIG_ROWS,
            &request,
            &mut sink,
            RequestOptions::default().cancel(token.clone()),
        )
        .unwrap_err();
    match err {
        Error::Cancelled {
            rows_delivered,
            killed,
        } => {
            assert_eq!(rows_delivered, 3);
            assert!(!killed, "the child honours a cancel inside a big row");
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(got.len(), 3, "the partial row must not be delivered");
    // The same child serves the next request, big rows included.
    let request = plain(vec![
        RowSpec {
            len: 9 * MIB,
            via: Via::Row,
        },
        small(1),
    ]);
    let mut got = Vec::new();
    let summary: BigRowsSummary = worker
        .stream(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap();
    assert_rows(&got, &request, &[0, 1], &summary);
    assert_eq!(worker.stats().total_restarts(), 0);
}

#[test]
fn a_fragmented_row_interrupted_by_another_record_is_a_protocol_error() {
    let mut worker = Worker::spawn(config()).unwrap();
    let request = BigRowsRequest {
        rows: vec![small(10), small(20)],
        kill_after_bytes: None,
        forge_interrupted: true,
    };
    let mut got = Vec::new();
    let err = worker
        .stream::<_, BigRowsSummary, _>(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap_err();
    match err {
        Error::Protocol {
            rows_delivered,
            ref detail,
        } => {
            assert_eq!(rows_delivered, 2, "{detail}");
            assert!(detail.contains("interrupted"), "{detail}");
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
    assert_eq!(
        got.len(),
        2,
        "neither the partial nor the forged row is delivered"
    );
    let request = plain(vec![RowSpec {
        len: 3 * MIB,
        via: Via::Json,
    }]);
    let mut got = Vec::new();
    let summary: BigRowsSummary = worker
        .stream(BIG_ROWS, &request, &mut collect(&mut got))
        .unwrap();
    assert_rows(&got, &request, &[0], &summary);
    assert_eq!(worker.stats().total_restarts(), 1);
}
