//! `ringworker bench`: the benchmark report. ringbench's suite
//! ([`ringworker_benches::suite`]: ring throughput against the pipe
//! baseline, idle CPU, wake-up latency, large rows, supervision, the pool)
//! and then this command's own parts ([`EXTRA_PARTS`]: the export through
//! workers against in process), with progress on stderr while it runs.
//!
//! Every ringbench flag works here (`--quick`, `--cases`, `--reps`, ...);
//! `--cases` also takes the extra parts' names, and with no `--cases` (and
//! no `--row-bytes`) every part runs, the extra ones included. The output
//! is ringbench's: the table, then the target lines and the footer on
//! stdout; with `--json` the table on stderr and one JSON object per line
//! on stdout, the summary (every target, the extra parts' included) last.
//!
//! The suite's children are this binary re-executed with a hidden
//! subcommand ([`ringworker_benches::suite::ChildCmd`], flattened into the
//! top-level commands); the export part's workers are the built-in worker.
//!
//! Progress: a bar (steps done of all steps, and what runs now) when stderr
//! is a terminal, one `ringworker bench: ...` line per step otherwise. The
//! bar is redrawn only when a step starts, never by a ticking thread: the
//! parts measure this process's CPU.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ringworker_benches::report::{self, Target};
use ringworker_benches::suite::{self, PARTS, Step, SuiteArgs, SuiteReport};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::exit::{Class, Failure, Outcome};
use crate::export;
use crate::progress::Mode;

/// Arguments of `bench`: ringbench's, and how progress is shown.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("cases", cases_help))]
pub struct BenchArgs {
    /// The report's options (ringbench's flags).
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Progress on stderr: a bar on a terminal, plain lines otherwise (auto).
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub progress: Mode,
}

/// `--cases`' help: the suite's, and this command's parts.
fn cases_help(arg: clap::Arg) -> clap::Arg {
    let extras: Vec<String> = EXTRA_PARTS
        .iter()
        .map(|p| format!("{} ({})", p.name, p.about))
        .collect();
    let more = format!(
        "; and this command's: {}. Default: all but custom",
        extras.join(", ")
    );
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    let help = help.trim_end_matches('.').to_owned() + &more;
    match arg.get_long_help().map(|h| h.to_string()) {
        Some(long) => arg
            .help(help)
            .long_help(long.trim_end_matches('.').to_owned() + &more),
        None => arg.help(help),
    }
}

/// A part of the report that this command adds to ringbench's suite: what
/// it prints and judges. The suite's results and every part's are printed
/// together: `table` after the suite's table, `json` after the suite's
/// JSON lines, `targets` with the suite's (in the target lines and the
/// summary).
#[derive(Debug, Clone)]
pub struct BenchPart {
    /// Its lines of the human-readable table, each ending in a newline.
    pub table: String,
    /// Its JSON object (one line of `--json`), `"case"` naming the part.
    pub json: serde_json::Value,
    /// Its targets.
    pub targets: Vec<Target>,
}

/// How an extra part runs: with `--quick` or not, `progress` hearing each
/// step (one message) as it starts.
pub type PartFn = fn(quick: bool, progress: &mut dyn FnMut(&str)) -> anyhow::Result<BenchPart>;

/// An extra part: its name in `--cases`, a few words for `--help`, its
/// steps (to size the bar: messages beyond them do not move it), its run.
#[derive(Debug)]
pub struct ExtraPart {
    /// Its name in `--cases` (and the bar's label).
    pub name: &'static str,
    /// What it measures, for `--help`.
    pub about: &'static str,
    /// The `progress` calls it makes for `--quick` (true) or not.
    pub steps: fn(quick: bool) -> usize,
    /// The run.
    pub run: PartFn,
}

/// The extra parts, in the order they run (after the suite's parts).
pub const EXTRA_PARTS: &[ExtraPart] = &[
    ExtraPart {
        name: "export",
        about: "lean4export to Parquet in process vs through 1 and 2 workers",
        steps: export::bench::steps,
        run: export::bench::bench_part,
    },
    ExtraPart {
        name: "proofs",
        about: "proof mining: synthetic candidates over 2 workers, some hanging or blowing up memory, by the miner and through `ringworker run`",
        steps: |_quick| 3,
        run: crate::proofs::bench_part,
    },
];

/// What `--cases` selects.
struct Selection {
    /// The suite's options, restricted to its parts (None: none selected).
    suite: Option<SuiteArgs>,
    /// The extra parts, in [`EXTRA_PARTS`] order.
    extras: Vec<&'static ExtraPart>,
}

