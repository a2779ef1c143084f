//! Shared helpers of the integration tests: the fixture worker's config and
//! leak checks (fds, zombies, `/dev/shm`, threads) and checks shared by
//! the failure tests. Included by each test file with
//! `#[path = "support/mod.rs"] mod support;`, so not every helper is used by
//! every test.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringworker::{CancelToken, Row, Sink, SinkError, Worker, WorkerConfig};
use ringworker_child::builtins::synthetic::{
    Checksum, Sizes, SyntheticRequest, SyntheticSummary, fill_row,
};

/// Path of the fixture worker binary (Cargo builds it for this package's tests).
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringworker-fixture"))
}

/// A config for the fixture with short timeouts suited to tests.
pub fn fixture() -> WorkerConfig {
    WorkerConfig::new(fixture_path())
        .with_startup_timeout(Duration::from_secs(10))
        .with_hang_timeout(Some(Duration::from_secs(1)))
        .with_cancel_grace(Duration::from_millis(500))
}

/// The fds open in this process right now.
pub fn open_fds() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{} -> {}", e.file_name().to_string_lossy(), target)
        })
        .collect()
}

/// Entries in `/dev/shm`.
pub fn dev_shm() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of this process's children that are zombies.
pub fn zombie_children() -> Vec<u32> {
    children_in_state('Z')
}

/// Pids of this process's children (any state).
pub fn children() -> Vec<u32> {
    children_in_state('*')
}

fn children_in_state(wanted: char) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesized command: state, ppid, ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().unwrap_or("");
        if ppid == me && (wanted == '*' || state == wanted) {
            pids.push(pid);
        }
    }
    pids
}

/// True if a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// This process's anonymous resident memory (excludes the rings' shared pages).
pub fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Number of threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.count())
        .unwrap_or(0)
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
/// `synthetic` with seed 0): checks that each arrives exactly once and in
/// order, and counts them in a counter other threads can watch.
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
        let mut expected = [0u8; 64];
        fill_row(0, next, &mut expected);
        if row.sequence != next || row.stream != 0 || row.payload != expected {
            return Err(SinkError::new(format!(
                "row {} (stream {}, {} bytes) is not row {next} of the fault command",
                row.sequence,
                row.stream,
                row.payload.len()
            )));
        }
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

/// Runs a small synthetic request on `worker` and verifies every row and the
/// summary: the worker is usable.
pub fn assert_usable(worker: &mut Worker) {
    let request = SyntheticRequest::new(20_000, Sizes::Uniform { min: 0, max: 300 })
        .with_streams(2)
        .with_seed(77);
    let mut checksum = Checksum::default();
    let mut next = 0u64;
    let mut expected = Vec::new();
    let mut sink = |row: Row<'_>| {
        assert_eq!(row.sequence, next);
        expected.resize(request.sizes.size_of(request.seed, next), 0);
        fill_row(request.seed, next, &mut expected);
        assert_eq!(row.payload, &expected[..], "row {next}");
        checksum.add(row.payload);
        next += 1;
    };
    let summary: SyntheticSummary = worker
        .stream("synthetic", &request, &mut sink)
        .unwrap_or_else(|err| panic!("the next request on the same worker failed: {err}"));
    assert_eq!(next, request.rows);
    assert_eq!(summary.rows, request.rows);
    assert_eq!(summary.checksum, checksum.value());
}
