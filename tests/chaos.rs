//! Chaos: a pool streams verified jobs while its workers are SIGKILLed,
//! SIGSTOPped, made to hang, to exceed their memory limit or to die in the
//! middle of their rows, and while random jobs are cancelled or given tiny
//! deadlines. At the end every job is either complete (exact row count,
//! every row's embedded sequence and bytes, the child's checksum) or failed
//! with a typed error whose `rows_delivered` equals the rows received, and
//! the rows received are an exact prefix (none lost, duplicated or
//! reordered); every attempt of a retried job likewise. No process, fd or
//! thread is left after the pool is dropped. Prints one summary line and
//! asserts that anomalies == 0.
//!
//! Ignored by default (it runs for a minute). Run it with:
//!
//! ```text
//! RINGWORKER_CHAOS_SECS=60 cargo test -p ringworker-tests --test chaos -- --ignored --nocapture
//! ```
//!
//! `RINGWORKER_CHAOS_TEMPLATE=1` runs the same with warm templates: every
//! worker is forked from one template process, and the chaos thread also
//! SIGKILLs the template now and then (its workers must keep serving, the
//! next fork respawns it).
//!
//! `RINGWORKER_CHAOS_SECS` (default 60) is the time jobs are submitted;
//! `RINGWORKER_CHAOS_SEED` (default: from the clock) makes a run repeatable
//! up to thread timing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringworker::{
    CancelToken, Error, Job, JobHandle, JobOptions, MemoryLimits, OwnedRow, Pool, PoolConfig,
    RetryPolicy, Worker,
};
use ringworker_testkit::faults::{FAULT_ROW_BYTES, Fault, FaultRequest};
use ringworker_testkit::rng::SplitMix;
use ringworker_testkit::rows::{RowCheck, Sizes, SyntheticRequest, SyntheticSummary};

#[path = "support/big_rows.rs"]
mod big_rows;
#[path = "support/leak_check.rs"]
mod leak_check;
#[path = "support/mod.rs"]
mod support;

use big_rows::{BIG_ROWS, BigRowsRequest, RowSpec, Via, expected_row};

use leak_check::snapshot;
use support::{assert_usable, fixture};

const WORKERS: usize = 3;
const OUTSTANDING: usize = 8;
const HARD_RSS: u64 = 96 << 20;
/// Three `pool_pressure` jobs at once are over it; one is not.
const POOL_BUDGET: u64 = 150 << 20;

/// What a job is expected to produce.
#[derive(Debug, Clone)]
enum Expect {
    /// `synthetic`: verified rows; may complete.
    Synthetic(SyntheticRequest),
    /// `fault`: `after` rows of seed 0, then the fault (never completes
    /// unless `completes`).
    Fault { after: u64, completes: bool },
    /// `big_rows`: rows larger than a ring record, the worker SIGKILLed in
    /// the middle of the large one (a partial row is never delivered), or,
    /// if its killer thread comes late, complete.
    BigRows(Vec<RowSpec>),
}

/// Faults injected, by kind.
type Faults = Arc<Mutex<BTreeMap<&'static str, u64>>>;

