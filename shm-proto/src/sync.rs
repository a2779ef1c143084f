//! Atomic types used for ring words: std's in normal builds, loom's under
//! `--cfg loom` so the index protocol can be model-checked with the very code
//! that runs in production.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

/// A CPU relaxation hint in a spin loop (a loom yield under the model checker,
/// so spinning threads let the others progress).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
