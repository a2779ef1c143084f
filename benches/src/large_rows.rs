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

/// Runs of the case per size: `reps`, else 3 (quick) or 5.
pub fn reps(quick: bool, reps: Option<usize>) -> usize {
    reps.unwrap_or(if quick { 3 } else { 5 })
}

/// The best and median GB/s of one row size.
#[derive(Debug, Clone)]
pub struct SizeResult {
    /// `1MiB` or `16MiB`.
    pub name: &'static str,
    /// Bytes per row.
    pub row_bytes: usize,
    /// Rows per run.
    pub rows: u64,
    /// Ring capacity, bytes.
    pub capacity: usize,
    /// Best run, GB/s.
    pub best_gb_per_s: f64,
    /// Median run, GB/s.
    pub median_gb_per_s: f64,
}

impl SizeResult {
    /// The report line (no trailing newline).
    pub fn line(&self) -> String {
        format!(
            "large rows {:>5}: {:.2} GB/s best, {:.2} GB/s median \
             ({} rows, ring {} B, max record {} B, end to end)",
            self.name,
            self.best_gb_per_s,
            self.median_gb_per_s,
            self.rows,
            self.capacity,
            shm_proto::RingConfig::largest_payload_for(self.capacity)
        )
    }

    /// The JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "case": format!("large-{}", self.name),
            "row_bytes": self.row_bytes,
            "rows": self.rows,
            "capacity": self.capacity,
            "e2e_gb_per_s_best": self.best_gb_per_s,
            "e2e_gb_per_s_median": self.median_gb_per_s,
        })
    }
}

/// Runs both sizes `reps` times (see [`reps`]), calling `progress` with a
/// message before each run, and returns the best and median GB/s of each.
pub fn run_case(
    capacity: usize,
    quick: bool,
    reps: usize,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<SizeResult>> {
    let mut out = Vec::with_capacity(SIZES.len());
    for (name, row_bytes, (quick_rows, full_rows)) in SIZES {
        let rows = if quick { quick_rows } else { full_rows };
        let mut gbps = Vec::with_capacity(reps);
        for rep in 0..reps {
            progress(format!(
                "large rows {name} end-to-end run {}/{reps}",
                rep + 1
            ));
            let t = run(capacity, rows, row_bytes).with_context(|| format!("large rows {name}"))?;
            gbps.push(t.bytes_per_s() / 1e9);
        }
        gbps.sort_by(f64::total_cmp);
        out.push(SizeResult {
            name,
            row_bytes,
            rows,
            capacity,
            best_gb_per_s: gbps[gbps.len() - 1],
            median_gb_per_s: gbps[gbps.len() / 2],
        });
    }
    Ok(out)
}
