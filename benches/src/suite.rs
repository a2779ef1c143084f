//! The ringbench report as a callable suite: the options ([`SuiteArgs`]),
//! the run ([`run_suite`], which reports progress as [`Step`]s and returns a
//! [`SuiteReport`] instead of printing) and the child processes it starts
//! ([`ChildCmd`], [`run_child`]).
//!
//! Throughput cases (100 B, 1 KiB, 4 KiB, mixed sizes, or `--row-bytes N`)
//! run the ring, the ceiling (a bare fixed-slot SPSC ring), with the `peers`
//! feature iceoryx2, and then the baseline with the same payload bytes; the
//! parent checksums every payload byte and checks it against the child's own
//! checksum. Then: large rows end to end, CPU of a consumer idling 2 s on an
//! empty ring, ring wake-up latency next to a bare shared-futex ping-pong,
//! supervision and the pool. Timing starts when the child, fully set up, is
//! told to go, so process start-up is excluded for both transports.
//!
//! Children are the running executable re-executed with a hidden
//! subcommand as its first argument (`__child-ring --rows=…`). A binary
//! that runs the suite must therefore accept [`ChildCmd`] as its top-level
//! subcommands (`#[command(subcommand)]` of an `Option<ChildCmd>`, or
//! `#[command(flatten)]` into its own subcommand enum) and hand it to
//! [`run_child`].

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::baseline::{self, Variant};
use crate::latency::{self, percentile};
#[cfg(feature = "peers")]
use crate::peer_iceoryx2;
use crate::report::{self, CaseResult, LatencyResult, Target};
use crate::ring_case::{self, RingParams, ring_config};
use crate::rows::{self, RowTemplates, SizeSpec};
use crate::{ceiling, e2e, large_rows, pin, pool_case, supervision};

/// The parts of the report, in the order they run (`--cases`).
pub const PARTS: [&str; 10] = [
    "100B",
    "1KiB",
    "4KiB",
    "mixed",
    "custom",
    "idle",
    "wake",
    "large",
    "supervision",
    "pool",
];

/// The options of the report: which parts run, how long, on which ring.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    /// Short run (whole report in well under a minute).
    #[arg(long)]
    pub quick: bool,
    /// Leave processes where the scheduler puts them (default: parent on
    /// CPU 0, children on CPU 1, for every case alike).
    #[arg(long)]
    pub no_pin: bool,
    /// Print one JSON object per line on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Ring data capacity in bytes (a power of two, 4096 ..= 1 GiB). 2 MiB
    /// measured best here for 100 B and 4 KiB rows alike; at 1 MiB (each
    /// core's L2) 4 KiB rows ran at half the rate.
    #[arg(long, default_value_t = 2 << 20)]
    pub capacity: usize,
    /// Run a single throughput case with rows of exactly N bytes.
    #[arg(long, value_name = "N")]
    pub row_bytes: Option<usize>,
    /// Rows per ring run (default: per case, larger without --quick).
    #[arg(long)]
    pub rows: Option<u64>,
    /// Rows per baseline run (default: per case).
    #[arg(long)]
    pub baseline_rows: Option<u64>,
    /// Repetitions of each throughput run (ring and baseline alternate); the
    /// best run is reported, the median next to it in the JSON.
    #[arg(long)]
    pub reps: Option<usize>,
    /// Which parts to run: 100B, 1KiB, 4KiB, mixed, custom, idle, wake,
    /// large (1 MiB and 16 MiB rows end to end, GB/s), supervision (kill ->
    /// ready cold, prewarmed and forked from a template with a 0 and 2 s
    /// start-up, the PSS of template workers, the watchdog's idle CPU), pool (1 and 2
    /// workers on CPU-bound jobs, 8 idle pooled workers).
    #[arg(long, value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
    /// Wake-up samples per mechanism.
    #[arg(long)]
    pub wake_samples: Option<usize>,
    /// Child's sleep before each wake-up sample, in microseconds (plus up to 50% jitter).
    #[arg(long, default_value_t = 2000)]
    pub wake_gap_us: u64,
    /// Producer publication batch in bytes (default: shm-proto's).
    #[arg(long)]
    pub producer_publish_every: Option<usize>,
    /// Consumer release batch in bytes (default: shm-proto's).
    #[arg(long)]
    pub consumer_publish_every: Option<usize>,
    /// Seed of the row templates.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Hidden subcommands: the child processes of the suite. The parent passes
