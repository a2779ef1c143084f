//! Running one request: send it, then move records from the ring to the sink
//! until the end marker, checking deadlines, cancellation and the child's
//! liveness whenever the ring runs dry (and every few thousand records).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use shm_proto::control::{self, ParentFrame, RequestFrame};
use shm_proto::payload::{Diagnostic, EndPayload, FailureCode, Progress, RuntimeCode};
use shm_proto::record::fragment;
use shm_proto::{Readiness, Record, RecordKind, RingError};

use crate::cancel::CancelToken;
use crate::error::Error;
use crate::process::Exit;
use crate::reassembly::Reassembly;
use crate::session::{ControlWriter, Session};
use crate::sink::{Row, Sink};
use crate::stats::{RestartReason, StreamStats, WorkerStats};

/// Records handled between two checks of deadlines and cancellation while
/// the ring never runs dry: rare enough to cost nothing per row, frequent
/// enough that a slow sink (1 ms a row) still sees its deadline within a
/// quarter second.
const CHECK_EVERY_RECORDS: u32 = 256;
/// Longest wait on an empty ring before deadlines are checked again.
const MAX_WAIT_SLICE: Duration = Duration::from_millis(50);
/// Interval of the liveness checks that cost a syscall.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(10);

/// The limits of one request.
pub(crate) struct Limits<'a> {
    pub(crate) timeout: Option<Duration>,
    pub(crate) hang_timeout: Option<Duration>,
    pub(crate) cancel_grace: Duration,
    pub(crate) cancel: Option<&'a CancelToken>,
}

/// What to run: the request as it goes out on the control channel.
pub(crate) struct Call<'a> {
    pub(crate) id: u64,
    pub(crate) command: &'a str,
    pub(crate) args: Box<RawValue>,
}

/// How a request ended and what that means for the child.
pub(crate) struct Outcome {
    pub(crate) result: Result<Box<RawValue>, Error>,
    /// The child must be replaced, for this reason.
    pub(crate) restart: Option<RestartReason>,
    /// The request was abandoned while the child still works on it.
    pub(crate) unfinished: bool,
}

impl Outcome {
    fn done(result: Result<Box<RawValue>, Error>) -> Self {
        Outcome {
            result,
            restart: None,
            unfinished: false,
        }
    }

    fn restart(error: Error, reason: RestartReason) -> Self {
        Outcome {
            result: Err(error),
            restart: Some(reason),
            unfinished: false,
        }
    }

    fn abandon(error: Error) -> Self {
        Outcome {
            result: Err(error),
            restart: None,
            unfinished: true,
        }
    }
}

/// Rows delivered so far, per stream.
#[derive(Default)]
struct Delivery {
    rows: u64,
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