fn note(faults: &Faults, kind: &'static str) {
    *faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(kind)
        .or_default() += 1;
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Checks `rows` against what the job writes; returns a problem, if any.
fn check_rows(expect: &Expect, rows: &[OwnedRow]) -> Result<RowCheck, String> {
    let mut check = match expect {
        Expect::Synthetic(request) => RowCheck::for_request(request),
        Expect::Fault { .. } => RowCheck::fixed(0, FAULT_ROW_BYTES as u32),
        Expect::BigRows(specs) => {
            if rows.len() > specs.len() {
                return Err(format!("{} rows of {}", rows.len(), specs.len()));
            }
            for (i, (row, spec)) in rows.iter().zip(specs).enumerate() {
                if row.sequence != i as u64 || row.payload != expected_row(i, *spec) {
                    return Err(format!("big row {i} differs"));
                }
            }
            return Ok(RowCheck::new(0));
        }
    };
    for (i, row) in rows.iter().enumerate() {
        if row.sequence != i as u64 {
            return Err(format!("row {i} delivered as sequence {}", row.sequence));
        }
        check.check(row.stream, &row.payload)?;
    }
    Ok(check)
}

/// Checks one finished job; returns its anomalies.
fn audit(expect: &Expect, output: &ringworker::JobOutput) -> Vec<String> {
    let mut anomalies = Vec::new();
    let id = output.id;
    for attempt in &output.failed_attempts {
        if let Err(e) = check_rows(expect, &attempt.rows) {
            anomalies.push(format!("job {id} attempt {}: {e}", attempt.attempt));
        }
        if attempt.error.rows_delivered() != Some(attempt.rows.len() as u64) {
            anomalies.push(format!(
                "job {id} attempt {}: {} rows received, error says {:?} ({})",
                attempt.attempt,
                attempt.rows.len(),
                attempt.error.rows_delivered(),
                attempt.error
            ));
        }
    }
    let check = match check_rows(expect, &output.rows) {
        Ok(check) => check,
        Err(e) => {
            anomalies.push(format!("job {id}: {e}"));
            return anomalies;
        }
    };
    if output.rows_delivered != output.rows.len() as u64 {
        anomalies.push(format!(
            "job {id}: rows_delivered {} but {} rows",
            output.rows_delivered,
            output.rows.len()
        ));
    }
    match (&output.result, expect) {
        (Ok(summary), Expect::Synthetic(request)) => {
            match serde_json::from_value::<SyntheticSummary>(summary.clone()) {
                Ok(summary) => {
                    if check.rows() != request.rows {
                        anomalies.push(format!(
                            "job {id}: Ok with {} of {} rows",
                            check.rows(),
                            request.rows
                        ));
                    }
                    if let Err(e) = check.finish(&summary) {
                        anomalies.push(format!("job {id}: {e}"));
                    }
                }
                Err(e) => anomalies.push(format!("job {id}: summary does not decode: {e}")),
            }
        }
        (Ok(_), Expect::BigRows(specs)) => {
            // The kill comes from a thread of the worker that watches the
            // ring; on a busy machine the rows may all be out first.
            if output.rows.len() != specs.len() {
                anomalies.push(format!(
                    "job {id}: big_rows Ok with {} of {} rows",
                    output.rows.len(),
                    specs.len()
                ));
            }
        }
        (Ok(_), Expect::Fault { after, completes }) => {
            if !completes || check.rows() != *after {
                anomalies.push(format!(
                    "job {id}: a fault job ended Ok with {} rows",
                    check.rows()
                ));
            }
        }
        (Err(error), _) => {
            let delivered = error.rows_delivered().unwrap_or(0);
            if delivered != output.rows.len() as u64 {
                anomalies.push(format!(
                    "job {id}: {} rows received, error says {delivered} ({error})",
                    output.rows.len()
                ));
            }
            if matches!(error, Error::Sink { .. } | Error::SinkPanicked { .. }) {
                anomalies.push(format!("job {id}: sink error {error}"));
            }
        }
    }
    anomalies
}

#[test]
#[ignore = "chaos run: a minute; see the doc comment for the command"]
fn chaos() {
    let secs = env_u64("RINGWORKER_CHAOS_SECS").unwrap_or(60);
    let seed = env_u64("RINGWORKER_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    {
        let mut worker = Worker::spawn(fixture()).unwrap();
        assert_usable(&mut worker);
    }
    let before = snapshot();

    let template = env_u64("RINGWORKER_CHAOS_TEMPLATE").is_some_and(|v| v != 0);
    let worker = fixture()
        .with_template(template)
        .with_hang_timeout(Duration::from_millis(800))
        .with_cancel_grace(Duration::from_millis(300))
        .with_control_timeout(Duration::from_secs(1))
        .with_memory(
            MemoryLimits::default()
                .with_hard_rss(Some(HARD_RSS))
                .with_sample_interval(Duration::from_millis(20)),
        );
    let pool = Arc::new(
        Pool::new(
            PoolConfig::new(worker, WORKERS)
                .with_queue_depth(OUTSTANDING)
                .with_queue_timeout(Duration::from_secs(30))
                .with_retry(RetryPolicy::retries(2))
                .with_total_rss_budget(Some(POOL_BUDGET)),
        )
        .unwrap(),
    );
    let faults: Faults = Arc::default();
    let cancels: Arc<Mutex<Vec<(Instant, CancelToken)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // The chaos thread: signals to random workers, and due cancellations.
    let chaos = {
        let (pool, faults, cancels, stop) = (
            Arc::clone(&pool),
            Arc::clone(&faults),
            Arc::clone(&cancels),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            let mut rng = SplitMix::new(seed ^ 0xC4A0_5EED);
            let mut next_signal = Instant::now() + Duration::from_millis(300);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let now = Instant::now();
                {
                    let mut due = cancels.lock().unwrap_or_else(|e| e.into_inner());
                    due.retain(|(at, token)| {
                        if *at <= now {
                            token.cancel();
                            false
                        } else {
                            true
                        }
                    });
                }
                if now < next_signal {
                    continue;
                }
                next_signal = now + Duration::from_millis(100 + rng.below(400));
                if template && rng.below(10) == 0 {
                    if let Some(pid) = pool
                        .template_pid()
                        .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
                        && rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
                    {
                        note(&faults, "template_sigkill");
                    }
                    continue;
                }
                let pids = pool.worker_pids();
                let Some(Some(pid)) = pids.get(rng.below(WORKERS as u64) as usize).copied() else {
                    continue;
                };
                if !support::alive(pid) {
                    continue;
                }
                let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
                    continue;
                };
                let (signal, kind) = if rng.below(3) == 0 {
                    (rustix::process::Signal::STOP, "sigstop")
                } else {
                    (rustix::process::Signal::KILL, "sigkill")
                };
                if rustix::process::kill_process(pid, signal).is_ok() {
                    note(&faults, kind);
                }
            }
        })
    };

    let mut rng = SplitMix::new(seed);
    let mut outstanding: VecDeque<(Expect, JobHandle)> = VecDeque::new();
    let (mut jobs, mut rows, mut ok, mut failed) = (0u64, 0u64, 0u64, 0u64);
    let mut anomalies: Vec<String> = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(secs);
    let finish_one = |expect: Expect,
                      handle: JobHandle,
                      anomalies: &mut Vec<String>,
                      errors: &mut BTreeMap<String, u64>|
     -> (u64, bool) {
        let output = handle.wait();
        anomalies.extend(audit(&expect, &output));
        let received = output.rows.len() as u64
            + output
                .failed_attempts
                .iter()
                .map(|a| a.rows.len() as u64)
                .sum::<u64>();
        if let Err(e) = &output.result {
            let name = format!("{e:?}");
            let name = name.split([' ', '{', '(']).next().unwrap_or("?").to_owned();
            *errors.entry(name).or_default() += 1;
        }
        (received, output.result.is_ok())
    };
    while Instant::now() < end {
        while outstanding.len() >= OUTSTANDING {
            let (expect, handle) = outstanding.pop_front().unwrap();
            let (r, good) = finish_one(expect, handle, &mut anomalies, &mut errors);
            rows += r;
            if good { ok += 1 } else { failed += 1 }
        }
        let mut options = JobOptions::default().idempotent(rng.below(2) == 0);
        let roll = rng.below(100);
        let (job, expect) = if roll < 65 {
            let request = SyntheticRequest::new(
                100 + rng.below(20_000),
                Sizes::Uniform {
                    min: 0,
                    max: 64 + rng.below(2000) as u32,
                },
            )
            .with_streams(1 + rng.below(3) as u16)
            .with_seed(rng.next_u64())
            .with_rate(20_000.0 + rng.below(200_000) as f64);
            match rng.below(10) {
                0 => {
                    let token = CancelToken::new();
                    let at = Instant::now() + Duration::from_millis(rng.below(500));
                    cancels
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((at, token.clone()));
                    options = options.cancel(token);
                    note(&faults, "cancel");
                }
                1 => {
                    options = options.timeout(Duration::from_millis(1 + rng.below(30)));
                    note(&faults, "tiny_deadline");
                }
                _ => {}
            }
            (
                Job::new("synthetic", &request).unwrap(),
                Expect::Synthetic(request),
            )
        } else if roll < 75 {
            let small = RowSpec {
                len: 1000,
                via: Via::Row,
            };
            let large = RowSpec {
                len: 1 << 20,
                via: if rng.below(2) == 0 {
                    Via::Row
                } else {
                    Via::Reserve
                },
            };
            let specs = vec![small, small, large, small];
            let request = BigRowsRequest {
                rows: specs.clone(),
                kill_after_bytes: Some(2048 + 64 * 1024 + rng.below(768 * 1024)),
                forge_interrupted: false,
            };
            note(&faults, "die_mid_row");
            (
                Job::new(BIG_ROWS, &request).unwrap(),
                Expect::BigRows(specs),
            )
        } else {
            let after = rng.below(3000);
            let (fault, kind, completes) = match rng.below(7) {
                6 => (
                    Fault::Allocate {
                        mib: 60,
                        hold_ms: 1000,
                    },
                    "pool_pressure",
                    true,
                ),
                0 => (Fault::KillSelf, "die_mid_rows_sigkill", false),
                1 => (Fault::Exit { code: 3 }, "die_mid_rows_exit", false),
                2 => (Fault::Abort, "die_mid_rows_abort", false),
                3 => (Fault::Hang, "hang", false),
                4 => (
                    Fault::Allocate {
                        mib: (HARD_RSS >> 20) * 2,
                        hold_ms: 2000,
                    },
                    "over_memory",
                    false,
                ),
                _ => (Fault::Panic, "panic", false),
            };
            note(&faults, kind);
            (
                Job::new("fault", &FaultRequest::new(fault, after)).unwrap(),
                Expect::Fault { after, completes },
            )
        };
        match pool.submit(job.with_options(options)) {
            Ok(handle) => {
                jobs += 1;
                outstanding.push_back((expect, handle));
            }
            Err(e) => {
                *errors.entry(format!("submit: {e}")).or_default() += 1;
            }
        }
    }
    for (expect, handle) in outstanding.drain(..) {
        let (r, good) = finish_one(expect, handle, &mut anomalies, &mut errors);
        rows += r;
        if good { ok += 1 } else { failed += 1 }
    }
    stop.store(true, Ordering::Relaxed);
    chaos.join().unwrap();
    let stats = pool.stats();
    // Children the chaos thread stopped are killed by the pool's drop.
    drop(Arc::try_unwrap(pool).expect("the chaos thread is joined"));
    let after = snapshot();
    if after != before {
        anomalies.push(format!("leak: before {before:?}, after {after:?}"));
    }
    let faults = faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!(
        "chaos: seed {seed}, {secs} s, template {template}, jobs {jobs} (ok {ok}, failed {failed}), rows {rows}, \
         retries {}, restarts {:?}, faults {faults:?}, errors {errors:?}, anomalies {}",
        stats.retries,
        stats.total.restarts,
        anomalies.len()
    );
    for anomaly in anomalies.iter().take(20) {
        println!("anomaly: {anomaly}");
    }
    assert_eq!(
        anomalies.len(),
        0,
        "anomalies: {:?}",
        &anomalies[..anomalies.len().min(20)]
    );
    assert!(ok > 0, "no job completed");
}
