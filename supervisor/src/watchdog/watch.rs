//! The liveness state of one child, shared by the thread that owns the
//! child (its worker) and the watchdog thread: the armed deadlines, the
//! verdict when one passed, the exit status once reaped.
//!
//! The owner arms and disarms; the watchdog decides. Whatever it decides
//! (kill for a deadline or a limit, reap after a death), it records first,
//! then sets `attention`, then wakes the consumer sleeping on the child's
//! ring: a request thread checks `attention` at every batch boundary and
//! after every wait, so it learns of the event without a syscall and without
//! polling the clock.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use shm_proto::ConsumerRemote;

use crate::memory::{self, RssSample, Sampled};
use crate::pool::budget::{BudgetCheck, BudgetSlot};
use crate::process::Exit;

/// After the stop of a contained tree (SIGTERM to its shim), how long before
/// the worker is SIGKILLed directly (the shim then still reaps the rest),
/// and as long again before the shim itself is (its descendants may then
/// escape; logged).
const ESCALATE_AFTER: Duration = Duration::from_secs(2);

/// Why the watchdog killed a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The request passed its deadline.
    Timeout { after: Duration },
    /// No heartbeat and no records for the hang timeout.
    Hung { silent_for: Duration },
    /// The request was cancelled and did not end within the grace.
    CancelIgnored,
    /// Anonymous memory above the hard limit during a request.
    MemoryLimit { sample: RssSample, limit: u64 },
    /// The pool's total anonymous memory (`sum`) passed its budget during a
    /// request and this child had the largest sample.
    PoolBudget {
        sample: RssSample,
        sum: u64,
        budget: u64,
    },
    /// Idle for the policy's idle restart.
    Idle,
    /// Its owner asked (drop, cycle, a protocol breach found by the request
    /// thread): not a deadline.
    Stopped,
}

/// How the memory of this child is watched.
#[derive(Debug, Clone)]
pub(crate) struct RssConfig {
    pub(crate) soft: Option<u64>,
    pub(crate) hard: Option<u64>,
    pub(crate) interval: Duration,
    /// The pool budget this child's samples count against, if pooled.
    pub(crate) pool: Option<BudgetSlot>,
}

impl RssConfig {
    /// Whether anything needs samples during a request.
    fn samples(&self) -> bool {
        self.hard.is_some() || self.soft.is_some() || self.pool.is_some()
    }

    /// This child's samples no longer count against the pool's budget.
    fn leave_pool(&self) {
        if let Some(pool) = &self.pool {
            pool.budget.clear(pool.slot);
        }
    }
}

/// The process a watch watches.
pub(crate) struct Watched {
    /// The spawned process (the containment shim when `contained`).
    pub(crate) pid: u32,
    pub(crate) pidfd: OwnedFd,
    /// The worker itself, for memory samples.
    pub(crate) worker_pid: u32,
    /// The worker's pidfd when it runs under a shim.
    pub(crate) worker_pidfd: Option<OwnedFd>,
    /// SIGTERM to `pid` stops the whole tree and the shim exits last.
    pub(crate) contained: bool,
    /// The worker leads its own process group (killed with it).
    pub(crate) own_group: bool,
}

/// Deadlines of the running request.
struct Armed {
    started: Instant,
    deadline: Option<Instant>,
    hang: Option<Duration>,
    /// Heartbeat and progress as of `life_seen`.
    beat: u64,
    progress: u64,
    life_seen: Instant,
    /// Next look at the heartbeat.
    next_life_check: Instant,
    /// Whether the cancel grace runs, and when it ends (`None` with the
    /// grace started: `Duration::MAX`, never).
    cancel_started: bool,
    cancel_deadline: Option<Instant>,
}

struct State {
    exit: Option<Exit>,
    verdict: Option<Verdict>,
    armed: Option<Armed>,
    idle_deadline: Option<Instant>,
    next_rss: Option<Instant>,
    last_rss: Option<RssSample>,
    soft_exceeded: bool,
    rss_samples: u64,
    rss_unavailable: u64,
    kill_sent: Option<Instant>,
    /// Escalation steps taken after `kill_sent` (0, 1: worker, 2: shim).
    escalated: u8,
    retired: bool,
}