/// exactly these names and arguments (see the modules' `CHILD_SUBCOMMAND`
/// and [`e2e::WORKER_SUBCOMMAND`]).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ChildCmd {
    /// Ring producer.
    #[command(name = ring_case::CHILD_SUBCOMMAND, hide = true)]
    Ring {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
        /// Publication batch in bytes (default: shm-proto's).
        #[arg(long)]
        publish_every: Option<usize>,
    },
    /// Baseline producer (frames on stdout).
    #[command(name = baseline::CHILD_SUBCOMMAND, hide = true)]
    Baseline {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
        /// Flush after every frame (the replaced design).
        #[arg(long)]
        flush_each: bool,
    },
    /// A ringworker worker serving the built-in commands (end-to-end case).
    #[command(name = e2e::WORKER_SUBCOMMAND, hide = true)]
    Worker,
    /// Ceiling producer (fixed-slot SPSC ring).
    #[command(name = ceiling::CHILD_SUBCOMMAND, hide = true)]
    Ceiling {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
    },
    /// iceoryx2 publisher (the peer).
    #[cfg(feature = "peers")]
    #[command(name = peer_iceoryx2::CHILD_SUBCOMMAND, hide = true)]
    Iceoryx2 {
        /// The iceoryx2 service to publish on.
        #[arg(long)]
        service: String,
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
        /// Pack rows, length-prefixed, into 64 KiB samples.
        #[arg(long)]
        packed: bool,
    },
    /// Wake-up latency sender.
    #[command(name = latency::CHILD_SUBCOMMAND, hide = true)]
    Wake {
        /// Wake-ups per mechanism.
        #[arg(long)]
        samples: usize,
        /// Sleep before each wake-up, µs (plus up to 50% jitter).
        #[arg(long)]
        gap_us: u64,
    },
}

/// Runs one child of the suite: moves it to the child CPU if its parent was
/// pinned, then runs it to the end.
pub fn run_child(cmd: ChildCmd) -> Result<()> {
    pin::pin_child();
    match cmd {
        ChildCmd::Ring {
            rows,
            size,
            seed,
            publish_every,
        } => ring_case::run_child(rows, size, seed, publish_every),
        ChildCmd::Baseline {
            rows,
            size,
            seed,
            flush_each,
        } => baseline::run_child(rows, size, seed, flush_each),
        ChildCmd::Ceiling { rows, size, seed } => ceiling::run_child(rows, size, seed),
        #[cfg(feature = "peers")]
        ChildCmd::Iceoryx2 {
            service,
            rows,
            size,
            seed,
            packed,
        } => peer_iceoryx2::run_child(&service, rows, size, seed, packed),
        ChildCmd::Wake { samples, gap_us } => latency::run_wake_child(samples, gap_us),
        ChildCmd::Worker => e2e::run_worker(),
    }
}

/// Progress of [`run_suite`]: what starts now, and how far the run is.
///
/// A step is one measurement run (a throughput case's ring, ceiling,
/// iceoryx2, baseline + tuned pipe or end-to-end run; one large-rows run;
/// the idle or wake part; each measurement of supervision and pool).
/// `total` is counted before anything runs. A step is announced as it
/// starts, with `done` the number of steps finished before it; a note (the
/// pinning message) does not advance `done`; the last call has
/// `done == total` and an empty `message`: the run is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The part running (one of [`PARTS`]), `pin` for the pinning note,
    /// empty on the last call.
    pub part: String,
    /// What runs now, as ringbench prints it after `ringbench: `; empty on
    /// the last call.
    pub message: String,
    /// Steps finished.
    pub done: usize,
    /// Steps of the whole run.
    pub total: usize,
}

