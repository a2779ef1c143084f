//! `ExportReader::with_selection`: a slice of the constants by ordinal,
//! the same rows as the whole read filtered, and the slices of a partition
//! together give every row once.

use ringworker_lean::{DeclRow, ExportReader, SyntheticConfig, write_export};

fn export() -> Vec<u8> {
    let mut export = Vec::new();
    write_export(&SyntheticConfig::new(11, 3_000), &mut export).unwrap();
    export
}

#[test]
fn a_selection_is_the_whole_read_filtered() {
    let export = export();
    let all: Vec<DeclRow> = ExportReader::new(export.as_slice())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut reader = ExportReader::new(export.as_slice())
        .unwrap()
        .with_selection(|ordinal| ordinal % 3 == 1);
    let mut got = Vec::new();
    while let Some((ordinal, row)) = reader.next_selected().unwrap() {
        assert_eq!(ordinal % 3, 1);
        assert_eq!(row, all[ordinal as usize], "ordinal {ordinal}");
        got.push(ordinal);
    }
    let expected: Vec<u64> = (0..all.len() as u64).filter(|o| o % 3 == 1).collect();
    assert_eq!(got, expected);
    let stats = reader.stats();
    assert_eq!(stats.rows + stats.skipped, all.len() as u64);
    assert_eq!(stats.rows, expected.len() as u64);
}

#[test]
fn the_real_export_sliced_in_four_covers_every_constant_once() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lean4export-Nat.add_succ.ndjson"
    );
    let data = std::fs::read(path).unwrap();
    let whole: Vec<String> = ExportReader::new(data.as_slice())
        .unwrap()
        .map(|r| r.unwrap().name)
        .collect();
    let mut seen = vec![0u32; whole.len()];
    for slice in 0..4u64 {
        let mut reader = ExportReader::new(data.as_slice())
            .unwrap()
            .with_selection(move |o| o % 4 == slice);
        while let Some((ordinal, row)) = reader.next_selected().unwrap() {
            assert_eq!(row.name, whole[ordinal as usize]);
            seen[ordinal as usize] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
}
