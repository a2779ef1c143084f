//! Results: the human table, one JSON object per line, and the targets.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::latency::percentile;
use crate::supervision::{
    KILL_GAP, Restart, RestartLatency, SupervisionResult, TEMPLATE_PSS_TARGET,
    WATCHDOG_IDLE_TARGET_PCT,
};

/// One throughput case: the ring, the baseline (and its borrowed-payload
/// variant) and, for some sizes, the end-to-end `Worker::stream` path, run
/// interleaved so that run `i` of each saw the same machine.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name (`100B`, `1KiB`, `4KiB`, `mixed`, `custom`).
    pub case: String,
    /// Payload size (the mean for mixed sizes).
    pub row_bytes: f64,
    /// Ring rows per run.
    pub rows: u64,
    /// Ring rows/s of each repetition.
    pub ring_rows_per_s: Vec<f64>,
    /// Ring payload bytes/s of each repetition.
    pub ring_bytes_per_s: Vec<f64>,
    /// Baseline rows per run.
    pub baseline_rows: u64,
    /// Baseline (owned payload) rows/s of each repetition.
    pub baseline_rows_per_s: Vec<f64>,
    /// Baseline (owned payload) payload bytes/s of each repetition.
    pub baseline_bytes_per_s: Vec<f64>,
    /// Tuned pipe variant (batched writes, borrowed payloads), rows/s of
    /// each repetition.
    pub borrowed_rows_per_s: Vec<f64>,
    /// End-to-end `Worker::stream` rows/s of each repetition (empty: not run).
    pub e2e_rows_per_s: Vec<f64>,
    /// Ceiling (bare fixed-slot SPSC ring) rows/s of each repetition.
    pub ceiling_rows_per_s: Vec<f64>,
    /// iceoryx2, one sample per row, rows/s of each repetition (empty: the
    /// `peers` feature is off).
    pub peer_rows_per_s: Vec<f64>,
    /// iceoryx2, rows hand-packed into 64 KiB samples, rows/s of each
    /// repetition (empty: the `peers` feature is off).
    pub peer_packed_rows_per_s: Vec<f64>,
}

/// Largest value of `v` (NaN if empty).
pub fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Median of `v` (NaN if empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Median over `i` of `a[i] / b[i]`: runs `i` were taken back to back, so
/// each ratio compares two measurements of the same machine state.
pub fn pairwise_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&ratios)
}

/// Figures are medians over the repetitions and ratios are medians of the
/// pairwise ratios; best-of figures are in the JSON next to them.
impl CaseResult {
    /// Median ring rows/s.
    pub fn rows_per_s(&self) -> f64 {
        median(&self.ring_rows_per_s)
    }

    /// Median ring payload bytes/s.
    pub fn bytes_per_s(&self) -> f64 {
        median(&self.ring_bytes_per_s)
    }

    /// Median baseline rows/s.
    pub fn baseline_rows_per_s(&self) -> f64 {
        median(&self.baseline_rows_per_s)
    }

    /// Median baseline payload bytes/s.
    pub fn baseline_bytes_per_s(&self) -> f64 {
        median(&self.baseline_bytes_per_s)
    }

    /// Ring over baseline rows/s (median of pairwise ratios).
    pub fn ratio(&self) -> f64 {
        pairwise_ratio(&self.ring_rows_per_s, &self.baseline_rows_per_s)
    }

    /// Ring over the tuned pipe variant (median of pairwise ratios).
    pub fn borrowed_ratio(&self) -> f64 {
        pairwise_ratio(&self.ring_rows_per_s, &self.borrowed_rows_per_s)
    }

    /// End-to-end over baseline rows/s (median of pairwise ratios), if run.
    pub fn e2e_ratio(&self) -> Option<f64> {
        (!self.e2e_rows_per_s.is_empty())
            .then(|| pairwise_ratio(&self.e2e_rows_per_s, &self.baseline_rows_per_s))
    }

    /// Ring over ceiling rows/s (median of pairwise ratios), if run.
    pub fn ceiling_ratio(&self) -> Option<f64> {
        (!self.ceiling_rows_per_s.is_empty())
            .then(|| pairwise_ratio(&self.ring_rows_per_s, &self.ceiling_rows_per_s))
    }

