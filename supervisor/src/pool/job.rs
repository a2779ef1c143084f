//! One job of a [`Pool`](crate::Pool): what to run ([`Job`], [`JobOptions`]),
//! the caller's handle on it ([`JobHandle`]) and what it gives back
//! ([`JobOutput`], [`OwnedRow`], [`FailedAttempt`]).
//!
//! A job's life: `Queued` (in the pool's queue) → `Running` (a pool worker
//! took it) → `Done`; or `Queued` → `Done` without running (queue timeout,
//! cancelled before it started, pool closed). Every transition out of
//! `Queued` happens under the queue's lock (see `queue`), so a job is
//! either taken by one worker or failed, never both.

use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::cancel::CancelToken;
use crate::error::Error;

use super::queue::Queue;

/// A job for a [`Pool`](crate::Pool): a command, its JSON request, options.
#[derive(Debug)]
pub struct Job {
    pub(crate) command: String,
    pub(crate) request: Box<RawValue>,
    pub(crate) options: JobOptions,
}

impl Job {
    /// `command` with `request` serialized to JSON now (a request that does
    /// not serialize is [`Error::EncodeRequest`]).
    pub fn new<Req: Serialize + ?Sized>(command: &str, request: &Req) -> Result<Job, Error> {
        let request = serde_json::value::to_raw_value(request)
            .map_err(|source| Error::EncodeRequest { source })?;
        Ok(Job {
            command: command.to_owned(),
            request,
            options: JobOptions::default(),
        })
    }

    /// Sets the job's options.
    #[must_use]
    pub fn with_options(mut self, options: JobOptions) -> Job {
        self.options = options;
        self
    }

    /// The command's name.
    pub fn command(&self) -> &str {
        &self.command
    }
}

/// Per-job options. Build with `JobOptions::default()` and the setters.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JobOptions {
    /// Deadline of each attempt (default: the worker config's `request_timeout`).
    pub timeout: Option<Duration>,
    /// Token to cancel the job from another thread, queued or running. The
    /// pool forwards it to a token of its own, so dropping the pool never
    /// cancels the caller's token.
    pub cancel: Option<CancelToken>,
    /// The job may run again after a failure that is the worker's fault
    /// (see [`RetryPolicy`](crate::RetryPolicy)); default `false`.
    pub idempotent: bool,
}

impl JobOptions {
    /// Sets the deadline of each attempt.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the cancel token.
    #[must_use]
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Marks the job idempotent (retried per the pool's retry policy).
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
}

/// A row copied out of the ring: stable private bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRow {
    /// Stream id the child wrote it to.
    pub stream: u16,
    /// Position of the row within its attempt, from 0.
    pub sequence: u64,
    /// The payload (a private copy).
    pub payload: Vec<u8>,
}

/// An attempt of a job that failed and was followed by a retry. Its rows
/// are kept here, apart from the rows of the attempts after it.
#[derive(Debug)]
#[non_exhaustive]
pub struct FailedAttempt {
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// The pool worker it ran on.
    pub worker: usize,
    /// How it failed.
    pub error: Error,
    /// The rows it delivered (empty for [`Pool::run_merged`](crate::Pool::run_merged),
    /// whose sink got them, tagged with this attempt).
    pub rows: Vec<OwnedRow>,
    /// Rows it delivered (the error's count; `rows.len()` when collected).
    pub rows_delivered: u64,
}

/// What a job gave: its result, the rows of its last attempt, and every
/// earlier (failed, retried) attempt with its own rows.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobOutput {
    /// The job's id (its submission number in this pool, from 1).
    pub id: u64,
    /// The command's summary, or how the last attempt (or admission) failed.
    pub result: Result<serde_json::Value, Error>,
    /// The rows of the last attempt, in commit order (empty for
    /// [`Pool::run_merged`](crate::Pool::run_merged)).
    pub rows: Vec<OwnedRow>,
    /// Rows the last attempt delivered.
    pub rows_delivered: u64,
    /// Earlier attempts that failed and were retried, oldest first.
    pub failed_attempts: Vec<FailedAttempt>,
    /// Attempts run (0: the job never started).
    pub attempts: u32,
    /// The pool worker of the last attempt, if it started.
    pub worker: Option<usize>,
    /// Time from submission until a worker took it (or it failed unstarted).
    pub waited: Duration,
}

impl JobOutput {
    pub(crate) fn unstarted(id: u64, error: Error, waited: Duration) -> JobOutput {
        JobOutput {
            id,
            result: Err(error),
            rows: Vec::new(),
            rows_delivered: 0,
            failed_attempts: Vec::new(),
            attempts: 0,
            worker: None,
            waited,
        }
    }
}

/// Where a job's rows go.
pub(crate) enum Route {
    /// Into the job's output.
    Collect,
    /// Chunks to the caller's thread of a `run_merged`, tagged with `index`.
    Merge {
        tx: SyncSender<super::merge::Msg>,
        free: Arc<super::merge::FreeChunks>,
        index: usize,
    },
}

