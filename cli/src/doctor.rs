//! `ringworker doctor`: starts a child, shows its handshake (commands with
//! their request, row and summary types; protocol version; ring size; RSS
//! after start) and what this machine offers for memory and process-tree
//! containment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringworker::{PROTOCOL_VERSION, Worker, WorkerConfig};
use serde::Serialize;

use crate::exit::{Class, ClassExt, Failure, Outcome};
use crate::progress::human_bytes;
use crate::worker;

/// Arguments of `doctor`.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// The worker executable (default: this binary's built-in worker).
    #[arg(long, value_name = "PATH")]
    pub child: Option<PathBuf>,
    /// Arguments passed to the child.
    #[arg(long = "child-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub child_args: Vec<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One command the child offers.
#[derive(Debug, Serialize)]
pub struct CommandReport {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Request type.
    pub request: String,
    /// Row type (typed commands).
    pub row: Option<String>,
    /// Summary type.
    pub summary: String,
}

/// A mechanism and whether this machine has it.
#[derive(Debug, Serialize)]
pub struct Mechanism {
    /// What it is.
    pub name: &'static str,
    /// Whether it works here.
    pub available: bool,
    /// What ringworker does with it, or why it is missing.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// The child's program.
    pub child: String,
    /// Worker name and version from the handshake.
    pub worker: String,
    /// Its version.
    pub version: String,
    /// The protocol it speaks, and ours.
    pub protocol: u32,
    /// This build's protocol.
    pub supervisor_protocol: u32,
    /// Its pid.
    pub pid: Option<u32>,
    /// Time from spawn to handshake.
    pub startup_ms: f64,
    /// Ring data capacity in bytes.
    pub ring_capacity: usize,
    /// Largest record in bytes.
    pub max_record: usize,
    /// Largest row (fragmented past `max_record`).
    pub max_row_bytes: u64,
    /// Resident memory of the child after start (VmRSS), bytes.
    pub rss_bytes: Option<u64>,
    /// Anonymous resident memory (RssAnon, what the limits watch), bytes.
    pub rss_anon_bytes: Option<u64>,
    /// Its commands.
    pub commands: Vec<CommandReport>,
    /// Memory and containment mechanisms.
    pub mechanisms: Vec<Mechanism>,
}

