//! `ringbench` end to end with tiny row counts: bad input is rejected with a
//! message (no panic), and a small run of every part produces the JSON lines.

use std::process::Command;

fn ringbench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringbench"))
        .args(args)
        .output()
        .expect("run ringbench")
}

#[test]
fn zero_row_bytes_is_rejected_with_a_message() {
    let out = ringbench(&["--row-bytes", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--row-bytes 0") && err.contains("too small"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn row_larger_than_the_ring_allows_is_rejected() {
    let out = ringbench(&["--row-bytes", "600", "--capacity", "4096"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("maximum record payload is 496 B"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_capacity_and_unknown_case_are_rejected() {
    for args in [
        &["--capacity", "5000"][..],
        &["--cases", "nope"][..],
        &["--cases", "custom"][..],
    ] {
        let out = ringbench(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:") && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn tiny_run_of_every_part_reports_json() {
    let out = ringbench(&[
        "--json",
        "--cases",
        "100B,mixed,custom,wake",
        "--row-bytes",
        "333",
        "--rows",
        "20000",
        "--baseline-rows",
        "2000",
        "--reps",
        "1",
        "--wake-samples",
        "5",
        "--capacity",
        "65536",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let cases: Vec<&str> = lines.iter().map(|l| l["case"].as_str().unwrap()).collect();
    assert_eq!(cases, ["100B", "mixed", "custom", "wake", "summary"]);
    for l in &lines[..3] {
        for key in [
            "row_bytes",
            "rows_per_s",
            "bytes_per_s",
            "baseline_rows_per_s",
            "ratio",
        ] {
            assert!(l[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {l}");
        }
    }
    assert_eq!(lines[2]["row_bytes"], 333.0);
    assert!(lines[3]["wake_p50_us"].as_f64().is_some());
}

#[test]
fn tiny_ceiling_run_checks_its_checksum() {
    // The ceiling runs next to every ring case; a run only succeeds if the
    // parent's checksum of every byte matched the child's.
    let out = ringbench(&[
        "--json",
        "--cases",
        "100B,custom",
        "--row-bytes",
        "3000",
        "--rows",
        "5000",
        "--baseline-rows",
        "500",
        "--reps",
        "1",
        "--capacity",
        "65536",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ceiling run 1/1"), "{err}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for l in &lines[..2] {
        for key in ["ceiling_rows_per_s", "ring_vs_ceiling"] {
            assert!(l[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {l}");
        }
    }
    assert!(lines[0]["e2e_vs_ring"].as_f64().is_some(), "{}", lines[0]);
    let summary = lines.last().unwrap();
    let targets = summary["targets"].to_string();
    assert!(targets.contains("100B ring >= 80% of ceiling"), "{targets}");
}

#[cfg(feature = "peers")]
#[test]
fn tiny_iceoryx2_run_checks_its_checksum() {
    let out = ringbench(&[
        "--json",
        "--cases",
        "mixed",
        "--rows",
        "20000",
        "--baseline-rows",
        "500",
        "--reps",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("a case line"),
    )
    .expect("JSON");
    for key in [
        "iceoryx2_rows_per_s",
        "ring_vs_iceoryx2",
        "iceoryx2_packed_rows_per_s",
        "ring_vs_iceoryx2_packed",
    ] {
        assert!(
            line[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {line}"
        );
    }
}
