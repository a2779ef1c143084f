//! `ringworker mine-proofs`: synthetic proof candidates over a pool of
//! built-in workers ([`crate::proofs`]), one output row per candidate.
//!
//! Candidates `FIRST..FIRST+N` (those of `--shard`) run as
//! `synthetic-proofs` jobs, some of them hanging or blowing up memory at
//! the given rates: the pool's hang detection, memory limit and restarts
//! end those, and each is written as a failure row. Every candidate ends
//! with exactly one row, in the order the jobs complete:
//!
//! | column | type | result row | failure row |
//! | --- | --- | --- | --- |
//! | `id` | u64 | the candidate | the candidate |
//! | `status` | utf8 | `closed`, `progressed`, `failed`, `timeout` | the reason: `hung`, `memory_limit`, `job_timeout`, `crashed`, ... |
//! | `goals` | utf8, nullable | the goal state | null |
//! | `diagnostics` | utf8 | the messages | empty |
//! | `time_us` | u64, nullable | time in the worker | null |
//! | `failure_detail` | utf8, nullable | null | the error as the pool reported it |
//!
//! In NDJSON a result row is the worker's row (`id`, `status`, `goals`,
//! `diagnostics`, `time_us`) and a failure row has `id`, `status` and
//! `failure_detail`. The file is written atomically: on an error or Ctrl-C
//! nothing is left under its name.
//!
//! Failures of hanging and blowing-up candidates are results of the run,
//! not errors: the exit status is 0 as long as no candidate is lost
//! (ends with neither row), 1 otherwise.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use ringworker::Pool;
use ringworker_child::builtins::proofs::{
    DEFAULT_BLOWUP_BYTES, DEFAULT_BUDGET_MS, DEFAULT_WORK_US, ProofBatch, ProofResult,
};
use serde_json::json;

use crate::ReportArgs;
use crate::atomic::AtomicFile;
use crate::exit::{Class, ClassExt, Failure, Outcome};
use crate::export::output::Format;
use crate::interrupt::Interrupt;
use crate::progress::{Progress, counted, human_bytes, human_count};
use crate::proofs::{self, CandidateFailure, MiningSummary, Plan};
use crate::shard::Shard;
use crate::units::{parse_duration, parse_size};

/// Arguments of `mine-proofs`.
#[derive(Debug, Clone, clap::Args)]
pub struct MineArgs {
    /// Candidates to check: ids FIRST..FIRST+N (with --shard, those of the shard).
    #[arg(long, value_name = "N")]
    pub candidates: u64,
    /// The first candidate id.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub first: u64,
    /// Candidates per job.
    #[arg(long, value_name = "B", default_value_t = proofs::DEFAULT_BATCH)]
    pub batch: usize,
    /// Worker processes.
    #[arg(long, value_name = "W", default_value_t = 1)]
    pub workers: usize,
    /// Seed of the candidates' fates.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Candidates per million that hang (silent until the hang detection, 1 s, kills the worker).
    #[arg(long, value_name = "PER_MILLION", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub hang_rate: u32,
    /// Candidates per million that blow up memory (--blowup-bytes, until the memory limit kills the worker).
    #[arg(long, value_name = "PER_MILLION", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub blowup_rate: u32,
    /// Mean CPU time per candidate, in microseconds.
    #[arg(long, value_name = "U", default_value_t = DEFAULT_WORK_US)]
    pub work_us: u64,
    /// Soft budget per candidate, in milliseconds (a candidate over it ends with status timeout).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_BUDGET_MS)]
    pub budget_ms: u64,
    /// Deadline of each job (a batch of candidates); a job past it blames the candidate it was at.
    #[arg(long, value_name = "D", value_parser = parse_duration,
          default_value = "60s")]
    pub timeout: Duration,
    /// Hard memory limit per worker (RSS), e.g. 512MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "512MiB")]
    pub memory_limit: u64,
    /// What a blow-up allocates (more than --memory-limit, or it runs into --timeout).
    #[arg(long, value_name = "SIZE", value_parser = parse_size,
          default_value_t = DEFAULT_BLOWUP_BYTES)]
    pub blowup_bytes: u64,
    /// Output: FILE.parquet or FILE.ndjson, one row per candidate (default: none, only the summary).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Check only shard I of N (candidate ids k with k % N == I).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// How progress and the summary are shown.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Runs `mine-proofs`.
