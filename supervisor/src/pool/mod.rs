//! [`Pool`]: N supervised workers fed from one bounded job queue.
//!
//! Each pool worker is a thread that owns one [`Worker`] (its own child
//! and ring; every child is under the one per-process watchdog) and takes
//! jobs from the queue (`queue`): a job ([`Job`], `job`) runs as one
//! request, its rows are copied out of the ring (into the job's output,
//! or in chunks to the caller's thread of [`Pool::run_merged`], `merge`),
//! failures that are the worker's fault are retried for idempotent jobs
//! ([`RetryPolicy`]), and the counters are kept per worker and in total
//! (`stats`). The total memory budget (`budget`) is enforced by the
//! watchdog from its own samples.
//!
//! ```no_run
//! use ringworker::{Job, Pool, PoolConfig, WorkerConfig};
//!
//! # fn main() -> Result<(), ringworker::Error> {
//! let pool = Pool::new(PoolConfig::new(WorkerConfig::new("target/release/my-worker"), 4))?;
//! let handles: Vec<_> = (0..100)
//!     .map(|n| pool.submit(Job::new("squares", &serde_json::json!({ "n": n }))?))
//!     .collect::<Result<_, _>>()?;
//! for handle in handles {
//!     let output = handle.wait();
//!     println!("job {}: {} rows, {:?}", output.id, output.rows.len(), output.result);
//! }
//! pool.shutdown(std::time::Duration::from_secs(2));
//! # Ok(())
//! # }
//! ```

pub(crate) mod budget;
mod job;
mod merge;
mod queue;
mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::config::WorkerConfig;
use crate::error::{Error, ErrorKind};
use crate::sink::Row;
use crate::stats::WorkerStats;
use crate::worker::{RequestOptions, Worker};

pub use job::{FailedAttempt, Job, JobHandle, JobOptions, JobOutput, OwnedRow};
pub use merge::{MergedOutput, Order, TaggedRow};
pub use stats::{PoolStats, PoolWorkerStats, WaitTimes};

use budget::{BudgetSlot, PoolBudget};
use job::{JobShared, Route};
use queue::Queue;
use stats::Histogram;

/// What `submit` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Wait for room, at most the queue timeout (then [`Error::QueueTimeout`]).
    #[default]
    Block,
    /// Fail at once with [`Error::QueueFull`].
    Fail,
}

/// When a failed job runs again.
///
/// A job is retried only if it is marked idempotent
/// ([`JobOptions::idempotent`]), its attempts so far are at most
/// `max_retries`, it was not cancelled, the pool is not closing, and the
/// failure is the worker's fault ([`RetryPolicy::is_worker_fault`]): the
/// child died, was killed, broke the protocol or the ring, hung, or was
/// killed for the pool's memory budget. Never retried: usage and
/// configuration errors, the command's own failure ([`Error::Worker`]) and
/// its panic ([`Error::WorkerPanicked`], most likely the same on every
/// run), the job's own deadline ([`Error::Timeout`]: a job too slow for its
/// deadline would fail again, each time after the whole deadline), its own
/// hard memory limit ([`Error::MemoryLimit`]), cancellation, sink
/// failures, start-up failures and the restart cap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries per job after its first attempt (default 0: none).
    pub max_retries: u32,
}

impl RetryPolicy {
    /// Retries an idempotent job at most `retries` times.
    pub fn retries(retries: u32) -> Self {
        RetryPolicy {
            max_retries: retries,
        }
    }

    /// Whether `error` is the worker's fault (see the type's docs).
    pub fn is_worker_fault(error: &Error) -> bool {
        match error.kind() {
            ErrorKind::Crash => !matches!(error, Error::WorkerPanicked { .. }),
            ErrorKind::Timeout => matches!(error, Error::Hung { .. }),
            ErrorKind::Resource => matches!(error, Error::PoolMemoryBudget { .. }),
            _ => false,
        }
    }
}

