//! `synthetic-proofs`: a workload shaped like proof-candidate checking.
//!
//! A request ([`ProofBatch`]) carries a batch of candidate ids and budgets;
//! the command checks them in order and writes one [`ProofResult`] row per
//! candidate: its status (closed, progressed, failed, timeout), goal-state
//! text and diagnostics (a few hundred bytes to 64 KiB, Lean-like), and the
//! time it took. What happens to a candidate is a pure function of the
//! batch's seed and the candidate's id ([`fate`]), so a supervisor can
//! predict every row, and every failure:
//!
//! - a candidate whose simulated work exceeds the soft budget
//!   (`budget_ms`) stops at the budget and ends with status
//!   [`Status::Timeout`], a row like any other;
//! - a *hanging* candidate (`hang_per_million`) stops calling into the
//!   writer and sleeps forever: no heartbeat, no rows, no reaction to a
//!   cancel, so the supervisor's hang detection or the job's deadline
//!   must end it;
//! - a *blow-up* (`blowup_per_million`) allocates and touches
//!   `blowup_bytes` in 16 MiB chunks and holds them while staying alive
//!   (it beats and honours a cancel), so the supervisor's memory limit must
//!   end it (without one it runs into the job's deadline); if an allocation
//!   fails (a kernel cap, `RLIMIT_DATA`), the request fails with the command
//!   code `out_of_memory` and the memory is freed.
//!
//! The rows of the candidates before a hang or a blow-up are published
//! before it starts, so the supervisor delivers exactly those rows before
//! the failure: the first candidate of the batch without a row is the
//! culprit.
//!
//! The command's contract (request, row, summary) is here; what becomes of
//! each candidate is in `model` and `text`, pure functions a supervisor
//! calls too, and `check` runs a batch in the worker.

mod check;
mod model;
mod text;

pub use check::run;
pub use model::{Fate, Outcome, Rates, fate};
pub use text::render;

use serde::{Deserialize, Serialize};

use crate::Command;

/// The `synthetic-proofs` command's contract: a [`ProofBatch`] in, one
/// [`ProofResult`] row per candidate (in the batch's order), a
/// [`ProofSummary`] back.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticProofs;

impl Command for SyntheticProofs {
    const NAME: &'static str = "synthetic-proofs";
    const DESCRIPTION: &'static str = "checks a batch of synthetic proof candidates: one result row each; some hang or blow up memory";
    type Request = ProofBatch;
    type Row = ProofResult;
    type Summary = ProofSummary;
}

/// Default mean CPU time per candidate, in microseconds.
pub const DEFAULT_WORK_US: u64 = 200;
/// Default soft budget per candidate, in milliseconds.
pub const DEFAULT_BUDGET_MS: u64 = 2;
/// Default allocation of a blow-up: 1 GiB.
pub const DEFAULT_BLOWUP_BYTES: u64 = 1 << 30;
/// Largest goal-state text of a result.
pub const MAX_GOALS_BYTES: usize = 48 << 10;
/// Largest diagnostics text of a result.
pub const MAX_DIAGNOSTICS_BYTES: usize = 16 << 10;
/// Smallest goal-state text of a result.
pub const MIN_GOALS_BYTES: usize = 160;
/// Smallest diagnostics text of a result.
pub const MIN_DIAGNOSTICS_BYTES: usize = 96;

/// Arguments of `synthetic-proofs`. Only `candidates` is required:
/// `{"candidates":[1,2,3]}` checks three candidates with seed 0, no hangs,
/// no blow-ups, [`DEFAULT_WORK_US`], [`DEFAULT_BUDGET_MS`] and
/// [`DEFAULT_BLOWUP_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProofBatch {
    /// The candidates' ids, checked in this order (one row each).
    pub candidates: Vec<u64>,
    /// Seed of every candidate's fate (see [`fate`]).
    #[serde(default)]
    pub seed: u64,
    /// Candidates per million that hang (stop without a sign of life).
    #[serde(default)]
    pub hang_per_million: u32,
    /// Candidates per million that blow up memory (`blowup_bytes`).
    #[serde(default)]
    pub blowup_per_million: u32,
    /// Mean CPU time of a candidate within its budget, in microseconds
    /// (log-normal around it, drawn per candidate).
    #[serde(default = "default_work_us")]
    pub work_us: u64,
    /// Soft budget per candidate, in milliseconds (at least 1): a candidate
    /// whose simulated work exceeds it spends the budget and ends with
    /// [`Status::Timeout`]. About 5 % of candidates do; each costs the
    /// whole budget.
    #[serde(default = "default_budget_ms")]
    pub budget_ms: u64,
    /// Bytes a blow-up allocates and touches.
    #[serde(default = "default_blowup_bytes")]
    pub blowup_bytes: u64,
}

fn default_work_us() -> u64 {
    DEFAULT_WORK_US
}

fn default_budget_ms() -> u64 {
    DEFAULT_BUDGET_MS
}

