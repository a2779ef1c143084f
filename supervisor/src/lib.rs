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
//! Layering, bottom up: `process` (spawn on a long-lived thread, pidfd, the
//! one reaping point) and `output` (stdout/stderr drain) → `session` (one
//! child generation: ring, control channel, handshake) → `request` (the
//! streaming loop with its checks) → `worker` (the public API, restarts,
//! stats). `sink`, `cancel`, `config`, `error` and `stats` are the types the
//! caller sees.
#![forbid(unsafe_code)]

mod cancel;
mod config;
mod error;
mod output;
mod process;
mod request;
mod session;
pub mod sink;
mod stats;
mod worker;

pub use cancel::CancelToken;
pub use config::WorkerConfig;
pub use error::{Error, ErrorKind, OutputTail};
pub use process::Exit;
pub use shm_proto::Command;
pub use shm_proto::control::{CommandInfo, Hello, PROTOCOL_VERSION};
pub use shm_proto::payload::{FailureCode, RuntimeCode};
pub use sink::{Discard, Router, Row, Sink, SinkError, TypedSink};
pub use stats::{RestartReason, StreamStats, WorkerStats};
pub use worker::{RequestOptions, Worker};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