    /// End-to-end over raw ring rows/s (median of pairwise ratios), if run.
    pub fn e2e_vs_ring(&self) -> Option<f64> {
        (!self.e2e_rows_per_s.is_empty())
            .then(|| pairwise_ratio(&self.e2e_rows_per_s, &self.ring_rows_per_s))
    }

    /// Ring over iceoryx2 one sample per row (median of pairwise ratios).
    pub fn peer_ratio(&self) -> Option<f64> {
        (!self.peer_rows_per_s.is_empty())
            .then(|| pairwise_ratio(&self.ring_rows_per_s, &self.peer_rows_per_s))
    }

    /// Ring over iceoryx2 hand-packed (median of pairwise ratios).
    pub fn peer_packed_ratio(&self) -> Option<f64> {
        (!self.peer_packed_rows_per_s.is_empty())
            .then(|| pairwise_ratio(&self.ring_rows_per_s, &self.peer_packed_rows_per_s))
    }

    /// The case as one JSON object.
    pub fn to_json(&self) -> Value {
        let reps = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
        let mut obj = json!({
            "case": self.case,
            "row_bytes": round(self.row_bytes, 1),
            "rows_per_s": self.rows_per_s().round(),
            "bytes_per_s": self.bytes_per_s().round(),
            "gb_per_s": round(self.bytes_per_s() / 1e9, 3),
            "baseline_rows_per_s": self.baseline_rows_per_s().round(),
            "baseline_bytes_per_s": self.baseline_bytes_per_s().round(),
            "ratio": round(self.ratio(), 2),
            "tuned_pipe_rows_per_s": median(&self.borrowed_rows_per_s).round(),
            "ratio_vs_tuned_pipe": round(self.borrowed_ratio(), 2),
            "stat": format!("median of {} interleaved runs; ratio = median of pairwise ratios", self.ring_rows_per_s.len()),
            "rows_per_s_best": best(&self.ring_rows_per_s).round(),
            "baseline_rows_per_s_best": best(&self.baseline_rows_per_s).round(),
            "rows": self.rows,
            "baseline_rows": self.baseline_rows,
            "rows_per_s_reps": reps(&self.ring_rows_per_s),
            "baseline_rows_per_s_reps": reps(&self.baseline_rows_per_s),
            "tuned_pipe_rows_per_s_reps": reps(&self.borrowed_rows_per_s),
        });
        if let Some(e2e_ratio) = self.e2e_ratio() {
            obj["e2e_rows_per_s"] = json!(median(&self.e2e_rows_per_s).round());
            obj["e2e_ratio"] = json!(round(e2e_ratio, 2));
            obj["e2e_rows_per_s_reps"] = json!(reps(&self.e2e_rows_per_s));
        }
        if let Some(r) = self.e2e_vs_ring() {
            obj["e2e_vs_ring"] = json!(round(r, 3));
        }
        if let Some(r) = self.ceiling_ratio() {
            obj["ceiling_rows_per_s"] = json!(median(&self.ceiling_rows_per_s).round());
            obj["ring_vs_ceiling"] = json!(round(r, 3));
            obj["ceiling_rows_per_s_reps"] = json!(reps(&self.ceiling_rows_per_s));
        }
        if let Some(r) = self.peer_ratio() {
            obj["iceoryx2_rows_per_s"] = json!(median(&self.peer_rows_per_s).round());
            obj["ring_vs_iceoryx2"] = json!(round(r, 2));
            obj["iceoryx2_rows_per_s_reps"] = json!(reps(&self.peer_rows_per_s));
        }
        if let Some(r) = self.peer_packed_ratio() {
            obj["iceoryx2_packed_rows_per_s"] = json!(median(&self.peer_packed_rows_per_s).round());
            obj["ring_vs_iceoryx2_packed"] = json!(round(r, 2));
            obj["iceoryx2_packed_rows_per_s_reps"] = json!(reps(&self.peer_packed_rows_per_s));
        }
        obj
    }
}

/// Idle CPU and wake-up latency measurements.
#[derive(Debug, Clone, Copy)]
pub struct LatencyResult {
    /// Wake-up samples per mechanism.
    pub samples: usize,
    /// Ring wake-up p50 in µs.
    pub wake_p50_us: f64,
    /// Ring wake-up p99 in µs.
    pub wake_p99_us: f64,
    /// Bare futex p50 in µs.
    pub futex_p50_us: f64,
    /// Bare futex p99 in µs.
    pub futex_p99_us: f64,
}

