//! Proof mining over a [`Pool`]: candidates in, one result row or one typed
//! failure per candidate out, nothing lost. `ringworker mine-proofs`
//! (`crate::mine`) runs it into a file; [`bench_part`] is its part of
//! `ringworker bench`.
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
//! for refusals (a closed pool, a rejected request, a cancel), each
//! candidate left is a failure of its own (not a culprit). So every
//! candidate taken ends with a result row or a failure, and
//! [`MiningSummary::lost`] is 0. Once the plan's cancel token fires, no
//! fresh candidate is taken.
//!
//! Jobs are submitted with no retry (not idempotent): a hang must not be
//! run twice. Up to twice as many jobs as the pool has workers are in
//! flight; one waiter thread per job decodes its rows, and the callbacks
//! run on the caller's thread.
//!
//! [`pool_config`] sets the built-in workers up for mining: hang detection
//! after [`HANG_TIMEOUT`], so a hanging candidate costs its worker about a
//! second, and a hard memory limit sampled every [`MEMORY_SAMPLE`], so a
//! blow-up is killed soon after it passes the limit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use ringworker::{
    CancelToken, Command, Error, ErrorKind, FailureCode, Job, JobOptions, MemoryLimits, Pool,
    PoolConfig, RestartPolicy, RuntimeCode,
};
use ringworker_benches::report::Target;
use ringworker_child::builtins::proofs::{
    Fate, ProofBatch, ProofResult, Status, SyntheticProofs, fate,
};
use serde_json::{Value, json};

use crate::bench::BenchPart;
use crate::progress::{Counters, human_bytes};
use crate::proofs_via_run::run_leg;
use crate::worker;

