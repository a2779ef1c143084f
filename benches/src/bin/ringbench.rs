//! `ringbench`: the shared-memory ring against the pipe + length-prefixed JSON
//! baseline, in one run, with real child processes (this binary re-executed).
//! The report itself is [`ringworker_benches::suite`]; this binary prints it:
//! progress on stderr, the table on stdout (on stderr with `--json`, the
//! JSON lines then going to stdout).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use ringworker_benches::report;
use ringworker_benches::suite::{self, ChildCmd, SuiteArgs};

/// The shared-memory ring vs pipe + JSON: throughput, idle CPU, wake-up latency.
#[derive(Debug, Parser)]
#[command(name = "ringbench", version)]
struct Cli {
    #[command(flatten)]
    args: SuiteArgs,
    #[command(subcommand)]
    child: Option<ChildCmd>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.child {
        Some(child) => suite::run_child(child),
        None => run(&cli.args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringbench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &SuiteArgs) -> Result<()> {
    let out = suite::run_suite(args, &mut |step| {
        if !step.message.is_empty() {
            eprintln!("ringbench: {}", step.message);
        }
    })?;
    eprint!("{}", out.preamble);
    let table = out.table + &report::target_lines(&out.targets);
    if args.json {
        eprint!("{table}");
        for line in &out.json {
            println!("{line}");
        }
        println!("{}", report::summary_json(&out.targets));
    } else {
        print!("{table}");
        println!("{}", out.footer);
    }
    Ok(())
}
