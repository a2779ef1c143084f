//! `ringbench`: the shared-memory ring against the pipe + length-prefixed JSON
//! baseline, in one run, with real child processes (this binary re-executed).
//!
//! Throughput cases (100 B, 1 KiB, 4 KiB, mixed sizes, or `--row-bytes N`)
//! run the ring, the ceiling (a bare fixed-slot SPSC ring), with the `peers`
//! feature iceoryx2, and then the baseline with the same payload bytes; the
//! parent checksums every payload byte and checks it against the child's own
//! checksum. Then: CPU of a consumer idling 2 s on an empty ring, and ring
//! wake-up latency next to a bare shared-futex ping-pong. Timing starts when
//! the child, fully set up, is told to go, so process start-up is excluded
//! for both transports.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ringworker_benches::baseline::Variant;
use ringworker_benches::latency::{self, percentile};
#[cfg(feature = "peers")]
use ringworker_benches::peer_iceoryx2;
use ringworker_benches::report::{self, CaseResult, LatencyResult};
use ringworker_benches::ring_case::{self, RingParams, ring_config};
use ringworker_benches::rows::{RowTemplates, SizeSpec};
use ringworker_benches::{baseline, ceiling, e2e, pin, pool_case, rows, supervision};

/// The shared-memory ring vs pipe + JSON: throughput, idle CPU, wake-up latency.
#[derive(Debug, Parser)]
#[command(name = "ringbench", version)]
struct Cli {
    /// Short run (whole report in well under a minute).
    #[arg(long)]
    quick: bool,
    /// Leave processes where the scheduler puts them (default: parent on
    /// CPU 0, children on CPU 1, for every case alike).
    #[arg(long)]
    no_pin: bool,
    /// Print one JSON object per line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Ring data capacity in bytes (a power of two, 4096 ..= 1 GiB). 2 MiB
    /// measured best here for 100 B and 4 KiB rows alike; at 1 MiB (each
    /// core's L2) 4 KiB rows ran at half the rate.
    #[arg(long, default_value_t = 2 << 20)]
    capacity: usize,
    /// Run a single throughput case with rows of exactly N bytes.
    #[arg(long, value_name = "N")]
    row_bytes: Option<usize>,
    /// Rows per ring run (default: per case, larger without --quick).
    #[arg(long)]
    rows: Option<u64>,
    /// Rows per baseline run (default: per case).
    #[arg(long)]
    baseline_rows: Option<u64>,
    /// Repetitions of each throughput run (ring and baseline alternate); the
    /// best run is reported, the median next to it in the JSON.
    #[arg(long)]
    reps: Option<usize>,
    /// Which parts to run: 100B, 1KiB, 4KiB, mixed, custom, idle, wake,
    /// large (1 MiB and 16 MiB rows end to end, GB/s), supervision (kill ->
    /// ready cold, prewarmed and forked from a template with a 0 and 2 s
    /// start-up, the PSS of template workers, the watchdog's idle CPU), pool (1 and 2
    /// workers on CPU-bound jobs, 8 idle pooled workers).
    #[arg(long, value_delimiter = ',')]
    cases: Option<Vec<String>>,
    /// Wake-up samples per mechanism.
    #[arg(long)]
    wake_samples: Option<usize>,
    /// Child's sleep before each wake-up sample, in microseconds (plus up to 50% jitter).
    #[arg(long, default_value_t = 2000)]
    wake_gap_us: u64,
    /// Producer publication batch in bytes (default: shm-proto's).
    #[arg(long)]
    producer_publish_every: Option<usize>,
    /// Consumer release batch in bytes (default: shm-proto's).
    #[arg(long)]
    consumer_publish_every: Option<usize>,
    /// Seed of the row templates.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(subcommand)]
    child: Option<ChildCmd>,
}

