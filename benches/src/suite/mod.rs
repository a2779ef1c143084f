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
//!
//! The options, the progress and the report are here; `children` holds the
//! hidden subcommands, `plan` validates a selection and counts its steps
//! before any child starts, and `run` runs it.

mod children;
mod plan;
mod run;

pub use children::{ChildCmd, run_child};
pub use run::run_suite;

use clap::Args;

use crate::report;

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
    pub targets: Vec<report::Target>,
    /// The line describing the ring and the mixed sizes (no newline).
    pub footer: String,
}

#[cfg(test)]
mod tests {
    use clap::{Parser, Subcommand};

    use super::plan::Plan;
    use super::*;
    use crate::baseline::{self, Variant};
    #[cfg(feature = "peers")]
    use crate::peer_iceoryx2;
    use crate::ring_case::{self, RingParams};
    use crate::rows::SizeSpec;
    use crate::{ceiling, e2e, latency, pool_case, supervision};

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
