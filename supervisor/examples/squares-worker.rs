//! The README's worker: a command `squares` that streams `(i, i²)` for
//! `i < n` as JSON rows. A supervisor starts it (see `squares.rs`); run by
//! hand it exits with an error, because it has no ring to write to.
//!
//! ```sh
//! cargo build -p ringworker --example squares-worker
//! ```
#![forbid(unsafe_code)]

use ringworker_child::{ChildRuntime, CommandError, RowWriter};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Squares {
    n: u64,
}

#[derive(Serialize)]
struct Done {
    rows: u64,
}

fn squares(req: Squares, out: &mut RowWriter<'_>) -> Result<Done, CommandError> {
    for i in 0..req.n {
        out.json(0, &(i, i * i))?; // serialized straight into shared memory
    }
    Ok(Done { rows: req.n })
}

fn main() {
    let worker =
        ChildRuntime::new("squares", "0.1.0").command("squares", "i and i² for i < n", squares);
    if let Err(err) = worker.run() {
        eprintln!("squares-worker: {err}");
        std::process::exit(2);
    }
}