/// One target and whether it was met.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is required.
    pub name: String,
    /// What was measured, human readable.
    pub measured: String,
    /// Whether it is met.
    pub pass: bool,
}

impl Target {
    /// A target `name` (what is required), with what was `measured` and
    /// whether that meets it.
    pub fn new(name: impl Into<String>, measured: impl Into<String>, pass: bool) -> Self {
        Target {
            name: name.into(),
            measured: measured.into(),
            pass,
        }
    }
}

/// Checks the targets against whatever was measured (targets whose
/// case did not run are left out).
pub fn targets(
    cases: &[CaseResult],
    idle_cpu_pct: Option<f64>,
    wake: Option<&LatencyResult>,
    supervision: Option<&SupervisionResult>,
) -> Vec<Target> {
    let mut out = Vec::new();
    let find = |name: &str| cases.iter().find(|c| c.case == name);
    if let Some(c) = find("100B") {
        out.push(Target {
            name: "100B rows/s >= 50x baseline".into(),
            measured: format!("{:.1}x", c.ratio()),
            pass: c.ratio() >= 50.0,
        });
    }
    if let Some(c) = find("4KiB") {
        let gbs = c.bytes_per_s() / 1e9;
        out.push(Target {
            name: "4KiB >= 10 GB/s".into(),
            measured: format!("{gbs:.2} GB/s"),
            pass: gbs >= 10.0,
        });
        out.push(Target {
            name: "4KiB rows/s >= 8x baseline".into(),
            measured: format!("{:.1}x", c.ratio()),
            pass: c.ratio() >= 8.0,
        });
    }
    if let Some(e2e) = find("100B").and_then(CaseResult::e2e_ratio) {
        out.push(Target {
            name: "e2e 100B rows/s >= 25x baseline".into(),
            measured: format!("{e2e:.1}x"),
            pass: e2e >= 25.0,
        });
    }
    for name in ["100B", "4KiB"] {
        if let Some(r) = find(name).and_then(CaseResult::ceiling_ratio) {
            out.push(Target {
                name: format!("{name} ring >= 80% of ceiling"),
                measured: format!("{:.0}%", r * 100.0),
                pass: r >= 0.8,
            });
        }
    }
    if let Some(r) = find("100B").and_then(CaseResult::e2e_vs_ring) {
        out.push(Target {
            name: "e2e 100B >= 80% of raw ring".into(),
            measured: format!("{:.0}%", r * 100.0),
            pass: r >= 0.8,
        });
    }
    if let Some(r) = find("100B").and_then(CaseResult::peer_packed_ratio) {
        out.push(Target {
            name: "100B >= 2x iceoryx2 hand-packed".into(),
            measured: format!("{r:.2}x"),
            pass: r >= 2.0,
        });
    }
    if let Some(pct) = idle_cpu_pct {
        out.push(Target {
            name: "idle consumer < 1% of a core".into(),
            measured: format!("{pct:.3}%"),
            pass: pct < 1.0,
        });
    }
    if let Some(w) = wake {
        out.push(Target {
            name: "wake p50 <= 1.5x futex p50".into(),
            measured: format!("{:.1} vs {:.1} us", w.wake_p50_us, w.futex_p50_us),
            pass: w.wake_p50_us <= 1.5 * w.futex_p50_us,
        });
        out.push(Target {
            name: "wake p99 <= 2x futex p99".into(),
            measured: format!("{:.1} vs {:.1} us", w.wake_p99_us, w.futex_p99_us),
            pass: w.wake_p99_us <= 2.0 * w.futex_p99_us,
        });
    }
    if let Some(sup) = supervision {
        out.extend(supervision_targets(sup));
    }
    out
}

