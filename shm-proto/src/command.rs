//! The typed contract of a command, compiled by both sides.
//!
//! A type implementing [`Command`] names a command and fixes its request, row
//! and summary types. The child registers a handler against it and the
//! supervisor runs it by the same type, so the two cannot disagree on the
//! name or on a type. On the wire everything stays JSON, so untyped callers
//! (by name, with any serde value) keep working.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A command's name and types, shared by child and supervisor.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Upto { n: u64 }
///
/// /// Rows `0..n`, each its square; the summary is the row count.
/// struct Squares;
///
/// impl shm_proto::Command for Squares {
///     const NAME: &'static str = "squares";
///     const DESCRIPTION: &'static str = "the squares of 0..n";
///     type Request = Upto;
///     type Row = u64;
///     type Summary = u64;
/// }
/// ```
pub trait Command {
    /// The name requests use and the handshake announces.
    const NAME: &'static str;
    /// One line for humans, announced in the handshake.
    const DESCRIPTION: &'static str;
    /// The request's arguments.
    type Request: Serialize + DeserializeOwned;
    /// One row, serialized as JSON into one ring record.
    type Row: Serialize + DeserializeOwned;
    /// What the command returns when it succeeds.
    type Summary: Serialize + DeserializeOwned;
}
