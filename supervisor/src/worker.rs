//! [`Worker`]: one supervised child, respawned transparently after failures.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_proto::Command;
use shm_proto::control::{self, Hello, ParentFrame};

use crate::cancel::CancelToken;
use crate::config::WorkerConfig;
use crate::error::Error;
use crate::request::{self, Call, Limits};
use crate::session::{ControlWriter, Session};
use crate::sink::{Discard, Sink, TypedSink};
use crate::stats::{RestartReason, WorkerStats};

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
    generation: u64,
    next_request: u64,
    stats: WorkerStats,
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
    ///     .with_request_timeout(Some(Duration::from_secs(60)))
    ///     .with_hang_timeout(Some(Duration::from_secs(5)));
    /// let worker = Worker::spawn(config)?;
    /// println!("{} offers {:?}", worker.pid().unwrap_or(0), worker.hello().map(|h| &h.commands));
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(config: WorkerConfig) -> Result<Self, Error> {
        let mut worker = Worker {
            config,
            session: None,
            generation: 0,
            next_request: 1,
            stats: WorkerStats::default(),
        };
        worker.start_session()?;
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
        let session = self.ready_session()?;
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
        let limits = Limits {
            timeout: options.timeout.or(self.config.request_timeout),
            hang_timeout: self.config.hang_timeout,
            cancel_grace: self.config.cancel_grace,
            cancel: options.cancel.as_ref(),
        };
        let started = Instant::now();
        let Some(session) = self.session.as_mut() else {
            unreachable!("ready_session returned a session")
        };
        if let Some(token) = &options.cancel {
            token.watch(&session.memory);
        }
        let outcome = request::run(
            session,
            Call { id, command, args },
            sink,
            &limits,
            &mut self.stats,
        );
        if let Some(token) = &options.cancel {
            token.unwatch(&session.memory);
        }
        let full_waits = session.memory.full_waits();
        self.stats.backpressure_waits += full_waits.saturating_sub(session.full_waits_seen);
        session.full_waits_seen = full_waits;
        if outcome.unfinished {
            session.unfinished = Some(id);
        }
        self.stats.requests += 1;
        self.stats.stream_time += started.elapsed();
        if outcome.result.is_err() {
            self.stats.failed_requests += 1;
        }
        if let Some(reason) = outcome.restart {
            self.discard_session(reason);
        }
        outcome.result
    }

    /// The live session, replacing a child that died while idle or still
    /// works on an abandoned request.
    fn ready_session(&mut self) -> Result<&mut Session, Error> {
        let replace = match self.session.as_mut() {
            None => None,
            Some(session) => {
                if session.process.has_exited() {
                    Some(RestartReason::Exited)
                } else if !session.settle(self.config.cancel_grace, &mut self.stats) {
                    Some(RestartReason::StaleRequest)
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
        }
        Ok(self.session.as_mut().expect("session was just started"))
    }

    fn start_session(&mut self) -> Result<(), Error> {
        self.generation += 1;
        self.stats.spawns += 1;
        self.session = Some(Session::start(&self.config, self.generation)?);
        Ok(())
    }

    fn discard_session(&mut self, reason: RestartReason) {
        if let Some(session) = self.session.take() {
            *self.stats.restarts.entry(reason).or_default() += 1;
            drop(session);
        }
    }

    /// Replaces the child with a fresh one now.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.discard_session(RestartReason::Requested);
        self.start_session()
    }

    /// Asks the child to exit, waits up to `grace`, then kills it.
    pub fn shutdown(mut self, grace: Duration) {
        if let Some(mut session) = self.session.take() {
            let _ =
                control::write_frame(&mut ControlWriter(&session.control), &ParentFrame::Shutdown);
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

    /// The current child's pid.
    pub fn pid(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.process.pid())
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