/// The targets of the supervision case.
pub fn supervision_targets(sup: &SupervisionResult) -> Vec<Target> {
    let mut out = Vec::new();
    for r in &sup.restarts {
        if let Some(target) = r.target_ms() {
            out.push(Target {
                name: format!(
                    "kill->ready {} ({} s start) p50 <= {target} ms",
                    r.mode(),
                    r.startup_ms as f64 / 1e3
                ),
                measured: format!("{:.3} ms", r.p50_ms()),
                pass: r.p50_ms() <= target,
            });
        }
    }
    let m = &sup.memory;
    out.push(Target {
        name: format!(
            "{} forked workers PSS <= {TEMPLATE_PSS_TARGET} x {} MiB",
            m.workers, m.state_mib
        ),
        measured: format!(
            "{:.2}x (exec'd: {:.2}x)",
            m.template_ratio(),
            m.exec_ratio()
        ),
        pass: m.template_ratio() <= TEMPLATE_PSS_TARGET,
    });
    for (idle, what) in [(&sup.idle, ""), (&sup.idle_hard, ", hard RSS")] {
        out.push(Target {
            name: format!("idle watchdog < {WATCHDOG_IDLE_TARGET_PCT}% of a core{what}"),
            measured: format!("{:.4}%", idle.watchdog_pct()),
            pass: idle.watchdog_pct() < WATCHDOG_IDLE_TARGET_PCT,
        });
    }
    out
}

fn restart_json(r: &RestartLatency) -> Value {
    let ms = |v: &[f64], p: f64| round(percentile(v, p) / 1e3, 4);
    json!({
        "kills": r.ready_after_notice_us.len(),
        "ready_after_notice_p50_ms": ms(&r.ready_after_notice_us, 50.0),
        "ready_after_notice_p99_ms": ms(&r.ready_after_notice_us, 99.0),
        "ready_after_kill_p50_ms": ms(&r.ready_after_kill_us, 50.0),
        "ready_after_kill_p99_ms": ms(&r.ready_after_kill_us, 99.0),
        "noticed_p50_ms": ms(&r.noticed_us, 50.0),
        "noticed_p99_ms": ms(&r.noticed_us, 99.0),
        "mode": r.mode(),
        "startup_ms": r.startup_ms,
        "prewarm_swaps": r.swaps,
        "template_forks": r.forks,
        "target_p50_ms": r.target_ms(),
        "pass": r.target_ms().map(|t| r.p50_ms() <= t),
    })
}

fn idle_json(idle: &crate::supervision::IdleCpu) -> Value {
    json!({
        "workers": idle.workers,
        "hard_rss": idle.hard_rss,
        "window_s": round(idle.window.as_secs_f64(), 3),
        "watchdog_cpu_pct": round(idle.watchdog_pct(), 5),
        "watchdog_cpu_ns": idle.watchdog_ns,
        "watchdog_ticks": idle.watchdog_ticks,
        "ticks_per_s": idle.ticks_per_s,
        "watchdog_ticks_cpu_pct": round(idle.watchdog_ticks_pct(), 4),
        "process_cpu_pct": round(idle.process_pct(), 5),
        "process_cpu_ns": idle.process_ns,
        "rss_samples": idle.rss_samples,
        "target_pct": WATCHDOG_IDLE_TARGET_PCT,
        "pass": idle.watchdog_pct() < WATCHDOG_IDLE_TARGET_PCT,
    })
}

/// The supervision case as one JSON object.
pub fn supervision_json(sup: &SupervisionResult) -> Value {
    json!({
        "case": "supervision",
        "capacity": sup.capacity,
        "kill_to_ready": sup.restarts.iter().map(restart_json).collect::<Vec<_>>(),
        "template_memory": {
            "state_mib": sup.memory.state_mib,
            "workers": sup.memory.workers,
            "template_pss_kib": sup.memory.template_pss_kib,
            "exec_pss_kib": sup.memory.exec_pss_kib,
            "template_ratio": round(sup.memory.template_ratio(), 3),
            "exec_ratio": round(sup.memory.exec_ratio(), 3),
            "target_ratio": TEMPLATE_PSS_TARGET,
            "pass": sup.memory.template_ratio() <= TEMPLATE_PSS_TARGET,
        },
        "watchdog_idle": idle_json(&sup.idle),
        "watchdog_idle_hard_rss": idle_json(&sup.idle_hard),
        "stat": "kill->ready: t0 SIGKILL to Worker::pid, t1 !is_alive, t2 ensure_ready returned; \
                 target on p50 of t2-t1; idle: CPU over the window, % of one core",
    })
}

