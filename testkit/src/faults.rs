//! `fault`: writes `after_rows` rows (flushed, so they are delivered), then
//! misbehaves in the chosen way. Each fault maps to its own supervisor error.
//! Test-only: registered by the tests' fixture worker ([`register`]), never
//! by the `ringworker-child` binary.
//!
//! [`Fault::Grandchild`] leaves processes behind on purpose, for the
//! supervisor's process-tree tests; [`squat`] is the loop of its
//! [`GrandchildMode::RingProducer`] grandchild, which the fixture runs when
//! started with [`ENV_RING_SQUATTER`].

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shm_proto::{
    ChildFds, HEADER_BYTES, HeaderWord, RECORD_HEADER_BYTES, RING_FD, RecordKind, RingMemory,
    record_size,
};

use ringworker_child::{ChildRuntime, CommandError, Level, RowWriter, check_cancelled};

use crate::rows::fill_row;

/// Name of the fault command.
pub const FAULT: &str = "fault";

/// Registers the [`FAULT`] command on `worker`.
pub fn register(worker: ChildRuntime) -> ChildRuntime {
    worker.command(
        FAULT,
        "misbehaves on purpose (exit, panic, abort, kill, hang, floods, corruption) for tests",
        run,
    )
}

/// The misbehaviour. JSON: internally tagged by `kind`, snake_case, e.g.
/// `{"kind":"exit","code":3}`. `Copy`, so what a variant needs beyond small
/// values (the grandchild's pid file) is on [`FaultRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// `exit(code)` in the middle of the request.
    Exit {
        /// Exit status.
        code: i32,
    },
    /// A Rust panic inside the command.
    Panic,
    /// `abort()` (SIGABRT).
    Abort,
    /// SIGKILL to itself.
    KillSelf,
    /// Sleeps forever without heartbeat: looks hung.
    Hang,
    /// Spins forever with heartbeats (busy, not hung); stops on cancellation.
    BusyHeartbeat,
    /// Beats forever and never looks at the cancel flag.
    IgnoreCancel,
    /// Allocates and touches `mib` MiB, holds it `hold_ms`, then succeeds.
    Allocate {
        /// MiB to allocate.
        mib: u64,
        /// How long to hold it.
        hold_ms: u64,
    },
    /// Writes that many bytes to stdout and stderr, then succeeds.
    Flood {
        /// Bytes to stdout.
        stdout_bytes: u64,
        /// Bytes to stderr.
        stderr_bytes: u64,
    },
    /// Prints binary junk and a fake protocol frame to stdout, then succeeds.
    Garbage,
    /// Tries to write a row one byte over the per-row limit (`RowWriter::max_row`;
    /// rows over the ring's maximum record are fragmented, not refused).
    Oversized,
    /// Overwrites the ring header's magic and write index.
    ScribbleHeader,
    /// Publishes a forged record header of an unknown kind.
    ScribbleRecord,
    /// Writes diagnostics in an endless loop, each followed by a heartbeat
    /// (and so published at once), and never checks for cancellation; ends
    /// only when a write fails (ring closed or poisoned). JSON:
    /// `{"kind":"flood_diagnostics"}`.
    FloodDiagnostics,
    /// Spawns a grandchild that outlives the request (see [`GrandchildMode`]),
    /// writes its pid as decimal text to [`FaultRequest::pid_file`] (written
    /// to a temporary file and renamed, so a reader never sees a partial
    /// pid; the request fails with code `no_pid_file` if none is given),
    /// then does what `then` says. JSON:
    /// `{"kind":"grandchild","mode":"setsid","then":{"kind":"stay"}}`.
    Grandchild {
        /// What the grandchild is and does.
        mode: GrandchildMode,
        /// What the worker does once the pid file is written.
        then: After,
    },
    /// Checks for cancellation ([`RowWriter::is_cancelled`]), writes one row
    /// (sequence `after_rows`), then computes for `compute_ms` with
    /// heartbeats but without writing or flushing, then ends `Ok` with
    /// `after_rows + 1` rows. The row must reach the supervisor at once: a
    /// kill during the computation must not lose it. JSON:
    /// `{"kind":"commit_after_check","compute_ms":2000}`.
    CommitAfterCheck {
        /// How long to compute after the row.
        compute_ms: u64,
    },
}

