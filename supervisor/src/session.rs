//! One generation of a worker's child: its process, ring, control channel
//! and handshake.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use shm_proto::control::{
    self, ChildFrame, ENV_GENERATION, ENV_MAX_ROW_BYTES, ENV_PARENT_PID, Hello, MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use shm_proto::fork::{ENV_TEMPLATE, ForkRequest};
use shm_proto::{
    CONTROL_FD, ChildFds, Consumer, ConsumerRemote, RING_FD, Readiness, RecordKind, RingConfig,
    RingMemory, Rlimit,
};

use crate::config::WorkerConfig;
use crate::error::Error;
use crate::process::{ChildProcess, Exit, WatchPlan};
use crate::stats::WorkerStats;
use crate::template::Template;
use crate::watchdog::RssConfig;

/// A live child after a successful handshake.
pub(crate) struct Session {
    // Field order is drop order: the consumer and ring go before the process
    // is killed and reaped, the control socket last.
    pub(crate) consumer: Consumer,
    /// The consumer's remote: cancel word, poison, wakes and the child's
    /// counters (the ring's mapping itself is owned through `consumer`).
    pub(crate) memory: ConsumerRemote,
    pub(crate) process: ChildProcess,
    pub(crate) control: UnixStream,
    pub(crate) hello: Hello,
    /// A request abandoned (sink failure) whose end marker has not been seen;
    /// its remaining records are discarded before the next request.
    pub(crate) unfinished: Option<u64>,
    /// The ring's full-wait counter already added to the stats.
    pub(crate) full_waits_seen: u64,
    /// Private copy of the last progress, diagnostic or end payload: what the
    /// supervisor parses itself is never parsed out of shared memory (see
    /// `request::release_into`). Reused across records and requests.
    pub(crate) scratch: Vec<u8>,
    /// Requests sent to this child.
    pub(crate) requests: u64,
    /// Bytes of the ring's data area.
    pub(crate) ring_capacity: u64,
    /// The watchdog's memory-sample counters already added to the stats.
    pub(crate) rss_seen: (u64, u64),
    /// Forked from a warm template (not exec'd), and whether the template
    /// had to be started again for it: counted in the stats by the worker
    /// that takes the session.
    pub(crate) forked: bool,
    pub(crate) template_respawned: bool,
}

