//! `ringworker export-decls`: bulk declaration export from a lean4export
//! file through worker processes, into Parquet or NDJSON, one file or a
//! directory of parts; resumable, shardable.
//!
//! The supervisor (this module) checks the input and the output, starts a
//! pool of built-in workers and gives each one job: its slice of the export
//! (see [`command`] for who reads what). Workers parse and walk; the
//! supervisor decodes the wire rows and encodes the output, so reading and
//! writing run in parallel processes. In a directory output each part is
//! one file, committed (renamed into place, then listed in the
//! [`manifest`]) as soon as its last row is in; `--resume` skips the parts
//! the manifest lists.

pub mod bench;
pub mod command;
pub mod manifest;
pub mod output;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use ringworker::{Job, JobOptions, MemoryLimits, Order, Pool, PoolConfig, RetryPolicy};
use ringworker_lean::parquet::ParquetOptions;
use ringworker_lean::{ExportReader, SyntheticConfig, wire, write_export};
use serde::Serialize;

use crate::exit::{Class, ClassExt, Failure, Outcome};
use crate::interrupt::Interrupt;
use crate::progress::{Progress, counted, human_bytes, human_count};
use crate::shard::Shard;
use crate::units::{parse_duration, parse_size};
use crate::{ReportArgs, worker};
use command::{ExportRequest, ExportSummary};
use manifest::{InputId, Manifest, Part, RunKey, part_file};
use output::{Format, RowFile};

/// Arguments of `export-decls`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The lean4export NDJSON file (format 3.0 or 3.1), or `-` for stdin
    /// (copied to a temporary file first: workers read it by path).
    #[arg(required_unless_present = "synthetic", conflicts_with = "synthetic")]
    pub input: Option<PathBuf>,
    /// Export a generated file of N declarations instead of INPUT (written
    /// to a temporary file first, not timed).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u64>,
    /// Seed of `--synthetic`.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output: `FILE.parquet`, `FILE.ndjson`, or a directory (an existing
    /// one, a path ending in `/`, or one without an extension) for a
    /// partitioned dataset of `part-NNNNN.parquet` files.
    #[arg(long)]
    pub out: PathBuf,
    /// Output format (default: from the file name; parquet for a directory).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Worker processes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Export only shard I of N (constants whose ordinal is I mod N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Continue an interrupted export into the same directory: parts its
    /// manifest lists are kept, the others written.
    #[arg(long)]
    pub resume: bool,
    /// Declarations per part file in a directory output.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows_per_file: u64,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = ParquetOptions::default().row_group_rows)]
    pub row_group_rows: usize,
    /// Zstd level of the Parquet pages.
    #[arg(long, default_value_t = ParquetOptions::default().zstd_level)]
    pub zstd_level: i32,
    /// Deadline of each worker's job (default: none; hangs are still caught).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Hard memory limit per worker (RSS), e.g. `2GiB`.
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<u64>,
    /// Retries of a worker's job after its worker crashed, hung or hit its
    /// memory limit (directory outputs only: finished parts are kept).
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// How progress and the summary are shown.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// What an export did (printed as the summary; `--json` prints it as one
/// object).
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The input path (a temporary file for stdin and `--synthetic`).
    pub input: String,
    /// Its size.
    pub input_bytes: u64,
    /// The output path.
    pub output: String,
    /// `parquet` or `ndjson`.
    pub format: &'static str,
    /// Whether the output is a directory of parts.
    pub partitioned: bool,
    /// The shard.
    pub shard: Shard,
    /// Workers.
    pub workers: usize,
    /// Declarations written by this run.
    pub declarations: u64,
    /// Declarations of the shard in the output (this run's and earlier
    /// runs' parts).
    pub total_declarations: u64,
    /// Parts written by this run.
    pub parts_written: u64,
    /// Parts an earlier run had completed (`--resume`).
    pub parts_resumed: u64,
    /// Seconds of the export (generation of `--synthetic` excluded).
    pub seconds: f64,
    /// Declarations per second.
    pub decls_per_s: f64,
    /// Input megabytes (10^6) per second.
    pub input_mb_per_s: f64,
    /// Seconds spent generating `--synthetic` input.
    pub generate_seconds: Option<f64>,
    /// Worker restarts.
    pub restarts: u64,
    /// Jobs that failed after their retries.
    pub failed_jobs: u64,
    /// The export's format version.
    pub version: String,
}

