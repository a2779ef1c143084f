//! The reader on the real lean4export file in `shared/data` (format 3.0.0,
//! Lean 4.27.0-rc1, `Nat.add_succ` and its dependencies).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;

use ringworker_lean::{DeclKind, DeclRow, ExportReader, FormatVersion, HintKind, Safety};

/// A copy of `shared/data`'s real export, in the crate so a clone anywhere tests it.
const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lean4export-Nat.add_succ.ndjson"
);

fn read_all() -> (Vec<DeclRow>, ringworker_lean::ReaderStats, FormatVersion) {
    let file = File::open(REAL).unwrap_or_else(|e| panic!("{REAL}: {e}"));
    let mut reader = ExportReader::new(BufReader::new(file)).unwrap();
    let mut rows = Vec::new();
    while let Some(row) = reader.next_decl().unwrap() {
        rows.push(row);
    }
    (rows, reader.stats(), reader.version())
}

fn row<'a>(rows: &'a [DeclRow], name: &str) -> &'a DeclRow {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn counts_and_meta() {
    let (rows, stats, version) = read_all();
    assert_eq!(version, FormatVersion::V3_0);
    // The README's "19 declarations" are the 19 declaration records (six
    // inductive blocks, twelve `def` arrays of one, one `thm` array); they
    // hold 32 constants.
    assert_eq!(stats.records, 19);
    assert_eq!(stats.rows, 32);
    assert_eq!(rows.len(), 32);
    assert_eq!(stats.lines, 572);
    // 103 names + the anonymous one, 15 levels + zero, 434 expressions.
    assert_eq!((stats.names, stats.levels, stats.exprs), (104, 16, 434));
    let file = File::open(REAL).unwrap();
    let reader = ExportReader::new(BufReader::new(file)).unwrap();
    let meta = reader.meta();
    assert_eq!(meta.format.version, "3.0.0");
    assert_eq!(meta.lean.as_ref().unwrap().version, "4.27.0-rc1");
    assert_eq!(meta.exporter.as_ref().unwrap().name, "lean4export");
}

#[test]
fn every_kind() {
    let (rows, _, _) = read_all();
    let kinds: BTreeMap<&str, DeclKind> = rows.iter().map(|r| (r.name.as_str(), r.kind)).collect();
    let expected: BTreeMap<&str, DeclKind> = [
        ("Nat", DeclKind::Inductive),
        ("Nat.zero", DeclKind::Ctor),
        ("Nat.succ", DeclKind::Ctor),
        ("Nat.rec", DeclKind::Rec),
        ("Eq", DeclKind::Inductive),
        ("Eq.refl", DeclKind::Ctor),
        ("Eq.rec", DeclKind::Rec),
        ("outParam", DeclKind::Def),
        ("HAdd", DeclKind::Inductive),
        ("HAdd.mk", DeclKind::Ctor),
        ("HAdd.rec", DeclKind::Rec),
        ("HAdd.hAdd", DeclKind::Def),
        ("Add", DeclKind::Inductive),
        ("Add.mk", DeclKind::Ctor),
        ("Add.rec", DeclKind::Rec),
        ("Add.add", DeclKind::Def),
        ("instHAdd", DeclKind::Def),
        ("PUnit", DeclKind::Inductive),
        ("PUnit.unit", DeclKind::Ctor),
        ("PUnit.rec", DeclKind::Rec),
        ("PProd", DeclKind::Inductive),
        ("PProd.mk", DeclKind::Ctor),
        ("PProd.rec", DeclKind::Rec),
        ("Nat.below", DeclKind::Def),
        ("Nat.brecOn.go", DeclKind::Def),
        ("Nat.brecOn", DeclKind::Def),
        ("Nat.casesOn", DeclKind::Def),
        ("Nat.add.match_1", DeclKind::Def),
        ("Nat.add", DeclKind::Def),
        ("instAddNat", DeclKind::Def),
        ("rfl", DeclKind::Def),
        ("Nat.add_succ", DeclKind::Thm),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, expected);
    // This export has no quotient package (Lean exports it only when a
    // dependency uses `Quot`); the 3.1 sample covers `quot` records.
    assert!(rows.iter().all(|r| r.kind != DeclKind::Quot));
    assert!(!rows.iter().any(|r| r.name.starts_with("Quot")));
    // Order of the file: every row's record number never decreases.
    assert!(rows.windows(2).all(|w| w[0].record <= w[1].record));
}

