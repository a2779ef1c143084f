//! `ringworker export-decls` end to end: the real binary, its real worker
//! processes, the real lean4export file, and what a consumer reads back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringworker_lean::parquet::read_decls;
use ringworker_lean::{DeclKind, DeclRow};

mod support;
use support::{BIN, background, ringworker, stderr};

fn real_export() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lean/tests/data/lean4export-Nat.add_succ.ndjson")
}

fn by_name(rows: &[DeclRow], name: &str) -> DeclRow {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
        .clone()
}

/// Every row of a partitioned output, in part order.
fn read_dataset(dir: &Path) -> Vec<DeclRow> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files.iter().flat_map(|f| read_decls(f).unwrap()).collect()
}

fn sorted(mut rows: Vec<DeclRow>) -> Vec<DeclRow> {
    rows.sort_by(|a, b| (a.line, &a.name).cmp(&(b.line, &b.name)));
    rows
}

fn check_real_rows(rows: &[DeclRow]) {
    assert_eq!(rows.len(), 32, "the export has 32 constants");
    let thm = by_name(rows, "Nat.add_succ");
    assert_eq!(thm.kind, DeclKind::Thm);
    assert!(
        thm.value_consts.iter().any(|c| c == "Nat.succ"),
        "{:?}",
        thm.value_consts
    );
    let nat = by_name(rows, "Nat");
    assert_eq!(nat.kind, DeclKind::Inductive);
    assert_eq!(nat.ctors, ["Nat.zero", "Nat.succ"]);
}

#[test]
fn the_real_export_to_parquet_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = ringworker(
        &[
            "export-decls",
            real_export().to_str().unwrap(),
            "--out",
            "decls.parquet",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_decls(dir.path().join("decls.parquet")).unwrap();
    check_real_rows(&rows);
    // The same rows as the reader gives in this process, in the same order.
    let data = std::fs::read(real_export()).unwrap();
    let direct: Vec<DeclRow> = ringworker_lean::ExportReader::new(data.as_slice())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, direct);
    // Only the output is left: no temporary file.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["decls.parquet"]);
}

#[test]
fn the_real_export_to_ndjson_and_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "export-decls",
            "-",
            "--out",
            "decls.ndjson",
            "--workers",
            "2",
        ])
        .current_dir(dir.path())
        .stdin(std::fs::File::open(real_export()).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("decls.ndjson")).unwrap();
    let rows: Vec<DeclRow> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    check_real_rows(&rows);
}

#[test]
fn bad_inputs_fail_with_one_line_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-an-export.ndjson"), "{\"hello\": 1}\n").unwrap();
    let cases: [(&[&str], i32, &str); 6] = [
        (
            &["export-decls", "missing.ndjson", "--out", "x.parquet"],
            3,
            "missing.ndjson",
        ),
        (
            &["export-decls", "not-an-export.ndjson", "--out", "x.parquet"],
            3,
            "not a lean4export file",
        ),
        (
            &["export-decls", "--synthetic", "10", "--out", "x.csv"],
            2,
            "cannot tell the format",
        ),
        (
            &[
                "export-decls",
                "--synthetic",
                "10",
                "--out",
                "no/such/dir/x.parquet",
            ],
            4,
            "not a directory",
        ),
        (
            &[
                "export-decls",
                "--synthetic",
                "10",
                "--out",
                "x.parquet",
                "--shard",
                "3/3",
            ],
            2,
            "shard",
        ),
        (
            &[
                "export-decls",
                "--synthetic",
                "10",
                "--out",
                "x.parquet",
                "--resume",
            ],
            2,
            "--resume needs a directory",
        ),
    ];
    for (args, code, needle) in cases {
        let out = ringworker(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(!dir.path().join("x.parquet").exists());
        assert!(!dir.path().join("x.csv").exists());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["not-an-export.ndjson"]);
}

