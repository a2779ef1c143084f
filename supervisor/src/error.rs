//! The supervisor's error type: one variant per failure class, each with the
//! facts a caller needs (rows delivered before the failure, exit status,
//! the child's last output), and [`ErrorKind`] to classify them.

use std::path::PathBuf;
use std::time::Duration;

use shm_proto::RingError;
use shm_proto::control::FrameError;
use shm_proto::payload::FailureCode;

use crate::memory::RssSample;
use crate::stats::RestartReason;

/// The last bytes a child wrote to stdout and stderr before it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputTail {
    /// End of stdout (lossy UTF-8).
    pub stdout: String,
    /// End of stderr (lossy UTF-8).
    pub stderr: String,
}

impl std::fmt::Display for OutputTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stderr = self.stderr.trim_end();
        if stderr.is_empty() {
            return Ok(());
        }
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        write!(f, "; stderr ends: ")?;
        for (i, line) in last.iter().rev().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{}", line.chars().take(200).collect::<String>())?;
        }
        Ok(())
    }
}

/// A failed supervisor operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (ring geometry, a zero timeout, ...).
    #[error("invalid worker configuration: {field}: {reason}")]
    Config {
        /// The setting at fault (`WorkerConfig` field or request option).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The ring could not be created (memory, fds).
    #[error("cannot create the ring: {source}")]
    RingSetup {
        /// The ring's error.
        #[source]
        source: RingError,
    },
    /// The child process could not be started.
    #[error("cannot start worker {program:?}: {source}")]
    Spawn {
        /// The executable.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The child sent no handshake within the startup timeout.
    #[error("worker sent no handshake within {waited:?}{output}")]
    StartupTimeout {
        /// How long we waited.
        waited: Duration,
        /// Its last output.
        output: OutputTail,
    },
    /// The handshake failed: the child exited, sent garbage or reported a
    /// fatal error before serving.
    #[error("worker handshake failed: {reason}{output}")]
    Handshake {
        /// What went wrong.
        reason: String,
        /// Its last output.
        output: OutputTail,
    },
    /// The child speaks another protocol version.
    #[error("worker speaks protocol {found}, this supervisor speaks {expected}")]
    VersionMismatch {
        /// Our version.
        expected: u32,
        /// The child's.
        found: u32,
    },
    /// The child announced another per-row limit in its handshake than the
    /// one it was given ([`WorkerConfig::max_row_bytes`](crate::WorkerConfig::max_row_bytes)).
    #[error("worker announced a per-row limit of {found} bytes, configured {expected}")]
    RowLimitMismatch {
        /// The configured limit.
        expected: u64,
        /// The child's.
        found: u64,
    },
    /// The worker does not offer the requested command (checked against its
    /// handshake, nothing is sent).
    #[error("worker has no command {command:?} (it offers {available:?})")]
    UnknownCommand {
        /// The name asked for.
        command: String,
        /// What the worker offers.
        available: Vec<String>,
    },
    /// The request's arguments could not be serialized.
    #[error("cannot encode request: {source}")]
    EncodeRequest {
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The request frame is larger than the control channel's frame limit;
    /// nothing was sent.
    #[error("request of {bytes} bytes is over the control frame limit of {max} bytes")]
    RequestTooLarge {
        /// Encoded size of the request frame.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The control channel failed while sending a request.
    #[error("control channel failed: {source}")]
    Control {
        /// The framing error.
        #[source]
        source: FrameError,
    },
    /// The child broke the protocol (malformed end, progress or diagnostic
    /// record); it was killed.
    #[error("worker broke the protocol: {detail} ({rows_delivered} rows delivered)")]
    Protocol {
        /// What was wrong.
        detail: String,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// The ring's shared memory failed validation; the child was killed.
    #[error("ring corrupted by the worker: {source} ({rows_delivered} rows delivered)")]
    RingCorrupt {
        /// The validation failure.
        #[source]
        source: RingError,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// The child exited during a request.
    #[error(
        "worker exited with code {code} during the request ({rows_delivered} rows delivered){output}"
    )]
    ChildExited {
        /// Exit code.
        code: i32,
        /// Rows delivered before.
        rows_delivered: u64,
        /// Its last output.
        output: OutputTail,
    },
    /// The child was killed by a signal it did not get from us.
    #[error(
        "worker killed by signal {signal} during the request ({rows_delivered} rows delivered){output}"
    )]
    ChildKilled {
        /// Signal number.
        signal: i32,
        /// Rows delivered before.
        rows_delivered: u64,
        /// Its last output.
        output: OutputTail,
    },
    /// The request passed its deadline; the child was killed.
    #[error("request timed out after {after:?} ({rows_delivered} rows delivered)")]
    Timeout {
        /// The deadline.
        after: Duration,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// The child showed no sign of life (heartbeat, rows) for the hang
    /// timeout; it was killed.
    #[error(
        "worker hung: no heartbeat or rows for {silent_for:?} ({rows_delivered} rows delivered)"
    )]
    Hung {
        /// How long it was silent.
        silent_for: Duration,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// The request was cancelled; `killed` if the child ignored the cancel
    /// flag past the grace period.
    #[error("request cancelled ({rows_delivered} rows delivered{})", if *killed { ", worker killed" } else { "" })]
    Cancelled {
        /// Rows delivered before the cancellation took effect.
        rows_delivered: u64,
        /// Whether the child had to be killed.
        killed: bool,
    },
    /// The child's anonymous memory passed the hard limit while a request
    /// ran; the watchdog killed it.
    #[error(
        "worker killed at {} MiB of anonymous memory, over its hard limit of {} MiB ({rows_delivered} rows delivered)",
        sample.limited() >> 20, limit >> 20
    )]
    MemoryLimit {
        /// The sample that tripped the limit.
        sample: RssSample,
        /// The hard limit in bytes.
        limit: u64,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// The pool's total anonymous memory passed its budget while this
    /// job's request ran, and its child had the largest sample; the
    /// watchdog killed it ([`PoolConfig::total_rss_budget`](crate::PoolConfig::total_rss_budget)).
    #[error(
        "worker killed at {} MiB of anonymous memory: the pool was at {} MiB, over its budget of {} MiB ({rows_delivered} rows delivered)",
        sample.rss_anon >> 20, total >> 20, budget >> 20
    )]
    PoolMemoryBudget {
        /// The killed child's sample.
        sample: RssSample,
        /// The pool's sum of samples that passed the budget.
        total: u64,
        /// The budget in bytes.
        budget: u64,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// No pool worker took the job within the queue timeout (from its
    /// submission), or a blocking `submit` found no room in the queue in
    /// that time.
    #[error("no pool worker took the job within {waited:?}")]
    QueueTimeout {
        /// How long it waited.
        waited: Duration,
    },
    /// The pool's queue is full (`WhenFull::Fail`).
    #[error("the pool's job queue is full ({depth} jobs waiting)")]
    QueueFull {
        /// The queue's depth.
        depth: usize,
    },
    /// The pool was shut down or dropped before the job started.
    #[error("the pool was closed before the job started")]
    PoolClosed,
    /// Children were replaced too often: more than the restart policy's
    /// `max_restarts` within its `restart_window`. Requests fail fast with
    /// this error until the window has passed.
    #[error(
        "worker restarted {restarts} times within {window:?} (last: {last:?}); failing fast for {retry_after:?}"
    )]
    RestartLimit {
        /// Restarts counted within the window.
        restarts: usize,
        /// The policy's window.
        window: Duration,
        /// The reason of the last restart.
        last: Option<RestartReason>,
        /// When requests will be tried again.
        retry_after: Duration,
    },
    /// The sink panicked; the request was abandoned, the worker stays usable.
    #[error("sink panicked: {message} ({rows_delivered} rows delivered)")]
    SinkPanicked {
        /// The panic message.
        message: String,
        /// Rows delivered before (excluding the one that panicked).
        rows_delivered: u64,
    },
    /// The sink returned an error; the request was abandoned.
    #[error("sink failed: {source} ({rows_delivered} rows delivered)")]
    Sink {
        /// The sink's error.
        #[source]
        source: crate::sink::SinkError,
        /// Rows delivered before (excluding the failing one).
        rows_delivered: u64,
    },
    /// The command failed with a typed error: its own code, or a runtime
    /// code other than panic and cancellation (bad request, unknown
    /// command, ...). The child stays.
    #[error("worker command failed: {code}: {message} ({rows_delivered} rows delivered)")]
    Worker {
        /// The failure's code.
        code: FailureCode,
        /// Its message.
        message: String,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// The command panicked inside the child (the child then exits).
    #[error("worker command panicked: {message} ({rows_delivered} rows delivered)")]
    WorkerPanicked {
        /// The panic message.
        message: String,
        /// Rows delivered before.
        rows_delivered: u64,
    },
    /// A warm template (see
    /// [`WorkerConfig::with_template`](crate::WorkerConfig::with_template))
    /// could not start or could not fork a worker.
    #[error("worker template failed ({class}): {reason}{output}")]
    Template {
        /// What failed.
        class: TemplateClass,
        /// The template's (or the kernel's) message.
        reason: String,
        /// The template's last output.
        output: OutputTail,
    },
    /// The summary did not decode into the expected type.
    #[error("cannot decode the worker's summary: {source}")]
    DecodeSummary {
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// What failed in a warm template ([`Error::Template`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TemplateClass {
    /// Its start-up step returned an error (the template exited).
    StartupFailed,
    /// It had more than one thread when asked to fork, and refused (it
    /// stays, refusing every fork).
    MultiThreaded {
        /// Threads it counted.
        threads: u64,
    },
    /// The worker program's fork guard (`ChildRuntime::fork_guard` in
    /// `ringworker-child`) refused: its start-up state cannot be forked now
    /// (for a Lean worker: the task manager was started, a task is
    /// pending); the reason is the guard's. The template stays, answering
    /// each fork anew.
    ForkGuard,
    /// The fork itself failed in the template (the kernel refused).
    ForkFailed,
    /// The template exited before it was ready or while forking.
    Exited,
    /// The template answered something unexpected.
    Protocol,
}

impl std::fmt::Display for TemplateClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateClass::StartupFailed => write!(f, "start-up failed"),
            TemplateClass::MultiThreaded { threads } => {
                write!(f, "multi-threaded: {threads} threads")
            }
            TemplateClass::ForkGuard => write!(f, "refused by the worker's fork guard"),
            TemplateClass::ForkFailed => write!(f, "fork failed"),
            TemplateClass::Exited => write!(f, "exited"),
            TemplateClass::Protocol => write!(f, "protocol"),
        }
    }
}

