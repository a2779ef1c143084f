//! No leaks from a pool: after shutdown or drop (with running, queued,
//! retried, budget-killed and cancelled jobs), this process has the same
//! fds and threads as before and no child processes.
//!
//! A single test in its own binary: fds and threads are per process, so
//! tests running in parallel threads would see each other's.

use std::time::Duration;

use ringworker::{Job, JobOptions, MemoryLimits, Order, Pool, PoolConfig, RetryPolicy};
use ringworker_testkit::faults::{Fault, FaultRequest};
use ringworker_testkit::rows::{Sizes, SyntheticRequest};

#[path = "support/leak_check.rs"]
mod leak_check;
#[path = "support/mod.rs"]
mod support;

use leak_check::assert_no_leaks;
use support::{fixture, wait_until};

fn synthetic(rows: u64, seed: u64) -> Job {
    Job::new(
        "synthetic",
        &SyntheticRequest::new(rows, Sizes::Uniform { min: 0, max: 200 }).with_seed(seed),
    )
    .unwrap()
}

fn slow(secs: u64) -> Job {
    Job::new(
        "synthetic",
        &SyntheticRequest::new(secs * 1000, Sizes::Fixed { bytes: 32 }).with_rate(1000.0),
    )
    .unwrap()
}

fn fault(fault: Fault) -> Job {
    Job::new("fault", &FaultRequest::new(fault, 100))
        .unwrap()
        .with_options(JobOptions::default().idempotent(true))
}

type Scenario = (&'static str, Box<dyn Fn()>);

fn scenarios() -> Vec<Scenario> {
    vec![
        (
            "jobs, crashes and retries, then shutdown",
            Box::new(|| {
                let pool =
                    Pool::new(PoolConfig::new(fixture(), 2).with_retry(RetryPolicy::retries(1)))
                        .unwrap();
                let mut handles: Vec<_> = (0..10)
                    .map(|n| pool.submit(synthetic(2000, n)).unwrap())
                    .collect();
                handles.push(pool.submit(fault(Fault::Exit { code: 3 })).unwrap());
                handles.push(pool.submit(fault(Fault::KillSelf)).unwrap());
                handles.push(pool.submit(fault(Fault::Abort)).unwrap());
                for handle in handles {
                    let _ = handle.wait();
                }
                assert_eq!(pool.stats().retries, 3);
                pool.shutdown(Duration::from_secs(2));
            }),
        ),
        (
            "drop with a running and queued jobs",
            Box::new(|| {
                let pool = Pool::new(PoolConfig::new(fixture(), 2)).unwrap();
                let running: Vec<_> = (0..2).map(|_| pool.submit(slow(30)).unwrap()).collect();
                let queued: Vec<_> = (0..3)
                    .map(|n| pool.submit(synthetic(100, n)).unwrap())
                    .collect();
                assert!(wait_until(Duration::from_secs(10), || running
                    .iter()
                    .all(|h| !h.is_queued())));
                drop(pool);
                for handle in running.into_iter().chain(queued) {
                    assert!(handle.wait().result.is_err());
                }
            }),
        ),
        (
            "drop with a hung job",
            Box::new(|| {
                let pool = Pool::new(PoolConfig::new(
                    fixture().with_hang_timeout(Duration::from_secs(60)),
                    1,
                ))
                .unwrap();
                let hung = pool.submit(fault(Fault::IgnoreCancel)).unwrap();
                assert!(wait_until(Duration::from_secs(10), || !hung.is_queued()));
                drop(pool);
                assert!(hung.wait().result.is_err());
            }),
        ),
        (
            "budget kill",
            Box::new(|| {
                let worker = fixture()
                    .with_hang_timeout(Duration::from_secs(30))
                    .with_memory(
                        MemoryLimits::default().with_sample_interval(Duration::from_millis(20)),
                    );
                let pool =
                    Pool::new(PoolConfig::new(worker, 2).with_total_rss_budget(Some(120 << 20)))
                        .unwrap();
                let a = pool
                    .submit(
                        Job::new(
                            "fault",
                            &FaultRequest::new(
                                Fault::Allocate {
                                    mib: 40,
                                    hold_ms: 1500,
                                },
                                1,
                            ),
                        )
                        .unwrap(),
                    )
                    .unwrap();
                let b = pool
                    .submit(
                        Job::new(
                            "fault",
                            &FaultRequest::new(
                                Fault::Allocate {
                                    mib: 100,
                                    hold_ms: 1500,
                                },
                                1,
                            ),
                        )
                        .unwrap(),
                    )
                    .unwrap();
                // Whatever the timing of the samples, the larger one goes.
                let b = b.wait();
                assert!(
                    matches!(b.result, Err(ringworker::Error::PoolMemoryBudget { .. })),
                    "{:?}",
                    b.result
                );
                assert!(a.wait().result.is_ok());
            }),
        ),
        (
            "merged run",
            Box::new(|| {
                let pool = Pool::new(PoolConfig::new(fixture(), 2)).unwrap();
                let mut rows = 0u64;
                let out = pool.run_merged(
                    (0..12).map(|n| synthetic(1000, n)).collect::<Vec<_>>(),
                    Order::Submission,
                    |_| rows += 1,
                );
                assert_eq!(rows, 12_000);
                assert!(out.outputs.iter().all(|o| o.result.is_ok()));
            }),
        ),
    ]
}

#[test]
fn a_pool_leaves_no_fds_threads_or_children() {
    assert_no_leaks(scenarios());
}
