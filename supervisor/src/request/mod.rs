//! Running one request: send it, arm its deadlines with the watchdog, then
//! move records from the ring to the sink until the end marker.
//!
//! The request thread only moves records ([`dispatch`]). Deadlines, hang
//! detection, cancel grace and memory limits are the watchdog's: when it
//! kills the child or sees it die, it records why in the child's `Watch`,
//! raises its attention flag and wakes the consumer. This loop looks at the
//! flag once per batch of records and after every wait, so a blocked sink
//! delays the error until the sink call returns, never the kill.

mod dispatch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use shm_proto::control::{self, FrameError, ParentFrame, RequestFrame};
use shm_proto::payload::{EndPayload, FailureCode, RuntimeCode};
use shm_proto::{RECORD_HEADER_BYTES, Readiness, RingError};

use crate::cancel::CancelToken;
use crate::error::Error;
use crate::process::Exit;
use crate::session::{ControlWriter, Session};
use crate::sink::Sink;
use crate::stats::{RestartReason, WorkerStats};
use crate::watchdog::{Verdict, Watch};

use dispatch::{Dispatcher, Ending};

/// Records moved between two looks at the watchdog's flag and the cancel
/// token: rare enough to cost nothing per row, frequent enough that a slow
/// sink (1 ms a row) still sees a verdict within a quarter second.
const BATCH: u32 = 256;

/// Longest sleep on an empty ring. Every event that matters wakes the
/// consumer (the watchdog's verdicts and reaps, cancel tokens, the child's
/// records); this only bounds the cost of a wake lost to a bug.
const SAFETY_SLICE: Duration = Duration::from_secs(1);

/// The limits of one request.
pub(crate) struct Limits<'a> {
    pub(crate) timeout: Option<Duration>,
    pub(crate) hang_timeout: Option<Duration>,
    pub(crate) cancel_grace: Duration,
    pub(crate) control_timeout: Duration,
    pub(crate) cancel: Option<&'a CancelToken>,
}

/// What to run: the request as it goes out on the control channel.
pub(crate) struct Call<'a> {
    pub(crate) id: u64,
    pub(crate) command: &'a str,
    pub(crate) args: &'a RawValue,
}

/// How a request ended and what that means for the child.
pub(crate) struct Outcome {
    pub(crate) result: Result<Box<RawValue>, Error>,
    /// The child must be replaced, for this reason.
    pub(crate) restart: Option<RestartReason>,
    /// The request was abandoned while the child still works on it.
    pub(crate) unfinished: bool,
    /// The child never took the request off its control channel: it may be
    /// sent again to a fresh child without running twice.
    pub(crate) never_accepted: bool,
}

impl Outcome {
    fn done(result: Result<Box<RawValue>, Error>) -> Self {
        Outcome {
            result,
            restart: None,
            unfinished: false,
            never_accepted: false,
        }
    }

    fn restart(error: Error, reason: RestartReason) -> Self {
        Outcome {
            result: Err(error),
            restart: Some(reason),
            unfinished: false,
            never_accepted: false,
        }
    }

    fn abandon(error: Error) -> Self {
        Outcome {
            result: Err(error),
            restart: None,
            unfinished: true,
            never_accepted: false,
        }
    }
}

/// Runs request `call.id` on `session`, delivering its rows to `sink`.
/// Generic over the sink so the per-row call is inlined into the loop.
pub(crate) fn run<S: Sink + ?Sized>(
    session: &mut Session,
    call: Call<'_>,
    sink: &mut S,
    limits: &Limits<'_>,
    stats: &mut WorkerStats,
) -> Outcome {
    let mut dispatcher = Dispatcher::new(
        call.id,
        sink,
        session.hello.max_row_bytes,
        limits.cancel.cloned(),
    );
    let mut outcome = deliver(session, call, &mut dispatcher, limits, stats);
    // Rows delivered count whatever the outcome.
    dispatcher.delivery.merge_into(stats);
    if outcome.restart.is_some()
        && dispatcher.delivery.rows == 0
        && session.memory.accepted_request() < dispatcher.id()
    {
        outcome.never_accepted = true;
    }
    outcome
}

