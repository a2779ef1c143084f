//! Proof mining over a [`Pool`]: candidates in, one result row or one typed
//! failure per candidate out, nothing lost.
//!
//! [`mine`] cuts the candidates into batches and runs each as one
//! `synthetic-proofs` job. A batch job that fails (its deadline, a hang, a
//! memory limit, a crash, the command's own failure) delivered the rows of
//! the candidates before the one that caused it, in order: the first
//! candidate of the batch without a row is the culprit. It is reported as a
//! [`CandidateFailure`], and the candidates after it go back to the pool as
//! a new batch, ahead of fresh ones. Failures that name no candidate (the
//! restart limit, a full queue, a worker that cannot start) resubmit the
//! batch after a pause, a bounded number of times; after that, and at once
//! for refusals (a closed pool, a rejected request), each candidate left is
//! a failure of its own (not a culprit). So every candidate ends with a
//! result row or a failure, and [`MiningSummary::lost`] is 0.
//!
//! Jobs are submitted with no retry (not idempotent): a hang must not be
//! run twice. Up to twice as many jobs as the pool has workers are in
//! flight; one waiter thread per job decodes its rows, and the callbacks
//! run on the caller's thread.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use ringworker::{Command, Error, ErrorKind, FailureCode, Job, JobOptions, Pool, RuntimeCode};
use ringworker_child::builtins::proofs::{ProofBatch, ProofResult, Status, SyntheticProofs};

/// Why a candidate has no result row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FailureReason {
    /// Its batch's job passed its deadline while it ran
    /// ([`Error::Timeout`]).
    Timeout,
    /// The worker showed no sign of life while it ran ([`Error::Hung`]).
    Hung,
    /// The worker passed its hard memory limit while it ran
    /// ([`Error::MemoryLimit`]).
    MemoryLimit,
    /// The worker was the largest when the pool passed its total memory
    /// budget ([`Error::PoolMemoryBudget`]).
    PoolMemoryBudget,
    /// The worker died, panicked or broke the protocol or the ring while
    /// it ran.
    Crashed,
    /// The command failed with its own code while it ran (a blow-up that
    /// could not allocate: `out_of_memory`), or a runtime code that is not
    /// a refusal of the batch (a row over the limit).
    CommandFailed,
    /// Its batch ended, but its row is missing, does not decode or names
    /// another candidate.
    BadRow,
    /// It never ran: its batch could not run (restart limit, queue
    /// timeouts, workers that cannot start) after [`MAX_RETRIES`] retries.
    Unavailable,
    /// It never ran: its batch was refused for good (the pool closed, the
    /// job was cancelled, the request was rejected).
    Refused,
}

impl FailureReason {
    /// A short name (`timeout`, `hung`, `memory_limit`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Hung => "hung",
            FailureReason::MemoryLimit => "memory_limit",
            FailureReason::PoolMemoryBudget => "pool_memory_budget",
            FailureReason::Crashed => "crashed",
            FailureReason::CommandFailed => "command_failed",
            FailureReason::BadRow => "bad_row",
            FailureReason::Unavailable => "unavailable",
            FailureReason::Refused => "refused",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A candidate that ended without a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateFailure {
    /// The candidate's id.
    pub id: u64,
    /// Why.
    pub reason: FailureReason,
    /// True if it caused its batch's failure (the first candidate of the
    /// batch without a row); false if it never ran
    /// ([`FailureReason::Unavailable`], [`FailureReason::Refused`]).
    pub culprit: bool,
    /// The error as the pool reported it.
    pub detail: String,
}

/// What [`mine`] did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MiningSummary {
    /// Candidates taken from the iterator.
    pub candidates: u64,
    /// Candidates that ended with a result row.
    pub results: u64,
    /// Result rows by status.
    pub statuses: BTreeMap<Status, u64>,
    /// Candidates that ended with a failure, by reason.
    pub failures: BTreeMap<FailureReason, u64>,
    /// Candidates with neither (`candidates - results - failures`): 0
    /// unless this module has a bug.
    pub lost: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Jobs submitted (first batches, resubmissions and retries).
    pub jobs: u64,
    /// Batches resubmitted after a culprit (the candidates after it).
    pub resubmitted: u64,
    /// Batches resubmitted after a failure that named no candidate.
    pub retried: u64,
    /// Restarts of the pool's workers during the run (from its stats).
    pub restarts: u64,
    /// Goal and diagnostics text of the result rows, in bytes.
    pub text_bytes: u64,
}

