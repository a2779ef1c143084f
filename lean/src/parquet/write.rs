//! Rows into Arrow builders, builders into row groups: [`DeclParquetWriter`].

use std::io::Write;
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use arrow_array::builder::{
    BooleanBuilder, ListBuilder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use crate::decl::DeclRow;

use super::schema::*;
use super::{ParquetError, ParquetOptions, Result, WriteSummary};
// ---------------------------------------------------------------------------
// The writer.

pub(super) type StrList = ListBuilder<StringBuilder>;

pub(super) fn str_list() -> StrList {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(list_item()))
}

pub(super) fn append_list(b: &mut StrList, items: &[String]) {
    for s in items {
        b.values().append_value(s);
    }
    b.append(true);
}

/// The most text one row may hold (it then fills a row group alone), and
/// the largest [`ParquetOptions::row_group_text_bytes`]: a batch holds at
/// most twice this in one column, below the 2 GiB of Arrow's 32-bit string
/// offsets (over them its builders panic).
pub(super) const ROW_TEXT_BYTES: usize = 1 << 30;

/// Bytes of text `r` adds to the string columns.
pub(super) fn text_bytes(r: &DeclRow) -> usize {
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
pub(super) struct Builders {
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

/// Writes [`DeclRow`](crate::DeclRow)s to a Parquet file (see the [module docs](crate::parquet)).
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
pub(super) struct Counting<W> {
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
