//! The pool's total memory budget, enforced by the watchdog.
//!
//! Every pooled worker owns one slot. Each `RssAnon` sample the watchdog
//! takes of a pooled child (it samples only while a request runs) is stored
//! in the child's slot; a slot is cleared when the request ends and when the
//! child is reaped, so an idle or dead child never counts. When the sum of
//! the slots passes the budget, the slot with the largest sample is
//! condemned: if that is the child just sampled it is killed at once,
//! otherwise at its own next sample (within one sample interval). Its
//! request ends with [`Error::PoolMemoryBudget`](crate::Error::PoolMemoryBudget).

use std::sync::{Arc, Mutex, MutexGuard};

/// The shared budget: the latest sample per slot.
#[derive(Debug)]
pub(crate) struct PoolBudget {
    total: u64,
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    rss_anon: u64,
    condemned: bool,
}

/// What the budget says about one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BudgetCheck {
    /// Within the budget, or another child is the one to go.
    Keep,
    /// This child must be killed: the pool was at `sum` bytes.
    Kill { sum: u64 },
}

impl PoolBudget {
    pub(crate) fn new(total: u64, slots: usize) -> Arc<PoolBudget> {
        Arc::new(PoolBudget {
            total,
            slots: Mutex::new(vec![Slot::default(); slots]),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The budget in bytes.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Records `rss_anon` as slot `slot`'s latest sample and judges it.
    pub(crate) fn record(&self, slot: usize, rss_anon: u64) -> BudgetCheck {
        let mut slots = self.lock();
        let Some(mine) = slots.get_mut(slot) else {
            return BudgetCheck::Keep;
        };
        mine.rss_anon = rss_anon;
        let sum: u64 = slots.iter().map(|s| s.rss_anon).sum();
        if slots[slot].condemned {
            slots[slot] = Slot::default();
            return BudgetCheck::Kill { sum };
        }
        if sum <= self.total || slots.iter().any(|s| s.condemned) {
            // Within budget, or a victim is already chosen and will go at
            // its next sample.
            return BudgetCheck::Keep;
        }
        // The largest sample goes; ties go to the lowest slot.
        let victim = slots
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| a.rss_anon.cmp(&b.rss_anon).then(ib.cmp(ia)))
            .map_or(slot, |(i, _)| i);
        if victim == slot {
            slots[slot] = Slot::default();
            BudgetCheck::Kill { sum }
        } else {
            slots[victim].condemned = true;
            BudgetCheck::Keep
        }
    }

    /// Slot `slot` no longer counts (its request ended, its child died).
    pub(crate) fn clear(&self, slot: usize) {
        if let Some(s) = self.lock().get_mut(slot) {
            *s = Slot::default();
        }
    }

    /// The sum of the latest samples.
    pub(crate) fn current(&self) -> u64 {
        self.lock().iter().map(|s| s.rss_anon).sum()
    }
}

/// One pooled worker's place in the budget, carried in its
/// [`WorkerConfig`](crate::WorkerConfig) to every child it starts.
#[derive(Debug, Clone)]
pub(crate) struct BudgetSlot {
    pub(crate) budget: Arc<PoolBudget>,
    pub(crate) slot: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_goes_when_the_sum_is_over() {
        let budget = PoolBudget::new(100, 3);
        assert_eq!(budget.record(0, 30), BudgetCheck::Keep);
        assert_eq!(budget.record(1, 60), BudgetCheck::Keep);
        // 30 + 60 + 20 = 110 > 100: slot 1 (60) is the victim, not slot 2.
        assert_eq!(budget.record(2, 20), BudgetCheck::Keep);
        assert_eq!(
            budget.record(0, 30),
            BudgetCheck::Keep,
            "one victim at a time"
        );
        assert_eq!(budget.record(1, 61), BudgetCheck::Kill { sum: 111 });
        assert_eq!(budget.current(), 50);
        assert_eq!(budget.record(2, 20), BudgetCheck::Keep);
        // The sampled child itself is the largest.
        assert_eq!(budget.record(2, 80), BudgetCheck::Kill { sum: 110 });
        budget.clear(0);
        assert_eq!(budget.current(), 0);
    }
}
