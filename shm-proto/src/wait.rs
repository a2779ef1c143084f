//! How a side waits for the other: spin briefly, then sleep on a shared futex.

use std::time::Duration;

use crate::error::RingError;
use crate::sync::AtomicU32;

/// Tuning of the spin-then-sleep wait used by both halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitStrategy {
    /// How long to spin (re-reading the peer's index) before announcing sleep.
    /// Covers the short gaps of a busy stream without any syscall.
    pub spin: Duration,
    /// Longest single futex sleep. Sleeps are sliced so that closed/poisoned
    /// state and deadlines are noticed even if a wake-up is never sent (a
    /// dead peer sends none).
    pub max_sleep: Duration,
    /// Consumer only: how long a sleep while the producer streams may wait
    /// for the producer's next batch before asking it to publish at once
    /// (see the consumer's *Adaptive waiting*). Zero: never lazy.
    pub lazy: Duration,
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy {
            spin: Duration::from_micros(50),
            max_sleep: Duration::from_millis(100),
            lazy: Duration::from_millis(1),
        }
    }
}

impl WaitStrategy {
    /// A strategy that spins for `spin`, then sleeps in slices of at most `max_sleep`.
    pub const fn new(spin: Duration, max_sleep: Duration) -> Self {
        WaitStrategy {
            spin,
            max_sleep,
            lazy: Duration::from_millis(1),
        }
    }

    /// Sets the consumer's lazy-sleep window (zero: never lazy).
    #[must_use]
    pub const fn with_lazy(mut self, lazy: Duration) -> Self {
        self.lazy = lazy;
        self
    }

    /// Sets the spin time.
    #[must_use]
    pub const fn with_spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Sets the longest single futex sleep.
    #[must_use]
    pub const fn with_max_sleep(mut self, max_sleep: Duration) -> Self {
        self.max_sleep = max_sleep;
        self
    }
}

/// Sleeps `duration` without any futex: the consumer's back-off after
/// repeated spurious wake-ups, which a peer can neither shorten nor cut.
#[cfg(not(loom))]
pub(crate) fn backoff_sleep(duration: std::time::Duration) {
    std::thread::sleep(duration);
}

/// Under loom, time does not exist: a back-off is a yield.
#[cfg(loom)]
pub(crate) fn backoff_sleep(_duration: std::time::Duration) {
    loom::thread::yield_now();
}

/// What ended a futex sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wakeup {
    /// `FUTEX_WAKE`, a changed word (someone reset it before we slept) or a signal.
    Woken,
    /// The timeout elapsed (never under loom, whose sleeps have no timeout).
    #[cfg_attr(loom, allow(dead_code))]
    TimedOut,
}

/// Sleeps while `word == expected`, for at most `timeout`. The word lives in
/// shared memory, so the futex is a shared one (no `FUTEX_PRIVATE_FLAG`):
/// the kernel keys it by the backing page, not by this process's address.
#[cfg(not(loom))]
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Duration,
) -> Result<Wakeup, RingError> {
    use rustix::io::Errno;
    use rustix::thread::futex;
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match futex::wait(word, futex::Flags::empty(), expected, Some(&ts)) {
        Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(Wakeup::Woken),
        Err(Errno::TIMEDOUT) => Ok(Wakeup::TimedOut),
        Err(e) => Err(RingError::os("futex_wait", e)),
    }
}

/// Wakes every sleeper on `word` (in any process mapping the same page).
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: &AtomicU32) {
    use rustix::thread::futex;
    // A failed wake can only mean a bad address, which a live mapping rules
    // out; the sleeper's sliced timeout covers it regardless.
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// Under loom there is no kernel. A sleeper blocks (yielding, so the model
/// runs the other threads) until the word no longer holds `expected`: every
/// waker in this crate resets the word before `futex_wake`, so this is "sleep
/// until woken", and a lost wake-up shows up as a thread that never gets out
/// (loom fails the model on its branch limit). The timeout slicing of the
/// real sleep is deliberately not modelled: it would hide lost wake-ups.
#[cfg(loom)]
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    _timeout: Duration,
) -> Result<Wakeup, RingError> {
    while word.load(crate::sync::Ordering::Relaxed) == expected {
        loom::thread::yield_now();
    }
    Ok(Wakeup::Woken)
}

#[cfg(loom)]
pub(crate) fn futex_wake(_word: &AtomicU32) {}
