//! Warm templates, the supervisor's side (the fork-server client): one
//! template process per distinct start-up (program, arguments, environment,
//! working directory) in this process, shared by every worker configured
//! with [`WorkerConfig::with_template`](crate::WorkerConfig::with_template),
//! alive while one of them is.
//!
//! The template is our child, spawned from the long-lived spawner thread
//! (its parent-death signal follows that thread), never under the
//! containment shim: the workers it forks with `clone(CLONE_PARENT)` must be
//! *our* children, reaped by the watchdog like any other. The template is
//! itself watched and reaped by the watchdog (a watch without a ring). A
//! template found dead when a worker is needed is started again
//! (`respawned`); the workers it forked before keep running.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use shm_proto::control::{self, ENV_PARENT_PID, MAX_FRAME_BYTES};
use shm_proto::fork::{self, ENV_TEMPLATE, ForkRequest, TemplateFrame};
use shm_proto::{CONTROL_FD, ChildFds, Rlimit};

use crate::config::WorkerConfig;
use crate::error::{Error, TemplateClass};
use crate::process::{ChildProcess, Exit, WatchPlan};
use crate::session::HandshakeReader;
use crate::watchdog::RssConfig;

/// What makes two configurations share a template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TemplateKey {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
}

impl TemplateKey {
    fn of(config: &WorkerConfig) -> Self {
        TemplateKey {
            program: config.program.clone(),
            args: config.args.clone(),
            env: config.env.clone(),
            cwd: config.cwd.clone(),
        }
    }
}

/// The templates of this process, by start-up.
static REGISTRY: Mutex<Vec<(TemplateKey, Weak<Template>)>> = Mutex::new(Vec::new());

/// The template of `config`'s start-up, shared with every other holder of
/// the same start-up; started on the first fork.
pub(crate) fn for_config(config: &WorkerConfig) -> Arc<Template> {
    let key = TemplateKey::of(config);
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(template) = registry
        .iter()
        .filter(|(k, _)| *k == key)
        .find_map(|(_, weak)| weak.upgrade())
    {
        return template;
    }
    let template = Arc::new(Template {
        state: Mutex::new(State::default()),
    });
    registry.push((key, Arc::downgrade(&template)));
    template
}

/// The pid of `config`'s template, if one is registered and running
/// (never starts one).
pub(crate) fn running_pid(config: &WorkerConfig) -> Option<u32> {
    let key = TemplateKey::of(config);
    let template = {
        let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry
            .iter()
            .filter(|(k, _)| *k == key)
            .find_map(|(_, weak)| weak.upgrade())
    };
    template.and_then(|t| t.pid())
}

/// One start-up's template process, started on demand.
pub(crate) struct Template {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    live: Option<Live>,
    /// A template was started before (the next start is a respawn).
    started: bool,
}

/// A running template. Field order is drop order: closing the control
/// socket lets the template exit on its own; the process's drop kills and
/// reaps it in any case.
struct Live {
    control: UnixStream,
    process: ChildProcess,
}

/// A worker forked by the template.
pub(crate) struct Forked {
    /// The worker's pid (our child).
    pub(crate) pid: u32,
    /// Whether the template had to be started again for it.
    pub(crate) respawned: bool,
}

