//! `ringworker`: the supervisor side.
//!
//! A [`Worker`] owns one child process at a time. It creates the child's ring
//! (a sealed memfd, see `shm-proto`) and a control socket, starts the child
//! with both on fixed fds, waits for its handshake, and then runs requests:
//! the request goes out on the control socket, and everything the child says
//! about it (rows, progress, diagnostics, the end marker with the summary)
//! comes back through the ring, in order, into a [`Sink`]. Whatever the child
//! does (exit, crash, hang, flood its output, corrupt the ring), the request
//! ends with a typed [`Error`] that says how many rows were delivered, the
//! child is killed and reaped, and the next request gets a fresh one.
//!
//! Layering, bottom up: `process` (spawn on a long-lived thread, pidfd,
//! hand-over to the watchdog) and `output` (stdout/stderr drain) →
//! `session` (one child generation: ring, control channel, handshake under
//! an absolute deadline) → `request` (send, then `dispatch` records to the
//! sink) → `worker` (the public API, restart policy, prewarmed spare,
//! stats) → `pool` ([`Pool`]: N workers, one thread each, fed from a
//! bounded job queue; per-job rows and attempts, a merged sink, retries of
//! idempotent jobs, a total memory budget, pool stats). Beside them,
//! `watchdog` (one thread per process that owns every deadline and limit,
//! the pool's memory budget included, reaps every child the moment it
//! dies, kills the whole tree and wakes the request thread) and `memory`
//! (`RssAnon` samples). `template` is the fork-server client of warm
//! templates: one template process per distinct start-up
//! ([`WorkerConfig::with_template`]) runs the worker's start-up step once
//! and forks every child of `session` from its warm state. `sink`,
//! `cancel`, `config`, `policy`, `error` and `stats` are the types the
//! caller sees.
//!
//! # Examples
//!
//! Start a worker binary, stream a command's JSON rows into a typed sink and
//! decode its summary (the worker side is `ringworker-child`'s example; both
//! are in this crate's `examples/`):
//!
//! ```no_run
//! use ringworker::{TypedSink, Worker, WorkerConfig};
//!
//! # fn main() -> Result<(), ringworker::Error> {
//! let mut worker = Worker::spawn(WorkerConfig::new("target/debug/examples/squares-worker"))?;
//! let mut sum = 0u64;
//! let mut sink = TypedSink::new(|_stream, (_i, square): (u64, u64)| sum += square);
//! let done: serde_json::Value = worker.stream("squares", &serde_json::json!({ "n": 10 }), &mut sink)?;
//! assert_eq!(done["rows"], 10);
//! assert_eq!(sum, 285);
//! # Ok(())
//! # }
//! ```
//!
//! Any failure of the child is a typed error that says how far it got:
//!
//! ```no_run
//! # use ringworker::{Discard, ErrorKind, Worker, WorkerConfig};
//! # fn main() -> Result<(), ringworker::Error> {
//! # let mut worker = Worker::spawn(WorkerConfig::new("target/debug/examples/squares-worker"))?;
//! match worker.stream::<_, serde_json::Value, _>("squares", &serde_json::json!({ "n": 10 }), &mut Discard) {
//!     Ok(summary) => println!("done: {summary}"),
//!     Err(err) if err.kind() == ErrorKind::Worker => eprintln!("the command failed: {err}"),
//!     Err(err) => eprintln!("after {} rows: {err}; the next request gets a fresh child", err.rows_delivered().unwrap_or(0)),
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod cancel;
mod config;
mod error;
mod memory;
mod output;
mod policy;
mod pool;
mod process;
mod reassembly;
mod request;
mod session;
pub mod sink;
mod standby;
mod stats;
mod template;
mod watchdog;
mod worker;

pub use cancel::CancelToken;
pub use config::WorkerConfig;
pub use error::{Error, ErrorKind, OutputTail, TemplateClass};
pub use memory::RssSample;
pub use policy::{MemoryLimits, RestartPolicy};
pub use pool::{
    FailedAttempt, Job, JobHandle, JobOptions, JobOutput, MergedOutput, Order, OwnedRow, Pool,
    PoolConfig, PoolStats, PoolWorkerStats, RetryPolicy, TaggedRow, WaitTimes, WhenFull,
};
pub use process::Exit;
pub use shm_proto::Command;
pub use shm_proto::control::{CommandInfo, Hello, PROTOCOL_VERSION};
pub use shm_proto::payload::{FailureCode, RuntimeCode};
pub use sink::{Copied, Discard, Router, Row, Sink, SinkError, TypedSink};
pub use stats::{RestartReason, StreamStats, WorkerStats};
pub use worker::{RequestOptions, Worker};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
