//! The request loop: attach, handshake, serve one request at a time.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shm_proto::control::{
    self, ChildFrame, DEFAULT_MAX_ROW_BYTES, ENV_GENERATION, ENV_MAX_ROW_BYTES, ENV_PARENT_PID,
    Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION, ParentFrame, RequestFrame,
};
use shm_proto::fork::{self, ENV_TEMPLATE, Forked, TemplateFrame};
use shm_proto::payload::{EndPayload, RuntimeCode};
use shm_proto::{CONTROL_FD, Command, Producer, RING_FD, RecordKind, RecordMeta, RingMemory};

use crate::error::{ChildError, CommandError};
use crate::registry::Registry;
use crate::writer::{RowWriter, TypedRows};

/// Exit code of a worker whose command panicked (after reporting it).
pub const PANIC_EXIT_CODE: i32 = 101;

/// A worker: a name, a version and its commands. Build it in `main`, then
/// [`ChildRuntime::run`].
pub struct ChildRuntime {
    name: String,
    version: String,
    registry: Registry,
    protocol: u32,
    /// The per-row limit: from [`ENV_MAX_ROW_BYTES`] in [`ChildRuntime::run`],
    /// the default otherwise.
    max_row_bytes: u64,
    /// Announce this limit in the handshake instead of the one enforced.
    announced_max_row_bytes: Option<u64>,
    /// How the handshake is sent and what follows it: [`Handshake::Normal`]
    /// except in tests of a supervisor's handshake and control handling.
    handshake: Handshake,
    /// The shared start-up step ([`ChildRuntime::startup`]).
    startup: Option<StartupStep>,
    /// The per-worker start-up step ([`ChildRuntime::worker_start`]).
    worker_start: Option<StartupStep>,
    /// The template's check before each fork ([`ChildRuntime::fork_guard`]).
    fork_guard: Option<ForkGuard>,
}

/// A start-up step, its error turned into a message.
type StartupStep = Box<dyn FnOnce() -> Result<(), String>>;

/// A fork guard: `Err` says why forking now would not be sound.
type ForkGuard = Box<dyn Fn() -> Result<(), String>>;

/// Test hooks for the handshake (see [`ChildRuntime::dribble_hello`] and
/// [`ChildRuntime::deaf_after_hello`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    /// One write of the Hello frame, then serve.
    Normal,
    /// The Hello frame one byte per interval, then serve.
    Dribble(Duration),
    /// The Hello frame, then never read the control channel; beat per interval.
    Deaf(Duration),
}

