//! `ringworker bench`: a quick part end to end (the real binary, its
//! children re-executing it), and the usage errors.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ringworker");

fn ringworker(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running ringworker")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bench_quick_idle_json_prints_json_lines_ending_in_the_summary() {
    let out = ringworker(&["bench", "--quick", "--cases", "idle", "--json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 2, "{stdout}");
    let idle = &lines[0];
    assert!(idle["idle_cpu_pct"].is_number(), "{idle}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["case"], "summary", "{summary}");
    assert!(summary["all_targets_met"].is_boolean(), "{summary}");
    let targets = summary["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{summary}");
    assert!(
        targets[0]["target"].as_str().unwrap().contains("idle"),
        "{summary}"
    );
    // The table went to stderr, with its target line.
    assert!(stderr.contains("idle consumer"), "{stderr}");
    assert!(
        stderr.contains("PASS  idle") || stderr.contains("MISS  idle"),
        "{stderr}"
    );
}

#[test]
fn bench_without_json_prints_the_table_and_targets_on_stdout() {
    let out = ringworker(&["bench", "--quick", "--cases", "idle", "--progress", "off"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(
        stdout.contains("PASS  idle") || stdout.contains("MISS  idle"),
        "{stdout}"
    );
    assert!(stdout.contains("(ring capacity"), "{stdout}");
    // --progress off: no progress lines.
    assert!(!stderr.contains("ringworker bench:"), "{stderr}");
}

#[test]
fn an_unknown_case_is_a_usage_error_on_one_line() {
    let out = ringworker(&["bench", "--quick", "--cases", "nope"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ringworker: error: unknown case \"nope\"; known: 100B"),
        "{stderr}"
    );
    assert!(stderr.contains("export"), "{stderr}");
}

#[test]
fn a_bad_suite_option_is_a_usage_error_before_anything_runs() {
    let out = ringworker(&["bench", "--cases", "idle", "--reps", "0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ringworker: error: "), "{stderr}");
}