/// Everything [`Pool::new`] needs. Build with [`PoolConfig::new`] and the
/// `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// The config of every worker (its per-worker memory limits included).
    pub worker: WorkerConfig,
    /// Number of workers (at least 1).
    pub workers: usize,
    /// Jobs that may wait in the queue (at least 1; default `2 * workers`).
    pub queue_depth: usize,
    /// How long a job may wait for a worker, from its submission (default
    /// 60 s; `Duration::MAX`: forever).
    pub queue_timeout: Duration,
    /// What `submit` does when the queue is full.
    pub when_full: WhenFull,
    /// Total `RssAnon` of all workers' children, enforced by the watchdog
    /// from its samples during requests: over it, the child with the
    /// largest sample is killed ([`Error::PoolMemoryBudget`]). The samples
    /// come every `worker.memory.sample_interval`. None: no budget.
    pub total_rss_budget: Option<u64>,
    /// When failed jobs run again.
    pub retry: RetryPolicy,
    /// How long [`Drop`] lets each child end on its own after the shutdown
    /// request before it is killed (default 2 s).
    pub shutdown_grace: Duration,
}

impl PoolConfig {
    /// `workers` workers of `worker`, queue depth `2 * workers`, 60 s queue
    /// timeout, blocking `submit`, no budget, no retries, 2 s shutdown grace.
    pub fn new(worker: WorkerConfig, workers: usize) -> Self {
        PoolConfig {
            worker,
            workers,
            queue_depth: workers.saturating_mul(2).max(1),
            queue_timeout: Duration::from_secs(60),
            when_full: WhenFull::Block,
            total_rss_budget: None,
            retry: RetryPolicy::default(),
            shutdown_grace: Duration::from_secs(2),
        }
    }

    /// Sets the queue depth.
    pub fn with_queue_depth(mut self, depth: usize) -> Self {
        self.queue_depth = depth;
        self
    }

    /// Sets the queue timeout.
    pub fn with_queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }

    /// Sets what `submit` does when the queue is full.
    pub fn with_when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// Sets the total memory budget (bytes of `RssAnon`).
    pub fn with_total_rss_budget(mut self, bytes: Option<u64>) -> Self {
        self.total_rss_budget = bytes;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the shutdown grace of [`Drop`].
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks the pool's own settings and the worker config.
    pub fn validate(&self) -> Result<(), Error> {
        self.worker.validate()?;
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.into(),
            })
        };
        if self.workers == 0 {
            return bad("PoolConfig::workers", "zero");
        }
        if self.queue_depth == 0 {
            return bad("PoolConfig::queue_depth", "zero");
        }
        if self.queue_timeout.is_zero() {
            return bad(
                "PoolConfig::queue_timeout",
                "zero; use Duration::MAX for no limit",
            );
        }
        if self.total_rss_budget == Some(0) {
            return bad(
                "PoolConfig::total_rss_budget",
                "zero; use None for no budget",
            );
        }
        Ok(())
    }
}

// A pool is shared between threads (submit from many, `Arc<Pool>`), and
// handles move to the threads that wait on them.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pool>();
    assert_send_sync::<JobHandle>();
    const fn assert_send<T: Send>() {}
    assert_send::<JobOutput>();
};

/// Counters the pool threads share.
#[derive(Default)]
struct Counters {
    submitted: u64,
    completed: u64,
    failed: u64,
    retries: u64,
    rejected_full: u64,
    /// Blocking submissions that found no room in time.
    submit_timeouts: u64,
    closed_unstarted: u64,
    waits: Histogram,
    workers: Vec<PoolWorkerStats>,
    pids: Vec<Option<u32>>,
    /// The token of the job each worker runs.
    running: Vec<Option<CancelToken>>,
    /// Set by `close` when it cancels the running jobs: a job a worker
    /// registers after that is cancelled at once.
    cancelling: bool,
}

