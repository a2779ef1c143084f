//! The `export` part of `ringworker bench`: lean4export to Parquet in this
//! one process ([`export_in_process`]) against the same export through
//! worker processes (exactly what `ringworker export-decls INPUT --out
//! FILE.parquet --workers W` runs), with 1 and 2 workers.
//!
//! A synthetic export is generated once into a temporary directory (not
//! timed); then the three exports run one after the other, `runs` times
//! (in process, 1 worker, 2 workers, in process, ...), so that run `i` of
//! each saw the same machine. Each run is timed as a user sees it: the
//! whole call, the workers' start-up, the input's check and the Parquet
//! footer included. Reported: declarations/s and input MB/s (medians over
//! the runs) and, for the workers, the ratio to in process (the median of
//! the pairwise ratios). The target: the better of the two worker counts
//! reaches [`TARGET_RATIO`] of in process.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use ringworker_benches::report::{Target, median, pairwise_ratio};
use ringworker_lean::parquet::ParquetOptions;
use ringworker_lean::{SyntheticConfig, write_export};
use serde_json::{Value, json};

use super::output::Format;
use super::{ExportArgs, export, export_in_process};
use crate::bench::{BenchPart, remove_on_interrupt};

/// Declarations of the synthetic input with `--quick`.
pub const QUICK_DECLS: u64 = 200_000;
/// Declarations of the synthetic input without `--quick`.
pub const FULL_DECLS: u64 = 1_000_000;
/// Runs of each export with `--quick`.
pub const QUICK_RUNS: usize = 2;
/// Runs of each export without `--quick`.
pub const FULL_RUNS: usize = 3;
/// The worker counts measured.
pub const WORKERS: [usize; 2] = [1, 2];
/// Target: the export through workers reaches this share of the in-process
/// export's declarations/s (the better worker count).
pub const TARGET_RATIO: f64 = 0.80;
/// Seed of the synthetic input.
pub const SEED: u64 = 1;

/// Declarations and runs for `quick`.
fn sizes(quick: bool) -> (u64, usize) {
    if quick {
        (QUICK_DECLS, QUICK_RUNS)
    } else {
        (FULL_DECLS, FULL_RUNS)
    }
}

/// Steps the part announces: the generation, then each run of each export.
pub fn steps(quick: bool) -> usize {
    let (_, runs) = sizes(quick);
    1 + runs * (1 + WORKERS.len())
}

/// One way of exporting, timed `runs` times.
#[derive(Debug, Clone)]
struct Timings {
    /// Workers (0: in process).
    workers: usize,
    /// Wall seconds of each run.
    seconds: Vec<f64>,
}

impl Timings {
    fn label(&self) -> String {
        match self.workers {
            0 => "in process".to_owned(),
            1 => "1 worker".to_owned(),
            n => format!("{n} workers"),
        }
    }

    fn decls_per_s(&self, decls: u64) -> Vec<f64> {
        self.seconds.iter().map(|s| decls as f64 / s).collect()
    }
}

/// What the part measured.
#[derive(Debug, Clone)]
struct ExportBench {
    /// Declarations of the input (rows of every output).
    decls: u64,
    /// Input bytes.
    input_bytes: u64,
    /// Seconds the generation took.
    generate_seconds: f64,
    /// In process, then one entry per [`WORKERS`].
    timings: Vec<Timings>,
}

impl ExportBench {
    fn in_process(&self) -> &Timings {
        &self.timings[0]
    }

    fn rate(&self, t: &Timings) -> f64 {
        median(&t.decls_per_s(self.decls))
    }

    fn mb_per_s(&self, t: &Timings) -> f64 {
        let v: Vec<f64> = t
            .seconds
            .iter()
            .map(|s| self.input_bytes as f64 / 1e6 / s)
            .collect();
        median(&v)
    }

    /// Workers over in process, median of the pairwise ratios.
    fn ratio(&self, t: &Timings) -> f64 {
        pairwise_ratio(
            &t.decls_per_s(self.decls),
            &self.in_process().decls_per_s(self.decls),
        )
    }

    /// The worker timings with the best ratio.
    fn best_workers(&self) -> &Timings {
        self.timings[1..]
            .iter()
            .max_by(|a, b| self.ratio(a).total_cmp(&self.ratio(b)))
            .unwrap_or(&self.timings[0])
    }
}

