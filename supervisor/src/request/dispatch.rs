//! The record dispatcher: what each record of the running request means,
//! and the one place where the sink is called and its failures caught.
//!
//! It knows nothing of deadlines or of the child's liveness (the watchdog
//! owns those) and touches no process: it turns records into sink calls and
//! reports an [`Ending`] when the request is over from the ring's point of
//! view. The streaming loop (`request/mod.rs`) turns that into an outcome.

use std::panic::{AssertUnwindSafe, catch_unwind};

use shm_proto::payload::{Diagnostic, EndPayload, Progress};
use shm_proto::record::fragment;
use shm_proto::{Record, RecordKind};

use crate::cancel::CancelToken;
use crate::error::Error;
use crate::reassembly::Reassembly;
use crate::sink::{Row, Sink};
use crate::stats::{StreamStats, WorkerStats};

/// Why a request stopped taking records.
pub(crate) enum Ending {
    /// The child's end marker.
    End(EndPayload),
    /// A record that breaks the protocol.
    Protocol(&'static str),
    /// The sink failed or panicked: the request is abandoned.
    SinkFailed(Error),
    /// The ring failed validation.
    Corrupt(shm_proto::RingError),
}

/// Rows delivered so far, per stream.
#[derive(Default)]
pub(crate) struct Delivery {
    pub(crate) rows: u64,
    bytes: u64,
    per_stream: Vec<StreamStats>,
}

impl Delivery {
    #[inline]
    fn add(&mut self, stream: u16, len: usize) {
        self.rows += 1;
        self.bytes += len as u64;
        let index = usize::from(stream);
        if index >= self.per_stream.len() {
            self.per_stream.resize(index + 1, StreamStats::default());
        }
        let s = &mut self.per_stream[index];
        s.rows += 1;
        s.bytes += len as u64;
    }

    pub(crate) fn merge_into(&self, stats: &mut WorkerStats) {
        stats.rows += self.rows;
        stats.bytes += self.bytes;
        for (stream, s) in self.per_stream.iter().enumerate() {
            if s.rows > 0 {
                let total = stats.per_stream.entry(stream as u16).or_default();
                total.rows += s.rows;
                total.bytes += s.bytes;
            }
        }
    }
}

/// Feeds the records of request `id` to a sink.
pub(crate) struct Dispatcher<'s, S: Sink + ?Sized> {
    id: u64,
    sink: &'s mut S,
    pub(crate) delivery: Delivery,
    reassembly: Reassembly,
    max_row_bytes: u64,
    /// The caller cancelled: rows from now on are dropped, not delivered
    /// (a slow sink would otherwise eat the grace and get a child that
    /// honoured the cancel killed).
    cancelled: bool,
    /// Rows of this request dropped after the cancel: if any were, the
    /// request cannot end `Ok`, whatever the child says (invariant 1).
    pub(crate) discarded_rows: u64,
    /// The request's cancel token, if any.
    token: Option<CancelToken>,
}