impl Session {
    /// Creates the ring, starts the child with the ring on fd 3 and the
    /// control socket on fd 4 (or, with `template`, has the template fork it
    /// with these fds), and waits for its handshake.
    pub(crate) fn start(
        config: &WorkerConfig,
        generation: u64,
        prepared: Option<RingMemory>,
        template: Option<&Arc<Template>>,
    ) -> Result<Session, Error> {
        let started = Instant::now();
        // Absolute: spawn, exec and handshake together.
        let deadline = started.checked_add(config.startup_timeout);
        config.validate()?;
        let ring = ring_config(config, generation);
        ring.validate().map_err(|e| Error::Config {
            field: "ring_capacity",
            reason: e.to_string(),
        })?;
        if config.max_row_bytes < config.max_record as u64 {
            // Rows up to a record are never fragmented, so never checked
            // against a smaller limit.
            return Err(Error::Config {
                field: "max_row_bytes",
                reason: format!(
                    "max_row_bytes ({}) is smaller than max_record ({})",
                    config.max_row_bytes, config.max_record
                ),
            });
        }
        let memory = match prepared {
            Some(memory)
                if memory.generation() == generation
                    && memory.capacity() == config.ring_capacity
                    && memory.max_payload() == config.max_record =>
            {
                memory
            }
            _ => RingMemory::create(&ring).map_err(|source| Error::RingSetup { source })?,
        };
        let memory = Arc::new(memory);
        let consumer =
            Consumer::new(Arc::clone(&memory)).map_err(|source| Error::RingSetup { source })?;
        let (control, child_end) = UnixStream::pair().map_err(|source| Error::Spawn {
            program: config.program.clone(),
            source,
        })?;
        let rss = RssConfig {
            soft: config.memory.soft_rss,
            hard: config.memory.hard_rss,
            interval: config.memory.sample_interval,
            pool: config.pool_slot.clone(),
        };
        let mut template_respawned = false;
        let mut process = match template {
            None => spawn_exec(
                config,
                generation,
                &memory,
                &child_end,
                consumer.remote(),
                rss,
            )?,
            Some(template) => {
                let (process, respawned) = spawn_forked(
                    config,
                    template,
                    generation,
                    &memory,
                    &child_end,
                    consumer.remote(),
                    rss,
                    deadline,
                )?;
                template_respawned = respawned;
                process
            }
        };
        drop(child_end);
        let hello = match handshake(&control, process.watch().pidfd(), deadline) {
            Ok(hello) => hello,
            Err(failure) => {
                let exit = if matches!(failure, Handshake::Closed) {
                    process.reap(Duration::from_secs(1))
                } else {
                    None
                };
                process.kill_and_reap();
                let output = process.final_output();
                return Err(match failure {
                    Handshake::TimedOut => Error::StartupTimeout {
                        waited: config.startup_timeout,
                        output,
                    },
                    Handshake::Closed => Error::Handshake {
                        reason: match exit {
                            Some(Exit::Code(code)) => {
                                format!("worker exited with code {code} before its handshake")
                            }
                            Some(Exit::Signal(sig)) => {
                                format!("worker killed by signal {sig} before its handshake")
                            }
                            None => "worker closed the control channel before its handshake".into(),
                        },
                        output,
                    },
                    Handshake::Failed(reason) => Error::Handshake { reason, output },
                });
            }
        };
        if template.is_some() {
            // The forked shim has forked the worker that sent the Hello.
            process.expect_forked_worker(hello.pid);
            // The template's pages it maps are not its own memory.
            if config.memory.soft_rss.is_some() || config.memory.hard_rss.is_some() {
                process.watch().note_inherited_memory();
            }
        }
        if hello.protocol != PROTOCOL_VERSION {
            process.kill_and_reap();
            return Err(Error::VersionMismatch {
                expected: PROTOCOL_VERSION,
                found: hello.protocol,
            });
        }
        if hello.max_row_bytes != config.max_row_bytes {
            process.kill_and_reap();
            return Err(Error::RowLimitMismatch {
                expected: config.max_row_bytes,
                found: hello.max_row_bytes,
            });
        }
        if hello.generation != generation {
            process.kill_and_reap();
            return Err(Error::Handshake {
                reason: format!(
                    "worker attached ring generation {} instead of {generation}",
                    hello.generation
                ),
                output: process.output_tail(),
            });
        }
        Ok(Session {
            memory: consumer.remote(),
            consumer,
            process,
            control,
            hello,
            unfinished: None,
            full_waits_seen: 0,
            scratch: Vec::new(),
            requests: 0,
            ring_capacity: config.ring_capacity as u64,
            rss_seen: (0, 0),
            forked: template.is_some(),
            template_respawned,
        })
    }

    /// Whether the worker offers `command`.
    pub(crate) fn offers(&self, command: &str) -> bool {
        self.hello.commands.iter().any(|c| c.name == command)
    }