/// Why a candidate has no result row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FailureReason {
    /// Its batch's job passed its deadline while it ran
    /// ([`Error::Timeout`]); named `job_timeout`.
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
    /// A short name (`job_timeout`, `hung`, `memory_limit`, ...): the
    /// `status` of the candidate's failure row. A job's deadline is
    /// `job_timeout`, apart from the result status `timeout` (a candidate
    /// that ran out of its soft budget).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "job_timeout",
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

    /// Result rows by status, every status: `closed 8, progressed 6, ...`.
    pub fn statuses_text(&self) -> String {
        Status::ALL
            .iter()
            .map(|s| format!("{s} {}", self.statuses.get(s).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Failures by reason, those that occurred: `hung 2, memory_limit 1`
    /// (`none` without failures).
    pub fn failures_text(&self) -> String {
        if self.failures.is_empty() {
            return "none".to_owned();
        }
        self.failures
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The summary as one JSON object: counts, `statuses` (every status)
    /// and `failures` (the reasons that occurred) as objects of counts,
    /// `seconds`, `candidates_per_s`.
    pub fn json(&self) -> Value {
        let statuses: serde_json::Map<String, Value> = Status::ALL
            .iter()
            .map(|s| {
                let n = self.statuses.get(s).copied().unwrap_or(0);
                (s.as_str().to_owned(), json!(n))
            })
            .collect();
        let failures: serde_json::Map<String, Value> = self
            .failures
            .iter()
            .map(|(reason, n)| (reason.as_str().to_owned(), json!(n)))
            .collect();
        json!({
            "candidates": self.candidates,
            "results": self.results,
            "statuses": statuses,
            "failed": self.failed(),
            "failures": failures,
            "lost": self.lost,
            "seconds": self.elapsed.as_secs_f64(),
            "candidates_per_s": self.candidates_per_sec(),
            "restarts": self.restarts,
            "jobs": self.jobs,
            "resubmitted": self.resubmitted,
            "retried": self.retried,
            "text_bytes": self.text_bytes,
        })
    }
}

/// Hang detection of the mining workers: a worker silent this long is
/// killed, so a hanging candidate costs about this much.
pub const HANG_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the mining workers' memory is sampled while they run.
pub const MEMORY_SAMPLE: Duration = Duration::from_millis(50);
/// How long a cancelled job may take to stop before its worker is killed.
pub const CANCEL_GRACE: Duration = Duration::from_millis(500);
/// Candidates per job unless told otherwise.
pub const DEFAULT_BATCH: usize = 64;
/// A job's deadline unless told otherwise.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(60);
/// The hard memory limit per worker unless told otherwise: below the
/// default blow-up
/// ([`DEFAULT_BLOWUP_BYTES`](ringworker_child::builtins::proofs::DEFAULT_BLOWUP_BYTES)),
/// so blow-ups are killed.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 << 20;

/// A pool of `workers` built-in workers set up for mining: hang detection
/// after [`HANG_TIMEOUT`], the hard memory limit `memory_limit` (bytes of
/// `RssAnon` per worker) sampled every [`MEMORY_SAMPLE`], a cancel grace
/// of [`CANCEL_GRACE`], and room for the restarts hangs and blow-ups cause
/// (200 in 10 s per worker; past that the runner waits and retries).
/// Fails only if this executable cannot be located.
pub fn pool_config(workers: usize, memory_limit: u64) -> std::io::Result<PoolConfig> {
    let worker = worker::config()?
        .with_hang_timeout(HANG_TIMEOUT)
        .with_cancel_grace(CANCEL_GRACE)
        .with_memory(
            MemoryLimits::default()
                .with_hard_rss(Some(memory_limit))
                .with_sample_interval(MEMORY_SAMPLE),
        )
        .with_restart_policy(
            RestartPolicy::default().with_restart_limit(200, Duration::from_secs(10)),
        );
    Ok(PoolConfig::new(worker, workers))
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

/// How [`mine`] runs its candidates.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Candidates per job (at least 1).
    pub batch: usize,
    /// The request of every job, its candidates replaced by the batch's.
    pub template: ProofBatch,
    /// Deadline of each job. It should cover a batch's worst case (`batch`
    /// times the template's `budget_ms` plus margin): a batch that runs
    /// out of it blames the candidate it was at.
    pub job_timeout: Duration,
    /// Cancels the running jobs (every job carries it) and stops the run:
    /// no fresh candidate is taken, and the candidates of batches not yet
    /// run fail as [`FailureReason::Refused`].
    pub cancel: CancelToken,
}

/// Checks every candidate of `candidates` on `pool` with the
/// `synthetic-proofs` command as `plan` says. Every candidate taken ends
/// exactly once: with its result row (`on_row`, in batch order) or with a
/// [`CandidateFailure`] (`on_failure`); see the module docs. Both
/// callbacks run on the caller's thread. `counters` follow the run: rows
/// are result rows (their text bytes), jobs done and failed, and the
/// pool's restarts since the start.
pub fn mine(
    pool: &Pool,
    candidates: impl Iterator<Item = u64>,
    plan: &Plan,
    counters: &Counters,
    on_row: &mut dyn FnMut(&ProofResult),
    on_failure: &mut dyn FnMut(CandidateFailure),
) -> MiningSummary {
    let started = Instant::now();
    let restarts_before = pool.stats().total.total_restarts();
    let restarts = || {
        pool.stats()
            .total
            .total_restarts()
            .saturating_sub(restarts_before)
    };
    let mut run = Run {
        summary: MiningSummary::default(),
        ready: VecDeque::new(),
        delayed: Vec::new(),
        counters,
        on_row,
        on_failure,
    };
    let batch = plan.batch.max(1);
    let window = pool.workers().saturating_mul(2).max(1);
    let mut source = candidates.fuse();
    let mut in_flight = 0usize;
    let (tx, rx) = mpsc::channel::<Finished>();
    std::thread::scope(|scope| {
        loop {
            let cancelled = plan.cancel.is_cancelled();
            // Once cancelled, nothing more runs: waiting retries give up.
            run.release_due(if cancelled {
                None
            } else {
                Some(Instant::now())
            });
            while in_flight < window {
                let next = run.ready.pop_front().or_else(|| {
                    if cancelled {
                        return None;
                    }
                    let ids: Vec<u64> = source.by_ref().take(batch).collect();
                    run.summary.candidates += ids.len() as u64;
                    (!ids.is_empty()).then_some(Batch { ids, retries: 0 })
                });
                let Some(next) = next else { break };
                if cancelled {
                    run.refuse(&next.ids, "cancelled before it ran");
                    continue;
                }
                let mut request = plan.template.clone();
                request.candidates = next.ids.clone();
                let options = JobOptions::default()
                    .timeout(plan.job_timeout)
                    .cancel(plan.cancel.clone());
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
            // Waits wake at least every `POLL` to see a cancel.
            let next_due = run
                .delayed
                .iter()
                .map(|(due, _)| due.saturating_duration_since(Instant::now()).min(POLL))
                .min();
            if in_flight == 0 && run.ready.is_empty() {
                match next_due {
                    None => break,
                    Some(wait) => {
                        std::thread::sleep(wait);
                        continue;
                    }
                }
            }
            if in_flight == 0 {
                continue;
            }
            let received = match next_due {
                Some(wait) => rx.recv_timeout(wait),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(finished) => {
                    in_flight -= 1;
                    run.settle(finished.batch, finished.rows, finished.result);
                    counters.restarts.store(restarts(), Relaxed);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while `tx` lives.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    let mut summary = run.summary;
    summary.elapsed = started.elapsed();
    summary.restarts = restarts();
    counters.restarts.store(summary.restarts, Relaxed);
    summary.lost = summary
        .candidates
        .saturating_sub(summary.results + summary.failed());
    summary
}

/// How often a waiting run looks at its cancel token.
const POLL: Duration = Duration::from_millis(100);

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
    counters: &'a Counters,
    on_row: &'a mut dyn FnMut(&ProofResult),
    on_failure: &'a mut dyn FnMut(CandidateFailure),
}

impl Run<'_> {
    /// Moves retries whose pause is over at `now` (all of them for `None`)
    /// to the front of `ready`.
    fn release_due(&mut self, now: Option<Instant>) {
        let mut i = 0;
        while i < self.delayed.len() {
            if now.is_none_or(|now| self.delayed[i].0 <= now) {
                let (_, batch) = self.delayed.swap_remove(i);
                self.ready.push_front(batch);
            } else {
                i += 1;
            }
        }
    }

    /// Fails every candidate of `ids` as [`FailureReason::Refused`].
    fn refuse(&mut self, ids: &[u64], detail: &str) {
        for &id in ids {
            self.fail(id, FailureReason::Refused, false, detail.to_owned());
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
        match &result {
            Ok(()) => self.counters.jobs_done.fetch_add(1, Relaxed),
            Err(_) => self.counters.jobs_failed.fetch_add(1, Relaxed),
        };
        let mut delivered = 0;
        let mut bad_row = None;
        for (row, &id) in rows.into_iter().zip(&batch.ids) {
            match row {
                Ok(row) if row.id == id => {
                    self.summary.results += 1;
                    *self.summary.statuses.entry(row.status).or_default() += 1;
                    let text = row.goals.len() + row.diagnostics.len();
                    self.summary.text_bytes += text as u64;
                    self.counters.row(text);
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
            Verdict::Refuse => self.refuse(&batch.ids[delivered..], &detail),
        }
    }
}

/// `object` with the fields of `extra` added (both JSON objects).
pub fn merge_json(mut object: Value, extra: Value) -> Value {
    if let (Some(object), Value::Object(extra)) = (object.as_object_mut(), extra) {
        object.extend(extra);
    }
    object
}

/// Hangs and blow-ups [`fate`] predicts among `candidates` under `template`.
pub fn predicted_failures(
    template: &ProofBatch,
    candidates: impl Iterator<Item = u64>,
) -> (u64, u64) {
    let rates = template.rates();
    candidates.fold((0, 0), |(hangs, blowups), id| {
        match fate(template.seed, id, &rates) {
            Fate::Hang => (hangs + 1, blowups),
            Fate::BlowUp => (hangs, blowups + 1),
            _ => (hangs, blowups),
        }
    })
}

/// Workers of the bench part.
const BENCH_WORKERS: usize = 2;
/// Seed of the bench part: with its rates, `fate` makes 2 of 0..20 000
/// hang and 3 blow up (6 and 9 of 0..100 000).
const BENCH_SEED: u64 = 2;
/// Hang and blow-up rates of the bench part (per million each).
const BENCH_FAILURE_RATE: u32 = 100;

/// `ringworker bench`'s proof-mining part: [`BENCH_WORKERS`] built-in
/// workers mine 20 000 candidates (`quick`) or 100 000 with the default
/// work, budget and blow-up size, hangs and blow-ups at 100 per million
/// each (so a few of each happen: the hang detection, the memory limit
/// and the restarts are part of the run), nothing written. Measures
/// candidates/s and counts results by status, failures by reason,
/// restarts and lost candidates. Then the same candidates through
/// `ringworker run` itself, one per request ([`crate::proofs_via_run`]).
/// Targets: nothing lost either way, and candidates/s (informative).
/// `progress` hears what runs.
pub fn bench_part(quick: bool, progress: &mut dyn FnMut(&str)) -> anyhow::Result<BenchPart> {
    let candidates: u64 = if quick { 20_000 } else { 100_000 };
    let template = ProofBatch::new(Vec::new())
        .with_seed(BENCH_SEED)
        .with_failure_rates(BENCH_FAILURE_RATE, BENCH_FAILURE_RATE);
    let (hangs, blowups) = predicted_failures(&template, 0..candidates);
    progress(&format!(
        "proof mining: {candidates} candidates on {BENCH_WORKERS} workers ({hangs} hang, {blowups} blow up)"
    ));
    let pool = Pool::new(pool_config(BENCH_WORKERS, DEFAULT_MEMORY_LIMIT)?)?;
    let plan = Plan {
        batch: DEFAULT_BATCH,
        template,
        job_timeout: DEFAULT_JOB_TIMEOUT,
        cancel: CancelToken::new(),
    };
    let summary = mine(
        &pool,
        0..candidates,
        &plan,
        &Counters::default(),
        &mut |_| {},
        &mut |_| {},
    );
    pool.shutdown(Duration::from_secs(2));
    progress(&format!(
        "proof mining: {:.0} candidates/s, {} lost",
        summary.candidates_per_sec(),
        summary.lost
    ));
    progress(&format!(
        "proof mining: the same {candidates} candidates through `ringworker run`, one per request"
    ));
    let via_run = run_leg(
        &plan.template,
        candidates,
        BENCH_WORKERS,
        HANG_TIMEOUT,
        DEFAULT_MEMORY_LIMIT,
    )?;
    let mut table = table(&summary, &plan.template, hangs, blowups);
    table.push_str(&via_run.table_lines(BENCH_WORKERS));
    let json = merge_json(
        json!({
            "workers": BENCH_WORKERS,
            "batch": plan.batch,
            "seed": plan.template.seed,
            "hang_per_million": plan.template.hang_per_million,
            "blowup_per_million": plan.template.blowup_per_million,
            "work_us": plan.template.work_us,
            "budget_ms": plan.template.budget_ms,
            "blowup_bytes": plan.template.blowup_bytes,
            "memory_limit": DEFAULT_MEMORY_LIMIT,
            "hang_timeout_s": HANG_TIMEOUT.as_secs_f64(),
            "predicted_hangs": hangs,
            "predicted_blowups": blowups,
            "via_run": via_run.json(),
        }),
        summary.json(),
    );
    let targets = vec![
        Target::new(
            "proof mining: lost candidates = 0",
            format!("{} lost of {}", summary.lost, summary.candidates),
            summary.lost == 0,
        ),
        Target::new(
            "proof mining through `ringworker run`: lost candidates = 0",
            format!(
                "{} lost, {} duplicated of {}",
                via_run.lost, via_run.duplicated, via_run.candidates
            ),
            via_run.lost == 0 && via_run.duplicated == 0,
        ),
        Target::new(
            "proof mining: candidates/s (informative)",
            format!(
                "{:.0}/s on {BENCH_WORKERS} workers",
                summary.candidates_per_sec()
            ),
            true,
        ),
    ];
    Ok(BenchPart {
        table,
        json,
        targets,
    })
}

/// The bench part's table.
fn table(summary: &MiningSummary, template: &ProofBatch, hangs: u64, blowups: u64) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>10} {:>8} {:>13} {:>9} {:>9} {:>5} {:>9}",
        "proof mining",
        "candidates",
        "seconds",
        "candidates/s",
        "results",
        "failures",
        "lost",
        "restarts"
    );
    let _ = writeln!(
        s,
        "{:<14} {:>10} {:>8.2} {:>13.0} {:>9} {:>9} {:>5} {:>9}",
        format!("  {BENCH_WORKERS} workers"),
        summary.candidates,
        summary.elapsed.as_secs_f64(),
        summary.candidates_per_sec(),
        summary.results,
        summary.failed(),
        summary.lost,
        summary.restarts,
    );
    let _ = writeln!(
        s,
        "results: {}; failures: {} (fate predicts {hangs} hangs, {blowups} blow-ups)",
        summary.statuses_text(),
        summary.failures_text(),
    );
    let _ = writeln!(
        s,
        "(synthetic-proofs in batches of {DEFAULT_BATCH}, {} jobs; hangs {} and blow-ups {} per million; \
         work {} µs mean, budget {} ms; hang timeout {:.0} s, memory limit {} per worker, blow-ups {}; \
         {} of goal and diagnostics text)",
        summary.jobs,
        template.hang_per_million,
        template.blowup_per_million,
        template.work_us,
        template.budget_ms,
        HANG_TIMEOUT.as_secs_f64(),
        human_bytes(DEFAULT_MEMORY_LIMIT),
        human_bytes(template.blowup_bytes),
        human_bytes(summary.text_bytes),
    );
    s
}
