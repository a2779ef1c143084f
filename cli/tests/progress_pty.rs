//! Progress on stderr, as a user sees it: with stderr on a pseudo-terminal
//! the bar is drawn (indicatif's cursor sequences and the progress text);
//! with stderr on a pipe, plain `ringworker <command>: ...` lines and no
//! escape sequence.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

const BIN: &str = env!("CARGO_BIN_EXE_ringworker");

/// What a run printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    cmd
}

/// Runs `ringworker args` with stderr on the slave side of a new pty; what
/// the master side read is `stderr`.
fn run_on_pty(args: &[&str]) -> Run {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .expect("opening a pty");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave: OwnedFd = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("opening the pty's slave side");
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed: the end.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let mut cmd = command(args);
    cmd.stderr(Stdio::from(slave));
    let child = cmd.spawn().expect("running ringworker");
    drop(cmd); // our copy of the slave: the reader ends with the child
    let output = child.wait_with_output().expect("waiting for ringworker");
    let stderr = reader.join().expect("the pty reader");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `ringworker args` with stderr on a pipe.
fn run_on_pipe(args: &[&str]) -> Run {
    let output = command(args)
        .stderr(Stdio::piped())
        .output()
        .expect("running ringworker");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn export_args(dir: &tempfile::TempDir) -> Vec<String> {
    [
        "export-decls",
        "--synthetic",
        "300000",
        "--out",
        &dir.path().join("x.parquet").display().to_string(),
        "--progress-interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Whether `s` holds a CSI escape sequence (`ESC [`).
fn has_csi(s: &str) -> bool {
    s.contains("\x1b[")
}

#[test]
fn export_decls_draws_a_bar_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let args = export_args(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_on_pty(&args);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let bar = &run.stderr;
    assert!(has_csi(bar), "no escape sequence on the terminal: {bar:?}");
    assert!(bar.contains("export-decls"), "{bar:?}");
    assert!(bar.contains("rows "), "{bar:?}");
    assert!(bar.contains("rows/s"), "{bar:?}");
    // The bar, not plain lines.
    assert!(!bar.contains("ringworker export-decls: "), "{bar:?}");
    // The summary follows the cleared bar.
    assert!(bar.contains("export-decls: 300000 declarations"), "{bar:?}");
    assert!(dir.path().join("x.parquet").is_file());
}

#[test]
fn export_decls_prints_plain_lines_on_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let args = export_args(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_on_pipe(&args);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ringworker export-decls: "))
        .collect();
    assert!(!lines.is_empty(), "no progress line: {}", run.stderr);
    for line in &lines {
        assert!(line.contains(" rows "), "{line}");
        assert!(line.contains("rows/s"), "{line}");
    }
    assert!(!has_csi(&run.stderr), "{:?}", run.stderr);
    assert!(!run.stderr.contains('\r'), "{:?}", run.stderr);
}

#[test]
fn bench_draws_a_bar_on_a_terminal() {
    let run = run_on_pty(&["bench", "--quick", "--cases", "idle"]);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let bar = &run.stderr;
    assert!(has_csi(bar), "no escape sequence on the terminal: {bar:?}");
    assert!(bar.contains("bench"), "{bar:?}");
    assert!(bar.contains("idle consumer, 2 s"), "{bar:?}");
    assert!(!bar.contains("ringworker bench: "), "{bar:?}");
    // The report itself is on stdout, undisturbed.
    assert!(run.stdout.contains("idle consumer"), "{}", run.stdout);
    assert!(!has_csi(&run.stdout), "{:?}", run.stdout);
}

#[test]
fn bench_prints_plain_lines_on_a_pipe() {
    let run = run_on_pipe(&["bench", "--quick", "--cases", "idle"]);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l == "ringworker bench: idle consumer, 2 s"),
        "{}",
        run.stderr
    );
    assert!(!has_csi(&run.stderr), "{:?}", run.stderr);
    assert!(run.stdout.contains("idle consumer"), "{}", run.stdout);
}