#[test]
fn an_existing_export_needs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "export-decls",
        "--synthetic",
        "2000",
        "--out",
        "ds/",
        "--rows-per-file",
        "500",
    ];
    let out = ringworker(&args, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let again = ringworker(&args, dir.path());
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    assert!(stderr(&again).contains("--resume"));
    // With --resume a complete export is left as it is.
    let mut resumed: Vec<&str> = args.to_vec();
    resumed.extend(["--resume", "--json"]);
    let out = ringworker(&resumed, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["declarations"], 0);
    assert_eq!(report["parts_resumed"], 4);
    assert_eq!(report["total_declarations"], 2000);
    // A different run into the same directory is refused.
    let mut other: Vec<&str> = vec![
        "export-decls",
        "--synthetic",
        "2000",
        "--out",
        "ds/",
        "--rows-per-file",
        "400",
    ];
    other.push("--resume");
    let out = ringworker(&other, dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn shards_together_hold_exactly_the_rows_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--synthetic",
        "6000",
        "--seed",
        "5",
        "--rows-per-file",
        "700",
    ];
    let mut whole = vec!["export-decls", "--out", "whole/", "--workers", "2"];
    whole.extend(common);
    let out = ringworker(&whole, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 0..3 {
        let shard = format!("{i}/3");
        let mut args = vec!["export-decls", "--out", "sharded/", "--shard", &shard];
        args.extend(common);
        let out = ringworker(&args, dir.path());
        assert!(out.status.success(), "shard {shard}: {}", stderr(&out));
    }
    let whole = sorted(read_dataset(&dir.path().join("whole")));
    let sharded = sorted(read_dataset(&dir.path().join("sharded")));
    assert_eq!(whole.len(), 6000);
    assert_eq!(sharded.len(), whole.len());
    assert!(
        sharded == whole,
        "the shards' rows differ from the whole run's"
    );
}

/// Shards of an array job run at the same time into one directory (the
/// README's Slurm example): a shard that starts while another is writing a
/// part must leave that part's temporary file alone.
#[test]
fn shards_running_at_once_share_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ds")).unwrap();
    let common = [
        "export-decls",
        "--synthetic",
        "60000",
        "--seed",
        "7",
        "--rows-per-file",
        "3000",
        "--out",
        "ds/",
        "--progress",
        "off",
    ];
    let mut first = background(common, dir.path())
        .args(["--shard", "0/2"])
        .spawn()
        .unwrap();
    // Wait until shard 0 is writing a part under its temporary name.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let writing = std::fs::read_dir(dir.path().join("ds"))
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(".part-s0000of0002-") && name.contains(".tmp-")
            });
        if writing {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "shard 0 ended before a part was in progress"
        );
        assert!(Instant::now() < deadline, "shard 0 never wrote a part");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut args = common.to_vec();
    args.extend(["--shard", "1/2"]);
    let second = ringworker(&args, dir.path());
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "shard 0: {}", stderr(&first));
    assert!(second.status.success(), "shard 1: {}", stderr(&second));
    let rows = read_dataset(&dir.path().join("ds"));
    assert_eq!(rows.len(), 60000);
    let names: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 60000, "every declaration once");
}