/// What [`run_suite`] measured, ready to print. Ringbench prints
/// `preamble` on stderr, then `table` followed by
/// [`report::target_lines`] of `targets`, and then either `footer` (on
/// stdout, after the table) or, with `--json`, the table on stderr and
/// `json` followed by [`report::summary_json`] of `targets` on stdout, one
/// object per line. A caller with parts of its own appends their table
/// text, JSON objects and targets before rendering the target lines and
/// the summary.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// Result lines of parts that report outside the table, one per line,
    /// each ending in a newline (today: the large-rows part's GB/s).
    pub preamble: String,
    /// The tables of the parts that ran, without the target lines.
    pub table: String,
    /// One JSON object per case and part, without the summary.
    pub json: Vec<serde_json::Value>,
    /// The targets of the parts that ran.
    pub targets: Vec<Target>,
    /// The line describing the ring and the mixed sizes (no newline).
    pub footer: String,
}

/// Runs the parts of the report `args` selects and returns what they
/// measured; `progress` hears of every [`Step`].
///
/// Everything is validated before any child starts. Unless
/// `args.no_pin`, the calling thread is pinned to CPU 0 for the
/// throughput cases (threads it starts meanwhile inherit that) and every
/// thread of the process is unpinned again before this returns. Children
/// are this executable re-executed (see the module documentation).
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

/// A throughput case: name, sizes, default ring and baseline rows (quick, full).
struct CaseDef {
    name: &'static str,
    spec: SizeSpec,
    ring_rows: (u64, u64),
    baseline_rows: (u64, u64),
}

impl CaseDef {
    /// Row bytes of the end-to-end run, which runs for the fixed sizes the
    /// issue names.
    fn e2e_bytes(&self) -> Option<usize> {
        match self.spec {
            SizeSpec::Fixed(n) if matches!(self.name, "100B" | "4KiB") => Some(n),
            _ => None,
        }
    }

    /// Steps of one repetition: ring, ceiling, (iceoryx2,) baseline and
    /// tuned pipe, (end to end).
    fn steps_per_rep(&self) -> usize {
        3 + usize::from(cfg!(feature = "peers")) + usize::from(self.e2e_bytes().is_some())
    }
}

fn case_defs(custom: Option<usize>) -> Vec<CaseDef> {
    let mut defs = vec![
        CaseDef {
            name: "100B",
            spec: SizeSpec::Fixed(100),
            ring_rows: (10_000_000, 50_000_000),
            baseline_rows: (1_000_000, 4_000_000),
        },
        CaseDef {
            name: "1KiB",
            spec: SizeSpec::Fixed(1024),
            ring_rows: (3_000_000, 12_000_000),
            baseline_rows: (500_000, 2_000_000),
        },
        CaseDef {
            name: "4KiB",
            spec: SizeSpec::Fixed(4096),
            ring_rows: (1_000_000, 4_000_000),
            baseline_rows: (200_000, 800_000),
        },
        CaseDef {
            name: "mixed",
            spec: SizeSpec::Mixed,
            ring_rows: (4_000_000, 16_000_000),
            baseline_rows: (500_000, 2_000_000),
        },
    ];
    if let Some(n) = custom {
        // About 2 GB through the ring and 0.3 GB through the pipe (quick).
        let ring = (2_000_000_000 / (n as u64 + 16)).clamp(10_000, 20_000_000);
        let base = (300_000_000 / (n as u64 + 80)).clamp(5_000, 1_000_000);
        defs.push(CaseDef {
            name: "custom",
            spec: SizeSpec::Fixed(n),
            ring_rows: (ring, ring * 4),
            baseline_rows: (base, base * 4),
        });
    }
    defs
}

