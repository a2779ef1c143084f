//! The C ABI called from C, as Lean-generated code calls it, inside a real
//! worker process (`abi-probe`) read by a real supervisor: rows of all three
//! variants arrive byte-exact and in order, every bad argument gets its
//! typed status and leaves the request usable, progress and diagnostics
//! reach the sink, calls outside a request write nothing, and the header
//! and object layouts are what the C compiler sees.

use ringworker::Worker;
use ringworker::sink::Level;
use ringworker_lean_abi::Status;
use ringworker_lean_abi::object::LEAN_LINEAR_MARK_MASK;

#[path = "support/mod.rs"]
mod support;

use support::probe::{
    C_BAD_ARGS, C_DIAGNOSTIC, C_FACTS, C_OUTSIDE, C_PROGRESS, CaseRow, EmitRequest, EmitSummary,
    Facts, OutsideSummary, ProgressRequest, REPORT_STREAM, StatusSummary, Via, pattern_row,
};
use support::{Event, MAX_ROW, Recorder, assert_usable, emit, expected_rows, probe_config};

fn spawn() -> Worker {
    Worker::spawn(probe_config()).expect("the probe starts")
}

#[test]
fn rows_arrive_byte_exact_and_in_order_for_every_variant() {
    let mut worker = spawn();
    for via in [Via::Ptr, Via::Bytes, Via::String] {
        // Many small rows; rows above the largest record (fragmented); empty
        // rows (a pointer row of length 0 is passed as NULL); the largest row.
        for (stream, count, row_len) in
            [(0, 2000, 100), (1, 3, 100_000), (0, 5, 0), (1, 1, MAX_ROW)]
        {
            let request = EmitRequest {
                via,
                stream,
                count,
                row_len,
                max_stream: 1,
            };
            let (summary, sink) = emit(&mut worker, &request);
            assert_eq!(
                summary,
                EmitSummary {
                    status: Status::Ok.code(),
                    emitted: count
                },
                "{request:?}"
            );
            let rows = sink.rows();
            assert_eq!(rows.len(), count as usize, "{request:?}");
            assert!(rows == expected_rows(&request), "{request:?}: rows differ");
        }
    }
    assert_eq!(worker.stats().total_restarts(), 0);
}

#[test]
fn an_unknown_stream_or_an_oversized_row_writes_nothing() {
    let mut worker = spawn();
    let pid = worker.pid();
    for (via, stream, max_stream, row_len, status) in [
        (Via::Ptr, 2, 1, 10, Status::UnknownStream),
        (Via::Bytes, 1, 0, 10, Status::UnknownStream),
        (Via::String, 70_000, 1, 10, Status::UnknownStream),
        (Via::Ptr, 0, 0, MAX_ROW + 1, Status::RowTooLarge),
        (Via::Bytes, 0, 0, MAX_ROW + 1, Status::RowTooLarge),
        (Via::String, 0, 0, MAX_ROW + 1, Status::RowTooLarge),
    ] {
        let request = EmitRequest {
            via,
            stream,
            count: 3,
            row_len,
            max_stream,
        };
        let (summary, sink) = emit(&mut worker, &request);
        assert_eq!(
            summary,
            EmitSummary {
                status: status.code(),
                emitted: 0
            },
            "{request:?}"
        );
        assert!(
            sink.events.is_empty(),
            "{request:?}: {:?}",
            sink.events.len()
        );
    }
    assert_usable(&mut worker);
    assert_eq!(worker.pid(), pid);
}

