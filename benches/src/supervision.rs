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

use ringworker_child::builtins::startup::{
    ENV_STARTUP_MIB, ENV_STARTUP_MS, StartupState, expected_checksum,
};
use ringworker_testkit::procfs::pss_kib;

use crate::e2e::self_worker_config;
use crate::latency::percentile;

/// The watchdog thread's name (`/proc/.../comm` keeps its first 15 bytes).
pub const WATCHDOG_THREAD: &str = "ringworker-watchdog";

/// Target: prewarmed kill → ready p50 (after the death is noticed), ms.
pub const PREWARM_P50_TARGET_MS: f64 = 0.2;
/// Target: cold kill → ready p50 (after the death is noticed), ms.
pub const COLD_P50_TARGET_MS: f64 = 3.0;
/// Target: kill → ready p50 of a child forked from a template, ms.
pub const TEMPLATE_P50_TARGET_MS: f64 = 1.0;
/// Target: total PSS of 4 workers forked from one template, over the state.
pub const TEMPLATE_PSS_TARGET: f64 = 1.3;
/// The slow start-up of the kill → ready runs, ms.
pub const SLOW_STARTUP_MS: u64 = 2000;
/// The template state of the memory measurement, MiB.
pub const TEMPLATE_STATE_MIB: u64 = 512;
/// Between a replacement's readiness and the next kill: a worker dies
/// while it works, not the instant it is ready (lets the standby thread
/// make the next ring, as it does between requests).
pub const KILL_GAP: Duration = Duration::from_millis(20);
/// Target: idle watchdog thread, % of one core.
pub const WATCHDOG_IDLE_TARGET_PCT: f64 = 0.1;

/// How long a kill may take to be noticed before the case fails.
const NOTICE_WITHIN: Duration = Duration::from_secs(5);

/// How the replacement child comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// A fresh spawn: supervisor fork, shim fork, exec, start-up, handshake.
    Cold,
    /// The prewarmed spare (started and handshaken in the background) is
    /// swapped in.
    Prewarm,
    /// A fork of the warm template (`WorkerConfig::with_template`): no
    /// exec, no start-up.
    Template,
}

impl Restart {
    /// `cold`, `prewarm` or `template`.
    pub fn name(self) -> &'static str {
        match self {
            Restart::Cold => "cold",
            Restart::Prewarm => "prewarm",
            Restart::Template => "template",
        }
    }
}

/// Kill → ready samples of one restart mode.
#[derive(Debug, Clone)]
pub struct RestartLatency {
    /// How the replacement was made.
    pub mode: Restart,
    /// The worker's start-up step (`RINGWORKER_STARTUP_MS`), ms.
    pub startup_ms: u64,
    /// Kill until the death was noticed (`t1 − t0`), µs.
    pub noticed_us: Vec<f64>,
    /// Death noticed until `ensure_ready` returned (`t2 − t1`), µs.
    pub ready_after_notice_us: Vec<f64>,
    /// Kill until `ensure_ready` returned (`t2 − t0`), µs.
    pub ready_after_kill_us: Vec<f64>,
    /// Replacements that were prewarm swaps (`WorkerStats::prewarm_swaps`).
    pub swaps: u64,
    /// Children forked from a template (`WorkerStats::template_forks`).
    pub forks: u64,
}

impl RestartLatency {
    /// The target's figure: p50 of `t2 − t1` in ms.
    pub fn p50_ms(&self) -> f64 {
        percentile(&self.ready_after_notice_us, 50.0) / 1e3
    }

    /// The target for this mode and start-up cost, ms (none: shown only).
    pub fn target_ms(&self) -> Option<f64> {
        match (self.mode, self.startup_ms) {
            (Restart::Template, _) => Some(TEMPLATE_P50_TARGET_MS),
            (Restart::Prewarm, 0) => Some(PREWARM_P50_TARGET_MS),
            (Restart::Cold, 0) => Some(COLD_P50_TARGET_MS),
            _ => None,
        }
    }

    /// `cold`, `prewarm` or `template`.
    pub fn mode(&self) -> &'static str {
        self.mode.name()
    }
}

