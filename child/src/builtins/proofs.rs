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

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::synthetic::{log_normal, mix};
use crate::{Command, CommandError, RowWriter, TypedRows, check_cancelled};

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

/// The parameters of a batch that decide its candidates' fates
/// ([`ProofBatch::rates`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rates {
    /// Candidates per million that hang.
    pub hang_per_million: u32,
    /// Candidates per million that blow up memory.
    pub blowup_per_million: u32,
    /// Mean CPU time of a candidate within its budget, in microseconds.
    pub work_us: u64,
    /// Soft budget per candidate, in milliseconds.
    pub budget_ms: u64,
}

impl Default for Rates {
    /// No hangs, no blow-ups, [`DEFAULT_WORK_US`], [`DEFAULT_BUDGET_MS`].
    fn default() -> Self {
        Rates {
            hang_per_million: 0,
            blowup_per_million: 0,
            work_us: DEFAULT_WORK_US,
            budget_ms: DEFAULT_BUDGET_MS,
        }
    }
}

impl Rates {
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
}

/// What happens to a candidate ([`fate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// It stops without a sign of life: no row; the supervisor's hang
    /// detection or deadline ends the request.
    Hang,
    /// It allocates and holds the batch's `blowup_bytes`: no row; the
    /// supervisor's memory limit ends the request.
    BlowUp,
    /// It ends with a result row.
    Result(Outcome),
}

/// The planned result of a candidate that ends with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// The row's status.
    pub status: Status,
    /// CPU time it spends, in microseconds (its budget for a timeout).
    pub work_us: u64,
    /// Length of its goal-state text in bytes.
    pub goals_bytes: usize,
    /// Length of its diagnostics text in bytes.
    pub diagnostics_bytes: usize,
}

/// Shape of the log-normal per-candidate work around its mean.
const WORK_SIGMA: f64 = 0.6;

/// The fate of candidate `id` in a batch with `seed` and `rates`: a pure
/// function (a hash of seed and id), the same on both sides.
///
/// A candidate hangs with probability `hang_per_million / 1e6`, else blows
/// up with probability `blowup_per_million / 1e6` (independent draws; a
/// hang wins), else ends with a row. The row's status is closed (40 %),
/// progressed (30 %), failed (25 %) or timeout (5 %); besides, a candidate
/// whose log-normal work (mean `work_us`) exceeds `budget_ms` is a timeout
/// too. A timeout spends exactly the budget. Text sizes are log-normal
/// (goals median 1.5 KiB, diagnostics median 300 B), clipped to
/// [`MIN_GOALS_BYTES`]..=[`MAX_GOALS_BYTES`] and
/// [`MIN_DIAGNOSTICS_BYTES`]..=[`MAX_DIAGNOSTICS_BYTES`].
pub fn fate(seed: u64, id: u64, rates: &Rates) -> Fate {
    let base = candidate_hash(seed, id);
    if per_million(draw(base, 1)) < rates.hang_per_million {
        return Fate::Hang;
    }
    if per_million(draw(base, 2)) < rates.blowup_per_million {
        return Fate::BlowUp;
    }
    let budget_us = rates.budget_ms.saturating_mul(1000);
    let drawn = match draw(base, 3) % 100 {
        0..40 => Status::Closed,
        40..70 => Status::Progressed,
        70..95 => Status::Failed,
        _ => Status::Timeout,
    };
    let median = rates.work_us as f64 * (-WORK_SIGMA * WORK_SIGMA / 2.0).exp();
    let planned = log_normal_draw(draw(base, 4), median, WORK_SIGMA).round() as u64;
    let (status, work_us) = if drawn == Status::Timeout || planned > budget_us {
        (Status::Timeout, budget_us)
    } else {
        (drawn, planned)
    };
    let goals_bytes = (log_normal_draw(draw(base, 5), 1536.0, 1.2).round() as usize)
        .clamp(MIN_GOALS_BYTES, MAX_GOALS_BYTES);
    let diagnostics_bytes = (log_normal_draw(draw(base, 6), 300.0, 1.3).round() as usize)
        .clamp(MIN_DIAGNOSTICS_BYTES, MAX_DIAGNOSTICS_BYTES);
    Fate::Result(Outcome {
        status,
        work_us,
        goals_bytes,
        diagnostics_bytes,
    })
}

