//! Declaration rows as Parquet: [`DeclParquetWriter`] writes [`DeclRow`]s
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

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use ::parquet::file::reader::ChunkReader;
use arrow_array::builder::{
    BooleanBuilder, ListBuilder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::decl::{DeclKind, DeclRow, HintKind};
use crate::error::ReadError;
use crate::format::{QuotKind, Safety};

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

// ---------------------------------------------------------------------------
// The schema.

fn list_item() -> Field {
    Field::new("item", DataType::Utf8, false)
}

fn list_type() -> DataType {
    DataType::List(Arc::new(list_item()))
}

/// The Arrow schema of a declaration file: one column per [`DeclRow`] field,
/// in field order, named like the field.
pub fn decl_schema() -> SchemaRef {
    use DataType::{Boolean, UInt32, UInt64, Utf8};
    let f = Field::new;
    Arc::new(Schema::new(vec![
        f("name", Utf8, false),
        f("kind", Utf8, false),
        f("namespace", Utf8, true),
        f("name_depth", UInt32, false),
        f("level_params", list_type(), false),
        f("line", UInt64, false),
        f("record", UInt64, false),
        f("is_unsafe", Boolean, false),
        f("safety", Utf8, true),
        f("hints", Utf8, true),
        f("hints_height", UInt32, true),
        f("quot_kind", Utf8, true),
        f("all", list_type(), false),
        f("type_consts", list_type(), false),
        f("type_const_count", UInt32, false),
        f("value_consts", list_type(), false),
        f("value_const_count", UInt32, false),
        f("type_dag_size", UInt64, false),
        f("type_tree_size", UInt64, false),
        f("value_dag_size", UInt64, true),
        f("value_tree_size", UInt64, true),
        f("ctors", list_type(), false),
        f("recs", list_type(), false),
        f("induct", Utf8, true),
        f("cidx", UInt32, true),
        f("num_params", UInt32, true),
        f("num_indices", UInt32, true),
        f("num_fields", UInt32, true),
        f("num_nested", UInt32, true),
        f("is_rec", Boolean, true),
        f("is_reflexive", Boolean, true),
        f("num_motives", UInt32, true),
        f("num_minors", UInt32, true),
        f("num_rules", UInt32, true),
        f("k", Boolean, true),
    ]))
}

// ---------------------------------------------------------------------------
// Enum names (the serde names).

fn safety_str(s: Safety) -> &'static str {
    match s {
        Safety::Safe => "safe",
        Safety::Unsafe => "unsafe",
        Safety::Partial => "partial",
    }
}

fn hint_str(h: HintKind) -> &'static str {
    match h {
        HintKind::Opaque => "opaque",
        HintKind::Abbrev => "abbrev",
        HintKind::Regular => "regular",
    }
}

fn quot_str(q: QuotKind) -> &'static str {
    match q {
        QuotKind::Type => "type",
        QuotKind::Ctor => "ctor",
        QuotKind::Lift => "lift",
        QuotKind::Ind => "ind",
    }
}

fn parse_enum<T: Copy>(column: &str, s: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| name(*v) == s)
        .ok_or_else(|| ParquetError::schema(column, format!("unknown value {s:?}")))
}

const SAFETIES: [Safety; 3] = [Safety::Safe, Safety::Unsafe, Safety::Partial];
const HINTS: [HintKind; 3] = [HintKind::Opaque, HintKind::Abbrev, HintKind::Regular];
const QUOTS: [QuotKind; 4] = [
    QuotKind::Type,
    QuotKind::Ctor,
    QuotKind::Lift,
    QuotKind::Ind,
];

// ---------------------------------------------------------------------------
// The writer.

type StrList = ListBuilder<StringBuilder>;

fn str_list() -> StrList {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(list_item()))
}

fn append_list(b: &mut StrList, items: &[String]) {
    for s in items {
        b.values().append_value(s);
    }
    b.append(true);
}