/// Every case of `driver_bad_arguments`, with the status it must get.
const CASES: &[(&str, Status)] = &[
    ("ptr_null_with_len", Status::NullPointer),
    ("ptr_null_empty", Status::Ok),
    ("ptr_over_max_row", Status::RowTooLarge),
    ("ptr_after_too_large", Status::Ok),
    ("ptr_huge_len", Status::RowTooLarge),
    ("stream_above_max", Status::UnknownStream),
    ("stream_above_u16", Status::UnknownStream),
    ("stream_max_u32", Status::UnknownStream),
    ("bytes_null", Status::NullPointer),
    ("bytes_scalar", Status::BadObject),
    ("bytes_misaligned", Status::BadObject),
    ("bytes_given_a_string", Status::BadObject),
    ("bytes_float_array", Status::BadObject),
    ("bytes_size_over_capacity", Status::BadObject),
    ("bytes_over_max_row", Status::RowTooLarge),
    ("bytes_marked_linear", Status::Ok),
    ("bytes_persistent_rc0", Status::Ok),
    ("bytes_shared_mt", Status::Ok),
    ("string_null", Status::NullPointer),
    ("string_scalar", Status::BadObject),
    ("string_given_bytes", Status::BadObject),
    ("string_without_nul", Status::BadObject),
    ("string_size_zero", Status::BadObject),
    ("string_size_over_capacity", Status::BadObject),
    ("string_bad_utf8", Status::BadUtf8),
    ("string_over_max_row", Status::RowTooLarge),
    ("string_empty", Status::Ok),
    ("string_multibyte_and_nul", Status::Ok),
    ("diag_level_3", Status::BadLevel),
    ("diag_level_max_null_text", Status::BadLevel),
    ("diag_null_text", Status::NullPointer),
    ("diag_bad_utf8", Status::BadUtf8),
    ("diag_over_max_record", Status::RowTooLarge),
    ("diag_null_empty", Status::Ok),
    ("ptr_last", Status::Ok),
];

#[test]
fn bad_arguments_get_typed_statuses_and_the_request_goes_on() {
    let mut worker = spawn();
    let pid = worker.pid();
    let mut sink = Recorder::default();
    let count: usize = worker
        .stream(C_BAD_ARGS, &serde_json::json!({}), &mut sink)
        .expect("the request succeeds");
    assert_eq!(count, CASES.len());

    // What the successful cases wrote, in case order, before the report.
    let rows = sink.rows();
    let (emitted, report): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|(stream, _)| *stream != REPORT_STREAM);
    let want_rows: Vec<(u16, Vec<u8>)> = [
        (0, &b""[..]),                                   // ptr_null_empty
        (0, b"after"),                                   // after a ROW_TOO_LARGE
        (0, b"lin"),                                     // the linearity marker is ignored
        (0, b"rc0"),                                     // m_rc 0: persistent
        (0, b"mt"),                                      // m_rc < 0: multi-threaded
        (0, b""),                                        // ""
        (0, "\u{3bb}x \u{2192} \u{2200}\0y".as_bytes()), // multi-byte, interior NUL
        (1, b"last"),                                    // still usable at the end
    ]
    .into_iter()
    .map(|(stream, bytes)| (stream, bytes.to_vec()))
    .collect();
    let emitted: Vec<_> = emitted.into_iter().cloned().collect();
    assert_eq!(emitted, want_rows);
    assert!(
        rows[..want_rows.len()]
            .iter()
            .all(|(stream, _)| *stream != REPORT_STREAM),
        "the cases' rows come before the report"
    );

    let got: Vec<(String, u32)> = report
        .iter()
        .map(|(_, payload)| {
            let row: CaseRow = serde_json::from_slice(payload).expect("a case row");
            (row.case, row.status)
        })
        .collect();
    let want: Vec<(String, u32)> = CASES
        .iter()
        .map(|(case, status)| ((*case).to_owned(), status.code()))
        .collect();
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(
            got,
            want,
            "case {}: got {:?}, want {:?}",
            want.0,
            Status::from_code(got.1),
            Status::from_code(want.1)
        );
    }
    assert_eq!(got.len(), want.len());

    // Only the empty diagnostic was sent; the refused ones left nothing.
    assert_eq!(sink.diagnostics(), [(Level::Info, String::new())]);
    assert!(
        !sink.events.iter().any(|e| matches!(e, Event::Progress(..))),
        "no progress"
    );
    assert_eq!(worker.pid(), pid, "no case crashed the worker");
    assert_eq!(worker.stats().total_restarts(), 0);
    assert_usable(&mut worker);
}

