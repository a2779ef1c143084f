//! Every error class, with the line number it reports.

use ringworker_lean::{DeclRow, ErrorKind, ExportReader, ReadError, Table};

const META30: &str = r#"{"meta":{"exporter":{"name":"lean4export","version":"3.0.0"},"format":{"version":"3.0.0"}}}"#;
const META31: &str = r#"{"meta":{"format":{"version":"3.1.0"}}}"#;

/// Reads `lines` to the end; the first error.
fn first_error(lines: &[&str]) -> ReadError {
    let text = lines.join("\n");
    match ExportReader::new(text.as_bytes()) {
        Err(e) => e,
        Ok(reader) => {
            let mut reader = reader;
            loop {
                match reader.next_decl() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("no error in {lines:?}"),
                    Err(e) => {
                        // After an error the reader is done.
                        assert!(reader.next_decl().unwrap().is_none());
                        assert!(reader.next().is_none());
                        return e;
                    }
                }
            }
        }
    }
}

fn read_ok(lines: &[&str]) -> Vec<DeclRow> {
    let text = lines.join("\n");
    ExportReader::new(text.as_bytes())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn malformed_json_line() {
    let e = first_error(&[
        META31,
        r#"{"in":1,"str":{"pre":0,"str":"A"}}"#,
        r#"{"in":2,"str":"#,
    ]);
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert_eq!(e.line(), 3);
    assert!(e.to_string().starts_with("line 3: malformed record"), "{e}");
}

#[test]
fn malformed_records() {
    let cases: &[(&[&str], &str)] = &[
        (&[META31, "[1,2]"], "not a valid record object"),
        (
            &[META31, r#"{"in":1}"#],
            "name record without any of str, num",
        ),
        (
            &[META31, r#"{"in":1,"str":{"pre":0}}"#],
            "missing field `str`",
        ),
        (
            &[
                META31,
                r#"{"in":1,"str":{"pre":0,"str":"A"},"num":{"pre":0,"i":1}}"#,
            ],
            "both `str` and `num`",
        ),
        (&[META31, r#"{"ie":0,"sort":"zero"}"#], "`sort`"),
        (
            &[META31, r#"{"ie":0,"natVal":"-1"}"#],
            "not a decimal natural number",
        ),
        (&[META31, r#"{"in":1,"il":1,"succ":0}"#], "more than one of"),
        (&[META31, r#"{"frobnicate":1}"#], "no known record key"),
        (&[META31, META31], "a second `meta` record"),
        (
            &[META31, "{\"in\":1,\"str\":{\"pre\":0,\"str\":\"\\ud800\"}}"],
            "`str`",
        ),
        // A record of the other version.
        (
            &[
                META30,
                r#"{"ie":0,"sort":0}"#,
                r#"{"axiom":{"name":0,"levelParams":[],"type":0,"isUnsafe":false}}"#,
            ],
            "format 3.1 record",
        ),
        (
            &[
                META31,
                r#"{"ie":0,"sort":0}"#,
                r#"{"axiomInfo":{"name":0,"levelParams":[],"type":0,"isUnsafe":false}}"#,
            ],
            "format 3.0 record",
        ),
        (
            &[
                META31,
                r#"{"inductive":{"inductiveVals":[],"constructorVals":[],"recursorVals":[]}}"#,
            ],
            "missing field `types`",
        ),
        (
            &[META30, r#"{"inductive":{"types":[],"ctors":[],"recs":[]}}"#],
            "missing field `inductiveVals`",
        ),
        (
            &[
                META30,
                r#"{"ie":0,"sort":0}"#,
                r#"{"def":{"name":0,"levelParams":[],"type":0,"value":0}}"#,
            ],
            "`def`",
        ),
    ];
    for (lines, reason) in cases {
        let e = first_error(lines);
        assert_eq!(e.kind(), ErrorKind::Malformed, "{lines:?}: {e}");
        assert_eq!(e.line(), lines.len() as u64, "{lines:?}: {e}");
        assert!(
            e.to_string().contains(reason),
            "{lines:?}: {e} lacks {reason:?}"
        );
    }
    // Not UTF-8.
    let mut bytes = format!("{META31}\n").into_bytes();
    bytes.extend_from_slice(b"{\"in\":1,\"str\":{\"pre\":0,\"str\":\"\xff\"}}\n");
    let e = ExportReader::new(bytes.as_slice())
        .unwrap()
        .next_decl()
        .unwrap_err();
    assert_eq!((e.kind(), e.line()), (ErrorKind::Malformed, 2));
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn dangling_id() {
    let e = first_error(&[
        META31,
        r#"{"in":1,"str":{"pre":0,"str":"A"}}"#,
        r#"{"ie":0,"const":{"name":5,"us":[]}}"#,
    ]);
    assert!(
        matches!(
            e,
            ReadError::DanglingId {
                line: 3,
                table: Table::Name,
                id: 5,
                defined: 2
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::DanglingId);
    // A forward reference is dangling too: ids must point to earlier lines.
    let e = first_error(&[META31, r#"{"ie":0,"app":{"fn":0,"arg":0}}"#]);
    assert!(
        matches!(
            e,
            ReadError::DanglingId {
                line: 2,
                table: Table::Expr,
                id: 0,
                defined: 0
            }
        ),
        "{e}"
    );
    let e = first_error(&[META31, r#"{"il":1,"max":[0,7]}"#]);
    assert!(
        matches!(
            e,
            ReadError::DanglingId {
                line: 2,
                table: Table::Level,
                id: 7,
                defined: 1
            }
        ),
        "{e}"
    );
    // In a declaration.
    let e = first_error(&[
        META31,
        r#"{"in":1,"str":{"pre":0,"str":"t"}}"#,
        r#"{"ie":0,"sort":0}"#,
        "",
        r#"{"thm":{"name":1,"levelParams":[],"type":0,"value":9,"all":[1]}}"#,
    ]);
    assert!(
        matches!(
            e,
            ReadError::DanglingId {
                line: 5,
                table: Table::Expr,
                id: 9,
                defined: 1
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "line 5: dangling expression id 9 (ids 0..1 are defined)"
    );
}

#[test]
fn out_of_order_id() {
    let e = first_error(&[META31, r#"{"in":2,"str":{"pre":0,"str":"A"}}"#]);
    assert!(
        matches!(
            e,
            ReadError::OutOfOrderId {
                line: 2,
                table: Table::Name,
                id: 2,
                expected: 1
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::OutOfOrderId);
    // Redefinitions are out of order too (name 0 is the anonymous name).
    let e = first_error(&[META31, r#"{"in":0,"str":{"pre":0,"str":"A"}}"#]);
    assert!(
        matches!(
            e,
            ReadError::OutOfOrderId {
                line: 2,
                expected: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = first_error(&[META31, r#"{"ie":0,"sort":0}"#, r#"{"ie":0,"sort":0}"#]);
    assert!(
        matches!(
            e,
            ReadError::OutOfOrderId {
                line: 3,
                table: Table::Expr,
                id: 0,
                expected: 1
            }
        ),
        "{e}"
    );
    // Ids beyond the compact tables' range.
    let e = first_error(&[META31, r#"{"ie":99999999999,"sort":0}"#]);
    assert_eq!((e.kind(), e.line()), (ErrorKind::Limit, 2));
}

#[test]
fn out_of_order_in_the_real_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lean4export-Nat.add_succ.ndjson"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // Line 300 defines an id; without it the next definition of that table
    // is out of order (or a later line dangles).
    let removed = lines.remove(299);
    let e = first_error(&lines);
    assert!(
        matches!(e.kind(), ErrorKind::OutOfOrderId | ErrorKind::DanglingId),
        "{removed}: {e}"
    );
    assert!(e.line() >= 300, "{e}");
}

#[test]
fn missing_meta() {
    let e = first_error(&[r#"{"in":1,"str":{"pre":0,"str":"A"}}"#, META31]);
    assert!(matches!(e, ReadError::MissingMeta { line: 1 }), "{e}");
    assert_eq!(e.kind(), ErrorKind::MissingMeta);
    // Empty input; blank lines only.
    assert!(matches!(
        first_error(&[]),
        ReadError::MissingMeta { line: 1 }
    ));
    assert!(matches!(
        first_error(&["", "  "]),
        ReadError::MissingMeta { line: 3 }
    ));
    // A meta record without a format version.
    let e = first_error(&[
        "",
        r#"{"meta":{"exporter":{"name":"lean4export","version":"3.1.0"}}}"#,
    ]);
    assert!(matches!(e, ReadError::MissingMeta { line: 2 }), "{e}");
    // A declaration or an unknown record before any meta.
    let e = first_error(&[r#"{"thm":{"name":1,"levelParams":[],"type":0,"value":0}}"#]);
    assert!(matches!(e, ReadError::MissingMeta { line: 1 }), "{e}");
    let e = first_error(&["", r#"{"hello":1}"#]);
    assert!(matches!(e, ReadError::MissingMeta { line: 2 }), "{e}");
    // A broken meta record is malformed, not missing.
    let e = first_error(&[r#"{"meta":{"format":{"version":3}}}"#]);
    assert_eq!((e.kind(), e.line()), (ErrorKind::Malformed, 1));
    let e = first_error(&[r#"{"meta":"#]);
    assert_eq!((e.kind(), e.line()), (ErrorKind::Malformed, 1));
}

#[test]
fn unsupported_version() {
    for v in ["2.0.0", "3.2.0", "4.0", "3", "3.1.x", ""] {
        let meta = format!(r#"{{"meta":{{"format":{{"version":"{v}"}}}}}}"#);
        let e = first_error(&[&meta]);
        if v.is_empty() {
            assert_eq!(e.kind(), ErrorKind::MissingMeta);
            continue;
        }
        assert!(
            matches!(&e, ReadError::UnsupportedVersion { line: 1, version } if version == v),
            "{v}: {e}"
        );
        assert_eq!(e.kind(), ErrorKind::UnsupportedVersion);
        assert!(e.to_string().contains("3.0.x and 3.1.x"), "{e}");
    }
    for v in ["3.0", "3.0.0", "3.0.7", "3.1", "3.1.0", "3.1.12"] {
        let meta = format!(r#"{{"meta":{{"format":{{"version":"{v}"}}}}}}"#);
        assert!(read_ok(&[&meta]).is_empty());
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let rows = read_ok(&[
        r#"{"meta":{"format":{"version":"3.1.0","flavor":"x"},"extra":[1,2]}}"#,
        r#"{"in":1,"str":{"pre":0,"str":"A","color":"red"},"note":null}"#,
        r#"{"ie":0,"sort":0,"hash":12345}"#,
        r#"{"axiom":{"name":1,"levelParams":[],"type":0,"isUnsafe":false,"docString":"hi"},"source":"x.lean"}"#,
        "",
    ]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "A");
    // CRLF line endings.
    let text = format!(
        "{META31}\r\n{}\r\n",
        r#"{"in":1,"str":{"pre":0,"str":"A"}}"#
    );
    assert!(
        ExportReader::new(text.as_bytes())
            .unwrap()
            .next_decl()
            .unwrap()
            .is_none()
    );
}