pub(crate) enum State {
    Queued,
    Running,
    Done(Option<JobOutput>),
}

/// A job as the pool holds it.
pub(crate) struct JobShared {
    pub(crate) id: u64,
    pub(crate) command: String,
    pub(crate) request: Box<RawValue>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotent: bool,
    /// The pool's own token; the caller's (if any) forwards to it.
    pub(crate) cancel: CancelToken,
    pub(crate) user_cancel: Option<CancelToken>,
    pub(crate) submitted: Instant,
    /// Latest start: submission plus the queue timeout (none: no limit).
    pub(crate) start_by: Option<Instant>,
    pub(crate) route: Route,
    state: Mutex<State>,
    done: Condvar,
}

impl JobShared {
    pub(crate) fn new(
        id: u64,
        job: Job,
        submitted: Instant,
        queue_timeout: Duration,
        route: Route,
    ) -> Arc<JobShared> {
        let cancel = CancelToken::new();
        if let Some(user) = &job.options.cancel {
            user.forward_to(&cancel);
        }
        Arc::new(JobShared {
            id,
            command: job.command,
            request: job.request,
            timeout: job.options.timeout,
            idempotent: job.options.idempotent,
            cancel,
            user_cancel: job.options.cancel,
            submitted,
            start_by: submitted.checked_add(queue_timeout),
            route,
            state: Mutex::new(State::Queued),
            done: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queued → Running; called by the queue under its lock.
    pub(crate) fn start(&self) {
        *self.lock() = State::Running;
    }

    /// Any state → Done (the first output wins).
    pub(crate) fn finish(&self, output: JobOutput) {
        if let Some(user) = &self.user_cancel {
            user.stop_forwarding(&self.cancel);
        }
        let mut state = self.lock();
        if !matches!(*state, State::Done(_)) {
            *state = State::Done(Some(output));
            self.done.notify_all();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(*self.lock(), State::Done(_))
    }

    pub(crate) fn is_queued(&self) -> bool {
        matches!(*self.lock(), State::Queued)
    }

    /// Fails a job unstarted with `error`.
    pub(crate) fn fail_unstarted(&self, error: Error) {
        let waited = self.submitted.elapsed();
        self.finish(JobOutput::unstarted(self.id, error, waited));
    }

    /// Waits until the job is done and takes its output. A job still
    /// queued at its `start_by` is taken off the queue and fails with
    /// [`Error::QueueTimeout`] (unless a worker took it first).
    pub(crate) fn wait(&self, queue: &Queue) -> JobOutput {
        let mut state = self.lock();
        loop {
            match &mut *state {
                State::Done(output) => {
                    return output.take().unwrap_or_else(|| {
                        JobOutput::unstarted(self.id, Error::PoolClosed, Duration::ZERO)
                    });
                }
                State::Running => {
                    state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                State::Queued => {
                    let Some(start_by) = self.start_by else {
                        state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
                        continue;
                    };
                    let left = start_by.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        drop(state);
                        self.expire(queue);
                        state = self.lock();
                        continue;
                    }
                    state = self
                        .done
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// If the job is still queued, takes it off the queue and fails it
    /// with [`Error::QueueTimeout`]; true if it did.
    pub(crate) fn expire(self: &JobShared, queue: &Queue) -> bool {
        if queue.remove(self) {
            queue.note_expired();
            self.fail_unstarted(Error::QueueTimeout {
                waited: self.submitted.elapsed(),
            });
            true
        } else {
            false
        }
    }
}

/// The caller's handle on a submitted job.
pub struct JobHandle {
    pub(crate) job: Arc<JobShared>,
    pub(crate) queue: Arc<Queue>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.job.id)
            .finish_non_exhaustive()
    }
}

impl JobHandle {
    /// The job's id (its submission number in this pool, from 1).
    pub fn id(&self) -> u64 {
        self.job.id
    }

    /// Cancels the job: a queued job stays in the queue until a worker
    /// reaches it, which then fails it with [`Error::Cancelled`] (0 rows)
    /// without running it; a running one is cancelled like a request (the
    /// worker config's cancel grace, then the kill).
    pub fn cancel(&self) {
        self.job.cancel.cancel();
    }

    /// Whether the job is done (its output is ready).
    pub fn is_finished(&self) -> bool {
        self.job.is_done()
    }

    /// Whether no worker has taken the job yet.
    pub fn is_queued(&self) -> bool {
        self.job.is_queued()
    }

    /// Blocks until the job is done and returns its output. Waits at most
    /// the queue timeout for a worker to take it (then the output's result
    /// is [`Error::QueueTimeout`]); a running job ends within its own
    /// deadlines.
    pub fn wait(self) -> JobOutput {
        self.job.wait(&self.queue)
    }
}
