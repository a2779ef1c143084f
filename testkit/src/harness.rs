//! Child processes that are this very executable, re-executed: a bench
//! binary with a hidden subcommand ([`self_command`], owned by a
//! [`ChildProc`]) or a libtest binary running one test
//! ([`reexec_test`], [`is_reexec`]).
//!
//! [`ChildProc`] owns the child: stdin (the "go" signal), stdout (a ready line
//! or a data stream) and stderr (drained by a thread, bounded tail kept for
//! error reports). It is always reaped: by [`ChildProc::finish`] on success,
//! by [`ChildProc::fail`] (kill + wait) on error, and by `Drop` as a last
//! resort. [`KillOnDrop`] does the same for a bare `std::process::Child`.
//! Fds for the child are placed with [`shm_proto::ChildFds`]; everything
//! else the parent opens is close-on-exec, so the child inherits only stdio
//! and what is placed explicitly.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};

/// Bytes of a child's stderr kept for error messages.
const STDERR_TAIL: usize = 8 << 10;

/// The line a ring / latency child prints when it is set up and waits for "go".
pub const READY_LINE: &str = "ready";

/// A `Command` running this executable with `args` (a hidden subcommand),
/// stdio piped (as [`ChildProc::spawn`] expects).
pub fn self_command(args: &[String]) -> Result<Command> {
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// A spawned child with captured stdio.
#[derive(Debug)]
pub struct ChildProc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    reaped: bool,
}

impl ChildProc {
    /// Spawns `cmd` (which must have piped stdio, see [`self_command`]).
    pub fn spawn(mut cmd: Command, what: impl Into<String>) -> Result<Self> {
        let what = what.into();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot spawn the {what} child"))?;
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut tail = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * STDERR_TAIL {
                        tail.drain(..tail.len() - STDERR_TAIL);
                    }
                }
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
                tail
            })
        });
        Ok(ChildProc {
            what,
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr,
            child,
            reaped: false,
        })
    }

    /// Takes the child's stdout (once).
    pub fn take_stdout(&mut self) -> Result<ChildStdout> {
        self.stdout
            .take()
            .ok_or_else(|| anyhow!("stdout of the {} child already taken", self.what))
    }

    /// Reads the ready line from the child's stdout.
    pub fn await_ready(&mut self) -> Result<()> {
        let stdout = self.take_stdout()?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the child's ready line")?;
        if line.trim_end() != READY_LINE {
            bail!(
                "the {} child did not report ready (got {line:?})",
                self.what
            );
        }
        Ok(())
    }

    /// Tells the child to start (writes one byte to its stdin and closes it).
    pub fn go(&mut self) -> Result<()> {
        let mut stdin = self
            .stdin
            .take()
            .ok_or_else(|| anyhow!("the {} child was already started", self.what))?;
        stdin.write_all(b"g").context("sending go to the child")?;
        Ok(())
    }

    /// Whether the child has exited (reaping it if so).
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait().context("waitpid")?;
        if status.is_some() {
            self.reaped = true;
        }
        Ok(status)
    }

    /// Fails with the child's exit status and stderr if it has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.exited()? {
            None => Ok(()),
            Some(status) => {
                let note = self.stderr_note();
                Err(anyhow!(
                    "the {} child exited early ({status}){note}",
                    self.what
                ))
            }
        }
    }

    /// Waits for a child that finished its work; fails unless it exited 0.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        drop(self.stdout.take());
        let status = self.child.wait().context("waitpid")?;
        self.reaped = true;
        if !status.success() {
            let note = self.stderr_note();
            bail!("the {} child failed ({status}){note}", self.what);
        }
        Ok(())
    }

    /// Kills and reaps the child after `err`, adding its stderr to the error.
    pub fn fail(mut self, err: anyhow::Error) -> anyhow::Error {
        self.kill_and_reap();
        let note = self.stderr_note();
        if note.is_empty() {
            err
        } else {
            err.context(format!("the {} child{note}", self.what))
        }
    }

    fn kill_and_reap(&mut self) {
        drop(self.stdin.take());
        drop(self.stdout.take());
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    /// `"; its stderr: ..."`, or empty if it wrote nothing.
    fn stderr_note(&mut self) -> String {
        let tail = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&tail);
        let text = text.trim();
        if text.is_empty() {
            String::new()
        } else {
            format!("; its stderr: {text}")
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Child side of the handshake: print the ready line, then block until the
/// parent writes "go" on stdin.
pub fn child_ready_then_wait_go() -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY_LINE}")?;
    out.flush()?;
    drop(out);
    let mut go = [0u8; 1];
    std::io::stdin()
        .read_exact(&mut go)
        .context("waiting for go from the parent")?;
    Ok(())
}

/// A `Command` re-executing this libtest binary to run only the test named
/// `test` (`--exact`, one thread, output not captured) with `marker` set in
/// its environment, so that test knows it is the child ([`is_reexec`]).
/// Stdin is null; stdout and stderr are left to the caller.
pub fn reexec_test(test: &str, marker: &str) -> Command {
    let exe = std::env::current_exe().expect("the path of the running test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        .stdin(Stdio::null());
    cmd
}

/// True in a test binary started by [`reexec_test`] with `marker`.
pub fn is_reexec(marker: &str) -> bool {
    std::env::var_os(marker).is_some()
}

/// Kills and reaps a child when dropped (a test that fails before it reaps
/// its child leaves no process behind).
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