/// The supervision case's lines of the human-readable report.
pub fn supervision_table(sup: &SupervisionResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<22} {:>6} {:>11} {:>11} {:>11} {:>11} {:>10}  target",
        "kill -> ready", "kills", "noticed p50", "ready p50", "ready p99", "kill p50", "kill p99"
    );
    for r in &sup.restarts {
        let ms = |v: &[f64], p: f64| format!("{:.3} ms", percentile(v, p) / 1e3);
        let label = match r.mode {
            Restart::Cold => "cold (spawn)",
            Restart::Prewarm => "prewarmed (swap)",
            Restart::Template => "template (fork)",
        };
        let verdict = match r.target_ms() {
            Some(t) if r.p50_ms() <= t => format!("ready p50 <= {t} ms PASS"),
            Some(t) => format!("ready p50 <= {t} ms MISS"),
            None => "-".to_owned(),
        };
        let _ = writeln!(
            s,
            "{:<22} {:>6} {:>11} {:>11} {:>11} {:>11} {:>10}  {verdict}",
            format!("  {label} {}s", r.startup_ms / 1000),
            r.ready_after_notice_us.len(),
            ms(&r.noticed_us, 50.0),
            ms(&r.ready_after_notice_us, 50.0),
            ms(&r.ready_after_notice_us, 99.0),
            ms(&r.ready_after_kill_us, 50.0),
            ms(&r.ready_after_kill_us, 99.0),
        );
    }
    let _ = writeln!(
        s,
        "(noticed = SIGKILL until !is_alive; ready = !is_alive until ensure_ready returned; \
         kill = SIGKILL until ensure_ready returned; 0s/2s = the worker's start-up step; \
         kills {} ms after the replacement was ready; ring {} B)",
        KILL_GAP.as_millis(),
        sup.capacity
    );
    let m = &sup.memory;
    let _ = writeln!(
        s,
        "memory ({} workers, {} MiB state each): forked from a template {:.0} MiB PSS ({:.2}x), \
         exec'd {:.0} MiB PSS ({:.2}x); target forked <= {TEMPLATE_PSS_TARGET}x {}",
        m.workers,
        m.state_mib,
        m.template_pss_kib as f64 / 1024.0,
        m.template_ratio(),
        m.exec_pss_kib as f64 / 1024.0,
        m.exec_ratio(),
        if m.template_ratio() <= TEMPLATE_PSS_TARGET {
            "PASS"
        } else {
            "MISS"
        },
    );
    for (idle, what) in [
        (&sup.idle, "default limits"),
        (&sup.idle_hard, "hard RSS limit"),
    ] {
        let pass = idle.watchdog_pct() < WATCHDOG_IDLE_TARGET_PCT;
        let _ = writeln!(
            s,
            "watchdog idle ({} workers, {what}, {:.0} s): watchdog thread {:.4}% ({} ticks), \
             process {:.4}% of one core, {} RSS samples; target < {WATCHDOG_IDLE_TARGET_PCT}% {}",
            idle.workers,
            idle.window.as_secs_f64(),
            idle.watchdog_pct(),
            idle.watchdog_ticks,
            idle.process_pct(),
            idle.rss_samples,
            if pass { "PASS" } else { "MISS" },
        );
    }
    s
}

/// The JSON objects for idle, wake and supervision (the summary is
/// [`summary_json`]).
pub fn extra_json(
    idle_cpu_pct: Option<f64>,
    wake: Option<&LatencyResult>,
    supervision: Option<&SupervisionResult>,
) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(pct) = idle_cpu_pct {
        out.push(json!({"case": "idle", "idle_cpu_pct": round(pct, 4), "wait_s": 2}));
    }
    if let Some(w) = wake {
        out.push(json!({
            "case": "wake",
            "samples": w.samples,
            "wake_p50_us": round(w.wake_p50_us, 2),
            "wake_p99_us": round(w.wake_p99_us, 2),
            "futex_p50_us": round(w.futex_p50_us, 2),
            "futex_p99_us": round(w.futex_p99_us, 2),
        }));
    }
    if let Some(sup) = supervision {
        out.push(supervision_json(sup));
    }
    out
}

/// The summary JSON object: every target and whether all were met (the
/// last line of ringbench's JSON).
pub fn summary_json(targets: &[Target]) -> Value {
    json!({
        "case": "summary",
        "all_targets_met": targets.iter().all(|t| t.pass),
        "targets": targets.iter().map(|t| json!({
            "target": t.name, "measured": t.measured, "pass": t.pass,
        })).collect::<Vec<_>>(),
    })
}

