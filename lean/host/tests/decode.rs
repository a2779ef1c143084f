//! `decode_decl_row`: every `DeclRow` field survives serde_json and the
//! decoder; malformed bytes give a typed error, never a panic.

use proptest::prelude::*;
use ringworker_lean::{DeclKind, DeclRow, HintKind, QuotKind, Safety};
use ringworker_lean_host::{RowError, RowErrorKind, decode_decl_row};

fn name() -> impl Strategy<Value = String> {
    // Lean names: dotted, with unicode and escapes' characters.
    prop::string::string_regex("[A-Za-zα-ω_'!?0-9.«» \"\\\\]{0,24}").unwrap()
}

fn names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(name(), 0..5)
}

/// The `Option` fields of `DeclRow`.
const OPTIONAL: [&str; 19] = [
    "namespace",
    "safety",
    "hints",
    "hints_height",
    "quot_kind",
    "value_dag_size",
    "value_tree_size",
    "induct",
    "cidx",
    "num_params",
    "num_indices",
    "num_fields",
    "num_nested",
    "is_rec",
    "is_reflexive",
    "num_motives",
    "num_minors",
    "num_rules",
    "k",
];

fn kind() -> impl Strategy<Value = DeclKind> {
    prop::sample::select(DeclKind::ALL.to_vec())
}