fn default_blowup_bytes() -> u64 {
    DEFAULT_BLOWUP_BYTES
}

impl ProofBatch {
    /// `candidates` with the defaults (see the type's docs).
    pub fn new(candidates: Vec<u64>) -> Self {
        ProofBatch {
            candidates,
            seed: 0,
            hang_per_million: 0,
            blowup_per_million: 0,
            work_us: DEFAULT_WORK_US,
            budget_ms: DEFAULT_BUDGET_MS,
            blowup_bytes: DEFAULT_BLOWUP_BYTES,
        }
    }

    /// Sets the seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the hang and blow-up rates (per million candidates).
    #[must_use]
    pub fn with_failure_rates(mut self, hang_per_million: u32, blowup_per_million: u32) -> Self {
        self.hang_per_million = hang_per_million;
        self.blowup_per_million = blowup_per_million;
        self
    }

    /// Sets the mean CPU time per candidate (microseconds).
    #[must_use]
    pub fn with_work_us(mut self, work_us: u64) -> Self {
        self.work_us = work_us;
        self
    }

    /// Sets the soft budget per candidate (milliseconds).
    #[must_use]
    pub fn with_budget_ms(mut self, budget_ms: u64) -> Self {
        self.budget_ms = budget_ms;
        self
    }

    /// Sets the allocation of a blow-up (bytes).
    #[must_use]
    pub fn with_blowup_bytes(mut self, bytes: u64) -> Self {
        self.blowup_bytes = bytes;
        self
    }

    /// The parameters [`fate`] draws from.
    pub fn rates(&self) -> Rates {
        Rates {
            hang_per_million: self.hang_per_million,
            blowup_per_million: self.blowup_per_million,
            work_us: self.work_us,
            budget_ms: self.budget_ms,
        }
    }
}

/// How a candidate's check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// The proof is complete: no goals left.
    Closed,
    /// Some goals were solved, others remain.
    Progressed,
    /// The candidate does not check (type mismatch, tactic failure).
    Failed,
    /// The candidate ran out of its soft budget.
    Timeout,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 4] = [
        Status::Closed,
        Status::Progressed,
        Status::Failed,
        Status::Timeout,
    ];

    /// The name rows use (`closed`, `progressed`, `failed`, `timeout`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Closed => "closed",
            Status::Progressed => "progressed",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `synthetic-proofs`: the result of one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProofResult {
    /// The candidate's id.
    pub id: u64,
    /// How its check ended.
    pub status: Status,
    /// The goal state (Lean-like text, [`MIN_GOALS_BYTES`] to
    /// [`MAX_GOALS_BYTES`] bytes; see [`render`]).
    pub goals: String,
    /// Messages of the check ([`MIN_DIAGNOSTICS_BYTES`] to
    /// [`MAX_DIAGNOSTICS_BYTES`] bytes).
    pub diagnostics: String,
    /// Wall time the candidate took in the worker, in microseconds.
    pub time_us: u64,
}

/// Summary of `synthetic-proofs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProofSummary {
    /// Candidates checked (rows written).
    pub candidates: u64,
    /// Rows with [`Status::Closed`].
    pub closed: u64,
    /// Rows with [`Status::Progressed`].
    pub progressed: u64,
    /// Rows with [`Status::Failed`].
    pub failed: u64,
    /// Rows with [`Status::Timeout`].
    pub timeout: u64,
    /// Bytes of goal and diagnostics text.
    pub text_bytes: u64,
    /// Row payload bytes (JSON) written.
    pub bytes: u64,
}

impl ProofSummary {
    /// Rows with `status`.
    pub fn count(&self, status: Status) -> u64 {
        match status {
            Status::Closed => self.closed,
            Status::Progressed => self.progressed,
            Status::Failed => self.failed,
            Status::Timeout => self.timeout,
        }
    }

    fn add(&mut self, status: Status) {
        self.candidates += 1;
        match status {
            Status::Closed => self.closed += 1,
            Status::Progressed => self.progressed += 1,
            Status::Failed => self.failed += 1,
            Status::Timeout => self.timeout += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_of_candidates_only_takes_the_defaults() {
        let batch: ProofBatch = serde_json::from_str(r#"{"candidates":[1,2,3]}"#).unwrap();
        assert_eq!(batch, ProofBatch::new(vec![1, 2, 3]));
        assert_eq!(batch.rates(), Rates::default());
        assert_eq!(batch.blowup_bytes, 1 << 30);
        assert!(serde_json::from_str::<ProofBatch>(r#"{"candidates":[],"nope":1}"#).is_err());
    }

    #[test]
    fn rows_round_trip_with_lowercase_statuses() {
        let row = ProofResult {
            id: 9,
            status: Status::Progressed,
            goals: "⊢ n + 0 = n".into(),
            diagnostics: String::new(),
            time_us: 12,
        };
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains(r#""status":"progressed""#), "{json}");
        assert_eq!(serde_json::from_str::<ProofResult>(&json).unwrap(), row);
        for status in Status::ALL {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
    }
}
