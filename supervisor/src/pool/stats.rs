//! Pool counters: per worker (its jobs and its [`WorkerStats`]), in total,
//! the queue's depth, and the distribution of admission waits in a bounded
//! log-scale histogram.

use std::time::Duration;

use crate::stats::WorkerStats;

/// Counters of one pool worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolWorkerStats {
    /// Jobs this worker took (a retried job counts once).
    pub jobs: u64,
    /// Jobs whose last attempt on this worker failed.
    pub failed_jobs: u64,
    /// Attempts run again after a failure.
    pub retries: u64,
    /// The worker's own counters (requests, rows, bytes, restarts by
    /// reason, ...) as of the end of its latest attempt.
    pub worker: WorkerStats,
}

/// Admission waits: time from a job's submission until a worker took it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitTimes {
    /// Jobs taken by a worker.
    pub count: u64,
    /// Median (upper bound of its histogram bucket: within 19 %).
    pub p50: Duration,
    /// 90th percentile (same resolution).
    pub p90: Duration,
    /// 99th percentile (same resolution).
    pub p99: Duration,
    /// The longest wait (exact).
    pub max: Duration,
}

/// A pool's counters ([`Pool::stats`](crate::Pool::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Per pool worker, by index.
    pub workers: Vec<PoolWorkerStats>,
    /// The sum of the workers' [`WorkerStats`] (rows, bytes, restarts by
    /// reason, ...).
    pub total: WorkerStats,
    /// Jobs accepted by `submit` (or `run_merged`).
    pub submitted: u64,
    /// Jobs that ended with a summary.
    pub completed: u64,
    /// Jobs that ended with an error (after any retries), started or not.
    pub failed: u64,
    /// Retries over all workers.
    pub retries: u64,
    /// Submissions refused because the queue was full (`WhenFull::Fail`).
    pub rejected_full: u64,
    /// Jobs that no worker took within the queue timeout (and blocking
    /// submissions that found no room in time).
    pub queue_timeouts: u64,
    /// Jobs failed unstarted because the pool closed.
    pub closed_unstarted: u64,
    /// Jobs waiting in the queue now.
    pub queue_depth: usize,
    /// The most jobs that ever waited at once.
    pub max_queue_depth: usize,
    /// Admission waits.
    pub wait: WaitTimes,
}

/// Adds `w`'s counters to `total`.
pub(crate) fn accumulate(total: &mut WorkerStats, w: &WorkerStats) {
    total.absorb(w);
}

/// Sub-buckets per power of two: bucket bounds grow by 2^(1/4) (19 %).
const PER_OCTAVE: usize = 4;
/// Microseconds up to 2^40 (12.7 days); longer waits land in the last bucket.
const BUCKETS: usize = 40 * PER_OCTAVE + 1;

/// Log-scale histogram of durations in microseconds: a fixed 161 buckets,
/// whatever the number of samples.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: [u64; BUCKETS],
    count: u64,
    max: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            count: 0,
            max: Duration::ZERO,
        }
    }
}

impl Histogram {
    fn bucket(us: u64) -> usize {
        if us == 0 {
            return 0;
        }
        let log = (us as f64).log2() * PER_OCTAVE as f64;
        (log.ceil() as usize + 1).min(BUCKETS - 1)
    }

    /// Upper bound of bucket `b` in microseconds.
    fn upper(b: usize) -> f64 {
        if b == 0 {
            0.0
        } else {
            2f64.powf((b - 1) as f64 / PER_OCTAVE as f64)
        }
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[Self::bucket(us)] += 1;
        self.count += 1;
        self.max = self.max.max(d);
    }

    fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = Duration::from_secs_f64(Self::upper(b) / 1e6);
                return bound.min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn summary(&self) -> WaitTimes {
        WaitTimes {
            count: self.count,
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_a_bucket() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.max, Duration::from_millis(100));
        let near = |d: Duration, ms: f64| {
            let x = d.as_secs_f64() * 1e3;
            x >= ms && x <= ms * 1.19 + 0.001
        };
        assert!(near(s.p50, 50.0), "{s:?}");
        assert!(near(s.p90, 90.0), "{s:?}");
        assert!(near(s.p99, 99.0) || s.p99 == s.max, "{s:?}");
        let mut zero = Histogram::default();
        zero.record(Duration::ZERO);
        assert_eq!(zero.summary().p99, Duration::ZERO);
    }
}
