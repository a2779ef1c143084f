//! The Arrow schema of a declaration file and the column names of the
//! row's enums.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::decl::HintKind;
use crate::format::{QuotKind, Safety};

use super::{ParquetError, Result};
// ---------------------------------------------------------------------------
// The schema.

pub(super) fn list_item() -> Field {
    Field::new("item", DataType::Utf8, false)
}

pub(super) fn list_type() -> DataType {
    DataType::List(Arc::new(list_item()))
}

/// The Arrow schema of a declaration file: one column per [`DeclRow`](crate::DeclRow) field,
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

pub(super) fn safety_str(s: Safety) -> &'static str {
    match s {
        Safety::Safe => "safe",
        Safety::Unsafe => "unsafe",
        Safety::Partial => "partial",
    }
}

pub(super) fn hint_str(h: HintKind) -> &'static str {
    match h {
        HintKind::Opaque => "opaque",
        HintKind::Abbrev => "abbrev",
        HintKind::Regular => "regular",
    }
}

pub(super) fn quot_str(q: QuotKind) -> &'static str {
    match q {
        QuotKind::Type => "type",
        QuotKind::Ctor => "ctor",
        QuotKind::Lift => "lift",
        QuotKind::Ind => "ind",
    }
}

pub(super) fn parse_enum<T: Copy>(
    column: &str,
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| name(*v) == s)
        .ok_or_else(|| ParquetError::schema(column, format!("unknown value {s:?}")))
}

pub(super) const SAFETIES: [Safety; 3] = [Safety::Safe, Safety::Unsafe, Safety::Partial];
pub(super) const HINTS: [HintKind; 3] = [HintKind::Opaque, HintKind::Abbrev, HintKind::Regular];
pub(super) const QUOTS: [QuotKind; 4] = [
    QuotKind::Type,
    QuotKind::Ctor,
    QuotKind::Lift,
    QuotKind::Ind,
];