/// Hidden subcommands: the child processes.
#[derive(Debug, Subcommand)]
enum ChildCmd {
    /// Ring producer.
    #[command(name = "__child-ring", hide = true)]
    Ring {
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        size: SizeSpec,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        publish_every: Option<usize>,
    },
    /// Baseline producer (frames on stdout).
    #[command(name = "__child-baseline", hide = true)]
    Baseline {
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        size: SizeSpec,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        flush_each: bool,
    },
    /// A ringworker worker serving the built-in commands (end-to-end case).
    #[command(name = "__worker", hide = true)]
    Worker,
    /// Ceiling producer (fixed-slot SPSC ring).
    #[command(name = "__child-ceiling", hide = true)]
    Ceiling {
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        size: SizeSpec,
        #[arg(long)]
        seed: u64,
    },
    /// iceoryx2 publisher (the peer).
    #[cfg(feature = "peers")]
    #[command(name = "__child-iceoryx2", hide = true)]
    Iceoryx2 {
        #[arg(long)]
        service: String,
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        size: SizeSpec,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        packed: bool,
    },
    /// Wake-up latency sender.
    #[command(name = "__child-wake", hide = true)]
    Wake {
        #[arg(long)]
        samples: usize,
        #[arg(long)]
        gap_us: u64,
    },
}

