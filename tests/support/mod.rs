//! Shared helpers of the integration tests: the fixture worker's config,
//! leak checks (fds, zombies, `/dev/shm`, threads: the test kit's scanners,
//! re-exported) and checks shared by the failure tests (built on the kit's
//! row checks). Included by each test file with
//! `#[path = "support/mod.rs"] mod support;`, so not every helper is used by
//! every test.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringworker::{CancelToken, RestartPolicy, Row, Sink, SinkError, Worker, WorkerConfig};
use ringworker_testkit::faults::FAULT_ROW_BYTES;
use ringworker_testkit::rows::{RowCheck, Sizes, SyntheticRequest, SyntheticSummary, verify_row};

/// The scanners are the test kit's.
#[allow(unused_imports)]
pub use ringworker_testkit::procfs::{
    alive, children, dev_shm, open_fds, rss_anon_kib, shm_mappings, threads, zombie_children,
};

/// Path of the fixture worker binary (Cargo builds it for this package's tests).
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringworker-fixture"))
}

/// A config for the fixture with short timeouts suited to tests, and a
/// restart cap far above what the failure tests need (the cap's own tests
/// set theirs).
pub fn fixture() -> WorkerConfig {
    WorkerConfig::new(fixture_path())
        .with_startup_timeout(Duration::from_secs(10))
        .with_hang_timeout(Duration::from_secs(1))
        .with_cancel_grace(Duration::from_millis(500))
        .with_restart_policy(many_restarts())
}

/// The default restart policy with room for tests that kill hundreds of children.
pub fn many_restarts() -> RestartPolicy {
    RestartPolicy::default().with_restart_limit(100_000, Duration::from_secs(1))
}

/// Polls `condition` every millisecond until it holds or `timeout` passes;
/// returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Rows a `fault` request writes before it misbehaves.
pub const FAULT_ROWS: u64 = 1000;

/// A sink for the rows of the `fault` command (64 bytes each, content as
/// `synthetic` with seed 0): checks from the sequence number the child wrote
/// into each row that each arrives exactly once and in order, checks every
/// byte, and counts them in a counter other threads can watch.
#[derive(Debug, Default, Clone)]
pub struct FaultRows {
    /// Rows received so far.
    pub seen: Arc<AtomicU64>,
}

impl FaultRows {
    /// Rows received so far.
    pub fn count(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }
}

impl Sink for FaultRows {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        let next = self.seen.load(Ordering::Relaxed);
        if row.stream != 0 || row.payload.len() != FAULT_ROW_BYTES {
            return Err(SinkError::new(format!(
                "row {next} (stream {}, {} bytes) is not a row of the fault command",
                row.stream,
                row.payload.len()
            )));
        }
        verify_row(0, next, row.payload).map_err(SinkError::new)?;
        self.seen.store(next + 1, Ordering::Release);
        Ok(())
    }
}

/// Cancels `token` from another thread once `rows` reports at least `after`
/// rows (or after 10 s, so a broken request cannot hang the test).
pub fn cancel_after(
    token: CancelToken,
    rows: FaultRows,
    after: u64,
) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let reached = wait_until(Duration::from_secs(10), || rows.count() >= after);
        token.cancel();
        reached
    })
}

/// Streams a synthetic request and verifies every row (its embedded
/// sequence number, stream, length and bytes) and the summary; a row that
/// fails its check panics inside the sink.
pub fn stream_verified(
    worker: &mut Worker,
    request: &SyntheticRequest,
) -> Result<SyntheticSummary, ringworker::Error> {
    let mut check = RowCheck::for_request(request);
    let mut sink = |row: Row<'_>| {
        if let Err(err) = check.check(row.stream, row.payload) {
            panic!("{err}");
        }
    };
    let summary: SyntheticSummary = worker.stream("synthetic", request, &mut sink)?;
    assert_eq!(check.rows(), request.rows);
    assert_eq!(summary.rows, request.rows);
    check.finish(&summary).unwrap();
    Ok(summary)
}

/// Runs a small synthetic request on `worker` and verifies every row and
/// the summary: the worker is usable.
pub fn assert_usable(worker: &mut Worker) {
    let request = SyntheticRequest::new(20_000, Sizes::Uniform { min: 0, max: 300 })
        .with_streams(2)
        .with_seed(77);
    stream_verified(worker, &request)
        .unwrap_or_else(|err| panic!("the next request on the same worker failed: {err}"));
}
