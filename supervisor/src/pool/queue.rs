//! The pool's bounded job queue: one `Mutex` and two `Condvar`s.
//!
//! Pool workers sleep on `not_empty` and a `push` wakes one at once, so a
//! worker freed while jobs wait takes the next job without any polling.
//! A blocking `push` sleeps on `not_full` until a worker takes a job (or a
//! job leaves the queue otherwise), up to its deadline. Taking a job off
//! the queue and marking it running happen under the one lock, as does
//! removing an expired job, so a job is never both taken and expired.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::Error;

use super::job::JobShared;

pub(crate) struct Queue {
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
    depth: usize,
    /// Accepted jobs that no worker took within the queue timeout.
    expired: AtomicU64,
}

struct QueueState {
    jobs: VecDeque<Arc<JobShared>>,
    closed: bool,
    max_seen: usize,
}

impl Queue {
    pub(crate) fn new(depth: usize) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                closed: false,
                max_seen: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            depth,
            expired: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `job`. A full queue fails at once with [`Error::QueueFull`]
    /// unless `block`, in which case it waits for room until `deadline`
    /// ([`Error::QueueTimeout`] then). A closed queue is [`Error::PoolClosed`].
    pub(crate) fn push(
        &self,
        job: Arc<JobShared>,
        block: bool,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(Error::PoolClosed);
            }
            if state.jobs.len() < self.depth {
                break;
            }
            if !block {
                return Err(Error::QueueFull { depth: self.depth });
            }
            match deadline {
                None => state = self.not_full.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::QueueTimeout {
                            waited: job.submitted.elapsed(),
                        });
                    }
                    state = self
                        .not_full
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        state.jobs.push_back(job);
        state.max_seen = state.max_seen.max(state.jobs.len());
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the next job and marks it running; blocks while the queue is
    /// empty. `None` once the queue is closed.
    pub(crate) fn pop(&self) -> Option<Arc<JobShared>> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                job.start();
                drop(state);
                self.not_full.notify_one();
                return Some(job);
            }
            state = self
                .not_empty
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes `job` off the queue if it is still there; true if it was.
    pub(crate) fn remove(&self, job: &JobShared) -> bool {
        let mut state = self.lock();
        let Some(at) = state.jobs.iter().position(|j| std::ptr::eq(&**j, job)) else {
            return false;
        };
        state.jobs.remove(at);
        drop(state);
        self.not_full.notify_one();
        true
    }

    /// Closes the queue: no more pushes, workers' `pop` returns `None`;
    /// returns the jobs that were still waiting.
    pub(crate) fn close(&self) -> Vec<Arc<JobShared>> {
        let mut state = self.lock();
        state.closed = true;
        let left: Vec<_> = state.jobs.drain(..).collect();
        drop(state);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        left
    }

    /// Counts a job that expired in the queue.
    pub(crate) fn note_expired(&self) {
        self.expired.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs that expired in the queue so far.
    pub(crate) fn expired(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// Jobs waiting now, and the most that ever waited.
    pub(crate) fn depths(&self) -> (usize, usize) {
        let state = self.lock();
        (state.jobs.len(), state.max_seen)
    }
}
