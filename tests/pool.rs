//! The pool: N workers fed from a bounded job queue, against real child
//! processes (the fixture worker). Every job's rows are verified from what
//! the child wrote into them (embedded sequence, every byte, checksum).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringworker::{
    Error, ErrorKind, Job, JobOptions, JobOutput, MemoryLimits, Order, OwnedRow, Pool, PoolConfig,
    RestartReason, RetryPolicy, WhenFull, WorkerConfig,
};
use ringworker_testkit::faults::{FAULT_ROW_BYTES, Fault, FaultRequest};
use ringworker_testkit::rows::{RowCheck, Sizes, SyntheticRequest, SyntheticSummary, verify_row};

#[path = "support/pool_fixture.rs"]
mod pool_fixture;
#[path = "support/mod.rs"]
mod support;

use pool_fixture::{CRASH_ONCE, CRASH_SEED, CrashOnce, OK_SEED};
use support::{fixture, wait_until};

fn pool(workers: usize) -> PoolConfig {
    PoolConfig::new(fixture(), workers)
}

/// The synthetic request of job `n` of a batch: varying sizes, streams, seeds.
fn request(n: u64) -> SyntheticRequest {
    SyntheticRequest::new(1000 + n * 137 % 4000, Sizes::Uniform { min: 0, max: 200 })
        .with_streams(1 + (n % 3) as u16)
        .with_seed(1000 + n)
}

/// A request that runs about `secs` seconds (rate-limited rows).
fn slow(secs: f64) -> SyntheticRequest {
    SyntheticRequest::new((secs * 1000.0) as u64, Sizes::Fixed { bytes: 32 }).with_rate(1000.0)
}

fn job(request: &SyntheticRequest) -> Job {
    Job::new("synthetic", request).unwrap()
}

/// Checks that `rows` are exactly `request`'s rows and match `summary`.
fn verify(request: &SyntheticRequest, rows: &[OwnedRow], summary: &serde_json::Value) {
    let mut check = RowCheck::for_request(request);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.sequence, i as u64);
        check.check(row.stream, &row.payload).unwrap();
    }
    let summary: SyntheticSummary = serde_json::from_value(summary.clone()).unwrap();
    assert_eq!(check.rows(), request.rows);
    check.finish(&summary).unwrap();
}

fn verify_output(request: &SyntheticRequest, output: &JobOutput) {
    let summary = output.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    verify(request, &output.rows, summary);
    assert_eq!(output.rows_delivered, request.rows);
    assert_eq!(output.attempts, 1);
    assert!(output.failed_attempts.is_empty());
}

#[test]
fn many_jobs_on_two_workers_complete_exactly_and_stats_add_up() {
    let pool = Pool::new(pool(2).with_queue_depth(64)).unwrap();
    let requests: Vec<SyntheticRequest> = (0..48).map(request).collect();
    let handles: Vec<_> = requests
        .iter()
        .map(|r| pool.submit(job(r)).unwrap())
        .collect();
    let mut per_worker = [0u64; 2];
    let mut ids = Vec::new();
    for (request, handle) in requests.iter().zip(handles) {
        let output = handle.wait();
        verify_output(request, &output);
        per_worker[output.worker.unwrap()] += 1;
        ids.push(output.id);
    }
    assert_eq!(ids, (1..=48).collect::<Vec<u64>>());
    let rows: u64 = requests.iter().map(|r| r.rows).sum();
    let stats = pool.stats();
    assert_eq!(stats.submitted, 48);
    assert_eq!(stats.completed, 48);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.retries, 0);
    assert_eq!(stats.queue_depth, 0);
    assert!(stats.max_queue_depth >= 1 && stats.max_queue_depth <= 64);
    assert_eq!(stats.wait.count, 48);
    assert!(stats.wait.p50 <= stats.wait.p90 && stats.wait.p90 <= stats.wait.p99);
    assert!(stats.wait.p99 <= stats.wait.max);
    assert_eq!(stats.workers.len(), 2);
    for (i, worker) in stats.workers.iter().enumerate() {
        assert_eq!(worker.jobs, per_worker[i], "worker {i}");
        assert_eq!(worker.worker.requests, per_worker[i], "worker {i}");
        assert_eq!(worker.failed_jobs, 0);
    }
    assert_eq!(stats.total.rows, rows);
    assert_eq!(
        stats.total.rows,
        stats.workers.iter().map(|w| w.worker.rows).sum::<u64>()
    );
    assert_eq!(
        stats.total.bytes,
        stats.workers.iter().map(|w| w.worker.bytes).sum::<u64>()
    );
    assert_eq!(stats.total.requests, 48);
    assert_eq!(stats.total.total_restarts(), 0);
    pool.shutdown(Duration::from_secs(2));
}