const ALL_PARTS: [&str; 10] = [
    "100B",
    "1KiB",
    "4KiB",
    "mixed",
    "custom",
    "idle",
    "wake",
    "large",
    "supervision",
    "pool",
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.child.is_some() {
        pin::pin_child();
    } else if !cli.no_pin && pin::pin_parent() {
        eprintln!("ringbench: parent pinned to CPU 0, children to CPU 1 (--no-pin to disable)");
    }
    let result = match cli.child {
        Some(ChildCmd::Ring {
            rows,
            size,
            seed,
            publish_every,
        }) => ring_case::run_child(rows, size, seed, publish_every),
        Some(ChildCmd::Baseline {
            rows,
            size,
            seed,
            flush_each,
        }) => baseline::run_child(rows, size, seed, flush_each),
        Some(ChildCmd::Ceiling { rows, size, seed }) => ceiling::run_child(rows, size, seed),
        #[cfg(feature = "peers")]
        Some(ChildCmd::Iceoryx2 {
            service,
            rows,
            size,
            seed,
            packed,
        }) => peer_iceoryx2::run_child(&service, rows, size, seed, packed),
        Some(ChildCmd::Wake { samples, gap_us }) => latency::run_wake_child(samples, gap_us),
        Some(ChildCmd::Worker) => e2e::run_worker(),
        None => run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringbench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A throughput case: name, sizes, default ring and baseline rows (quick, full).
struct CaseDef {
    name: &'static str,
    spec: SizeSpec,
    ring_rows: (u64, u64),
    baseline_rows: (u64, u64),
}

fn case_defs(custom: Option<usize>) -> Vec<CaseDef> {
    let mut defs = vec![
        CaseDef {
            name: "100B",
            spec: SizeSpec::Fixed(100),
            ring_rows: (10_000_000, 50_000_000),
            baseline_rows: (1_000_000, 4_000_000),
        },
        CaseDef {
            name: "1KiB",
            spec: SizeSpec::Fixed(1024),
            ring_rows: (3_000_000, 12_000_000),
            baseline_rows: (500_000, 2_000_000),
        },
        CaseDef {
            name: "4KiB",
            spec: SizeSpec::Fixed(4096),
            ring_rows: (1_000_000, 4_000_000),
            baseline_rows: (200_000, 800_000),
        },
        CaseDef {
            name: "mixed",
            spec: SizeSpec::Mixed,
            ring_rows: (4_000_000, 16_000_000),
            baseline_rows: (500_000, 2_000_000),
        },
    ];
    if let Some(n) = custom {
        // About 2 GB through the ring and 0.3 GB through the pipe (quick).
        let ring = (2_000_000_000 / (n as u64 + 16)).clamp(10_000, 20_000_000);
        let base = (300_000_000 / (n as u64 + 80)).clamp(5_000, 1_000_000);
        defs.push(CaseDef {
            name: "custom",
            spec: SizeSpec::Fixed(n),
            ring_rows: (ring, ring * 4),
            baseline_rows: (base, base * 4),
        });
    }
    defs
}

fn run(cli: &Cli) -> Result<()> {
    // Validate everything before any child is spawned.
    let config = ring_config(cli.capacity);
    config
        .validate()
        .with_context(|| format!("--capacity {}", cli.capacity))?;
    let max_payload = config.max_payload;
    if let Some(n) = cli.row_bytes {
        SizeSpec::Fixed(n)
            .validate(max_payload)
            .with_context(|| format!("--row-bytes {n}"))?;
    }
    let parts: Vec<String> = match &cli.cases {
        Some(list) => list.clone(),
        None if cli.row_bytes.is_some() => vec!["custom".into()],
        None => ALL_PARTS
            .iter()
            .filter(|p| **p != "custom")
            .map(|p| p.to_string())
            .collect(),
    };
    for p in &parts {
        if !ALL_PARTS.contains(&p.as_str()) {
            bail!("unknown case {p:?}; known: {}", ALL_PARTS.join(", "));
        }
        if p == "custom" && cli.row_bytes.is_none() {
            bail!("case `custom` needs --row-bytes N");
        }
    }
    if cli.rows == Some(0) || cli.baseline_rows == Some(0) || cli.reps == Some(0) {
        bail!("--rows, --baseline-rows and --reps must be at least 1");
    }
    if cli.wake_samples == Some(0) {
        bail!("--wake-samples must be at least 1");
    }
    let defs: Vec<CaseDef> = case_defs(cli.row_bytes)
        .into_iter()
        .filter(|d| parts.iter().any(|p| p == d.name))
        .collect();
    for d in &defs {
        d.spec
            .validate(max_payload)
            .with_context(|| format!("case {} with --capacity {}", d.name, cli.capacity))?;
    }
    let pick = |(quick, full): (u64, u64)| if cli.quick { quick } else { full };
    let reps = cli.reps.unwrap_or(if cli.quick { 5 } else { 7 });

    let mut cases = Vec::new();
    for d in &defs {
        let mut result = CaseResult {
            case: d.name.to_string(),
            row_bytes: RowTemplates::new(d.spec, cli.seed).mean_bytes(),
            rows: cli.rows.unwrap_or(pick(d.ring_rows)),
            ring_rows_per_s: Vec::new(),
            ring_bytes_per_s: Vec::new(),
            baseline_rows: cli.baseline_rows.unwrap_or(pick(d.baseline_rows)),
            baseline_rows_per_s: Vec::new(),
            baseline_bytes_per_s: Vec::new(),
            borrowed_rows_per_s: Vec::new(),
            e2e_rows_per_s: Vec::new(),
            ceiling_rows_per_s: Vec::new(),
            peer_rows_per_s: Vec::new(),
            peer_packed_rows_per_s: Vec::new(),
        };
        // The end-to-end path runs for the fixed sizes the issue names.
        let e2e_bytes = match d.spec {
            SizeSpec::Fixed(n) if matches!(d.name, "100B" | "4KiB") => Some(n),
            _ => None,
        };
        let params = RingParams {
            capacity: cli.capacity,
            rows: result.rows,
            spec: d.spec,
            seed: cli.seed,
            producer_publish_every: cli.producer_publish_every,
            consumer_publish_every: cli.consumer_publish_every,
        };
        for rep in 0..reps {
            eprintln!("ringbench: {} ring run {}/{reps}", d.name, rep + 1);
            let t =
                ring_case::run_parent(&params).with_context(|| format!("ring case {}", d.name))?;
            result.ring_rows_per_s.push(t.rows_per_s());
            result.ring_bytes_per_s.push(t.bytes_per_s());
            eprintln!("ringbench: {} ceiling run {}/{reps}", d.name, rep + 1);
            let t = ceiling::run_parent(cli.capacity, result.rows, d.spec, cli.seed)
                .with_context(|| format!("ceiling case {}", d.name))?;
            result.ceiling_rows_per_s.push(t.rows_per_s());
            #[cfg(feature = "peers")]
            {
                eprintln!("ringbench: {} iceoryx2 runs {}/{reps}", d.name, rep + 1);
                // One sample per row moves rows at pipe-like rates: it gets
                // the baseline's row count, hand-packed the ring's.
                for packed in [false, true] {
                    let rows = if packed {
                        result.rows
                    } else {
                        result.baseline_rows
                    };
                    let t = peer_iceoryx2::run_parent(rows, d.spec, cli.seed, packed)
                        .with_context(|| format!("iceoryx2 case {} (packed: {packed})", d.name))?;
                    if packed {
                        result.peer_packed_rows_per_s.push(t.rows_per_s());
                    } else {
                        result.peer_rows_per_s.push(t.rows_per_s());
                    }
                }
            }
            eprintln!("ringbench: {} baseline run {}/{reps}", d.name, rep + 1);
            let t =
                baseline::run_parent(result.baseline_rows, d.spec, cli.seed, Variant::Streaming)
                    .with_context(|| format!("baseline case {}", d.name))?;
            result.baseline_rows_per_s.push(t.rows_per_s());
            result.baseline_bytes_per_s.push(t.bytes_per_s());
            let t = baseline::run_parent(result.baseline_rows, d.spec, cli.seed, Variant::Tuned)
                .with_context(|| format!("tuned pipe case {}", d.name))?;
            result.borrowed_rows_per_s.push(t.rows_per_s());
            if let Some(bytes) = e2e_bytes {
                eprintln!("ringbench: {} end-to-end run {}/{reps}", d.name, rep + 1);
                let t = e2e::run(cli.capacity, result.rows, bytes as u32)
                    .with_context(|| format!("end-to-end case {}", d.name))?;
                result.e2e_rows_per_s.push(t.rows_per_s());
            }
        }
        cases.push(result);
    }

    if parts.iter().any(|p| p == "large") {
        ringworker_benches::large_rows::run_case(cli.capacity, cli.quick, cli.reps, cli.json)?;
    }

    // Latency is measured as deployed: unpinned (see `pin`).
    pin::unpin();
    let idle = if parts.iter().any(|p| p == "idle") {
        eprintln!("ringbench: idle consumer, 2 s");
        Some(latency::idle_cpu_pct(cli.capacity, Duration::from_secs(2))?)
    } else {
        None
    };
    let wake = if parts.iter().any(|p| p == "wake") {
        let samples = cli
            .wake_samples
            .unwrap_or(if cli.quick { 500 } else { 2000 });
        eprintln!("ringbench: wake-up latency, {samples} samples each");
        let s = latency::run_wake_parent(cli.capacity, samples, cli.wake_gap_us)
            .context("wake-up latency")?;
        Some(LatencyResult {
            samples,
            wake_p50_us: percentile(&s.ring_us, 50.0),
            wake_p99_us: percentile(&s.ring_us, 99.0),
            futex_p50_us: percentile(&s.futex_us, 50.0),
            futex_p99_us: percentile(&s.futex_us, 99.0),
        })
    } else {
        None
    };

    // Unpinned too, every supervisor thread included (those an earlier
    // case started pinned as well).
    let supervision = if parts.iter().any(|p| p == "supervision") {
        pin::unpin_all_threads();
        let (kills, slow_kills, window) = supervision::sizes(cli.quick);
        Some(
            supervision::run_case(cli.capacity, kills, slow_kills, window)
                .context("supervision")?,
        )
    } else {
        None
    };

    let pool = if parts.iter().any(|p| p == "pool") {
        pin::unpin_all_threads();
        Some(pool_case::run_case(cli.capacity, cli.quick).context("pool")?)
    } else {
        None
    };

    let mut targets = report::targets(&cases, idle, wake.as_ref(), supervision.as_ref());
    if let Some(pool) = &pool {
        targets.extend(pool_case::targets(pool));
    }
    let mut table = report::table(&cases, idle, wake.as_ref(), supervision.as_ref(), &[]);
    if let Some(pool) = &pool {
        table.push_str(&pool_case::table(pool));
    }
    table.push_str(&report::target_lines(&targets));
    if cli.json {
        eprint!("{table}");
        let mut lines: Vec<serde_json::Value> = cases.iter().map(CaseResult::to_json).collect();
        lines.extend(report::extra_json(
            idle,
            wake.as_ref(),
            supervision.as_ref(),
            &targets,
        ));
        lines.extend(pool.as_ref().map(pool_case::json));
        for line in lines {
            println!("{line}");
        }
    } else {
        print!("{table}");
        println!(
            "(ring capacity {} B; mixed sizes: log-normal median {} B sigma {}, clipped to [{}, {}] B)",
            cli.capacity,
            rows::MIXED_MEDIAN,
            rows::MIXED_SIGMA,
            rows::MIXED_MIN,
            rows::MIXED_MAX
        );
    }
    Ok(())
}
