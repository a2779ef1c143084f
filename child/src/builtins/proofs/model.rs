//! What happens to a candidate: its [`Fate`] and the hashes every draw
//! about it comes from, pure functions of the batch's seed and the
//! candidate's id so a supervisor predicts what the worker does.

use super::{
    DEFAULT_BUDGET_MS, DEFAULT_WORK_US, MAX_DIAGNOSTICS_BYTES, MAX_GOALS_BYTES,
    MIN_DIAGNOSTICS_BYTES, MIN_GOALS_BYTES, Status,
};
use crate::builtins::synthetic::{log_normal, mix};

/// The parameters of a batch that decide its candidates' fates
/// ([`ProofBatch::rates`](super::ProofBatch::rates)).
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
pub(super) fn candidate_hash(seed: u64, id: u64) -> u64 {
    mix(seed ^ mix(id.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
}

/// Independent draw number `k` from a candidate's hash.
pub(super) fn draw(base: u64, k: u64) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::proofs::ProofBatch;

    fn outcome(f: Fate) -> Outcome {
        match f {
            Fate::Result(outcome) => outcome,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    #[test]
    fn fate_is_a_pure_function_of_seed_and_id() {
        let rates = ProofBatch::new(Vec::new())
            .with_failure_rates(50_000, 50_000)
            .rates();
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
        let rates = ProofBatch::new(Vec::new())
            .with_failure_rates(10_000, 20_000)
            .rates();
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
        let all = ProofBatch::new(Vec::new())
            .with_failure_rates(1_000_000, 0)
            .rates();
        assert!((0..1000).all(|id| fate(11, id, &all) == Fate::Hang));
        let all = ProofBatch::new(Vec::new())
            .with_failure_rates(0, 1_000_000)
            .rates();
        assert!((0..1000).all(|id| fate(11, id, &all) == Fate::BlowUp));
    }

    #[test]
    fn work_over_the_budget_is_a_timeout() {
        // Mean work 5 ms against a 2 ms budget: most candidates time out.
        let rates = ProofBatch::new(Vec::new())
            .with_work_us(5000)
            .with_budget_ms(2)
            .rates();
        let outcomes: Vec<Outcome> = (0..10_000).map(|id| outcome(fate(1, id, &rates))).collect();
        let timeouts = outcomes
            .iter()
            .filter(|o| o.status == Status::Timeout)
            .count();
        assert!(timeouts > 8000, "{timeouts}");
        assert!(outcomes.iter().all(|o| o.work_us <= 2000));
        // The status draw is the same as with an ample budget where the
        // work fits.
        let ample = ProofBatch::new(Vec::new())
            .with_work_us(5000)
            .with_budget_ms(1000)
            .rates();
        for (id, o) in outcomes.iter().enumerate() {
            if o.status != Status::Timeout {
                assert_eq!(outcome(fate(1, id as u64, &ample)).status, o.status);
            }
        }
    }
}
