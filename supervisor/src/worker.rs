//! [`Worker`]: one supervised child, respawned transparently after failures.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_proto::Command;
use shm_proto::control::{self, Hello, ParentFrame};

use crate::cancel::CancelToken;
use crate::config::WorkerConfig;
use crate::error::Error;
use crate::process::Exit;
use crate::request::{self, Call, Limits};
use crate::session::{self, ControlWriter, Session};
use crate::sink::{Discard, Sink, TypedSink};
use crate::standby::Standby;
use crate::stats::{RestartReason, WorkerStats};
use crate::template::{self, Template};
use crate::watchdog::Verdict;

/// Per-request options. Build with `RequestOptions::default()` and the setters.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Deadline of this request (default: the config's `request_timeout`).
    pub timeout: Option<Duration>,
    /// Token to cancel the request from another thread.
    pub cancel: Option<CancelToken>,
}

impl RequestOptions {
    /// Sets the deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the cancel token.
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

/// A supervised worker process. Requests run one at a time on the calling
/// thread; after any failure that leaves the child unusable, the child is
/// killed and reaped at once and the next request starts a fresh one.
pub struct Worker {
    config: WorkerConfig,
    session: Option<Session>,
    /// The prewarmed replacement, starting or ready (restart policy `prewarm`).
    spare: Option<Spare>,
    generation: u64,
    next_request: u64,
    stats: WorkerStats,
    /// Unplanned restarts within the policy's window, oldest first.
    recent_restarts: VecDeque<(Instant, RestartReason)>,
    /// Failed starts in a row, and when the next may be tried.
    spawn_failures: u32,
    next_spawn_at: Option<Instant>,
    /// The warm template children are forked from
    /// ([`WorkerConfig::with_template`]), shared with every worker of the
    /// same start-up in this process. Dropped after the session and the
    /// spare: the last holder's drop stops the template.
    template: Option<Arc<Template>>,
    /// Tears down dead children and prepares the next ring, off the path
    /// of the next request. Declared last: dropped after everything else.
    standby: Standby,
}

/// A child being started (or started) in the background.
struct Spare {
    thread: Option<JoinHandle<Result<Session, Error>>>,
}

impl Spare {
    fn start(
        config: &WorkerConfig,
        generation: u64,
        template: Option<Arc<Template>>,
    ) -> Option<Spare> {
        let config = config.clone();
        std::thread::Builder::new()
            .name("ringworker-prewarm".into())
            .spawn(move || Session::start(&config, generation, None, template.as_ref()))
            .ok()
            .map(|thread| Spare {
                thread: Some(thread),
            })
    }

    fn is_ready(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| t.is_finished())
    }

    /// Waits for the start to finish (it is bounded by the startup deadline).
    fn take(mut self) -> Result<Session, Error> {
        let thread = self.thread.take().expect("a spare is taken once");
        thread.join().unwrap_or_else(|_| {
            Err(Error::Spawn {
                program: PathBuf::new(),
                source: std::io::Error::other("the prewarm thread panicked"),
            })
        })
    }
}