/// Coarse classes of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something impossible; fix the call.
    Usage,
    /// A worker could not be started or did not handshake.
    Startup,
    /// The child died or broke the protocol or the ring.
    Crash,
    /// A deadline passed (timeout or hang).
    Timeout,
    /// The request was cancelled.
    Cancelled,
    /// The caller's sink failed.
    Sink,
    /// The command reported a failure of its own.
    Worker,
    /// The OS refused a resource.
    System,
    /// The child breached a resource limit (memory) and was killed.
    Resource,
    /// The worker fails fast (restart intensity cap), or the pool had no
    /// room or no free worker in time: retry later.
    Unavailable,
    /// The pool was closed before the job ran.
    Closed,
}

impl Error {
    /// Classifies this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. }
            | Error::UnknownCommand { .. }
            | Error::EncodeRequest { .. }
            | Error::RequestTooLarge { .. }
            | Error::DecodeSummary { .. } => ErrorKind::Usage,
            Error::RingSetup { .. } => ErrorKind::System,
            Error::Spawn { .. }
            | Error::StartupTimeout { .. }
            | Error::Handshake { .. }
            | Error::VersionMismatch { .. }
            | Error::RowLimitMismatch { .. }
            | Error::Template { .. } => ErrorKind::Startup,
            Error::Control { .. }
            | Error::Protocol { .. }
            | Error::RingCorrupt { .. }
            | Error::ChildExited { .. }
            | Error::ChildKilled { .. }
            | Error::WorkerPanicked { .. } => ErrorKind::Crash,
            Error::Timeout { .. } | Error::Hung { .. } => ErrorKind::Timeout,
            Error::MemoryLimit { .. } | Error::PoolMemoryBudget { .. } => ErrorKind::Resource,
            Error::QueueTimeout { .. } | Error::QueueFull { .. } => ErrorKind::Unavailable,
            Error::PoolClosed => ErrorKind::Closed,
            Error::RestartLimit { .. } => ErrorKind::Unavailable,
            Error::Cancelled { .. } => ErrorKind::Cancelled,
            Error::SinkPanicked { .. } | Error::Sink { .. } => ErrorKind::Sink,
            Error::Worker { .. } => ErrorKind::Worker,
        }
    }

    /// Rows delivered to the sink before the failure, for errors that end a
    /// running request.
    pub fn rows_delivered(&self) -> Option<u64> {
        match self {
            Error::Protocol { rows_delivered, .. }
            | Error::RingCorrupt { rows_delivered, .. }
            | Error::ChildExited { rows_delivered, .. }
            | Error::ChildKilled { rows_delivered, .. }
            | Error::Timeout { rows_delivered, .. }
            | Error::MemoryLimit { rows_delivered, .. }
            | Error::PoolMemoryBudget { rows_delivered, .. }
            | Error::Hung { rows_delivered, .. }
            | Error::Cancelled { rows_delivered, .. }
            | Error::SinkPanicked { rows_delivered, .. }
            | Error::Sink { rows_delivered, .. }
            | Error::Worker { rows_delivered, .. }
            | Error::WorkerPanicked { rows_delivered, .. } => Some(*rows_delivered),
            _ => None,
        }
    }
}
