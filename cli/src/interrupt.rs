//! Ctrl-C: SIGINT (and SIGTERM, SIGHUP) cancel the running jobs instead of
//! killing the supervisor, so every worker is reaped and no partial output
//! is left; the command then exits with status 130.
//!
//! A thread waits for the signals (signal-hook's iterator: no code runs in
//! the signal handler but a write to a pipe) and cancels the one
//! [`CancelToken`] every job of the command carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringworker::CancelToken;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Turns the termination signals into a cancellation while it lives.
#[derive(Debug)]
pub struct Interrupt {
    token: CancelToken,
    fired: Arc<AtomicBool>,
    handle: Option<Handle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Interrupt {
    /// Installs the handlers. If they cannot be installed, signals keep
    /// their default action (the run still works, Ctrl-C just kills it).
    pub fn install() -> Interrupt {
        let token = CancelToken::new();
        let fired = Arc::new(AtomicBool::new(false));
        let mut handle = None;
        let mut thread = None;
        if let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            handle = Some(signals.handle());
            let token = token.clone();
            let fired = Arc::clone(&fired);
            thread = std::thread::Builder::new()
                .name("ringworker-signals".into())
                .spawn(move || {
                    if signals.forever().next().is_some() {
                        fired.store(true, Ordering::SeqCst);
                        token.cancel();
                    }
                })
                .ok();
        }
        Interrupt {
            token,
            fired,
            handle,
            thread,
        }
    }

    /// The token every job of the command carries.
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Whether a signal arrived.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
