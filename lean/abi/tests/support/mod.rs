//! Helpers of the integration tests: the probe's config, a sink that records
//! everything in order, and the pattern rows of the C driver.
#![allow(dead_code)]

use std::time::Duration;

use ringworker::sink::{Diagnostic, Level, Progress};
use ringworker::{Row, Sink, SinkError, Worker, WorkerConfig};

#[path = "probe.rs"]
pub mod probe;

use probe::{C_EMIT, EmitRequest, EmitSummary, Via, pattern_row};

/// Per-row limit the tests give the probe (the ring's largest record is
/// 64 KiB, so rows between the two travel as fragments).
pub const MAX_ROW: usize = 512 << 10;
/// The ring's largest record in [`probe_config`].
pub const MAX_RECORD: usize = 64 << 10;

/// The `abi-probe` worker with a 1 MiB ring, 64 KiB records, 512 KiB rows.
pub fn probe_config() -> WorkerConfig {
    WorkerConfig::new(env!("CARGO_BIN_EXE_abi-probe"))
        .with_ring(1 << 20, MAX_RECORD)
        .with_max_row_bytes(MAX_ROW as u64)
        .with_startup_timeout(Duration::from_secs(20))
}

/// What reached the supervisor, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Row(u16, Vec<u8>),
    Progress(u64, Option<u64>),
    Diagnostic(Level, String),
}

/// A sink that records every row, progress record and diagnostic.
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: Vec<Event>,
}

impl Recorder {
    /// The rows, in order.
    pub fn rows(&self) -> Vec<(u16, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Row(stream, payload) => Some((*stream, payload.clone())),
                _ => None,
            })
            .collect()
    }

    /// The diagnostics, in order.
    pub fn diagnostics(&self) -> Vec<(Level, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Diagnostic(level, message) => Some((*level, message.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Sink for Recorder {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        self.events
            .push(Event::Row(row.stream, row.payload.to_vec()));
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        self.events
            .push(Event::Progress(progress.done, progress.total));
    }

    fn diagnostic(&mut self, diagnostic: &Diagnostic) {
        self.events.push(Event::Diagnostic(
            diagnostic.level,
            diagnostic.message.clone(),
        ));
    }
}

/// Runs `c-emit` and returns its summary and what arrived.
pub fn emit(worker: &mut Worker, request: &EmitRequest) -> (EmitSummary, Recorder) {
    let mut sink = Recorder::default();
    let summary = worker
        .stream(C_EMIT, request, &mut sink)
        .unwrap_or_else(|err| panic!("{request:?}: {err}"));
    (summary, sink)
}

/// The rows `c-emit` writes for `request` when all succeed.
pub fn expected_rows(request: &EmitRequest) -> Vec<(u16, Vec<u8>)> {
    (0..request.count)
        .map(|i| {
            (
                request.stream as u16,
                pattern_row(request.via, request.stream, i, request.row_len),
            )
        })
        .collect()
}

/// A plain request that must succeed: the worker is still usable.
pub fn assert_usable(worker: &mut Worker) {
    let request = EmitRequest {
        via: Via::Ptr,
        stream: 0,
        count: 10,
        row_len: 33,
        max_stream: 0,
    };
    let (summary, sink) = emit(worker, &request);
    assert_eq!(
        summary,
        EmitSummary {
            status: 0,
            emitted: 10
        }
    );
    assert_eq!(sink.rows(), expected_rows(&request));
}