/// Two runs of the same shard into one directory at the same time would
/// overwrite each other's parts: the second one, on the same machine, sees
/// the first one's part in progress and stops with the output status
/// (`--resume`, as a requeued array task has, passes the manifest check).
#[test]
fn a_second_run_of_the_same_shard_at_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.ndjson");
    let file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    ringworker_lean::write_export(&ringworker_lean::SyntheticConfig::new(7, 200_000), file)
        .unwrap();
    std::fs::create_dir(dir.path().join("ds")).unwrap();
    let args = [
        "export-decls",
        "input.ndjson",
        "--rows-per-file",
        "5000",
        "--out",
        "ds/",
        "--resume",
        "--progress",
        "off",
    ];
    let mut first = background(args, dir.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let writing = std::fs::read_dir(dir.path().join("ds"))
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".tmp-"));
        if writing {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        assert!(
            Instant::now() < deadline,
            "the first run never wrote a part"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = ringworker(&args, dir.path());
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "first: {}", stderr(&first));
    assert_eq!(second.status.code(), Some(4), "second: {}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains("another ringworker"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(read_dataset(&dir.path().join("ds")).len(), 200_000);
}

/// A supervisor killed with SIGKILL while it generates its `--synthetic`
/// input cannot remove that file; the next run that needs scratch space
/// does, and removes its own when it ends.
#[test]
fn the_scratch_input_of_a_killed_run_is_swept_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let scratch = |tmp: &Path| -> Vec<String> {
        std::fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ringworker-"))
            .collect()
    };
    let mut killed = background(
        [
            "export-decls",
            "--synthetic",
            "5000000",
            "--out",
            "big.parquet",
            "--progress",
            "off",
        ],
        dir.path(),
    )
    .env("TMPDIR", &tmp)
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mine = format!("ringworker-synthetic-pid{}-", killed.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scratch(&tmp).iter().any(|n| n.starts_with(&mine)) {
        assert!(
            killed.try_wait().unwrap().is_none(),
            "ended before its input existed"
        );
        assert!(Instant::now() < deadline, "no scratch input appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(scratch(&tmp).len(), 1, "SIGKILL leaves the input");
    let out = Command::new(BIN)
        .args([
            "export-decls",
            "--synthetic",
            "100",
            "--out",
            "small.ndjson",
            "--progress",
            "off",
        ])
        .env("TMPDIR", &tmp)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        scratch(&tmp),
        Vec::<String>::new(),
        "swept, and its own removed"
    );
}

/// The manifest's count of complete parts, if it is readable yet.
fn parts_done(dir: &Path) -> usize {
    std::fs::read(dir.join("_manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|m| m["parts"].as_object().map(|p| p.len()))
        .unwrap_or(0)
}

#[test]
fn a_run_killed_mid_way_resumes_to_the_same_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--synthetic",
        "120000",
        "--seed",
        "9",
        "--rows-per-file",
        "4000",
        "--workers",
        "2",
        "--progress",
        "off",
    ];
    let mut reference = vec!["export-decls", "--out", "reference/"];
    reference.extend(common);
    let out = ringworker(&reference, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));

    let mut args = vec!["export-decls", "--out", "killed/"];
    args.extend(common);
    let mut child = background(&args, dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = dir.path().join("killed");
    let deadline = Instant::now() + Duration::from_secs(120);
    while parts_done(&killed) < 3 {
        assert!(Instant::now() < deadline, "no parts after 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let before = parts_done(&killed);
    assert!(
        before < 30,
        "killed after {before} of 30 parts: too late to test anything"
    );

    let mut resume = args.clone();
    resume.extend(["--resume", "--json"]);
    let out = ringworker(&resume, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["parts_resumed"].as_u64().unwrap() >= before as u64,
        "{report}"
    );
    assert_eq!(report["total_declarations"], 120000);
    assert!(
        report["declarations"].as_u64().unwrap() < 120000,
        "{report}"
    );

    // No row lost, none duplicated: the same dataset, file by file.
    let reference = read_dataset(&dir.path().join("reference"));
    let resumed = read_dataset(&killed);
    assert_eq!(resumed.len(), reference.len());
    assert!(resumed == reference, "the resumed dataset differs");
    // No temporary file of the killed run is left.
    for e in std::fs::read_dir(&killed).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "left over: {name}");
    }
}

#[test]
fn sigint_cancels_and_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = background(
        [
            "export-decls",
            "--synthetic",
            "400000",
            "--out",
            "big.parquet",
            "--progress",
            "off",
        ],
        dir.path(),
    )
    .spawn()
    .unwrap();
    // Wait until the export runs: its temporary output and workers exist.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let temp = std::fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".big.parquet")
        });
        if temp && !children_of(child.id()).is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            break;
        }
        assert!(Instant::now() < deadline);
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before the signal"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The worker tree: the supervisor's children (containment shims) and theirs.
    let mut tree = children_of(child.id());
    for shim in tree.clone() {
        tree.extend(children_of(shim));
    }
    assert!(!tree.is_empty(), "no worker processes found");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left: {left:?}");
    // Its workers are gone (reaped, or at most zombies of a dead parent).
    let alive: Vec<u32> = tree.into_iter().filter(|&p| is_alive(p)).collect();
    assert!(alive.is_empty(), "processes left: {alive:?}");
}

fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let after = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        !after.starts_with('Z')
    })
}

/// Live processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        let ppid: u32 = after
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if ppid == pid {
            found.push(p);
        }
    }
    found
}