/// One child under the watchdog.
pub(crate) struct Watch {
    process: Watched,
    /// The child's ring; `None` for a template, which has none (it is
    /// never armed: only its death and its stop matter).
    ring: Option<ConsumerRemote>,
    rss: RssConfig,
    /// Set (Release) after anything the request thread must react to was
    /// recorded in `state`: an exit, a verdict.
    attention: AtomicBool,
    /// Records the request thread moved; a sign of life like the heartbeat.
    progress: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
    /// The worker under the shim of a child forked from a warm template,
    /// found after its handshake (the template reports the shim's pid
    /// before the shim has forked the worker): overrides
    /// `process.worker_pid` / `worker_pidfd`.
    late_worker: OnceLock<(u32, OwnedFd)>,
    /// The pid a forked worker named in its handshake: `late_worker` is
    /// found from it when first needed (off the start-up path), and only
    /// while it is the shim's first child.
    expected_worker: OnceLock<u32>,
    /// `RssAnon` of a forked child at its handshake (see
    /// [`RssSample::inherited`]); 0 for exec'd children.
    inherited: AtomicU64,
}

impl Watch {
    pub(crate) fn new(process: Watched, ring: Option<ConsumerRemote>, rss: RssConfig) -> Watch {
        Watch {
            process,
            ring,
            rss,
            attention: AtomicBool::new(false),
            progress: AtomicU64::new(0),
            state: Mutex::new(State {
                exit: None,
                verdict: None,
                armed: None,
                idle_deadline: None,
                next_rss: None,
                last_rss: None,
                soft_exceeded: false,
                rss_samples: 0,
                rss_unavailable: 0,
                kill_sent: None,
                escalated: 0,
                retired: false,
            }),
            changed: Condvar::new(),
            late_worker: OnceLock::new(),
            expected_worker: OnceLock::new(),
            inherited: AtomicU64::new(0),
        }
    }

    fn heartbeat(&self) -> u64 {
        self.ring.as_ref().map_or(0, ConsumerRemote::heartbeat)
    }

    fn wake_ring(&self) {
        if let Some(ring) = &self.ring {
            ring.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid
    }

    pub(crate) fn worker_pid(&self) -> u32 {
        self.late_worker()
            .map_or(self.process.worker_pid, |(pid, _)| *pid)
    }

    /// Names the worker under this (forked) shim by the pid of its
    /// handshake; it is looked up in `/proc` and pinned when first needed
    /// ([`Watch::worker_pid`], the escalation, a memory sample), not on
    /// the start-up path. The first call wins.
    pub(crate) fn expect_worker(&self, pid: u32) {
        let _ = self.expected_worker.set(pid);
    }

    /// The worker under a forked shim: found (see `expect_worker`) if it
    /// is still the shim's first child, i.e. alive or a zombie the shim
    /// has not reaped, so that the pidfd names it.
    fn late_worker(&self) -> Option<&(u32, OwnedFd)> {
        if let Some(late) = self.late_worker.get() {
            return Some(late);
        }
        let expected = *self.expected_worker.get()?;
        let first_child = || shm_proto::shim_worker_pid(self.process.pid);
        if first_child() != Some(expected) {
            return None;
        }
        let pidfd = rustix::process::pidfd_open(
            Pid::from_raw(expected as i32)?,
            rustix::process::PidfdFlags::empty(),
        )
        .ok()?;
        // Still the shim's child now that it is pinned: the pidfd is its.
        if first_child() != Some(expected) {
            return None;
        }
        let _ = self.late_worker.set((expected, pidfd));
        self.late_worker.get()
    }

    /// Records the anonymous memory a child forked from a template has at
    /// its handshake: the template's pages, not limited.
    pub(crate) fn note_inherited_memory(&self) {
        if let Sampled::Sample(sample) = memory::sample(self.worker_pid()) {
            self.inherited.store(sample.rss_anon, Ordering::Relaxed);
        }
    }

    /// Whether the child is a containment shim.
    pub(crate) fn contained(&self) -> bool {
        self.process.contained
    }

    fn worker_pidfd(&self) -> Option<&OwnedFd> {
        self.late_worker()
            .map(|(_, fd)| fd)
            .or(self.process.worker_pidfd.as_ref())
    }

    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        self.process.pidfd.as_fd()
    }

    /// Whether an exit or a verdict is waiting to be looked at. One load.
    #[inline]
    pub(crate) fn attention(&self) -> bool {
        // Pairs with the Release store in `raise`.
        self.attention.load(Ordering::Acquire)
    }

    /// Counts records moved by the request thread (once per batch).
    #[inline]
    pub(crate) fn note_progress(&self, records: u32) {
        self.progress
            .fetch_add(u64::from(records), Ordering::Relaxed);
    }

    /// The exit status, once reaped, and the verdict, if the watchdog killed it.
    pub(crate) fn status(&self) -> (Option<Exit>, Option<Verdict>) {
        let state = self.lock();
        (state.exit, state.verdict)
    }

    pub(crate) fn exit(&self) -> Option<Exit> {
        self.lock().exit
    }

