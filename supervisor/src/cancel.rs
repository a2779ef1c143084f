//! Cancellation of a running request from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use shm_proto::RingMemory;

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
    /// Rings of the requests currently running under this token, woken on
    /// cancel so a consumer asleep on an idle ring notices at once.
    rings: Mutex<Vec<Weak<RingMemory>>>,
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
        for ring in rings.iter().filter_map(Weak::upgrade) {
            ring.wake_consumer();
        }
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        // Pairs with the Release store in `cancel`.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    pub(crate) fn watch(&self, ring: &Arc<RingMemory>) {
        let mut rings = self.inner.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.retain(|w| w.strong_count() > 0);
        rings.push(Arc::downgrade(ring));
    }

    pub(crate) fn unwatch(&self, ring: &Arc<RingMemory>) {
        let mut rings = self.inner.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(ring)));
    }
}
