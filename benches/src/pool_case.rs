//! The pool through the public `Pool` API, with this binary re-executed as
//! the worker (the child of [`crate::e2e`]), unpinned:
//!
//! - **throughput**: the same CPU-bound jobs (`synthetic` rows with dummy
//!   work per row, so the children, not the ring, set the pace) through
//!   `Pool::run_merged` into one checksumming sink, with 1 and then 2
//!   workers; every job's checksum must match its summary. Reported: rows/s,
//!   the 2-worker speedup, and the CPU per row of the supervisor (all its
//!   threads: `CLOCK_PROCESS_CPUTIME_ID`) next to the children's (utime +
//!   stime of each worker from `/proc`). The consumer is not the
//!   bottleneck when the supervisor spends a small fraction of what a
//!   child spends per row. For comparison, the same jobs one after the
//!   other through a plain `Worker::stream` (no pool) into the same sink:
//!   what the pool adds is the difference.
//! - **idle**: 8 pooled workers, each has answered a job, then the CPU of
//!   the `ringworker-watchdog` thread and of the whole process over a
//!   window, as % of one core.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use ringworker::{Job, Order, Pool, PoolConfig};
use ringworker_child::builtins::synthetic::{Checksum, SyntheticRequest, SyntheticSummary};
use serde_json::{Value, json};

use crate::e2e::self_worker_config;
use crate::report::Target;
use crate::supervision::{IdleCpu, WATCHDOG_IDLE_TARGET_PCT, idle_window, process_cpu_ns};

/// Dummy work per row: about a microsecond of CPU in the child.
pub const WORK_ITERS: u32 = 2000;
/// Payload bytes per row.
pub const ROW_BYTES: u32 = 100;
/// Idle pooled workers in the watchdog measurement.
pub const IDLE_WORKERS: usize = 8;
/// Target: the supervisor's CPU per row is at most this share of a child's
/// (the consumer is not the bottleneck).
pub const SUPERVISOR_SHARE_TARGET: f64 = 0.25;

/// One throughput run.
#[derive(Debug, Clone)]
pub struct PoolThroughput {
    /// Pool workers.
    pub workers: usize,
    /// Jobs run.
    pub jobs: usize,
    /// Rows delivered (all verified).
    pub rows: u64,
    /// Wall time of `run_merged`.
    pub wall: Duration,
    /// Supervisor process CPU over the run, ns.
    pub supervisor_ns: u64,
    /// The workers' CPU over the run (utime + stime), ns.
    pub children_ns: u64,
}

impl PoolThroughput {
    /// Rows per second.
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.wall.as_secs_f64()
    }

    /// Supervisor CPU per row, ns.
    pub fn supervisor_ns_per_row(&self) -> f64 {
        self.supervisor_ns as f64 / self.rows as f64
    }

    /// Children's CPU per row, ns.
    pub fn children_ns_per_row(&self) -> f64 {
        self.children_ns as f64 / self.rows as f64
    }

    /// Supervisor CPU per row over the children's.
    pub fn supervisor_share(&self) -> f64 {
        self.supervisor_ns as f64 / self.children_ns.max(1) as f64
    }

    /// Supervisor CPU as a share of one core over the run.
    pub fn supervisor_cores(&self) -> f64 {
        self.supervisor_ns as f64 / self.wall.as_nanos() as f64
    }
}

/// Everything the case measured.
#[derive(Debug, Clone)]
pub struct PoolResult {
    /// The same jobs through a plain `Worker::stream` (no pool).
    pub stream: PoolThroughput,
    /// One worker.
    pub one: PoolThroughput,
    /// Two workers.
    pub two: PoolThroughput,
    /// Idle pool.
    pub idle: IdleCpu,
}

impl PoolResult {
    /// Two workers' rows/s over one's.
    pub fn speedup(&self) -> f64 {
        self.two.rows_per_s() / self.one.rows_per_s()
    }
}

/// Sizes: (jobs, rows per job, idle window).
pub fn sizes(quick: bool) -> (usize, u64, Duration) {
    if quick {
        (8, 250_000, Duration::from_secs(3))
    } else {
        (16, 500_000, Duration::from_secs(10))
    }
}

/// Messages [`run_case`] passes to its `progress` (one per measurement).
pub const STEPS: usize = 4;

/// Runs the whole case, calling `progress` with a message before each of
/// its [`STEPS`] measurements.
pub fn run_case(
    capacity: usize,
    quick: bool,
    progress: &mut dyn FnMut(String),
) -> Result<PoolResult> {
    let (jobs, rows, window) = sizes(quick);
    progress(format!(
        "pool: {jobs} CPU-bound jobs of {rows} rows, Worker::stream"
    ));
    let stream = stream_throughput(capacity, jobs, rows).context("Worker::stream baseline")?;
    progress(format!(
        "pool: {jobs} CPU-bound jobs of {rows} rows, 1 worker"
    ));
    let one = throughput(capacity, 1, jobs, rows).context("pool throughput, 1 worker")?;
    progress(format!(
        "pool: {jobs} CPU-bound jobs of {rows} rows, 2 workers"
    ));
    let two = throughput(capacity, 2, jobs, rows).context("pool throughput, 2 workers")?;
    progress(format!(
        "pool: watchdog idle, {IDLE_WORKERS} pooled workers, {} s",
        window.as_secs_f64()
    ));
    let idle = idle(capacity, IDLE_WORKERS, window).context("pool idle")?;
    Ok(PoolResult {
        stream,
        one,
        two,
        idle,
    })
}