#[test]
fn add_succ_is_a_theorem_about_succ() {
    let (rows, _, _) = read_all();
    let t = row(&rows, "Nat.add_succ");
    assert_eq!(t.kind, DeclKind::Thm);
    assert_eq!(t.namespace.as_deref(), Some("Nat"));
    assert_eq!(t.name_depth, 2);
    assert!(t.level_params.is_empty());
    assert_eq!(t.line, 572);
    assert_eq!(t.record, 18);
    assert!(t.value_consts.iter().any(|c| c == "Nat.succ"));
    assert_eq!(
        t.value_consts,
        [
            "HAdd.hAdd",
            "Nat",
            "Nat.succ",
            "instAddNat",
            "instHAdd",
            "rfl"
        ]
    );
    assert_eq!(
        t.type_consts,
        [
            "Eq",
            "HAdd.hAdd",
            "Nat",
            "Nat.succ",
            "instAddNat",
            "instHAdd"
        ]
    );
    assert_eq!(t.value_const_count, 6);
    assert_eq!(t.type_const_count, 6);
    // n + succ m = succ (n + m): the tree repeats `n + ·`'s instance terms.
    assert_eq!((t.type_dag_size, t.type_tree_size), (24, 47));
    assert_eq!((t.value_dag_size, t.value_tree_size), (Some(21), Some(27)));
    assert_eq!(t.safety, None);
    assert_eq!(t.all, ["Nat.add_succ"]);
}

#[test]
fn nat_is_an_inductive_with_zero_and_succ() {
    let (rows, _, _) = read_all();
    let nat = row(&rows, "Nat");
    assert_eq!(nat.kind, DeclKind::Inductive);
    assert_eq!(nat.namespace, None);
    assert_eq!(nat.ctors, ["Nat.zero", "Nat.succ"]);
    assert_eq!(nat.recs, ["Nat.rec"]);
    assert_eq!(
        (nat.num_params, nat.num_indices, nat.is_rec),
        (Some(0), Some(0), Some(true))
    );
    assert_eq!((nat.type_dag_size, nat.type_tree_size), (1, 1));
    assert_eq!(nat.value_dag_size, None);
    let succ = row(&rows, "Nat.succ");
    assert_eq!(succ.kind, DeclKind::Ctor);
    assert_eq!(succ.induct.as_deref(), Some("Nat"));
    assert_eq!((succ.cidx, succ.num_fields), (Some(1), Some(1)));
    // Nat -> Nat: the `Nat` node is shared.
    assert_eq!((succ.type_dag_size, succ.type_tree_size), (2, 3));
    let rec = row(&rows, "Nat.rec");
    assert_eq!(rec.kind, DeclKind::Rec);
    assert_eq!(rec.level_params, ["u"]);
    assert_eq!(
        (rec.num_motives, rec.num_minors, rec.num_rules, rec.k),
        (Some(1), Some(2), Some(2), Some(false))
    );
    assert!(rec.value_consts.iter().any(|c| c == "Nat.succ"));
    let eq_rec = row(&rows, "Eq.rec");
    assert_eq!(eq_rec.k, Some(true));
    assert_eq!(row(&rows, "Eq").num_indices, Some(1));
}

#[test]
fn definitions_carry_hints_and_safety() {
    let (rows, _, _) = read_all();
    let add = row(&rows, "Nat.add");
    assert_eq!(add.kind, DeclKind::Def);
    assert_eq!(
        (add.hints, add.hints_height, add.safety),
        (Some(HintKind::Regular), Some(1), Some(Safety::Safe))
    );
    assert!(add.value_consts.iter().any(|c| c == "Nat.brecOn"));
    let inst = row(&rows, "instAddNat");
    assert_eq!(
        (inst.hints, inst.hints_height),
        (Some(HintKind::Regular), Some(2))
    );
    let go = row(&rows, "Nat.brecOn.go");
    assert_eq!((go.hints, go.hints_height), (Some(HintKind::Abbrev), None));
    assert_eq!(go.namespace.as_deref(), Some("Nat.brecOn"));
    assert_eq!(go.name_depth, 3);
    for r in &rows {
        assert!(r.type_dag_size <= r.type_tree_size, "{}", r.name);
        assert!(r.value_dag_size <= r.value_tree_size, "{}", r.name);
        assert_eq!(r.type_const_count as usize, r.type_consts.len());
        assert_eq!(r.value_const_count as usize, r.value_consts.len());
        assert!(!r.is_unsafe);
    }
}

#[test]
fn rows_round_trip_through_serde() {
    let (rows, _, _) = read_all();
    for r in &rows {
        let json = serde_json::to_string(r).unwrap();
        let back: DeclRow = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, r);
    }
    let json = serde_json::to_value(row(&rows, "Nat.add")).unwrap();
    assert_eq!(json["kind"], "def");
    assert_eq!(json["hints"], "regular");
    assert_eq!(json["safety"], "safe");
}