/// The most text one row may hold (it then fills a row group alone), and
/// the largest [`ParquetOptions::row_group_text_bytes`]: a batch holds at
/// most twice this in one column, below the 2 GiB of Arrow's 32-bit string
/// offsets (over them its builders panic).
const ROW_TEXT_BYTES: usize = 1 << 30;

/// Bytes of text `r` adds to the string columns.
fn text_bytes(r: &DeclRow) -> usize {
    let list = |items: &[String]| items.iter().map(String::len).sum::<usize>();
    r.name.len()
        + r.namespace.as_ref().map_or(0, String::len)
        + r.induct.as_ref().map_or(0, String::len)
        + list(&r.level_params)
        + list(&r.all)
        + list(&r.type_consts)
        + list(&r.value_consts)
        + list(&r.ctors)
        + list(&r.recs)
        // The enums' short names.
        + 64
}

/// One Arrow builder per column, in schema order.
struct Builders {
    name: StringBuilder,
    kind: StringBuilder,
    namespace: StringBuilder,
    name_depth: UInt32Builder,
    level_params: StrList,
    line: UInt64Builder,
    record: UInt64Builder,
    is_unsafe: BooleanBuilder,
    safety: StringBuilder,
    hints: StringBuilder,
    hints_height: UInt32Builder,
    quot_kind: StringBuilder,
    all: StrList,
    type_consts: StrList,
    type_const_count: UInt32Builder,
    value_consts: StrList,
    value_const_count: UInt32Builder,
    type_dag_size: UInt64Builder,
    type_tree_size: UInt64Builder,
    value_dag_size: UInt64Builder,
    value_tree_size: UInt64Builder,
    ctors: StrList,
    recs: StrList,
    induct: StringBuilder,
    cidx: UInt32Builder,
    num_params: UInt32Builder,
    num_indices: UInt32Builder,
    num_fields: UInt32Builder,
    num_nested: UInt32Builder,
    is_rec: BooleanBuilder,
    is_reflexive: BooleanBuilder,
    num_motives: UInt32Builder,
    num_minors: UInt32Builder,
    num_rules: UInt32Builder,
    k: BooleanBuilder,
}

impl Builders {
    fn new() -> Self {
        Builders {
            name: StringBuilder::new(),
            kind: StringBuilder::new(),
            namespace: StringBuilder::new(),
            name_depth: UInt32Builder::new(),
            level_params: str_list(),
            line: UInt64Builder::new(),
            record: UInt64Builder::new(),
            is_unsafe: BooleanBuilder::new(),
            safety: StringBuilder::new(),
            hints: StringBuilder::new(),
            hints_height: UInt32Builder::new(),
            quot_kind: StringBuilder::new(),
            all: str_list(),
            type_consts: str_list(),
            type_const_count: UInt32Builder::new(),
            value_consts: str_list(),
            value_const_count: UInt32Builder::new(),
            type_dag_size: UInt64Builder::new(),
            type_tree_size: UInt64Builder::new(),
            value_dag_size: UInt64Builder::new(),
            value_tree_size: UInt64Builder::new(),
            ctors: str_list(),
            recs: str_list(),
            induct: StringBuilder::new(),
            cidx: UInt32Builder::new(),
            num_params: UInt32Builder::new(),
            num_indices: UInt32Builder::new(),
            num_fields: UInt32Builder::new(),
            num_nested: UInt32Builder::new(),
            is_rec: BooleanBuilder::new(),
            is_reflexive: BooleanBuilder::new(),
            num_motives: UInt32Builder::new(),
            num_minors: UInt32Builder::new(),
            num_rules: UInt32Builder::new(),
            k: BooleanBuilder::new(),
        }
    }

