//! Cancellation of a running request from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shm_proto::ConsumerRemote;

use crate::watchdog::Watch;

/// Cancels the request it is passed to. Clone it to another thread and call
/// [`CancelToken::cancel`]: the ring's cancel word is set at once (the child
/// sees it without a syscall) and the watchdog starts the cancel grace; a
/// child that has not ended the request when it runs out is killed, even if
/// the request's sink is blocked meanwhile.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Requests currently running under this token (between `watch` and
    /// `unwatch`).
    running: Mutex<Vec<Running>>,
    /// Tokens cancelled with this one (a pool's per-job tokens).
    forwards: Mutex<Vec<CancelToken>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

struct Running {
    ring: ConsumerRemote,
    watch: Arc<Watch>,
    request: u64,
    grace: Duration,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation (idempotent).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        for run in running.iter() {
            run.ring.request_cancel(run.request);
            run.watch.start_cancel_grace(run.grace);
            run.ring.wake();
        }
        drop(running);
        let forwards = std::mem::take(&mut *lock(&self.inner.forwards));
        for token in forwards {
            token.cancel();
        }
    }

    /// Cancels `other` when this token is cancelled (at once if it is).
    pub(crate) fn forward_to(&self, other: &CancelToken) {
        let mut forwards = lock(&self.inner.forwards);
        if self.is_cancelled() {
            drop(forwards);
            other.cancel();
        } else {
            forwards.push(other.clone());
        }
    }

    /// Undoes [`CancelToken::forward_to`].
    pub(crate) fn stop_forwarding(&self, other: &CancelToken) {
        lock(&self.inner.forwards).retain(|t| !Arc::ptr_eq(&t.inner, &other.inner));
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        // Pairs with the Release store in `cancel`.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    pub(crate) fn watch(
        &self,
        ring: &ConsumerRemote,
        watch: &Arc<Watch>,
        request: u64,
        grace: Duration,
    ) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.push(Running {
            ring: ring.clone(),
            watch: Arc::clone(watch),
            request,
            grace,
        });
    }

    pub(crate) fn unwatch(&self, ring: &ConsumerRemote) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|r| !r.ring.same_ring(ring));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
