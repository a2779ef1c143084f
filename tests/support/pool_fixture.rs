//! The fixture's command for the pool's retry tests: `crash_once` fails its
//! first run and succeeds on every later one, with rows that tell the runs
//! apart (seed 1 for the crashing run, seed 2 for the others).
#![allow(dead_code)]

use ringworker_child::{CommandError, RowWriter};
use ringworker_testkit::faults::FAULT_ROW_BYTES;
use ringworker_testkit::rows::fill_row;
use serde::{Deserialize, Serialize};

/// Name of the command.
pub const CRASH_ONCE: &str = "crash_once";

/// Seed of the rows of the crashing run.
pub const CRASH_SEED: u64 = 1;
/// Seed of the rows of a successful run.
pub const OK_SEED: u64 = 2;

/// Arguments of `crash_once`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashOnce {
    /// Created by the first run; its presence makes a run succeed.
    pub marker: String,
    /// Rows of a successful run.
    pub rows: u64,
    /// Rows the crashing run writes (and flushes) before its SIGKILL.
    pub crash_after: u64,
}

/// Summary of a successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashOnceSummary {
    /// Rows written.
    pub rows: u64,
}

/// Runs the command.
pub fn crash_once(
    request: CrashOnce,
    writer: &mut RowWriter<'_>,
) -> Result<CrashOnceSummary, CommandError> {
    let mut row = [0u8; FAULT_ROW_BYTES];
    let first = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&request.marker)
        .is_ok();
    if first {
        for sequence in 0..request.crash_after {
            fill_row(CRASH_SEED, sequence, &mut row);
            writer.row(0, &row)?;
        }
        writer.flush();
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    for sequence in 0..request.rows {
        fill_row(OK_SEED, sequence, &mut row);
        writer.row(0, &row)?;
    }
    Ok(CrashOnceSummary { rows: request.rows })
}