    fn append(&mut self, r: &DeclRow) {
        self.name.append_value(&r.name);
        self.kind.append_value(r.kind.as_str());
        self.namespace.append_option(r.namespace.as_deref());
        self.name_depth.append_value(r.name_depth);
        append_list(&mut self.level_params, &r.level_params);
        self.line.append_value(r.line);
        self.record.append_value(r.record);
        self.is_unsafe.append_value(r.is_unsafe);
        self.safety.append_option(r.safety.map(safety_str));
        self.hints.append_option(r.hints.map(hint_str));
        self.hints_height.append_option(r.hints_height);
        self.quot_kind.append_option(r.quot_kind.map(quot_str));
        append_list(&mut self.all, &r.all);
        append_list(&mut self.type_consts, &r.type_consts);
        self.type_const_count.append_value(r.type_const_count);
        append_list(&mut self.value_consts, &r.value_consts);
        self.value_const_count.append_value(r.value_const_count);
        self.type_dag_size.append_value(r.type_dag_size);
        self.type_tree_size.append_value(r.type_tree_size);
        self.value_dag_size.append_option(r.value_dag_size);
        self.value_tree_size.append_option(r.value_tree_size);
        append_list(&mut self.ctors, &r.ctors);
        append_list(&mut self.recs, &r.recs);
        self.induct.append_option(r.induct.as_deref());
        self.cidx.append_option(r.cidx);
        self.num_params.append_option(r.num_params);
        self.num_indices.append_option(r.num_indices);
        self.num_fields.append_option(r.num_fields);
        self.num_nested.append_option(r.num_nested);
        self.is_rec.append_option(r.is_rec);
        self.is_reflexive.append_option(r.is_reflexive);
        self.num_motives.append_option(r.num_motives);
        self.num_minors.append_option(r.num_minors);
        self.num_rules.append_option(r.num_rules);
        self.k.append_option(r.k);
    }

    /// The buffered rows as one batch; the builders are left empty.
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.namespace.finish()),
            Arc::new(self.name_depth.finish()),
            Arc::new(self.level_params.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.record.finish()),
            Arc::new(self.is_unsafe.finish()),
            Arc::new(self.safety.finish()),
            Arc::new(self.hints.finish()),
            Arc::new(self.hints_height.finish()),
            Arc::new(self.quot_kind.finish()),
            Arc::new(self.all.finish()),
            Arc::new(self.type_consts.finish()),
            Arc::new(self.type_const_count.finish()),
            Arc::new(self.value_consts.finish()),
            Arc::new(self.value_const_count.finish()),
            Arc::new(self.type_dag_size.finish()),
            Arc::new(self.type_tree_size.finish()),
            Arc::new(self.value_dag_size.finish()),
            Arc::new(self.value_tree_size.finish()),
            Arc::new(self.ctors.finish()),
            Arc::new(self.recs.finish()),
            Arc::new(self.induct.finish()),
            Arc::new(self.cidx.finish()),
            Arc::new(self.num_params.finish()),
            Arc::new(self.num_indices.finish()),
            Arc::new(self.num_fields.finish()),
            Arc::new(self.num_nested.finish()),
            Arc::new(self.is_rec.finish()),
            Arc::new(self.is_reflexive.finish()),
            Arc::new(self.num_motives.finish()),
            Arc::new(self.num_minors.finish()),
            Arc::new(self.num_rules.finish()),
            Arc::new(self.k.finish()),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Writes [`DeclRow`]s to a Parquet file (see the [module docs](self)).
///
/// Call [`finish`](Self::finish): a writer dropped without it leaves a file
/// without its footer, which no Parquet reader opens. After an error the
/// file is unusable too; drop the writer.
pub struct DeclParquetWriter<W: Write + Send> {
    writer: ArrowWriter<Counting<W>>,
    schema: SchemaRef,
    builders: Builders,
    row_group_rows: usize,
    buffered: usize,
    /// Text bytes of the buffered rows.
    buffered_text: usize,
    /// [`ParquetOptions::row_group_text_bytes`].
    group_text_bytes: usize,
    rows: u64,
}

