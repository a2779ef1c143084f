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

/// A run's standard error, lossily decoded.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
