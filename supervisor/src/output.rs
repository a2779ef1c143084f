//! Continuous draining of a child's stdout and stderr into bounded tails, so
//! a chatty child never blocks on a full pipe and its last words are there
//! for error reports.
//!
//! The drain thread sleeps in `poll` without a timeout (no CPU while the
//! child is quiet) and is stopped through an eventfd: a grandchild that
//! inherited the pipes and keeps writing cannot keep it, or whoever stops
//! it, alive.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ChildStderr, ChildStdout};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::OutputTail;

/// After a child is reaped, how long the drain may still take to reach end
/// of file on its pipes (the child's last words) before reports go without.
const FINISH_WITHIN: Duration = Duration::from_millis(200);

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
    /// Written once to stop the thread.
    stop: Option<Arc<OwnedFd>>,
    thread: Option<JoinHandle<()>>,
}

impl OutputDrain {
    pub(crate) fn start(
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        tail_bytes: usize,
    ) -> Self {
        let tails = Arc::new(Mutex::new(Tails::default()));
        let stop = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .ok()
            .map(Arc::new);
        let thread = stop.as_ref().and_then(|stop| {
            let tails = tails.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ringworker-output".into())
                .spawn(move || drain(stdout, stderr, tail_bytes, &tails, &stop))
                .ok()
        });
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
        let deadline = Instant::now() + FINISH_WITHIN;
        while Instant::now() < deadline {
            if self.tails.lock().unwrap_or_else(|e| e.into_inner()).done {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops and joins the thread. Bounded: the thread wakes on the stop
    /// eventfd whatever the pipes do.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = rustix::io::write(&*stop, &1u64.to_ne_bytes());
        }
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
    stop: &OwnedFd,
) {
    let mut buf = vec![0u8; 64 << 10];
    while stdout.is_some() || stderr.is_some() {
        let mut fds = Vec::with_capacity(3);
        fds.push(PollFd::new(stop, PollFlags::IN));
        if let Some(out) = &stdout {
            fds.push(PollFd::from_borrowed_fd(out.as_fd(), PollFlags::IN));
        }
        if let Some(err) = &stderr {
            fds.push(PollFd::from_borrowed_fd(err.as_fd(), PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let revents: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        if revents[0] {
            break;
        }
        let mut index = 1;
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