impl<W: Write + Send> std::fmt::Debug for DeclParquetWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclParquetWriter")
            .field("row_group_rows", &self.row_group_rows)
            .field("buffered", &self.buffered)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send> DeclParquetWriter<W> {
    /// A writer to `sink` (the Parquet header is written at once).
    pub fn new(sink: W, options: ParquetOptions) -> Result<Self> {
        if options.row_group_rows == 0 {
            return Err(ParquetError::InvalidOptions {
                reason: "row_group_rows must be at least 1".into(),
            });
        }
        if !(1..=ROW_TEXT_BYTES).contains(&options.row_group_text_bytes) {
            return Err(ParquetError::InvalidOptions {
                reason: format!(
                    "row_group_text_bytes must be in 1..={ROW_TEXT_BYTES}, not {}",
                    options.row_group_text_bytes
                ),
            });
        }
        let level =
            ZstdLevel::try_new(options.zstd_level).map_err(|e| ParquetError::InvalidOptions {
                reason: e.to_string(),
            })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .set_max_row_group_bytes(None)
            .build();
        let schema = decl_schema();
        let writer = ArrowWriter::try_new(
            Counting {
                inner: sink,
                bytes: 0,
            },
            schema.clone(),
            Some(props),
        )?;
        Ok(DeclParquetWriter {
            writer,
            schema,
            builders: Builders::new(),
            row_group_rows: options.row_group_rows,
            buffered: 0,
            buffered_text: 0,
            group_text_bytes: options.row_group_text_bytes,
            rows: 0,
        })
    }

    /// Buffers `row`; writes a row group once `row_group_rows` are buffered,
    /// or before `row` when it would take the buffered text past
    /// `row_group_text_bytes`.
    pub fn write(&mut self, row: &DeclRow) -> Result<()> {
        let text = text_bytes(row);
        if text > ROW_TEXT_BYTES {
            return Err(ParquetError::RowTooLarge {
                name: row.name.chars().take(200).collect(),
                bytes: text,
                max: ROW_TEXT_BYTES,
            });
        }
        if self.buffered > 0 && self.buffered_text + text > self.group_text_bytes {
            self.flush_group()?;
        }
        self.builders.append(row);
        self.buffered += 1;
        self.buffered_text += text;
        self.rows += 1;
        if self.buffered >= self.row_group_rows {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Rows written so far (buffered ones included).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn flush_group(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let batch = self.builders.finish(&self.schema)?;
        self.buffered = 0;
        self.buffered_text = 0;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Writes the buffered rows and the footer; returns the counts.
    pub fn finish(self) -> Result<WriteSummary> {
        self.finish_into_inner().map(|(summary, _)| summary)
    }

    /// Like [`finish`](Self::finish), and hands back the sink (flushed).
    pub fn finish_into_inner(mut self) -> Result<(WriteSummary, W)> {
        self.flush_group()?;
        let row_groups = self.writer.flushed_row_groups().len() as u64;
        // Writes the footer; the sink's byte count is kept by `Counting`
        // since `ArrowWriter` forgets it when handing the sink back.
        let mut sink = self.writer.into_inner()?;
        sink.inner
            .flush()
            .map_err(|e| ParquetError::Parquet(e.into()))?;
        let summary = WriteSummary {
            rows: self.rows,
            row_groups,
            bytes: sink.bytes,
        };
        Ok((summary, sink.inner))
    }
}

/// The sink, counting the bytes written to it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------------------
// Reading back.

/// Reads every row of the declaration file at `path`.
pub fn read_decls(path: impl AsRef<Path>) -> Result<Vec<DeclRow>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| ParquetError::Open {
        path: path.to_owned(),
        source,
    })?;
    read_decls_from(file)
}

/// Reads every row of a declaration file from `source` (a [`File`], or
/// in-memory bytes: anything the `parquet` crate reads from; a `Vec<u8>`
/// is converted to `bytes::Bytes`).
pub fn read_decls_from<R: IntoChunkReader>(source: R) -> Result<Vec<DeclRow>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(source.into_chunk_reader())?.build()?;
    let expected = decl_schema();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        check_schema(&expected, batch.schema().as_ref())?;
        decode(&batch, &mut rows)?;
    }
    Ok(rows)
}

