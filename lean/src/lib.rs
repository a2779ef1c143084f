//! `ringworker-lean`: Lean 4 workloads for ringworker.
//!
//! Today: reading lean4export NDJSON exports (format 3.0.x and 3.1.x) as a
//! stream of flat declaration rows, writing them to Parquet, and writing
//! large synthetic exports to test and benchmark that path. No Lean toolchain is needed for any of it.
//!
//! # Map of the crate
//!
//! | module | concept |
//! | --- | --- |
//! | [`format`](mod@format) | the line types of the format, the 3.0 / 3.1 differences, [`FormatVersion`], [`Meta`] |
//! | `table` (private) | the id tables (names, levels, expressions) stored compactly by id, and the per-declaration walks (DAG size, referenced constants) |
//! | [`reader`] | [`ExportReader`]: `BufRead` in, [`DeclRow`]s out, one constant at a time; [`for_each_decl`] |
//! | [`decl`] | the row: [`DeclRow`], [`DeclKind`], [`HintKind`] |
//! | [`error`] | [`ReadError`] (every variant with its line) and [`ErrorKind`] |
//! | [`synthetic`] | [`write_export`]: a large, valid export, deterministic by seed |
//! | [`wire`] | a row between a worker and its supervisor: part, ordinal and the [`DeclRow`] in postcard; decoding never trusts the bytes |
//! | [`parquet`](mod@parquet) (feature `parquet`, default on) | [`DeclParquetWriter`](parquet::DeclParquetWriter): [`DeclRow`]s to a Parquet file, one typed column per field; [`read_decls`](parquet::read_decls) back |
//!
//! # Layering
//!
//! `format` parses one line into a record without looking anything up;
//! `table` checks every id a record defines (the next one of its table) or
//! refers to (an earlier one) and keeps the tables; `reader` turns
//! declaration records into rows by walking the tables, and forgets each row
//! once handed out, so memory follows the export's tables, never the number
//! of declarations. `decl` is the only shape other crates need to store:
//! flat scalars, nullable scalars and lists of strings, ready for a columnar
//! (Parquet) writer. `synthetic` depends only on `format` and `decl` (it
//! writes text; it does not use the reader). `parquet` depends only on `decl`
//! (with `format`'s enums) and `error` (its error absorbs [`ReadError`]).
//!
//! # Example
//!
//! ```
//! use ringworker_lean::{DeclKind, ExportReader, SyntheticConfig, write_export};
//!
//! let mut export = Vec::new();
//! let written = write_export(&SyntheticConfig::new(7, 1_000), &mut export).unwrap();
//! let mut theorems = 0;
//! for row in ExportReader::new(export.as_slice())? {
//!     let row = row?;
//!     theorems += u64::from(row.kind == DeclKind::Thm);
//! }
//! assert_eq!(theorems, written.count(DeclKind::Thm));
//! # Ok::<(), ringworker_lean::ReadError>(())
//! ```
//!
//! # Lean in the worker: the sibling crates
//!
//! This crate never links Lean. Hosting the Lean runtime in a worker is
//! split so that everything but the Lean-linked layer builds and is tested
//! without a toolchain: `ringworker-lean-abi` (`lean/abi/`, the C ABI Lean
//! code calls to emit rows, tested from C), `ringworker-lean-host`
//! (`lean/host/`, the `decls` and `attempt-proofs` commands, which stream
//! this crate's [`DeclRow`]s so both workloads feed the same Parquet
//! writer) and `ringworker-lean-runtime` (`lean/runtime/`, its own
//! workspace; feature `runtime` links Lean through `lean-sys`). The last
//! one's crate docs list what was verified without Lean and the command
//! that runs the Lean tests where a toolchain is installed.

#![forbid(unsafe_code)]

pub mod decl;
pub mod error;
pub mod format;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod reader;
pub mod synthetic;
mod table;
pub mod wire;

pub use decl::{DeclKind, DeclRow, HintKind};
pub use error::{ErrorKind, ReadError, Table};
pub use format::{FormatVersion, Hints, Meta, QuotKind, Safety};
pub use reader::{ExportReader, Poll, ReaderStats, for_each_decl};
pub use synthetic::{SyntheticConfig, SyntheticSummary, write_export};
pub use wire::{WireError, WireRow};