/// Splits `--cases` between the suite and the extra parts; unknown names
/// are usage errors (the suite checks the rest of its options itself).
fn select(args: &SuiteArgs) -> Outcome<Selection> {
    let Some(list) = &args.cases else {
        // Like ringbench: `--row-bytes` alone runs the custom case only.
        let extras = if args.row_bytes.is_some() {
            Vec::new()
        } else {
            EXTRA_PARTS.iter().collect()
        };
        return Ok(Selection {
            suite: Some(args.clone()),
            extras,
        });
    };
    let mut suite_parts = Vec::new();
    for name in list {
        if PARTS.contains(&name.as_str()) {
            suite_parts.push(name.clone());
        } else if !EXTRA_PARTS.iter().any(|p| p.name == name) {
            let known: Vec<&str> = PARTS
                .iter()
                .copied()
                .chain(EXTRA_PARTS.iter().map(|p| p.name))
                .collect();
            return Err(Failure::new(
                Class::Usage,
                format!("unknown case {name:?}; known: {}", known.join(", ")),
            ));
        }
    }
    let suite = (!suite_parts.is_empty()).then(|| SuiteArgs {
        cases: Some(suite_parts),
        ..args.clone()
    });
    Ok(Selection {
        suite,
        extras: EXTRA_PARTS
            .iter()
            .filter(|p| list.iter().any(|n| n == p.name))
            .collect(),
    })
}

/// Runs `bench`.
pub fn run(args: &BenchArgs) -> Outcome {
    let selection = select(&args.suite)?;
    let quick = args.suite.quick;
    let _interrupt = ExitOnInterrupt::install();
    let steps: Vec<usize> = selection
        .extras
        .iter()
        .map(|p| (p.steps)(quick).max(1))
        .collect();
    let mut shown = Shown::new(args.progress, steps.iter().sum());
    let suite = match &selection.suite {
        Some(suite_args) => {
            // The suite validates everything before its first step: an
            // error before any step is the arguments'.
            let mut started = false;
            let result = suite::run_suite(suite_args, &mut |step| {
                started = true;
                shown.suite_step(&step);
            });
            match result {
                Ok(report) => Some(report),
                Err(error) => {
                    shown.finish();
                    let class = if started {
                        Class::Internal
                    } else {
                        Class::Usage
                    };
                    return Err(Failure { class, error });
                }
            }
        }
        None => None,
    };
    let mut parts = Vec::new();
    for (part, &steps) in selection.extras.iter().zip(&steps) {
        let mut step = 0;
        let result = (part.run)(quick, &mut |message| {
            shown.extra_step(part.name, message, step.min(steps - 1));
            step += 1;
        });
        shown.extra_done(steps);
        match result {
            Ok(p) => parts.push(p),
            Err(error) => {
                shown.finish();
                return Err(Failure {
                    class: Class::Internal,
                    error: error.context(format!("bench part {}", part.name)),
                });
            }
        }
    }
    shown.finish();
    print_report(args.suite.json, suite, parts);
    Ok(())
}

/// Prints what ran, as ringbench does (see the module documentation).
fn print_report(json: bool, suite: Option<SuiteReport>, parts: Vec<BenchPart>) {
    let (mut table, mut lines, mut targets, footer) = match suite {
        Some(s) => {
            eprint!("{}", s.preamble);
            (s.table, s.json, s.targets, Some(s.footer))
        }
        None => (String::new(), Vec::new(), Vec::new(), None),
    };
    for part in parts {
        table.push_str(&part.table);
        lines.push(part.json);
        targets.extend(part.targets);
    }
    table.push_str(&report::target_lines(&targets));
    if json {
        eprint!("{table}");
        for line in &lines {
            println!("{line}");
        }
        println!("{}", report::summary_json(&targets));
    } else {
        print!("{table}");
        if let Some(footer) = footer {
            println!("{footer}");
        }
    }
}

/// The progress display: nothing, plain lines, or the bar.
enum Shown {
    Off,
    Plain,
    Bar {
        bar: ProgressBar,
        /// Steps of the suite (known from its first step on).
        suite_total: usize,
        /// Steps of the extra parts.
        extra_total: usize,
        /// Steps of the extra parts that finished.
        extra_done: usize,
    },
}

