//! What every end-to-end test of the `ringworker` binary needs: its path,
//! a way to run it to completion, and its standard error as text.
//!
//! Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `ringworker` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringworker");

/// Runs `ringworker ARGS` in `cwd` with stdin closed and waits for it.
pub fn ringworker(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run ringworker")
}

/// `ringworker ARGS` in `cwd`, to be spawned and watched while it runs:
/// stdin and stdout closed, stderr piped (read by `wait_with_output`).
pub fn background<I, S>(args: I, cwd: &Path) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A run's standard error, lossily decoded.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