/// The input, and the temporary file holding it if it is one.
struct Input {
    path: PathBuf,
    _temp: Option<tempfile::TempPath>,
    generate_seconds: Option<f64>,
}

/// Runs `export-decls`: the export, then its summary.
pub fn run(args: &ExportArgs) -> Outcome {
    let report = export(args)?;
    print_report(&report, &args.report);
    Ok(())
}

/// The export `export-decls` runs (progress as `args.report` says), without
/// the summary: what [`run`] prints, and what `bench` times.
pub fn export(args: &ExportArgs) -> Outcome<ExportReport> {
    if args.workers == 0 {
        return Err(Failure::new(Class::Usage, "--workers must be at least 1"));
    }
    if args.rows_per_file == 0 || args.row_group_rows == 0 {
        return Err(Failure::new(
            Class::Usage,
            "--rows-per-file and --row-group-rows must be at least 1",
        ));
    }
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let partitioned = is_directory_output(&args.out);
    let format = match (args.format, partitioned) {
        (Some(f), _) => f,
        (None, true) => Format::Parquet,
        (None, false) => Format::of_path(&args.out).ok_or_else(|| {
            Failure::new(
                Class::Usage,
                format!(
                    "cannot tell the format of {}: name it .parquet or .ndjson, or pass --format",
                    args.out.display()
                ),
            )
        })?,
    };
    if args.resume && !partitioned {
        return Err(Failure::new(
            Class::Usage,
            "--resume needs a directory output (a single file is written whole or not at all)",
        ));
    }
    // The output's place must be writable before any work starts.
    if partitioned {
        std::fs::create_dir_all(&args.out).class_with(Class::Output, || {
            format!("cannot create {}", args.out.display())
        })?;
    } else {
        let dir = args
            .out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Failure::new(
                Class::Output,
                format!(
                    "cannot write {}: {} is not a directory",
                    args.out.display(),
                    dir.display()
                ),
            ));
        }
    }
    let input = resolve_input(args)?;
    let file = std::fs::File::open(&input.path).class_with(Class::Input, || {
        format!("cannot read {}", input.path.display())
    })?;
    // The meta record, checked here so a wrong file fails before any worker starts.
    let meta = ExportReader::new(BufReader::new(file)).class_with(Class::Input, || {
        format!("{} is not a lean4export file", input.path.display())
    })?;
    let version = meta.meta().format.version.clone();
    drop(meta);
    let input_id = InputId::of(&input.path).class_with(Class::Input, || {
        format!("cannot read {}", input.path.display())
    })?;
    let options = ParquetOptions {
        row_group_rows: args.row_group_rows,
        zstd_level: args.zstd_level,
        ..ParquetOptions::default()
    };
    let mut report = ExportReport {
        input: input.path.display().to_string(),
        input_bytes: input_id.bytes,
        output: args.out.display().to_string(),
        format: format.extension(),
        partitioned,
        shard,
        workers: args.workers,
        declarations: 0,
        total_declarations: 0,
        parts_written: 0,
        parts_resumed: 0,
        seconds: 0.0,
        decls_per_s: 0.0,
        input_mb_per_s: 0.0,
        generate_seconds: input.generate_seconds,
        restarts: 0,
        failed_jobs: 0,
        version,
    };
    let interrupt = Interrupt::install();
    let result = if partitioned {
        export_partitioned(
            args,
            &input.path,
            input_id,
            shard,
            format,
            &options,
            &interrupt,
            &mut report,
        )
    } else {
        export_single(
            args,
            &input.path,
            shard,
            format,
            &options,
            &interrupt,
            &mut report,
        )
    };
    if report.seconds > 0.0 {
        report.decls_per_s = report.declarations as f64 / report.seconds;
        report.input_mb_per_s = report.input_bytes as f64 / 1e6 / report.seconds;
    }
    if interrupt.fired() {
        return Err(Failure::new(
            Class::Interrupted,
            if partitioned {
                format!(
                    "interrupted: workers stopped; {} complete parts kept in {} (--resume continues)",
                    report.parts_written + report.parts_resumed,
                    args.out.display()
                )
            } else {
                "interrupted: workers stopped, no output written".to_owned()
            },
        ));
    }
    result?;
    Ok(report)
}