/// Total PSS of 4 workers holding the same prepared state, forked from
/// one template and exec'd each on its own.
#[derive(Debug, Clone)]
pub struct TemplateMemory {
    /// The state each worker holds (`RINGWORKER_STARTUP_MIB`), MiB.
    pub state_mib: u64,
    /// Workers.
    pub workers: usize,
    /// Template + forked workers + their shims, PSS in KiB.
    pub template_pss_kib: u64,
    /// Exec'd workers + their shims, PSS in KiB.
    pub exec_pss_kib: u64,
}

impl TemplateMemory {
    /// Forked total over the state's size.
    pub fn template_ratio(&self) -> f64 {
        self.template_pss_kib as f64 / (self.state_mib * 1024) as f64
    }

    /// Exec'd total over the state's size.
    pub fn exec_ratio(&self) -> f64 {
        self.exec_pss_kib as f64 / (self.state_mib * 1024) as f64
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
    /// Kill → ready: cold, prewarmed and template, start-up 0 and 2 s.
    pub restarts: Vec<RestartLatency>,
    /// PSS of 4 workers over a 512 MiB state, forked and exec'd.
    pub memory: TemplateMemory,
    /// Idle CPU with default limits.
    pub idle: IdleCpu,
    /// Idle CPU with a hard RSS limit.
    pub idle_hard: IdleCpu,
}

/// Sizes of the case: (kills per mode, kills per mode whose every
/// replacement pays the slow start-up, idle window).
pub fn sizes(quick: bool) -> (usize, usize, Duration) {
    if quick {
        (100, 3, Duration::from_secs(3))
    } else {
        (200, 8, Duration::from_secs(10))
    }
}

/// Messages [`run_case`] passes to its `progress` (one per measurement):
/// kill → ready in 3 modes × 2 start-ups, template memory, 2 idle windows.
pub const STEPS: usize = 9;

/// Runs the whole case, calling `progress` with a message before each of
/// its [`STEPS`] measurements.
pub fn run_case(
    capacity: usize,
    kills: usize,
    slow_kills: usize,
    window: Duration,
    progress: &mut dyn FnMut(String),
) -> Result<SupervisionResult> {
    let mut restarts = Vec::new();
    for startup_ms in [0, SLOW_STARTUP_MS] {
        for mode in [Restart::Cold, Restart::Prewarm, Restart::Template] {
            // Cold and prewarmed replacements each pay the start-up.
            let n = if startup_ms > 0 && mode != Restart::Template {
                slow_kills
            } else {
                kills
            };
            progress(format!(
                "supervision: kill -> ready, {}, start-up {startup_ms} ms, {n} kills",
                mode.name()
            ));
            restarts.push(
                kill_to_ready(capacity, n, mode, startup_ms)
                    .with_context(|| format!("kill -> ready, {}, {startup_ms} ms", mode.name()))?,
            );
        }
    }
    progress(format!(
        "supervision: PSS of 4 workers over {TEMPLATE_STATE_MIB} MiB, forked and exec'd"
    ));
    let memory = template_memory(capacity, TEMPLATE_STATE_MIB, 4).context("template memory")?;
    let workers = 4;
    progress(format!(
        "supervision: watchdog idle, {workers} workers, {} s",
        window.as_secs_f64()
    ));
    let idle = watchdog_idle(capacity, workers, window, None).context("watchdog idle")?;
    // Far above what an idle worker holds: nothing may be killed.
    let hard = 1 << 30;
    progress(format!(
        "supervision: watchdog idle with a hard RSS limit, {workers} workers, {} s",
        window.as_secs_f64()
    ));
    let idle_hard = watchdog_idle(capacity, workers, window, Some(hard))
        .context("watchdog idle, hard RSS limit")?;
    Ok(SupervisionResult {
        capacity,
        restarts,
        memory,
        idle,
        idle_hard,
    })
}

fn restart_config(capacity: usize, mode: Restart, startup_ms: u64) -> Result<WorkerConfig> {
    // Every kill is an unplanned restart: lift the intensity cap.
    let policy = RestartPolicy::default()
        .with_restart_limit(usize::MAX, Duration::from_secs(1))
        .with_prewarm(mode == Restart::Prewarm);
    Ok(self_worker_config(capacity)?
        .with_restart_policy(policy)
        .with_template(mode == Restart::Template)
        .with_env(ENV_STARTUP_MS, startup_ms.to_string())
        .with_startup_timeout(Duration::from_millis(startup_ms) + Duration::from_secs(10)))
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
pub fn kill_to_ready(
    capacity: usize,
    kills: usize,
    mode: Restart,
    startup_ms: u64,
) -> Result<RestartLatency> {
    let prewarm = mode == Restart::Prewarm;
    let mut worker = Worker::spawn(restart_config(capacity, mode, startup_ms)?).context("spawn")?;
    let mut out = RestartLatency {
        mode,
        startup_ms,
        noticed_us: Vec::with_capacity(kills),
        ready_after_notice_us: Vec::with_capacity(kills),
        ready_after_kill_us: Vec::with_capacity(kills),
        swaps: 0,
        forks: 0,
    };
    let us = |d: Duration| d.as_nanos() as f64 / 1e3;
    for k in 0..kills {
        if prewarm {
            wait_until("the spare's start", Duration::from_secs(10), || {
                worker.spare_ready() == Some(true)
            })?;
        }
        std::thread::sleep(KILL_GAP);
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
    out.forks = stats.template_forks;
    if mode == Restart::Template {
        // The first child and one per kill.
        ensure!(
            out.forks > kills as u64,
            "{kills} kills but {} template forks",
            out.forks
        );
    }
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

/// Sum of the PSS of `pids`, KiB.
fn pss_total(pids: &[u32]) -> Result<u64> {
    let mut total = 0;
    for &pid in pids {
        total += pss_kib(pid).with_context(|| format!("PSS of {pid}"))?;
    }
    Ok(total)
}

/// `workers` workers, each holding `mib` MiB of prepared state (every
/// worker has checked the state's checksum in one request): forked from
/// one template, then exec'd each on its own; the total PSS of each set.
pub fn template_memory(capacity: usize, mib: u64, workers: usize) -> Result<TemplateMemory> {
    let mut totals = [0u64; 2];
    for (i, template) in [true, false].into_iter().enumerate() {
        let config = self_worker_config(capacity)?
            .with_template(template)
            .with_env(ENV_STARTUP_MIB, mib.to_string())
            .with_startup_timeout(Duration::from_secs(60));
        let mut set = Vec::with_capacity(workers);
        for _ in 0..workers {
            let mut worker = Worker::spawn(config.clone()).context("spawn")?;
            let state: StartupState = worker
                .call("startup_state", &())
                .context("reading the prepared state")?;
            ensure!(
                state.checksum == expected_checksum(mib),
                "worker state checksum mismatch"
            );
            set.push(worker);
        }
        let mut pids = Vec::new();
        for worker in &set {
            pids.extend(worker.pid());
            if let Some(spawned) = worker.spawned_pid()
                && Some(spawned) != worker.pid()
            {
                pids.push(spawned);
            }
        }
        if let Some(t) = set.first().and_then(Worker::template_pid) {
            pids.push(t);
        }
        pids.sort_unstable();
        pids.dedup();
        totals[i] = pss_total(&pids)?;
        for worker in set {
            worker.shutdown(Duration::from_secs(1));
        }
    }
    Ok(TemplateMemory {
        state_mib: mib,
        workers,
        template_pss_kib: totals[0],
        exec_pss_kib: totals[1],
    })
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
    let idle = idle_window(window)?;
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
        rss_samples,
        ..idle
    })
}

/// 1 s to settle, then the watchdog thread's and the whole process's CPU
/// over `window` (the caller fills in what it measured it on).
pub fn idle_window(window: Duration) -> Result<IdleCpu> {
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
    Ok(IdleCpu {
        workers: 0,
        hard_rss: None,
        window: start.elapsed(),
        watchdog_ticks: ticks1 - ticks0,
        ticks_per_s: rustix::param::clock_ticks_per_second(),
        watchdog_ns: sched0.zip(sched1).map(|(a, b)| b.saturating_sub(a)),
        process_ns: cpu1 - cpu0,
        rss_samples: 0,
    })
}