fn deliver<S: Sink + ?Sized>(
    session: &mut Session,
    call: Call<'_>,
    dispatcher: &mut Dispatcher<'_, S>,
    limits: &Limits<'_>,
    stats: &mut WorkerStats,
) -> Outcome {
    let id = call.id;
    let watch = Arc::clone(session.process.watch());
    let sent = Instant::now();
    let control_deadline = sent.checked_add(limits.control_timeout);
    let frame = ParentFrame::Request(RequestFrame::new(id, call.command, call.args.to_owned()));
    let mut writer = ControlWriter {
        socket: &session.control,
        deadline: control_deadline,
    };
    if let Err(source) = control::write_frame(&mut writer, &frame) {
        if let FrameError::TooLarge { len, max } = source {
            // Refused before a byte was written: the caller's mistake, the
            // child is fine.
            return Outcome::done(Err(Error::RequestTooLarge { bytes: len, max }));
        }
        if source.is_timeout() {
            // Alive but not reading: it gets no second chance.
            session.process.kill();
            return Outcome::restart(Error::Control { source }, RestartReason::Unresponsive);
        }
        // A child that died while idle shows up as a broken pipe here.
        return match session.process.reap(Duration::from_secs(1)) {
            Some(exit) => death(session, exit, 0),
            None => Outcome::restart(Error::Control { source }, RestartReason::Protocol),
        };
    }
    session.requests += 1;
    watch.arm(limits.timeout, limits.hang_timeout);
    loop {
        let mut handled = 0u32;
        let mut failure: Option<RingError> = None;
        while handled < BATCH {
            let record = match session.consumer.try_recv() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(source) => {
                    failure = Some(source);
                    break;
                }
            };
            handled += 1;
            if let Some(ending) = dispatcher.dispatch(record, &mut session.scratch, stats) {
                return conclude(session, &watch, ending, dispatcher, limits);
            }
        }
        if let Some(source) = failure {
            return corrupt(session, source, dispatcher.delivery.rows);
        }
        if handled > 0 {
            watch.note_progress(handled);
        }
        if let Some(token) = limits.cancel
            && !dispatcher.cancelled()
            && token.is_cancelled()
        {
            // The token started the grace already if it was cancelled while
            // this request ran; this covers a token cancelled before.
            session.memory.request_cancel(id);
            watch.start_cancel_grace(limits.cancel_grace);
            dispatcher.cancel();
        }
        if watch.attention() {
            return ended_by_watchdog(session, &watch, dispatcher, limits, stats);
        }
        if handled == 0 {
            match session.consumer.wait(SAFETY_SLICE) {
                Ok(Readiness::Closed) => {
                    // A worker closes its ring only on its way out; one that
                    // closes it mid-request and lingers is broken (and would
                    // make every further wait return at once).
                    if watch.wait_exit(Duration::from_secs(1)).is_none() {
                        return protocol(
                            session,
                            "worker closed its ring during a request",
                            dispatcher.delivery.rows,
                        );
                    }
                }
                Ok(_) => {}
                Err(source) => return corrupt(session, source, dispatcher.delivery.rows),
            }
        }
    }
}