/// The validated selection: parts, throughput cases, repetitions.
struct Plan {
    parts: Vec<String>,
    defs: Vec<CaseDef>,
    reps: usize,
    large_reps: usize,
    wake_samples: usize,
}

impl Plan {
    /// Validates `args` (before any child is spawned).
    fn new(args: &SuiteArgs) -> Result<Self> {
        let config = ring_config(args.capacity);
        config
            .validate()
            .with_context(|| format!("--capacity {}", args.capacity))?;
        let max_payload = config.max_payload;
        if let Some(n) = args.row_bytes {
            SizeSpec::Fixed(n)
                .validate(max_payload)
                .with_context(|| format!("--row-bytes {n}"))?;
        }
        let parts: Vec<String> = match &args.cases {
            Some(list) => list.clone(),
            None if args.row_bytes.is_some() => vec!["custom".into()],
            None => PARTS
                .iter()
                .filter(|p| **p != "custom")
                .map(|p| p.to_string())
                .collect(),
        };
        for p in &parts {
            if !PARTS.contains(&p.as_str()) {
                bail!("unknown case {p:?}; known: {}", PARTS.join(", "));
            }
            if p == "custom" && args.row_bytes.is_none() {
                bail!("case `custom` needs --row-bytes N");
            }
        }
        if args.rows == Some(0) || args.baseline_rows == Some(0) || args.reps == Some(0) {
            bail!("--rows, --baseline-rows and --reps must be at least 1");
        }
        if args.wake_samples == Some(0) {
            bail!("--wake-samples must be at least 1");
        }
        let defs: Vec<CaseDef> = case_defs(args.row_bytes)
            .into_iter()
            .filter(|d| parts.iter().any(|p| p == d.name))
            .collect();
        for d in &defs {
            d.spec
                .validate(max_payload)
                .with_context(|| format!("case {} with --capacity {}", d.name, args.capacity))?;
        }
        Ok(Plan {
            parts,
            defs,
            reps: args.reps.unwrap_or(if args.quick { 5 } else { 7 }),
            large_reps: large_rows::reps(args.quick, args.reps),
            wake_samples: args
                .wake_samples
                .unwrap_or(if args.quick { 500 } else { 2000 }),
        })
    }

    fn has(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }

