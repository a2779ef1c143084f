//! The lean4export NDJSON reader over arbitrary lines.
//!
//! The fuzzer's bytes are read as an export, behind a valid `meta` line of
//! format 3.0 or 3.1 (chosen by the first byte) so that the line parser, the
//! id tables and the row builder all see hostile input; with the first
//! byte's low bits both set the bytes are read raw (the `meta` handling
//! itself). Whatever the bytes: no panic, and every error carries a line
//! number within the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringworker_lean::ExportReader;

const META30: &[u8] = br#"{"meta":{"format":{"version":"3.0.0"}}}"#;
const META31: &[u8] = br#"{"meta":{"format":{"version":"3.1.0"}}}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(data.len() + 64);
    match mode & 3 {
        0 | 1 => {
            input.extend_from_slice(if mode & 1 == 0 { META30 } else { META31 });
            input.push(b'\n');
        }
        2 => {}
        _ => input.extend_from_slice(META31),
    }
    input.extend_from_slice(rest);
    let lines = input.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    match ExportReader::new(input.as_slice()) {
        Err(e) => assert!(e.line() <= lines + 1, "{e}"),
        Ok(reader) => {
            for row in reader {
                match row {
                    Ok(row) => assert!(row.type_dag_size <= row.type_tree_size),
                    Err(e) => {
                        assert!(e.line() >= 1 && e.line() <= lines, "{e}");
                        break;
                    }
                }
            }
        }
    }
});