/// The watchdog killed the child or saw it die.
fn ended_by_watchdog<S: Sink + ?Sized>(
    session: &mut Session,
    watch: &Watch,
    dispatcher: &mut Dispatcher<'_, S>,
    limits: &Limits<'_>,
    stats: &mut WorkerStats,
) -> Outcome {
    let rows_delivered = dispatcher.delivery.rows;
    let (exit, verdict) = watch.status();
    let (error, reason) = match verdict {
        Some(Verdict::Timeout { after }) => (
            Error::Timeout {
                after,
                rows_delivered,
            },
            RestartReason::Timeout,
        ),
        Some(Verdict::Hung { silent_for }) => (
            Error::Hung {
                silent_for,
                rows_delivered,
            },
            RestartReason::Hung,
        ),
        Some(Verdict::CancelIgnored) => (
            Error::Cancelled {
                rows_delivered,
                killed: true,
            },
            RestartReason::Cancelled,
        ),
        Some(Verdict::MemoryLimit { sample, limit }) => (
            Error::MemoryLimit {
                sample,
                limit,
                rows_delivered,
            },
            RestartReason::MemoryLimit,
        ),
        Some(Verdict::PoolBudget {
            sample,
            sum,
            budget,
        }) => (
            Error::PoolMemoryBudget {
                sample,
                total: sum,
                budget,
                rows_delivered,
            },
            RestartReason::PoolBudget,
        ),
        Some(Verdict::Idle | Verdict::Stopped) | None => {
            // Died on its own: what it published before dying is delivered
            // first (its end marker may be among it), within one ring's
            // worth of records, so a descendant still holding the ring
            // cannot keep the request alive.
            let mut budget = session.ring_capacity / RECORD_HEADER_BYTES as u64 + 1;
            while budget > 0 {
                budget -= 1;
                let ending = match session.consumer.try_recv() {
                    Ok(Some(record)) => dispatcher.dispatch(record, &mut session.scratch, stats),
                    Ok(None) => break,
                    Err(source) => Some(Ending::Corrupt(source)),
                };
                if let Some(ending) = ending {
                    return conclude(session, watch, ending, dispatcher, limits);
                }
            }
            let exit = exit
                .or_else(|| watch.wait_exit(Duration::from_secs(5)))
                .unwrap_or(Exit::Signal(9));
            return death(session, exit, dispatcher.delivery.rows);
        }
    };
    Outcome::restart(error, reason)
}

/// The request is over from the ring's point of view.
fn conclude<S: Sink + ?Sized>(
    session: &mut Session,
    watch: &Watch,
    ending: Ending,
    dispatcher: &Dispatcher<'_, S>,
    limits: &Limits<'_>,
) -> Outcome {
    let rows = dispatcher.delivery.rows;
    match ending {
        Ending::End(end) => {
            // The token sets the ring's cancel word itself, so the child can
            // honour a cancel before this thread has looked at the token.
            let asked = dispatcher.cancel_asked();
            finish(session, end, dispatcher, asked, rows)
        }
        Ending::Protocol(detail) => protocol(session, detail, rows),
        Ending::Corrupt(source) => corrupt(session, source, rows),
        Ending::SinkFailed(error) => {
            // The child goes on until it sees the cancel; the watchdog
            // enforces the grace from now on, even while nobody settles.
            session.memory.request_cancel(dispatcher.id());
            watch.start_cancel_grace(limits.cancel_grace);
            Outcome::abandon(error)
        }
    }
}

/// Turns the child's end marker into the request's result. Only the runtime
/// codes carry meaning here; a command's own code, whatever its string, is
/// the command's failure.
fn finish<S: Sink + ?Sized>(
    session: &mut Session,
    end: EndPayload,
    dispatcher: &Dispatcher<'_, S>,
    cancel_asked: bool,
    rows_delivered: u64,
) -> Outcome {
    let cancelled = Error::Cancelled {
        rows_delivered,
        killed: false,
    };
    let failure = match end {
        // The child finished, but rows it committed were dropped on our side
        // after the cancel: `Ok` would claim a complete delivery.
        EndPayload::Ok(_) if dispatcher.discarded_rows > 0 => {
            return Outcome::done(Err(cancelled));
        }
        EndPayload::Ok(summary) => return Outcome::done(Ok(summary)),
        EndPayload::Err(failure) => failure,
        _ => return protocol(session, "end marker of an unknown shape", rows_delivered),
    };
    match failure.code {
        FailureCode::Runtime(RuntimeCode::Cancelled) if cancel_asked => {
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
    let output = session.process.final_output();
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
    session.process.kill();
    Outcome::restart(
        Error::RingCorrupt {
            source,
            rows_delivered,
        },
        RestartReason::Corrupt,
    )
}

fn protocol(session: &mut Session, detail: &str, rows_delivered: u64) -> Outcome {
    session.process.kill();
    Outcome::restart(
        Error::Protocol {
            detail: detail.to_owned(),
            rows_delivered,
        },
        RestartReason::Protocol,
    )
}