/// A row as the merged sink saw it: job, attempt, stream, payload.
type SeenRow = (usize, u32, u16, Vec<u8>);

/// Runs a merged batch whose first job is slow (later jobs finish first);
/// returns the sink's view: (job, attempt, stream, payload) in order.
fn merged(
    order: Order,
) -> (
    Vec<SeenRow>,
    ringworker::MergedOutput,
    Vec<SyntheticRequest>,
) {
    let pool = Pool::new(pool(2).with_queue_depth(4)).unwrap();
    let mut requests = vec![slow(0.6).with_seed(7)];
    requests.extend((1..16).map(request));
    let mut seen = Vec::new();
    let out = pool.run_merged(
        requests.iter().map(job).collect::<Vec<_>>(),
        order,
        |tagged| {
            seen.push((
                tagged.job,
                tagged.attempt,
                tagged.row.stream,
                tagged.row.payload.to_vec(),
            ));
        },
    );
    assert_eq!(out.outputs.len(), requests.len());
    assert_eq!(out.completion_order.len(), requests.len());
    // Every job complete, exactly, from the sink's rows.
    for (index, request) in requests.iter().enumerate() {
        let rows: Vec<OwnedRow> = seen
            .iter()
            .filter(|r| r.0 == index)
            .enumerate()
            .map(|(i, r)| {
                assert_eq!(r.1, 1, "attempt");
                OwnedRow {
                    stream: r.2,
                    sequence: i as u64,
                    payload: r.3.clone(),
                }
            })
            .collect();
        let output = &out.outputs[index];
        verify(request, &rows, output.result.as_ref().unwrap());
        assert!(output.rows.is_empty());
        assert_eq!(output.rows_delivered, request.rows);
    }
    let stats = pool.stats();
    assert_eq!(stats.completed, requests.len() as u64);
    assert!(stats.max_queue_depth <= 4);
    (seen, out, requests)
}

#[test]
fn merged_sink_in_submission_order_holds_later_jobs_back() {
    let (seen, out, _) = merged(Order::Submission);
    // Job 0 is slow: some later job finished before it...
    let first_done = out.completion_order.iter().position(|&j| j == 0).unwrap();
    assert!(first_done > 0, "{:?}", out.completion_order);
    // ...yet the sink saw the jobs one after the other, in submission order.
    let jobs: Vec<usize> = seen.iter().map(|r| r.0).collect();
    assert!(
        jobs.windows(2).all(|w| w[0] <= w[1]),
        "rows out of submission order"
    );
}

#[test]
fn merged_sink_in_completion_order_interleaves() {
    let (seen, out, requests) = merged(Order::Completion);
    assert!(out.completion_order[0] != 0, "{:?}", out.completion_order);
    // Rows of later jobs arrived before job 0's last row.
    let last_of_0 = seen.iter().rposition(|r| r.0 == 0).unwrap();
    let later_before = seen[..last_of_0].iter().filter(|r| r.0 != 0).count();
    assert!(later_before > 0);
    assert_eq!(
        seen.len() as u64,
        requests.iter().map(|r| r.rows).sum::<u64>()
    );
}

