//! Supervision costs through the public `Worker` API, with this binary
//! re-executed as the worker (the child of [`crate::e2e`]):
//!
//! - **kill → ready**: SIGKILL the worker process (`Worker::pid`, under the
//!   containment shim) at `t0`, spin until `Worker::is_alive` turns false
//!   (`t1`: the death is noticed), then `Worker::ensure_ready` returns at
//!   `t2` with a fresh child that has answered its handshake. Cold: a new
//!   spawn (supervisor fork, shim fork, exec, handshake); prewarmed
//!   (`RestartPolicy::with_prewarm`): the spare, started and handshaken in
//!   the background, is swapped in (the spare is waited for, untimed,
//!   before each kill). The target is on `t2 − t1`; `t2 − t0` is shown too.
//! - **watchdog idle CPU**: a few idle workers (each has answered one small
//!   request), then the CPU time of the `ringworker-watchdog` thread and of
//!   the whole supervisor process over a window, as % of one core; once
//!   with default limits, once with a hard RSS limit (sampled only while a
//!   request runs, so idle children must cost nothing either).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ringworker::{MemoryLimits, RestartPolicy, RestartReason, Worker, WorkerConfig};
use ringworker_child::builtins::synthetic::{SyntheticRequest, SyntheticSummary};
use rustix::process::{Pid, Signal};
use rustix::time::{ClockId, clock_gettime};

use crate::e2e::self_worker_config;
use crate::latency::percentile;

/// The watchdog thread's name (`/proc/.../comm` keeps its first 15 bytes).
pub const WATCHDOG_THREAD: &str = "ringworker-watchdog";

/// Target: prewarmed kill → ready p50 (after the death is noticed), ms.
pub const PREWARM_P50_TARGET_MS: f64 = 0.2;
/// Target: cold kill → ready p50 (after the death is noticed), ms.
pub const COLD_P50_TARGET_MS: f64 = 3.0;
/// Target: idle watchdog thread, % of one core.
pub const WATCHDOG_IDLE_TARGET_PCT: f64 = 0.1;

/// How long a kill may take to be noticed before the case fails.
const NOTICE_WITHIN: Duration = Duration::from_secs(5);

/// Kill → ready samples of one restart mode.
#[derive(Debug, Clone)]
pub struct RestartLatency {
    /// Whether the replacement was the prewarmed spare.
    pub prewarm: bool,
    /// Kill until the death was noticed (`t1 − t0`), µs.
    pub noticed_us: Vec<f64>,
    /// Death noticed until `ensure_ready` returned (`t2 − t1`), µs.
    pub ready_after_notice_us: Vec<f64>,
    /// Kill until `ensure_ready` returned (`t2 − t0`), µs.
    pub ready_after_kill_us: Vec<f64>,
    /// Replacements that were prewarm swaps (`WorkerStats::prewarm_swaps`).
    pub swaps: u64,
}

impl RestartLatency {
    /// The target's figure: p50 of `t2 − t1` in ms.
    pub fn p50_ms(&self) -> f64 {
        percentile(&self.ready_after_notice_us, 50.0) / 1e3
    }

    /// The target for this mode, ms.
    pub fn target_ms(&self) -> f64 {
        if self.prewarm {
            PREWARM_P50_TARGET_MS
        } else {
            COLD_P50_TARGET_MS
        }
    }

    /// `cold` or `prewarm`.
    pub fn mode(&self) -> &'static str {
        if self.prewarm { "prewarm" } else { "cold" }
    }
}

/// CPU of an idle supervisor over one window.
#[derive(Debug, Clone)]
pub struct IdleCpu {
    /// Idle workers.
    pub workers: usize,
    /// Hard RSS limit of each (none: default limits).
    pub hard_rss: Option<u64>,
    /// Measured window.
    pub window: Duration,
    /// Watchdog thread utime + stime over the window, clock ticks.
    pub watchdog_ticks: u64,
    /// Clock ticks per second.
    pub ticks_per_s: u64,
    /// Watchdog thread time on CPU over the window from `schedstat`, ns
    /// (none: the kernel has no schedstats).
    pub watchdog_ns: Option<u64>,
    /// Whole supervisor process CPU over the window (`CLOCK_PROCESS_CPUTIME_ID`), ns.
    pub process_ns: u64,
    /// Memory samples the watchdog took of these workers over their whole
    /// life (warm-up request included), read after the window.
    pub rss_samples: u64,
}

impl IdleCpu {
    fn pct(&self, ns: f64) -> f64 {
        ns / self.window.as_nanos() as f64 * 100.0
    }