/// Runs `doctor`.
pub fn run(args: &DoctorArgs) -> Outcome {
    let config = match &args.child {
        Some(path) => WorkerConfig::new(path).with_args(&args.child_args),
        None => worker::config().class_with(Class::Internal, || "locating this executable")?,
    };
    let program = config.program.display().to_string();
    let started = Instant::now();
    let worker = Worker::spawn(config.clone()).map_err(|e| Failure {
        class: Class::Child,
        error: anyhow::Error::new(e).context(format!("starting {program}")),
    })?;
    let startup_ms = started.elapsed().as_secs_f64() * 1e3;
    let hello = worker
        .hello()
        .cloned()
        .ok_or_else(|| Failure::new(Class::Child, "the child gave no handshake"))?;
    let pid = worker.pid();
    let (rss_bytes, rss_anon_bytes) = pid.map_or((None, None), |p| {
        (status_kib(p, "VmRSS:"), status_kib(p, "RssAnon:"))
    });
    let report = DoctorReport {
        child: program,
        worker: hello.worker.clone(),
        version: hello.version.clone(),
        protocol: hello.protocol,
        supervisor_protocol: PROTOCOL_VERSION,
        pid,
        startup_ms,
        ring_capacity: config.ring_capacity,
        max_record: config.max_record,
        max_row_bytes: hello.max_row_bytes,
        rss_bytes,
        rss_anon_bytes,
        commands: hello
            .commands
            .iter()
            .map(|c| CommandReport {
                name: c.name.clone(),
                description: c.description.clone(),
                request: c.request.clone(),
                row: c.row.clone(),
                summary: c.summary.clone(),
            })
            .collect(),
        mechanisms: mechanisms(),
    };
    worker.shutdown(Duration::from_secs(2));
    if args.json {
        println!("{}", serde_json::to_string(&report).class(Class::Internal)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn render(r: &DoctorReport) -> String {
    let mut out = String::new();
    let or_unknown = |v: Option<u64>| v.map_or("unknown".to_owned(), human_bytes);
    out += &format!("child      {}\n", r.child);
    out += &format!(
        "worker     {} {} (pid {})\n",
        r.worker,
        r.version,
        r.pid.map_or("?".into(), |p| p.to_string())
    );
    out += &format!(
        "protocol   {} (this supervisor: {})\n",
        r.protocol, r.supervisor_protocol
    );
    out += &format!("start-up   {:.1} ms to the handshake\n", r.startup_ms);
    out += &format!(
        "ring       {} data, records up to {}, rows up to {}\n",
        human_bytes(r.ring_capacity as u64),
        human_bytes(r.max_record as u64),
        human_bytes(r.max_row_bytes)
    );
    out += &format!(
        "memory     RSS {} after start (anonymous {})\n",
        or_unknown(r.rss_bytes),
        or_unknown(r.rss_anon_bytes)
    );
    out += "commands\n";
    for c in &r.commands {
        out += &format!("  {:<18} {}\n", c.name, c.description);
        let unknown = |t: &str| {
            if t.is_empty() {
                "(not announced)".to_owned()
            } else {
                t.to_owned()
            }
        };
        out += &format!("  {:<18}   request {}\n", "", unknown(&c.request));
        if let Some(row) = &c.row {
            out += &format!("  {:<18}   row     {row}\n", "");
        }
        out += &format!("  {:<18}   summary {}\n", "", unknown(&c.summary));
    }
    out += "containment and limits on this machine\n";
    for m in &r.mechanisms {
        out += &format!(
            "  [{}] {:<28} {}\n",
            if m.available { "x" } else { " " },
            m.name,
            m.detail
        );
    }
    out
}

/// A `kB` line of `/proc/PID/status`, in bytes.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn mechanisms() -> Vec<Mechanism> {
    let tree = shm_proto::tree_containment_available();
    let self_status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_anon = self_status.contains("RssAnon:");
    let cgroup = Path::new("/sys/fs/cgroup/cgroup.controllers");
    let controllers = std::fs::read_to_string(cgroup).unwrap_or_default();
    let memory_controller = controllers.split_whitespace().any(|c| c == "memory");
    vec![
        Mechanism {
            name: "process-tree containment",
            available: tree,
            detail: if tree {
                "PR_SET_CHILD_SUBREAPER and /proc/thread-self/children: every worker runs under a subreaper shim; its whole tree is killed with it".into()
            } else {
                "missing: only the worker's own process group is killed".into()
            },
        },
        Mechanism {
            name: "parent-death signal",
            available: cfg!(target_os = "linux"),
            detail: "PR_SET_PDEATHSIG: workers die with the supervisor, even on SIGKILL".into(),
        },
        Mechanism {
            name: "RSS sampling",
            available: rss_anon,
            detail: if rss_anon {
                "/proc/PID/status RssAnon: soft and hard memory limits, the pool's budget".into()
            } else {
                "RssAnon missing from /proc: memory limits cannot be enforced by sampling".into()
            },
        },
        Mechanism {
            name: "kernel caps (rlimits)",
            available: cfg!(target_os = "linux"),
            detail: "RLIMIT_DATA / RLIMIT_AS: allocations past the cap fail in the worker".into(),
        },
        Mechanism {
            name: "cgroup v2",
            available: !controllers.is_empty(),
            detail: if controllers.is_empty() {
                "not mounted at /sys/fs/cgroup (not used by ringworker)".into()
            } else {
                format!(
                    "controllers: {} (memory controller {}; not used by ringworker: limits are enforced by sampling and rlimits)",
                    controllers.trim(),
                    if memory_controller {
                        "present"
                    } else {
                        "absent"
                    }
                )
            },
        },
    ]
}