impl MiningSummary {
    /// Candidates that ended with a failure.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Candidates (results and failures) per second of the run.
    pub fn candidates_per_sec(&self) -> f64 {
        (self.results + self.failed()) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Retries of a batch after failures that name no candidate, without any
/// row in between, before its candidates fail as
/// [`FailureReason::Unavailable`].
pub const MAX_RETRIES: u32 = 8;
/// First pause before such a retry (doubled each time, at most
/// [`MAX_RETRY_PAUSE`]; a restart limit's own `retry_after` when longer).
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause before a retry.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// Checks every candidate of `candidates` on `pool` with the
/// `synthetic-proofs` command, in batches of `batch` (at least 1), each a
/// copy of `template` with its candidates replaced, each job with deadline
/// `job_timeout`. Every candidate ends exactly once: with its result row
/// (`on_row`, in batch order) or with a [`CandidateFailure`]
/// (`on_failure`); see the module docs. Both callbacks run on the
/// caller's thread.
///
/// `job_timeout` should cover a batch's worst case (`batch` times the
/// template's `budget_ms` plus margin): a batch that runs out of it blames
/// the candidate it was at.
pub fn mine(
    pool: &Pool,
    candidates: impl Iterator<Item = u64>,
    batch: usize,
    template: &ProofBatch,
    job_timeout: Duration,
    on_row: &mut dyn FnMut(&ProofResult),
    on_failure: &mut dyn FnMut(CandidateFailure),
) -> MiningSummary {
    let started = Instant::now();
    let restarts_before = pool.stats().total.total_restarts();
    let mut run = Run {
        summary: MiningSummary::default(),
        ready: VecDeque::new(),
        delayed: Vec::new(),
        on_row,
        on_failure,
    };
    let batch = batch.max(1);
    let window = pool.workers().saturating_mul(2).max(1);
    let mut source = candidates.fuse();
    let mut in_flight = 0usize;
    let (tx, rx) = mpsc::channel::<Finished>();
    std::thread::scope(|scope| {
        loop {
            run.release_due(Instant::now());
            while in_flight < window {
                let next = run.ready.pop_front().or_else(|| {
                    let ids: Vec<u64> = source.by_ref().take(batch).collect();
                    run.summary.candidates += ids.len() as u64;
                    (!ids.is_empty()).then_some(Batch { ids, retries: 0 })
                });
                let Some(next) = next else { break };
                let mut request = template.clone();
                request.candidates = next.ids.clone();
                let options = JobOptions::default().timeout(job_timeout);
                let submitted = Job::new(SyntheticProofs::NAME, &request)
                    .and_then(|job| pool.submit(job.with_options(options)));
                run.summary.jobs += 1;
                match submitted {
                    Ok(handle) => {
                        in_flight += 1;
                        let tx = tx.clone();
                        scope.spawn(move || {
                            let output = handle.wait();
                            let rows = output
                                .rows
                                .iter()
                                .map(|row| serde_json::from_slice::<ProofResult>(&row.payload))
                                .collect();
                            let result = output.result.map(|_| ());
                            let _ = tx.send(Finished {
                                batch: next,
                                rows,
                                result,
                            });
                        });
                    }
                    Err(err) => run.settle(next, Vec::new(), Err(err)),
                }
            }
            if in_flight == 0 && run.ready.is_empty() {
                match run.delayed.iter().map(|(due, _)| *due).min() {
                    None => break,
                    Some(due) => {
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        continue;
                    }
                }
            }
            if in_flight == 0 {
                continue;
            }
            let received = match run.delayed.iter().map(|(due, _)| *due).min() {
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(finished) => {
                    in_flight -= 1;
                    run.settle(finished.batch, finished.rows, finished.result);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while `tx` lives.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    let mut summary = run.summary;
    summary.elapsed = started.elapsed();
    summary.restarts = pool
        .stats()
        .total
        .total_restarts()
        .saturating_sub(restarts_before);
    summary.lost = summary
        .candidates
        .saturating_sub(summary.results + summary.failed());
    summary
}

/// Candidates to run as one job.
struct Batch {
    ids: Vec<u64>,
    /// Retries so far after failures that named no candidate.
    retries: u32,
}

/// A batch's job, done.
struct Finished {
    batch: Batch,
    rows: Vec<Result<ProofResult, serde_json::Error>>,
    result: Result<(), Error>,
}

/// What a failed job says about its batch.
enum Verdict {
    /// The first candidate without a row caused it.
    Culprit(FailureReason),
    /// No candidate caused it: run the rest again later.
    Retry,
    /// The rest will never run.
    Refuse,
}

fn classify(err: &Error) -> Verdict {
    match err {
        Error::Timeout { .. } => Verdict::Culprit(FailureReason::Timeout),
        Error::Hung { .. } => Verdict::Culprit(FailureReason::Hung),
        Error::MemoryLimit { .. } => Verdict::Culprit(FailureReason::MemoryLimit),
        Error::PoolMemoryBudget { .. } => Verdict::Culprit(FailureReason::PoolMemoryBudget),
        Error::Worker {
            code: FailureCode::Runtime(RuntimeCode::BadRequest | RuntimeCode::UnknownCommand),
            ..
        } => Verdict::Refuse,
        Error::Worker { .. } => Verdict::Culprit(FailureReason::CommandFailed),
        // The request may not have reached the child.
        Error::Control { .. } => Verdict::Retry,
        other => match other.kind() {
            ErrorKind::Crash => Verdict::Culprit(FailureReason::Crashed),
            ErrorKind::Unavailable | ErrorKind::Startup | ErrorKind::System => Verdict::Retry,
            _ => Verdict::Refuse,
        },
    }
}

/// The pause before retry number `retries` of a batch that failed with `err`.
fn retry_pause(err: &Error, retries: u32) -> Duration {
    let backoff = RETRY_PAUSE
        .saturating_mul(1 << retries.saturating_sub(1).min(16))
        .min(MAX_RETRY_PAUSE);
    match err {
        Error::RestartLimit { retry_after, .. } => (*retry_after).clamp(backoff, MAX_RETRY_PAUSE),
        _ => backoff,
    }
}

struct Run<'a> {
    summary: MiningSummary,
    /// Batches to submit before fresh ones (the rest after a culprit,
    /// retries whose pause is over).
    ready: VecDeque<Batch>,
    /// Retries waiting for their pause to end.
    delayed: Vec<(Instant, Batch)>,
    on_row: &'a mut dyn FnMut(&ProofResult),
    on_failure: &'a mut dyn FnMut(CandidateFailure),
}

impl Run<'_> {
    /// Moves retries whose pause is over to the front of `ready`.
    fn release_due(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, batch) = self.delayed.swap_remove(i);
                self.ready.push_front(batch);
            } else {
                i += 1;
            }
        }
    }

    fn fail(&mut self, id: u64, reason: FailureReason, culprit: bool, detail: String) {
        *self.summary.failures.entry(reason).or_default() += 1;
        (self.on_failure)(CandidateFailure {
            id,
            reason,
            culprit,
            detail,
        });
    }

    /// Takes a finished job's rows, then decides what becomes of the
    /// candidates without one.
    fn settle(
        &mut self,
        batch: Batch,
        rows: Vec<Result<ProofResult, serde_json::Error>>,
        result: Result<(), Error>,
    ) {
        let mut delivered = 0;
        let mut bad_row = None;
        for (row, &id) in rows.into_iter().zip(&batch.ids) {
            match row {
                Ok(row) if row.id == id => {
                    self.summary.results += 1;
                    *self.summary.statuses.entry(row.status).or_default() += 1;
                    self.summary.text_bytes += (row.goals.len() + row.diagnostics.len()) as u64;
                    (self.on_row)(&row);
                    delivered += 1;
                }
                Ok(row) => {
                    bad_row = Some(format!("row for candidate {} in its place", row.id));
                    break;
                }
                Err(err) => {
                    bad_row = Some(format!("row does not decode: {err}"));
                    break;
                }
            }
        }
        if delivered == batch.ids.len() {
            return;
        }
        let culprit = batch.ids[delivered];
        let (verdict, detail) = match (bad_row, &result) {
            (Some(detail), _) => (Verdict::Culprit(FailureReason::BadRow), detail),
            (None, Ok(())) => (
                Verdict::Culprit(FailureReason::BadRow),
                "the job ended without its row".to_owned(),
            ),
            (None, Err(err)) => (classify(err), err.to_string()),
        };
        match verdict {
            Verdict::Culprit(reason) => {
                self.fail(culprit, reason, true, detail);
                let rest = &batch.ids[delivered + 1..];
                if !rest.is_empty() {
                    self.summary.resubmitted += 1;
                    self.ready.push_front(Batch {
                        ids: rest.to_vec(),
                        retries: 0,
                    });
                }
            }
            Verdict::Retry => {
                let retries = if delivered > 0 { 1 } else { batch.retries + 1 };
                if retries > MAX_RETRIES {
                    for &id in &batch.ids[delivered..] {
                        self.fail(id, FailureReason::Unavailable, false, detail.clone());
                    }
                    return;
                }
                let pause = match &result {
                    Err(err) => retry_pause(err, retries),
                    Ok(()) => RETRY_PAUSE,
                };
                self.summary.retried += 1;
                self.delayed.push((
                    Instant::now() + pause,
                    Batch {
                        ids: batch.ids[delivered..].to_vec(),
                        retries,
                    },
                ));
            }
            Verdict::Refuse => {
                for &id in &batch.ids[delivered..] {
                    self.fail(id, FailureReason::Refused, false, detail.clone());
                }
            }
        }
    }
}