struct Shared {
    queue: Arc<Queue>,
    queue_timeout: Duration,
    retry: RetryPolicy,
    next_id: AtomicU64,
    counters: Mutex<Counters>,
    /// Notified whenever a worker finishes a job.
    idle: Condvar,
    /// Grace of each worker's `Worker::shutdown` when its thread ends.
    grace: Mutex<Duration>,
    closing: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pool of N supervised workers fed from a bounded job queue.
///
/// Guarantees (shown by `tests/pool.rs` and `tests/pool_leaks.rs`): each
/// job's rows reach its output (or the merged sink) exactly once, in commit
/// order, per attempt, and rows of different attempts are never mixed; a
/// failed job says how many rows its attempt delivered; a worker freed
/// while jobs wait takes the next at once (no polling); admission,
/// queueing, retries and the memory budget fail with typed errors; after
/// [`Pool::shutdown`] or drop no thread, fd or process of the pool is left.
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    budget: Option<Arc<PoolBudget>>,
    workers: usize,
    queue_depth: usize,
    when_full: WhenFull,
    shutdown_grace: Duration,
    /// Every worker's config (before its pool slot): the key of their
    /// shared warm template, if they use one.
    worker_config: WorkerConfig,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .field("queue_depth", &self.queue_depth)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `config.workers` workers (each waits for its child's
    /// handshake) and their threads. A worker that cannot start fails the
    /// whole pool; those already started are shut down.
    pub fn new(config: PoolConfig) -> Result<Pool, Error> {
        config.validate()?;
        let budget = config
            .total_rss_budget
            .map(|total| PoolBudget::new(total, config.workers));
        let shared = Arc::new(Shared {
            queue: Arc::new(Queue::new(config.queue_depth)),
            queue_timeout: config.queue_timeout,
            retry: config.retry.clone(),
            next_id: AtomicU64::new(1),
            counters: Mutex::new(Counters {
                workers: vec![PoolWorkerStats::default(); config.workers],
                pids: vec![None; config.workers],
                running: vec![None; config.workers],
                ..Counters::default()
            }),
            idle: Condvar::new(),
            grace: Mutex::new(config.shutdown_grace),
            closing: std::sync::atomic::AtomicBool::new(false),
        });
        let mut pool = Pool {
            shared,
            threads: Vec::with_capacity(config.workers),
            budget: budget.clone(),
            workers: config.workers,
            queue_depth: config.queue_depth,
            when_full: config.when_full,
            shutdown_grace: config.shutdown_grace,
            worker_config: config.worker.clone(),
        };
        for index in 0..config.workers {
            let mut worker_config = config.worker.clone();
            worker_config.pool_slot = budget.as_ref().map(|budget| BudgetSlot {
                budget: Arc::clone(budget),
                slot: index,
            });
            // On an error, dropping `pool` ends the threads started so far.
            let worker = Worker::spawn(worker_config)?;
            {
                let mut counters = pool.shared.lock();
                counters.pids[index] = worker.pid();
                counters.workers[index].worker = worker.stats().clone();
            }
            let shared = Arc::clone(&pool.shared);
            let thread = std::thread::Builder::new()
                .name(format!("ringworker-pool-{index}"))
                .spawn(move || serve(index, worker, &shared))
                .map_err(|source| Error::Spawn {
                    program: config.worker.program.clone(),
                    source,
                })?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Submits a job. A full queue blocks up to the queue timeout or fails
    /// at once ([`PoolConfig::when_full`]); a closed pool is
    /// [`Error::PoolClosed`]. The handle's [`JobHandle::wait`] gives the
    /// job's output.
    pub fn submit(&self, job: Job) -> Result<JobHandle, Error> {
        let job = self.make_job(job, Route::Collect);
        self.push(&job, self.when_full == WhenFull::Block)?;
        Ok(JobHandle {
            job,
            queue: Arc::clone(&self.shared.queue),
        })
    }

    fn make_job(&self, job: Job, route: Route) -> Arc<JobShared> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        JobShared::new(id, job, Instant::now(), self.shared.queue_timeout, route)
    }

    /// Puts a made job on the queue; on an error the job is failed
    /// unstarted with a copy of the cause and the error returned.
    fn push(&self, job: &Arc<JobShared>, block: bool) -> Result<(), Error> {
        match self.shared.queue.push(Arc::clone(job), block, job.start_by) {
            Ok(()) => {
                self.shared.lock().submitted += 1;
                Ok(())
            }
            Err(error) => {
                let copy = {
                    let mut counters = self.shared.lock();
                    match &error {
                        Error::QueueFull { depth } => {
                            counters.rejected_full += 1;
                            Error::QueueFull { depth: *depth }
                        }
                        Error::QueueTimeout { waited } => {
                            counters.submit_timeouts += 1;
                            Error::QueueTimeout { waited: *waited }
                        }
                        _ => Error::PoolClosed,
                    }
                };
                job.fail_unstarted(copy);
                Err(error)
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> PoolStats {
        let (queue_depth, max_queue_depth) = self.shared.queue.depths();
        let expired = self.shared.queue.expired();
        let counters = self.shared.lock();
        let mut total = WorkerStats::default();
        for worker in &counters.workers {
            stats::accumulate(&mut total, &worker.worker);
        }
        PoolStats {
            workers: counters.workers.clone(),
            total,
            submitted: counters.submitted,
            completed: counters.completed,
            failed: counters.failed + expired,
            retries: counters.retries,
            rejected_full: counters.rejected_full,
            queue_timeouts: counters.submit_timeouts + expired,
            closed_unstarted: counters.closed_unstarted,
            queue_depth,
            max_queue_depth,
            wait: counters.waits.summary(),
        }
    }

    /// The pid of each worker's current child (as of its latest job).
    pub fn worker_pids(&self) -> Vec<Option<u32>> {
        self.shared.lock().pids.clone()
    }

    /// The pid of the warm template the workers fork from, while one runs
    /// (`WorkerConfig::with_template`); `None` without templates.
    pub fn template_pid(&self) -> Option<u32> {
        if !self.worker_config.template {
            return None;
        }
        crate::template::running_pid(&self.worker_config)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The sum of the latest memory samples of the running jobs' children,
    /// as the budget sees it (None without a budget).
    pub fn budget_in_use(&self) -> Option<u64> {
        self.budget.as_ref().map(|b| b.current())
    }

    /// Closes the pool: jobs still queued fail with [`Error::PoolClosed`],
    /// running jobs get up to `grace` to finish and are then cancelled
    /// (the worker config's cancel grace applies), and each worker asks its
    /// child to exit ([`Worker::shutdown`] with `grace`), killing it after.
    /// Returns once every thread is joined and every child reaped.
    pub fn shutdown(mut self, grace: Duration) {
        self.close(grace, grace);
    }

    fn close(&mut self, wait_running: Duration, grace: Duration) {
        *self.shared.grace.lock().unwrap_or_else(|e| e.into_inner()) = grace;
        self.shared.closing.store(true, Ordering::Release);
        for job in self.shared.queue.close() {
            {
                let mut counters = self.shared.lock();
                counters.closed_unstarted += 1;
                counters.failed += 1;
            }
            complete(&job, unstarted(&job, Error::PoolClosed));
        }
        let deadline = Instant::now().checked_add(wait_running);
        let mut counters = self.shared.lock();
        while counters.running.iter().any(Option::is_some) {
            let left = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                break;
            }
            counters = self
                .shared
                .idle
                .wait_timeout(counters, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        counters.cancelling = true;
        for token in counters.running.iter().flatten() {
            token.cancel();
        }
        drop(counters);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Pool {
    /// Fails queued jobs ([`Error::PoolClosed`]), cancels running ones,
    /// shuts every worker down (its config's `shutdown_grace`) and joins
    /// every thread.
    fn drop(&mut self) {
        if !self.threads.is_empty() || !self.shared.closing.load(Ordering::Acquire) {
            self.close(Duration::ZERO, self.shutdown_grace);
        }
    }
}

fn unstarted(job: &JobShared, error: Error) -> JobOutput {
    JobOutput::unstarted(job.id, error, job.submitted.elapsed())
}

/// Finishes `job` with `output` and tells a merged run.
fn complete(job: &JobShared, output: JobOutput) {
    job.finish(output);
    if let Route::Merge { tx, index, .. } = &job.route {
        let _ = tx.send(merge::Msg::Done { index: *index });
    }
}

/// A pool worker's thread: takes jobs until the queue closes, then shuts
/// its worker down.
fn serve(index: usize, mut worker: Worker, shared: &Shared) {
    while let Some(job) = shared.queue.pop() {
        let waited = job.submitted.elapsed();
        let expired = job.start_by.is_some_and(|t| Instant::now() >= t);
        if expired || job.cancel.is_cancelled() {
            let error = if expired {
                shared.queue.note_expired();
                Error::QueueTimeout { waited }
            } else {
                shared.lock().failed += 1;
                Error::Cancelled {
                    rows_delivered: 0,
                    killed: false,
                }
            };
            complete(&job, unstarted(&job, error));
            continue;
        }
        {
            let mut counters = shared.lock();
            counters.waits.record(waited);
            counters.running[index] = Some(job.cancel.clone());
            counters.workers[index].jobs += 1;
            if counters.cancelling {
                // Taken just before the pool closed.
                job.cancel.cancel();
            }
        }
        let output = run_job(index, &mut worker, &job, shared, waited);
        {
            let mut counters = shared.lock();
            counters.running[index] = None;
            if output.result.is_ok() {
                counters.completed += 1;
            } else {
                counters.failed += 1;
                counters.workers[index].failed_jobs += 1;
            }
            counters.workers[index].worker = worker.stats().clone();
            counters.pids[index] = worker.pid();
        }
        complete(&job, output);
        shared.idle.notify_all();
    }
    let grace = *shared.grace.lock().unwrap_or_else(|e| e.into_inner());
    worker.shutdown(grace);
    shared.lock().pids[index] = None;
}

/// Runs `job`'s attempts on `worker`.
fn run_job(
    index: usize,
    worker: &mut Worker,
    job: &JobShared,
    shared: &Shared,
    waited: Duration,
) -> JobOutput {
    let mut failed_attempts = Vec::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut options = RequestOptions::default().cancel(job.cancel.clone());
        if let Some(timeout) = job.timeout {
            options = options.timeout(timeout);
        }
        // Starts a fresh child if needed, so its pid is known while the
        // attempt runs; a failure here (spawn, restart cap) is the attempt's.
        let ready = worker.ensure_ready();
        shared.lock().pids[index] = worker.pid();
        let (result, rows, delivered) = match (ready, &job.route) {
            (Err(error), _) => (Err(error), Vec::new(), 0),
            (Ok(()), Route::Collect) => {
                let mut rows = Vec::new();
                let mut sink = |row: Row<'_>| {
                    rows.push(OwnedRow {
                        stream: row.stream,
                        sequence: row.sequence,
                        payload: row.payload.to_vec(),
                    });
                };
                let result = worker.stream_with::<_, serde_json::Value, _>(
                    &job.command,
                    &*job.request,
                    &mut sink,
                    options,
                );
                let delivered = rows.len() as u64;
                (result, rows, delivered)
            }
            (
                Ok(()),
                Route::Merge {
                    tx,
                    free,
                    index: job_index,
                },
            ) => {
                let mut sink = merge::ChunkSink::new(tx, free, *job_index, attempt);
                let result = worker.stream_with::<_, serde_json::Value, _>(
                    &job.command,
                    &*job.request,
                    &mut sink,
                    options,
                );
                sink.flush();
                (result, Vec::new(), sink.rows())
            }
        };
        let retry = match &result {
            Ok(_) => false,
            Err(error) => {
                job.idempotent
                    && attempt <= shared.retry.max_retries
                    && RetryPolicy::is_worker_fault(error)
                    && !job.cancel.is_cancelled()
                    && !shared.closing.load(Ordering::Acquire)
            }
        };
        match result {
            Err(error) if retry => {
                {
                    let mut counters = shared.lock();
                    counters.retries += 1;
                    counters.workers[index].retries += 1;
                    counters.workers[index].worker = worker.stats().clone();
                }
                failed_attempts.push(FailedAttempt {
                    attempt,
                    worker: index,
                    error,
                    rows,
                    rows_delivered: delivered,
                });
            }
            result => {
                return JobOutput {
                    id: job.id,
                    result,
                    rows,
                    rows_delivered: delivered,
                    failed_attempts,
                    attempts: attempt,
                    worker: Some(index),
                    waited,
                };
            }
        }
    }
}
