//! Running a plan: the parts in order, each step announced as it starts,
//! and what they measured gathered into one report.

use std::time::Duration;

use anyhow::{Context, Result};

use super::plan::Plan;
use super::{Step, SuiteArgs, SuiteReport};
use crate::baseline::{self, Variant};
use crate::latency::{self, percentile};
#[cfg(feature = "peers")]
use crate::peer_iceoryx2;
use crate::report::{self, CaseResult, LatencyResult};
use crate::ring_case::{self, RingParams};
use crate::rows::{self, RowTemplates};
use crate::{ceiling, e2e, large_rows, pin, pool_case, supervision};

/// Runs the parts of the report `args` selects and returns what they
/// measured; `progress` hears of every [`Step`].
///
/// Everything is validated before any child starts. Unless
/// `args.no_pin`, the calling thread is pinned to CPU 0 for the
/// throughput cases (threads it starts meanwhile inherit that) and every
/// thread of the process is unpinned again before this returns. Children
/// are this executable re-executed (see the `suite` module documentation).
pub fn run_suite(args: &SuiteArgs, progress: &mut dyn FnMut(Step)) -> Result<SuiteReport> {
    let plan = Plan::new(args)?;
    let mut tracker = Tracker {
        progress,
        done: 0,
        total: plan.total_steps(),
    };
    let pinned = !args.no_pin && pin::pin_parent();
    if pinned {
        tracker.note(
            "pin",
            "parent pinned to CPU 0, children to CPU 1 (--no-pin to disable)",
        );
    }
    let result = run_plan(args, &plan, &mut tracker);
    if pinned {
        pin::unpin_all_threads();
    }
    let report = result?;
    tracker.finish();
    Ok(report)
}

/// Counts the steps as they start and passes them on.
struct Tracker<'a> {
    progress: &'a mut dyn FnMut(Step),
    done: usize,
    total: usize,
}

impl Tracker<'_> {
    /// A step of `part` starts.
    fn step(&mut self, part: &str, message: String) {
        debug_assert!(self.done < self.total, "more steps than counted: {message}");
        (self.progress)(Step {
            part: part.into(),
            message,
            done: self.done.min(self.total),
            total: self.total,
        });
        self.done += 1;
    }

    /// A message that is no step.
    fn note(&mut self, part: &str, message: &str) {
        (self.progress)(Step {
            part: part.into(),
            message: message.into(),
            done: self.done.min(self.total),
            total: self.total,
        });
    }

    /// The run is over.
    fn finish(&mut self) {
        debug_assert_eq!(self.done, self.total, "steps counted and run differ");
        self.done = self.total;
        (self.progress)(Step {
            part: String::new(),
            message: String::new(),
            done: self.total,
            total: self.total,
        });
    }
}

