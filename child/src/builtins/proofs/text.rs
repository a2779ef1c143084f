//! The Lean-like goal-state and diagnostics text of a result, deterministic
//! from seed and id so a supervisor can check the bytes it receives.

use std::fmt::Write as _;

use super::Status;
use super::model::{Outcome, candidate_hash, draw};
use crate::builtins::synthetic::mix;

/// Writes the goal-state and diagnostics text of candidate `id` with
/// `outcome` (its [`fate`](super::fate) under `seed`) into `goals` and
/// `diagnostics` (appended; exactly `outcome.goals_bytes` and
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::proofs::{
        Fate, MAX_DIAGNOSTICS_BYTES, MAX_GOALS_BYTES, MIN_DIAGNOSTICS_BYTES, MIN_GOALS_BYTES,
        Rates, fate,
    };

    #[test]
    fn texts_have_their_sizes_and_look_like_lean() {
        let rates = Rates::default();
        let mut sizes = Vec::new();
        for id in 0..3000 {
            let Fate::Result(o) = fate(5, id, &rates) else {
                panic!("candidate {id} has no result");
            };
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
}