    /// Watchdog thread, % of one core: from `schedstat` (ns) when present,
    /// else from the clock ticks.
    pub fn watchdog_pct(&self) -> f64 {
        match self.watchdog_ns {
            Some(ns) => self.pct(ns as f64),
            None => self.watchdog_ticks_pct(),
        }
    }

    /// Watchdog thread from utime + stime (tick resolution), % of one core.
    pub fn watchdog_ticks_pct(&self) -> f64 {
        self.pct(self.watchdog_ticks as f64 * 1e9 / self.ticks_per_s as f64)
    }

    /// Whole process, % of one core.
    pub fn process_pct(&self) -> f64 {
        self.pct(self.process_ns as f64)
    }
}

/// Everything the case measured.
#[derive(Debug, Clone)]
pub struct SupervisionResult {
    /// Ring capacity of the workers.
    pub capacity: usize,
    /// Kill → ready, fresh spawn.
    pub cold: RestartLatency,
    /// Kill → ready, prewarmed spare.
    pub prewarm: RestartLatency,
    /// Idle CPU with default limits.
    pub idle: IdleCpu,
    /// Idle CPU with a hard RSS limit.
    pub idle_hard: IdleCpu,
}

/// Sizes of the case: (kills per mode, idle window).
pub fn sizes(quick: bool) -> (usize, Duration) {
    if quick {
        (100, Duration::from_secs(3))
    } else {
        (200, Duration::from_secs(10))
    }
}

/// Runs the whole case.
pub fn run_case(capacity: usize, kills: usize, window: Duration) -> Result<SupervisionResult> {
    eprintln!("ringbench: supervision: kill -> ready, cold, {kills} kills");
    let cold = kill_to_ready(capacity, kills, false).context("kill -> ready, cold")?;
    eprintln!("ringbench: supervision: kill -> ready, prewarmed, {kills} kills");
    let prewarm = kill_to_ready(capacity, kills, true).context("kill -> ready, prewarmed")?;
    let workers = 4;
    eprintln!(
        "ringbench: supervision: watchdog idle, {workers} workers, {} s",
        window.as_secs_f64()
    );
    let idle = watchdog_idle(capacity, workers, window, None).context("watchdog idle")?;
    // Far above what an idle worker holds: nothing may be killed.
    let hard = 1 << 30;
    eprintln!(
        "ringbench: supervision: watchdog idle with a hard RSS limit, {workers} workers, {} s",
        window.as_secs_f64()
    );
    let idle_hard = watchdog_idle(capacity, workers, window, Some(hard))
        .context("watchdog idle, hard RSS limit")?;
    Ok(SupervisionResult {
        capacity,
        cold,
        prewarm,
        idle,
        idle_hard,
    })
}

