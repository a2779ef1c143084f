//! `ringworker run`: any worker command, one request or many (spread over
//! a pool), its rows into NDJSON or Parquet, a file or stdout.
//!
//! One request streams straight from the ring into the output (nothing
//! buffered). Many requests run as pool jobs; each job's rows are written
//! once the job has succeeded, in request order, so a failed job (or a
//! failed attempt of a retried one) leaves no row in the output. More
//! failed jobs than `--max-failed-jobs` fail the run: exit status 6, no
//! output.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use ringworker::{
    Error, FailureCode, Job, JobOptions, MemoryLimits, Pool, PoolConfig, RequestOptions,
    RetryPolicy, Row, Worker, WorkerConfig, WorkerStats,
};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::exit::{Class, ClassExt, Failure, Outcome};
use crate::interrupt::Interrupt;
use crate::progress::{Counters, Progress, human_bytes, human_count};
use crate::rows_out::{RowFormat, RowSink};
use crate::shard::Shard;
use crate::units::{parse_duration, parse_size};
use crate::{ReportArgs, worker};

/// Arguments of `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The worker command to run (see `ringworker doctor` for a child's list).
    pub command: String,
    /// The worker executable (default: this binary's built-in worker).
    #[arg(long, value_name = "PATH")]
    pub child: Option<PathBuf>,
    /// Arguments passed to the child.
    #[arg(long = "child-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub child_args: Vec<String>,
    /// The request, as JSON (default `{}`).
    #[arg(long, value_name = "JSON", conflicts_with = "requests")]
    pub request: Option<String>,
    /// Many requests: one JSON request per line (`-`: stdin), run over the pool.
    #[arg(long, value_name = "FILE.ndjson")]
    pub requests: Option<PathBuf>,
    /// Where the rows go (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Output format (default: from `--out`'s extension, else ndjson).
    #[arg(long, value_enum)]
    pub format: Option<RowFormat>,
    /// Worker processes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Deadline of each request.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub timeout: Duration,
    /// A child that shows no sign of life this long is killed as hung.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub hang_timeout: Duration,
    /// Hard memory limit per worker (RSS), e.g. `2GiB`.
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<u64>,
    /// Run only requests I of N (request lines whose index is I mod N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Retries of a request whose worker crashed, hung or hit the memory
    /// limit (the request must be idempotent).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Failed requests tolerated (their rows are left out, the summary
    /// lists them); one more and the run fails without output.
    #[arg(long, default_value_t = 0)]
    pub max_failed_jobs: u64,
    /// How progress and the summary are shown.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// A request that failed.
#[derive(Debug, Clone, Serialize)]
pub struct FailedJob {
    /// Its index among the requests (line number from 0 with `--requests`).
    pub request: u64,
    /// The error's class (`timeout`, `crash`, ...).
    pub kind: String,
    /// The error.
    pub error: String,
}

/// Rows and bytes of one stream.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StreamCount {
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The command.
    pub command: String,
    /// Requests run (after `--shard`).
    pub requests: u64,
    /// Requests that succeeded.
    pub jobs_done: u64,
    /// Requests that failed.
    pub jobs_failed: u64,
    /// Rows written.
    pub rows: u64,
    /// Payload bytes written.
    pub bytes: u64,
    /// Rows and bytes by stream.
    pub streams: BTreeMap<u16, StreamCount>,
    /// Seconds.
    pub seconds: f64,
    /// Rows written per second.
    pub rows_per_s: f64,
    /// Worker restarts by reason.
    pub restarts: BTreeMap<String, u64>,
    /// The failed requests.
    pub failed: Vec<FailedJob>,
    /// Where the rows went.
    pub output: String,
}

