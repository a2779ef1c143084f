//! End to end through the public API: a `ringworker::Worker` running the
//! built-in `synthetic` command in a child (this binary re-executed as a
//! worker), rows delivered to a sink that checksums every payload byte.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ringworker::{Row, Worker, WorkerConfig};
use ringworker_child::builtins::synthetic::{Checksum, SyntheticRequest, SyntheticSummary};

use crate::ring_case::Throughput;

/// Hidden subcommand that makes this binary a ringworker worker.
pub const WORKER_SUBCOMMAND: &str = "__worker";

/// Serves the built-in commands (never returns while the supervisor lives).
pub fn run_worker() -> Result<()> {
    crate::large_rows::register(ringworker_child::builtins::register(
        ringworker_child::ChildRuntime::new("ringbench-worker", env!("CARGO_PKG_VERSION")),
    ))
    .run()
    .context("serving as a ringworker worker")
}

/// Starts this binary as a worker (see [`run_worker`]) on a ring of
/// `capacity` bytes with the largest records it allows.
pub fn spawn_self_worker(capacity: usize) -> Result<Worker> {
    Worker::spawn(self_worker_config(capacity)?).context("starting the worker")
}

/// The configuration [`spawn_self_worker`] uses (default deadlines, memory
/// limits and restart policy), for callers that change some of it.
pub fn self_worker_config(capacity: usize) -> Result<WorkerConfig> {
    let exe = std::env::current_exe().context("locating this executable")?;
    Ok(WorkerConfig::new(exe)
        .with_args([WORKER_SUBCOMMAND])
        .with_ring(
            capacity,
            shm_proto::RingConfig::largest_payload_for(capacity),
        ))
}

/// Streams `rows` rows of `row_bytes` bytes through `Worker::stream` on a
/// ring of `capacity` bytes. The clock runs from the request to its summary
/// (the child is started and has answered one small request before).
pub fn run(capacity: usize, rows: u64, row_bytes: u32) -> Result<Throughput> {
    let mut worker = spawn_self_worker(capacity)?;
    let _: SyntheticSummary = worker
        .call("synthetic", &SyntheticRequest::fixed(1000, row_bytes))
        .context("warm-up request")?;
    let mut checksum = Checksum::default();
    let mut bytes = 0u64;
    let mut sink = |row: Row<'_>| {
        checksum.add(row.payload);
        bytes += row.payload.len() as u64;
    };
    let start = Instant::now();
    let summary: SyntheticSummary = worker
        .stream(
            "synthetic",
            &SyntheticRequest::fixed(rows, row_bytes),
            &mut sink,
        )
        .context("streaming synthetic rows")?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        summary.rows == rows && summary.bytes == bytes && summary.checksum == checksum.value(),
        "end-to-end delivery mismatch: child sent {summary:?}, sink saw {bytes} bytes checksum {:#x}",
        checksum.value()
    );
    worker.shutdown(std::time::Duration::from_secs(1));
    Ok(Throughput { rows, bytes, secs })
}