fn restart_config(capacity: usize, prewarm: bool) -> Result<WorkerConfig> {
    // Every kill is an unplanned restart: lift the intensity cap.
    let policy = RestartPolicy::default()
        .with_restart_limit(usize::MAX, Duration::from_secs(1))
        .with_prewarm(prewarm);
    Ok(self_worker_config(capacity)?.with_restart_policy(policy))
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() >= deadline {
            bail!("{what}: not within {within:?}");
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// `kills` times: SIGKILL the worker, time until the death is noticed and
/// until `ensure_ready` has a fresh child.
pub fn kill_to_ready(capacity: usize, kills: usize, prewarm: bool) -> Result<RestartLatency> {
    let mut worker = Worker::spawn(restart_config(capacity, prewarm)?).context("spawn")?;
    let mut out = RestartLatency {
        prewarm,
        noticed_us: Vec::with_capacity(kills),
        ready_after_notice_us: Vec::with_capacity(kills),
        ready_after_kill_us: Vec::with_capacity(kills),
        swaps: 0,
    };
    let us = |d: Duration| d.as_nanos() as f64 / 1e3;
    for k in 0..kills {
        if prewarm {
            wait_until("the spare's start", Duration::from_secs(10), || {
                worker.spare_ready() == Some(true)
            })?;
        }
        let pid = worker.pid().context("no worker after ensure_ready")?;
        let target = Pid::from_raw(pid as i32).context("worker pid 0")?;
        let t0 = Instant::now();
        rustix::process::kill_process(target, Signal::KILL)
            .with_context(|| format!("SIGKILL to worker {pid}"))?;
        wait_until("the death noticed", NOTICE_WITHIN, || !worker.is_alive())
            .with_context(|| format!("kill {k}"))?;
        let t1 = Instant::now();
        worker
            .ensure_ready()
            .with_context(|| format!("ensure_ready after kill {k}"))?;
        let t2 = Instant::now();
        ensure!(
            worker.is_alive() && worker.pid() != Some(pid),
            "after kill {k} the worker is not a fresh live child"
        );
        out.noticed_us.push(us(t1 - t0));
        out.ready_after_notice_us.push(us(t2 - t1));
        out.ready_after_kill_us.push(us(t2 - t0));
    }
    // The last replacement serves.
    let summary: SyntheticSummary = worker
        .call("synthetic", &SyntheticRequest::fixed(10, 100))
        .context("a request after the kills")?;
    ensure!(summary.rows == 10, "request after the kills: {summary:?}");
    let stats = worker.stats();
    let restarts: u64 = stats.restarts.values().sum();
    ensure!(
        restarts == kills as u64,
        "{kills} kills but {restarts} restarts ({:?})",
        stats.restarts
    );
    ensure!(
        stats.restarts.get(&RestartReason::Signalled).copied() == Some(kills as u64),
        "kills not counted as deaths: {:?}",
        stats.restarts
    );
    out.swaps = stats.prewarm_swaps;
    if prewarm {
        ensure!(
            out.swaps == kills as u64,
            "{kills} kills but {} prewarm swaps",
            out.swaps
        );
    }
    worker.shutdown(Duration::from_secs(1));
    Ok(out)
}

/// The watchdog thread's tid (the thread exists once a worker was spawned).
pub fn watchdog_tid() -> Result<u32> {
    let truncated = &WATCHDOG_THREAD[..WATCHDOG_THREAD.len().min(15)];
    for entry in std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm"))
            && comm.trim_end() == truncated
        {
            return Ok(tid);
        }
    }
    bail!("no {WATCHDOG_THREAD} thread under /proc/self/task")
}

fn task_path(tid: u32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/task/{tid}/{file}"))
}

/// utime + stime of thread `tid`, clock ticks.
pub fn thread_ticks(tid: u32) -> Result<u64> {
    let path = task_path(tid, "stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {n} of {}", path.display()))
    };
    Ok(field(14)? + field(15)?)
}

/// Time thread `tid` spent on a CPU, ns (`schedstat`; none without schedstats).
pub fn thread_sched_ns(tid: u32) -> Option<u64> {
    std::fs::read_to_string(task_path(tid, "schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time of this whole process (every thread), ns.
pub fn process_cpu_ns() -> u64 {
    let ts = clock_gettime(ClockId::ProcessCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `workers` idle workers (each answered one small request), 1 s to
/// settle, then the watchdog thread's and the process's CPU over `window`.
pub fn watchdog_idle(
    capacity: usize,
    workers: usize,
    window: Duration,
    hard_rss: Option<u64>,
) -> Result<IdleCpu> {
    let memory = MemoryLimits::default().with_hard_rss(hard_rss);
    let mut pool = Vec::with_capacity(workers);
    for _ in 0..workers {
        let config = self_worker_config(capacity)?.with_memory(memory.clone());
        let mut worker = Worker::spawn(config).context("spawn")?;
        let _: SyntheticSummary = worker
            .call("synthetic", &SyntheticRequest::fixed(10, 100))
            .context("warm-up request")?;
        pool.push(worker);
    }
    std::thread::sleep(Duration::from_secs(1));
    let tid = watchdog_tid()?;
    let ticks0 = thread_ticks(tid)?;
    let sched0 = thread_sched_ns(tid);
    let cpu0 = process_cpu_ns();
    let start = Instant::now();
    std::thread::sleep(window);
    let ticks1 = thread_ticks(tid)?;
    let sched1 = thread_sched_ns(tid);
    let cpu1 = process_cpu_ns();
    let measured = start.elapsed();
    for worker in &pool {
        ensure!(worker.is_alive(), "an idle worker died during the window");
    }
    // The memory sample counts reach the stats when a child is replaced.
    let mut rss_samples = 0;
    for mut worker in pool {
        worker.cycle().context("cycling an idle worker")?;
        rss_samples += worker.stats().rss_samples;
        worker.shutdown(Duration::from_secs(1));
    }
    Ok(IdleCpu {
        workers,
        hard_rss,
        window: measured,
        watchdog_ticks: ticks1 - ticks0,
        ticks_per_s: rustix::param::clock_ticks_per_second(),
        watchdog_ns: sched0.zip(sched1).map(|(a, b)| b.saturating_sub(a)),
        process_ns: cpu1 - cpu0,
        rss_samples,
    })
}
