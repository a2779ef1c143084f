//! `ringworker-child`: the worker side of ringworker.
//!
//! A worker is a process started by a ringworker supervisor with its ring's
//! memfd on fd 3 and a control socket on fd 4. [`ChildRuntime`] turns any `main`
//! into one: it attaches both, sends the handshake (protocol version, name,
//! version, commands), then serves requests one at a time. A command gets a
//! [`RowWriter`] that writes rows, progress and diagnostics into the ring in
//! order, and the runtime closes every request with an end marker carrying
//! the typed summary or [`CommandError`], after the request's last row.
//! A command registered by its [`Command`] contract
//! ([`ChildRuntime::command_typed`]) writes rows through [`TypedRows`] instead,
//! so its rows are the type the supervisor's `Worker::run_typed` decodes.
//!
//! Layering: `registry` erases typed commands behind JSON, `writer` wraps the
//! ring's producer for one request, `runtime` runs the loop. `builtins` holds
//! the commands of the `ringworker-child` binary (synthetic rows, echo, fault
//! injection) that benchmarks and the supervisor's tests run against.
//!
//! # Examples
//!
//! A worker with one command that streams JSON rows (the supervisor side is
//! `ringworker`'s `examples/squares.rs`):
//!
//! ```no_run
//! use ringworker_child::{ChildRuntime, CommandError, RowWriter};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Squares { n: u64 }
//!
//! #[derive(Serialize)]
//! struct Done { rows: u64 }
//!
//! fn squares(req: Squares, out: &mut RowWriter<'_>) -> Result<Done, CommandError> {
//!     for i in 0..req.n {
//!         ringworker_child::check_cancelled(out)?;
//!         out.json(0, &(i, i * i))?; // serialized straight into shared memory
//!     }
//!     Ok(Done { rows: req.n })
//! }
//!
//! fn main() {
//!     let runtime = ChildRuntime::new("squares", "0.1.0").command("squares", "i and i² for i < n", squares);
//!     if let Err(err) = runtime.run() {
//!         eprintln!("{err}");
//!         std::process::exit(2);
//!     }
//! }
//! ```
#![forbid(unsafe_code)]

pub mod builtins;
mod error;
mod registry;
mod runtime;
mod writer;

pub use error::{ChildError, CommandError};
pub use registry::Registry;
pub use runtime::{ChildRuntime, PANIC_EXIT_CODE};
pub use shm_proto::payload::{FailureCode, Level, RuntimeCode};
pub use shm_proto::{Command, ErrorKind};
pub use writer::{RowSlot, RowWriter, TypedRows, check_cancelled};