    /// Arms the deadlines of a request.
    pub(crate) fn arm(&self, timeout: Option<Duration>, hang: Option<Duration>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.idle_deadline = None;
        state.armed = Some(Armed {
            started: now,
            deadline: timeout.and_then(|t| now.checked_add(t)),
            hang,
            beat: self.heartbeat(),
            progress: self.progress.load(Ordering::Relaxed),
            life_seen: now,
            next_life_check: hang.map_or(now, |h| now + life_check_every(h)),
            cancel_started: false,
            cancel_deadline: None,
        });
        if self.rss.samples() {
            state.next_rss = Some(now + self.rss.interval);
        }
        drop(state);
        super::poke();
    }

    /// Disarms after a request; an idle restart, if any, counts from now.
    pub(crate) fn disarm(&self, idle_restart: Option<Duration>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.armed = None;
        state.next_rss = None;
        state.idle_deadline = idle_restart.and_then(|idle| now.checked_add(idle));
        drop(state);
        self.rss.leave_pool();
        if idle_restart.is_some() {
            super::poke();
        }
    }

    /// Starts the cancel grace of the running request (idempotent): from
    /// now on the watchdog kills the child if the request has not ended
    /// within `grace`, whatever the request thread is doing.
    pub(crate) fn start_cancel_grace(&self, grace: Duration) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(armed) = state.armed.as_mut()
            && !armed.cancel_started
        {
            armed.cancel_started = true;
            armed.cancel_deadline = now.checked_add(grace);
            drop(state);
            super::poke();
        }
    }

    /// Samples the worker's memory now (before a request); true if it is
    /// above the soft ceiling (now or in a sample taken since the last call).
    pub(crate) fn over_soft_ceiling(&self) -> bool {
        let Some(soft) = self.rss.soft else {
            return false;
        };
        let mut state = self.lock();
        if let Some(sample) = self.take_sample(&mut state)
            && sample.limited() > soft
        {
            state.soft_exceeded = true;
        }
        state.soft_exceeded
    }

    /// Memory samples taken and samples that could not be read.
    pub(crate) fn rss_counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.rss_samples, state.rss_unavailable)
    }

    /// Kills the child (its whole tree) on the owner's behalf.
    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        self.condemn(&mut state, Verdict::Stopped);
    }

    /// Waits until the child is reaped by the watchdog, at most `timeout`.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> Option<Exit> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        while state.exit.is_none() {
            let wait = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    deadline - now
                }
                None => Duration::from_secs(3600),
            };
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.exit
    }

    /// The owner is done with this child; the watchdog forgets it once reaped.
    pub(super) fn retire(&self) {
        self.lock().retired = true;
        super::poke();
    }

    /// Whether the watchdog can forget this watch.
    pub(super) fn finished(&self) -> bool {
        let state = self.lock();
        state.retired && state.exit.is_some()
    }

    /// Whether the watchdog has reaped the child.
    pub(crate) fn reaped(&self) -> bool {
        self.lock().exit.is_some()
    }

    /// The one reaping place: reaps the child if it has terminated. Run by
    /// the watchdog when the pidfd fires, and by an owner that saw the
    /// pidfd readable first and needs the status now.
    pub(crate) fn try_reap(&self) {
        let mut state = self.lock();
        if state.exit.is_some() {
            return;
        }
        // Under the state lock: `condemn` signals the process group only
        // while this has not happened, so a recycled pid is never hit.
        let status = rustix::process::waitid(
            WaitId::PidFd(self.process.pidfd.as_fd()),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        );
        let exit = match status {
            Ok(Some(status)) => match (status.exit_status(), status.terminating_signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(signal)) => Exit::Signal(signal),
                (None, None) => return,
            },
            Ok(None) => return,
            // ECHILD: reaped behind our back (a host calling `wait(-1)`).
            Err(_) => Exit::Code(-1),
        };
        state.exit = Some(exit);
        state.armed = None;
        state.idle_deadline = None;
        state.next_rss = None;
        self.rss.leave_pool();
        self.raise(state);
    }

    /// The nearest instant at which `tick` has something to do.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let state = self.lock();
        if state.exit.is_some() {
            return None;
        }
        if let Some(sent) = state.kill_sent {
            return (state.escalated < 2)
                .then(|| sent + ESCALATE_AFTER * (u32::from(state.escalated) + 1));
        }
        let mut due: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        };
        if let Some(armed) = &state.armed {
            consider(armed.deadline);
            consider(armed.cancel_deadline);
            consider(armed.hang.map(|_| armed.next_life_check));
            if self.rss.samples() {
                consider(state.next_rss);
            }
        } else {
            consider(state.idle_deadline);
        }
        due
    }

    /// Applies every deadline that has passed by `now`.
    pub(super) fn tick(&self, now: Instant) {
        let mut state = self.lock();
        if state.exit.is_some() {
            return;
        }
        if let Some(sent) = state.kill_sent {
            let step = state.escalated;
            if step < 2 && now >= sent + ESCALATE_AFTER * (u32::from(step) + 1) {
                state.escalated += 1;
                match (step, self.worker_pidfd()) {
                    (0, Some(worker)) => {
                        tracing::warn!(
                            pid = self.worker_pid(),
                            "worker not gone 2 s after its stop; SIGKILL"
                        );
                        let _ = rustix::process::pidfd_send_signal(worker, Signal::KILL);
                    }
                    _ => {
                        tracing::error!(
                            pid = self.process.pid,
                            "child not gone after its stop; SIGKILL to it (descendants may escape)"
                        );
                        let _ =
                            rustix::process::pidfd_send_signal(&self.process.pidfd, Signal::KILL);
                    }
                }
            }
            return;
        }
        let Some(armed) = state.armed.as_mut() else {
            if state.idle_deadline.is_some_and(|d| now >= d) {
                self.condemn(&mut state, Verdict::Idle);
            }
            return;
        };
        if let Some(deadline) = armed.deadline
            && now >= deadline
        {
            let after = deadline - armed.started;
            self.condemn(&mut state, Verdict::Timeout { after });
            return;
        }
        if armed.cancel_deadline.is_some_and(|d| now >= d) {
            self.condemn(&mut state, Verdict::CancelIgnored);
            return;
        }
        if let Some(hang) = armed.hang
            && now >= armed.next_life_check
        {
            let beat = self.heartbeat();
            let progress = self.progress.load(Ordering::Relaxed);
            if beat != armed.beat || progress != armed.progress {
                armed.beat = beat;
                armed.progress = progress;
                armed.life_seen = now;
            } else if now.duration_since(armed.life_seen) >= hang {
                let silent_for = now.duration_since(armed.life_seen);
                self.condemn(&mut state, Verdict::Hung { silent_for });
                return;
            }
            armed.next_life_check = now + life_check_every(hang);
        }
        if state.next_rss.is_some_and(|t| now >= t) {
            state.next_rss = Some(now + self.rss.interval);
            if let Some(sample) = self.take_sample(&mut state) {
                if let Some(limit) = self.rss.hard
                    && sample.limited() > limit
                {
                    self.condemn(&mut state, Verdict::MemoryLimit { sample, limit });
                    return;
                }
                if let Some(pool) = &self.rss.pool
                    && let BudgetCheck::Kill { sum } =
                        pool.budget.record(pool.slot, sample.limited())
                {
                    let budget = pool.budget.total();
                    self.condemn(
                        &mut state,
                        Verdict::PoolBudget {
                            sample,
                            sum,
                            budget,
                        },
                    );
                    return;
                }
                if self.rss.soft.is_some_and(|soft| sample.limited() > soft) {
                    state.soft_exceeded = true;
                }
            }
        }
    }

    fn take_sample(&self, state: &mut State) -> Option<RssSample> {
        match memory::sample(self.worker_pid()) {
            Sampled::Sample(mut sample) => {
                sample.inherited = self.inherited.load(Ordering::Relaxed);
                state.rss_samples += 1;
                state.last_rss = Some(sample);
                Some(sample)
            }
            Sampled::Unavailable => {
                state.rss_unavailable += 1;
                None
            }
        }
    }

    /// Records the verdict (the first one wins) and kills the tree.
    fn condemn(&self, state: &mut MutexGuard<'_, State>, verdict: Verdict) {
        if state.exit.is_some() || state.kill_sent.is_some() {
            return;
        }
        state.verdict = Some(verdict);
        state.kill_sent = Some(Instant::now());
        if self.process.contained {
            // The shim kills the worker, then every descendant, then exits.
            let _ = rustix::process::pidfd_send_signal(&self.process.pidfd, Signal::TERM);
        } else {
            let _ = rustix::process::pidfd_send_signal(&self.process.pidfd, Signal::KILL);
            if self.process.own_group
                && let Some(group) = Pid::from_raw(self.process.pid as i32)
            {
                // Unreaped (checked above, under the lock `try_reap` takes),
                // so the group id cannot have been recycled.
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
            }
        }
        self.attention.store(true, Ordering::Release);
        self.wake_ring();
        self.changed.notify_all();
        super::poke();
    }

    /// Publishes a recorded event to the request thread and to waiters.
    fn raise(&self, state: MutexGuard<'_, State>) {
        drop(state);
        // Pairs with the Acquire load in `attention`.
        self.attention.store(true, Ordering::Release);
        self.wake_ring();
        self.changed.notify_all();
    }
}

/// Heartbeats are looked at four times per hang timeout: a hang is declared
/// between 1 and 1.25 hang timeouts after the last sign of life.
fn life_check_every(hang: Duration) -> Duration {
    (hang / 4).max(Duration::from_millis(1))
}