impl<'s, S: Sink + ?Sized> Dispatcher<'s, S> {
    pub(crate) fn new(
        id: u64,
        sink: &'s mut S,
        max_row_bytes: u64,
        token: Option<CancelToken>,
    ) -> Self {
        Dispatcher {
            id,
            sink,
            delivery: Delivery::default(),
            reassembly: Reassembly::default(),
            max_row_bytes,
            cancelled: false,
            discarded_rows: 0,
            token,
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancelled
    }

    /// Whether the caller asked to cancel, noticed by this thread or not.
    pub(crate) fn cancel_asked(&self) -> bool {
        self.cancelled || self.token.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// From now on rows are dropped; a row in progress will never be delivered.
    pub(crate) fn cancel(&mut self) {
        self.cancelled = true;
        if self.reassembly.reset() {
            self.discarded_rows += 1;
        }
    }

    /// Handles one record of any request; `Some` if the request is over.
    /// `scratch` receives the payloads the supervisor parses itself.
    /// Inlined into the streaming loop: this is the per-row path.
    #[inline(always)]
    pub(crate) fn dispatch(
        &mut self,
        record: Record<'_>,
        scratch: &mut Vec<u8>,
        stats: &mut WorkerStats,
    ) -> Option<Ending> {
        if record.request() != self.id {
            stats.stale_records += 1;
            return None;
        }
        let kind = record.kind();
        if self.reassembly.partial.is_some() && kind != RecordKind::Fragment {
            // Nothing else of the request may come between the fragments of
            // a row, except the end marker of a child that saw the cancel
            // (the token sets the ring's flag itself, so the child may stop
            // mid-row before this thread has looked at the token).
            if kind == RecordKind::End && self.cancel_asked() {
                self.cancel();
            } else {
                return Some(Ending::Protocol(
                    "fragmented row interrupted by another record of its request",
                ));
            }
        }
        match kind {
            RecordKind::Fragment if self.cancelled => {
                // A row begun counts as a dropped row.
                stats.stale_records += 1;
                if record.header().flags & fragment::FIRST != 0 {
                    self.discarded_rows += 1;
                }
                None
            }
            RecordKind::Fragment => {
                let step = self.reassembly.push(&record, self.max_row_bytes);
                drop(record);
                match step {
                    Err(detail) => Some(Ending::Protocol(detail)),
                    Ok(false) => None,
                    Ok(true) => self.deliver_assembled(),
                }
            }
            RecordKind::Data if self.cancelled => {
                stats.stale_records += 1;
                self.discarded_rows += 1;
                None
            }
            RecordKind::Data => {
                let row = Row {
                    stream: record.stream(),
                    sequence: self.delivery.rows,
                    payload: record.payload(),
                };
                let sink = &mut *self.sink;
                let result = catch_unwind(AssertUnwindSafe(|| sink.row(row)));
                let (stream, len) = (row.stream, row.payload.len());
                drop(record);
                self.settle_sink_call(result, Some((stream, len)))
            }
            RecordKind::Progress => self.notify(
                record,
                scratch,
                &mut stats.progress_records,
                "malformed progress record",
                |sink, progress: &Progress| sink.progress(progress),
            ),
            RecordKind::Diagnostic => self.notify(
                record,
                scratch,
                &mut stats.diagnostics,
                "malformed diagnostic record",
                |sink, diagnostic: &Diagnostic| sink.diagnostic(diagnostic),
            ),
            RecordKind::End => {
                release_into(record, scratch);
                Some(match serde_json::from_slice::<EndPayload>(scratch) {
                    Ok(end) => Ending::End(end),
                    Err(_) => Ending::Protocol("malformed end marker"),
                })
            }
            RecordKind::Padding => None,
        }
    }

    /// A progress or diagnostic record: parsed from a private copy, counted,
    /// handed to the sink through `call`.
    #[cold]
    #[inline(never)]
    fn notify<T: serde::de::DeserializeOwned>(
        &mut self,
        record: Record<'_>,
        scratch: &mut Vec<u8>,
        counter: &mut u64,
        malformed: &'static str,
        call: impl FnOnce(&mut S, &T),
    ) -> Option<Ending> {
        release_into(record, scratch);
        let Ok(payload) = serde_json::from_slice::<T>(scratch) else {
            return Some(Ending::Protocol(malformed));
        };
        *counter += 1;
        let sink = &mut *self.sink;
        let result = catch_unwind(AssertUnwindSafe(|| {
            call(sink, &payload);
            Ok(())
        }));
        self.settle_sink_call(result, None)
    }

    /// Hands a reassembled row to the sink as one row with one sequence number.
    #[cold]
    #[inline(never)]
    fn deliver_assembled(&mut self) -> Option<Ending> {
        let (stream, _) = self.reassembly.partial?;
        let row = Row {
            stream,
            sequence: self.delivery.rows,
            payload: &self.reassembly.buf,
        };
        let sink = &mut *self.sink;
        let result = catch_unwind(AssertUnwindSafe(|| sink.row(row)));
        let len = self.reassembly.buf.len();
        self.reassembly.reset();
        self.settle_sink_call(result, Some((stream, len)))
    }

    /// The one place a sink call's result is judged: a row (`row` is its
    /// stream and length) counts as delivered only if the sink accepted it;
    /// an error or a panic abandons the request.
    #[inline(always)]
    fn settle_sink_call(
        &mut self,
        result: std::thread::Result<Result<(), crate::sink::SinkError>>,
        row: Option<(u16, usize)>,
    ) -> Option<Ending> {
        let rows_delivered = self.delivery.rows;
        match result {
            Ok(Ok(())) => {
                if let Some((stream, len)) = row {
                    self.delivery.add(stream, len);
                }
                None
            }
            Ok(Err(source)) => Some(Ending::SinkFailed(Error::Sink {
                source,
                rows_delivered,
            })),
            Err(panic) => Some(Ending::SinkFailed(Error::SinkPanicked {
                message: panic_message(&*panic),
                rows_delivered,
            })),
        }
    }
}

/// Copies a record the supervisor parses itself (progress, diagnostic, end
/// marker) into `scratch`, private memory, and releases it. The child can
/// store into the shared bytes at any time, also between serde_json's UTF-8
/// check and its copy into a `String`; parsed from the private copy, a racing
/// child can make the payload garbage (rejected as malformed), never a
/// `String` that is not UTF-8. `scratch` is the session's, reused, so this
/// allocates only while it grows to the largest such payload (at most the
/// ring's maximum record).
#[inline]
fn release_into(record: Record<'_>, scratch: &mut Vec<u8>) {
    record.copy_payload_into(scratch);
    drop(record);
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "sink panicked".to_owned()
    }
}
