//! Reading a declaration file back into [`DeclRow`](crate::DeclRow)s.

use std::fs::File;
use std::path::Path;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::file::reader::ChunkReader;
use arrow_array::{
    Array, BooleanArray, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::Schema;

use crate::decl::{DeclKind, DeclRow};

use super::schema::*;
use super::{ParquetError, Result};
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

pub(super) fn check_schema(expected: &Schema, found: &Schema) -> Result<()> {
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

pub(super) fn col<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| ParquetError::schema(name, "missing or of another type"))
}

/// The columns of one batch, downcast.
pub(super) struct Columns<'a> {
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

pub(super) struct Strs<'a>(&'a StringArray);

impl Strs<'_> {
    fn get(&self, i: usize) -> Option<String> {
        self.0.is_valid(i).then(|| self.0.value(i).to_owned())
    }
}

pub(super) struct Lists<'a> {
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

pub(super) fn opt<T, A>(a: &A, i: usize, value: impl Fn(&A, usize) -> T) -> Option<T>
where
    A: Array,
{
    a.is_valid(i).then(|| value(a, i))
}

pub(super) fn required<T>(column: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| ParquetError::schema(column, "null in a required column"))
}

pub(super) fn decode(batch: &RecordBatch, out: &mut Vec<DeclRow>) -> Result<()> {
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