fn is_directory_output(out: &Path) -> bool {
    out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') || out.extension().is_none()
}

fn resolve_input(args: &ExportArgs) -> Outcome<Input> {
    if let Some(n) = args.synthetic {
        let started = Instant::now();
        let temp = crate::scratch::file("synthetic", ".ndjson")
            .class(Class::Output)
            .map_err(|f| Failure::new(f.class, format!("cannot create a temporary file: {}", f)))?;
        let (file, path) = temp.into_parts();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write_export(&SyntheticConfig::new(args.seed, n), &mut w)
            .and_then(|_| std::io::Write::flush(&mut w))
            .class_with(Class::Output, || "writing the synthetic export")?;
        return Ok(Input {
            path: path.to_path_buf(),
            _temp: Some(path),
            generate_seconds: Some(started.elapsed().as_secs_f64()),
        });
    }
    let input = args
        .input
        .as_ref()
        .expect("clap requires INPUT without --synthetic");
    if input.as_os_str() == "-" {
        let temp = crate::scratch::file("stdin", ".ndjson")
            .class_with(Class::Output, || "cannot create a temporary file for stdin")?;
        let (file, path) = temp.into_parts();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        std::io::copy(&mut std::io::stdin().lock(), &mut w)
            .class_with(Class::Input, || "reading stdin")?;
        std::io::Write::flush(&mut w).class_with(Class::Output, || "spooling stdin")?;
        return Ok(Input {
            path: path.to_path_buf(),
            _temp: Some(path),
            generate_seconds: None,
        });
    }
    if !input.is_file() {
        let why = if input.exists() {
            "not a regular file"
        } else {
            "no such file"
        };
        return Err(Failure::new(
            Class::Input,
            format!("cannot read {}: {why}", input.display()),
        ));
    }
    Ok(Input {
        path: input.clone(),
        _temp: None,
        generate_seconds: None,
    })
}

fn pool_for(args: &ExportArgs, retries: u32) -> Outcome<Pool> {
    let mut config = worker::config().class_with(Class::Internal, || "locating this executable")?;
    config = match args.timeout {
        Some(t) => config.with_request_timeout(t),
        None => config.long_running(),
    };
    if let Some(limit) = args.memory_limit {
        config = config.with_memory(MemoryLimits::default().with_hard_rss(Some(limit)));
    }
    let pool = PoolConfig::new(config, args.workers).with_retry(RetryPolicy::retries(retries));
    Pool::new(pool).map_err(|e| Failure {
        class: Class::of(&e),
        error: anyhow::Error::new(e).context("starting the workers"),
    })
}

fn jobs(
    args: &ExportArgs,
    input: &Path,
    shard: Shard,
    rows_per_part: u64,
    skip_parts: &[u64],
    interrupt: &Interrupt,
    idempotent: bool,
) -> Outcome<Vec<Job>> {
    (0..args.workers as u64)
        .map(|worker| {
            let request = ExportRequest {
                input: input.to_owned(),
                shard,
                worker,
                workers: args.workers as u64,
                rows_per_part,
                skip_parts: skip_parts.to_vec(),
            };
            let mut options = JobOptions::default()
                .cancel(interrupt.token().clone())
                .idempotent(idempotent);
            if let Some(t) = args.timeout {
                options = options.timeout(t);
            }
            Ok(Job::new(command::NAME, &request)
                .class(Class::Internal)?
                .with_options(options))
        })
        .collect()
}