/// Runs the part: `quick` picks the sizes, `progress` hears each step (see
/// [`steps`]) as it starts.
pub fn bench_part(quick: bool, progress: &mut dyn FnMut(&str)) -> Result<BenchPart> {
    let (decls, runs) = sizes(quick);
    let dir = crate::scratch::dir("bench-export").context("creating a temporary directory")?;
    remove_on_interrupt(dir.path());
    let input = dir.path().join("input.ndjson");
    progress(&format!(
        "export: generating a synthetic lean4export file of {decls} declarations"
    ));
    let started = Instant::now();
    let file = std::fs::File::create(&input)
        .with_context(|| format!("cannot create {}", input.display()))?;
    let summary = write_export(&SyntheticConfig::new(SEED, decls), file)
        .with_context(|| format!("writing {}", input.display()))?;
    let generate_seconds = started.elapsed().as_secs_f64();
    let input_bytes = std::fs::metadata(&input)?.len();
    ensure!(
        summary.rows == decls,
        "the generator wrote {} declarations, not {decls}",
        summary.rows
    );
    let dest = dir.path().join("out.parquet");
    let mut timings: Vec<Timings> = std::iter::once(0)
        .chain(WORKERS)
        .map(|workers| Timings {
            workers,
            seconds: Vec::with_capacity(runs),
        })
        .collect();
    for run in 1..=runs {
        for t in &mut timings {
            progress(&format!("export {} run {run}/{runs}", t.label()));
            let (seconds, rows) = if t.workers == 0 {
                let started = Instant::now();
                let rows =
                    export_in_process(&input, &dest, Format::Parquet, &ParquetOptions::default())
                        .context("the in-process export")?;
                (started.elapsed().as_secs_f64(), rows)
            } else {
                let args = export_args(&input, &dest, t.workers)?;
                let started = Instant::now();
                let report = export(&args)
                    .map_err(|f| f.error.context(format!("the export through {}", t.label())))?;
                (started.elapsed().as_secs_f64(), report.declarations)
            };
            ensure!(
                rows == decls,
                "the export {} wrote {rows} rows of {decls}",
                t.label()
            );
            t.seconds.push(seconds);
            std::fs::remove_file(&dest).with_context(|| format!("removing {}", dest.display()))?;
        }
    }
    let bench = ExportBench {
        decls,
        input_bytes,
        generate_seconds,
        timings,
    };
    Ok(BenchPart {
        table: table(&bench),
        json: to_json(&bench, runs),
        targets: targets(&bench),
    })
}

/// The arguments of `ringworker export-decls INPUT --out DEST --workers W
/// --progress off`, parsed as the command line parses them.
fn export_args(input: &Path, dest: &Path, workers: usize) -> Result<ExportArgs> {
    #[derive(Debug, Parser)]
    #[command(name = "export-decls")]
    struct ExportCommand {
        #[command(flatten)]
        args: ExportArgs,
    }
    let argv: [OsString; 8] = [
        "export-decls".into(),
        input.into(),
        "--out".into(),
        dest.into(),
        "--workers".into(),
        workers.to_string().into(),
        "--progress".into(),
        "off".into(),
    ];
    Ok(ExportCommand::try_parse_from(argv)
        .context("the export's arguments")?
        .args)
}

fn table(b: &ExportBench) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>10} {:>12} {:>10} {:>12}",
        "export", "decls", "decls/s", "MB/s in", "vs in-proc"
    );
    for t in &b.timings {
        let _ = writeln!(
            s,
            "{:<14} {:>10} {:>12.0} {:>10.1} {:>12}",
            format!("  {}", t.label()),
            b.decls,
            b.rate(t),
            b.mb_per_s(t),
            if t.workers == 0 {
                "1.00x".to_owned()
            } else {
                format!("{:.2}x", b.ratio(t))
            },
        );
    }
    let _ = writeln!(
        s,
        "(synthetic lean4export, {} declarations, {:.1} MB, to Parquet; in process = reader and \
         writer in this process, workers = `export-decls --workers W`; median of {} alternating \
         runs, each timed whole, worker start-up included; ratio = median of pairwise ratios)",
        b.decls,
        b.input_bytes as f64 / 1e6,
        b.in_process().seconds.len(),
    );
    s
}

