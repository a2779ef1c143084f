//! Where `ringworker run` puts rows: NDJSON (each row's JSON on a line) or
//! Parquet (job, stream, sequence and the payload's bytes), to a file
//! written atomically or to stdout.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::builder::{BinaryBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::atomic::AtomicFile;
use crate::exit::{Class, ClassExt, Failure, Outcome};

/// The output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RowFormat {
    /// One row per line, the row's own JSON (rows must be JSON).
    Ndjson,
    /// Columns `job`, `stream`, `sequence`, `payload` (binary; any bytes).
    Parquet,
}

/// Rows per Parquet record batch.
const BATCH_ROWS: usize = 8192;

enum Target {
    File(AtomicFile),
    Stdout(std::io::BufWriter<std::io::Stdout>),
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Target::File(f) => f.write(buf),
            Target::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Target::File(f) => f.flush(),
            Target::Stdout(s) => s.flush(),
        }
    }
}

struct ParquetRows {
    writer: ArrowWriter<Target>,
    schema: SchemaRef,
    job: UInt64Builder,
    stream: UInt32Builder,
    sequence: UInt64Builder,
    payload: BinaryBuilder,
    buffered: usize,
}

enum Encoder {
    Ndjson(Target),
    Parquet(Box<ParquetRows>),
}

/// An output of rows.
pub struct RowSink {
    encoder: Encoder,
    rows: u64,
}

impl std::fmt::Debug for RowSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowSink")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl RowSink {
    /// Starts writing to `dest` (stdout when `None`).
    pub fn create(dest: Option<&Path>, format: RowFormat) -> anyhow::Result<RowSink> {
        let target = match dest {
            Some(path) => Target::File(
                AtomicFile::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            ),
            None => Target::Stdout(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )),
        };
        let encoder = match format {
            RowFormat::Ndjson => Encoder::Ndjson(target),
            RowFormat::Parquet => {
                let schema: SchemaRef = Arc::new(Schema::new(vec![
                    Field::new("job", DataType::UInt64, false),
                    Field::new("stream", DataType::UInt32, false),
                    Field::new("sequence", DataType::UInt64, false),
                    Field::new("payload", DataType::Binary, false),
                ]));
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                    .build();
                let writer = ArrowWriter::try_new(target, schema.clone(), Some(props))?;
                Encoder::Parquet(Box::new(ParquetRows {
                    writer,
                    schema,
                    job: UInt64Builder::new(),
                    stream: UInt32Builder::new(),
                    sequence: UInt64Builder::new(),
                    payload: BinaryBuilder::new(),
                    buffered: 0,
                }))
            }
        };
        Ok(RowSink { encoder, rows: 0 })
    }

    /// Appends one row of job `job`.
    pub fn write(&mut self, job: u64, stream: u16, sequence: u64, payload: &[u8]) -> Outcome {
        if let Encoder::Ndjson(_) = self.encoder
            && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_err()
        {
            return Err(Failure::new(
                Class::Usage,
                format!(
                    "row {sequence} of request {job} is not JSON ({} bytes): use --format parquet for binary rows",
                    payload.len()
                ),
            ));
        }
        self.encode(job, stream, sequence, payload)
            .class(Class::Output)
    }

    fn encode(
        &mut self,
        job: u64,
        stream: u16,
        sequence: u64,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        match &mut self.encoder {
            Encoder::Ndjson(out) => {
                // JSON text holds no raw newline outside strings, where it
                // cannot appear unescaped: one line per row.
                if payload.contains(&b'\n') {
                    let value: serde_json::Value = serde_json::from_slice(payload)?;
                    serde_json::to_writer(&mut *out, &value)?;
                } else {
                    out.write_all(payload)?;
                }
                out.write_all(b"\n")?;
            }
            Encoder::Parquet(p) => {
                p.job.append_value(job);
                p.stream.append_value(u32::from(stream));
                p.sequence.append_value(sequence);
                p.payload.append_value(payload);
                p.buffered += 1;
                if p.buffered >= BATCH_ROWS {
                    p.flush()?;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Finishes the output (a file is renamed into place).
    pub fn commit(self) -> anyhow::Result<()> {
        let target = match self.encoder {
            Encoder::Ndjson(t) => t,
            Encoder::Parquet(mut p) => {
                p.flush()?;
                p.writer.into_inner()?
            }
        };
        match target {
            Target::File(f) => f.commit()?,
            Target::Stdout(mut s) => s.flush()?,
        }
        Ok(())
    }
}

impl ParquetRows {
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.job.finish()),
            Arc::new(self.stream.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.payload.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch)?;
        self.buffered = 0;
        Ok(())
    }
}
