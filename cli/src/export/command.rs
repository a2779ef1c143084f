//! The worker side of `export-decls`: the `export-decls` command of the
//! built-in worker. It reads a lean4export file and streams one wire row
//! ([`ringworker_lean::wire`]) per selected constant through the ring.
//!
//! Which constants a request selects: those of its shard (ordinal `k` with
//! `k % shard.count == shard.index`); numbering the shard's constants
//! `j = 0, 1, ...`, constant `j` belongs to part `j / rows_per_part`, and
//! part `p` to worker `p % workers`; parts listed in `skip_parts` (already
//! written by an earlier, interrupted run) are left out. Every worker reads
//! the whole file (the format's tables must be built in order) but walks
//! only its own constants' expressions, and each part comes whole from one
//! worker, in order.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use ringworker_child::{CommandError, RowWriter, check_cancelled};
use ringworker_lean::{ExportReader, Poll, wire};
use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// The command's name.
pub const NAME: &str = "export-decls";

/// One worker's share of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The lean4export file (a path the worker opens).
    pub input: PathBuf,
    /// The run's shard.
    pub shard: Shard,
    /// This worker's index among `workers`.
    pub worker: u64,
    /// Workers sharing the shard.
    pub workers: u64,
    /// Constants per output part (`u64::MAX`: one part).
    pub rows_per_part: u64,
    /// Parts to leave out, sorted.
    #[serde(default)]
    pub skip_parts: Vec<u64>,
}

/// What a worker reports at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportSummary {
    /// Rows it streamed.
    pub rows: u64,
    /// Constants of the shard in the whole export (all workers', skipped
    /// parts' included).
    pub shard_rows: u64,
    /// Parts of the shard: `ceil(shard_rows / rows_per_part)`.
    pub parts: u64,
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub input_bytes: u64,
    /// The export's format version.
    pub version: String,
}

/// Runs the command.
pub fn run(request: ExportRequest, out: &mut RowWriter<'_>) -> Result<ExportSummary, CommandError> {
    let ExportRequest {
        input,
        shard,
        worker,
        workers,
        rows_per_part,
        skip_parts,
    } = request;
    if shard.count == 0 || shard.index >= shard.count || workers == 0 || worker >= workers {
        return Err(CommandError::bad_request(format!(
            "bad slice: shard {shard}, worker {worker} of {workers}"
        )));
    }
    if rows_per_part == 0 {
        return Err(CommandError::bad_request("rows_per_part is 0"));
    }
    let file = File::open(&input)
        .map_err(|e| CommandError::new("input", format!("{}: {e}", input.display())))?;
    let input_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = ExportReader::new(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| CommandError::new("read", format!("{}: {e}", input.display())))?;
    let version = reader.meta().format.version.clone();
    let part_of = move |ordinal: u64| (ordinal / shard.count) / rows_per_part;
    let mut reader = reader.with_selection(move |ordinal| {
        if !shard.contains(ordinal) {
            return false;
        }
        let part = part_of(ordinal);
        part % workers == worker && skip_parts.binary_search(&part).is_err()
    });
    let mut buf = Vec::with_capacity(4096);
    let mut rows = 0u64;
    loop {
        check_cancelled(out)?;
        // Parts of other workers can be long stretches without a row: beat
        // every few thousand lines so the watchdog sees a busy worker.
        let next = reader
            .poll_selected(4096)
            .map_err(|e| CommandError::new("read", format!("{}: {e}", input.display())))?;
        let (ordinal, row) = match next {
            Poll::Row(ordinal, row) => (ordinal, row),
            Poll::Busy => {
                out.beat();
                continue;
            }
            Poll::End => break,
        };
        buf.clear();
        wire::encode(part_of(ordinal), ordinal, &row, &mut buf);
        out.row(0, &buf)?;
        rows += 1;
    }
    let stats = reader.stats();
    let total = stats.rows + stats.skipped;
    // Constants k < total with k % count == index.
    let shard_rows = total / shard.count + u64::from(total % shard.count > shard.index);
    Ok(ExportSummary {
        rows,
        shard_rows,
        parts: shard_rows.div_ceil(rows_per_part),
        lines: stats.lines,
        input_bytes,
        version,
    })
}