/// The first failure of the sink: it stops the run (cancelling the jobs).
struct SinkFailure<'a> {
    failure: Option<Failure>,
    interrupt: &'a Interrupt,
}

impl SinkFailure<'_> {
    fn set(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
            self.interrupt.token().cancel();
        }
    }
}

/// Checks the jobs' outcomes; returns the summaries of the successful ones
/// and the first failure.
fn outcomes(
    outputs: Vec<ringworker::JobOutput>,
    report: &mut ExportReport,
) -> (Vec<ExportSummary>, Option<Failure>) {
    let mut summaries = Vec::new();
    let mut first = None;
    for (worker, output) in outputs.into_iter().enumerate() {
        match output.result {
            Ok(value) => match serde_json::from_value::<ExportSummary>(value) {
                Ok(s) => summaries.push(s),
                Err(e) => {
                    first.get_or_insert(Failure::new(
                        Class::Internal,
                        format!("worker {worker}'s summary does not decode: {e}"),
                    ));
                }
            },
            Err(e) => {
                report.failed_jobs += 1;
                let class = match e.kind() {
                    // The worker's own failure: the input is at fault.
                    ringworker::ErrorKind::Worker => Class::Input,
                    _ => Class::of(&e),
                };
                first.get_or_insert(Failure {
                    class,
                    error: anyhow::Error::new(e).context(format!("worker {worker} failed")),
                });
            }
        }
    }
    (summaries, first)
}

#[allow(clippy::too_many_arguments)]
fn export_single(
    args: &ExportArgs,
    input: &Path,
    shard: Shard,
    format: Format,
    options: &ParquetOptions,
    interrupt: &Interrupt,
    report: &mut ExportReport,
) -> Outcome {
    let mut file = RowFile::create(&args.out, format, options).class(Class::Output)?;
    // One worker reads everything as one part; several take turns by
    // chunks of constants (rows then arrive in completion order).
    let rows_per_part = if args.workers == 1 { u64::MAX } else { 8192 };
    let pool = pool_for(args, 0)?;
    let jobs = jobs(args, input, shard, rows_per_part, &[], interrupt, false)?;
    let progress = Progress::start(
        "export-decls",
        args.report.progress,
        args.report.progress_interval,
    );
    let counters = std::sync::Arc::clone(progress.counters());
    counters.jobs_total.store(args.workers as u64, Relaxed);
    let started = Instant::now();
    let mut failure = SinkFailure {
        failure: None,
        interrupt,
    };
    let merged = pool.run_merged(jobs, Order::Completion, |tagged| {
        if failure.failure.is_some() {
            return;
        }
        counters.row(tagged.row.payload.len());
        let result = wire::decode(tagged.row.payload)
            .map_err(|e| {
                Failure::new(
                    Class::Internal,
                    format!("worker {}: row {}: {e}", tagged.job, tagged.row.sequence),
                )
            })
            .and_then(|w| file.write(&w.row).class(Class::Output));
        if let Err(f) = result {
            failure.set(f);
        }
    });
    report.seconds = started.elapsed().as_secs_f64();
    report.restarts = pool.stats().total.total_restarts();
    pool.shutdown(Duration::from_secs(2));
    progress.finish();
    let sink_failure = failure.failure.take();
    let (summaries, job_failure) = outcomes(merged.outputs, report);
    if let Some(f) = sink_failure.or(job_failure) {
        return Err(f);
    }
    let expected = summaries.first().map_or(0, |s| s.shard_rows);
    if file.rows() != expected {
        return Err(Failure::new(
            Class::Internal,
            format!(
                "the workers sent {} rows, the shard has {expected}",
                file.rows()
            ),
        ));
    }
    report.declarations = file.rows();
    report.total_declarations = file.rows();
    report.parts_written = 1;
    file.commit().class(Class::Output)?;
    Ok(())
}

/// One job's part being written.
struct OpenPart {
    attempt: u32,
    part: u64,
    file: RowFile,
}

