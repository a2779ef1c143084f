//! Rows larger than the ring's maximum record, end to end through
//! `Worker::stream`: 1 MiB and 16 MiB rows through a 2 MiB ring (maximum
//! record 256 KiB), fragmented by the child, reassembled by the supervisor,
//! checksummed by the sink and checked against the child's checksums.
//! Reported in GB/s (10^9 payload bytes per second).

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ringworker::Row;
use ringworker_child::{ChildRuntime, CommandError, RowWriter};
use serde::{Deserialize, Serialize};

use crate::checksum::Tally;
use crate::ring_case::Throughput;

/// The worker command that writes the rows.
pub const COMMAND: &str = "bench_large_rows";

/// The row sizes of the case, with the rows per run (quick, full).
pub const SIZES: [(&str, usize, (u64, u64)); 2] = [
    ("1MiB", 1 << 20, (500, 2000)),
    ("16MiB", 16 << 20, (32, 128)),
];

/// Arguments of [`COMMAND`].
#[derive(Debug, Serialize, Deserialize)]
pub struct LargeRowsRequest {
    /// Rows to write.
    pub rows: u64,
    /// Bytes per row.
    pub row_bytes: usize,
}

/// What the child wrote (a [`Tally`] on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Rows.
    pub rows: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Wrapping sum of the rows' checksums.
    pub sum: u64,
}

impl From<Tally> for Sent {
    fn from(t: Tally) -> Self {
        Sent {
            rows: t.rows,
            bytes: t.bytes,
            sum: t.sum,
        }
    }
}

/// Adds [`COMMAND`] to a worker: `rows` rows of `row_bytes` bytes, each a
/// fixed pattern with the row number in its first 8 bytes; the summary is
/// the child's tally of what it wrote.
pub fn register(worker: ChildRuntime) -> ChildRuntime {
    worker.command(COMMAND, "rows larger than the ring's records", write_rows)
}

fn write_rows(request: LargeRowsRequest, writer: &mut RowWriter<'_>) -> Result<Sent, CommandError> {
    let mut row: Vec<u8> = (0..request.row_bytes)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8)
        .collect();
    let head = row.len().min(8);
    let mut tally = Tally::default();
    for n in 0..request.rows {
        row[..head].copy_from_slice(&n.to_le_bytes()[..head]);
        writer.row(0, &row)?;
        tally.add(&row);
    }
    Ok(tally.into())
}

/// Streams `rows` rows of `row_bytes` through a worker on a ring of
/// `capacity` bytes; the clock runs from the request to its summary.
pub fn run(capacity: usize, rows: u64, row_bytes: usize) -> Result<Throughput> {
    let mut worker = crate::e2e::spawn_self_worker(capacity)?;
    let _: Sent = worker
        .call(COMMAND, &LargeRowsRequest { rows: 2, row_bytes })
        .context("warm-up request")?;
    let mut seen = Tally::default();
    let mut sink = |row: Row<'_>| seen.add(row.payload);
    let start = Instant::now();
    let sent: Sent = worker
        .stream(COMMAND, &LargeRowsRequest { rows, row_bytes }, &mut sink)
        .context("streaming large rows")?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        sent == Sent::from(seen) && seen.rows == rows,
        "large-row delivery mismatch: child sent {sent:?}, sink saw {seen:?}"
    );
    worker.shutdown(std::time::Duration::from_secs(1));
    Ok(Throughput {
        rows,
        bytes: seen.bytes,
        secs,
    })
}

/// Runs both sizes `reps` times, prints the best and median GB/s of each to
/// stderr (and one JSON line each to stdout with `json`).
pub fn run_case(capacity: usize, quick: bool, reps: Option<usize>, json: bool) -> Result<()> {
    let reps = reps.unwrap_or(if quick { 3 } else { 5 });
    for (name, row_bytes, (quick_rows, full_rows)) in SIZES {
        let rows = if quick { quick_rows } else { full_rows };
        let mut gbps = Vec::with_capacity(reps);
        for rep in 0..reps {
            eprintln!(
                "ringbench: large rows {name} end-to-end run {}/{reps}",
                rep + 1
            );
            let t = run(capacity, rows, row_bytes).with_context(|| format!("large rows {name}"))?;
            gbps.push(t.bytes_per_s() / 1e9);
        }
        gbps.sort_by(f64::total_cmp);
        let best = gbps[gbps.len() - 1];
        let median = gbps[gbps.len() / 2];
        eprintln!(
            "large rows {name:>5}: {best:.2} GB/s best, {median:.2} GB/s median \
             ({rows} rows, ring {capacity} B, max record {} B, end to end)",
            shm_proto::RingConfig::largest_payload_for(capacity)
        );
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "case": format!("large-{name}"),
                    "row_bytes": row_bytes,
                    "rows": rows,
                    "capacity": capacity,
                    "e2e_gb_per_s_best": best,
                    "e2e_gb_per_s_median": median,
                })
            );
        }
    }
    Ok(())
}