/// A source [`read_decls_from`] reads: a [`File`], or bytes in memory.
pub trait IntoChunkReader {
    /// The `parquet` crate's reader type.
    type Reader: ChunkReader + 'static;
    /// Converts.
    fn into_chunk_reader(self) -> Self::Reader;
}

impl IntoChunkReader for File {
    type Reader = File;
    fn into_chunk_reader(self) -> File {
        self
    }
}

impl IntoChunkReader for bytes::Bytes {
    type Reader = bytes::Bytes;
    fn into_chunk_reader(self) -> Self::Reader {
        self
    }
}

impl IntoChunkReader for Vec<u8> {
    type Reader = bytes::Bytes;
    fn into_chunk_reader(self) -> Self::Reader {
        self.into()
    }
}

fn check_schema(expected: &Schema, found: &Schema) -> Result<()> {
    for field in expected.fields() {
        let Ok(got) = found.field_with_name(field.name()) else {
            return Err(ParquetError::schema(field.name(), "missing"));
        };
        if got.data_type() != field.data_type() {
            return Err(ParquetError::schema(
                field.name(),
                format!("type {} (expected {})", got.data_type(), field.data_type()),
            ));
        }
        if got.is_nullable() && !field.is_nullable() {
            return Err(ParquetError::schema(field.name(), "nullable"));
        }
    }
    Ok(())
}

fn col<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| ParquetError::schema(name, "missing or of another type"))
}

/// The columns of one batch, downcast.
struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn str(&self, name: &str) -> Result<Strs<'a>> {
        Ok(Strs(col::<StringArray>(self.batch, name)?))
    }
    fn u32(&self, name: &str) -> Result<&'a UInt32Array> {
        col(self.batch, name)
    }
    fn u64(&self, name: &str) -> Result<&'a UInt64Array> {
        col(self.batch, name)
    }
    fn bool(&self, name: &str) -> Result<&'a BooleanArray> {
        col(self.batch, name)
    }
    fn list(&self, name: &str) -> Result<Lists<'a>> {
        let list = col::<ListArray>(self.batch, name)?;
        let items = list
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ParquetError::schema(name, "list items are not Utf8"))?;
        Ok(Lists { list, items })
    }
}

struct Strs<'a>(&'a StringArray);

impl Strs<'_> {
    fn get(&self, i: usize) -> Option<String> {
        self.0.is_valid(i).then(|| self.0.value(i).to_owned())
    }
}

struct Lists<'a> {
    list: &'a ListArray,
    items: &'a StringArray,
}

impl Lists<'_> {
    fn get(&self, i: usize) -> Vec<String> {
        let offsets = self.list.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        (start..end)
            .map(|j| self.items.value(j).to_owned())
            .collect()
    }
}

fn opt<T, A>(a: &A, i: usize, value: impl Fn(&A, usize) -> T) -> Option<T>
where
    A: Array,
{
    a.is_valid(i).then(|| value(a, i))
}

fn required<T>(column: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| ParquetError::schema(column, "null in a required column"))
}

