//! The reader on a small format 3.1 export written by hand from
//! lean4export's `format_ndjson.md` (3.1.0): `axiom`, `def` (every hint and
//! safety), `opaque`, `thm`, the four `quot` records, an `inductive` block
//! with `types` / `ctors` / `recs`, and every expression and level form.

use std::fs::File;
use std::io::BufReader;

use ringworker_lean::{
    DeclKind, DeclRow, ExportReader, FormatVersion, HintKind, QuotKind, Safety, for_each_decl,
};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample-3.1.ndjson");

fn rows() -> Vec<DeclRow> {
    let mut reader = ExportReader::new(BufReader::new(File::open(SAMPLE).unwrap())).unwrap();
    assert_eq!(reader.version(), FormatVersion::V3_1);
    assert_eq!(reader.meta().lean.as_ref().unwrap().version, "4.28.0");
    let rows: Vec<DeclRow> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    let stats = reader.stats();
    assert_eq!((stats.lines, stats.records, stats.rows), (72, 12, 15));
    assert_eq!((stats.names, stats.levels, stats.exprs), (24, 6, 31));
    rows
}

fn row<'a>(rows: &'a [DeclRow], name: &str) -> &'a DeclRow {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn every_constant_and_kind() {
    let rows = rows();
    let got: Vec<(&str, DeclKind)> = rows.iter().map(|r| (r.name.as_str(), r.kind)).collect();
    assert_eq!(
        got,
        [
            ("Quot", DeclKind::Quot),
            ("Quot.mk", DeclKind::Quot),
            ("Quot.lift", DeclKind::Quot),
            ("Quot.ind", DeclKind::Quot),
            ("Bool", DeclKind::Inductive),
            ("Bool.false", DeclKind::Ctor),
            ("Bool.true", DeclKind::Ctor),
            ("Bool.rec", DeclKind::Rec),
            ("Demo.const", DeclKind::Def),
            ("Demo.hello", DeclKind::Def),
            ("Demo.secret", DeclKind::Opaque),
            ("Demo.choice", DeclKind::Axiom),
            ("Demo.choice_eq", DeclKind::Thm),
            ("Demo._private.42", DeclKind::Def),
            ("Demo.unsafeCast", DeclKind::Def),
        ]
    );
}

#[test]
fn quotient_package() {
    let rows = rows();
    let quot: Vec<(&str, Option<QuotKind>)> = rows
        .iter()
        .filter(|r| r.kind == DeclKind::Quot)
        .map(|r| (r.name.as_str(), r.quot_kind))
        .collect();
    assert_eq!(
        quot,
        [
            ("Quot", Some(QuotKind::Type)),
            ("Quot.mk", Some(QuotKind::Ctor)),
            ("Quot.lift", Some(QuotKind::Lift)),
            ("Quot.ind", Some(QuotKind::Ind)),
        ]
    );
    let mk = row(&rows, "Quot.mk");
    assert_eq!(mk.level_params, ["u"]);
    assert_eq!(mk.type_consts, ["Quot"]);
    assert_eq!(mk.namespace.as_deref(), Some("Quot"));
    assert_eq!(mk.value_dag_size, None);
}

#[test]
fn inductive_block_with_31_field_names() {
    let rows = rows();
    let b = row(&rows, "Bool");
    assert_eq!(b.ctors, ["Bool.false", "Bool.true"]);
    assert_eq!(b.recs, ["Bool.rec"]);
    assert_eq!(b.all, ["Bool"]);
    assert_eq!(
        (b.num_params, b.num_indices, b.is_rec, b.is_reflexive),
        (Some(0), Some(0), Some(false), Some(false))
    );
    let t = row(&rows, "Bool.true");
    assert_eq!(
        (t.induct.as_deref(), t.cidx, t.num_fields),
        (Some("Bool"), Some(1), Some(0))
    );
    let rec = row(&rows, "Bool.rec");
    assert_eq!(
        (rec.num_motives, rec.num_minors, rec.num_rules),
        (Some(1), Some(2), Some(2))
    );
    // (motive : Bool -> Prop) -> (t : Bool) -> motive t
    assert_eq!((rec.type_dag_size, rec.type_tree_size), (8, 9));
    // Both rules share one right-hand side: once in the DAG, twice as trees.
    assert_eq!(
        (rec.value_dag_size, rec.value_tree_size),
        (Some(5), Some(10))
    );
    assert_eq!(rec.value_consts, ["Bool"]);
    assert!(
        rows.iter()
            .filter(|r| r.line == b.line)
            .all(|r| r.record == b.record)
    );
}

#[test]
fn definitions_opaque_axiom_theorem() {
    let rows = rows();
    let c = row(&rows, "Demo.const");
    assert_eq!(
        (c.hints, c.hints_height, c.safety),
        (Some(HintKind::Regular), Some(3), Some(Safety::Safe))
    );
    // fun x : Bool => (mdata) let y : Bool := x; y
    assert_eq!((c.value_dag_size, c.value_tree_size), (Some(5), Some(7)));
    assert_eq!(c.value_consts, ["Bool"]);
    let h = row(&rows, "Demo.hello");
    assert_eq!(
        (h.hints, h.type_consts.as_slice()),
        (Some(HintKind::Abbrev), &["String".to_string()][..])
    );
    assert_eq!(h.value_dag_size, Some(1));
    let s = row(&rows, "Demo.secret");
    assert_eq!(
        (s.kind, s.is_unsafe, s.safety, s.hints),
        (DeclKind::Opaque, false, None, None)
    );
    assert_eq!(s.value_dag_size, Some(1));
    let a = row(&rows, "Demo.choice");
    assert_eq!(
        (a.kind, a.type_consts.as_slice(), a.value_dag_size),
        (DeclKind::Axiom, &["Bool".to_string()][..], None)
    );
    let t = row(&rows, "Demo.choice_eq");
    assert_eq!(t.type_consts, ["Bool", "Demo.choice"]);
    // `proj`'s structure name (Prod) is not a referenced constant.
    assert_eq!(t.value_consts, ["Bool", "Demo.const"]);
    assert_eq!(
        (
            t.type_dag_size,
            t.type_tree_size,
            t.value_dag_size,
            t.value_tree_size
        ),
        (5, 5, Some(6), Some(6))
    );
    let p = row(&rows, "Demo._private.42");
    assert_eq!(
        (p.namespace.as_deref(), p.name_depth, p.safety),
        (Some("Demo._private"), 3, Some(Safety::Partial))
    );
    let u = row(&rows, "Demo.unsafeCast");
    assert_eq!(
        (u.is_unsafe, u.safety, u.hints),
        (true, Some(Safety::Unsafe), Some(HintKind::Opaque))
    );
    assert_eq!(u.level_params, ["u"]);
}

#[test]
fn callback_api() {
    let mut names = Vec::new();
    let stats = for_each_decl(BufReader::new(File::open(SAMPLE).unwrap()), |r| {
        names.push(r.name);
        Ok::<(), ringworker_lean::ReadError>(())
    })
    .unwrap();
    assert_eq!(stats.rows, 15);
    assert_eq!(names.len(), 15);
}
