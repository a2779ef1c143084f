//! The fault commands and fixture modes written for the supervisor's attack
//! tests, checked against the real fixture worker with a minimal hand-made
//! supervisor (a ring, a socketpair, the control frames), so they hold
//! whatever the supervisor does: JSON shapes, the accepted-request word, the
//! row published right after a cancel check, each grandchild, the diagnostic
//! flood, the ring squatter, the dribbled Hello, the deaf child and the
//! generation limit of the fixture modes.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringworker_testkit::faults::{
    After, ENV_RING_SQUATTER, FAULT_ROW_BYTES, Fault, FaultRequest, GrandchildMode,
    SQUATTER_REQUEST, SQUATTER_ROW_BYTES,
};
use serde_json::{Value, json};
use shm_proto::control::{
    self, ChildFrame, ENV_GENERATION, Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION, ParentFrame,
    RequestFrame,
};
use shm_proto::payload::EndPayload;
use shm_proto::{
    CONTROL_FD, ChildFds, Consumer, ConsumerRemote, RING_FD, RecordKind, RingConfig, RingMemory,
};

const FIXTURE: &str = env!("CARGO_BIN_EXE_ringworker-fixture");

/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(5);

/// Kills and reaps the process on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILLs a process that is not our child (a grandchild) on drop.
struct KillPid(u32);

