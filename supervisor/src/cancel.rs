//! Cancellation of a running request from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use shm_proto::ConsumerRemote;

/// Cancels the request it is passed to. Clone it to another thread and call
/// [`CancelToken::cancel`]: the supervisor sets the ring's cancel word (the
/// child sees it without a syscall), waits up to the cancel grace for the
/// child to end the request, and kills and respawns a child that does not.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Rings of the requests currently running under this token (between
    /// `watch` and `unwatch`), woken on cancel so a consumer asleep on an idle
    /// ring notices at once.
    rings: Mutex<Vec<ConsumerRemote>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation (idempotent).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        let rings = self.inner.rings.lock().unwrap_or_else(|e| e.into_inner());
        for ring in rings.iter() {
            ring.wake();
        }
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        // Pairs with the Release store in `cancel`.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    pub(crate) fn watch(&self, ring: &ConsumerRemote) {
        let mut rings = self.inner.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.push(ring.clone());
    }

    pub(crate) fn unwatch(&self, ring: &ConsumerRemote) {
        let mut rings = self.inner.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.retain(|r| !r.same_ring(ring));
    }
}
