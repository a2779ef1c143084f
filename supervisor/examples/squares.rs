//! The README's supervisor: starts the `squares-worker` example, streams its
//! rows into a typed sink and checks the sum.
//!
//! ```sh
//! cargo build -p ringworker --example squares-worker && cargo run -p ringworker --example squares
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;

use ringworker::{TypedSink, Worker, WorkerConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Done {
    rows: u64,
}

/// Cargo puts both examples in the same directory.
fn worker_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this example");
    exe.with_file_name(format!("squares-worker{}", std::env::consts::EXE_SUFFIX))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let program = worker_path();
    if !program.exists() {
        return Err(format!(
            "{} is missing: build it first with `cargo build -p ringworker --example squares-worker`",
            program.display()
        )
        .into());
    }
    let n = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let mut worker = Worker::spawn(WorkerConfig::new(program))?;
    let mut sum = 0u64;
    let mut sink = TypedSink::new(|_stream, (_i, square): (u64, u64)| sum += square);
    let done: Done = worker.stream("squares", &serde_json::json!({ "n": n }), &mut sink)?;
    let expected: u64 = (0..n).map(|i| i * i).sum();
    println!("{} rows, sum of squares {sum}", done.rows);
    if sum != expected {
        return Err(format!("sum of squares is {sum}, expected {expected}").into());
    }
    Ok(())
}