    fn merge_into(&self, stats: &mut WorkerStats) {
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

/// Hands a reassembled row to the sink as one row with one sequence number;
/// `Some` if that ends the request.
#[cold]
#[inline(never)]
fn deliver_assembled<S: Sink + ?Sized>(
    session: &mut Session,
    id: u64,
    sink: &mut S,
    reassembly: &mut Reassembly,
    delivery: &mut Delivery,
) -> Option<Outcome> {
    let (stream, _) = reassembly.partial?;
    let row = Row {
        stream,
        sequence: delivery.rows,
        payload: &reassembly.buf,
    };
    let result = catch_unwind(AssertUnwindSafe(|| sink.row(row)));
    let len = reassembly.buf.len();
    reassembly.reset();
    match result {
        Ok(Ok(())) => {
            delivery.add(stream, len);
            None
        }
        Ok(Err(source)) => {
            session.memory.request_cancel(id);
            Some(Outcome::abandon(Error::Sink {
                source,
                rows_delivered: delivery.rows,
            }))
        }
        Err(panic) => {
            session.memory.request_cancel(id);
            Some(Outcome::abandon(Error::SinkPanicked {
                message: panic_message(&*panic),
                rows_delivered: delivery.rows,
            }))
        }
    }
}

/// Runs request `id` on `session`, delivering its rows to `sink`. Generic
/// over the sink so the per-row call is inlined into the loop.
pub(crate) fn run<S: Sink + ?Sized>(
    session: &mut Session,
    call: Call<'_>,
    sink: &mut S,
    limits: &Limits<'_>,
    stats: &mut WorkerStats,
) -> Outcome {
    let mut delivery = Delivery::default();
    let outcome = deliver(session, call, sink, limits, stats, &mut delivery);
    // Rows delivered count whatever the outcome.
    delivery.merge_into(stats);
    outcome
}

fn deliver<S: Sink + ?Sized>(
    session: &mut Session,
    call: Call<'_>,
    sink: &mut S,
    limits: &Limits<'_>,
    stats: &mut WorkerStats,
    delivery: &mut Delivery,
) -> Outcome {
    let id = call.id;
    let frame = ParentFrame::Request(RequestFrame::new(id, call.command, call.args));
    if let Err(source) = control::write_frame(&mut ControlWriter(&session.control), &frame) {
        // A child that died while idle shows up as a broken pipe here.
        return match session.process.reap(Duration::from_secs(1)) {
            Some(exit) => death(session, exit, 0),
            None => Outcome::restart(Error::Control { source }, RestartReason::Protocol),
        };
    }
    let start = Instant::now();
    let deadline = limits.timeout.map(|t| start + t);
    let mut cancel_sent: Option<Instant> = None;
    // Rows of this request dropped after the cancel went out: if any were,
    // the request cannot end `Ok`, whatever the child says (invariant 1).
    let mut discarded_rows = 0u64;
    let mut last_life = start;
    let mut last_heartbeat = session.memory.heartbeat();
    let mut next_liveness = start + LIVENESS_INTERVAL;
    let mut exited = false;
    let max_row_bytes = session.hello.max_row_bytes;
    let mut reassembly = Reassembly::default();
    loop {
        // Fast path: everything published, up to a check interval.
        let mut handled = 0u32;
        let mut failure: Option<RingError> = None;
        while handled < CHECK_EVERY_RECORDS {
            let record = match session.consumer.try_recv() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(source) => {
                    failure = Some(source);
                    break;
                }
            };
            handled += 1;
            if record.request() != id {
                stats.stale_records += 1;
                continue;
            }
            match record.kind() {
                // Nothing else of the request may come between the fragments
                // of a row (an end marker included: the row is partial).
                kind if reassembly.partial.is_some() && kind != RecordKind::Fragment => {
                    drop(record);
                    return protocol(
                        session,
                        "fragmented row interrupted by another record of its request",
                        delivery.rows,
                    );
                }
                RecordKind::Fragment if cancel_sent.is_some() => {
                    // Discarded like data rows after a cancel; a row begun
                    // counts as a dropped row.
                    stats.stale_records += 1;
                    if record.header().flags & fragment::FIRST != 0 {
                        discarded_rows += 1;
                    }
                }
                RecordKind::Fragment => {
                    let step = reassembly.push(&record, max_row_bytes);
                    drop(record);
                    match step {
                        Err(detail) => return protocol(session, detail, delivery.rows),
                        Ok(false) => {}
                        Ok(true) => {
                            if let Some(outcome) =
                                deliver_assembled(session, id, sink, &mut reassembly, delivery)
                            {
                                return outcome;
                            }
                        }
                    }
                }
                RecordKind::Data if cancel_sent.is_some() => {
                    // Cancelled: the caller wants no more rows. Rows the
                    // child queued before it saw the flag are discarded, not
                    // fed through the sink: a slow sink would otherwise eat
                    // the grace period and get a child that honoured the
                    // cancel killed.
                    stats.stale_records += 1;
                    discarded_rows += 1;
                }
                RecordKind::Data => {
                    let row = Row {
                        stream: record.stream(),
                        sequence: delivery.rows,
                        payload: record.payload(),
                    };
                    match catch_unwind(AssertUnwindSafe(|| sink.row(row))) {
                        Ok(Ok(())) => delivery.add(row.stream, row.payload.len()),
                        Ok(Err(source)) => {
                            drop(record);
                            session.memory.request_cancel(id);
                            return Outcome::abandon(Error::Sink {
                                source,
                                rows_delivered: delivery.rows,
                            });
                        }
                        Err(panic) => {
                            drop(record);
                            session.memory.request_cancel(id);
                            return Outcome::abandon(Error::SinkPanicked {
                                message: panic_message(&*panic),
                                rows_delivered: delivery.rows,
                            });
                        }
                    }
                }
                RecordKind::Progress => {
                    release_into(record, &mut session.scratch);
                    let Ok(progress) = serde_json::from_slice::<Progress>(&session.scratch) else {
                        return protocol(session, "malformed progress record", delivery.rows);
                    };
                    stats.progress_records += 1;
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| sink.progress(&progress)))
                    {
                        session.memory.request_cancel(id);
                        return Outcome::abandon(Error::SinkPanicked {
                            message: panic_message(&*panic),
                            rows_delivered: delivery.rows,
                        });
                    }
                }
                RecordKind::Diagnostic => {
                    release_into(record, &mut session.scratch);
                    let Ok(diagnostic) = serde_json::from_slice::<Diagnostic>(&session.scratch)
                    else {
                        return protocol(session, "malformed diagnostic record", delivery.rows);
                    };
                    stats.diagnostics += 1;
                    if let Err(panic) =
                        catch_unwind(AssertUnwindSafe(|| sink.diagnostic(&diagnostic)))
                    {
                        session.memory.request_cancel(id);
                        return Outcome::abandon(Error::SinkPanicked {
                            message: panic_message(&*panic),
                            rows_delivered: delivery.rows,
                        });
                    }
                }
                RecordKind::End => {
                    release_into(record, &mut session.scratch);
                    let end = serde_json::from_slice::<EndPayload>(&session.scratch);
                    return match end {
                        Ok(end) => finish(
                            session,
                            end,
                            Cancellation {
                                asked: cancel_sent.is_some(),
                                discarded_rows,
                            },
                            delivery.rows,
                        ),
                        Err(_) => protocol(session, "malformed end marker", delivery.rows),
                    };
                }
                RecordKind::Padding => {}
            }
        }
        if let Some(source) = failure {
            return corrupt(session, source, delivery.rows);
        }
        if exited && handled == 0 {
            // Everything the dead child published has been delivered.
            let exit = session.process.reap(Duration::from_secs(5));
            return match exit {
                Some(exit) => death(session, exit, delivery.rows),
                None => Outcome::restart(
                    Error::Hung {
                        silent_for: last_life.elapsed(),
                        rows_delivered: delivery.rows,
                    },
                    RestartReason::Hung,
                ),
            };
        }

