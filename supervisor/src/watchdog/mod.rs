//! The watchdog: one thread per process that owns every deadline of every
//! child (request deadlines, heartbeat staleness, cancel grace, memory
//! samples, idle restarts) and reaps every child the moment it dies.
//!
//! It sleeps in `poll` on the pidfds of all unreaped children plus an
//! eventfd, with the nearest deadline as timeout: a death wakes it at once
//! (the pidfd becomes readable), a newly armed deadline through the
//! eventfd, and with nothing armed it sleeps without a timeout: no CPU while
//! nothing is due. What it decides it records in the child's [`Watch`]
//! (see `watch`), then wakes the consumer asleep on that child's ring.

mod watch;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

pub(crate) use watch::{RssConfig, Verdict, Watch, Watched};

/// Longest single sleep: bounds how long a deadline computed before a clock
/// jump could be missed; far beyond any deadline that is armed.
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);

struct Watchdog {
    watches: Mutex<Vec<Arc<Watch>>>,
    /// Loop iterations started; the thread's own copies of the watches are
    /// those registered at the latest one.
    epoch: Mutex<u64>,
    epoch_advanced: Condvar,
    /// Written to wake the thread after the set of deadlines changed.
    wake: OwnedFd,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .expect("cannot create the watchdog's eventfd");
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            watches: Mutex::new(Vec::new()),
            epoch: Mutex::new(0),
            epoch_advanced: Condvar::new(),
            wake,
        }));
        std::thread::Builder::new()
            .name("ringworker-watchdog".into())
            .spawn(move || dog.run())
            .expect("cannot start the ringworker watchdog thread");
        dog
    })
}

/// Puts `watch` under the watchdog.
pub(crate) fn register(watch: Arc<Watch>) {
    let dog = watchdog();
    dog.watches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(watch);
    poke();
}

/// Takes a reaped child's watch off the watchdog and returns once the
/// watchdog thread has let go of it too, so the caller's handle is the last
/// and the pidfd and the ring's mapping close now, not at the watchdog's
/// next wake-up. A child not yet reaped stays watched until it is (the
/// watchdog is its only reaper) and is forgotten then.
pub(crate) fn forget(watch: &Arc<Watch>) {
    let dog = watchdog();
    if !watch.reaped() {
        watch.retire();
        return;
    }
    dog.watches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|w| !Arc::ptr_eq(w, watch));
    let mut epoch = dog.epoch.lock().unwrap_or_else(|e| e.into_inner());
    let seen = *epoch;
    poke();
    let deadline = Instant::now() + Duration::from_secs(1);
    while *epoch == seen {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        epoch = dog
            .epoch_advanced
            .wait_timeout(epoch, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Makes the watchdog recompute its deadlines now.
pub(crate) fn poke() {
    let dog = watchdog();
    let _ = rustix::io::write(&dog.wake, &1u64.to_ne_bytes());
}

impl Watchdog {
    fn run(&self) {
        let mut watches: Vec<Arc<Watch>> = Vec::new();
        let mut polled: Vec<usize> = Vec::new();
        loop {
            {
                let mut all = self.watches.lock().unwrap_or_else(|e| e.into_inner());
                all.retain(|w| !w.finished());
                watches.clone_from(&all);
            }
            {
                let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
                *epoch += 1;
                self.epoch_advanced.notify_all();
            }
            let now = Instant::now();
            let due = watches.iter().filter_map(|w| w.next_due()).min();
            let sleep = due.map_or(LONGEST_SLEEP, |d| d.saturating_duration_since(now));
            polled.clear();
            let mut fds = vec![PollFd::new(&self.wake, PollFlags::IN)];
            for (index, watch) in watches.iter().enumerate() {
                if !watch.reaped() {
                    polled.push(index);
                    fds.push(PollFd::from_borrowed_fd(watch.pidfd(), PollFlags::IN));
                }
            }
            let timeout = rustix::time::Timespec {
                tv_sec: sleep.min(LONGEST_SLEEP).as_secs() as i64,
                tv_nsec: i64::from(sleep.subsec_nanos()),
            };
            let ready = rustix::event::poll(&mut fds, Some(&timeout)).unwrap_or(0);
            let readable: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
            drop(fds);
            if ready > 0 {
                if readable[0] {
                    let mut buf = [0u8; 8];
                    let _ = rustix::io::read(self.wake.as_fd(), &mut buf);
                }
                for (slot, &index) in polled.iter().enumerate() {
                    if readable[slot + 1] {
                        watches[index].try_reap();
                    }
                }
            }
            let now = Instant::now();
            for watch in &watches {
                if watch.next_due().is_some_and(|d| d <= now) {
                    watch.tick(now);
                }
            }
        }
    }
}