#[test]
fn progress_reaches_the_supervisor_in_order_with_the_rows() {
    let mut worker = spawn();
    for (steps, total, want_total) in [(6, 6, Some(6)), (3, 0, None)] {
        let mut sink = Recorder::default();
        let summary: StatusSummary = worker
            .stream(C_PROGRESS, &ProgressRequest { steps, total }, &mut sink)
            .unwrap();
        assert_eq!(summary.statuses, [Status::Ok.code()]);
        let want: Vec<Event> = (1..=steps)
            .flat_map(|step| {
                [
                    Event::Row(0, step.to_le_bytes().to_vec()),
                    Event::Progress(step, want_total),
                ]
            })
            .collect();
        assert_eq!(sink.events, want);
    }
}

#[test]
fn diagnostics_reach_the_supervisor_with_their_levels() {
    let mut worker = spawn();
    let mut sink = Recorder::default();
    let summary: StatusSummary = worker
        .stream(C_DIAGNOSTIC, &serde_json::json!({}), &mut sink)
        .unwrap();
    assert_eq!(summary.statuses, [Status::Ok.code(); 3]);
    assert_eq!(
        sink.diagnostics(),
        [
            (Level::Info, "info: \u{3bb} x, x".to_owned()),
            (Level::Warn, "warning: \u{2200} x, x = x".to_owned()),
            (Level::Error, "error: \u{8a3c}\u{660e} failed".to_owned()),
        ]
    );
    assert!(sink.rows().is_empty());
}

#[test]
fn calls_outside_a_request_write_nothing_and_say_no_request() {
    let mut worker = spawn();
    let pid = worker.pid();
    let mut sink = Recorder::default();
    let summary: OutsideSummary = worker
        .stream(C_OUTSIDE, &serde_json::json!({}), &mut sink)
        .expect("the request succeeds");
    let none = |calls: &[u32]| calls.iter().all(|&s| s == Status::NoRequest.code());
    assert_eq!(summary.startup.len(), 10);
    assert!(none(&summary.startup), "at start-up: {:?}", summary.startup);
    assert_eq!(summary.startup_cxx, Status::NoRequest.code(), "from C++");
    assert_eq!(summary.thread.len(), 10);
    assert!(
        none(&summary.thread),
        "another thread: {:?}",
        summary.thread
    );
    assert!(summary.in_request_inside);
    assert!(
        none(&summary.after),
        "after the context: {:?}",
        summary.after
    );
    assert!(
        none(&summary.after_panic),
        "after a panicking context: {:?}",
        summary.after_panic
    );
    assert_eq!(summary.again, Status::Ok.code());
    // Exactly the two rows written inside a context.
    assert_eq!(
        sink.rows(),
        [
            (0, b"before the panic".to_vec()),
            (0, pattern_row(Via::Ptr, 0, 0, 5)),
        ]
    );
    assert!(sink.diagnostics().is_empty());
    assert_eq!(worker.pid(), pid);
    assert_usable(&mut worker);
}

#[test]
fn the_header_and_layouts_are_what_the_c_compiler_sees() {
    let mut worker = spawn();
    let facts: Facts = worker.call(C_FACTS, &serde_json::json!({})).unwrap();
    let want: Vec<u32> = Status::ALL.into_iter().map(Status::code).collect();
    assert_eq!(facts.constants, want, "RINGWORKER_* as compiled");
    assert_eq!(facts.c_header, facts.rust_header, "lean_object bit-fields");
    // Little-endian placement of the plain fields, spelled out.
    assert_eq!(
        facts.c_header,
        [0x04, 0x03, 0x02, 0x01, 0x34, 0x12, 0xAB, 0xCD]
    );
    assert_eq!(facts.c_layout, facts.rust_layout, "sizeof / offsetof");
    assert_eq!(facts.c_layout, [8, 8, 16, 24, 24, 8, 16, 24, 32, 32]);
    assert_eq!(LEAN_LINEAR_MARK_MASK, 0x80);
}