fn run_plan(args: &SuiteArgs, plan: &Plan, tracker: &mut Tracker<'_>) -> Result<SuiteReport> {
    let pick = |(quick, full): (u64, u64)| if args.quick { quick } else { full };
    let reps = plan.reps;

    let mut cases = Vec::new();
    for d in &plan.defs {
        let mut result = CaseResult {
            case: d.name.to_string(),
            row_bytes: RowTemplates::new(d.spec, args.seed).mean_bytes(),
            rows: args.rows.unwrap_or(pick(d.ring_rows)),
            ring_rows_per_s: Vec::new(),
            ring_bytes_per_s: Vec::new(),
            baseline_rows: args.baseline_rows.unwrap_or(pick(d.baseline_rows)),
            baseline_rows_per_s: Vec::new(),
            baseline_bytes_per_s: Vec::new(),
            borrowed_rows_per_s: Vec::new(),
            e2e_rows_per_s: Vec::new(),
            ceiling_rows_per_s: Vec::new(),
            peer_rows_per_s: Vec::new(),
            peer_packed_rows_per_s: Vec::new(),
        };
        let params = RingParams {
            capacity: args.capacity,
            rows: result.rows,
            spec: d.spec,
            seed: args.seed,
            producer_publish_every: args.producer_publish_every,
            consumer_publish_every: args.consumer_publish_every,
        };
        for rep in 0..reps {
            let n = rep + 1;
            tracker.step(d.name, format!("{} ring run {n}/{reps}", d.name));
            let t =
                ring_case::run_parent(&params).with_context(|| format!("ring case {}", d.name))?;
            result.ring_rows_per_s.push(t.rows_per_s());
            result.ring_bytes_per_s.push(t.bytes_per_s());
            tracker.step(d.name, format!("{} ceiling run {n}/{reps}", d.name));
            let t = ceiling::run_parent(args.capacity, result.rows, d.spec, args.seed)
                .with_context(|| format!("ceiling case {}", d.name))?;
            result.ceiling_rows_per_s.push(t.rows_per_s());
            #[cfg(feature = "peers")]
            {
                tracker.step(d.name, format!("{} iceoryx2 runs {n}/{reps}", d.name));
                // One sample per row moves rows at pipe-like rates: it gets
                // the baseline's row count, hand-packed the ring's.
                for packed in [false, true] {
                    let rows = if packed {
                        result.rows
                    } else {
                        result.baseline_rows
                    };
                    let t = peer_iceoryx2::run_parent(rows, d.spec, args.seed, packed)
                        .with_context(|| format!("iceoryx2 case {} (packed: {packed})", d.name))?;
                    if packed {
                        result.peer_packed_rows_per_s.push(t.rows_per_s());
                    } else {
                        result.peer_rows_per_s.push(t.rows_per_s());
                    }
                }
            }
            tracker.step(d.name, format!("{} baseline run {n}/{reps}", d.name));
            let t =
                baseline::run_parent(result.baseline_rows, d.spec, args.seed, Variant::Streaming)
                    .with_context(|| format!("baseline case {}", d.name))?;
            result.baseline_rows_per_s.push(t.rows_per_s());
            result.baseline_bytes_per_s.push(t.bytes_per_s());
            let t = baseline::run_parent(result.baseline_rows, d.spec, args.seed, Variant::Tuned)
                .with_context(|| format!("tuned pipe case {}", d.name))?;
            result.borrowed_rows_per_s.push(t.rows_per_s());
            if let Some(bytes) = d.e2e_bytes() {
                tracker.step(d.name, format!("{} end-to-end run {n}/{reps}", d.name));
                let t = e2e::run(args.capacity, result.rows, bytes as u32)
                    .with_context(|| format!("end-to-end case {}", d.name))?;
                result.e2e_rows_per_s.push(t.rows_per_s());
            }
        }
        cases.push(result);
    }

    let large = if plan.has("large") {
        large_rows::run_case(args.capacity, args.quick, plan.large_reps, &mut |m| {
            tracker.step("large", m)
        })?
    } else {
        Vec::new()
    };

    // Latency is measured as deployed: unpinned (see `pin`).
    pin::unpin();
    let idle = if plan.has("idle") {
        tracker.step("idle", "idle consumer, 2 s".into());
        Some(latency::idle_cpu_pct(
            args.capacity,
            Duration::from_secs(2),
        )?)
    } else {
        None
    };
    let wake = if plan.has("wake") {
        let samples = plan.wake_samples;
        tracker.step("wake", format!("wake-up latency, {samples} samples each"));
        let s = latency::run_wake_parent(args.capacity, samples, args.wake_gap_us)
            .context("wake-up latency")?;
        Some(LatencyResult {
            samples,
            wake_p50_us: percentile(&s.ring_us, 50.0),
            wake_p99_us: percentile(&s.ring_us, 99.0),
            futex_p50_us: percentile(&s.futex_us, 50.0),
            futex_p99_us: percentile(&s.futex_us, 99.0),
        })
    } else {
        None
    };

    // Unpinned too, every supervisor thread included (those an earlier
    // case started pinned as well).
    let supervision = if plan.has("supervision") {
        pin::unpin_all_threads();
        let (kills, slow_kills, window) = supervision::sizes(args.quick);
        Some(
            supervision::run_case(args.capacity, kills, slow_kills, window, &mut |m| {
                tracker.step("supervision", m)
            })
            .context("supervision")?,
        )
    } else {
        None
    };

    let pool = if plan.has("pool") {
        pin::unpin_all_threads();
        Some(
            pool_case::run_case(args.capacity, args.quick, &mut |m| tracker.step("pool", m))
                .context("pool")?,
        )
    } else {
        None
    };

    let mut targets = report::targets(&cases, idle, wake.as_ref(), supervision.as_ref());
    if let Some(pool) = &pool {
        targets.extend(pool_case::targets(pool));
    }
    let mut table = report::table(&cases, idle, wake.as_ref(), supervision.as_ref(), &[]);
    if let Some(pool) = &pool {
        table.push_str(&pool_case::table(pool));
    }
    let preamble: String = large.iter().map(|l| l.line() + "\n").collect();
    let mut json: Vec<serde_json::Value> = large.iter().map(|l| l.to_json()).collect();
    json.extend(cases.iter().map(CaseResult::to_json));
    json.extend(report::extra_json(
        idle,
        wake.as_ref(),
        supervision.as_ref(),
    ));
    json.extend(pool.as_ref().map(pool_case::json));
    let footer = format!(
        "(ring capacity {} B; mixed sizes: log-normal median {} B sigma {}, clipped to [{}, {}] B)",
        args.capacity,
        rows::MIXED_MEDIAN,
        rows::MIXED_SIGMA,
        rows::MIXED_MIN,
        rows::MIXED_MAX
    );
    Ok(SuiteReport {
        preamble,
        table,
        json,
        targets,
        footer,
    })
}
