//! One generation of a worker's child: its process, ring, control channel
//! and handshake.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_proto::control::{
    self, ChildFrame, ENV_GENERATION, ENV_MAX_ROW_BYTES, ENV_PARENT_PID, FrameError, Hello,
    MAX_FRAME_BYTES, PROTOCOL_VERSION,
};
use shm_proto::{
    CONTROL_FD, ChildFds, Consumer, ConsumerRemote, RING_FD, RecordKind, RingConfig, RingMemory,
};

use crate::config::WorkerConfig;
use crate::error::Error;
use crate::process::{ChildProcess, Exit};
use crate::stats::WorkerStats;

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
}

impl Session {
    /// Creates the ring, starts the child with the ring on fd 3 and the
    /// control socket on fd 4, and waits for its handshake.
    pub(crate) fn start(config: &WorkerConfig, generation: u64) -> Result<Session, Error> {
        let ring = RingConfig::with_capacity(config.ring_capacity)
            .with_max_payload(config.max_record)
            .with_generation(generation);
        ring.validate().map_err(|e| Error::Config {
            reason: e.to_string(),
        })?;
        if config.max_row_bytes < config.max_record as u64 {
            // Rows up to a record are never fragmented, so never checked
            // against a smaller limit.
            return Err(Error::Config {
                reason: format!(
                    "max_row_bytes ({}) is smaller than max_record ({})",
                    config.max_row_bytes, config.max_record
                ),
            });
        }
        let memory =
            Arc::new(RingMemory::create(&ring).map_err(|source| Error::RingSetup { source })?);
        let (control, child_end) = UnixStream::pair().map_err(|source| Error::Spawn {
            program: config.program.clone(),
            source,
        })?;
        let mut command = Command::new(&config.program);
        command
            .args(&config.args)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .env(ENV_GENERATION, generation.to_string())
            .env(ENV_PARENT_PID, std::process::id().to_string())
            .env(ENV_MAX_ROW_BYTES, config.max_row_bytes.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &config.cwd {
            command.current_dir(cwd);
        }
        ChildFds::new()
            .map(memory.fd(), RING_FD)
            .map(child_end.as_fd(), CONTROL_FD)
            .die_with_parent(true)
            .apply(&mut command);
        let mut process =
            ChildProcess::spawn(command, config.output_tail_bytes).map_err(|source| {
                Error::Spawn {
                    program: config.program.clone(),
                    source,
                }
            })?;
        drop(child_end);
        let hello = match handshake(&control, config.startup_timeout) {
            Ok(hello) => hello,
            Err(failure) => {
                let exit = if matches!(failure, Handshake::Closed) {
                    process.reap(Duration::from_secs(1))
                } else {
                    None
                };
                process.kill_and_reap();
                let output = process.output_tail();
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
        let _ = control.set_read_timeout(None);
        let _ = control.set_write_timeout(Some(config.startup_timeout));
        let consumer = Consumer::new(memory).map_err(|source| Error::RingSetup { source })?;
        Ok(Session {
            memory: consumer.remote(),
            consumer,
            process,
            control,
            hello,
            unfinished: None,
            full_waits_seen: 0,
            scratch: Vec::new(),
        })
    }

    /// Whether the worker offers `command`.
    pub(crate) fn offers(&self, command: &str) -> bool {
        self.hello.commands.iter().any(|c| c.name == command)
    }

    /// Discards what is left of an abandoned request, up to its end marker,
    /// for at most `grace`. False if it did not end in time (the child must
    /// then be replaced).
    pub(crate) fn settle(&mut self, grace: Duration, stats: &mut WorkerStats) -> bool {
        let Some(request) = self.unfinished else {
            return true;
        };
        let deadline = Instant::now() + grace;
        loop {
            let step = match self.consumer.try_recv() {
                Ok(Some(record)) => {
                    Some(record.request() == request && record.kind() == RecordKind::End)
                }
                Ok(None) => None,
                Err(_) => return false,
            };
            match step {
                Some(ended) => {
                    stats.stale_records += 1;
                    if ended {
                        self.unfinished = None;
                        return true;
                    }
                }
                None => {
                    if Instant::now() >= deadline || self.process.has_exited() {
                        return false;
                    }
                    if self.consumer.wait(Duration::from_millis(10)).is_err() {
                        return false;
                    }
                }
            }
        }
    }
}

/// Writes to the control socket with `MSG_NOSIGNAL`: a child that closed its
/// end yields `EPIPE` here instead of a SIGPIPE that would kill a host
/// process which, unlike Rust binaries, does not ignore the signal.
pub(crate) struct ControlWriter<'a>(pub(crate) &'a UnixStream);

impl std::io::Write for ControlWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match rustix::net::send(self.0, buf, rustix::net::SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Handshake {
    TimedOut,
    Closed,
    Failed(String),
}

fn handshake(control: &UnixStream, timeout: Duration) -> Result<Hello, Handshake> {
    let _ = control.set_read_timeout(Some(timeout));
    let mut reader = control;
    match control::read_frame::<_, ChildFrame>(&mut reader, MAX_FRAME_BYTES) {
        Ok(ChildFrame::Hello(hello)) => Ok(hello),
        Ok(ChildFrame::Fatal { message }) => Err(Handshake::Failed(message)),
        Ok(other) => Err(Handshake::Failed(format!(
            "expected a handshake, got {other:?}"
        ))),
        Err(FrameError::Closed) => Err(Handshake::Closed),
        Err(e) if e.is_timeout() => Err(Handshake::TimedOut),
        Err(e) => Err(Handshake::Failed(e.to_string())),
    }
}
