//! A child that changes records after publishing them, while the supervisor
//! reads them (issue 7, "nothing the child can still change is parsed in
//! place"): the fixture's `hostile_mutate` command writes typed rows,
//! progress reports and diagnostics while a second thread of the child
//! stores bytes that are never valid UTF-8 into records it has published,
//! and sometimes into its end marker.
//!
//! Over many requests: nothing panics; each request ends `Ok` or with a
//! typed error; every string that reaches the caller (progress messages,
//! diagnostics, decoded rows, the summary, error messages) is valid UTF-8
//! and is exactly one the child wrote (a mutated payload is never valid
//! JSON, so only an unmutated snapshot may decode); and the worker serves a
//! clean request afterwards.
//!
//! What this cannot show deterministically: the race inside a parser that
//! works in place (UTF-8 checked, then copied) has a window of nanoseconds,
//! and whether a mutation lands in it here is up to the scheduler. The
//! shm-proto test `hostile_mutator` shows such a parser caught within a
//! second; this one shows the whole supervisor path stays typed and
//! truthful with a real child process.

use std::time::Duration;

use ringworker::sink::{Diagnostic, Progress, RowDecodeError};
use ringworker::{
    Error, RequestOptions, RestartPolicy, Router, Row, Sink, SinkError, TypedSink, Worker,
    WorkerConfig,
};

#[path = "support/hostile.rs"]
mod hostile;

use hostile::{HOSTILE, HostileRequest, HostileRow, HostileSummary, TEXTS};

const REQUESTS: u64 = 50;
const ROWS: u64 = 400;

fn config() -> WorkerConfig {
    WorkerConfig::new(env!("CARGO_BIN_EXE_ringworker-fixture"))
        .with_startup_timeout(Duration::from_secs(10))
        // A mutated record header can make the supervisor skip the end
        // marker as another request's record; it then reports a hang.
        .with_hang_timeout(Duration::from_millis(500))
        .with_request_timeout(Duration::from_secs(20))
        // A small ring, so that wraps (and padding) happen often.
        .with_ring(64 * 1024, 4096)
        // Most requests kill their child on purpose.
        .with_restart_policy(
            RestartPolicy::default().with_restart_limit(100_000, Duration::from_secs(1)),
        )
}

/// A router of typed rows that also records diagnostics.
struct Recording<'a> {
    router: Router<'a>,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Sink for Recording<'_> {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        self.router.row(row)
    }

    fn progress(&mut self, progress: &Progress) {
        self.router.progress(progress);
    }

    fn diagnostic(&mut self, diagnostic: &Diagnostic) {
        self.diagnostics.push(diagnostic.clone());
    }
}

/// Checks a string that reached the caller: valid UTF-8 (looked at as bytes
/// only) and one of the child's texts.
fn check_text(what: &str, s: &str) {
    assert!(
        std::str::from_utf8(s.as_bytes()).is_ok(),
        "{what}: not UTF-8: {:?}",
        String::from_utf8_lossy(s.as_bytes())
    );
    assert!(
        TEXTS.contains(&s),
        "{what}: a text the child never sent: {s:?}"
    );
}

/// What one request produced.
#[derive(Default)]
struct Seen {
    rows: Vec<HostileRow>,
    progress: Vec<Progress>,
    diagnostics: Vec<Diagnostic>,
}

fn run(worker: &mut Worker, request: &HostileRequest) -> (Result<HostileSummary, Error>, Seen) {
    let mut seen = Seen::default();
    let result = {
        let Seen {
            rows,
            progress,
            diagnostics,
        } = &mut seen;
        let router = Router::new()
            .route(0, TypedSink::new(|_stream, row: HostileRow| rows.push(row)))
            .on_progress(|p| progress.push(p.clone()));
        let mut sink = Recording {
            router,
            diagnostics,
        };
        worker.stream_with(HOSTILE, request, &mut sink, RequestOptions::default())
    };
    (result, seen)
}

/// Everything that reached the caller is what the child wrote, in order.
fn check_seen(seen: &Seen, rows: u64) {
    for (n, row) in seen.rows.iter().enumerate() {
        assert_eq!(row.i, n as u64, "rows in order, none lost");
        check_text("row", &row.text);
        assert_eq!(
            row,
            &HostileRow {
                i: row.i,
                text: hostile::text(row.i).to_owned()
            }
        );
    }
    for (n, p) in seen.progress.iter().enumerate() {
        let i = 16 * n as u64 + 15;
        check_text("progress", p.message.as_deref().unwrap_or(TEXTS[0]));
        assert_eq!(p, &hostile::progress(i, rows));
    }
    for (n, d) in seen.diagnostics.iter().enumerate() {
        let i = 23 * n as u64 + 22;
        check_text("diagnostic", &d.message);
        assert_eq!(d, &hostile::diagnostic(i));
    }
}

#[test]
fn a_child_mutating_published_records_gets_typed_errors_and_true_strings_only() {
    let mut worker = Worker::spawn(config()).expect("spawn");
    let (mut ok, mut decode, mut protocol, mut corrupt, mut hung) = (0, 0, 0, 0, 0);
    for request in 0..REQUESTS {
        let args = HostileRequest {
            rows: ROWS,
            seed: 0x5EED_0000 + request,
            mutate_one_in: if request % 2 == 0 { 8 } else { 40 },
            rows_too: request % 2 == 1,
        };
        let (result, seen) = run(&mut worker, &args);
        check_seen(&seen, ROWS);
        match result {
            Ok(summary) => {
                check_text("summary", &summary.note);
                assert_eq!(
                    summary,
                    HostileSummary {
                        rows: ROWS,
                        note: hostile::text(ROWS).to_owned()
                    }
                );
                assert_eq!(seen.rows.len() as u64, ROWS);
                ok += 1;
            }
            Err(err) => {
                // Every error renders, and what it says is UTF-8.
                let message = err.to_string();
                assert!(std::str::from_utf8(message.as_bytes()).is_ok());
                let delivered = err.rows_delivered();
                assert_eq!(delivered, Some(seen.rows.len() as u64), "{err}");
                match &err {
                    Error::Sink { source, .. } => {
                        let decode_error = source.inner().downcast_ref::<RowDecodeError>();
                        assert!(decode_error.is_some(), "{err}");
                        decode += 1;
                    }
                    Error::Protocol { detail, .. } => {
                        assert!(detail.starts_with("malformed"), "{err}");
                        protocol += 1;
                    }
                    Error::RingCorrupt { .. } => corrupt += 1,
                    Error::Hung { .. } => hung += 1,
                    other => panic!("request {request}: untyped or unexpected failure: {other}"),
                }
            }
        }
    }
    eprintln!(
        "{REQUESTS} requests: {ok} ok, {decode} rows rejected, {protocol} progress/diagnostic/end \
         markers rejected, {corrupt} ring corruptions, {hung} hangs"
    );

    // The worker (respawned where needed) serves a clean request.
    let clean = HostileRequest {
        rows: ROWS,
        seed: 0,
        mutate_one_in: 0,
        rows_too: false,
    };
    let (result, seen) = run(&mut worker, &clean);
    let summary = result.expect("a clean request after the hostile ones");
    assert_eq!(summary.rows, ROWS);
    assert_eq!(seen.rows.len() as u64, ROWS);
    assert_eq!(seen.progress.len() as u64, ROWS / 16);
    assert_eq!(seen.diagnostics.len() as u64, ROWS / 23);
    check_seen(&seen, ROWS);
}