pub fn run(args: &MineArgs) -> Outcome {
    if args.workers == 0 || args.batch == 0 {
        return Err(Failure::new(
            Class::Usage,
            "--workers and --batch must be at least 1",
        ));
    }
    if args.timeout.is_zero() {
        return Err(Failure::new(Class::Usage, "--timeout must be above 0"));
    }
    let end = args.first.checked_add(args.candidates).ok_or_else(|| {
        Failure::new(
            Class::Usage,
            "--first + --candidates is past the largest id (2^64 - 1)",
        )
    })?;
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    // The output's place must be writable before any work starts.
    let mut file = match &args.out {
        None => None,
        Some(out) => {
            let format = Format::of_path(out).ok_or_else(|| {
                Failure::new(
                    Class::Usage,
                    format!(
                        "cannot tell the format of {}: name it .parquet or .ndjson",
                        out.display()
                    ),
                )
            })?;
            Some(ResultFile::create(out, format).class(Class::Output)?)
        }
    };
    let template = ProofBatch::new(Vec::new())
        .with_seed(args.seed)
        .with_failure_rates(args.hang_rate, args.blowup_rate)
        .with_work_us(args.work_us)
        .with_budget_ms(args.budget_ms)
        .with_blowup_bytes(args.blowup_bytes);
    let interrupt = Interrupt::install();
    let config = proofs::pool_config(args.workers, args.memory_limit)
        .class_with(Class::Internal, || "locating this executable")?;
    let pool = Pool::new(config).map_err(|e| Failure {
        class: Class::of(&e),
        error: anyhow::Error::new(e).context("starting the workers"),
    })?;
    let plan = Plan {
        batch: args.batch,
        template,
        job_timeout: args.timeout,
        cancel: interrupt.token().clone(),
    };
    let progress = Progress::start(
        "mine-proofs",
        args.report.progress,
        args.report.progress_interval,
    );
    let counters = Arc::clone(progress.counters());
    // The first write error stops the run (cancelling the jobs).
    let written = RefCell::new(Written {
        file: file.as_mut(),
        failure: None,
    });
    let summary = proofs::mine(
        &pool,
        (args.first..end).filter(|&k| shard.contains(k)),
        &plan,
        &counters,
        &mut |row| written.borrow_mut().write(|f| f.result(row), &plan),
        &mut |failure| written.borrow_mut().write(|f| f.failure(&failure), &plan),
    );
    pool.shutdown(Duration::from_secs(2));
    progress.finish();
    let write_failure = written.into_inner().failure;
    if interrupt.fired() {
        return Err(Failure::new(
            Class::Interrupted,
            "interrupted: workers stopped, no output written",
        ));
    }
    if let Some(failure) = write_failure {
        return Err(failure);
    }
    if summary.lost > 0 {
        print_report(args, shard, &summary);
        return Err(Failure::new(
            Class::Internal,
            format!(
                "{} of {} candidates ended with neither a result nor a failure (a bug); no output written",
                summary.lost, summary.candidates
            ),
        ));
    }
    if let Some(file) = file {
        file.commit().class(Class::Output)?;
    }
    print_report(args, shard, &summary);
    Ok(())
}

/// The output file (if any) and the first error writing it.
struct Written<'a> {
    file: Option<&'a mut ResultFile>,
    failure: Option<Failure>,
}

impl Written<'_> {
    fn write(&mut self, op: impl FnOnce(&mut ResultFile) -> anyhow::Result<()>, plan: &Plan) {
        if self.failure.is_some() {
            return;
        }
        if let Some(file) = self.file.as_deref_mut()
            && let Err(e) = op(file)
        {
            self.failure = Some(Failure {
                class: Class::Output,
                error: e,
            });
            plan.cancel.cancel();
        }
    }
}

fn print_report(args: &MineArgs, shard: Shard, summary: &MiningSummary) {
    if args.report.json {
        let run = json!({
            "first": args.first,
            "shard": shard,
            "workers": args.workers,
            "batch": args.batch,
            "seed": args.seed,
            "hang_per_million": args.hang_rate,
            "blowup_per_million": args.blowup_rate,
            "work_us": args.work_us,
            "budget_ms": args.budget_ms,
            "memory_limit": args.memory_limit,
            "blowup_bytes": args.blowup_bytes,
            "output": args.out.as_ref().map(|p| p.display().to_string()),
        });
        let report = proofs::merge_json(run, summary.json());
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
        return;
    }
    let mut line = format!(
        "mine-proofs: {} candidates in {:.2} s: {} candidates/s on {}; results {} ({}); failures {} ({}); lost {}; restarts {}",
        summary.candidates,
        summary.elapsed.as_secs_f64(),
        human_count(summary.candidates_per_sec() as u64),
        counted(args.workers, "worker"),
        summary.results,
        summary.statuses_text(),
        summary.failed(),
        summary.failures_text(),
        summary.lost,
        summary.restarts,
    );
    if let Some(out) = &args.out {
        line += &format!(
            "; {} of text into {}",
            human_bytes(summary.text_bytes),
            out.display()
        );
    }
    eprintln!("{line}");
}

/// Rows per Parquet record batch (builders are flushed this often, or
/// sooner past [`BATCH_TEXT_BYTES`]).
const BATCH_ROWS: usize = 4096;
/// Text bytes a record batch may hold before it is flushed.
const BATCH_TEXT_BYTES: usize = 32 << 20;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Zstd level of the Parquet pages.
const ZSTD_LEVEL: i32 = 3;

