//! `ringworker`: the command line.
//!
//! | command | module |
//! | --- | --- |
//! | `bench` | `bench`: the benchmark report (ringbench's suite plus the export and proof-mining parts) |
//! | `run` | `run`: any worker command, one request or many over a pool, into NDJSON or Parquet |
//! | `export-decls` | `export`: lean4export to Parquet/NDJSON through worker processes; resumable, shardable |
//! | `mine-proofs` | `mine`: synthetic proof candidates over a pool (`proofs`: the mining with culprit isolation), one row per candidate |
//! | `doctor` | `doctor`: what a child announces and what this machine supports |
//!
//! Beside them: `worker` (this binary is also the built-in worker, behind
//! the hidden `__serve`), `progress` (bar or plain lines on stderr),
//! `interrupt` (Ctrl-C cancels jobs), `atomic` (outputs appear whole or not
//! at all), `scratch` (temporary inputs, swept when a SIGKILLed run left
//! them), `exit` (the documented exit statuses), `shard`, `units`.
#![forbid(unsafe_code)]

mod atomic;
mod bench;
mod doctor;
mod exit;
mod export;
mod interrupt;
mod mine;
mod progress;
mod proofs;
mod proofs_via_run;
mod rows_out;
mod run;
mod scratch;
mod shard;
mod units;
mod worker;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::exit::Failure;
use crate::units::parse_duration;

/// Streams rows from supervised worker processes: benchmarks, worker
/// commands into files, bulk Lean declaration export.
#[derive(Debug, Parser)]
#[command(name = "ringworker", version, about, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

const EXIT_STATUS_HELP: &str = "Exit status: 0 success, 1 internal error, 2 usage (bad arguments or request), \
3 input (missing, unreadable or malformed), 4 output (not writable, or an existing export without --resume), \
5 child (not executable, failed handshake, unknown command), 6 jobs failed, 130 interrupted (Ctrl-C).";

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The benchmark report: ringbench's (ring vs pipe, latency, large
    /// rows, supervision, pool) and the export through workers.
    Bench(bench::BenchArgs),
    /// Bulk declaration export from a lean4export file through worker
    /// processes, into Parquet or NDJSON.
    ExportDecls(export::ExportArgs),
    /// Runs a worker command: one request, or many over a pool; rows into
    /// NDJSON or Parquet.
    Run(run::RunArgs),
    /// Starts a child and shows its handshake, commands and this machine's
    /// containment and memory-limit mechanisms.
    Doctor(doctor::DoctorArgs),
    /// Synthetic proof candidates over a pool of workers, some hanging or
    /// blowing up memory: one result or failure row per candidate, none lost.
    MineProofs(mine::MineArgs),
    /// The built-in worker (started by the other commands).
    #[command(name = worker::SERVE, hide = true)]
    Serve,
    /// The children of `bench` (this binary re-executed).
    #[command(flatten)]
    BenchChild(ringworker_benches::suite::ChildCmd),
}

/// How a command reports: progress while it runs, the summary at the end.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Progress on stderr: a bar on a terminal, plain lines otherwise (auto).
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto)]
    pub progress: progress::Mode,
    /// Time between plain progress lines.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub progress_interval: Duration,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    let result: Result<(), Failure> = match cli.command {
        Cmd::Serve => return worker::serve(),
        Cmd::ExportDecls(args) => export::run(&args),
        Cmd::Run(args) => run::run(&args),
        Cmd::Doctor(args) => doctor::run(&args),
        Cmd::Bench(args) => bench::run(&args),
        Cmd::BenchChild(child) => {
            ringworker_benches::suite::run_child(child).map_err(|error| Failure {
                class: exit::Class::Internal,
                error,
            })
        }
        Cmd::MineProofs(args) => mine::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("ringworker: error: {failure}");
            failure.exit_code()
        }
    }
}

/// Help and version go out as clap writes them; a usage error becomes one
/// line on stderr and status 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            },
        );
    }
    let text = err.render().to_string();
    let first = text.lines().next().unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("ringworker: error: {first} (see --help)");
    ExitCode::from(exit::Class::Usage.status())
}
