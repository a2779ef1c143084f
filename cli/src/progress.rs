//! Live progress on stderr: a bar (indicatif) when stderr is a terminal,
//! plain periodic lines when it is not (a log file, CI), nothing with
//! `--progress off`.
//!
//! The command's threads bump [`Counters`] (atomics, one add per row); a
//! ticker thread reads them every 100 ms for the bar, or every
//! `--progress-interval` for plain lines, so progress costs the data path
//! nothing but the adds.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Always the bar (drawn only on a terminal).
    Bar,
    /// Always plain lines.
    Plain,
    /// Nothing but the final summary.
    Off,
}

/// What a command has done so far; every field is a running total.
#[derive(Debug, Default)]
pub struct Counters {
    /// Rows received.
    pub rows: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Jobs finished successfully.
    pub jobs_done: AtomicU64,
    /// Jobs failed.
    pub jobs_failed: AtomicU64,
    /// Jobs in the run (0: unknown).
    pub jobs_total: AtomicU64,
    /// Worker restarts.
    pub restarts: AtomicU64,
}

impl Counters {
    /// Counts one row of `bytes` bytes.
    pub fn row(&self, bytes: usize) {
        self.rows.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
    }

    fn line(&self, elapsed: Duration) -> String {
        let rows = self.rows.load(Relaxed);
        let bytes = self.bytes.load(Relaxed);
        let rate = rows as f64 / elapsed.as_secs_f64().max(1e-3);
        let total = self.jobs_total.load(Relaxed);
        let done = self.jobs_done.load(Relaxed);
        let failed = self.jobs_failed.load(Relaxed);
        let jobs = if total > 0 {
            format!("{}/{total}", done + failed)
        } else {
            format!("{}", done + failed)
        };
        format!(
            "rows {} · {} · {} rows/s · jobs {jobs} ({failed} failed) · restarts {}",
            human_count(rows),
            human_bytes(bytes),
            human_count(rate as u64),
            self.restarts.load(Relaxed),
        )
    }
}

/// A running progress display; [`Progress::finish`] stops it.
#[derive(Debug)]
pub struct Progress {
    counters: Arc<Counters>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `counters` for the command `label`.
    pub fn start(label: &str, mode: Mode, interval: Duration) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let started = Instant::now();
        let bar = match mode {
            Mode::Off => None,
            Mode::Plain => Some(false),
            Mode::Bar => Some(true),
            Mode::Auto => Some(std::io::stderr().is_terminal()),
        };
        let thread = bar.and_then(|bar| {
            let counters = Arc::clone(&counters);
            let stop = Arc::clone(&stop);
            let label = label.to_owned();
            std::thread::Builder::new()
                .name("ringworker-progress".into())
                .spawn(move || {
                    if bar {
                        draw_bar(&label, &counters, &stop, started);
                    } else {
                        plain_lines(&label, &counters, &stop, started, interval);
                    }
                })
                .ok()
        });
        Progress {
            counters,
            stop,
            thread,
        }
    }

    /// The counters to bump.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Stops the display (the bar is cleared).
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Waits up to `timeout` for the stop flag; true once it is set.
fn wait_stop(stop: &(Mutex<bool>, Condvar), timeout: Duration) -> bool {
    let (lock, cv) = stop;
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    let (guard, _) = cv
        .wait_timeout_while(guard, timeout, |stopped| !*stopped)
        .unwrap_or_else(|p| p.into_inner());
    *guard
}

fn draw_bar(label: &str, counters: &Counters, stop: &(Mutex<bool>, Condvar), started: Instant) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    loop {
        bar.set_message(counters.line(started.elapsed()));
        bar.tick();
        if wait_stop(stop, Duration::from_millis(100)) {
            break;
        }
    }
    bar.finish_and_clear();
}

fn plain_lines(
    label: &str,
    counters: &Counters,
    stop: &(Mutex<bool>, Condvar),
    started: Instant,
    interval: Duration,
) {
    while !wait_stop(stop, interval) {
        let line = counters.line(started.elapsed());
        let secs = started.elapsed().as_secs_f64();
        let _ = writeln!(
            std::io::stderr().lock(),
            "ringworker {label}: {secs:.1}s {line}"
        );
    }
}

/// `n` and a noun that takes an "s" in the plural: `1 worker`, `2 workers`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1234567` as `1.23M`.
pub fn human_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

/// Bytes with a binary unit.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(1_500), "1.5k");
        assert_eq!(human_count(2_340_000), "2.34M");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
