//! The Parquet writer: real, hand-written and synthetic exports through the
//! reader into a file in a temp dir, read back with the `parquet` crate.
#![cfg(feature = "parquet")]

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::statistics::Statistics;
use ringworker_lean::parquet::{
    DeclParquetWriter, ParquetError, ParquetErrorKind, ParquetOptions, WriteSummary, decl_schema,
    read_decls, read_decls_from,
};
use ringworker_lean::{
    DeclKind, DeclRow, ExportReader, SyntheticConfig, for_each_decl, write_export,
};

/// A copy of `shared/data`'s real export, in the crate so a clone anywhere tests it
/// (as in `real_export.rs`).
const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lean4export-Nat.add_succ.ndjson"
);
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample-3.1.ndjson");

fn read_export(path: &str) -> Vec<DeclRow> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    ExportReader::new(BufReader::new(file))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn write_rows(rows: &[DeclRow], path: &Path, options: ParquetOptions) -> WriteSummary {
    let mut w = DeclParquetWriter::new(File::create(path).unwrap(), options).unwrap();
    for r in rows {
        w.write(r).unwrap();
    }
    w.finish().unwrap()
}

fn row<'a>(rows: &'a [DeclRow], name: &str) -> &'a DeclRow {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn real_export_round_trips() {
    let rows = read_export(REAL);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decls.parquet");
    let sum = write_rows(&rows, &path, ParquetOptions::default());
    assert_eq!((sum.rows, sum.row_groups), (32, 1));
    assert_eq!(sum.bytes, std::fs::metadata(&path).unwrap().len());

    let back = read_decls(&path).unwrap();
    assert_eq!(back, rows);
    let add_succ = row(&back, "Nat.add_succ");
    assert_eq!(add_succ.kind, DeclKind::Thm);
    assert!(add_succ.value_consts.iter().any(|c| c == "Nat.succ"));
    let nat = row(&back, "Nat");
    assert_eq!(nat.kind, DeclKind::Inductive);
    assert_eq!(nat.ctors, ["Nat.zero", "Nat.succ"]);
}

#[test]
fn sample_31_round_trips_in_memory_and_on_disk() {
    let rows = read_export(SAMPLE);
    assert_eq!(rows.len(), 15);
    // Small row groups: several groups and a partial last one.
    let options = ParquetOptions {
        row_group_rows: 4,
        ..ParquetOptions::default()
    };
    let mut w = DeclParquetWriter::new(Vec::new(), options).unwrap();
    for r in &rows {
        w.write(r).unwrap();
    }
    assert_eq!(w.rows(), 15);
    let (sum, bytes) = w.finish_into_inner().unwrap();
    assert_eq!((sum.rows, sum.row_groups), (15, 4));
    assert_eq!(sum.bytes, bytes.len() as u64);
    assert_eq!(read_decls_from(bytes).unwrap(), rows);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.parquet");
    write_rows(&rows, &path, ParquetOptions::default());
    assert_eq!(read_decls(&path).unwrap(), rows);
}

#[test]
fn synthetic_200k_in_four_row_groups() {
    let cfg = SyntheticConfig::new(11, 200_000);
    let mut export = Vec::new();
    let written = write_export(&cfg, &mut export).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.parquet");
    let options = ParquetOptions {
        row_group_rows: 50_000,
        ..ParquetOptions::default()
    };
    let mut w = DeclParquetWriter::new(File::create(&path).unwrap(), options).unwrap();
    // The writer's error absorbs the reader's: `for_each_decl` feeds it.
    for_each_decl(export.as_slice(), |r| w.write(&r)).unwrap();
    let sum = w.finish().unwrap();
    assert_eq!((sum.rows, sum.row_groups), (200_000, 4));

    let back = read_decls(&path).unwrap();
    assert_eq!(back.len(), 200_000);
    let mut per_kind = [0u64; 8];
    for r in &back {
        per_kind[DeclKind::ALL.iter().position(|k| *k == r.kind).unwrap()] += 1;
    }
    assert_eq!(per_kind, written.per_kind);

    // The footer: four groups of 50 000 rows, Zstd everywhere, statistics
    // on the numeric columns.
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let meta = builder.metadata();
    assert_eq!(meta.num_row_groups(), 4);
    assert_eq!(meta.file_metadata().num_rows(), 200_000);
    for rg in meta.row_groups() {
        assert_eq!(rg.num_rows(), 50_000);
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), Compression::ZSTD(_)),
                "{}",
                c.column_path()
            );
        }
        let line = rg
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "line")
            .unwrap();
        match line.statistics() {
            Some(Statistics::Int64(s)) => {
                let (min, max) = (*s.min_opt().unwrap(), *s.max_opt().unwrap());
                assert!(0 < min && min < max, "{min}..{max}");
                assert_eq!(s.null_count_opt(), Some(0));
            }
            other => panic!("statistics of `line`: {other:?}"),
        }
    }
}

