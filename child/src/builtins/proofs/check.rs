//! Running a batch in the worker: each candidate's simulated work, and the
//! hangs and blow-ups the supervisor has to end.

use std::time::{Duration, Instant};

use super::model::{Fate, candidate_hash, fate};
use super::text::render;
use super::{ProofBatch, ProofResult, ProofSummary};
use crate::builtins::synthetic::mix;
use crate::{CommandError, RowWriter, TypedRows, check_cancelled};

/// How often a candidate's work checks for a cancel (and beats).
const CHECK_EVERY: Duration = Duration::from_millis(1);
/// A blow-up allocates in chunks of this size, beating between them.
const BLOWUP_CHUNK: usize = 16 << 20;

/// Runs the command.
pub fn run(
    request: ProofBatch,
    rows: &mut TypedRows<'_, '_, ProofResult>,
) -> Result<ProofSummary, CommandError> {
    if request.budget_ms == 0 {
        return Err(CommandError::bad_request("budget_ms must be at least 1"));
    }
    let rates = request.rates();
    let mut summary = ProofSummary::default();
    let mut goals = String::new();
    let mut diagnostics = String::new();
    for &id in &request.candidates {
        // Also makes the row of this candidate visible at its commit, so a
        // hang or a blow-up after it cannot hold it back.
        check_cancelled(rows)?;
        let started = Instant::now();
        match fate(request.seed, id, &rates) {
            Fate::Hang => hang(rows),
            Fate::BlowUp => return Err(blow_up(rows, request.blowup_bytes)),
            Fate::Result(outcome) => {
                work(
                    rows,
                    outcome.work_us,
                    started,
                    candidate_hash(request.seed, id),
                )?;
                goals.clear();
                diagnostics.clear();
                render(request.seed, id, &outcome, &mut goals, &mut diagnostics);
                let result = ProofResult {
                    id,
                    status: outcome.status,
                    goals: std::mem::take(&mut goals),
                    diagnostics: std::mem::take(&mut diagnostics),
                    time_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                };
                rows.row(0, &result)?;
                summary.add(result.status);
                summary.text_bytes += (result.goals.len() + result.diagnostics.len()) as u64;
                // Keep the buffers for the next candidate.
                goals = result.goals;
                diagnostics = result.diagnostics;
            }
        }
    }
    summary.bytes = rows.bytes();
    Ok(summary)
}

/// Busy work for `us` microseconds from `started`, checking for a cancel
/// (a heartbeat) every [`CHECK_EVERY`].
fn work(
    writer: &RowWriter<'_>,
    us: u64,
    started: Instant,
    mut state: u64,
) -> Result<(), CommandError> {
    let target = Duration::from_micros(us);
    let mut checked = started;
    loop {
        for _ in 0..32 {
            state = mix(state);
        }
        std::hint::black_box(state);
        let now = Instant::now();
        if now.duration_since(started) >= target {
            return Ok(());
        }
        if now.duration_since(checked) >= CHECK_EVERY {
            check_cancelled(writer)?;
            checked = now;
        }
    }
}

/// A hanging candidate: publishes the rows so far, then never calls into
/// the writer again (no heartbeat, no cancel check) and sleeps until killed.
fn hang(rows: &mut TypedRows<'_, '_, ProofResult>) -> ! {
    rows.flush();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A blow-up: allocates and touches `bytes` in chunks, then holds them,
/// beating, until a cancel (or the kill of the memory limit). Returns the
/// request's failure: the cancel, or `out_of_memory` if an allocation
/// failed (the memory is freed on return).
fn blow_up(writer: &RowWriter<'_>, bytes: u64) -> CommandError {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut left = bytes;
    while left > 0 {
        if let Err(err) = check_cancelled(writer) {
            return err;
        }
        let n = usize::try_from(left.min(BLOWUP_CHUNK as u64)).unwrap_or(BLOWUP_CHUNK);
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(n).is_err() {
            let had = bytes - left;
            return CommandError::new(
                "out_of_memory",
                format!(
                    "blow-up could not allocate {n} more bytes after {} MiB",
                    had >> 20
                ),
            );
        }
        chunk.resize(n, 0xA5);
        held.push(std::hint::black_box(chunk));
        left -= n as u64;
    }
    loop {
        if let Err(err) = check_cancelled(writer) {
            return err;
        }
        std::hint::black_box(&held);
        std::thread::sleep(Duration::from_millis(10));
    }
}
