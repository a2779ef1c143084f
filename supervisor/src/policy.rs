//! When a child is replaced, and how much memory it may use: the
//! [`RestartPolicy`] and the [`MemoryLimits`] of a worker.

use std::time::Duration;

/// When to replace a child besides its failures, and how hard to try.
///
/// Failures (death, deadline, limit, protocol) always replace the child; the
/// policy adds planned replacements and caps the unplanned ones, as an
/// Erlang/OTP supervisor's restart intensity does: more than `max_restarts`
/// restarts within `restart_window` and requests fail fast with
/// [`Error::RestartLimit`](crate::Error::RestartLimit) until the window has
/// passed, instead of burning a core on a child that cannot start or
/// crashes on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestartPolicy {
    /// Requests one child serves before it is cycled (none: unlimited).
    pub max_requests: Option<u64>,
    /// A child idle this long is stopped by the watchdog; the next request
    /// starts a fresh one (none: never).
    pub idle_restart: Option<Duration>,
    /// Restarts allowed within `restart_window` before requests fail fast.
    pub max_restarts: usize,
    /// The window of the restart intensity cap.
    pub restart_window: Duration,
    /// First pause after a failed spawn; doubled on each further failure up
    /// to `max_spawn_backoff`, reset by a successful start.
    pub spawn_backoff: Duration,
    /// Longest pause between failed spawns.
    pub max_spawn_backoff: Duration,
    /// Keep a spare child started and handshaken in the background, so a
    /// replacement (after a death, a limit, a cycle) is a swap instead of a
    /// spawn. Costs one idle process per worker.
    pub prewarm: bool,
}

impl Default for RestartPolicy {
    /// Unlimited requests per child, no idle restart, at most 20 restarts in
    /// 10 s, spawn backoff 10 ms doubling to 1 s, no prewarm.
    fn default() -> Self {
        RestartPolicy {
            max_requests: None,
            idle_restart: None,
            max_restarts: 20,
            restart_window: Duration::from_secs(10),
            spawn_backoff: Duration::from_millis(10),
            max_spawn_backoff: Duration::from_secs(1),
            prewarm: false,
        }
    }
}

impl RestartPolicy {
    /// Sets the requests per child.
    pub fn with_max_requests(mut self, requests: Option<u64>) -> Self {
        self.max_requests = requests;
        self
    }

    /// Sets the idle restart.
    pub fn with_idle_restart(mut self, idle: Option<Duration>) -> Self {
        self.idle_restart = idle;
        self
    }

    /// Sets the restart intensity cap: at most `restarts` within `window`.
    pub fn with_restart_limit(mut self, restarts: usize, window: Duration) -> Self {
        self.max_restarts = restarts;
        self.restart_window = window;
        self
    }

    /// Sets the backoff between failed spawns.
    pub fn with_spawn_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.spawn_backoff = first;
        self.max_spawn_backoff = max;
        self
    }

    /// Keeps a prewarmed spare child.
    pub fn with_prewarm(mut self, prewarm: bool) -> Self {
        self.prewarm = prewarm;
        self
    }
}

/// Memory limits of a child.
///
/// The supervisor's limits apply to the child's anonymous resident memory
/// (`RssAnon` in `/proc/<pid>/status`), sampled by the watchdog every
/// `sample_interval` while a request runs and once before each request. The
/// ring is shared memory and never counts. Between two samples a child can
/// allocate far past a limit; the kernel-enforced caps (`data_limit`,
/// `address_space_limit`, set with `setrlimit` in the child before `exec`)
/// stop that: the child's allocations fail (a Lean child then panics or
/// aborts, which the supervisor reports as its death).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryLimits {
    /// Above this, the child is cycled before the next request (none: never).
    pub soft_rss: Option<u64>,
    /// Above this while a request runs, the child is killed and the request
    /// ends with [`Error::MemoryLimit`](crate::Error::MemoryLimit) (none: never).
    pub hard_rss: Option<u64>,
    /// How often the watchdog samples during a request (default 100 ms).
    pub sample_interval: Duration,
    /// `RLIMIT_DATA` of the child in bytes (none: inherited).
    pub data_limit: Option<u64>,
    /// `RLIMIT_AS` of the child in bytes (none: inherited). Counts every
    /// mapping, the ring included; prefer `data_limit`.
    pub address_space_limit: Option<u64>,
    /// Allow core dumps (default off: `RLIMIT_CORE` 0). With a core-dump
    /// handler installed on the host, a crashing child's death is otherwise
    /// reported only once the handler has written the dump, tens of seconds later.
    pub core_dumps: bool,
}

impl Default for MemoryLimits {
    /// No limits, 100 ms sampling, no core dumps.
    fn default() -> Self {
        MemoryLimits {
            soft_rss: None,
            hard_rss: None,
            sample_interval: Duration::from_millis(100),
            data_limit: None,
            address_space_limit: None,
            core_dumps: false,
        }
    }
}

impl MemoryLimits {
    /// Sets the soft ceiling (bytes of `RssAnon`).
    pub fn with_soft_rss(mut self, bytes: Option<u64>) -> Self {
        self.soft_rss = bytes;
        self
    }

    /// Sets the hard limit (bytes of `RssAnon`).
    pub fn with_hard_rss(mut self, bytes: Option<u64>) -> Self {
        self.hard_rss = bytes;
        self
    }

    /// Sets the sampling interval.
    pub fn with_sample_interval(mut self, interval: Duration) -> Self {
        self.sample_interval = interval;
        self
    }

    /// Sets the kernel's `RLIMIT_DATA` for the child.
    pub fn with_data_limit(mut self, bytes: Option<u64>) -> Self {
        self.data_limit = bytes;
        self
    }

    /// Sets the kernel's `RLIMIT_AS` for the child.
    pub fn with_address_space_limit(mut self, bytes: Option<u64>) -> Self {
        self.address_space_limit = bytes;
        self
    }

    /// Allows or forbids core dumps.
    pub fn with_core_dumps(mut self, allow: bool) -> Self {
        self.core_dumps = allow;
        self
    }
}
