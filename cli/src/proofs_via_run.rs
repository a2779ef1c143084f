//! The proof-mining bench part's second leg: the same candidates through
//! `ringworker run` itself, this binary started as a subprocess the way a
//! user runs it, `synthetic-proofs` over a pool with one candidate per
//! request (`--requests`).
//!
//! One candidate per request is what makes `run` lose nothing without the
//! miner's culprit isolation: a candidate that hangs or blows up memory
//! fails its own request only, so every candidate ends with a result row in
//! the output or a failed request in the run's JSON summary. [`RunLeg::lost`]
//! counts the candidates with neither, [`RunLeg::duplicated`] those with
//! more than one row.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ringworker_child::builtins::proofs::ProofBatch;
use serde_json::{Value, json};

use crate::bench::remove_on_interrupt;

/// What the leg measured.
#[derive(Debug, Clone)]
pub struct RunLeg {
    /// Candidates (= requests).
    pub candidates: u64,
    /// Wall time of `ringworker run`, start to exit.
    pub elapsed: Duration,
    /// Candidates with exactly one result row.
    pub results: u64,
    /// Failed requests by the error's class (`hung`, `memory_limit`, ...).
    pub failed: BTreeMap<String, u64>,
    /// Worker restarts the run reported.
    pub restarts: u64,
    /// Candidates with neither a row nor a failed request.
    pub lost: u64,
    /// Candidates with more than one row.
    pub duplicated: u64,
}

impl RunLeg {
    /// Candidates per second of wall time.
    pub fn candidates_per_sec(&self) -> f64 {
        self.candidates as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Failed requests in all.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The leg's line under the miner's in the bench table (same columns),
    /// and a line with its failures.
    pub fn table_lines(&self, workers: usize) -> String {
        let failed: Vec<String> = self
            .failed
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        format!(
            "{:<14} {:>10} {:>8.2} {:>13.0} {:>9} {:>9} {:>5} {:>9}\n\
             (through `ringworker run synthetic-proofs --requests`, one candidate per request, \
             {workers} workers: failed requests {}; {} candidates with more than one row)\n",
            "  via run",
            self.candidates,
            self.elapsed.as_secs_f64(),
            self.candidates_per_sec(),
            self.results,
            self.failed_total(),
            self.lost,
            self.restarts,
            if failed.is_empty() {
                "none".to_owned()
            } else {
                failed.join(", ")
            },
            self.duplicated,
        )
    }

    /// The leg as a JSON object.
    pub fn json(&self) -> Value {
        json!({
            "candidates": self.candidates,
            "seconds": self.elapsed.as_secs_f64(),
            "candidates_per_s": self.candidates_per_sec(),
            "results": self.results,
            "failed": self.failed,
            "restarts": self.restarts,
            "lost": self.lost,
            "duplicated": self.duplicated,
        })
    }
}

/// Runs candidates `0..candidates` of `template` through `ringworker run
/// synthetic-proofs` with `workers` workers, hang detection after
/// `hang_timeout` and a hard memory limit of `memory_limit` bytes.
pub fn run_leg(
    template: &ProofBatch,
    candidates: u64,
    workers: usize,
    hang_timeout: Duration,
    memory_limit: u64,
) -> anyhow::Result<RunLeg> {
    let dir = crate::scratch::dir("bench-proofs").context("creating a scratch directory")?;
    remove_on_interrupt(dir.path());
    let requests = dir.path().join("requests.ndjson");
    let rows = dir.path().join("rows.ndjson");
    let mut w = BufWriter::new(
        std::fs::File::create(&requests)
            .with_context(|| format!("cannot create {}", requests.display()))?,
    );
    for id in 0..candidates {
        let mut batch = template.clone();
        batch.candidates = vec![id];
        serde_json::to_writer(&mut w, &batch)?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", requests.display()))?;
    drop(w);

    let exe = std::env::current_exe().context("locating this executable")?;
    let started = Instant::now();
    let out = Command::new(exe)
        .arg("run")
        .arg("synthetic-proofs")
        .arg("--requests")
        .arg(&requests)
        .args(["--workers", &workers.to_string()])
        .args(["--hang-timeout", &format!("{}ms", hang_timeout.as_millis())])
        .args(["--memory-limit", &memory_limit.to_string()])
        .args(["--max-failed-jobs", &candidates.to_string()])
        .arg("--out")
        .arg(&rows)
        .args(["--json", "--progress", "off"])
        .stdin(Stdio::null())
        .output()
        .context("starting `ringworker run`")?;
    let elapsed = started.elapsed();
    ensure!(
        out.status.success(),
        "`ringworker run synthetic-proofs` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let report: Value =
        serde_json::from_slice(&out.stdout).context("reading `ringworker run --json`")?;

    // Rows per candidate id.
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let file = std::fs::File::open(&rows).with_context(|| format!("opening {}", rows.display()))?;
    for line in BufReader::new(file).lines() {
        let row: Value = serde_json::from_str(&line?).context("a row of `ringworker run`")?;
        let id = row["id"].as_u64().context("a row without a candidate id")?;
        *seen.entry(id).or_default() += 1;
    }
    // A failed request's index is its line, and line k holds candidate k.
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed_ids = BTreeSet::new();
    for job in report["failed"].as_array().into_iter().flatten() {
        let kind = job["kind"].as_str().unwrap_or("unknown").to_owned();
        *failed.entry(kind).or_default() += 1;
        if let Some(request) = job["request"].as_u64() {
            failed_ids.insert(request);
        }
    }
    let restarts = report["restarts"].as_object().map_or(0, |by_reason| {
        by_reason.values().filter_map(Value::as_u64).sum()
    });
    let results = seen.values().filter(|&&n| n == 1).count() as u64;
    let duplicated = seen.values().filter(|&&n| n > 1).count() as u64;
    let lost = (0..candidates)
        .filter(|id| !seen.contains_key(id) && !failed_ids.contains(id))
        .count() as u64;
    Ok(RunLeg {
        candidates,
        elapsed,
        results,
        failed,
        restarts,
        lost,
        duplicated,
    })
}