/// utime + stime of process `pid`, ns (0 if it is gone).
fn process_ticks_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> u64 { fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0) };
    (field(14) + field(15)) * 1_000_000_000 / rustix::param::clock_ticks_per_second()
}

fn children_ns(pool: &Pool) -> u64 {
    pool.worker_pids()
        .into_iter()
        .flatten()
        .map(process_ticks_ns)
        .sum()
}

/// The request of job `seed`.
fn cpu_request(rows: u64, seed: u64) -> SyntheticRequest {
    let mut request = SyntheticRequest::fixed(rows, ROW_BYTES);
    request.seed = seed;
    request.work_iters = WORK_ITERS;
    request
}

/// The same jobs as [`throughput`], one after the other through a plain
/// `Worker::stream` into the same checksumming sink (`workers` = 0).
pub fn stream_throughput(capacity: usize, jobs: usize, rows: u64) -> Result<PoolThroughput> {
    let config = self_worker_config(capacity)?.with_request_timeout(Duration::from_secs(600));
    let mut worker = ringworker::Worker::spawn(config).context("starting the worker")?;
    let _: SyntheticSummary = worker
        .call("synthetic", &SyntheticRequest::fixed(1000, ROW_BYTES))
        .context("warm-up request")?;
    let pid = worker.pid().context("worker pid")?;
    let children0 = process_ticks_ns(pid);
    let cpu0 = process_cpu_ns();
    let start = Instant::now();
    let mut delivered = 0u64;
    for j in 0..jobs {
        let mut checksum = Checksum::default();
        let mut sink = |row: ringworker::Row<'_>| {
            checksum.add(row.payload);
            delivered += 1;
        };
        let summary: SyntheticSummary = worker
            .stream("synthetic", &cpu_request(rows, j as u64), &mut sink)
            .with_context(|| format!("job {j}"))?;
        ensure!(
            summary.rows == rows && summary.checksum == checksum.value(),
            "job {j}: rows or checksum mismatch"
        );
    }
    let wall = start.elapsed();
    let supervisor_ns = process_cpu_ns() - cpu0;
    let children_ns = process_ticks_ns(pid).saturating_sub(children0);
    worker.shutdown(Duration::from_secs(1));
    Ok(PoolThroughput {
        workers: 0,
        jobs,
        rows: delivered,
        wall,
        supervisor_ns,
        children_ns,
    })
}

/// `jobs` jobs of `rows` CPU-bound rows through a pool of `workers`.
pub fn throughput(
    capacity: usize,
    workers: usize,
    jobs: usize,
    rows: u64,
) -> Result<PoolThroughput> {
    let config = self_worker_config(capacity)?.with_request_timeout(Duration::from_secs(600));
    let pool = Pool::new(PoolConfig::new(config, workers)).context("starting the pool")?;
    let request = |seed: u64| cpu_request(rows, seed);
    // Warm-up: every worker answers one small job.
    for output in pool
        .run_merged(
            (0..workers).map(|_| {
                Job::new("synthetic", &SyntheticRequest::fixed(1000, ROW_BYTES)).expect("encodes")
            }),
            Order::Completion,
            |_| {},
        )
        .outputs
    {
        output.result.context("warm-up job")?;
    }
    let job_list: Vec<Job> = (0..jobs)
        .map(|j| Job::new("synthetic", &request(j as u64)).context("encoding a job"))
        .collect::<Result<_>>()?;
    let mut checksums = vec![Checksum::default(); jobs];
    let mut delivered = 0u64;
    let children0 = children_ns(&pool);
    let cpu0 = process_cpu_ns();
    let start = Instant::now();
    let merged = pool.run_merged(job_list, Order::Completion, |tagged| {
        checksums[tagged.job].add(tagged.row.payload);
        delivered += 1;
    });
    let wall = start.elapsed();
    let supervisor_ns = process_cpu_ns() - cpu0;
    let children_ns = children_ns(&pool).saturating_sub(children0);
    for (j, output) in merged.outputs.into_iter().enumerate() {
        let summary = output.result.with_context(|| format!("job {j}"))?;
        let summary: SyntheticSummary =
            serde_json::from_value(summary).context("decoding a job's summary")?;
        ensure!(summary.rows == rows, "job {j}: {} rows", summary.rows);
        ensure!(
            summary.checksum == checksums[j].value(),
            "job {j}: checksum mismatch"
        );
    }
    ensure!(
        delivered == rows * jobs as u64,
        "{delivered} rows delivered"
    );
    pool.shutdown(Duration::from_secs(1));
    Ok(PoolThroughput {
        workers,
        jobs,
        rows: delivered,
        wall,
        supervisor_ns,
        children_ns,
    })
}

