//! What a run will do, settled before any child starts: a bad selection
//! fails at once, and progress can report a total from the first step.

use anyhow::{Context, Result, bail};

use super::{PARTS, SuiteArgs};
use crate::ring_case::ring_config;
use crate::rows::SizeSpec;
use crate::{large_rows, pool_case, supervision};

/// A throughput case: name, sizes, default ring and baseline rows (quick, full).
pub(super) struct CaseDef {
    pub(super) name: &'static str,
    pub(super) spec: SizeSpec,
    pub(super) ring_rows: (u64, u64),
    pub(super) baseline_rows: (u64, u64),
}

impl CaseDef {
    /// Row bytes of the end-to-end run, which runs for the fixed sizes the
    /// issue names.
    pub(super) fn e2e_bytes(&self) -> Option<usize> {
        match self.spec {
            SizeSpec::Fixed(n) if matches!(self.name, "100B" | "4KiB") => Some(n),
            _ => None,
        }
    }

    /// Steps of one repetition: ring, ceiling, (iceoryx2,) baseline and
    /// tuned pipe, (end to end).
    fn steps_per_rep(&self) -> usize {
        3 + usize::from(cfg!(feature = "peers")) + usize::from(self.e2e_bytes().is_some())
    }
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

/// The validated selection: parts, throughput cases, repetitions.
pub(super) struct Plan {
    parts: Vec<String>,
    pub(super) defs: Vec<CaseDef>,
    pub(super) reps: usize,
    pub(super) large_reps: usize,
    pub(super) wake_samples: usize,
}

impl Plan {
    /// Validates `args` (before any child is spawned).
    pub(super) fn new(args: &SuiteArgs) -> Result<Self> {
        let config = ring_config(args.capacity);
        config
            .validate()
            .with_context(|| format!("--capacity {}", args.capacity))?;
        let max_payload = config.max_payload;
        if let Some(n) = args.row_bytes {
            SizeSpec::Fixed(n)
                .validate(max_payload)
                .with_context(|| format!("--row-bytes {n}"))?;
        }
        let parts: Vec<String> = match &args.cases {
            Some(list) => list.clone(),
            None if args.row_bytes.is_some() => vec!["custom".into()],
            None => PARTS
                .iter()
                .filter(|p| **p != "custom")
                .map(|p| p.to_string())
                .collect(),
        };
        for p in &parts {
            if !PARTS.contains(&p.as_str()) {
                bail!("unknown case {p:?}; known: {}", PARTS.join(", "));
            }
            if p == "custom" && args.row_bytes.is_none() {
                bail!("case `custom` needs --row-bytes N");
            }
        }
        if args.rows == Some(0) || args.baseline_rows == Some(0) || args.reps == Some(0) {
            bail!("--rows, --baseline-rows and --reps must be at least 1");
        }
        if args.wake_samples == Some(0) {
            bail!("--wake-samples must be at least 1");
        }
        let defs: Vec<CaseDef> = case_defs(args.row_bytes)
            .into_iter()
            .filter(|d| parts.iter().any(|p| p == d.name))
            .collect();
        for d in &defs {
            d.spec
                .validate(max_payload)
                .with_context(|| format!("case {} with --capacity {}", d.name, args.capacity))?;
        }
        Ok(Plan {
            parts,
            defs,
            reps: args.reps.unwrap_or(if args.quick { 5 } else { 7 }),
            large_reps: large_rows::reps(args.quick, args.reps),
            wake_samples: args
                .wake_samples
                .unwrap_or(if args.quick { 500 } else { 2000 }),
        })
    }

    pub(super) fn has(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }

    /// Steps of the whole run (see [`Step`](super::Step)).
    pub(super) fn total_steps(&self) -> usize {
        let cases: usize = self
            .defs
            .iter()
            .map(|d| d.steps_per_rep() * self.reps)
            .sum();
        let mut total = cases;
        if self.has("large") {
            total += large_rows::SIZES.len() * self.large_reps;
        }
        total += usize::from(self.has("idle")) + usize::from(self.has("wake"));
        if self.has("supervision") {
            total += supervision::STEPS;
        }
        if self.has("pool") {
            total += pool_case::STEPS;
        }
        total
    }
}
