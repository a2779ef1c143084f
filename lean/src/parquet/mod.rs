//! Declaration rows as Parquet: [`DeclParquetWriter`] writes [`DeclRow`](crate::DeclRow)s
//! one column per field, [`read_decls`] reads such a file back.
//!
//! The schema ([`decl_schema`]) is typed: `Utf8` for names, `UInt32` /
//! `UInt64` for counts and sizes, `Boolean` for flags, `Utf8` for the enums
//! (their serde names: `thm`, `safe`, `regular`, `lift`; Parquet
//! dictionary-encodes these low-cardinality columns by itself), `List<Utf8>`
//! for the lists of names. A column is nullable exactly where the row field
//! is an `Option`; list items are never null.
//!
//! Rows are buffered in Arrow builders and written as one record batch, one
//! row group, every [`ParquetOptions::row_group_rows`] rows, so memory is
//! bounded by one row group (plus the encoder's copy of it while it is
//! written). Pages are Zstd-compressed, with page-level column statistics.
//!
//! ```
//! use ringworker_lean::parquet::{DeclParquetWriter, ParquetOptions, read_decls_from};
//! use ringworker_lean::{ExportReader, SyntheticConfig, write_export};
//!
//! let mut export = Vec::new();
//! write_export(&SyntheticConfig::new(1, 100), &mut export).unwrap();
//! let rows: Vec<_> = ExportReader::new(export.as_slice())?.collect::<Result<_, _>>()?;
//!
//! let mut writer = DeclParquetWriter::new(Vec::new(), ParquetOptions::default())?;
//! for row in &rows {
//!     writer.write(row)?;
//! }
//! let (summary, bytes) = writer.finish_into_inner()?;
//! assert_eq!(summary.rows, 100);
//! assert_eq!(read_decls_from(bytes)?, rows);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layering: `schema` (the Arrow schema and the enums' column names) →
//! `write` (builders, [`DeclParquetWriter`]) and `read` ([`read_decls`],
//! decoding batches back into rows).

mod read;
mod schema;
mod write;

pub use read::{IntoChunkReader, read_decls, read_decls_from};
pub use schema::decl_schema;
pub use write::DeclParquetWriter;

use std::path::PathBuf;

use crate::error::ReadError;

/// The default [`ParquetOptions::row_group_rows`]: 64 Ki rows.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 64 * 1024;

/// How [`DeclParquetWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Rows per row group (and per buffered record batch); at least 1.
    pub row_group_rows: usize,
    /// Zstd level (1..=22).
    pub zstd_level: i32,
    /// Text bytes (over all string columns) after which a row group is
    /// written before it has `row_group_rows` rows; 1 ..= 1 GiB, default
    /// 256 MiB. Keeps memory bounded in bytes too, and every string column
    /// of a batch far below the 2 GiB of Arrow's 32-bit offsets.
    pub row_group_text_bytes: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            zstd_level: 3,
            row_group_text_bytes: 256 << 20,
        }
    }
}

/// What [`DeclParquetWriter::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    /// Rows written.
    pub rows: u64,
    /// Row groups written.
    pub row_groups: u64,
    /// Bytes written to the sink, footer included.
    pub bytes: u64,
}

/// An error writing or reading a declaration Parquet file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParquetError {
    /// The options are unusable.
    #[error("invalid Parquet options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// The `parquet` crate failed (I/O of the sink included).
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    /// Arrow failed to build or decode a record batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A file could not be opened.
    #[error("{}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file read back is not a declaration file: a column is missing, has
    /// another type, or holds a value no row field takes.
    #[error("not a declaration file: column `{column}`: {reason}")]
    Schema {
        /// The column.
        column: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the export failed (for [`crate::for_each_decl`] feeding a
    /// writer).
    #[error(transparent)]
    Export(#[from] ReadError),
    /// One row holds more text than a row group's string column can (Arrow's
    /// 32-bit offsets); nothing of it was written.
    #[error(
        "declaration {name:?} holds {bytes} bytes of text, over the {max} bytes a row may hold"
    )]
    RowTooLarge {
        /// The declaration (its first 200 characters).
        name: String,
        /// Its text bytes over all string columns.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

/// The class of a [`ParquetError`], for matching without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParquetErrorKind {
    /// [`ParquetError::InvalidOptions`].
    InvalidOptions,
    /// [`ParquetError::Parquet`].
    Parquet,
    /// [`ParquetError::Arrow`].
    Arrow,
    /// [`ParquetError::Open`].
    Open,
    /// [`ParquetError::Schema`].
    Schema,
    /// [`ParquetError::Export`].
    Export,
    /// [`ParquetError::RowTooLarge`].
    RowTooLarge,
}

impl ParquetError {
    /// The class of this error.
    pub fn kind(&self) -> ParquetErrorKind {
        match self {
            ParquetError::InvalidOptions { .. } => ParquetErrorKind::InvalidOptions,
            ParquetError::RowTooLarge { .. } => ParquetErrorKind::RowTooLarge,
            ParquetError::Parquet(_) => ParquetErrorKind::Parquet,
            ParquetError::Arrow(_) => ParquetErrorKind::Arrow,
            ParquetError::Open { .. } => ParquetErrorKind::Open,
            ParquetError::Schema { .. } => ParquetErrorKind::Schema,
            ParquetError::Export(_) => ParquetErrorKind::Export,
        }
    }

    fn schema(column: &str, reason: impl Into<String>) -> Self {
        ParquetError::Schema {
            column: column.to_owned(),
            reason: reason.into(),
        }
    }
}

/// This module's result type.
pub type Result<T, E = ParquetError> = std::result::Result<T, E>;
