//! `fault`: writes `after_rows` rows (flushed, so they are delivered), then
//! misbehaves in the chosen way. Each fault maps to its own supervisor error.
//! Test-only: registered by the tests' fixture worker ([`register`]), never
//! by the `ringworker-child` binary.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shm_proto::{HEADER_BYTES, HeaderWord, RECORD_HEADER_BYTES, RingMemory};

use ringworker_child::{ChildRuntime, CommandError, RowWriter, check_cancelled};

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

/// The misbehaviour.
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
}

/// Arguments of `fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// What to do.
    pub fault: Fault,
    /// Rows ([`FAULT_ROW_BYTES`] bytes, content as `synthetic` with seed 0,
    /// so each carries its sequence number) written first.
    #[serde(default)]
    pub after_rows: u64,
}

impl FaultRequest {
    /// `fault` after `after_rows` rows.
    pub fn new(fault: Fault, after_rows: u64) -> Self {
        FaultRequest { fault, after_rows }
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
    }
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
