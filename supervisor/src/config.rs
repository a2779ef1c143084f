//! How to start a worker and how long to wait for it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`Worker::spawn`](crate::Worker::spawn) needs. Build with
/// [`WorkerConfig::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Executable of the worker.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables (the supervisor's environment is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, if not the supervisor's.
    pub cwd: Option<PathBuf>,
    /// Ring data capacity in bytes (a power of two).
    pub ring_capacity: usize,
    /// Largest ring record payload in bytes; at most `ring_capacity / 8 - 16`.
    /// Rows up to this length are one record (borrowed by the sink); longer
    /// rows travel as fragments, up to `max_row_bytes`.
    pub max_record: usize,
    /// Largest row in bytes (default 256 MiB): passed to the child at spawn,
    /// echoed in its handshake (a mismatch fails the start), enforced by the
    /// child (its write fails with `row_too_large`) and by the supervisor
    /// (a fragmented row announced above it is a protocol error). The
    /// supervisor's reassembly buffer is bounded by it. At least
    /// `max_record`.
    pub max_row_bytes: u64,
    /// How long a new child may take to send its handshake.
    pub startup_timeout: Duration,
    /// Default deadline of a request (none: unbounded).
    pub request_timeout: Option<Duration>,
    /// A running request whose child shows no heartbeat and delivers nothing
    /// for this long is declared hung and killed (none: never).
    pub hang_timeout: Option<Duration>,
    /// How long a cancelled request may take to end before its child is killed.
    pub cancel_grace: Duration,
    /// Bytes of the child's stdout and of its stderr kept for error reports.
    pub output_tail_bytes: usize,
}

impl WorkerConfig {
    /// Defaults: 4 MiB ring, 256 KiB records, 256 MiB rows, 10 s startup, no request
    /// deadline, 30 s hang detection, 2 s cancel grace, 64 KiB output tails.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        WorkerConfig {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            ring_capacity: 4 << 20,
            max_record: 256 << 10,
            max_row_bytes: shm_proto::control::DEFAULT_MAX_ROW_BYTES,
            startup_timeout: Duration::from_secs(10),
            request_timeout: None,
            hang_timeout: Some(Duration::from_secs(30)),
            cancel_grace: Duration::from_secs(2),
            output_tail_bytes: 64 << 10,
        }
    }

    /// Appends arguments.
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Sets the ring capacity and the largest record payload.
    pub fn with_ring(mut self, capacity: usize, max_record: usize) -> Self {
        self.ring_capacity = capacity;
        self.max_record = max_record;
        self
    }

    /// Sets the largest row (see [`WorkerConfig::max_row_bytes`]).
    pub fn with_max_row_bytes(mut self, bytes: u64) -> Self {
        self.max_row_bytes = bytes;
        self
    }

    /// Sets the startup (handshake) timeout.
    pub fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Sets the default request deadline.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets hang detection.
    pub fn with_hang_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.hang_timeout = timeout;
        self
    }

    /// Sets the cancel grace period.
    pub fn with_cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// Sets how many bytes of the child's stdout and of its stderr are kept.
    pub fn with_output_tail_bytes(mut self, bytes: usize) -> Self {
        self.output_tail_bytes = bytes;
        self
    }
}
