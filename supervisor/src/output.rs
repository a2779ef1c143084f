//! Continuous draining of a child's stdout and stderr into bounded tails, so
//! a chatty child never blocks on a full pipe and its last words are there
//! for error reports.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::{ChildStderr, ChildStdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::event::{PollFd, PollFlags};

use crate::OutputTail;

#[derive(Default)]
struct Tails {
    stdout: VecDeque<u8>,
    stderr: VecDeque<u8>,
    /// Whether the drain thread has seen end-of-file on both pipes.
    done: bool,
}

/// One thread per child that polls both pipes and keeps the last
/// `tail_bytes` of each.
pub(crate) struct OutputDrain {
    tails: Arc<Mutex<Tails>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OutputDrain {
    pub(crate) fn start(
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        tail_bytes: usize,
    ) -> Self {
        let tails = Arc::new(Mutex::new(Tails::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let tails = tails.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ringworker-output".into())
                .spawn(move || drain(stdout, stderr, tail_bytes, &tails, &stop))
                .ok()
        };
        OutputDrain {
            tails,
            stop,
            thread,
        }
    }

    /// A copy of both tails.
    pub(crate) fn tail(&self) -> OutputTail {
        let tails = self.tails.lock().unwrap_or_else(|e| e.into_inner());
        let text = |bytes: &VecDeque<u8>| {
            let (a, b) = bytes.as_slices();
            let mut all = Vec::with_capacity(a.len() + b.len());
            all.extend_from_slice(a);
            all.extend_from_slice(b);
            String::from_utf8_lossy(&all).into_owned()
        };
        OutputTail {
            stdout: text(&tails.stdout),
            stderr: text(&tails.stderr),
        }
    }

    /// After the child is reaped: gives the thread a moment to read what is
    /// still in the pipes (so error reports include the last words).
    pub(crate) fn finish(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
        while std::time::Instant::now() < deadline {
            if self.tails.lock().unwrap_or_else(|e| e.into_inner()).done {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Stops and joins the thread (bounded: it polls with a timeout, so a
    /// grandchild holding the pipes open cannot keep it alive).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OutputDrain {
    fn drop(&mut self) {
        self.stop();
    }
}

fn drain(
    mut stdout: Option<ChildStdout>,
    mut stderr: Option<ChildStderr>,
    tail_bytes: usize,
    tails: &Mutex<Tails>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 << 10];
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    while stdout.is_some() || stderr.is_some() {
        let mut fds = Vec::with_capacity(2);
        if let Some(out) = &stdout {
            fds.push(PollFd::from_borrowed_fd(out.as_fd(), PollFlags::IN));
        }
        if let Some(err) = &stderr {
            fds.push(PollFd::from_borrowed_fd(err.as_fd(), PollFlags::IN));
        }
        let ready = match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        };
        let revents: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        if ready == 0 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        }
        let mut index = 0;
        if stdout.is_some() {
            if revents[index] && !read_into(&mut stdout, &mut buf, tails, tail_bytes, true) {
                stdout = None;
            }
            index += 1;
        }
        if stderr.is_some()
            && revents[index]
            && !read_into(&mut stderr, &mut buf, tails, tail_bytes, false)
        {
            stderr = None;
        }
    }
    tails.lock().unwrap_or_else(|e| e.into_inner()).done = true;
}

/// Reads once; false at end of file or error.
fn read_into<R: Read>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
    tails: &Mutex<Tails>,
    tail_bytes: usize,
    is_stdout: bool,
) -> bool {
    let Some(reader) = pipe else { return false };
    match reader.read(buf) {
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut tails = tails.lock().unwrap_or_else(|e| e.into_inner());
            let tail = if is_stdout {
                &mut tails.stdout
            } else {
                &mut tails.stderr
            };
            let chunk = &buf[n.saturating_sub(tail_bytes)..n];
            let overflow = (tail.len() + chunk.len()).saturating_sub(tail_bytes);
            tail.drain(..overflow.min(tail.len()));
            tail.extend(chunk);
            true
        }
    }
}
