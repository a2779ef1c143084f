//! `ringworker bench`: the benchmark report. On this branch only the type
//! of a report's part, for the proof-mining part (`crate::proofs::bench_part`);
//! the command itself comes with the bench branch.

/// One part of the benchmark report, as each part's module measures it.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read by the bench command (which comes with the bench branch)
pub struct BenchPart {
    /// The part's text table, one or more lines ending in a newline.
    pub table: String,
    /// The part's measurements as one JSON object.
    pub json: serde_json::Value,
    /// The targets this part checks, each with what was measured.
    pub targets: Vec<ringworker_benches::report::Target>,
}