#[allow(clippy::too_many_arguments)]
fn export_partitioned(
    args: &ExportArgs,
    input: &Path,
    input_id: InputId,
    shard: Shard,
    format: Format,
    options: &ParquetOptions,
    interrupt: &Interrupt,
    report: &mut ExportReport,
) -> Outcome {
    let dir = &args.out;
    let key = RunKey {
        input: input_id,
        shard,
        rows_per_part: args.rows_per_file,
        format: format.extension().to_owned(),
    };
    let mut manifest = match Manifest::load(dir, shard).class(Class::Output)? {
        Some(m) if !args.resume => {
            return Err(Failure::new(
                Class::Output,
                format!(
                    "{} already holds an export ({} parts{}): pass --resume to continue it, or choose another directory",
                    dir.display(),
                    m.parts.len(),
                    if m.complete { ", complete" } else { "" }
                ),
            ));
        }
        Some(m) => {
            if m.run != key {
                return Err(Failure::new(
                    Class::Usage,
                    format!(
                        "--resume: {} was written by a different run (input, shard, --rows-per-file or format differ)",
                        Manifest::path(dir, shard).display()
                    ),
                ));
            }
            m
        }
        None => Manifest::new(key),
    };
    let owned = |name: &str| manifest::owned_by(shard, name);
    if let Some((temp, pid)) = crate::atomic::live_writer(dir, owned)
        .class_with(Class::Output, || format!("reading {}", dir.display()))?
    {
        return Err(Failure::new(
            Class::Output,
            format!(
                "another ringworker (pid {pid}) is writing this shard into {} ({temp}): run one export per shard and directory at a time",
                dir.display()
            ),
        ));
    }
    crate::atomic::remove_stale(dir, owned)
        .class_with(Class::Output, || format!("cleaning {}", dir.display()))?;
    report.parts_resumed = manifest.parts.len() as u64;
    if manifest.complete {
        report.total_declarations = manifest.rows();
        return Ok(());
    }
    let skip: Vec<u64> = manifest.parts.keys().copied().collect();
    let pool = pool_for(args, args.retries)?;
    let jobs = jobs(
        args,
        input,
        shard,
        args.rows_per_file,
        &skip,
        interrupt,
        true,
    )?;
    let progress = Progress::start(
        "export-decls",
        args.report.progress,
        args.report.progress_interval,
    );
    let counters = std::sync::Arc::clone(progress.counters());
    counters.jobs_total.store(args.workers as u64, Relaxed);
    let started = Instant::now();
    let mut failure = SinkFailure {
        failure: None,
        interrupt,
    };
    let mut open: BTreeMap<usize, OpenPart> = BTreeMap::new();
    let workers = args.workers as u64;
    let mut written = 0u64;
    let mut parts_written = 0u64;
    let mut commit = |open: OpenPart, manifest: &mut Manifest| -> Outcome<()> {
        let rows = open.file.commit().class(Class::Output)?;
        manifest.parts.insert(
            open.part,
            Part {
                file: part_file(shard, open.part, format.extension()),
                rows,
            },
        );
        manifest.save(dir).class_with(Class::Output, || {
            format!("writing the manifest in {}", dir.display())
        })?;
        written += rows;
        parts_written += 1;
        Ok(())
    };
    let merged = pool.run_merged(jobs, Order::Completion, |tagged| {
        if failure.failure.is_some() {
            return;
        }
        counters.row(tagged.row.payload.len());
        let w = match wire::decode(tagged.row.payload) {
            Ok(w) => w,
            Err(e) => {
                return failure.set(Failure::new(
                    Class::Internal,
                    format!("worker {}: row {}: {e}", tagged.job, tagged.row.sequence),
                ));
            }
        };
        if w.part % workers != tagged.job as u64 {
            return failure.set(Failure::new(
                Class::Internal,
                format!(
                    "worker {} sent a row of part {}, which is not its own",
                    tagged.job, w.part
                ),
            ));
        }
        if manifest.parts.contains_key(&w.part) {
            return; // a retry re-sending a part its failed attempt completed
        }
        let slot = open.remove(&tagged.job);
        let mut current = match slot {
            Some(o) if o.attempt == tagged.attempt && o.part == w.part => o,
            other => {
                match other {
                    // The job moved on: the previous part is whole.
                    Some(o) if o.attempt == tagged.attempt && o.part < w.part => {
                        if let Err(f) = commit(o, &mut manifest) {
                            return failure.set(f);
                        }
                    }
                    Some(o) if o.attempt == tagged.attempt => {
                        return failure.set(Failure::new(
                            Class::Internal,
                            format!(
                                "worker {} went back from part {} to part {}",
                                tagged.job, o.part, w.part
                            ),
                        ));
                    }
                    // A failed attempt's unfinished part: dropped, its
                    // temporary file removed.
                    Some(_) | None => {}
                }
                let dest = dir.join(part_file(shard, w.part, format.extension()));
                match RowFile::create(&dest, format, options).class(Class::Output) {
                    Ok(file) => OpenPart {
                        attempt: tagged.attempt,
                        part: w.part,
                        file,
                    },
                    Err(f) => return failure.set(f),
                }
            }
        };
        if let Err(f) = current.file.write(&w.row).class(Class::Output) {
            return failure.set(f);
        }
        open.insert(tagged.job, current);
    });
    report.restarts = pool.stats().total.total_restarts();
    pool.shutdown(Duration::from_secs(2));
    let sink_failure = failure.failure.take();
    let (summaries, job_failure) = outcomes(merged.outputs, report);
    let mut result = sink_failure.or(job_failure).map_or(Ok(()), Err);
    // The last part of each successful job is whole; the others' are not.
    if result.is_ok() {
        for (_, o) in std::mem::take(&mut open) {
            if let Err(f) = commit(o, &mut manifest) {
                result = Err(f);
                break;
            }
        }
    }
    drop(open);
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish();
    report.declarations = written;
    report.parts_written = parts_written;
    report.total_declarations = manifest.rows();
    result?;
    let total_parts = summaries.first().map_or(0, |s| s.parts);
    let shard_rows = summaries.first().map_or(0, |s| s.shard_rows);
    let missing: Vec<u64> = (0..total_parts)
        .filter(|p| !manifest.parts.contains_key(p))
        .collect();
    if !missing.is_empty() || manifest.rows() != shard_rows {
        return Err(Failure::new(
            Class::Internal,
            format!(
                "after every worker finished, parts {missing:?} are missing ({} rows of {shard_rows})",
                manifest.rows()
            ),
        ));
    }
    manifest.total_parts = Some(total_parts);
    manifest.complete = true;
    manifest.save(dir).class_with(Class::Output, || {
        format!("writing the manifest in {}", dir.display())
    })?;
    Ok(())
}