impl Shown {
    fn new(mode: Mode, extra_total: usize) -> Shown {
        let bar = match mode {
            Mode::Off => return Shown::Off,
            Mode::Plain => return Shown::Plain,
            Mode::Bar => true,
            Mode::Auto => std::io::stderr().is_terminal(),
        };
        if !bar {
            return Shown::Plain;
        }
        let bar =
            ProgressBar::with_draw_target(Some(extra_total as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} bench [{elapsed_precise}] [{bar:24}] {pos}/{len} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Shown::Bar {
            bar,
            suite_total: 0,
            extra_total,
            extra_done: 0,
        }
    }

    /// A step of the suite (or its note, or its end).
    fn suite_step(&mut self, step: &Step) {
        if let Shown::Bar { suite_total, .. } = self {
            *suite_total = step.total;
        }
        if !step.message.is_empty() {
            self.show(&step.part, &step.message, step.done);
        }
    }

    /// Step `index` of an extra part starts.
    fn extra_step(&mut self, part: &str, message: &str, index: usize) {
        let done = match self {
            Shown::Bar {
                suite_total,
                extra_done,
                ..
            } => *suite_total + *extra_done + index,
            _ => 0,
        };
        self.show(part, message, done);
    }

    /// An extra part of `steps` steps is over.
    fn extra_done(&mut self, steps: usize) {
        if let Shown::Bar { extra_done, .. } = self {
            *extra_done += steps;
        }
    }

    fn show(&self, part: &str, message: &str, done: usize) {
        match self {
            Shown::Off => {}
            Shown::Plain => eprintln!("ringworker bench: {message}"),
            Shown::Bar {
                bar,
                suite_total,
                extra_total,
                ..
            } => {
                let message = if message.starts_with(part) {
                    message.to_owned()
                } else {
                    format!("{part}: {message}")
                };
                // Each call redraws: the message first, so that no draw
                // pairs it with the previous step's.
                bar.set_message(message);
                let total = (suite_total + extra_total) as u64;
                if bar.length() != Some(total) {
                    bar.set_length(total);
                }
                bar.set_position(done as u64);
            }
        }
    }

    /// Clears the bar (before the report is printed).
    fn finish(&self) {
        if let Shown::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// Directories the parts asked [`ExitOnInterrupt`] to remove.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a temporary directory of a part, to be removed if a signal
/// ends the bench (it is removed as usual otherwise; a directory gone by
/// then is no matter).
pub fn remove_on_interrupt(dir: &Path) {
    TEMP_DIRS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(dir.to_owned());
}

/// While it lives, SIGINT, SIGTERM and SIGHUP end the bench at once with
/// status 130, after removing the parts' temporary directories. (The
/// export part's `export-decls` runs install their own handlers, which
/// leave these signals without their default action once they are gone;
/// this keeps Ctrl-C working for the whole run. Workers die with their
/// supervisor: `PR_SET_PDEATHSIG`.)
struct ExitOnInterrupt {
    handle: Option<Handle>,
    thread: Option<JoinHandle<()>>,
}

impl ExitOnInterrupt {
    fn install() -> ExitOnInterrupt {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return ExitOnInterrupt {
                handle: None,
                thread: None,
            };
        };
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("ringworker-signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    let dirs = TEMP_DIRS.lock().unwrap_or_else(|p| p.into_inner());
                    for dir in dirs.iter() {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                    eprintln!("ringworker: error: interrupted");
                    std::process::exit(i32::from(Class::Interrupted.status()));
                }
            })
            .ok();
        ExitOnInterrupt {
            handle: Some(handle),
            thread,
        }
    }
}

impl Drop for ExitOnInterrupt {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> BenchArgs {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    fn names(s: &Selection) -> (Option<Vec<String>>, Vec<&str>) {
        (
            s.suite
                .as_ref()
                .map(|a| a.cases.clone().unwrap_or_default()),
            s.extras.iter().map(|p| p.name).collect(),
        )
    }

    #[test]
    fn cases_are_split_between_the_suite_and_the_extra_parts() {
        let s = select(&parse(&["--quick"]).suite).unwrap();
        assert!(s.suite.as_ref().unwrap().cases.is_none());
        assert_eq!(names(&s).1, ["export", "proofs"]);
        let s = select(&parse(&["--cases", "idle,export,pool"]).suite).unwrap();
        assert_eq!(
            names(&s),
            (
                Some(vec!["idle".to_owned(), "pool".to_owned()]),
                vec!["export"]
            )
        );
        let s = select(&parse(&["--cases", "export"]).suite).unwrap();
        assert_eq!(names(&s), (None, vec!["export"]));
        let s = select(&parse(&["--row-bytes", "64"]).suite).unwrap();
        assert_eq!(names(&s).1, Vec::<&str>::new());
        let e = select(&parse(&["--cases", "idle,nope"]).suite)
            .err()
            .unwrap();
        assert_eq!(e.class, Class::Usage);
        assert!(e.to_string().contains("\"nope\""), "{e}");
        assert!(e.to_string().contains("export"), "{e}");
    }

    #[test]
    fn every_ringbench_flag_and_progress_parse() {
        let a = parse(&[
            "--quick",
            "--json",
            "--no-pin",
            "--reps",
            "2",
            "--capacity",
            "65536",
            "--progress",
            "plain",
        ]);
        assert!(a.suite.quick && a.suite.json && a.suite.no_pin);
        assert_eq!(a.suite.reps, Some(2));
        assert_eq!(a.progress, Mode::Plain);
    }

    #[test]
    fn the_help_of_cases_names_the_extra_parts() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let cases = cmd.get_arguments().find(|a| a.get_id() == "cases").unwrap();
        let help = cases.get_help().unwrap().to_string();
        assert!(help.contains("supervision"), "{help}");
        assert!(help.contains("export ("), "{help}");
    }
}