fn decode(batch: &RecordBatch, out: &mut Vec<DeclRow>) -> Result<()> {
    let c = Columns { batch };
    let name = c.str("name")?;
    let kind = c.str("kind")?;
    let namespace = c.str("namespace")?;
    let name_depth = c.u32("name_depth")?;
    let level_params = c.list("level_params")?;
    let line = c.u64("line")?;
    let record = c.u64("record")?;
    let is_unsafe = c.bool("is_unsafe")?;
    let safety = c.str("safety")?;
    let hints = c.str("hints")?;
    let hints_height = c.u32("hints_height")?;
    let quot_kind = c.str("quot_kind")?;
    let all = c.list("all")?;
    let type_consts = c.list("type_consts")?;
    let type_const_count = c.u32("type_const_count")?;
    let value_consts = c.list("value_consts")?;
    let value_const_count = c.u32("value_const_count")?;
    let type_dag_size = c.u64("type_dag_size")?;
    let type_tree_size = c.u64("type_tree_size")?;
    let value_dag_size = c.u64("value_dag_size")?;
    let value_tree_size = c.u64("value_tree_size")?;
    let ctors = c.list("ctors")?;
    let recs = c.list("recs")?;
    let induct = c.str("induct")?;
    let cidx = c.u32("cidx")?;
    let num_params = c.u32("num_params")?;
    let num_indices = c.u32("num_indices")?;
    let num_fields = c.u32("num_fields")?;
    let num_nested = c.u32("num_nested")?;
    let is_rec = c.bool("is_rec")?;
    let is_reflexive = c.bool("is_reflexive")?;
    let num_motives = c.u32("num_motives")?;
    let num_minors = c.u32("num_minors")?;
    let num_rules = c.u32("num_rules")?;
    let k = c.bool("k")?;

    let u32v = |a: &UInt32Array, i| a.value(i);
    let u64v = |a: &UInt64Array, i| a.value(i);
    let boolv = |a: &BooleanArray, i| a.value(i);
    out.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let kind_s = required("kind", kind.get(i))?;
        let row = DeclRow {
            name: required("name", name.get(i))?,
            kind: parse_enum("kind", &kind_s, &DeclKind::ALL, DeclKind::as_str)?,
            namespace: namespace.get(i),
            name_depth: required("name_depth", opt(name_depth, i, u32v))?,
            level_params: level_params.get(i),
            line: required("line", opt(line, i, u64v))?,
            record: required("record", opt(record, i, u64v))?,
            is_unsafe: required("is_unsafe", opt(is_unsafe, i, boolv))?,
            safety: safety
                .get(i)
                .map(|s| parse_enum("safety", &s, &SAFETIES, safety_str))
                .transpose()?,
            hints: hints
                .get(i)
                .map(|s| parse_enum("hints", &s, &HINTS, hint_str))
                .transpose()?,
            hints_height: opt(hints_height, i, u32v),
            quot_kind: quot_kind
                .get(i)
                .map(|s| parse_enum("quot_kind", &s, &QUOTS, quot_str))
                .transpose()?,
            all: all.get(i),
            type_consts: type_consts.get(i),
            type_const_count: required("type_const_count", opt(type_const_count, i, u32v))?,
            value_consts: value_consts.get(i),
            value_const_count: required("value_const_count", opt(value_const_count, i, u32v))?,
            type_dag_size: required("type_dag_size", opt(type_dag_size, i, u64v))?,
            type_tree_size: required("type_tree_size", opt(type_tree_size, i, u64v))?,
            value_dag_size: opt(value_dag_size, i, u64v),
            value_tree_size: opt(value_tree_size, i, u64v),
            ctors: ctors.get(i),
            recs: recs.get(i),
            induct: induct.get(i),
            cidx: opt(cidx, i, u32v),
            num_params: opt(num_params, i, u32v),
            num_indices: opt(num_indices, i, u32v),
            num_fields: opt(num_fields, i, u32v),
            num_nested: opt(num_nested, i, u32v),
            is_rec: opt(is_rec, i, boolv),
            is_reflexive: opt(is_reflexive, i, boolv),
            num_motives: opt(num_motives, i, u32v),
            num_minors: opt(num_minors, i, u32v),
            num_rules: opt(num_rules, i, u32v),
            k: opt(k, i, boolv),
        };
        out.push(row);
    }
    Ok(())
}