impl Drop for Spare {
    /// Joins a start in progress, so that its child, ring and pipes are gone
    /// when the worker is (the start is bounded by the startup deadline).
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// Workers move between threads (a pool hands them to its callers).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Worker>();
    assert_send::<CancelToken>();
};

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("program", &self.config.program)
            .field("generation", &self.generation)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts the child and waits for its handshake.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use ringworker::{Worker, WorkerConfig};
    ///
    /// # fn main() -> Result<(), ringworker::Error> {
    /// let config = WorkerConfig::new("target/release/my-worker")
    ///     .with_request_timeout(Duration::from_secs(60))
    ///     .with_hang_timeout(Duration::from_secs(5));
    /// let worker = Worker::spawn(config)?;
    /// println!("{} offers {:?}", worker.pid().unwrap_or(0), worker.hello().map(|h| &h.commands));
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(config: WorkerConfig) -> Result<Self, Error> {
        config.validate()?;
        let config_template = config.template.then(|| template::for_config(&config));
        let mut worker = Worker {
            config,
            session: None,
            spare: None,
            generation: 0,
            next_request: 1,
            stats: WorkerStats::default(),
            recent_restarts: VecDeque::new(),
            spawn_failures: 0,
            next_spawn_at: None,
            template: config_template,
            standby: Standby::default(),
        };
        worker.start_session()?;
        worker.keep_spare();
        Ok(worker)
    }

    /// Runs `command` and returns its typed summary; rows, if any, are dropped.
    pub fn call<Req, Sum>(&mut self, command: &str, request: &Req) -> Result<Sum, Error>
    where
        Req: Serialize + ?Sized,
        Sum: DeserializeOwned,
    {
        self.stream_with(command, request, &mut Discard, RequestOptions::default())
    }

    /// Runs `command`, delivering its rows to `sink` in commit order, and
    /// returns its typed summary.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ringworker::{Row, Worker, WorkerConfig};
    ///
    /// # fn main() -> Result<(), ringworker::Error> {
    /// let mut worker = Worker::spawn(WorkerConfig::new("target/release/my-worker"))?;
    /// let mut bytes = 0usize;
    /// // Any `FnMut(Row)` is a sink; the payload is borrowed from the ring.
    /// let mut sink = |row: Row<'_>| bytes += row.payload.len();
    /// let summary: serde_json::Value =
    ///     worker.stream("export", &serde_json::json!({ "module": "Nat" }), &mut sink)?;
    /// println!("{bytes} bytes, summary {summary}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream<Req, Sum, S>(
        &mut self,
        command: &str,
        request: &Req,
        sink: &mut S,
    ) -> Result<Sum, Error>
    where
        Req: Serialize + ?Sized,
        Sum: DeserializeOwned,
        S: Sink + ?Sized,
    {
        self.stream_with(command, request, sink, RequestOptions::default())
    }

    /// [`Worker::stream`] with a deadline and/or cancel token.
    pub fn stream_with<Req, Sum, S>(
        &mut self,
        command: &str,
        request: &Req,
        sink: &mut S,
        options: RequestOptions,
    ) -> Result<Sum, Error>
    where
        Req: Serialize + ?Sized,
        Sum: DeserializeOwned,
        S: Sink + ?Sized,
    {
        let args = serde_json::value::to_raw_value(request)
            .map_err(|source| Error::EncodeRequest { source })?;
        let summary = self.run(command, args, sink, &options)?;
        serde_json::from_str(summary.get()).map_err(|source| Error::DecodeSummary { source })
    }

    /// Runs command `C` by its contract: the name, request, row and summary
    /// types are those the child registered with `command_typed::<C>`. Each
    /// row is decoded from JSON and handed to `on_row` with its stream; a row
    /// that does not decode ends the request with [`Error::Sink`].
    pub fn run_typed<C: Command>(
        &mut self,
        request: &C::Request,
        on_row: impl FnMut(u16, C::Row),
    ) -> Result<C::Summary, Error> {
        self.run_typed_with::<C>(request, on_row, RequestOptions::default())
    }

    /// [`Worker::run_typed`] with a deadline and/or cancel token.
    pub fn run_typed_with<C: Command>(
        &mut self,
        request: &C::Request,
        on_row: impl FnMut(u16, C::Row),
        options: RequestOptions,
    ) -> Result<C::Summary, Error> {
        let mut sink = TypedSink::<C::Row, _>::new(on_row);
        self.stream_with(C::NAME, request, &mut sink, options)
    }

    fn run<S: Sink + ?Sized>(
        &mut self,
        command: &str,
        args: Box<serde_json::value::RawValue>,
        sink: &mut S,
        options: &RequestOptions,
    ) -> Result<Box<serde_json::value::RawValue>, Error> {
        let timeout = match options.timeout {
            Some(zero) if zero.is_zero() => {
                return Err(Error::Config {
                    field: "RequestOptions::timeout",
                    reason: "zero; use Duration::MAX for no limit".into(),
                });
            }
            Some(timeout) => timeout,
            None => self.config.request_timeout,
        };
        let limits = Limits {
            timeout: finite(timeout),
            hang_timeout: finite(self.config.hang_timeout),
            cancel_grace: self.config.cancel_grace,
            control_timeout: self.config.control_timeout,
            cancel: options.cancel.as_ref(),
        };
        let outcome = self.run_once(command, &args, sink, &limits)?;
        if !outcome.never_accepted {
            return outcome.result;
        }
        // The child died or stalled before it took the request off its
        // control channel: nothing of it ran, so a fresh child gets it.
        self.stats.resent_requests += 1;
        self.run_once(command, &args, sink, &limits)?.result
    }

    fn run_once<S: Sink + ?Sized>(
        &mut self,
        command: &str,
        args: &serde_json::value::RawValue,
        sink: &mut S,
        limits: &Limits<'_>,
    ) -> Result<request::Outcome, Error> {
        self.ensure_ready()?;
        let Some(session) = self.session.as_mut() else {
            unreachable!("ensure_ready leaves a session")
        };
        if !session.offers(command) {
            return Err(Error::UnknownCommand {
                command: command.to_owned(),
                available: session
                    .hello
                    .commands
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            });
        }
        let id = self.next_request;
        self.next_request += 1;
        let started = Instant::now();
        let watch = std::sync::Arc::clone(session.process.watch());
        if let Some(token) = limits.cancel {
            token.watch(&session.memory, &watch, id, limits.cancel_grace);
        }
        let outcome = request::run(
            session,
            Call { id, command, args },
            sink,
            limits,
            &mut self.stats,
        );
        if let Some(token) = limits.cancel {
            token.unwatch(&session.memory);
        }
        let full_waits = session.memory.full_waits();
        self.stats.backpressure_waits += full_waits.saturating_sub(session.full_waits_seen);
        session.full_waits_seen = full_waits;
        if outcome.unfinished {
            // Still armed: the watchdog enforces the cancel grace.
            session.unfinished = Some(id);
        } else if outcome.restart.is_none() {
            watch.disarm(self.config.restart.idle_restart);
        }
        let (samples, unavailable) = watch.rss_counts();
        self.stats.rss_samples += samples.saturating_sub(session.rss_seen.0);
        self.stats.rss_unavailable += unavailable.saturating_sub(session.rss_seen.1);
        session.rss_seen = (samples, unavailable);
        self.stats.requests += 1;
        self.stats.stream_time += started.elapsed();
        if outcome.result.is_err() {
            self.stats.failed_requests += 1;
        }
        if let Some(reason) = outcome.restart {
            self.discard_session(reason);
        }
        Ok(outcome)
    }

    /// Makes sure a live child is ready for the next request: replaces one
    /// that died (also one the watchdog stopped while idle), one still busy
    /// with an abandoned request past its grace, one that served its
    /// `max_requests` or sits above the soft memory ceiling; starts one if
    /// there is none. With `prewarm`, the replacement is the spare.
    ///
    /// Fails fast with [`Error::RestartLimit`] while the restart intensity
    /// cap is reached.
    pub fn ensure_ready(&mut self) -> Result<(), Error> {
        let policy = &self.config.restart;
        let replace = match self.session.as_mut() {
            None => None,
            Some(session) => {
                // `attention`: the watchdog condemned it (idle restart) or
                // saw it die, and the shim may still be tearing it down.
                if session.process.has_exited() || session.process.watch().attention() {
                    // A death the pidfd shows is reaped by the watchdog
                    // within microseconds; its status names the reason.
                    session.process.watch().try_reap();
                    let exit = session.process.reap(Duration::from_millis(200));
                    Some(match (exit, session.process.watch().status().1) {
                        (_, Some(Verdict::Idle)) => RestartReason::Idle,
                        (Some(Exit::Signal(_)), _) => RestartReason::Signalled,
                        _ => RestartReason::Exited,
                    })
                } else if !session.settle(policy.idle_restart, &mut self.stats) {
                    Some(RestartReason::StaleRequest)
                } else if policy
                    .max_requests
                    .is_some_and(|max| session.requests >= max)
                {
                    Some(RestartReason::MaxRequests)
                } else if session.process.watch().over_soft_ceiling() {
                    Some(RestartReason::MemorySoft)
                } else {
                    None
                }
            }
        };
        if let Some(reason) = replace {
            self.discard_session(reason);
        }
        if self.session.is_none() {
            self.start_session()?;
            self.keep_spare();
        }
        Ok(())
    }

    /// Whether the current child is alive (no syscall beyond one `poll`).
    pub fn is_alive(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.process.has_exited())
    }

    /// Starts the next child: the spare if one is prewarmed, a fresh spawn
    /// otherwise; within the restart intensity cap and the spawn backoff.
    fn start_session(&mut self) -> Result<(), Error> {
        self.check_restart_intensity()?;
        if let Some(spare) = self.spare.take() {
            match spare.take() {
                Ok(session) if !session.process.has_exited() => {
                    self.stats.prewarm_swaps += 1;
                    self.count_template(&session);
                    self.session = Some(session);
                    return Ok(());
                }
                Ok(dead) => {
                    drop(dead);
                    self.stats.failed_spawns += 1;
                }
                Err(_) => self.stats.failed_spawns += 1,
            }
        }
        if let Some(at) = self.next_spawn_at {
            let wait = at.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        self.generation += 1;
        self.stats.spawns += 1;
        let prepared = self.standby.take_ring(self.generation);
        match Session::start(
            &self.config,
            self.generation,
            prepared,
            self.template.as_ref(),
        ) {
            Ok(session) => {
                self.count_template(&session);
                self.spawn_failures = 0;
                self.next_spawn_at = None;
                self.session = Some(session);
                if !self.config.restart.prewarm {
                    // The next cold start finds its ring made.
                    let next = session::ring_config(&self.config, self.generation + 1);
                    self.standby.prepare_ring(next);
                }
                Ok(())
            }
            Err(error) => {
                self.stats.failed_spawns += 1;
                if !matches!(error, Error::Config { .. }) {
                    self.spawn_failures = self.spawn_failures.saturating_add(1);
                    let policy = &self.config.restart;
                    let backoff = policy
                        .spawn_backoff
                        .saturating_mul(1 << (self.spawn_failures - 1).min(20))
                        .min(policy.max_spawn_backoff);
                    self.next_spawn_at = Instant::now().checked_add(backoff);
                    self.note_restart(RestartReason::Exited);
                }
                Err(error)
            }
        }
    }

    /// Starts the spare in the background if the policy wants one.
    fn keep_spare(&mut self) {
        if self.config.restart.prewarm && self.spare.is_none() {
            self.generation += 1;
            self.stats.spawns += 1;
            self.spare = Spare::start(&self.config, self.generation, self.template.clone());
        }
    }

    /// Counts a session forked from the template.
    fn count_template(&mut self, session: &Session) {
        if session.forked {
            self.stats.template_forks += 1;
        }
        if session.template_respawned {
            self.stats.template_respawns += 1;
        }
    }

    /// Fails fast once more unplanned restarts than the policy allows
    /// happened within its window.
    fn check_restart_intensity(&mut self) -> Result<(), Error> {
        let policy = &self.config.restart;
        let now = Instant::now();
        while let Some(&(at, _)) = self.recent_restarts.front() {
            if now.duration_since(at) >= policy.restart_window {
                self.recent_restarts.pop_front();
            } else {
                break;
            }
        }
        if self.recent_restarts.len() > policy.max_restarts {
            self.stats.restart_limited += 1;
            let oldest = self.recent_restarts.front().map_or(now, |&(at, _)| at);
            return Err(Error::RestartLimit {
                restarts: self.recent_restarts.len(),
                window: policy.restart_window,
                last: self.recent_restarts.back().map(|&(_, reason)| reason),
                retry_after: (oldest + policy.restart_window).saturating_duration_since(now),
            });
        }
        Ok(())
    }

    fn note_restart(&mut self, reason: RestartReason) {
        let planned = matches!(
            reason,
            RestartReason::Requested
                | RestartReason::MaxRequests
                | RestartReason::Idle
                | RestartReason::MemorySoft
        );
        if !planned {
            self.recent_restarts.push_back((Instant::now(), reason));
        }
    }

    fn discard_session(&mut self, reason: RestartReason) {
        if let Some(session) = self.session.take() {
            *self.stats.restarts.entry(reason).or_default() += 1;
            let (samples, unavailable) = session.process.watch().rss_counts();
            self.stats.rss_samples += samples.saturating_sub(session.rss_seen.0);
            self.stats.rss_unavailable += unavailable.saturating_sub(session.rss_seen.1);
            self.note_restart(reason);
            // Dead and reaped when this returns (a kill takes the shim a
            // millisecond); the rest of the teardown (drain thread, the
            // watchdog's handle, the ring's pages) need not delay the
            // replacement.
            let mut session = session;
            session.process.kill_and_reap();
            self.standby.retire(session);
        }
    }

    /// Replaces the child with a fresh one now (the spare, with prewarm).
    pub fn cycle(&mut self) -> Result<(), Error> {
        self.discard_session(RestartReason::Requested);
        self.start_session()?;
        self.keep_spare();
        Ok(())
    }

    /// Replaces the child with a fresh one now; the same as [`Worker::cycle`].
    pub fn restart(&mut self) -> Result<(), Error> {
        self.cycle()
    }

    /// Asks the child to exit, waits up to `grace`, then kills it.
    pub fn shutdown(mut self, grace: Duration) {
        if let Some(mut session) = self.session.take() {
            let deadline = Instant::now().checked_add(grace);
            let mut writer = ControlWriter {
                socket: &session.control,
                deadline,
            };
            let _ = control::write_frame(&mut writer, &ParentFrame::Shutdown);
            if session.process.reap(grace).is_none() {
                session.process.kill_and_reap();
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// The current child's handshake.
    pub fn hello(&self) -> Option<&Hello> {
        self.session.as_ref().map(|s| &s.hello)
    }

    /// The current child's pid (the worker process itself, also when it
    /// runs under a containment shim).
    pub fn pid(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.process.worker_pid())
    }

    /// The pid of the process the supervisor spawned and reaps: the
    /// containment shim when the tree is contained, else the worker.
    pub fn spawned_pid(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.process.pid())
    }

    /// The pid of the warm template this worker's children are forked from,
    /// while it runs (`None` without [`WorkerConfig::with_template`]).
    pub fn template_pid(&self) -> Option<u32> {
        self.template.as_ref().and_then(|t| t.pid())
    }

    /// The prewarmed spare's state: `None` without prewarm.
    pub fn spare_ready(&self) -> Option<bool> {
        self.spare.as_ref().map(Spare::is_ready)
    }

    /// Generation of the current (or last) child, from 1.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }
}

/// `Duration::MAX` is "no limit".
fn finite(limit: Duration) -> Option<Duration> {
    (limit != Duration::MAX).then_some(limit)
}