fn to_json(b: &ExportBench, runs: usize) -> Value {
    let run = |t: &Timings| {
        let mut v = json!({
            "workers": t.workers,
            "decls_per_s": b.rate(t).round(),
            "input_mb_per_s": round(b.mb_per_s(t), 2),
            "seconds_reps": t.seconds.iter().map(|s| round(*s, 3)).collect::<Vec<_>>(),
        });
        if t.workers > 0 {
            v["ratio_vs_in_process"] = json!(round(b.ratio(t), 3));
        }
        v
    };
    json!({
        "case": "export",
        "declarations": b.decls,
        "input_bytes": b.input_bytes,
        "format": "parquet",
        "generate_seconds": round(b.generate_seconds, 3),
        "runs": runs,
        "stat": format!("median of {runs} alternating runs, each timed whole; ratio = median of pairwise ratios"),
        "in_process": run(b.in_process()),
        "workers": b.timings[1..].iter().map(run).collect::<Vec<_>>(),
        "best_workers": b.best_workers().workers,
        "best_ratio": round(b.ratio(b.best_workers()), 3),
    })
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn targets(b: &ExportBench) -> Vec<Target> {
    let best = b.best_workers();
    let ratio = b.ratio(best);
    let others: Vec<String> = b.timings[1..]
        .iter()
        .filter(|t| t.workers != best.workers)
        .map(|t| format!("{} {:.0}%", t.label(), b.ratio(t) * 100.0))
        .collect();
    vec![Target::new(
        format!(
            "export through workers >= {:.0}% of in-process",
            TARGET_RATIO * 100.0
        ),
        format!(
            "{:.0}% with {} ({}{:.0} vs {:.0} decls/s)",
            ratio * 100.0,
            best.label(),
            others.iter().map(|o| o.clone() + "; ").collect::<String>(),
            b.rate(best),
            b.rate(b.in_process()),
        ),
        ratio >= TARGET_RATIO,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(in_process: &[f64], one: &[f64], two: &[f64]) -> ExportBench {
        ExportBench {
            decls: 1000,
            input_bytes: 2_000_000,
            generate_seconds: 0.1,
            timings: vec![
                Timings {
                    workers: 0,
                    seconds: in_process.to_vec(),
                },
                Timings {
                    workers: 1,
                    seconds: one.to_vec(),
                },
                Timings {
                    workers: 2,
                    seconds: two.to_vec(),
                },
            ],
        }
    }

    #[test]
    fn steps_count_the_generation_and_every_run() {
        assert_eq!(steps(true), 1 + 2 * 3);
        assert_eq!(steps(false), 1 + 3 * 3);
    }

    #[test]
    fn the_target_takes_the_better_worker_count() {
        // 1 worker at half the rate, 2 workers at 0.9 of it.
        let b = bench(&[1.0, 1.0], &[2.0, 2.0], &[1.0 / 0.9, 1.0 / 0.9]);
        let t = &targets(&b)[0];
        assert!(t.pass, "{t:?}");
        assert!(t.measured.starts_with("90% with 2 workers"), "{t:?}");
        assert!(t.measured.contains("1 worker 50%"), "{t:?}");
        let b = bench(&[1.0, 1.0], &[2.0, 2.0], &[1.5, 1.5]);
        let t = &targets(&b)[0];
        assert!(!t.pass, "{t:?}");
        assert!(t.measured.starts_with("67% with 2 workers"), "{t:?}");
        let j = to_json(&b, 2);
        assert_eq!(j["case"], "export");
        assert_eq!(j["best_workers"], 2);
        assert_eq!(j["in_process"]["decls_per_s"], 1000.0);
        assert_eq!(j["in_process"]["input_mb_per_s"], 2.0);
        let table = table(&b);
        assert!(table.contains("  2 workers"), "{table}");
        assert!(table.contains("0.67x"), "{table}");
    }

    #[test]
    fn the_arguments_are_those_of_export_decls() {
        let args = export_args(Path::new("/in.ndjson"), Path::new("/x/out.parquet"), 2).unwrap();
        assert_eq!(args.workers, 2);
        assert_eq!(args.input.as_deref(), Some(Path::new("/in.ndjson")));
        assert_eq!(args.report.progress, crate::progress::Mode::Off);
        assert!(!args.report.json);
    }
}
