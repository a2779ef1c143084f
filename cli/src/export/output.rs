//! Where exported rows go: one file ([`RowFile`]: Parquet or NDJSON,
//! written atomically), or a directory of parts, one [`RowFile`] per part.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ringworker_lean::DeclRow;
use ringworker_lean::parquet::{DeclParquetWriter, ParquetOptions};

use crate::atomic::AtomicFile;

/// The file format of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Apache Parquet: typed columns, list columns, statistics, Zstd.
    Parquet,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// The file extension (and the manifest's name of the format).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
        }
    }

    /// The format a file name implies.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "parquet" | "pq" => Some(Format::Parquet),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

enum Encoder {
    Parquet(Box<DeclParquetWriter<AtomicFile>>),
    Ndjson(AtomicFile),
}

/// One output file of rows, under a temporary name until committed.
pub struct RowFile {
    encoder: Encoder,
    dest: PathBuf,
    rows: u64,
}

impl std::fmt::Debug for RowFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowFile")
            .field("dest", &self.dest)
            .field("rows", &self.rows)
            .finish()
    }
}

impl RowFile {
    /// Starts `dest` in `format`.
    pub fn create(
        dest: &Path,
        format: Format,
        options: &ParquetOptions,
    ) -> anyhow::Result<RowFile> {
        let file =
            AtomicFile::create(dest).with_context(|| format!("cannot write {}", dest.display()))?;
        let encoder = match format {
            Format::Parquet => Encoder::Parquet(Box::new(
                DeclParquetWriter::new(file, *options)
                    .with_context(|| format!("starting {}", dest.display()))?,
            )),
            Format::Ndjson => Encoder::Ndjson(file),
        };
        Ok(RowFile {
            encoder,
            dest: dest.to_owned(),
            rows: 0,
        })
    }

    /// Appends a row.
    pub fn write(&mut self, row: &DeclRow) -> anyhow::Result<()> {
        match &mut self.encoder {
            Encoder::Parquet(w) => w.write(row)?,
            Encoder::Ndjson(f) => {
                serde_json::to_writer(f.writer(), row)?;
                f.writer().write_all(b"\n")?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the file and renames it into place; returns its rows.
    pub fn commit(self) -> anyhow::Result<u64> {
        let file = match self.encoder {
            Encoder::Parquet(w) => w.finish_into_inner()?.1,
            Encoder::Ndjson(f) => f,
        };
        file.commit()
            .with_context(|| format!("writing {}", self.dest.display()))?;
        Ok(self.rows)
    }
}
