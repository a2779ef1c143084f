//! Counters of a worker over its lifetime (all generations of its child).

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a child was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RestartReason {
    /// It exited on its own.
    Exited,
    /// A signal killed it (not ours).
    Signalled,
    /// Its command panicked.
    Panicked,
    /// A request passed its deadline.
    Timeout,
    /// It stopped beating.
    Hung,
    /// It ignored a cancellation past the grace period.
    Cancelled,
    /// It corrupted the ring.
    Corrupt,
    /// It broke the control or record protocol.
    Protocol,
    /// An abandoned request of it did not end in time.
    StaleRequest,
    /// The caller asked for a fresh child (`Worker::cycle`, `Worker::restart`).
    Requested,
    /// Its anonymous memory passed the hard limit during a request.
    MemoryLimit,
    /// Its pool's total anonymous memory passed the pool's budget and it
    /// had the largest sample.
    PoolBudget,
    /// Its anonymous memory was above the soft ceiling before a request.
    MemorySoft,
    /// It served the policy's `max_requests`.
    MaxRequests,
    /// It was idle for the policy's `idle_restart`.
    Idle,
    /// It did not take a request off its control channel in time.
    Unresponsive,
}

/// Rows and bytes of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Rows delivered.
    pub rows: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
}

/// A worker's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Requests started.
    pub requests: u64,
    /// Requests that ended in an error.
    pub failed_requests: u64,
    /// Rows delivered to sinks.
    pub rows: u64,
    /// Payload bytes delivered to sinks.
    pub bytes: u64,
    /// Per-stream rows and bytes.
    pub per_stream: BTreeMap<u16, StreamStats>,
    /// Time spent inside requests.
    pub stream_time: Duration,
    /// Times a child found its ring full and had to wait (as the children report it).
    pub backpressure_waits: u64,
    /// Progress records received.
    pub progress_records: u64,
    /// Diagnostic records received.
    pub diagnostics: u64,
    /// Records of stale (abandoned) requests discarded.
    pub stale_records: u64,
    /// Children started.
    pub spawns: u64,
    /// Children replaced, by reason.
    pub restarts: BTreeMap<RestartReason, u64>,
    /// Spawns or handshakes that failed.
    pub failed_spawns: u64,
    /// Requests refused by the restart intensity cap.
    pub restart_limited: u64,
    /// Requests sent again to a fresh child because the first never took
    /// them off its control channel.
    pub resent_requests: u64,
    /// Replacements served by the prewarmed spare (no spawn waited for).
    pub prewarm_swaps: u64,
    /// Children forked from a warm template (instead of exec'd).
    pub template_forks: u64,
    /// Times a dead template was started again to fork a child.
    pub template_respawns: u64,
    /// Memory samples taken by the watchdog.
    pub rss_samples: u64,
    /// Memory samples that could not be read (`/proc` unavailable).
    pub rss_unavailable: u64,
}

impl WorkerStats {
    /// Adds `other`'s counters to these (a pool's total). Destructures
    /// `other` whole, so a new counter cannot be forgotten here.
    pub(crate) fn absorb(&mut self, other: &WorkerStats) {
        let WorkerStats {
            requests,
            failed_requests,
            rows,
            bytes,
            per_stream,
            stream_time,
            backpressure_waits,
            progress_records,
            diagnostics,
            stale_records,
            spawns,
            restarts,
            failed_spawns,
            restart_limited,
            resent_requests,
            prewarm_swaps,
            template_forks,
            template_respawns,
            rss_samples,
            rss_unavailable,
        } = other;
        self.requests += requests;
        self.failed_requests += failed_requests;
        self.rows += rows;
        self.bytes += bytes;
        for (stream, s) in per_stream {
            let t = self.per_stream.entry(*stream).or_default();
            t.rows += s.rows;
            t.bytes += s.bytes;
        }
        self.stream_time += *stream_time;
        self.backpressure_waits += backpressure_waits;
        self.progress_records += progress_records;
        self.diagnostics += diagnostics;
        self.stale_records += stale_records;
        self.spawns += spawns;
        for (reason, n) in restarts {
            *self.restarts.entry(*reason).or_default() += n;
        }
        self.failed_spawns += failed_spawns;
        self.restart_limited += restart_limited;
        self.resent_requests += resent_requests;
        self.prewarm_swaps += prewarm_swaps;
        self.template_forks += template_forks;
        self.template_respawns += template_respawns;
        self.rss_samples += rss_samples;
        self.rss_unavailable += rss_unavailable;
    }

    /// Total restarts over all reasons.
    pub fn total_restarts(&self) -> u64 {
        self.restarts.values().sum()
    }
}