/// The hash behind everything about candidate `id` under `seed`.
fn candidate_hash(seed: u64, id: u64) -> u64 {
    mix(seed ^ mix(id.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
}

/// Independent draw number `k` from a candidate's hash.
fn draw(base: u64, k: u64) -> u64 {
    mix(base ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn per_million(r: u64) -> u32 {
    (r % 1_000_000) as u32
}

fn log_normal_draw(r: u64, median: f64, sigma: f64) -> f64 {
    let u1 = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (mix(r) >> 11) as f64 / (1u64 << 53) as f64;
    log_normal(median, sigma, u1, u2)
}

/// Writes the goal-state and diagnostics text of candidate `id` with
/// `outcome` (its [`fate`] under `seed`) into `goals` and `diagnostics`
/// (appended; exactly `outcome.goals_bytes` and
/// `outcome.diagnostics_bytes` bytes): Lean-like goal states and messages,
/// deterministic from seed and id. The worker's rows carry exactly this
/// text.
pub fn render(seed: u64, id: u64, outcome: &Outcome, goals: &mut String, diagnostics: &mut String) {
    let mut state = draw(candidate_hash(seed, id), 7);
    let start = goals.len();
    render_goals(
        &mut state,
        outcome.status,
        start + outcome.goals_bytes,
        goals,
    );
    fit(goals, start + outcome.goals_bytes);
    let start = diagnostics.len();
    render_diagnostics(
        &mut state,
        id,
        outcome.status,
        start + outcome.diagnostics_bytes,
        diagnostics,
    );
    fit(diagnostics, start + outcome.diagnostics_bytes);
}

const CASES: [&str; 10] = [
    "zero", "succ", "nil", "cons", "inl", "inr", "h.left", "h.right", "mk", "intro",
];
const VARIABLES: [&str; 10] = [
    "n m k : ℕ",
    "a b c : ℤ",
    "x y : ℝ",
    "α : Type u_1",
    "l l₁ l₂ : List α",
    "s t : Set α",
    "f g : α → β",
    "G : Type u_2",
    "inst✝ : Group G",
    "ε δ : ℝ",
];
const HYPOTHESES: [(&str, &str); 12] = [
    ("h", "n ≤ m"),
    ("ih", "∀ (k : ℕ), k + n = n + k"),
    ("hε", "0 < ε"),
    ("hx", "x ∈ s"),
    ("h₁", "a ∣ b"),
    ("hf", "Continuous f"),
    ("this", "l₁.length = l₂.length"),
    ("hab", "a < b"),
    ("H", "∀ x ∈ s, f x = g x"),
    ("hn", "0 < n"),
    ("hst", "s ⊆ t"),
    ("hg", "Function.Injective g"),
];
const GOALS: [&str; 12] = [
    "∀ (n : ℕ), n + 0 = n",
    "n + m = m + n",
    "a * (b + c) = a * b + a * c",
    "2 * x * y ≤ x ^ 2 + y ^ 2",
    "(l₁ ++ l₂).length = l₁.length + l₂.length",
    "s ∩ t ⊆ s",
    "∃ δ > 0, ∀ (y : ℝ), |y - x| < δ → |f y - f x| < ε",
    "Function.Injective (g ∘ f)",
    "a ^ n ∣ b ^ n",
    "List.reverse (List.reverse l) = l",
    "∑ i ∈ Finset.range (n + 1), i = n * (n + 1) / 2",
    "Nat.Prime p → p ∣ a * b → p ∣ a ∨ p ∣ b",
];

fn pick<T: Copy>(items: &[T], r: u64) -> T {
    items[(r % items.len() as u64) as usize]
}

/// Goal blocks until `out` reaches `target` bytes.
fn render_goals(state: &mut u64, status: Status, target: usize, out: &mut String) {
    if status == Status::Closed {
        out.push_str("goals accomplished\n\n");
    }
    let mut case = 0u64;
    while out.len() < target {
        *state = mix(*state);
        let r = *state;
        case += 1;
        let _ = writeln!(out, "case {}_{case}", pick(&CASES, r));
        for i in 0..1 + (r >> 8) % 2 {
            out.push_str(pick(&VARIABLES, r >> (12 + 4 * i)));
            out.push('\n');
        }
        for i in 0..1 + (r >> 20) % 3 {
            let (name, ty) = pick(&HYPOTHESES, r >> (24 + 4 * i));
            let _ = writeln!(out, "{name}_{} : {ty}", (r >> (40 + 2 * i)) % 4);
        }
        let _ = writeln!(out, "⊢ {}\n", pick(&GOALS, r >> 48));
    }
}

/// Messages until `out` reaches `target` bytes: one that says how the
/// check ended, then linter, trace and tactic noise.
fn render_diagnostics(state: &mut u64, id: u64, status: Status, target: usize, out: &mut String) {
    *state = mix(*state);
    let r = *state;
    let (line, col) = (1 + r % 400, (r >> 16) & 63);
    let file = format!("Candidate{id}.lean");
    let _ = match status {
        Status::Closed => writeln!(out, "{file}:{line}:{col}: info: goals accomplished"),
        Status::Progressed => writeln!(
            out,
            "{file}:{line}:{col}: error: unsolved goals\n⊢ {}",
            pick(&GOALS, r >> 24)
        ),
        Status::Failed => writeln!(
            out,
            "{file}:{line}:{col}: error: type mismatch\n  h\nhas type\n  {} : Prop\nbut is expected to have type\n  {} : Prop",
            pick(&HYPOTHESES, r >> 24).1,
            pick(&GOALS, r >> 32)
        ),
        Status::Timeout => writeln!(
            out,
            "{file}:{line}:{col}: error: (deterministic) timeout at `whnf`, maximum number of heartbeats (200000) has been reached\nUse `set_option maxHeartbeats <num>` to set the limit."
        ),
    };
    while out.len() < target {
        *state = mix(*state);
        let r = *state;
        let (line, col) = (1 + r % 400, (r >> 16) & 63);
        // A closed proof has no errors: its noise is warnings and traces.
        let kinds = if status == Status::Closed { 3 } else { 4 };
        let _ = match ((r >> 32) & 3) % kinds {
            0 => writeln!(
                out,
                "{file}:{line}:{col}: warning: unused variable `h_{}`\nnote: this linter can be disabled with `set_option linter.unusedVariables false`",
                (r >> 40) & 7
            ),
            1 => writeln!(
                out,
                "{file}:{line}:{col}: warning: declaration uses 'sorry'"
            ),
            2 => writeln!(
                out,
                "{file}:{line}:{col}: info: [Meta.synthInstance] ✅️ {}",
                pick(&VARIABLES, r >> 40)
            ),
            _ => writeln!(
                out,
                "{file}:{line}:{col}: error: linarith failed to find a contradiction\n⊢ False"
            ),
        };
    }
}

/// Cuts `text` to `len` bytes at a character boundary and pads it with
/// spaces to exactly `len`.
fn fit(text: &mut String, len: usize) {
    let mut cut = len.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    while text.len() < len {
        text.push(' ');
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(f: Fate) -> Outcome {
        match f {
            Fate::Result(outcome) => outcome,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    #[test]
    fn fate_is_a_pure_function_of_seed_and_id() {
        let rates = Rates::default().with_failure_rates(50_000, 50_000);
        let a: Vec<Fate> = (0..5000).map(|id| fate(7, id, &rates)).collect();
        let b: Vec<Fate> = (0..5000).map(|id| fate(7, id, &rates)).collect();
        assert_eq!(a, b);
        let other: Vec<Fate> = (0..5000).map(|id| fate(8, id, &rates)).collect();
        let same = a.iter().zip(&other).filter(|(x, y)| x == y).count();
        assert!(same < 50, "{same} of 5000 fates equal under another seed");
        // Order of evaluation does not matter.
        for id in (0..5000).rev().step_by(97) {
            assert_eq!(fate(7, id, &rates), a[id as usize]);
        }
    }

    #[test]
    fn statuses_follow_the_distribution() {
        let rates = Rates::default();
        let n = 200_000u64;
        let mut counts = [0u64; 4];
        for id in 0..n {
            let o = outcome(fate(3, id, &rates));
            counts[Status::ALL.iter().position(|&s| s == o.status).unwrap()] += 1;
            if o.status == Status::Timeout {
                assert_eq!(o.work_us, rates.budget_ms * 1000);
            } else {
                assert!(o.work_us <= rates.budget_ms * 1000);
            }
        }
        for (count, expected) in counts.iter().zip([0.40, 0.30, 0.25, 0.05]) {
            let share = *count as f64 / n as f64;
            assert!((share - expected).abs() < 0.005, "{counts:?}");
        }
        // Work within budget averages about `work_us`.
        let (sum, k) = (0..n)
            .map(|id| outcome(fate(3, id, &rates)))
            .filter(|o| o.status != Status::Timeout)
            .fold((0u64, 0u64), |(s, k), o| (s + o.work_us, k + 1));
        let mean = sum as f64 / k as f64;
        assert!((mean - DEFAULT_WORK_US as f64).abs() < 10.0, "mean {mean}");
    }

    #[test]
    fn hangs_and_blowups_come_at_their_rates() {
        let rates = Rates::default().with_failure_rates(10_000, 20_000);
        let n = 200_000u64;
        let (mut hangs, mut blowups) = (0u64, 0u64);
        for id in 0..n {
            match fate(11, id, &rates) {
                Fate::Hang => hangs += 1,
                Fate::BlowUp => blowups += 1,
                Fate::Result(_) => {}
            }
        }
        // Expected 2000 and 0.99 * 4000 = 3960.
        assert!((1800..2200).contains(&hangs), "{hangs}");
        assert!((3600..4300).contains(&blowups), "{blowups}");
        let none = Rates::default();
        assert!((0..n).all(|id| matches!(fate(11, id, &none), Fate::Result(_))));
        let all = Rates::default().with_failure_rates(1_000_000, 0);
        assert!((0..1000).all(|id| fate(11, id, &all) == Fate::Hang));
        let all = Rates::default().with_failure_rates(0, 1_000_000);
        assert!((0..1000).all(|id| fate(11, id, &all) == Fate::BlowUp));
    }

    #[test]
    fn work_over_the_budget_is_a_timeout() {
        // Mean work 5 ms against a 2 ms budget: most candidates time out.
        let rates = Rates::default().with_work_us(5000).with_budget_ms(2);
        let outcomes: Vec<Outcome> = (0..10_000).map(|id| outcome(fate(1, id, &rates))).collect();
        let timeouts = outcomes
            .iter()
            .filter(|o| o.status == Status::Timeout)
            .count();
        assert!(timeouts > 8000, "{timeouts}");
        assert!(outcomes.iter().all(|o| o.work_us <= 2000));
        // The status draw is the same as with an ample budget where the
        // work fits.
        let ample = Rates::default().with_work_us(5000).with_budget_ms(1000);
        for (id, o) in outcomes.iter().enumerate() {
            if o.status != Status::Timeout {
                assert_eq!(outcome(fate(1, id as u64, &ample)).status, o.status);
            }
        }
    }

    #[test]
    fn texts_have_their_sizes_and_look_like_lean() {
        let rates = Rates::default();
        let mut sizes = Vec::new();
        for id in 0..3000 {
            let o = outcome(fate(5, id, &rates));
            let (mut goals, mut diagnostics) = (String::new(), String::new());
            render(5, id, &o, &mut goals, &mut diagnostics);
            assert_eq!(goals.len(), o.goals_bytes);
            assert_eq!(diagnostics.len(), o.diagnostics_bytes);
            assert!((MIN_GOALS_BYTES..=MAX_GOALS_BYTES).contains(&goals.len()));
            assert!((MIN_DIAGNOSTICS_BYTES..=MAX_DIAGNOSTICS_BYTES).contains(&diagnostics.len()));
            assert!(goals.contains('⊢'), "{goals}");
            assert!(diagnostics.starts_with(&format!("Candidate{id}.lean:")));
            let (mut again, mut again_d) = (String::new(), String::new());
            render(5, id, &o, &mut again, &mut again_d);
            assert_eq!(
                (goals.as_str(), diagnostics.as_str()),
                (again.as_str(), again_d.as_str())
            );
            sizes.push(goals.len() + diagnostics.len());
        }
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((1200..3000).contains(&median), "median {median}");
        assert!(sizes[0] < 600, "smallest {}", sizes[0]);
        assert!(
            *sizes.last().unwrap() > 16 << 10,
            "largest {}",
            sizes.last().unwrap()
        );
        assert!(*sizes.last().unwrap() <= 64 << 10);
    }

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