/// The grandchild a [`Fault::Grandchild`] spawns. JSON: a snake_case string
/// (`"sleep"`, `"setsid"`, `"double_fork"`, `"stdout_writer"`,
/// `"ring_producer"`). Every grandchild but the `StdoutWriter` has stdin,
/// stdout and stderr on `/dev/null`; none inherits the ring or the control
/// socket unless stated (both are close-on-exec in the worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrandchildMode {
    /// `sleep 1000`, a plain child of the worker in its process group.
    Sleep,
    /// `sleep 1000` in a session of its own: `setsid sleep 1000` where
    /// util-linux `setsid` is on `PATH` (it execs without forking, since
    /// the spawned process is never a group leader, so the pid is the
    /// sleeper's and it is a session leader); otherwise `sleep 1000` in a
    /// process group of its own (`process_group(0)`), the closest a safe
    /// spawn comes: out of the worker's group, still in its session.
    Setsid,
    /// `sh -c 'sleep 1000 & echo $!'`: the shell exits at once, so the
    /// sleeper is orphaned (re-parented to init or a subreaper) before the
    /// pid file is written; the pid is the sleeper's.
    DoubleFork,
    /// `sh -c 'while :; do echo tick; sleep 0.01; done'` inheriting the
    /// worker's stdout and stderr: a line every 10 ms forever, holding the
    /// pipes the supervisor drains open. The pid is the shell's.
    StdoutWriter,
    /// The running executable (the fixture) re-executed with
    /// [`ENV_RING_SQUATTER`]`=1` and the worker's ring on fd 3: it appends
    /// valid-looking records of request [`SQUATTER_REQUEST`] to the ring
    /// (see [`squat`]). Only meaningful from an executable that honours the
    /// variable, like the tests' fixture worker.
    RingProducer,
}

/// What a worker does after a [`Fault::Grandchild`] spawned its grandchild.
/// JSON: tagged by `kind`, `{"kind":"exit","code":0}` or `{"kind":"stay"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum After {
    /// `exit(code)`: the grandchild outlives its parent.
    Exit {
        /// Exit status.
        code: i32,
    },
    /// End the request `Ok` (a [`FaultSummary`]) and serve on.
    Stay,
}

/// Environment variable that makes the fixture worker a ring squatter
/// ([`squat_inherited`]) instead of a worker.
pub const ENV_RING_SQUATTER: &str = "FIXTURE_RING_SQUATTER";

/// Request id of every record a squatter appends.
pub const SQUATTER_REQUEST: u64 = u64::MAX;

/// Payload bytes of each record a squatter appends (a [`fill_row`] row).
pub const SQUATTER_ROW_BYTES: usize = 48;

/// How long a squatter (like the `sleep 1000` grandchildren) keeps going
/// before it gives up, so a test that fails to kill it leaks nothing forever.
pub const SQUATTER_LIFETIME: Duration = Duration::from_secs(1000);

/// Arguments of `fault`. JSON:
/// `{"fault":{..},"after_rows":N,"pid_file":"/path"}`, `after_rows` and
/// `pid_file` optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// What to do.
    pub fault: Fault,
    /// Rows ([`FAULT_ROW_BYTES`] bytes, content as `synthetic` with seed 0,
    /// so each carries its sequence number) written first.
    #[serde(default)]
    pub after_rows: u64,
    /// Where [`Fault::Grandchild`] writes the grandchild's pid; ignored by
    /// the other faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
}

impl FaultRequest {
    /// `fault` after `after_rows` rows.
    pub fn new(fault: Fault, after_rows: u64) -> Self {
        FaultRequest {
            fault,
            after_rows,
            pid_file: None,
        }
    }

    /// Sets [`FaultRequest::pid_file`].
    #[must_use]
    pub fn with_pid_file(mut self, path: impl Into<String>) -> Self {
        self.pid_file = Some(path.into());
        self
    }
}

/// Bytes of each row `fault` writes before misbehaving.
pub const FAULT_ROW_BYTES: usize = 64;

/// Summary of the faults that end normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSummary {
    /// Rows written.
    pub rows: u64,
}