#[test]
fn a_full_queue_fails_in_fail_mode() {
    let pool = Pool::new(pool(1).with_queue_depth(1).with_when_full(WhenFull::Fail)).unwrap();
    let a = pool.submit(job(&slow(1.0))).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !a.is_queued()));
    let b = pool.submit(job(&request(1))).unwrap();
    let c = pool.submit(job(&request(2)));
    assert!(matches!(c, Err(Error::QueueFull { depth: 1 })), "{c:?}");
    assert_eq!(c.unwrap_err().kind(), ErrorKind::Unavailable);
    verify_output(&slow(1.0), &a.wait());
    verify_output(&request(1), &b.wait());
    let stats = pool.stats();
    assert_eq!(stats.rejected_full, 1);
    assert_eq!(stats.submitted, 2);
    assert_eq!(stats.max_queue_depth, 1);
}

#[test]
fn a_full_queue_blocks_in_block_mode_until_a_worker_takes_a_job() {
    let pool = Arc::new(Pool::new(pool(1).with_queue_depth(1)).unwrap());
    let a = pool.submit(job(&slow(1.5))).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !a.is_queued()));
    let b = pool.submit(job(&request(1))).unwrap();
    let returned = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (pool, returned) = (Arc::clone(&pool), Arc::clone(&returned));
        std::thread::spawn(move || {
            let handle = pool.submit(job(&request(2)));
            returned.store(true, Ordering::SeqCst);
            handle
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.is_finished(), "the slow job is still running");
    assert!(
        !returned.load(Ordering::SeqCst),
        "submit into a full queue returned"
    );
    verify_output(&slow(1.5), &a.wait());
    let c = submitter.join().unwrap().unwrap();
    verify_output(&request(1), &b.wait());
    verify_output(&request(2), &c.wait());
}