#[test]
fn schema_has_the_expected_column_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.parquet");
    write_rows(&read_export(SAMPLE), &path, ParquetOptions::default());
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let schema = builder.schema();
    assert_eq!(schema.fields(), decl_schema().fields());
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    let nullable = |n: &str| schema.field_with_name(n).unwrap().is_nullable();
    assert_eq!(ty("name"), DataType::Utf8);
    assert_eq!(ty("kind"), DataType::Utf8);
    assert_eq!(ty("name_depth"), DataType::UInt32);
    assert_eq!(ty("line"), DataType::UInt64);
    assert_eq!(ty("type_dag_size"), DataType::UInt64);
    assert_eq!(ty("is_unsafe"), DataType::Boolean);
    assert_eq!(ty("k"), DataType::Boolean);
    for list in [
        "level_params",
        "all",
        "type_consts",
        "value_consts",
        "ctors",
        "recs",
    ] {
        match ty(list) {
            DataType::List(item) => assert_eq!(item.data_type(), &DataType::Utf8),
            other => panic!("{list}: {other}"),
        }
        assert!(!nullable(list));
    }
    assert!(!nullable("name") && !nullable("kind") && !nullable("line"));
    assert!(nullable("namespace") && nullable("safety") && nullable("value_dag_size"));
    assert!(nullable("cidx") && nullable("is_rec") && nullable("quot_kind"));
    assert_eq!(schema.fields().len(), 35);
}

#[test]
fn errors_are_classified() {
    let e = DeclParquetWriter::new(
        Vec::new(),
        ParquetOptions {
            row_group_rows: 0,
            ..ParquetOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ParquetErrorKind::InvalidOptions);
    let e = DeclParquetWriter::new(
        Vec::new(),
        ParquetOptions {
            zstd_level: 99,
            ..ParquetOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ParquetErrorKind::InvalidOptions);
    let e = read_decls("/nonexistent/decls.parquet").unwrap_err();
    assert_eq!(e.kind(), ParquetErrorKind::Open);
    let e = read_decls_from(b"not parquet".to_vec()).unwrap_err();
    assert_eq!(e.kind(), ParquetErrorKind::Parquet);
    // A reader error passes through `for_each_decl` into the writer's type.
    let mut w = DeclParquetWriter::new(Vec::new(), ParquetOptions::default()).unwrap();
    let e: ParquetError = for_each_decl(&b"{}\n"[..], |r| w.write(&r)).unwrap_err();
    assert_eq!(e.kind(), ParquetErrorKind::Export);
}

/// A row group is written early once its rows hold `row_group_text_bytes`
/// of text, whatever `row_group_rows` says, and every row still reads back.
#[test]
fn row_groups_are_bounded_in_text_bytes() {
    let rows = ExportReader::new(BufReader::new(File::open(SAMPLE).unwrap()))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    let mut big = rows[0].clone();
    big.type_consts = vec!["x".repeat(100_000); 3];
    let options = ParquetOptions {
        row_group_rows: 1_000,
        row_group_text_bytes: 1 << 20,
        ..ParquetOptions::default()
    };
    let mut w = DeclParquetWriter::new(Vec::new(), options).unwrap();
    for _ in 0..10 {
        w.write(&big).unwrap();
    }
    let (summary, bytes) = w.finish_into_inner().unwrap();
    // 300 KB a row: three rows to a 1 MB group.
    assert_eq!(summary.rows, 10);
    assert_eq!(summary.row_groups, 4);
    let back = read_decls_from(bytes).unwrap();
    assert_eq!(back.len(), 10);
    assert!(back.iter().all(|r| *r == big));
    let e = DeclParquetWriter::new(
        Vec::new(),
        ParquetOptions {
            row_group_text_bytes: 0,
            ..ParquetOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ParquetErrorKind::InvalidOptions);
}