fn print_report(report: &ExportReport, how: &ReportArgs) {
    if how.json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
    let mut line = format!(
        "export-decls: {} declarations ({} in the output) from {} ({}) into {} in {:.2} s: {} decls/s, {:.1} MB/s input; {}",
        report.declarations,
        report.total_declarations,
        report.input,
        human_bytes(report.input_bytes),
        report.output,
        report.seconds,
        human_count(report.decls_per_s as u64),
        report.input_mb_per_s,
        counted(report.workers, "worker"),
    );
    if report.partitioned {
        line += &format!(
            ", {} parts written, {} resumed",
            report.parts_written, report.parts_resumed
        );
    }
    if report.restarts > 0 {
        line += &format!(", {} restarts", report.restarts);
    }
    if let Some(g) = report.generate_seconds {
        line += &format!(" (synthetic input generated in {g:.2} s)");
    }
    eprintln!("{line}");
}

/// The same reader and writer in this one process: the comparison point of
/// the export's throughput target. Returns the rows written.
pub fn export_in_process(
    input: &Path,
    dest: &Path,
    format: Format,
    options: &ParquetOptions,
) -> anyhow::Result<u64> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut out = RowFile::create(dest, format, options)?;
    ringworker_lean::for_each_decl(BufReader::with_capacity(1 << 20, file), |row| {
        out.write(&row)
    })?;
    out.commit()
}