/// Runs `run`.
pub fn run(args: &RunArgs) -> Outcome {
    if args.workers == 0 {
        return Err(Failure::new(Class::Usage, "--workers must be at least 1"));
    }
    let format = args
        .format
        .or_else(|| match args.out.as_ref()?.extension()?.to_str()? {
            "parquet" | "pq" => Some(RowFormat::Parquet),
            _ => None,
        })
        .unwrap_or(RowFormat::Ndjson);
    let requests = load_requests(args)?;
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let requests: Vec<(u64, Box<RawValue>)> = requests
        .into_iter()
        .enumerate()
        .filter(|(k, _)| shard.contains(*k as u64))
        .map(|(k, r)| (k as u64, r))
        .collect();
    let mut config = match &args.child {
        Some(path) => WorkerConfig::new(path).with_args(&args.child_args),
        None => worker::config().class_with(Class::Internal, || "locating this executable")?,
    };
    config = config
        .with_request_timeout(args.timeout)
        .with_hang_timeout(args.hang_timeout);
    if let Some(limit) = args.memory_limit {
        config = config.with_memory(MemoryLimits::default().with_hard_rss(Some(limit)));
    }
    config.validate().map_err(|e| Failure {
        class: Class::Usage,
        error: e.into(),
    })?;
    let mut sink = RowSink::create(args.out.as_deref(), format).class(Class::Output)?;
    let interrupt = Interrupt::install();
    let progress = Progress::start("run", args.report.progress, args.report.progress_interval);
    let counters = Arc::clone(progress.counters());
    counters.jobs_total.store(requests.len() as u64, Relaxed);
    let mut report = RunReport {
        command: args.command.clone(),
        requests: requests.len() as u64,
        jobs_done: 0,
        jobs_failed: 0,
        rows: 0,
        bytes: 0,
        streams: BTreeMap::new(),
        seconds: 0.0,
        rows_per_s: 0.0,
        restarts: BTreeMap::new(),
        failed: Vec::new(),
        output: args
            .out
            .as_ref()
            .map_or("stdout".into(), |p| p.display().to_string()),
    };
    let started = Instant::now();
    let result = if requests.len() == 1 && args.workers == 1 && args.retries == 0 {
        run_one(
            args,
            config,
            &requests[0],
            &mut sink,
            &counters,
            &interrupt,
            &mut report,
        )
    } else {
        run_pool(
            args,
            config,
            requests,
            &mut sink,
            &counters,
            &interrupt,
            &mut report,
        )
    };
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_per_s = report.rows as f64 / report.seconds.max(1e-9);
    progress.finish();
    if interrupt.fired() {
        return Err(Failure::new(
            Class::Interrupted,
            "interrupted: jobs cancelled, workers stopped, no output written",
        ));
    }
    result?;
    if report.jobs_failed > args.max_failed_jobs {
        let first = &report.failed[0];
        return Err(Failure::new(
            failure_class(&report.failed),
            format!(
                "{} of {} requests failed (--max-failed-jobs {}), no output written; request {}: {}",
                report.jobs_failed,
                report.requests,
                args.max_failed_jobs,
                first.request,
                first.error
            ),
        ));
    }
    sink.commit().class(Class::Output)?;
    print_report(&report, &args.report, args.out.is_none());
    Ok(())
}

/// Reads the requests: `--requests` lines, or the one `--request`.
fn load_requests(args: &RunArgs) -> Outcome<Vec<Box<RawValue>>> {
    let Some(path) = &args.requests else {
        let text = args.request.as_deref().unwrap_or("{}");
        let raw = serde_json::from_str::<Box<RawValue>>(text)
            .map_err(|e| Failure::new(Class::Usage, format!("--request is not JSON: {e}")))?;
        return Ok(vec![raw]);
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .class_with(Class::Input, || format!("cannot read {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut requests = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.class_with(Class::Input, || format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw = serde_json::from_str::<Box<RawValue>>(&line).map_err(|e| {
            Failure::new(
                Class::Input,
                format!("{}:{}: the request is not JSON: {e}", path.display(), i + 1),
            )
        })?;
        requests.push(raw);
    }
    if requests.is_empty() {
        return Err(Failure::new(
            Class::Input,
            format!("{} holds no request", path.display()),
        ));
    }
    Ok(requests)
}

fn error_class(error: &Error) -> Class {
    match error {
        Error::UnknownCommand { .. } => Class::Child,
        // A Lean worker built without the Lean runtime lists its commands
        // but cannot serve them: the child's fault, like a missing command.
        Error::Worker {
            code: FailureCode::Command(code),
            ..
        } if code == ringworker_lean_host::RUNTIME_MISSING => Class::Child,
        e => match Class::of(e) {
            Class::Jobs | Class::Internal => Class::Jobs,
            c => c,
        },
    }
}

/// The class of a run whose jobs failed: the child's or the request's
/// fault when every failure says so, else "jobs failed".
fn failure_class(failed: &[FailedJob]) -> Class {
    let all = |kind: &str| failed.iter().all(|f| f.kind == kind);
    if all("child") {
        Class::Child
    } else if all("usage") {
        Class::Usage
    } else {
        Class::Jobs
    }
}

fn failed_job(request: u64, error: &Error) -> FailedJob {
    let kind = match error_class(error) {
        Class::Child => "child".to_owned(),
        Class::Usage => "usage".to_owned(),
        _ => format!("{:?}", error.kind()).to_lowercase(),
    };
    FailedJob {
        request,
        kind,
        error: error.to_string(),
    }
}