    /// Discards what is left of an abandoned request, up to its end marker.
    /// The cancel grace was started when the request was abandoned, and the
    /// watchdog kills the child when it runs out, whatever the child floods
    /// the ring with meanwhile. False if the child is gone or going (it must
    /// then be replaced).
    pub(crate) fn settle(
        &mut self,
        idle_restart: Option<Duration>,
        stats: &mut WorkerStats,
    ) -> bool {
        let Some(request) = self.unfinished else {
            return true;
        };
        let watch = Arc::clone(self.process.watch());
        loop {
            let mut handled = 0u32;
            while handled < SETTLE_BATCH {
                match self.consumer.try_recv() {
                    Ok(Some(record)) => {
                        handled += 1;
                        stats.stale_records += 1;
                        if record.request() == request && record.kind() == RecordKind::End {
                            drop(record);
                            self.unfinished = None;
                            watch.disarm(idle_restart);
                            return true;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return false,
                }
            }
            if watch.attention() {
                return false;
            }
            if handled == 0 {
                match self.consumer.wait(Duration::from_secs(1)) {
                    Ok(Readiness::Closed) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Starts the child by exec'ing the program (under the containment shim if
/// configured).
fn spawn_exec(
    config: &WorkerConfig,
    generation: u64,
    memory: &RingMemory,
    child_end: &UnixStream,
    remote: ConsumerRemote,
    rss: RssConfig,
) -> Result<ChildProcess, Error> {
    let mut command = Command::new(&config.program);
    command
        .args(&config.args)
        // A forked worker's environment still says "template"; a worker it
        // starts as a supervisor must not inherit that.
        .env_remove(ENV_TEMPLATE)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env(ENV_GENERATION, generation.to_string())
        .env(ENV_MAX_ROW_BYTES, config.max_row_bytes.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &config.cwd {
        command.current_dir(cwd);
    }
    let contained = config.contain_tree && shm_proto::tree_containment_available();
    if !contained {
        // Under the shim the worker's parent is the shim, which checked
        // the supervisor was alive before forking it; here the runtime
        // checks its parent itself.
        command.env(ENV_PARENT_PID, std::process::id().to_string());
    }
    let limits = &config.memory;
    ChildFds::new()
        .map(memory.fd(), RING_FD)
        .map(child_end.as_fd(), CONTROL_FD)
        .die_with_parent(true)
        // Its own process group, killed with it.
        .own_process_group(true)
        .rlimit(Rlimit::Core, (!limits.core_dumps).then_some(0))
        .rlimit(Rlimit::Data, limits.data_limit)
        .rlimit(Rlimit::AddressSpace, limits.address_space_limit)
        .contain_tree(contained)
        .apply(&mut command);
    let plan = WatchPlan {
        ring: Some(remote),
        rss,
        contained,
        own_group: true,
    };
    ChildProcess::spawn(command, config.output_tail_bytes, plan).map_err(|source| Error::Spawn {
        program: config.program.clone(),
        source,
    })
}

/// Has `template` fork the child with the ring, the control socket's child
/// end and fresh stdout/stderr pipes, and puts it under the watchdog.
/// Returns whether the template had to be (re)started for it.
#[allow(clippy::too_many_arguments)]
fn spawn_forked(
    config: &WorkerConfig,
    template: &Template,
    generation: u64,
    memory: &RingMemory,
    child_end: &UnixStream,
    remote: ConsumerRemote,
    rss: RssConfig,
    deadline: Option<Instant>,
) -> Result<(ChildProcess, bool), Error> {
    let spawn_error = |source: std::io::Error| Error::Spawn {
        program: config.program.clone(),
        source,
    };
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| spawn_error(e.into()))
    };
    let (stdout, stdout_child) = pipe()?;
    let (stderr, stderr_child) = pipe()?;
    let limits = &config.memory;
    let request = ForkRequest::new(generation, std::process::id(), config.max_row_bytes)
        .with_rlimits(
            (!limits.core_dumps).then_some(0),
            limits.data_limit,
            limits.address_space_limit,
        )
        .with_contain_tree(config.contain_tree && shm_proto::tree_containment_available());
    let forked = template.fork(
        config,
        &request,
        [
            memory.fd(),
            child_end.as_fd(),
            stdout_child.as_fd(),
            stderr_child.as_fd(),
        ],
        deadline,
    )?;
    drop((stdout_child, stderr_child));
    let plan = WatchPlan {
        ring: Some(remote),
        rss,
        contained: request.contain_tree,
        own_group: true,
    };
    let process = ChildProcess::adopt(forked.pid, stdout, stderr, config.output_tail_bytes, plan)
        .map_err(spawn_error)?;
    Ok((process, forked.respawned))
}

/// The ring of child `generation`.
pub(crate) fn ring_config(config: &WorkerConfig, generation: u64) -> RingConfig {
    RingConfig::with_capacity(config.ring_capacity)
        .with_max_payload(config.max_record)
        .with_generation(generation)
}

/// Records discarded between two looks at the watchdog's verdict.
const SETTLE_BATCH: u32 = 256;

/// Writes to the control socket with `MSG_NOSIGNAL` (a child that closed its
/// end yields `EPIPE` here instead of a SIGPIPE that would kill a host
/// process which, unlike Rust binaries, does not ignore the signal), and
/// never past `deadline`: a child that does not read its control channel
/// makes the write fail with `TimedOut` instead of blocking.
pub(crate) struct ControlWriter<'a> {
    pub(crate) socket: &'a UnixStream,
    pub(crate) deadline: Option<Instant>,
}

impl std::io::Write for ControlWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            let flags = rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT;
            match rustix::net::send(self.socket, buf, flags) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    wait_for(self.socket.as_fd(), None, PollFlags::OUT, self.deadline)?;
                }
                other => return other.map_err(Into::into),
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads the control socket, never past `deadline`, and reports the end of
/// the stream once the child has died even if a descendant still holds the
/// socket's other end.
pub(crate) struct HandshakeReader<'a> {
    pub(crate) socket: &'a UnixStream,
    pub(crate) pidfd: BorrowedFd<'a>,
    pub(crate) deadline: Option<Instant>,
}

impl std::io::Read for HandshakeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match rustix::net::recv(self.socket, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    if wait_for(
                        self.socket.as_fd(),
                        Some(self.pidfd),
                        PollFlags::IN,
                        self.deadline,
                    )? == Woke::Died
                    {
                        return Ok(0);
                    }
                }
                Ok((n, _)) => return Ok(n),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Woke {
    Ready,
    Died,
}

/// Polls `fd` for `events` (and `pidfd` for the child's death) until
/// `deadline`.
fn wait_for(
    fd: BorrowedFd<'_>,
    pidfd: Option<BorrowedFd<'_>>,
    events: PollFlags,
    deadline: Option<Instant>,
) -> std::io::Result<Woke> {
    loop {
        let timeout = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs().min(3600) as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        let mut fds = vec![PollFd::from_borrowed_fd(fd, events)];
        if let Some(pidfd) = pidfd {
            fds.push(PollFd::from_borrowed_fd(pidfd, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Err(rustix::io::Errno::INTR) | Ok(0) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {
                if !fds[0].revents().is_empty() {
                    return Ok(Woke::Ready);
                }
                if fds.len() > 1 && !fds[1].revents().is_empty() {
                    return Ok(Woke::Died);
                }
            }
        }
    }
}

enum Handshake {
    TimedOut,
    Closed,
    Failed(String),
}

fn handshake(
    control: &UnixStream,
    pidfd: BorrowedFd<'_>,
    deadline: Option<Instant>,
) -> Result<Hello, Handshake> {
    let mut reader = HandshakeReader {
        socket: control,
        pidfd,
        deadline,
    };
    match control::read_frame::<_, ChildFrame>(&mut reader, MAX_FRAME_BYTES) {
        Ok(ChildFrame::Hello(hello)) => Ok(hello),
        Ok(ChildFrame::Fatal { message }) => Err(Handshake::Failed(message)),
        Ok(other) => Err(Handshake::Failed(format!(
            "expected a handshake, got {other:?}"
        ))),
        Err(e) if e.is_closed() => Err(Handshake::Closed),
        Err(e) if e.is_timeout() => Err(Handshake::TimedOut),
        Err(e) => Err(Handshake::Failed(e.to_string())),
    }
}