impl ChildRuntime {
    /// A worker with no commands yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ChildRuntime {
            name: name.into(),
            version: version.into(),
            registry: Registry::default(),
            protocol: PROTOCOL_VERSION,
            max_row_bytes: DEFAULT_MAX_ROW_BYTES,
            announced_max_row_bytes: None,
            handshake: Handshake::Normal,
            startup: None,
            worker_start: None,
            fork_guard: None,
        }
    }

    /// Declares the worker's expensive, shared start-up step (loading an
    /// environment, importing modules). An exec'd worker runs it in
    /// [`ChildRuntime::run`] before its handshake (a failure is reported to
    /// the supervisor as a failed handshake and returned as
    /// [`ChildError::Startup`]). Started as a *template* (the supervisor's
    /// `WorkerConfig::with_template`), the program runs it once and then
    /// forks every worker from that warm state: a restart costs a fork, and
    /// the workers share the template's pages copy-on-write.
    ///
    /// What the step must leave behind for a template to fork safely:
    ///
    /// - **one thread**: the step must not start threads, or must join them
    ///   before it returns (a Lean task manager, a thread pool, a tokio
    ///   runtime); start them in [`ChildRuntime::worker_start`], which runs
    ///   in each worker after the fork. A template with more than one thread
    ///   refuses to fork; the supervisor gets a typed `Error::Template`
    ///   (`MultiThreaded`). Conditions a thread count cannot see (a runtime's
    ///   "started" flag, pending work) belong in a
    ///   [`ChildRuntime::fork_guard`].
    /// - **no fds it expects to own**: every fd open in the template is
    ///   inherited by every worker (only the template's control socket is
    ///   closed and fd 1 / 2 replaced). Files it reads must be read and
    ///   closed, or be read-only mappings.
    /// - **no pending I/O, no locks held, no buffered output**: the runtime
    ///   flushes Rust's stdout and stderr before each fork; C stdio buffers
    ///   and anything else are the step's to flush.
    /// - **no process-global identity**: the pid, the parent and the time of
    ///   the step are the template's; state that must differ per worker is
    ///   made in the command handlers (or lazily, after the fork).
    ///
    /// Each forked worker first closes the template's control socket, puts
    /// its own pipes on fd 1 and 2, sets `PR_SET_PDEATHSIG` and checks its
    /// parent is the supervisor, takes its own process group and limits,
    /// then attaches its ring and sends its handshake like an exec'd worker.
    /// The step's memory is shared copy-on-write; keep it read-mostly.
    pub fn startup<F, E>(mut self, step: F) -> Self
    where
        F: FnOnce() -> Result<(), E> + 'static,
        E: std::fmt::Display,
    {
        self.startup = Some(Box::new(move || step().map_err(|e| e.to_string())));
        self
    }

    /// Declares a step that runs once in every worker process before its
    /// handshake: in an exec'd worker after the [`ChildRuntime::startup`]
    /// step, in a worker forked from a template right after the fork (never
    /// in the template itself). For what must exist once per worker and
    /// cannot cross a fork: threads (a Lean task manager, a thread pool),
    /// per-process identity, seeds.
    ///
    /// A failure is reported like a failed start-up: the supervisor gets
    /// the message in a failed handshake (`Error::Handshake`, a failed start
    /// that counts toward its restart cap), and [`ChildRuntime::run`]
    /// returns [`ChildError::WorkerStart`].
    pub fn worker_start<F, E>(mut self, step: F) -> Self
    where
        F: FnOnce() -> Result<(), E> + 'static,
        E: std::fmt::Display,
    {
        self.worker_start = Some(Box::new(move || step().map_err(|e| e.to_string())));
        self
    }

    /// Declares a check the template runs before every fork, before its own
    /// thread count: `Err(reason)` when forking now would not be sound (the
    /// start-up step left state a copy of the process cannot use, such as a
    /// started task manager whose threads the child would lack). A refusal
    /// forks nothing; the supervisor gets `Error::Template` of class
    /// `ForkGuard` whose reason is `reason`, and the template stays,
    /// answering each fork request anew (a later check may allow it).
    /// Without a template (an exec'd worker) the check never runs.
    pub fn fork_guard<F>(mut self, check: F) -> Self
    where
        F: Fn() -> Result<(), String> + 'static,
    {
        self.fork_guard = Some(Box::new(check));
        self
    }

    /// Sets the per-row limit (rows above it fail with the runtime code
    /// `row_too_large`). [`ChildRuntime::run`] takes it from the supervisor
    /// (environment) instead; for [`ChildRuntime::serve`] in-process.
    pub fn with_max_row_bytes(mut self, bytes: u64) -> Self {
        self.max_row_bytes = bytes;
        self
    }

    /// Announces another per-row limit in the handshake than the one the
    /// supervisor gave: for testing a supervisor's limit check only.
    #[doc(hidden)]
    pub fn announce_max_row_bytes(mut self, bytes: u64) -> Self {
        self.announced_max_row_bytes = Some(bytes);
        self
    }

    /// Announces another protocol version in the handshake: for testing a
    /// supervisor's version check only.
    #[doc(hidden)]
    pub fn announce_protocol(mut self, protocol: u32) -> Self {
        self.protocol = protocol;
        self
    }

    /// Writes the Hello frame one byte every `every`, then serves normally:
    /// for testing a supervisor's handshake timeout against a child that is
    /// slow but not silent only.
    #[doc(hidden)]
    pub fn dribble_hello(mut self, every: Duration) -> Self {
        self.handshake = Handshake::Dribble(every);
        self
    }

    /// Sends a valid Hello, then never reads the control channel again
    /// (requests, shutdown and a closed channel all go unnoticed) while
    /// beating the ring's heartbeat every `beat_every`, until killed: for
    /// testing a supervisor against a child that looks alive but is deaf
    /// only. [`ChildRuntime::run`] and [`ChildRuntime::serve`] then never
    /// return `Ok`.
    #[doc(hidden)]
    pub fn deaf_after_hello(mut self, beat_every: Duration) -> Self {
        self.handshake = Handshake::Deaf(beat_every);
        self
    }

    /// Registers a command (see [`Registry::add`]).
    pub fn command<Req, Sum, F>(mut self, name: &str, description: &str, handler: F) -> Self
    where
        Req: DeserializeOwned,
        Sum: Serialize,
        F: FnMut(Req, &mut RowWriter<'_>) -> Result<Sum, CommandError> + 'static,
    {
        self.registry.add(name, description, handler);
        self
    }

    /// Registers the handler of command `C` (see [`Registry::add_typed`]):
    /// name, request, row and summary types come from `C`, the contract the
    /// supervisor runs it by.
    pub fn command_typed<C: Command>(
        mut self,
        handler: impl FnMut(
            C::Request,
            &mut TypedRows<'_, '_, C::Row>,
        ) -> Result<C::Summary, CommandError>
        + 'static,
    ) -> Self {
        self.registry.add_typed::<C>(handler);
        self
    }

    /// Registers the handler of command `C` whose rows are written as bytes
    /// (see [`Registry::add_typed_raw`]): the contract is announced as for
    /// [`ChildRuntime::command_typed`], and the rows must be `C::Row`'s JSON.
    pub fn command_typed_raw<C: Command>(
        mut self,
        handler: impl FnMut(C::Request, &mut RowWriter<'_>) -> Result<C::Summary, CommandError>
        + 'static,
    ) -> Self {
        self.registry.add_typed_raw::<C>(handler);
        self
    }

    /// Runs as a child of a ringworker supervisor: guards against outliving
    /// the parent, takes over the inherited ring and control fds, sends the
    /// handshake and serves requests until the supervisor says shutdown or
    /// closes the control channel.
    ///
    /// Started as a warm template (the supervisor sets
    /// [`ENV_TEMPLATE`](shm_proto::fork::ENV_TEMPLATE)), it runs the
    /// [`ChildRuntime::startup`] step once and then forks a worker per
    /// request of the supervisor; this returns in each forked worker as it
    /// does in an exec'd one, and in the template when the supervisor closes
    /// its channel.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ringworker_child::{ChildRuntime, CommandError, RowWriter};
    ///
    /// fn count(n: u64, out: &mut RowWriter<'_>) -> Result<u64, CommandError> {
    ///     for i in 0..n {
    ///         out.row(0, &i.to_le_bytes())?; // raw bytes, copied into the ring
    ///     }
    ///     Ok(n)
    /// }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     match ChildRuntime::new("counter", "1.0.0").command("count", "n rows", count).run() {
    ///         Ok(()) => std::process::ExitCode::SUCCESS,
    ///         Err(err) => {
    ///             eprintln!("counter: {err}");
    ///             std::process::ExitCode::from(2)
    ///         }
    ///     }
    /// }
    /// ```
    pub fn run(mut self) -> Result<(), ChildError> {
        guard_parent()?;
        if let Some(limit) = std::env::var(ENV_MAX_ROW_BYTES)
            .ok()
            .and_then(|v| v.parse().ok())
        {
            self.max_row_bytes = limit;
        }
        if std::env::var_os(ENV_TEMPLATE).is_some_and(|v| v == "1") {
            return self.run_template();
        }
        let ring = shm_proto::take_inherited(RING_FD).map_err(|source| ChildError::MissingFd {
            fd: RING_FD,
            source,
        })?;
        let mut control = inherited_control()?;
        if let Some(step) = self.startup.take()
            && let Err(message) = step()
        {
            let fatal = ChildFrame::Fatal {
                message: format!("start-up failed: {message}"),
            };
            let _ = control::write_frame(&mut control, &fatal);
            return Err(ChildError::Startup { message });
        }
        self.start_worker(&mut control)?;
        let generation = std::env::var(ENV_GENERATION)
            .ok()
            .and_then(|g| g.parse().ok());
        self.attach_and_serve(ring, control, generation)
    }

    /// Runs the [`ChildRuntime::worker_start`] step, if any; a failure is
    /// sent to the supervisor as the handshake's fatal error.
    fn start_worker(&mut self, control: &mut UnixStream) -> Result<(), ChildError> {
        if let Some(step) = self.worker_start.take()
            && let Err(message) = step()
        {
            let fatal = ChildFrame::Fatal {
                message: format!("worker start failed: {message}"),
            };
            let _ = control::write_frame(control, &fatal);
            return Err(ChildError::WorkerStart { message });
        }
        Ok(())
    }

    fn attach_and_serve(
        self,
        ring: OwnedFd,
        mut control: UnixStream,
        generation: Option<u64>,
    ) -> Result<(), ChildError> {
        let memory = match RingMemory::attach(ring, generation) {
            Ok(memory) => Arc::new(memory),
            Err(err) => {
                let fatal = ChildFrame::Fatal {
                    message: format!("cannot attach ring: {err}"),
                };
                let _ = control::write_frame(&mut control, &fatal);
                return Err(err.into());
            }
        };
        self.serve(memory, control)
    }

    /// Template mode: runs the start-up step once, then forks a worker per
    /// request of the supervisor; returns in each forked worker as
    /// [`ChildRuntime::run`] returns in an exec'd one (after serving), and
    /// in the template when the supervisor closes the channel.
    fn run_template(mut self) -> Result<(), ChildError> {
        let mut control = inherited_control()?;
        if let Some(step) = self.startup.take()
            && let Err(message) = step()
        {
            let failed = TemplateFrame::Failed {
                message: message.clone(),
            };
            let _ = control::write_frame(&mut control, &failed);
            return Err(ChildError::Startup { message });
        }
        let ready = TemplateFrame::Ready {
            pid: std::process::id(),
        };
        control::write_frame(&mut control, &ready)?;
        loop {
            let Some((request, fds)) = fork::recv_fork_request(control.as_fd())
                .map_err(|source| control::FrameError::Io { source })?
            else {
                return Ok(());
            };
            // The backend's own conditions first: its reason says more than
            // a thread count would (a started task manager is also threads).
            if let Some(guard) = &self.fork_guard
                && let Err(reason) = guard()
            {
                drop(fds);
                let refused = TemplateFrame::Refused {
                    threads: 0,
                    reason,
                    guard: true,
                };
                control::write_frame(&mut control, &refused)?;
                continue;
            }
            // Nothing buffered may be written twice (once by each process).
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            let reply = match fork::fork_worker(OwnedFd::from(control), fds, &request) {
                Ok(Forked::Template {
                    pid,
                    control: back,
                    gate,
                }) => {
                    control = UnixStream::from(back);
                    control::write_frame(&mut control, &TemplateFrame::Forked { pid })?;
                    // Lets the forked process go on.
                    drop(gate);
                    continue;
                }
                Ok(Forked::Worker { ring, control }) => {
                    self.max_row_bytes = request.max_row_bytes;
                    let mut control = UnixStream::from(control);
                    self.start_worker(&mut control)?;
                    return self.attach_and_serve(ring, control, Some(request.generation));
                }
                Err((error, back)) => {
                    control = UnixStream::from(back);
                    let threads = match error {
                        fork::ForkError::MultiThreaded { threads } => threads as u64,
                        _ => 0,
                    };
                    TemplateFrame::Refused {
                        threads,
                        reason: error.to_string(),
                        guard: false,
                    }
                }
            };
            control::write_frame(&mut control, &reply)?;
        }
    }

    /// Serves requests over an already attached ring and control channel.
    pub fn serve(
        mut self,
        memory: Arc<RingMemory>,
        mut control: UnixStream,
    ) -> Result<(), ChildError> {
        let mut producer = Producer::new(memory.clone())?;
        producer.set_max_row_bytes(self.max_row_bytes);
        let hello = ChildFrame::Hello(
            Hello::new(
                self.name.clone(),
                self.version.clone(),
                memory.generation(),
                std::process::id(),
                self.registry.infos(),
            )
            .with_protocol(self.protocol)
            .with_max_row_bytes(self.announced_max_row_bytes.unwrap_or(self.max_row_bytes)),
        );
        match self.handshake {
            Handshake::Normal => {
                control::write_frame(&mut control, &hello)?;
                // Off the start-up path: the supervisor has its handshake.
                memory.prefault();
            }
            Handshake::Dribble(every) => {
                let mut frame = Vec::new();
                control::write_frame(&mut frame, &hello)?;
                for byte in frame {
                    std::thread::sleep(every);
                    control
                        .write_all(&[byte])
                        .map_err(|source| control::FrameError::Io { source })?;
                }
            }
            Handshake::Deaf(beat_every) => {
                control::write_frame(&mut control, &hello)?;
                // `control` stays open and unread: the supervisor's writes
                // fill the socket buffer and then block or fail on its side.
                loop {
                    producer.beat();
                    std::thread::sleep(beat_every);
                }
            }
        }
        loop {
            match control::read_frame::<_, ParentFrame>(&mut control, MAX_FRAME_BYTES) {
                Ok(ParentFrame::Request(request)) => {
                    // Before anything that can fail or run long (decoding the
                    // arguments, an unknown command, the command itself): from
                    // here on a death is a death while running this request.
                    producer.accept(request.id);
                    self.handle(request, &mut producer)?
                }
                Ok(ParentFrame::Shutdown) => {
                    producer.close();
                    return Ok(());
                }
                // Closed, or reset by a supervisor that died with a frame of
                // ours unread: gone all the same.
                Err(e) if e.is_closed() => {
                    producer.close();
                    return Ok(());
                }
                Ok(other) => {
                    // A frame of a newer protocol slipped past the handshake's
                    // version check: the supervisor is broken, stop serving.
                    return Err(ChildError::Control(control::FrameError::Unexpected {
                        frame: format!("{other:?}"),
                    }));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    fn handle(&mut self, request: RequestFrame, producer: &mut Producer) -> Result<(), ChildError> {
        producer.beat();
        let id = request.id;
        let outcome = match self.registry.handler(&request.command) {
            None => Err(CommandError::runtime(
                RuntimeCode::UnknownCommand,
                format!("no command named {:?}", request.command),
            )),
            Some(handler) => {
                let mut writer = RowWriter::new(producer, id);
                match catch_unwind(AssertUnwindSafe(|| handler(&request.args, &mut writer))) {
                    // A large reserved row whose commit failed (cancelled,
                    // ring closed) fails a request its command ended `Ok`.
                    Ok(outcome) => match writer.take_deferred_error() {
                        Some(err) if outcome.is_ok() => Err(err),
                        _ => outcome,
                    },
                    Err(panic) => {
                        let message = panic_message(&*panic);
                        let failure = CommandError::runtime(RuntimeCode::Panic, message);
                        // Best effort: the worker's state is suspect after a
                        // panic, so it reports and exits instead of serving on.
                        let _ = write_end(producer, id, Err(failure));
                        producer.flush();
                        std::process::exit(PANIC_EXIT_CODE);
                    }
                }
            }
        };
        write_end(producer, id, outcome)?;
        producer.flush();
        Ok(())
    }
}

fn write_end(
    producer: &mut Producer,
    request: u64,
    outcome: Result<Box<serde_json::value::RawValue>, CommandError>,
) -> Result<(), ChildError> {
    // The outcome is the payload alone; the header's flags stay 0 (no reader
    // would look at a bit that repeats the payload).
    let payload = match outcome {
        Ok(summary) => EndPayload::Ok(summary),
        Err(err) => EndPayload::Err(err.into_failure()),
    };
    let meta = RecordMeta::of_kind(RecordKind::End, request);
    match producer.push_json(meta, &payload) {
        // A summary (or failure message) larger than one record: the
        // request fails with a typed code instead of the worker dying.
        Err(shm_proto::RingError::RecordTooLarge { len, max }) => {
            let failure = CommandError::runtime(
                RuntimeCode::RecordTooLarge,
                format!(
                    "the end marker ({len} bytes) is larger than the ring's maximum record ({max} bytes)"
                ),
            );
            producer.push_json(meta, &EndPayload::Err(failure.into_failure()))?;
        }
        other => {
            other?;
        }
    }
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "command panicked".to_owned()
    }
}

/// Asks for SIGKILL when the parent dies, then checks the parent is still
/// the supervisor that started us (it may have died before the request).
fn guard_parent() -> Result<(), ChildError> {
    let Some(expected) = std::env::var(ENV_PARENT_PID)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return Ok(());
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
    if parent != Some(expected) {
        return Err(ChildError::Orphaned { expected });
    }
    Ok(())
}

/// The control socket the supervisor placed on [`CONTROL_FD`].
fn inherited_control() -> Result<UnixStream, ChildError> {
    shm_proto::take_inherited(CONTROL_FD)
        .map(UnixStream::from)
        .map_err(|source| ChildError::MissingFd {
            fd: CONTROL_FD,
            source,
        })
}