fn absorb_restarts(report: &mut RunReport, stats: &WorkerStats) {
    for (reason, n) in &stats.restarts {
        *report
            .restarts
            .entry(snake(&format!("{reason:?}")))
            .or_default() += n;
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn count_row(report: &mut RunReport, counters: &Counters, stream: u16, bytes: usize) {
    report.rows += 1;
    report.bytes += bytes as u64;
    let s = report.streams.entry(stream).or_default();
    s.rows += 1;
    s.bytes += bytes as u64;
    counters.row(bytes);
}

fn run_one(
    args: &RunArgs,
    config: WorkerConfig,
    (index, request): &(u64, Box<RawValue>),
    sink: &mut RowSink,
    counters: &Counters,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Outcome {
    let mut worker = Worker::spawn(config).map_err(|e| Failure {
        class: Class::Child,
        error: anyhow::Error::new(e).context("starting the child"),
    })?;
    let mut failure: Option<Failure> = None;
    let result = {
        let mut write = |row: Row<'_>| {
            if failure.is_some() {
                return;
            }
            // A private copy: the child cannot change it while it is checked.
            let payload = row.payload.to_vec();
            match sink.write(*index, row.stream, row.sequence, &payload) {
                Ok(()) => count_row(report, counters, row.stream, payload.len()),
                Err(f) => {
                    failure = Some(f);
                    interrupt.token().cancel();
                }
            }
        };
        let options = RequestOptions::default().cancel(interrupt.token().clone());
        worker.stream_with::<_, serde_json::Value, _>(&args.command, request, &mut write, options)
    };
    absorb_restarts(report, worker.stats());
    worker.shutdown(Duration::from_secs(2));
    if let Some(f) = failure {
        return Err(f);
    }
    match result {
        Ok(_) => {
            report.jobs_done = 1;
            counters.jobs_done.store(1, Relaxed);
        }
        Err(e) if interrupt.fired() => drop(e),
        Err(e) => {
            report.jobs_failed = 1;
            counters.jobs_failed.store(1, Relaxed);
            report.failed.push(failed_job(*index, &e));
        }
    }
    Ok(())
}

fn run_pool(
    args: &RunArgs,
    config: WorkerConfig,
    requests: Vec<(u64, Box<RawValue>)>,
    sink: &mut RowSink,
    counters: &Counters,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Outcome {
    let pool_config = PoolConfig::new(config, args.workers)
        .with_retry(RetryPolicy::retries(args.retries))
        .with_queue_timeout(Duration::MAX);
    let pool = Pool::new(pool_config).map_err(|e| Failure {
        class: Class::Child,
        error: anyhow::Error::new(e).context("starting the workers"),
    })?;
    let window = 2 * args.workers + 2;
    let mut pending = std::collections::VecDeque::new();
    let mut requests = requests.into_iter();
    let mut failure: Option<Failure> = None;
    loop {
        while pending.len() < window && failure.is_none() && !interrupt.fired() {
            let Some((index, request)) = requests.next() else {
                break;
            };
            let options = JobOptions::default()
                .cancel(interrupt.token().clone())
                .idempotent(args.retries > 0);
            let job = Job::new(&args.command, &request)
                .class(Class::Internal)?
                .with_options(options);
            match pool.submit(job) {
                Ok(handle) => pending.push_back((index, handle)),
                Err(e) => {
                    report.jobs_failed += 1;
                    report.failed.push(failed_job(index, &e));
                }
            }
        }
        let Some((index, handle)) = pending.pop_front() else {
            break;
        };
        let output = handle.wait();
        match output.result {
            Ok(_) if failure.is_none() => {
                for row in &output.rows {
                    if let Err(f) = sink.write(index, row.stream, row.sequence, &row.payload) {
                        failure = Some(f);
                        interrupt.token().cancel();
                        break;
                    }
                    count_row(report, counters, row.stream, row.payload.len());
                }
                report.jobs_done += 1;
                counters.jobs_done.fetch_add(1, Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                if !interrupt.fired() {
                    report.jobs_failed += 1;
                    counters.jobs_failed.fetch_add(1, Relaxed);
                    report.failed.push(failed_job(index, &e));
                }
            }
        }
        counters
            .restarts
            .store(pool.stats().total.total_restarts(), Relaxed);
    }
    absorb_restarts(report, &pool.stats().total);
    pool.shutdown(Duration::from_secs(2));
    failure.map_or(Ok(()), Err)
}

fn print_report(report: &RunReport, how: &ReportArgs, rows_on_stdout: bool) {
    if how.json {
        let line = serde_json::to_string(report).unwrap_or_default();
        if rows_on_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        return;
    }
    let streams: Vec<String> = report
        .streams
        .iter()
        .map(|(s, c)| format!("stream {s}: {} rows, {}", c.rows, human_bytes(c.bytes)))
        .collect();
    let restarts: Vec<String> = report
        .restarts
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    eprintln!(
        "run {}: {} requests ({} done, {} failed), {} rows, {} in {:.2} s ({} rows/s) into {}; {}; restarts: {}",
        report.command,
        report.requests,
        report.jobs_done,
        report.jobs_failed,
        report.rows,
        human_bytes(report.bytes),
        report.seconds,
        human_count(report.rows_per_s as u64),
        report.output,
        if streams.is_empty() {
            "no rows".to_owned()
        } else {
            streams.join(", ")
        },
        if restarts.is_empty() {
            "none".to_owned()
        } else {
            restarts.join(", ")
        },
    );
    for f in &report.failed {
        eprintln!("  request {} failed ({}): {}", f.request, f.kind, f.error);
    }
}
