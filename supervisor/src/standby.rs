//! Work a worker does off the path of its next request: tearing down a
//! child that is gone (its ring's pages are freed, its drain thread joined,
//! the watchdog let go of it) and creating the ring of the next child in
//! advance. One thread per worker, started on first use; dropping the
//! [`Standby`] finishes every queued job before it returns, so nothing
//! outlives the worker.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use shm_proto::{RingConfig, RingMemory};

use crate::session::Session;

enum Job {
    Retire(Box<Session>),
    PrepareRing(RingConfig),
}

/// The worker's background helper.
#[derive(Default)]
pub(crate) struct Standby {
    started: Option<Started>,
}

struct Started {
    jobs: Sender<Job>,
    thread: JoinHandle<()>,
    prepared: Arc<Mutex<Option<RingMemory>>>,
}

impl Standby {
    /// Tears `session` down in the background. Falls back to dropping it
    /// here if no thread can be started.
    pub(crate) fn retire(&mut self, session: Session) {
        let job = Job::Retire(Box::new(session));
        if let Some(job) = self.send(job)
            && let Job::Retire(session) = job
        {
            drop(session);
        }
    }

    /// Creates a ring for `config` in the background, for [`Standby::take_ring`].
    pub(crate) fn prepare_ring(&mut self, config: RingConfig) {
        let _ = self.send(Job::PrepareRing(config));
    }

    /// The prepared ring, if it is ready and made for `generation`.
    pub(crate) fn take_ring(&mut self, generation: u64) -> Option<RingMemory> {
        let started = self.started.as_ref()?;
        let mut slot = started.prepared.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(ring) if ring.generation() == generation => Some(ring),
            // Made for a generation that went to someone else (a spare).
            _ => None,
        }
    }

    /// Queues `job`; gives it back if there is no thread to run it.
    fn send(&mut self, job: Job) -> Option<Job> {
        if self.started.is_none() {
            let (jobs, queue) = mpsc::channel();
            let prepared = Arc::new(Mutex::new(None));
            let slot = Arc::clone(&prepared);
            let thread = std::thread::Builder::new()
                .name("ringworker-standby".into())
                .spawn(move || run(queue, &slot));
            match thread {
                Ok(thread) => {
                    self.started = Some(Started {
                        jobs,
                        thread,
                        prepared,
                    })
                }
                Err(_) => return Some(job),
            }
        }
        let started = self.started.as_ref()?;
        started.jobs.send(job).err().map(|e| e.0)
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Some(Started { jobs, thread, .. }) = self.started.take() {
            drop(jobs);
            let _ = thread.join();
        }
    }
}

/// How long a teardown waits for the replacement's start to finish (the
/// next `PrepareRing`, sent once it is ready) before it runs anyway.
const RETIRE_AFTER: Duration = Duration::from_millis(5);

/// Runs jobs in order, except that teardowns wait until the queue is empty
/// and the replacement has started (its `PrepareRing` came) or
/// [`RETIRE_AFTER`] passed: the next child's start and ring are needed
/// sooner than the last child's pages are freed, and a teardown running
/// at once would take CPU from the start it was moved out of the way of.
fn run(queue: Receiver<Job>, prepared: &Mutex<Option<RingMemory>>) {
    // Background work: `SCHED_BATCH` keeps this thread's share of the CPU
    // (the next ring must be ready in time) but it does not preempt the
    // request thread when the ring is asked for at the end of a start
    // (this thread only; a failure leaves the default policy).
    let _ = shm_proto::sched::batch_current_thread();
    let mut retired: Vec<Box<Session>> = Vec::new();
    let mut started_since = false;
    loop {
        let job = match queue.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Empty) if !retired.is_empty() && started_since => {
                retired.clear();
                continue;
            }
            Err(TryRecvError::Empty) if !retired.is_empty() => {
                match queue.recv_timeout(RETIRE_AFTER) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        retired.clear();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            Err(TryRecvError::Empty) => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(TryRecvError::Disconnected) => return,
        };
        match job {
            Job::Retire(session) => {
                retired.push(session);
                started_since = false;
            }
            Job::PrepareRing(config) => {
                started_since = true;
                if let Ok(ring) = RingMemory::create(&config) {
                    *prepared.lock().unwrap_or_else(|e| e.into_inner()) = Some(ring);
                }
            }
        }
    }
}