prop_compose! {
    fn decl_row()(
        head in (name(), kind(), prop::option::of(name()), any::<u32>(), names()),
        place in (any::<u64>(), any::<u64>(), any::<bool>()),
        def in (
            prop::option::of(prop::sample::select(vec![Safety::Safe, Safety::Unsafe, Safety::Partial])),
            prop::option::of(prop::sample::select(vec![HintKind::Opaque, HintKind::Abbrev, HintKind::Regular])),
            prop::option::of(any::<u32>()),
            prop::option::of(prop::sample::select(vec![QuotKind::Type, QuotKind::Ctor, QuotKind::Lift, QuotKind::Ind])),
            names(),
        ),
        consts in (names(), names()),
        sizes in (any::<u64>(), any::<u64>(), prop::option::of(any::<u64>()), prop::option::of(any::<u64>())),
        inductive in (names(), names(), prop::option::of(name()), prop::option::of(any::<u32>())),
        counts in prop::array::uniform6(prop::option::of(any::<u32>())),
        flags in (prop::option::of(any::<bool>()), prop::option::of(any::<bool>()), prop::option::of(any::<bool>()), prop::option::of(any::<u32>())),
    ) -> DeclRow {
        let (name, kind, namespace, name_depth, level_params) = head;
        let (line, record, is_unsafe) = place;
        let (safety, hints, hints_height, quot_kind, all) = def;
        let (type_consts, value_consts) = consts;
        let (type_dag_size, type_tree_size, value_dag_size, value_tree_size) = sizes;
        let (ctors, recs, induct, cidx) = inductive;
        let [num_params, num_indices, num_fields, num_nested, num_motives, num_minors] = counts;
        let (is_rec, is_reflexive, k, num_rules) = flags;
        DeclRow {
            name,
            kind,
            namespace,
            name_depth,
            level_params,
            line,
            record,
            is_unsafe,
            safety,
            hints,
            hints_height,
            quot_kind,
            all,
            type_const_count: type_consts.len() as u32,
            type_consts,
            value_const_count: value_consts.len() as u32,
            value_consts,
            type_dag_size,
            type_tree_size,
            value_dag_size,
            value_tree_size,
            ctors,
            recs,
            induct,
            cidx,
            num_params,
            num_indices,
            num_fields,
            num_nested,
            is_rec,
            is_reflexive,
            num_motives,
            num_minors,
            num_rules,
            k,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_field_round_trips(row in decl_row()) {
        let bytes = serde_json::to_vec(&row).unwrap();
        prop_assert_eq!(decode_decl_row(&bytes).unwrap(), row.clone());
        // Pretty-printed JSON is the same row.
        let pretty = serde_json::to_vec_pretty(&row).unwrap();
        prop_assert_eq!(decode_decl_row(&pretty).unwrap(), row);
    }

    #[test]
    fn a_truncated_row_is_a_syntax_error(row in decl_row(), cut in any::<prop::sample::Index>()) {
        let bytes = serde_json::to_vec(&row).unwrap();
        // Cut at a character boundary so the error is about the JSON.
        let text = std::str::from_utf8(&bytes).unwrap();
        let mut at = cut.index(bytes.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let err = decode_decl_row(&bytes[..at]).unwrap_err();
        prop_assert_eq!(err.kind(), RowErrorKind::Syntax, "{}", err);
    }

    #[test]
    fn a_missing_field_is_a_shape_error(row in decl_row(), which in any::<prop::sample::Index>()) {
        let mut value = serde_json::to_value(&row).unwrap();
        let object = value.as_object_mut().unwrap();
        let fields: Vec<String> = object.keys().cloned().collect();
        let field = fields[which.index(fields.len())].clone();
        // Option fields may be absent: serde reads them as None.
        let optional = OPTIONAL.contains(&field.as_str());
        let mut as_null = object.clone();
        as_null.insert(field.clone(), serde_json::Value::Null);
        object.remove(&field);
        let result = decode_decl_row(&serde_json::to_vec(&value).unwrap());
        if optional {
            let expected = decode_decl_row(&serde_json::to_vec(&as_null).unwrap()).unwrap();
            prop_assert_eq!(result.unwrap(), expected);
        } else {
            let err = result.unwrap_err();
            prop_assert_eq!(err.kind(), RowErrorKind::Shape, "{}: {}", field, err);
            prop_assert!(err.to_string().contains(&field), "{}", err);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Either a row (all checks passed) or a typed error.
        match decode_decl_row(&bytes) {
            Ok(row) => prop_assert_eq!(row.type_const_count as usize, row.type_consts.len()),
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn invalid_utf8_is_an_encoding_error(row in decl_row(), at in any::<prop::sample::Index>()) {
        let mut bytes = serde_json::to_vec(&row).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let mut at = at.index(bytes.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        bytes.insert(at, 0xff);
        prop_assert_eq!(
            decode_decl_row(&bytes).unwrap_err(),
            RowError::NotUtf8 { valid_up_to: at }
        );
    }
}

fn sample() -> DeclRow {
    let text = include_str!("../../tests/data/lean4export-Nat.add_succ.ndjson");
    ringworker_lean::ExportReader::new(text.as_bytes())
        .unwrap()
        .map(Result::unwrap)
        .find(|row| row.name == "Nat.add_succ")
        .expect("the sample export declares Nat.add_succ")
}

#[test]
fn a_real_row_round_trips() {
    let row = sample();
    assert_eq!(row.kind, DeclKind::Thm);
    let bytes = serde_json::to_vec(&row).unwrap();
    assert_eq!(decode_decl_row(&bytes).unwrap(), row);
}

#[test]
fn malformed_rows_give_typed_errors() {
    let row = sample();
    let mut value = serde_json::to_value(&row).unwrap();
    let cases: Vec<(Vec<u8>, RowErrorKind)> = vec![
        (Vec::new(), RowErrorKind::Syntax),
        (b"[]".to_vec(), RowErrorKind::Shape),
        (b"{\"name\":".to_vec(), RowErrorKind::Syntax),
        (
            [serde_json::to_vec(&row).unwrap(), b"{}".to_vec()].concat(),
            RowErrorKind::Syntax,
        ),
        (vec![b'"', 0xc3, b'"'], RowErrorKind::Encoding),
    ];
    for (bytes, kind) in cases {
        let err = decode_decl_row(&bytes).unwrap_err();
        assert_eq!(
            err.kind(),
            kind,
            "{:?}: {err}",
            String::from_utf8_lossy(&bytes)
        );
    }
    value["kind"] = "lemma".into();
    let err = decode_decl_row(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert_eq!(err.kind(), RowErrorKind::Shape, "{err}");
    value["kind"] = "thm".into();
    value["type_dag_size"] = (-1).into();
    let err = decode_decl_row(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert_eq!(err.kind(), RowErrorKind::Shape, "{err}");
    value["type_dag_size"] = row.type_dag_size.into();
    value["type_const_count"] = (row.type_consts.len() + 1).into();
    let err = decode_decl_row(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert_eq!(
        err,
        RowError::Inconsistent {
            field: "type_const_count",
            found: row.type_consts.len() as u64 + 1,
            expected: row.type_consts.len() as u64,
        }
    );
    // Unknown fields are ignored (a newer writer's row still decodes).
    value["type_const_count"] = row.type_consts.len().into();
    value["added_later"] = true.into();
    assert_eq!(
        decode_decl_row(&serde_json::to_vec(&value).unwrap()).unwrap(),
        row
    );
}