#[test]
fn admission_times_out_when_every_worker_is_busy() {
    let pool = Pool::new(
        pool(1)
            .with_queue_depth(1)
            .with_queue_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let a = pool.submit(job(&slow(3.0))).unwrap();
    let started = Instant::now();
    let b = pool.submit(job(&request(1))).unwrap();
    let output = b.wait();
    let elapsed = started.elapsed();
    match output.result {
        Err(Error::QueueTimeout { waited }) => {
            assert!(waited >= Duration::from_millis(500), "{waited:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(output.attempts, 0);
    assert!(output.worker.is_none());
    assert!(elapsed >= Duration::from_millis(500));
    assert!(
        elapsed < Duration::from_millis(2500),
        "{elapsed:?}: waited for the busy worker"
    );
    assert!(!a.is_finished());
    // A blocking submit into a full queue times out the same way.
    let _c = pool.submit(job(&request(2))).unwrap();
    let d = pool.submit(job(&request(3)));
    assert!(matches!(d, Err(Error::QueueTimeout { .. })), "{d:?}");
    verify_output(&slow(3.0), &a.wait());
    let stats = pool.stats();
    assert!(stats.queue_timeouts >= 2, "{stats:?}");
}

#[test]
fn a_freed_worker_takes_the_waiting_job_at_once() {
    let timeout = Duration::from_secs(20);
    let pool = Pool::new(pool(1).with_queue_timeout(timeout)).unwrap();
    let a = pool.submit(job(&slow(1.0))).unwrap();
    let b = pool.submit(job(&request(1))).unwrap();
    let a = a.wait();
    verify_output(&slow(1.0), &a);
    let b = b.wait();
    verify_output(&request(1), &b);
    // It waited for the first job, and was taken long before its timeout.
    assert!(b.waited >= Duration::from_millis(500), "{:?}", b.waited);
    assert!(b.waited < timeout / 4, "{:?}", b.waited);
}

fn crash_once(dir: &std::path::Path, name: &str, rows: u64, crash_after: u64) -> Job {
    Job::new(
        CRASH_ONCE,
        &CrashOnce {
            marker: dir.join(name).to_string_lossy().into_owned(),
            rows,
            crash_after,
        },
    )
    .unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ringworker-pool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_rows(rows: &[OwnedRow], seed: u64, count: u64) {
    assert_eq!(rows.len() as u64, count);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.payload.len(), FAULT_ROW_BYTES);
        verify_row(seed, i as u64, &row.payload).unwrap();
    }
}

#[test]
fn an_idempotent_job_is_retried_after_a_crash_with_its_attempts_apart() {
    let dir = temp_dir("retry");
    let pool = Pool::new(pool(2).with_retry(RetryPolicy::retries(2))).unwrap();
    let handle = pool
        .submit(
            crash_once(&dir, "a", 3000, 700).with_options(JobOptions::default().idempotent(true)),
        )
        .unwrap();
    let output = handle.wait();
    let summary = output.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary["rows"], 3000);
    assert_eq!(output.attempts, 2);
    assert_eq!(output.failed_attempts.len(), 1);
    let first = &output.failed_attempts[0];
    assert_eq!(first.attempt, 1);
    assert!(
        matches!(
            first.error,
            Error::ChildKilled {
                signal: 9,
                rows_delivered: 700,
                ..
            }
        ),
        "{:?}",
        first.error
    );
    assert_eq!(first.rows_delivered, 700);
    // Attempt 1's rows are its own (seed 1), attempt 2's are exactly the
    // complete run (seed 2): nothing of the first is mixed in.
    assert_rows(&first.rows, CRASH_SEED, 700);
    assert_rows(&output.rows, OK_SEED, 3000);
    assert_eq!(output.rows_delivered, 3000);
    let stats = pool.stats();
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.completed, 1);
    assert_eq!(
        stats.total.restarts.get(&RestartReason::Signalled),
        Some(&1)
    );
    assert_eq!(stats.total.rows, 3700);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_job_that_is_not_idempotent_is_not_retried_and_reports_its_rows() {
    let dir = temp_dir("no-retry");
    let pool = Pool::new(pool(1).with_retry(RetryPolicy::retries(3))).unwrap();
    let output = pool
        .submit(crash_once(&dir, "b", 3000, 450))
        .unwrap()
        .wait();
    match &output.result {
        Err(err @ Error::ChildKilled { signal: 9, .. }) => {
            assert_eq!(err.rows_delivered(), Some(450));
            assert_eq!(err.kind(), ErrorKind::Crash);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(output.attempts, 1);
    assert!(output.failed_attempts.is_empty());
    assert_eq!(output.rows_delivered, 450);
    assert_rows(&output.rows, CRASH_SEED, 450);

    // The command's own failure is never retried, idempotent or not.
    let failing = Job::new("fail", &serde_json::json!({ "rows": 5, "code": "nope" }))
        .unwrap()
        .with_options(JobOptions::default().idempotent(true));
    let output = pool.submit(failing).unwrap().wait();
    assert!(
        matches!(
            &output.result,
            Err(Error::Worker {
                rows_delivered: 5,
                ..
            })
        ),
        "{:?}",
        output.result
    );
    assert_eq!(output.attempts, 1);
    // A job's own deadline is not retried either.
    let late = job(&slow(5.0)).with_options(
        JobOptions::default()
            .idempotent(true)
            .timeout(Duration::from_millis(300)),
    );
    let output = pool.submit(late).unwrap().wait();
    assert!(
        matches!(&output.result, Err(Error::Timeout { .. })),
        "{:?}",
        output.result
    );
    assert_eq!(output.attempts, 1);
    assert_eq!(output.rows_delivered, output.rows.len() as u64);
    assert_eq!(pool.stats().retries, 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_idempotent_job_survives_an_outside_sigkill() {
    let pool = Pool::new(pool(1).with_retry(RetryPolicy::retries(1))).unwrap();
    let request = slow(1.0).with_seed(99);
    let handle = pool
        .submit(job(&request).with_options(JobOptions::default().idempotent(true)))
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !handle.is_queued()));
    std::thread::sleep(Duration::from_millis(300));
    let pid = pool.worker_pids()[0].unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let output = handle.wait();
    verify(&request, &output.rows, output.result.as_ref().unwrap());
    assert_eq!(output.attempts, 2);
    let first = &output.failed_attempts[0];
    assert_eq!(first.error.kind(), ErrorKind::Crash, "{:?}", first.error);
    assert_eq!(first.rows.len() as u64, first.rows_delivered);
    assert!(first.rows_delivered < request.rows);
    // The first attempt's rows are a prefix of the job's rows, in order.
    let mut check = RowCheck::for_request(&request);
    for row in &first.rows {
        check.check(row.stream, &row.payload).unwrap();
    }
}

#[test]
fn a_merged_run_tags_each_attempt_and_counts_failed_ones_exactly() {
    let dir = temp_dir("merged-retry");
    let pool = Pool::new(pool(2).with_retry(RetryPolicy::retries(1))).unwrap();
    let idempotent = JobOptions::default().idempotent(true);
    let jobs = vec![
        crash_once(&dir, "m0", 2000, 300).with_options(idempotent.clone()),
        job(&request(5)),
        crash_once(&dir, "m2", 1500, 250),
    ];
    let mut seen: Vec<SeenRow> = Vec::new();
    let out = pool.run_merged(jobs, Order::Submission, |t| {
        seen.push((t.job, t.attempt, t.row.stream, t.row.payload.to_vec()))
    });
    let rows_of = |job: usize, attempt: u32| -> Vec<OwnedRow> {
        seen.iter()
            .filter(|r| r.0 == job && r.1 == attempt)
            .enumerate()
            .map(|(i, r)| OwnedRow {
                stream: r.2,
                sequence: i as u64,
                payload: r.3.clone(),
            })
            .collect()
    };
    // Job 0: attempt 1 crashed after 300 rows (seed 1), attempt 2 complete (seed 2).
    let o0 = &out.outputs[0];
    assert!(o0.result.is_ok(), "{:?}", o0.result);
    assert_eq!(o0.attempts, 2);
    assert_eq!(o0.failed_attempts[0].rows_delivered, 300);
    assert!(
        o0.failed_attempts[0].rows.is_empty(),
        "they went to the sink"
    );
    assert_rows(&rows_of(0, 1), CRASH_SEED, 300);
    assert_rows(&rows_of(0, 2), OK_SEED, 2000);
    // Job 1: untouched.
    let r1 = request(5);
    verify(&r1, &rows_of(1, 1), out.outputs[1].result.as_ref().unwrap());
    // Job 2: not idempotent, failed with exactly the rows the sink got.
    let o2 = &out.outputs[2];
    assert!(
        matches!(
            o2.result,
            Err(Error::ChildKilled {
                rows_delivered: 250,
                ..
            })
        ),
        "{:?}",
        o2.result
    );
    assert_eq!(o2.rows_delivered, 250);
    assert_rows(&rows_of(2, 1), CRASH_SEED, 250);
    assert_eq!(seen.len(), 300 + 2000 + r1.rows as usize + 250);
    // Submission order: jobs, and attempts within a job, never go back.
    assert!(
        seen.windows(2)
            .all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_total_memory_budget_kills_the_largest_worker() {
    let worker = fixture()
        .with_hang_timeout(Duration::from_secs(30))
        .with_memory(MemoryLimits::default().with_sample_interval(Duration::from_millis(20)));
    let config = PoolConfig::new(worker, 2).with_total_rss_budget(Some(150 << 20));
    let pool = Pool::new(config).unwrap();
    let alloc = |mib, hold_ms| {
        Job::new(
            "fault",
            &FaultRequest::new(Fault::Allocate { mib, hold_ms }, 10),
        )
        .unwrap()
    };
    // Alone each is within the budget; together they are over it.
    let small = pool.submit(alloc(70, 2500)).unwrap();
    let large = pool.submit(alloc(100, 2500)).unwrap();
    let large = large.wait();
    let small = small.wait();
    assert!(small.result.is_ok(), "{:?}", small.result);
    match &large.result {
        Err(
            err @ Error::PoolMemoryBudget {
                sample,
                total,
                budget,
                rows_delivered,
            },
        ) => {
            assert_eq!(*budget, 150 << 20);
            assert!(*total > 150 << 20, "{total}");
            // The largest sample of the two.
            assert!(sample.rss_anon > 60 << 20, "{sample:?}");
            assert!(
                total - sample.rss_anon <= sample.rss_anon,
                "{sample:?} of {total}"
            );
            assert_eq!(*rows_delivered, 10);
            assert_eq!(err.kind(), ErrorKind::Resource);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(large.rows.len(), 10);
    let stats = pool.stats();
    assert_eq!(
        stats.total.restarts.get(&RestartReason::PoolBudget),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(pool.budget_in_use(), Some(0), "idle workers do not count");
}

#[test]
fn shutdown_fails_queued_jobs_and_lets_the_running_one_finish() {
    let pool = Pool::new(pool(1).with_queue_depth(4)).unwrap();
    let a = pool.submit(job(&slow(0.8))).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !a.is_queued()));
    let queued: Vec<_> = (0..3)
        .map(|n| pool.submit(job(&request(n))).unwrap())
        .collect();
    pool.shutdown(Duration::from_secs(10));
    verify_output(&slow(0.8), &a.wait());
    for handle in queued {
        let output = handle.wait();
        assert!(
            matches!(output.result, Err(Error::PoolClosed)),
            "{:?}",
            output.result
        );
        assert_eq!(output.result.unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(output.attempts, 0);
    }
}

#[test]
fn drop_cancels_the_running_job() {
    let pool = Pool::new(pool(1)).unwrap();
    let a = pool.submit(job(&slow(30.0))).unwrap();
    let b = pool.submit(job(&request(1))).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !a.is_queued()));
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    drop(pool);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let a = a.wait();
    match &a.result {
        Err(err @ Error::Cancelled { rows_delivered, .. }) => {
            assert_eq!(*rows_delivered, a.rows.len() as u64);
            assert!(*rows_delivered > 0);
            assert_eq!(err.kind(), ErrorKind::Cancelled);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(b.wait().result, Err(Error::PoolClosed)));
}

#[test]
fn cancelled_jobs_end_typed_and_the_callers_token_is_left_alone() {
    let pool = Pool::new(pool(1)).unwrap();
    let user = ringworker::CancelToken::new();
    let a = pool
        .submit(job(&slow(30.0)).with_options(JobOptions::default().cancel(user.clone())))
        .unwrap();
    let untouched = ringworker::CancelToken::new();
    let b = pool
        .submit(job(&request(1)).with_options(JobOptions::default().cancel(untouched.clone())))
        .unwrap();
    // Cancelled while queued: never runs.
    b.cancel();
    assert!(wait_until(Duration::from_secs(10), || !a.is_queued()));
    // The caller's token reaches the running job.
    user.cancel();
    let a = a.wait();
    assert!(
        matches!(a.result, Err(Error::Cancelled { .. })),
        "{:?}",
        a.result
    );
    assert_eq!(a.rows_delivered, a.rows.len() as u64);
    let b = b.wait();
    assert!(
        matches!(
            b.result,
            Err(Error::Cancelled {
                rows_delivered: 0,
                killed: false
            })
        ),
        "{:?}",
        b.result
    );
    assert_eq!(b.attempts, 0);
    assert!(
        !untouched.is_cancelled(),
        "the pool never cancels a caller's token"
    );
    // The worker serves on.
    verify_output(&request(2), &pool.submit(job(&request(2))).unwrap().wait());
    assert_eq!(pool.stats().failed, 2);
}

#[test]
fn bad_pool_configs_are_typed_errors() {
    for config in [
        pool(0),
        pool(1).with_queue_depth(0),
        pool(1).with_queue_timeout(Duration::ZERO),
        pool(1).with_total_rss_budget(Some(0)),
    ] {
        let err = Pool::new(config).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Usage);
    }
    let err = Pool::new(PoolConfig::new(WorkerConfig::new("/nonexistent/worker"), 2)).unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
}
