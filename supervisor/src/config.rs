//! How to start a worker, how long to wait for it, and its limits.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::policy::{MemoryLimits, RestartPolicy};

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
    /// Absolute deadline of a new child's start: spawn plus handshake
    /// (default 10 s). `Duration::MAX`: none.
    pub startup_timeout: Duration,
    /// Default deadline of a request (default 30 s; see
    /// [`WorkerConfig::long_running`]). `Duration::MAX`: none.
    pub request_timeout: Duration,
    /// A running request whose child shows no heartbeat and delivers nothing
    /// for this long is declared hung and killed (default 30 s).
    /// `Duration::MAX`: never.
    pub hang_timeout: Duration,
    /// How long a cancelled request may take to end before its child is
    /// killed (default 2 s). Zero: kill at once.
    pub cancel_grace: Duration,
    /// How long the child may take to accept a request on its control
    /// channel (default 5 s). A child that does not is replaced and the
    /// request, which it never saw, goes to the fresh one.
    pub control_timeout: Duration,
    /// Bytes of the child's stdout and of its stderr kept for error reports.
    pub output_tail_bytes: usize,
    /// Memory limits.
    pub memory: MemoryLimits,
    /// When children are replaced besides their failures.
    pub restart: RestartPolicy,
    /// Run each child under a containment shim so its whole process tree
    /// (grandchildren that called `setsid` included) dies with it (default
    /// on; see `ARCHITECTURE.md`, "Process tree"). Off: the child still gets
    /// its own process group, which is killed with it.
    pub contain_tree: bool,
    /// Set by a [`Pool`](crate::Pool) for each of its workers: the slot its
    /// children's memory samples take in the pool's budget.
    pub(crate) pool_slot: Option<crate::pool::budget::BudgetSlot>,
    /// Warm templates (default off): start one template process per
    /// distinct start-up (program, arguments, environment, working
    /// directory) in this process, which runs the worker's start-up step
    /// (`ChildRuntime::startup`) once, and fork every child from it instead
    /// of exec'ing the program: a restart costs a fork, and the children
    /// share the template's memory copy-on-write. Forked children are the
    /// supervisor's children, under the containment shim when
    /// `contain_tree`; their memory limits exclude the template's pages.
    /// The template's start-up counts against the `startup_timeout` of the
    /// child that needed it: set it to cover the import. See
    /// `ARCHITECTURE.md`, "Warm templates".
    pub template: bool,
}

impl WorkerConfig {
    /// Defaults: 4 MiB ring, 256 KiB records, 256 MiB rows, 10 s startup,
    /// 30 s request deadline, 30 s hang detection, 2 s cancel grace, 5 s
    /// control timeout, 64 KiB output tails, no memory limits, the default
    /// [`RestartPolicy`], tree containment on.
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
            request_timeout: Duration::from_secs(30),
            hang_timeout: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(2),
            control_timeout: Duration::from_secs(5),
            output_tail_bytes: 64 << 10,
            memory: MemoryLimits::default(),
            restart: RestartPolicy::default(),
            contain_tree: true,
            pool_slot: None,
            template: false,
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

    /// The long-running profile: no request deadline, hang detection kept.
    /// For exports and mining runs that take hours: the child must then beat
    /// (any row, progress record or `RowWriter::beat` does) at least once per
    /// `hang_timeout`, and a caller that wants to stop it cancels.
    pub fn long_running(mut self) -> Self {
        self.request_timeout = Duration::MAX;
        self
    }

    /// Sets the startup (handshake) timeout.
    pub fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Sets the default request deadline (`Duration::MAX`: none).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets hang detection (`Duration::MAX`: never).
    pub fn with_hang_timeout(mut self, timeout: Duration) -> Self {
        self.hang_timeout = timeout;
        self
    }

    /// Sets the cancel grace period.
    pub fn with_cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// Sets the control timeout.
    pub fn with_control_timeout(mut self, timeout: Duration) -> Self {
        self.control_timeout = timeout;
        self
    }

    /// Sets the memory limits.
    pub fn with_memory(mut self, memory: MemoryLimits) -> Self {
        self.memory = memory;
        self
    }

    /// Sets the restart policy.
    pub fn with_restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Turns tree containment on or off.
    pub fn with_contain_tree(mut self, contain: bool) -> Self {
        self.contain_tree = contain;
        self
    }

    /// Turns warm templates on or off (see [`WorkerConfig::template`]).
    pub fn with_template(mut self, template: bool) -> Self {
        self.template = template;
        self
    }

    /// Checks what can be checked without starting anything: a zero
    /// deadline is a mistake (`Duration::MAX` is the way to say "none").
    pub fn validate(&self) -> Result<(), Error> {
        let nonzero = [
            ("startup_timeout", self.startup_timeout),
            ("request_timeout", self.request_timeout),
            ("hang_timeout", self.hang_timeout),
            ("control_timeout", self.control_timeout),
            ("memory.sample_interval", self.memory.sample_interval),
            ("restart.restart_window", self.restart.restart_window),
        ];
        for (field, value) in nonzero {
            if value.is_zero() {
                return Err(Error::Config {
                    field,
                    reason: "zero; use Duration::MAX for no limit".into(),
                });
            }
        }
        if self.program.as_os_str().is_empty() {
            return Err(Error::Config {
                field: "program",
                reason: "empty".into(),
            });
        }
        if let (Some(soft), Some(hard)) = (self.memory.soft_rss, self.memory.hard_rss)
            && soft > hard
        {
            return Err(Error::Config {
                field: "memory.soft_rss",
                reason: format!("{soft} is above the hard limit {hard}"),
            });
        }
        Ok(())
    }

    /// Sets how many bytes of the child's stdout and of its stderr are kept.
    pub fn with_output_tail_bytes(mut self, bytes: usize) -> Self {
        self.output_tail_bytes = bytes;
        self
    }
}