/// The human-readable report.
pub fn table(
    cases: &[CaseResult],
    idle_cpu_pct: Option<f64>,
    wake: Option<&LatencyResult>,
    supervision: Option<&SupervisionResult>,
    targets: &[Target],
) -> String {
    let mut s = String::new();
    if !cases.is_empty() {
        let _ = writeln!(
            s,
            "{:<7} {:>6} {:>12} {:>6} {:>12} {:>6} {:>7} {:>12} {:>8} {:>12} {:>7}",
            "case",
            "bytes",
            "ring rows/s",
            "GB/s",
            "base rows/s",
            "GB/s",
            "ratio",
            "tuned r/s",
            "vs tuned",
            "e2e rows/s",
            "e2e x"
        );
        for c in cases {
            let (e2e, e2e_ratio) = match c.e2e_ratio() {
                Some(r) => (
                    format!("{:.0}", median(&c.e2e_rows_per_s)),
                    format!("{r:.1}x"),
                ),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "{:<7} {:>6.0} {:>12.0} {:>6.2} {:>12.0} {:>6.2} {:>6.1}x {:>12.0} {:>7.1}x {:>12} {:>7}",
                c.case,
                c.row_bytes,
                c.rows_per_s(),
                c.bytes_per_s() / 1e9,
                c.baseline_rows_per_s(),
                c.baseline_bytes_per_s() / 1e9,
                c.ratio(),
                median(&c.borrowed_rows_per_s),
                c.borrowed_ratio(),
                e2e,
                e2e_ratio
            );
        }
    }
    let peers = cases.iter().any(|c| c.peer_ratio().is_some());
    if cases.iter().any(|c| c.ceiling_ratio().is_some()) {
        let _ = write!(
            s,
            "{:<7} {:>12} {:>12} {:>9} {:>8}",
            "case", "ring rows/s", "ceil rows/s", "ring/ceil", "e2e/ring"
        );
        if peers {
            let _ = write!(
                s,
                " {:>12} {:>7} {:>12} {:>7}",
                "iox2 rows/s", "vs iox2", "iox2pk r/s", "vs pk"
            );
        }
        let _ = writeln!(s);
        let pct = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.0}%", r * 100.0));
        let times = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
        for c in cases {
            let _ = write!(
                s,
                "{:<7} {:>12.0} {:>12.0} {:>9} {:>8}",
                c.case,
                c.rows_per_s(),
                median(&c.ceiling_rows_per_s),
                pct(c.ceiling_ratio()),
                pct(c.e2e_vs_ring()),
            );
            if peers {
                let _ = write!(
                    s,
                    " {:>12.0} {:>7} {:>12.0} {:>7}",
                    median(&c.peer_rows_per_s),
                    times(c.peer_ratio()),
                    median(&c.peer_packed_rows_per_s),
                    times(c.peer_packed_ratio()),
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "(ceil = bare fixed-slot SPSC ring between the same two processes, every byte \
             checksummed alike: the limit{})",
            if peers {
                "; iox2 = iceoryx2 publish-subscribe, one sample per row; iox2pk = rows \
                 length-prefixed into 64 KiB iceoryx2 samples"
            } else {
                ""
            }
        );
    }
    if let Some(c) = cases.first() {
        let _ = writeln!(
            s,
            "(medians of {} interleaved runs; ratios: medians of run-by-run ratios; base = pipe+JSON \
             flushed per frame, owned Box<RawValue> rows (the replaced design); tuned = pipe with 64 KiB \
             batched writes and borrowed &RawValue rows; e2e = Worker::stream + synthetic)",
            c.ring_rows_per_s.len()
        );
    }
    if let Some(pct) = idle_cpu_pct {
        let _ = writeln!(s, "idle consumer (2 s wait): {pct:.3}% of one core");
    }
    if let Some(w) = wake {
        let _ = writeln!(
            s,
            "wake-up ({} samples each): ring p50 {:.1} us p99 {:.1} us | bare futex p50 {:.1} us p99 {:.1} us",
            w.samples, w.wake_p50_us, w.wake_p99_us, w.futex_p50_us, w.futex_p99_us
        );
    }
    if let Some(sup) = supervision {
        s.push_str(&supervision_table(sup));
    }
    s.push_str(&target_lines(targets));
    s
}

/// One line per target: PASS or MISS, what is required, what was measured.
pub fn target_lines(targets: &[Target]) -> String {
    let mut s = String::new();
    for t in targets {
        let verdict = if t.pass { "PASS" } else { "MISS" };
        let _ = writeln!(s, "{verdict}  {:<34} {}", t.name, t.measured);
    }
    s
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