impl Template {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running template's pid, if one runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        let state = self.lock();
        state
            .live
            .as_ref()
            .filter(|live| !live.process.has_exited())
            .map(|live| live.process.pid())
    }

    /// Forks a worker with `fds` (ring, control, stdout, stderr), starting
    /// (or restarting) the template first if it is not running; all before
    /// `deadline`.
    pub(crate) fn fork(
        &self,
        config: &WorkerConfig,
        request: &ForkRequest,
        fds: [BorrowedFd<'_>; 4],
        deadline: Option<Instant>,
    ) -> Result<Forked, Error> {
        let mut state = self.lock();
        let mut respawned = false;
        // A template that died since the last fork is noticed at the latest
        // when the request meets its closed socket: one more try then.
        for attempt in 0..2 {
            if state
                .live
                .as_ref()
                .is_some_and(|live| live.process.has_exited())
            {
                state.live = None;
            }
            if state.live.is_none() {
                respawned |= state.started;
                state.started = true;
                state.live = Some(start(config, deadline)?);
            }
            let live = state.live.as_mut().expect("started above");
            if fork::send_fork_request(live.control.as_fd(), request, fds).is_err() {
                state.live = None;
                if attempt == 0 {
                    continue;
                }
                return Err(template_error(
                    TemplateClass::Exited,
                    "the template closed its control socket".into(),
                    None,
                ));
            }
            let reply = {
                let mut reader = HandshakeReader {
                    socket: &live.control,
                    pidfd: live.process.watch().pidfd(),
                    deadline,
                };
                control::read_frame::<_, TemplateFrame>(&mut reader, MAX_FRAME_BYTES)
            };
            match reply {
                Ok(TemplateFrame::Forked { pid }) => return Ok(Forked { pid, respawned }),
                Ok(TemplateFrame::Refused {
                    threads,
                    reason,
                    guard,
                }) => {
                    let class = if guard {
                        TemplateClass::ForkGuard
                    } else if threads > 1 {
                        TemplateClass::MultiThreaded { threads }
                    } else {
                        TemplateClass::ForkFailed
                    };
                    return Err(template_error(
                        class,
                        reason,
                        Some(live.process.output_tail()),
                    ));
                }
                Err(e) if e.is_closed() => {
                    // Died before it answered (with the request unread, the
                    // read fails with a reset): once more with a new one.
                    let live = state.live.take().expect("running");
                    if attempt > 0 {
                        return Err(template_error(
                            TemplateClass::Exited,
                            "the template died while forking".into(),
                            Some(live.process.final_output()),
                        ));
                    }
                }
                Err(e) if e.is_timeout() => {
                    let live = state.live.take().expect("running");
                    return Err(Error::StartupTimeout {
                        waited: config.startup_timeout,
                        output: live.process.output_tail(),
                    });
                }
                other => {
                    let live = state.live.take().expect("running");
                    return Err(template_error(
                        TemplateClass::Protocol,
                        format!("unexpected answer to a fork request: {other:?}"),
                        Some(live.process.output_tail()),
                    ));
                }
            }
        }
        Err(template_error(
            TemplateClass::Exited,
            "the template died twice in a row while forking".into(),
            None,
        ))
    }
}

fn template_error(
    class: TemplateClass,
    reason: String,
    output: Option<crate::OutputTail>,
) -> Error {
    Error::Template {
        class,
        reason,
        output: output.unwrap_or_default(),
    }
}

/// Starts a template for `config` and waits until its start-up step ran.
fn start(config: &WorkerConfig, deadline: Option<Instant>) -> Result<Live, Error> {
    let spawn_error = |source| Error::Spawn {
        program: config.program.clone(),
        source,
    };
    let (control, child_end) = UnixStream::pair().map_err(spawn_error)?;
    let mut command = Command::new(&config.program);
    command
        .args(&config.args)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env(ENV_TEMPLATE, "1")
        .env(ENV_PARENT_PID, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &config.cwd {
        command.current_dir(cwd);
    }
    // Never under the shim (its forks must be our children); the worker
    // limits are applied in each forked worker, not here.
    ChildFds::new()
        .map(child_end.as_fd(), CONTROL_FD)
        .die_with_parent(true)
        .own_process_group(true)
        .rlimit(Rlimit::Core, (!config.memory.core_dumps).then_some(0))
        .apply(&mut command);
    let plan = WatchPlan {
        ring: None,
        rss: RssConfig {
            soft: None,
            hard: None,
            interval: config.memory.sample_interval,
            // Not a pooled worker: its pages are the shared start-up state.
            pool: None,
        },
        contained: false,
        own_group: true,
    };
    let mut process =
        ChildProcess::spawn(command, config.output_tail_bytes, plan).map_err(spawn_error)?;
    drop(child_end);
    let ready = {
        let mut reader = HandshakeReader {
            socket: &control,
            pidfd: process.watch().pidfd(),
            deadline,
        };
        control::read_frame::<_, TemplateFrame>(&mut reader, MAX_FRAME_BYTES)
    };
    match ready {
        Ok(TemplateFrame::Ready { .. }) => Ok(Live { control, process }),
        Ok(TemplateFrame::Failed { message }) => {
            process.reap(Duration::from_secs(1));
            process.kill_and_reap();
            Err(template_error(
                TemplateClass::StartupFailed,
                message,
                Some(process.final_output()),
            ))
        }
        Err(e) if e.is_timeout() => {
            process.kill_and_reap();
            Err(Error::StartupTimeout {
                waited: config.startup_timeout,
                output: process.final_output(),
            })
        }
        Err(e) if e.is_closed() => {
            let exit = process.reap(Duration::from_secs(1));
            process.kill_and_reap();
            let reason = match exit {
                Some(Exit::Code(code)) => {
                    format!("template exited with code {code} before it was ready")
                }
                Some(Exit::Signal(sig)) => {
                    format!("template killed by signal {sig} before it was ready")
                }
                None => "template closed its control socket before it was ready".into(),
            };
            Err(template_error(
                TemplateClass::Exited,
                reason,
                Some(process.final_output()),
            ))
        }
        other => {
            process.kill_and_reap();
            Err(template_error(
                TemplateClass::Protocol,
                format!("expected the template's ready frame, got {other:?}"),
                Some(process.final_output()),
            ))
        }
    }
}