    /// Steps of the whole run (see [`Step`]).
    fn total_steps(&self) -> usize {
        let cases: usize = self
            .defs
            .iter()
            .map(|d| d.steps_per_rep() * self.reps)
            .sum();
        let mut total = cases;
        if self.has("large") {
            total += large_rows::SIZES.len() * self.large_reps;
        }
        total += usize::from(self.has("idle")) + usize::from(self.has("wake"));
        if self.has("supervision") {
            total += supervision::STEPS;
        }
        if self.has("pool") {
            total += pool_case::STEPS;
        }
        total
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Another binary that runs the suite: its own subcommands next to the
    /// flattened children.
    #[derive(Debug, Parser)]
    #[command(name = "other-binary")]
    struct Other {
        #[command(subcommand)]
        cmd: OtherCmd,
    }

    #[derive(Debug, Subcommand)]
    enum OtherCmd {
        Bench {
            #[command(flatten)]
            args: SuiteArgs,
        },
        #[command(flatten)]
        Child(ChildCmd),
    }

    fn parse_child(args: &[String]) -> ChildCmd {
        let argv = std::iter::once("other-binary".to_string()).chain(args.iter().cloned());
        match Other::try_parse_from(argv) {
            Ok(Other {
                cmd: OtherCmd::Child(c),
            }) => c,
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    fn suite_args(argv: &[&str]) -> SuiteArgs {
        let argv = ["other-binary", "bench"].iter().chain(argv);
        match Other::try_parse_from(argv) {
            Ok(Other {
                cmd: OtherCmd::Bench { args },
            }) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_arguments_every_parent_passes_parse_as_its_child() {
        let params = RingParams {
            capacity: 1 << 16,
            rows: 123,
            spec: SizeSpec::Mixed,
            seed: 7,
            producer_publish_every: Some(4096),
            consumer_publish_every: Some(8192),
        };
        assert_eq!(
            parse_child(&ring_case::child_args(&params)),
            ChildCmd::Ring {
                rows: 123,
                size: SizeSpec::Mixed,
                seed: 7,
                publish_every: Some(4096),
            }
        );
        let params = RingParams {
            producer_publish_every: None,
            spec: SizeSpec::Fixed(100),
            ..params
        };
        assert_eq!(
            parse_child(&ring_case::child_args(&params)),
            ChildCmd::Ring {
                rows: 123,
                size: SizeSpec::Fixed(100),
                seed: 7,
                publish_every: None,
            }
        );
        for (variant, flush_each) in [(Variant::Streaming, true), (Variant::Tuned, false)] {
            assert_eq!(
                parse_child(&baseline::child_args(5, SizeSpec::Fixed(4096), 3, variant)),
                ChildCmd::Baseline {
                    rows: 5,
                    size: SizeSpec::Fixed(4096),
                    seed: 3,
                    flush_each,
                }
            );
        }
        assert_eq!(
            parse_child(&ceiling::child_args(9, SizeSpec::Mixed, 2)),
            ChildCmd::Ceiling {
                rows: 9,
                size: SizeSpec::Mixed,
                seed: 2,
            }
        );
        assert_eq!(
            parse_child(&latency::child_args(50, 2000)),
            ChildCmd::Wake {
                samples: 50,
                gap_us: 2000,
            }
        );
        assert_eq!(
            parse_child(&[e2e::WORKER_SUBCOMMAND.to_string()]),
            ChildCmd::Worker
        );
        #[cfg(feature = "peers")]
        for packed in [false, true] {
            assert_eq!(
                parse_child(&peer_iceoryx2::child_args(
                    "svc-1",
                    8,
                    SizeSpec::Fixed(100),
                    4,
                    packed
                )),
                ChildCmd::Iceoryx2 {
                    service: "svc-1".into(),
                    rows: 8,
                    size: SizeSpec::Fixed(100),
                    seed: 4,
                    packed,
                }
            );
        }
    }

    #[test]
    fn steps_are_counted_per_run() {
        let peers = usize::from(cfg!(feature = "peers"));
        // 100B: ring, ceiling, (iceoryx2,) baseline + tuned, end to end.
        let plan = Plan::new(&suite_args(&[
            "--quick",
            "--cases",
            "100B,idle",
            "--reps",
            "1",
        ]))
        .unwrap();
        assert_eq!(plan.total_steps(), 4 + peers + 1);
        // mixed has no end-to-end run; large runs both sizes `reps` times.
        let plan = Plan::new(&suite_args(&[
            "--cases",
            "mixed,wake,large,supervision,pool",
            "--reps",
            "2",
        ]))
        .unwrap();
        assert_eq!(
            plan.total_steps(),
            2 * (3 + peers) + 1 + 2 * 2 + supervision::STEPS + pool_case::STEPS
        );
        // Defaults: every part but custom.
        let plan = Plan::new(&suite_args(&["--quick"])).unwrap();
        assert_eq!(
            plan.total_steps(),
            5 * (2 * (4 + peers) + 2 * (3 + peers)) + 2 * 3 + 2 + 9 + 4
        );
    }

    #[test]
    fn bad_selections_are_rejected_before_anything_runs() {
        for argv in [
            &["--cases", "nope"][..],
            &["--cases", "custom"][..],
            &["--reps", "0"][..],
            &["--capacity", "5000"][..],
            &["--wake-samples", "0"][..],
        ] {
            assert!(Plan::new(&suite_args(argv)).is_err(), "{argv:?}");
        }
    }
}