/// Runs the command.
pub fn run(
    request: FaultRequest,
    writer: &mut RowWriter<'_>,
) -> Result<FaultSummary, CommandError> {
    let mut row = [0u8; FAULT_ROW_BYTES];
    for sequence in 0..request.after_rows {
        fill_row(0, sequence, &mut row);
        writer.row(0, &row)?;
    }
    writer.flush();
    let done = FaultSummary {
        rows: request.after_rows,
    };
    match request.fault {
        Fault::Exit { code } => std::process::exit(code),
        Fault::Panic => panic!("injected panic after {} rows", request.after_rows),
        Fault::Abort => std::process::abort(),
        Fault::KillSelf => {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Fault::Hang => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        Fault::BusyHeartbeat => loop {
            check_cancelled(writer)?;
            for i in 0..10_000u32 {
                std::hint::black_box(i);
            }
        },
        Fault::IgnoreCancel => loop {
            writer.beat();
            std::thread::sleep(Duration::from_millis(5));
        },
        Fault::Allocate { mib, hold_ms } => {
            let mut block = vec![0u8; (mib as usize) << 20];
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            let until = Instant::now() + Duration::from_millis(hold_ms);
            while Instant::now() < until {
                check_cancelled(writer)?;
                std::thread::sleep(Duration::from_millis(5));
            }
            std::hint::black_box(&block);
            Ok(done)
        }
        Fault::Flood {
            stdout_bytes,
            stderr_bytes,
        } => {
            let chunk = [b'x'; 64 << 10];
            flood(&mut std::io::stdout().lock(), stdout_bytes, &chunk, writer);
            flood(&mut std::io::stderr().lock(), stderr_bytes, &chunk, writer);
            Ok(done)
        }
        Fault::Garbage => {
            let mut out = std::io::stdout().lock();
            let mut junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
            junk.extend_from_slice(&26u32.to_le_bytes());
            junk.extend_from_slice(br#"{"hello":{"protocol":999}}"#);
            let _ = out.write_all(&junk);
            let _ = out.flush();
            Ok(done)
        }
        Fault::Oversized => {
            let oversized = vec![0u8; writer.max_row() + 1];
            writer.row(0, &oversized)?;
            Ok(done)
        }
        Fault::ScribbleHeader => {
            wait_consumed(writer);
            let memory = writer.ring_memory();
            let _ = memory.debug_write_bytes(0, &[0xAB; 8]);
            memory.debug_store(HeaderWord::WriteIndex, u64::MAX - 7);
            wake_supervisor(memory);
            linger(writer)
        }
        Fault::ScribbleRecord => {
            wait_consumed(writer);
            let memory = writer.ring_memory().clone();
            // Our own last publication.
            let head = memory.debug_load(HeaderWord::WriteIndex);
            let capacity = memory.capacity() as u64;
            let pos = (head & (capacity - 1)) as usize;
            if capacity - (pos as u64) < 2 * RECORD_HEADER_BYTES as u64 {
                memory.debug_store(HeaderWord::WriteIndex, head + capacity * 4);
            } else {
                let mut forged = [0u8; RECORD_HEADER_BYTES];
                forged[..4].copy_from_slice(&8u32.to_le_bytes());
                forged[4] = 0x77;
                let _ = memory.debug_write_bytes(HEADER_BYTES + pos, &forged);
                memory.debug_store(HeaderWord::WriteIndex, head + 24);
            }
            wake_supervisor(&memory);
            linger(writer)
        }
        Fault::FloodDiagnostics => loop {
            writer.diagnostic(Level::Info, "diagnostic flood")?;
            writer.beat();
        },
        Fault::Grandchild { mode, then } => {
            let Some(pid_file) = request.pid_file.as_deref() else {
                return Err(CommandError::new(
                    "no_pid_file",
                    "the grandchild fault needs a pid_file",
                ));
            };
            let pid = spawn_grandchild(mode, writer)
                .map_err(|e| CommandError::new("spawn_failed", format!("{mode:?}: {e}")))?;
            write_pid_file(Path::new(pid_file), pid)
                .map_err(|e| CommandError::new("pid_file", format!("{pid_file}: {e}")))?;
            match then {
                After::Exit { code } => std::process::exit(code),
                After::Stay => Ok(done),
            }
        }
        Fault::CommitAfterCheck { compute_ms } => {
            let _ = writer.is_cancelled();
            fill_row(0, request.after_rows, &mut row);
            writer.row(0, &row)?;
            let until = Instant::now() + Duration::from_millis(compute_ms);
            while Instant::now() < until {
                for i in 0..10_000u32 {
                    std::hint::black_box(i);
                }
                // The heartbeat that does not flush (`beat` would publish,
                // hiding a row the producer failed to publish itself); the
                // answer is ignored on purpose.
                let _ = writer.is_cancelled();
            }
            Ok(FaultSummary {
                rows: request.after_rows + 1,
            })
        }
    }
}

/// Spawns the grandchild of [`Fault::Grandchild`] and returns its pid. The
/// `Child` handle is dropped unwaited: the grandchild is meant to outlive
/// the request (it stays a zombie of the worker if it dies first).
fn spawn_grandchild(mode: GrandchildMode, writer: &RowWriter<'_>) -> std::io::Result<u32> {
    let quiet = |command: &mut Command| {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut command = match mode {
        GrandchildMode::Sleep => {
            let mut command = Command::new("sleep");
            command.arg("1000");
            quiet(&mut command);
            command
        }
        GrandchildMode::Setsid => {
            let mut command = match find_in_path("setsid") {
                Some(setsid) => {
                    let mut command = Command::new(setsid);
                    command.args(["sleep", "1000"]);
                    command
                }
                None => {
                    let mut command = Command::new("sleep");
                    command.arg("1000").process_group(0);
                    command
                }
            };
            quiet(&mut command);
            command
        }
        GrandchildMode::DoubleFork => {
            // The shell's stdout is how the pid comes back; the sleeper must
            // not hold that pipe, or `output()` would wait for it.
            let output = Command::new("sh")
                .args(["-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()?;
            let pid = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .map_err(|e| std::io::Error::other(format!("pid from sh: {e}")))?;
            settle(pid, false);
            return Ok(pid);
        }
        GrandchildMode::StdoutWriter => {
            let mut command = Command::new("sh");
            command
                .args(["-c", "while :; do echo tick; sleep 0.01; done"])
                .stdin(Stdio::null());
            command
        }
        GrandchildMode::RingProducer => {
            let mut command = Command::new(std::env::current_exe()?);
            command.env(ENV_RING_SQUATTER, "1");
            quiet(&mut command);
            ChildFds::new()
                .map(writer.ring_memory().fd(), RING_FD)
                .apply(&mut command);
            command
        }
    };
    let pid = command.spawn()?.id();
    if mode == GrandchildMode::Setsid {
        settle(pid, true);
    }
    Ok(pid)
}

/// Waits (at most 2 s) until `pid` runs `sleep`, in a session of its own if
/// `own_session` and `setsid` was used: `spawn` returns once the first
/// program is exec'd, which for `setsid sleep` and the backgrounded `sleep`
/// of `sh` is before the grandchild takes its final shape. A reader of the
/// pid file then finds the grandchild as it stays.
fn settle(pid: u32, own_session: bool) {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let session = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // Fields after the parenthesized name: state ppid pgrp session.
                let rest = stat.get(stat.rfind(')')? + 2..)?.to_owned();
                rest.split_whitespace().nth(3)?.parse::<u32>().ok()
            });
        let in_own_session =
            !own_session || session == Some(pid) || find_in_path("setsid").is_none();
        if comm.trim() == "sleep" && in_own_session {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Writes `pid` to `path` through a temporary file in the same directory and
/// a rename, so a reader sees no file or the whole pid.
fn write_pid_file(path: &Path, pid: u32) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}

/// The squatter's `main`: attaches the ring inherited on fd 3 (any
/// generation) and runs [`squat`] until [`SQUATTER_LIFETIME`] passes, then
/// exits 0; exits 2 if there is no ring to attach.
pub fn squat_inherited() -> ! {
    let memory = shm_proto::take_inherited(RING_FD)
        .map_err(|e| e.to_string())
        .and_then(|fd| RingMemory::attach(fd, None).map_err(|e| e.to_string()));
    match memory {
        Ok(memory) => {
            squat(&memory, None, SQUATTER_LIFETIME);
            std::process::exit(0)
        }
        Err(err) => {
            eprintln!("ring squatter: {err}");
            std::process::exit(2)
        }
    }
}

/// Appends records to a ring it does not own, as a grandchild that
/// inherited the ring would: [`SQUATTER_ROW_BYTES`]-byte `Data` records of
/// request [`SQUATTER_REQUEST`] (a [`fill_row`] row each, sequence = count
/// so far), with `Padding` before a wrap, through raw loads and stores of
/// the shared indices. It re-reads the shared write index before every
/// record (so it races whatever producer is also there), appends only when
/// the read index says there is room (sleeping 1 ms otherwise, also while
/// the indices look inconsistent), and wakes a consumer that announced it
/// sleeps. Stops after `limit` records (if given) or `give_up`; returns the
/// records appended.
pub fn squat(memory: &RingMemory, limit: Option<u64>, give_up: Duration) -> u64 {
    let capacity = memory.capacity() as u64;
    let size = record_size(SQUATTER_ROW_BYTES) as u64;
    let until = Instant::now() + give_up;
    let mut row = [0u8; SQUATTER_ROW_BYTES];
    let mut written = 0;
    while limit.is_none_or(|limit| written < limit) && Instant::now() < until {
        let head = memory.debug_load(HeaderWord::WriteIndex);
        let tail = memory.debug_load(HeaderWord::ReadIndex);
        let to_end = capacity - (head & (capacity - 1));
        let skip = if to_end < size { to_end } else { 0 };
        if tail > head || !head.is_multiple_of(8) || head - tail + skip + size > capacity {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if skip >= RECORD_HEADER_BYTES as u64 {
            let header = record_header(
                (skip as usize - RECORD_HEADER_BYTES) as u32,
                RecordKind::Padding,
                0,
            );
            let _ = memory.debug_write_bytes(data_offset(head, capacity), &header);
        }
        let at = head + skip;
        fill_row(0, written, &mut row);
        let offset = data_offset(at, capacity);
        let header = record_header(
            SQUATTER_ROW_BYTES as u32,
            RecordKind::Data,
            SQUATTER_REQUEST,
        );
        let _ = memory.debug_write_bytes(offset, &header);
        let _ = memory.debug_write_bytes(offset + RECORD_HEADER_BYTES, &row);
        // `debug_store` is a Release store: the bytes above are visible to a
        // consumer that loads the new index.
        memory.debug_store(HeaderWord::WriteIndex, at + size);
        if memory.debug_load(HeaderWord::ConsumerSleep) != 0 {
            wake_supervisor(memory);
        }
        written += 1;
    }
    written
}

fn data_offset(index: u64, capacity: u64) -> usize {
    HEADER_BYTES + (index & (capacity - 1)) as usize
}

fn record_header(len: u32, kind: RecordKind, request: u64) -> [u8; RECORD_HEADER_BYTES] {
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4] = kind as u8;
    // flags (byte 5) and stream (bytes 6..8) stay 0.
    header[8..].copy_from_slice(&request.to_le_bytes());
    header
}

fn flood(out: &mut impl Write, mut bytes: u64, chunk: &[u8], writer: &mut RowWriter<'_>) {
    while bytes > 0 {
        let n = bytes.min(chunk.len() as u64) as usize;
        if out.write_all(&chunk[..n]).is_err() {
            return;
        }
        bytes -= n as u64;
        writer.beat();
    }
    let _ = out.flush();
}

/// Before corrupting the ring: waits (up to 5 s, beating) until the
/// supervisor has released every record published so far. A corrupted header
/// rightly makes the supervisor distrust the whole ring, including rows it
/// had not read yet; waiting keeps the promise that the `after_rows` rows are
/// delivered, so tests can check exact delivery up to the failure.
fn wait_consumed(writer: &mut RowWriter<'_>) {
    let memory = writer.ring_memory().clone();
    // Our own last publication, then the supervisor's read index.
    let published = memory.debug_load(HeaderWord::WriteIndex);
    let until = Instant::now() + Duration::from_secs(5);
    while memory.debug_load(HeaderWord::ReadIndex) < published && Instant::now() < until {
        writer.beat();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wakes a supervisor asleep on the ring the way any child can: reset its
/// sleep word and `FUTEX_WAKE` it, so it re-reads the (scribbled) header.
fn wake_supervisor(memory: &RingMemory) {
    memory.debug_store(HeaderWord::ConsumerSleep, 0);
    memory.debug_futex_wake(HeaderWord::ConsumerSleep);
}

/// After corrupting the ring: stay alive (beating) until killed.
fn linger(writer: &mut RowWriter<'_>) -> ! {
    loop {
        writer.beat();
        std::thread::sleep(Duration::from_millis(10));
    }
}