impl Drop for KillPid {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A fixture child driven by hand: its ring's consumer and its control socket.
struct Driven {
    child: Reaped,
    control: UnixStream,
    consumer: Consumer,
    remote: ConsumerRemote,
}

/// Spawns the fixture as generation `generation` with `env`, stdout piped
/// if `pipe_stdout`.
fn spawn(generation: u64, env: &[(&str, &str)], pipe_stdout: bool) -> Driven {
    let config = RingConfig::with_capacity(64 << 10).with_generation(generation);
    let memory = Arc::new(RingMemory::create(&config).unwrap());
    let (control, theirs) = UnixStream::pair().unwrap();
    let mut command = Command::new(FIXTURE);
    command
        .env(ENV_GENERATION, generation.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    ChildFds::new()
        .map(memory.fd(), RING_FD)
        .map(theirs.as_fd(), CONTROL_FD)
        .apply(&mut command);
    let child = Reaped(command.spawn().unwrap());
    drop(theirs);
    control.set_read_timeout(Some(SOON)).unwrap();
    let consumer = Consumer::new(memory).unwrap();
    let remote = consumer.remote();
    Driven {
        child,
        control,
        consumer,
        remote,
    }
}

impl Driven {
    fn hello(&mut self) -> Hello {
        match control::read_frame::<_, ChildFrame>(&mut self.control, MAX_FRAME_BYTES).unwrap() {
            ChildFrame::Hello(hello) => hello,
            other => panic!("expected a Hello, got {other:?}"),
        }
    }

    fn send(&mut self, id: u64, command: &str, args: &impl serde::Serialize) {
        let args = serde_json::value::to_raw_value(args).unwrap();
        let frame = ParentFrame::Request(RequestFrame::new(id, command, args));
        control::write_frame(&mut self.control, &frame).unwrap();
    }

    /// The next record within `timeout`: kind, request, payload copy.
    fn next(&mut self, timeout: Duration) -> Option<(RecordKind, u64, Vec<u8>)> {
        let record = self.consumer.recv_timeout(timeout).unwrap()?;
        let mut payload = Vec::new();
        record.copy_payload_into(&mut payload);
        Some((record.kind(), record.request(), payload))
    }

    /// Records up to request `id`'s end marker: its data rows and its outcome.
    fn finish(&mut self, id: u64) -> (Vec<Vec<u8>>, EndPayload) {
        let mut rows = Vec::new();
        let deadline = Instant::now() + SOON;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (kind, request, payload) = self.next(left).expect("the end marker in time");
            assert_eq!(request, id);
            match kind {
                RecordKind::Data => rows.push(payload),
                RecordKind::End => return (rows, serde_json::from_slice(&payload).unwrap()),
                _ => {}
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

fn fault(fault: Fault, after_rows: u64) -> FaultRequest {
    FaultRequest::new(fault, after_rows)
}

fn sequence(row: &[u8]) -> u64 {
    u64::from_le_bytes(row[..8].try_into().unwrap())
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rw-faults-new-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, session.
fn proc_stat(pid: u32) -> Option<(char, u32, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let mut number = || fields.next()?.parse().ok();
    Some((state, number()?, number()?, number()?))
}

fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, ..)| state != 'Z' && state != 'X')
}

fn round_trip(fault: Fault, expected: Value) {
    assert_eq!(serde_json::to_value(fault).unwrap(), expected, "{fault:?}");
    assert_eq!(serde_json::from_value::<Fault>(expected).unwrap(), fault);
}

#[test]
fn new_faults_have_their_documented_json() {
    round_trip(
        Fault::FloodDiagnostics,
        json!({"kind": "flood_diagnostics"}),
    );
    round_trip(
        Fault::CommitAfterCheck { compute_ms: 250 },
        json!({"kind": "commit_after_check", "compute_ms": 250}),
    );
    let modes = [
        (GrandchildMode::Sleep, "sleep"),
        (GrandchildMode::Setsid, "setsid"),
        (GrandchildMode::DoubleFork, "double_fork"),
        (GrandchildMode::StdoutWriter, "stdout_writer"),
        (GrandchildMode::RingProducer, "ring_producer"),
    ];
    for (mode, name) in modes {
        round_trip(
            Fault::Grandchild {
                mode,
                then: After::Stay,
            },
            json!({"kind": "grandchild", "mode": name, "then": {"kind": "stay"}}),
        );
    }
    round_trip(
        Fault::Grandchild {
            mode: GrandchildMode::Sleep,
            then: After::Exit { code: 3 },
        },
        json!({"kind": "grandchild", "mode": "sleep", "then": {"kind": "exit", "code": 3}}),
    );
    let plain = fault(Fault::Panic, 2);
    let value = serde_json::to_value(&plain).unwrap();
    assert_eq!(value, json!({"fault": {"kind": "panic"}, "after_rows": 2}));
    assert_eq!(
        serde_json::from_value::<FaultRequest>(value).unwrap(),
        plain
    );
    let with = fault(Fault::Panic, 0).with_pid_file("/tmp/p");
    let value = serde_json::to_value(&with).unwrap();
    assert_eq!(value["pid_file"], "/tmp/p");
    assert_eq!(serde_json::from_value::<FaultRequest>(value).unwrap(), with);
}

#[test]
fn accepted_request_names_each_request_read_known_or_not() {
    let mut child = spawn(1, &[], false);
    assert_eq!(child.hello().protocol, PROTOCOL_VERSION);
    assert_eq!(child.remote.accepted_request(), 0);
    child.send(5, "no_such_command", &json!(null));
    let (_, end) = child.finish(5);
    assert!(matches!(end, EndPayload::Err(_)), "{end:?}");
    assert_eq!(child.remote.accepted_request(), 5);
    child.send(
        6,
        "fault",
        &fault(Fault::CommitAfterCheck { compute_ms: 0 }, 0),
    );
    let (rows, end) = child.finish(6);
    assert!(matches!(end, EndPayload::Ok(_)), "{end:?}");
    assert_eq!(rows.len(), 1);
    assert_eq!(child.remote.accepted_request(), 6);
}

#[test]
fn the_row_after_a_cancel_check_arrives_while_the_command_computes() {
    let mut child = spawn(1, &[], false);
    child.hello();
    let after_rows = 3;
    child.send(
        1,
        "fault",
        &fault(Fault::CommitAfterCheck { compute_ms: 30_000 }, after_rows),
    );
    let started = Instant::now();
    for expected in 0..=after_rows {
        let (kind, request, row) = child.next(SOON).expect("every row while it computes");
        assert_eq!((kind, request), (RecordKind::Data, 1));
        assert_eq!(row.len(), FAULT_ROW_BYTES);
        assert_eq!(sequence(&row), expected);
    }
    assert!(started.elapsed() < SOON);
    assert_eq!(child.remote.accepted_request(), 1);
    let beat = child.remote.heartbeat();
    std::thread::sleep(Duration::from_millis(50));
    assert_ne!(child.remote.heartbeat(), beat, "computing with heartbeats");
}

#[test]
fn flood_diagnostics_beats_and_ignores_cancellation() {
    let mut child = spawn(1, &[], false);
    child.hello();
    child.send(1, "fault", &fault(Fault::FloodDiagnostics, 0));
    let count = |child: &mut Driven, n: usize| {
        for _ in 0..n {
            let (kind, request, _) = child.next(SOON).expect("a diagnostic");
            assert_eq!((kind, request), (RecordKind::Diagnostic, 1));
        }
    };
    count(&mut child, 1000);
    assert_ne!(child.remote.heartbeat(), 0);
    child.remote.request_cancel(1);
    count(&mut child, 1000);
}

/// Runs a `grandchild` fault with `then: stay` and returns the worker, the
/// grandchild's pid (killed when the guard drops) and its pid file.
fn grandchild(mode: GrandchildMode, pipe_stdout: bool) -> (Driven, KillPid, PathBuf) {
    let dir = scratch_dir(&format!("{mode:?}"));
    let pid_file = dir.join("pid");
    let mut child = spawn(1, &[], pipe_stdout);
    child.hello();
    let request = fault(
        Fault::Grandchild {
            mode,
            then: After::Stay,
        },
        2,
    )
    .with_pid_file(pid_file.to_str().unwrap());
    child.send(1, "fault", &request);
    let (rows, end) = child.finish(1);
    assert!(matches!(end, EndPayload::Ok(_)), "{mode:?}: {end:?}");
    assert_eq!(rows.len(), 2);
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let guard = KillPid(pid);
    assert!(alive(pid), "{mode:?}: grandchild {pid} is alive");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "{mode:?}: no temporary file left");
    (child, guard, dir)
}

#[test]
fn grandchild_sleep_stays_in_the_workers_group() {
    let (child, guard, dir) = grandchild(GrandchildMode::Sleep, false);
    let (_, ppid, pgrp, _) = proc_stat(guard.0).unwrap();
    let (_, _, worker_pgrp, _) = proc_stat(child.pid()).unwrap();
    assert_eq!(ppid, child.pid());
    assert_eq!(pgrp, worker_pgrp);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grandchild_setsid_leaves_the_workers_group() {
    let (child, guard, dir) = grandchild(GrandchildMode::Setsid, false);
    let (_, _, pgrp, session) = proc_stat(guard.0).unwrap();
    let (_, _, worker_pgrp, worker_session) = proc_stat(child.pid()).unwrap();
    assert_ne!(pgrp, worker_pgrp);
    assert_eq!(pgrp, guard.0, "leads its own group");
    if std::path::Path::new("/usr/bin/setsid").exists()
        || std::path::Path::new("/bin/setsid").exists()
    {
        assert_ne!(session, worker_session);
        assert_eq!(session, guard.0, "leads its own session");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grandchild_double_fork_is_orphaned_at_once() {
    let (child, guard, dir) = grandchild(GrandchildMode::DoubleFork, false);
    let (_, ppid, _, _) = proc_stat(guard.0).unwrap();
    assert_ne!(ppid, child.pid(), "re-parented away from the worker");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", guard.0)).unwrap();
    assert_eq!(comm.trim(), "sleep", "the pid is the sleeper's");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grandchild_stdout_writer_holds_the_workers_stdout() {
    let (mut child, guard, dir) = grandchild(GrandchildMode::StdoutWriter, true);
    let stdout = child.child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..3 {
        assert_eq!(lines.next().unwrap().unwrap(), "tick");
    }
    // Killing the worker alone leaves the pipe open: the grandchild still writes.
    let worker = std::mem::replace(&mut child.child.0, Command::new("true").spawn().unwrap());
    drop(Reaped(worker));
    assert_eq!(lines.next().unwrap().unwrap(), "tick");
    drop(guard);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grandchild_ring_producer_appends_to_the_workers_ring() {
    // The worker exits once the pid file is written: with `stay`, its end
    // marker would race the squatter's records (which is the attack, but
    // not something this test can make deterministic).
    let dir = scratch_dir("ring-producer");
    let pid_file = dir.join("pid");
    let mut child = spawn(1, &[], false);
    child.hello();
    let request = fault(
        Fault::Grandchild {
            mode: GrandchildMode::RingProducer,
            then: After::Exit { code: 0 },
        },
        2,
    )
    .with_pid_file(pid_file.to_str().unwrap());
    child.send(1, "fault", &request);
    assert_eq!(child.child.0.wait().unwrap().code(), Some(0));
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let _guard = KillPid(pid);
    for expected in 0..2 {
        let (kind, request, row) = child.next(SOON).expect("the worker's rows");
        assert_eq!(
            (kind, request, sequence(&row)),
            (RecordKind::Data, 1, expected)
        );
    }
    for _ in 0..100 {
        let (kind, request, row) = child.next(SOON).expect("a squatter record");
        assert_eq!((kind, request), (RecordKind::Data, SQUATTER_REQUEST));
        assert_eq!(row.len(), SQUATTER_ROW_BYTES);
    }
    assert!(alive(pid), "the squatter outlives the worker");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grandchild_then_exit_outlives_the_worker() {
    let dir = scratch_dir("exit");
    let pid_file = dir.join("pid");
    let mut child = spawn(1, &[], false);
    child.hello();
    let request = fault(
        Fault::Grandchild {
            mode: GrandchildMode::Sleep,
            then: After::Exit { code: 7 },
        },
        0,
    )
    .with_pid_file(pid_file.to_str().unwrap());
    child.send(1, "fault", &request);
    let status = child.child.0.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let _guard = KillPid(pid);
    assert!(alive(pid));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grandchild_without_a_pid_file_fails_the_request() {
    let mut child = spawn(1, &[], false);
    child.hello();
    let request = fault(
        Fault::Grandchild {
            mode: GrandchildMode::Sleep,
            then: After::Stay,
        },
        0,
    );
    child.send(1, "fault", &request);
    let (_, end) = child.finish(1);
    let EndPayload::Err(failure) = end else {
        panic!("{end:?}")
    };
    assert_eq!(
        failure.code,
        shm_proto::payload::FailureCode::Command("no_pid_file".into())
    );
}

#[test]
fn squatter_appends_valid_records_across_wraps() {
    let memory = Arc::new(RingMemory::create(&RingConfig::with_capacity(4096)).unwrap());
    let mut command = Command::new(FIXTURE);
    command
        .env(ENV_RING_SQUATTER, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    ChildFds::new()
        .map(memory.fd(), RING_FD)
        .apply(&mut command);
    let _squatter = Reaped(command.spawn().unwrap());
    let mut consumer = Consumer::new(memory).unwrap();
    // 64-byte records in a 4 KiB ring: dozens of wraps, each with padding.
    for expected in 0..3000u64 {
        let record = consumer
            .recv_timeout(SOON)
            .unwrap()
            .expect("a squatter record");
        assert_eq!(record.kind(), RecordKind::Data);
        assert_eq!(record.request(), SQUATTER_REQUEST);
        assert_eq!(record.payload().len(), SQUATTER_ROW_BYTES);
        assert_eq!(sequence(record.payload()), expected);
    }
}

#[test]
fn a_dribbled_hello_is_valid_and_the_child_then_serves() {
    let mut child = spawn(1, &[("FIXTURE_DRIBBLE_HELLO_MS", "1")], false);
    let started = Instant::now();
    let mut prefix = [0u8; 4];
    child.control.read_exact(&mut prefix).unwrap();
    let len = u32::from_le_bytes(prefix) as usize;
    let mut body = vec![0u8; len];
    child.control.read_exact(&mut body).unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis((len + 4) as u64 - 2),
        "{} bytes in {elapsed:?}",
        len + 4
    );
    let frame: ChildFrame = serde_json::from_slice(&body).unwrap();
    assert!(matches!(frame, ChildFrame::Hello(_)), "{frame:?}");
    child.send(
        1,
        "fault",
        &fault(Fault::CommitAfterCheck { compute_ms: 0 }, 2),
    );
    let (rows, end) = child.finish(1);
    assert!(matches!(end, EndPayload::Ok(_)), "{end:?}");
    assert_eq!(rows.len(), 3);
}

#[test]
fn a_deaf_child_handshakes_beats_and_never_reads() {
    let mut child = spawn(1, &[("FIXTURE_DEAF", "1")], false);
    child.hello();
    child.send(
        1,
        "fault",
        &fault(Fault::CommitAfterCheck { compute_ms: 0 }, 2),
    );
    let beat = child.remote.heartbeat();
    assert!(
        child.next(Duration::from_millis(300)).is_none(),
        "nothing served"
    );
    assert_ne!(child.remote.heartbeat(), beat, "but beating");
    assert_eq!(child.remote.accepted_request(), 0, "and never read");
    assert!(child.child.0.try_wait().unwrap().is_none());
}

#[test]
fn fixture_modes_spare_generations_past_the_limit() {
    let env = [("FIXTURE_DEAF", "1"), ("FIXTURE_MODE_GENERATIONS", "1")];
    let mut child = spawn(2, &env, false);
    assert_eq!(child.hello().generation, 2);
    child.send(
        1,
        "fault",
        &fault(Fault::CommitAfterCheck { compute_ms: 0 }, 0),
    );
    let (rows, end) = child.finish(1);
    assert!(matches!(end, EndPayload::Ok(_)), "{end:?}");
    assert_eq!(rows.len(), 1);
}