/// The output file of `mine-proofs`, under a temporary name until
/// committed.
enum ResultFile {
    Ndjson(AtomicFile),
    Parquet(Box<ParquetRows>),
}

impl ResultFile {
    fn create(dest: &Path, format: Format) -> anyhow::Result<ResultFile> {
        let file =
            AtomicFile::create(dest).with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(match format {
            Format::Ndjson => ResultFile::Ndjson(file),
            Format::Parquet => ResultFile::Parquet(Box::new(ParquetRows::new(file)?)),
        })
    }

    fn result(&mut self, row: &ProofResult) -> anyhow::Result<()> {
        match self {
            ResultFile::Ndjson(f) => {
                serde_json::to_writer(f.writer(), row)?;
                f.writer().write_all(b"\n")?;
            }
            ResultFile::Parquet(p) => p.push(
                row.id,
                row.status.as_str(),
                Some(&row.goals),
                &row.diagnostics,
                Some(row.time_us),
                None,
            )?,
        }
        Ok(())
    }

    fn failure(&mut self, failure: &CandidateFailure) -> anyhow::Result<()> {
        match self {
            ResultFile::Ndjson(f) => {
                let row = json!({
                    "id": failure.id,
                    "status": failure.reason.as_str(),
                    "failure_detail": failure.detail,
                });
                serde_json::to_writer(f.writer(), &row)?;
                f.writer().write_all(b"\n")?;
            }
            ResultFile::Parquet(p) => p.push(
                failure.id,
                failure.reason.as_str(),
                None,
                "",
                None,
                Some(&failure.detail),
            )?,
        }
        Ok(())
    }

    /// Finishes the file and renames it into place.
    fn commit(self) -> anyhow::Result<()> {
        let file = match self {
            ResultFile::Ndjson(f) => f,
            ResultFile::Parquet(p) => p.finish()?,
        };
        file.commit().context("writing the output")
    }
}

/// Rows into Arrow builders, builders into a Parquet file.
struct ParquetRows {
    writer: ArrowWriter<AtomicFile>,
    schema: SchemaRef,
    id: UInt64Builder,
    status: StringBuilder,
    goals: StringBuilder,
    diagnostics: StringBuilder,
    time_us: UInt64Builder,
    failure_detail: StringBuilder,
    buffered: usize,
    buffered_text: usize,
}

impl ParquetRows {
    fn new(file: AtomicFile) -> anyhow::Result<ParquetRows> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("goals", DataType::Utf8, true),
            Field::new("diagnostics", DataType::Utf8, false),
            Field::new("time_us", DataType::UInt64, true),
            Field::new("failure_detail", DataType::Utf8, true),
        ]));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))?;
        Ok(ParquetRows {
            writer,
            schema,
            id: UInt64Builder::new(),
            status: StringBuilder::new(),
            goals: StringBuilder::new(),
            diagnostics: StringBuilder::new(),
            time_us: UInt64Builder::new(),
            failure_detail: StringBuilder::new(),
            buffered: 0,
            buffered_text: 0,
        })
    }

    fn push(
        &mut self,
        id: u64,
        status: &str,
        goals: Option<&str>,
        diagnostics: &str,
        time_us: Option<u64>,
        failure_detail: Option<&str>,
    ) -> anyhow::Result<()> {
        self.id.append_value(id);
        self.status.append_value(status);
        self.goals.append_option(goals);
        self.diagnostics.append_value(diagnostics);
        self.time_us.append_option(time_us);
        self.failure_detail.append_option(failure_detail);
        self.buffered += 1;
        self.buffered_text +=
            goals.map_or(0, str::len) + diagnostics.len() + failure_detail.map_or(0, str::len);
        if self.buffered >= BATCH_ROWS || self.buffered_text >= BATCH_TEXT_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.goals.finish()),
            Arc::new(self.diagnostics.finish()),
            Arc::new(self.time_us.finish()),
            Arc::new(self.failure_detail.finish()),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        self.buffered = 0;
        self.buffered_text = 0;
        self.writer.write(&batch)?;
        Ok(())
    }

    /// Writes the buffered rows and the footer; hands back the file.
    fn finish(mut self) -> anyhow::Result<AtomicFile> {
        self.flush()?;
        Ok(self.writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: MineArgs,
    }

    /// The command line's defaults are the bench part's.
    #[test]
    fn defaults_match_the_mining_constants() {
        let args = Wrapper::parse_from(["mine-proofs", "--candidates", "1"]).args;
        assert_eq!(args.batch, proofs::DEFAULT_BATCH);
        assert_eq!(args.timeout, proofs::DEFAULT_JOB_TIMEOUT);
        assert_eq!(args.memory_limit, proofs::DEFAULT_MEMORY_LIMIT);
        assert_eq!(args.blowup_bytes, DEFAULT_BLOWUP_BYTES);
        assert!(args.blowup_bytes > args.memory_limit);
    }
}