/// `workers` pooled workers, each has answered a job, 1 s to settle, then
/// the watchdog's and the process's CPU over `window`.
pub fn idle(capacity: usize, workers: usize, window: Duration) -> Result<IdleCpu> {
    let pool = Pool::new(PoolConfig::new(self_worker_config(capacity)?, workers))
        .context("starting the pool")?;
    // Slow enough that each worker takes one.
    let mut warm = SyntheticRequest::fixed(20, ROW_BYTES);
    warm.rate = Some(100.0);
    let merged = pool.run_merged(
        (0..workers).map(|_| Job::new("synthetic", &warm).expect("encodes")),
        Order::Completion,
        |_| {},
    );
    for output in merged.outputs {
        output.result.context("warm-up job")?;
    }
    let idle = idle_window(window)?;
    let alive = pool.worker_pids().iter().filter(|p| p.is_some()).count();
    ensure!(
        alive == workers,
        "{alive} of {workers} pooled workers alive"
    );
    pool.shutdown(Duration::from_secs(1));
    Ok(IdleCpu { workers, ..idle })
}

/// The case's targets.
pub fn targets(pool: &PoolResult) -> Vec<Target> {
    let share = pool.two.supervisor_share();
    vec![
        Target {
            name: format!(
                "pool supervisor CPU/row <= {:.0}% of child's",
                SUPERVISOR_SHARE_TARGET * 100.0
            ),
            measured: format!(
                "{:.1}% ({:.0} vs {:.0} ns/row, 2 workers)",
                share * 100.0,
                pool.two.supervisor_ns_per_row(),
                pool.two.children_ns_per_row()
            ),
            pass: share <= SUPERVISOR_SHARE_TARGET,
        },
        Target {
            name: format!(
                "pool idle watchdog < {WATCHDOG_IDLE_TARGET_PCT}% ({IDLE_WORKERS} workers)"
            ),
            measured: format!("{:.4}%", pool.idle.watchdog_pct()),
            pass: pool.idle.watchdog_pct() < WATCHDOG_IDLE_TARGET_PCT,
        },
    ]
}

/// The case's lines of the human-readable report.
pub fn table(pool: &PoolResult) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>10} {:>12} {:>9} {:>14} {:>14} {:>10}",
        "pool", "jobs", "rows", "rows/s", "speedup", "sup ns/row", "child ns/row", "sup cores"
    );
    for t in [&pool.stream, &pool.one, &pool.two] {
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>10} {:>12.0} {:>9} {:>14.1} {:>14.1} {:>10.3}",
            match t.workers {
                0 => "  stream".to_owned(),
                1 => "  1 worker".to_owned(),
                n => format!("  {n} workers"),
            },
            t.jobs,
            t.rows,
            t.rows_per_s(),
            match t.workers {
                0 => "-".to_owned(),
                1 => "1.00x".to_owned(),
                _ => format!("{:.2}x", pool.speedup()),
            },
            t.supervisor_ns_per_row(),
            t.children_ns_per_row(),
            t.supervisor_cores(),
        );
    }
    let _ = writeln!(
        s,
        "(Pool::run_merged, completion order, every job checksummed; synthetic {ROW_BYTES} B rows \
         with {WORK_ITERS} work iterations each; sup = the whole supervisor process, child = the \
         workers' utime + stime; stream = the same jobs through a plain Worker::stream, no pool)"
    );
    let _ = writeln!(
        s,
        "pool idle ({} workers, {:.0} s): watchdog thread {:.4}%, process {:.4}% of one core",
        pool.idle.workers,
        pool.idle.window.as_secs_f64(),
        pool.idle.watchdog_pct(),
        pool.idle.process_pct(),
    );
    s
}

/// The case as one JSON object.
pub fn json(pool: &PoolResult) -> Value {
    let run = |t: &PoolThroughput| {
        json!({
            "workers": t.workers,
            "jobs": t.jobs,
            "rows": t.rows,
            "wall_s": t.wall.as_secs_f64(),
            "rows_per_s": t.rows_per_s(),
            "supervisor_ns_per_row": t.supervisor_ns_per_row(),
            "children_ns_per_row": t.children_ns_per_row(),
            "supervisor_cores": t.supervisor_cores(),
        })
    };
    json!({
        "case": "pool",
        "row_bytes": ROW_BYTES,
        "work_iters": WORK_ITERS,
        "worker_stream": run(&pool.stream),
        "one_worker": run(&pool.one),
        "two_workers": run(&pool.two),
        "speedup": pool.speedup(),
        "idle": {
            "workers": pool.idle.workers,
            "window_s": pool.idle.window.as_secs_f64(),
            "watchdog_cpu_pct": pool.idle.watchdog_pct(),
            "process_cpu_pct": pool.idle.process_pct(),
        },
    })
}