        // Slow path: deadlines, cancellation, liveness.
        let now = Instant::now();
        if handled > 0 {
            last_life = now;
        }
        if let Some(token) = limits.cancel
            && cancel_sent.is_none()
            && token.is_cancelled()
        {
            session.memory.request_cancel(id);
            cancel_sent = Some(now);
            // A row in progress will never be delivered now.
            if reassembly.reset() {
                discarded_rows += 1;
            }
        }
        if let Some(sent) = cancel_sent
            && now.duration_since(sent) >= limits.cancel_grace
        {
            session.process.kill_and_reap();
            return Outcome::restart(
                Error::Cancelled {
                    rows_delivered: delivery.rows,
                    killed: true,
                },
                RestartReason::Cancelled,
            );
        }
        if let Some(deadline) = deadline
            && now >= deadline
        {
            session.process.kill_and_reap();
            return Outcome::restart(
                Error::Timeout {
                    after: deadline - start,
                    rows_delivered: delivery.rows,
                },
                RestartReason::Timeout,
            );
        }
        if now >= next_liveness && !exited {
            next_liveness = now + LIVENESS_INTERVAL;
            if session.process.has_exited() {
                // Drain what it published before dying, then report.
                exited = true;
                continue;
            }
            let heartbeat = session.memory.heartbeat();
            if heartbeat != last_heartbeat {
                last_heartbeat = heartbeat;
                last_life = now;
            }
            if let Some(hang) = limits.hang_timeout
                && now.duration_since(last_life) >= hang
            {
                session.process.kill_and_reap();
                return Outcome::restart(
                    Error::Hung {
                        silent_for: now.duration_since(last_life),
                        rows_delivered: delivery.rows,
                    },
                    RestartReason::Hung,
                );
            }
        }
        if handled == 0 && !exited {
            let mut slice = MAX_WAIT_SLICE.min(next_liveness.saturating_duration_since(now));
            if let Some(deadline) = deadline {
                slice = slice.min(deadline.saturating_duration_since(now));
            }
            if cancel_sent.is_some() {
                slice = slice.min(limits.cancel_grace);
            }
            match session.consumer.wait(slice) {
                Ok(Readiness::Closed) => {
                    // A worker closes its ring only on its way out; one that
                    // closes it mid-request and lingers is broken (and would
                    // make every further wait return at once).
                    if session.process.reap(Duration::from_secs(1)).is_none() {
                        return protocol(
                            session,
                            "worker closed its ring during a request",
                            delivery.rows,
                        );
                    }
                    exited = true;
                }
                Ok(_) => {}
                Err(source) => return corrupt(session, source, delivery.rows),
            }
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

/// What the supervisor did about cancelling the request, for judging its end.
struct Cancellation {
    /// The cancel flag was set for this request.
    asked: bool,
    /// Rows that arrived after that and were dropped.
    discarded_rows: u64,
}

/// Turns the child's end marker into the request's result. Only the runtime
/// codes carry meaning here; a command's own code, whatever its string, is
/// the command's failure.
fn finish(
    session: &mut Session,
    end: EndPayload,
    cancellation: Cancellation,
    rows_delivered: u64,
) -> Outcome {
    let cancelled = Error::Cancelled {
        rows_delivered,
        killed: false,
    };
    let failure = match end {
        // The child finished, but rows it committed were dropped on our side
        // after the cancel: `Ok` would claim a complete delivery.
        EndPayload::Ok(_) if cancellation.discarded_rows > 0 => {
            return Outcome::done(Err(cancelled));
        }
        EndPayload::Ok(summary) => return Outcome::done(Ok(summary)),
        EndPayload::Err(failure) => failure,
        _ => return protocol(session, "end marker of an unknown shape", rows_delivered),
    };
    match failure.code {
        FailureCode::Runtime(RuntimeCode::Cancelled) if cancellation.asked => {
            Outcome::done(Err(cancelled))
        }
        // The runtime reports a cancellation only after seeing this
        // request's cancel flag, which nobody set.
        FailureCode::Runtime(RuntimeCode::Cancelled) => protocol(
            session,
            "worker reported a cancellation that was never requested",
            rows_delivered,
        ),
        FailureCode::Runtime(RuntimeCode::Panic) => Outcome::restart(
            Error::WorkerPanicked {
                message: failure.message,
                rows_delivered,
            },
            RestartReason::Panicked,
        ),
        code => Outcome::done(Err(Error::Worker {
            code,
            message: failure.message,
            rows_delivered,
        })),
    }
}

fn death(session: &mut Session, exit: Exit, rows_delivered: u64) -> Outcome {
    let output = session.process.output_tail();
    match exit {
        Exit::Code(code) => Outcome::restart(
            Error::ChildExited {
                code,
                rows_delivered,
                output,
            },
            RestartReason::Exited,
        ),
        Exit::Signal(signal) => Outcome::restart(
            Error::ChildKilled {
                signal,
                rows_delivered,
                output,
            },
            RestartReason::Signalled,
        ),
    }
}

fn corrupt(session: &mut Session, source: RingError, rows_delivered: u64) -> Outcome {
    session.memory.poison();
    session.process.kill_and_reap();
    Outcome::restart(
        Error::RingCorrupt {
            source,
            rows_delivered,
        },
        RestartReason::Corrupt,
    )
}

fn protocol(session: &mut Session, detail: &str, rows_delivered: u64) -> Outcome {
    session.process.kill_and_reap();
    Outcome::restart(
        Error::Protocol {
            detail: detail.to_owned(),
            rows_delivered,
        },
        RestartReason::Protocol,
    )
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
