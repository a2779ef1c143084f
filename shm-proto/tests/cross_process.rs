//! The ring between two real processes: this test binary re-executes itself
//! as the child (`child_producer_entry`, selected with `--exact` and enabled
//! by an environment variable), which attaches to the ring through the fd it
//! inherited and streams millions of rows of random sizes to the parent.
//!
//! Also: attach/inherit failures are typed, the child inherits nothing but
//! its ring fd, nothing appears in `/dev/shm`, and no fd is leaked.

#![cfg(not(loom))]

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringworker_testkit::checksum::Checksum;
use ringworker_testkit::harness::{is_reexec, reexec_test};
use ringworker_testkit::procfs::{dev_shm, fd_numbers, fd_table};
use ringworker_testkit::rng::heavy_tail_size;
use ringworker_testkit::rows::{check_sequence, fill_row};
use shm_proto::{
    ChildFds, ClosedBy, Consumer, CorruptField, ErrorKind, Producer, RING_FD, RecordKind,
    RecordMeta, RingConfig, RingError, RingMemory, SharedWords, take_inherited,
};

/// Set (to anything) in the child's environment.
const CHILD_ENV: &str = "SHM_PROTO_TEST_CHILD";
/// Rows to stream, generation and PRNG seed, passed to the child.
const ROWS_ENV: &str = "SHM_PROTO_TEST_ROWS";
const GENERATION_ENV: &str = "SHM_PROTO_TEST_GENERATION";
const SEED_ENV: &str = "SHM_PROTO_TEST_SEED";

/// The parent tests open and close fds and compare `/proc/self/fd`, so they
/// run one at a time (libtest runs the tests of one binary on many threads).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- row format
//
// Rows are the test kit's (`synthetic`'s): the sequence number in the first
// 8 bytes, then filler; `Checksum` is order-sensitive over every byte.

/// Payload length of row `seq`: mostly 0..=512 bytes, one row in 128 up to 16 KiB.
fn row_len(seed: u64, seq: u64) -> usize {
    heavy_tail_size(seed, seq, 512, 16 << 10)
}

// --------------------------------------------------------------------- child

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set"))
        .parse()
        .unwrap()
}

/// The child's side. A no-op unless this binary was started as the child.
#[test]
fn child_producer_entry() {
    if !is_reexec(CHILD_ENV) {
        return;
    }
    // What this process has open, before taking over anything.
    let fds: Vec<String> = fd_table()
        .into_iter()
        .map(|f| format!("{}\t{}", f.fd, f.target))
        .collect();

    let fd = take_inherited(RING_FD).expect("ring fd not inherited");
    let generation = env_u64(GENERATION_ENV);
    let memory = RingMemory::attach(fd, Some(generation)).expect("attach");
    let mut tx = Producer::new(Arc::new(memory)).unwrap();

    tx.push(
        RecordMeta::of_kind(RecordKind::Diagnostic, 0),
        fds.join("\n").as_bytes(),
    )
    .unwrap();

    let rows = env_u64(ROWS_ENV);
    let seed = env_u64(SEED_ENV);
    let mut sum = Checksum::default();
    for seq in 0..rows {
        let len = row_len(seed, seq);
        let mut slot = tx
            .reserve(RecordMeta::data(seq, (seq % 5) as u16), len)
            .unwrap();
        let payload = slot.payload_mut();
        fill_row(seed, seq, payload);
        sum.add(payload);
        slot.commit();
        if seq % 65536 == 0 {
            tx.beat();
        }
    }
    let mut end = [0u8; 16];
    end[..8].copy_from_slice(&rows.to_le_bytes());
    end[8..].copy_from_slice(&sum.value().to_le_bytes());
    tx.push(RecordMeta::of_kind(RecordKind::End, rows), &end)
        .unwrap();
    tx.close();
}

// -------------------------------------------------------------------- parent

/// Spawns this test binary as the producer child of `memory`.
fn spawn_child(memory: &RingMemory, rows: u64, seed: u64) -> std::process::Child {
    let mut cmd = reexec_test("child_producer_entry", CHILD_ENV);
    cmd.env(ROWS_ENV, rows.to_string())
        .env(GENERATION_ENV, memory.generation().to_string())
        .env(SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ChildFds::new()
        .map(memory.fd(), RING_FD)
        .die_with_parent(true)
        .apply(&mut cmd);
    cmd.spawn().unwrap()
}

struct Received {
    rows: u64,
    bytes: u64,
    child_fds: String,
}

/// Consumes the child's rows, checking each against the generator, until the
/// end marker and the close.
fn consume(rx: &mut Consumer, child: &mut std::process::Child, rows: u64, seed: u64) -> Received {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut next = 0u64;
    let mut bytes = 0u64;
    let mut sum = Checksum::default();
    let mut child_fds = None;
    let mut end = None;
    loop {
        assert!(Instant::now() < deadline, "stalled at row {next}");
        let record = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(record)) => record,
            Ok(None) => {
                if let Some(status) = child.try_wait().unwrap()
                    && !status.success()
                {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                    }
                    panic!("child failed after {next} rows: {status}\n{stderr}");
                }
                continue;
            }
            Err(RingError::Closed {
                by: ClosedBy::Producer,
            }) => break,
            Err(e) => panic!("consumer error after {next} rows: {e}"),
        };
        match record.kind() {
            RecordKind::Diagnostic => {
                assert!(child_fds.is_none());
                child_fds = Some(String::from_utf8(record.payload().to_vec()).unwrap());
            }
            RecordKind::Data => {
                assert!(end.is_none(), "row after the end marker");
                let seq = record.request();
                assert_eq!(seq, next, "row out of order");
                assert_eq!(record.stream(), (seq % 5) as u16);
                let payload = record.payload();
                assert_eq!(payload.len(), row_len(seed, seq), "length of row {seq}");
                // The sequence number the child wrote (every byte goes
                // into the checksum).
                if let Err(err) = check_sequence(payload, next) {
                    panic!("sequence number embedded in row {seq}: {err}");
                }
                sum.add(payload);
                bytes += payload.len() as u64;
                next += 1;
            }
            RecordKind::End => {
                let p = record.payload();
                assert_eq!(p.len(), 16);
                end = Some((
                    u64::from_le_bytes(p[..8].try_into().unwrap()),
                    u64::from_le_bytes(p[8..].try_into().unwrap()),
                ));
            }
            other => panic!("unexpected record kind {other:?}"),
        }
    }
    let (child_rows, child_sum) = end.expect("no end marker");
    assert_eq!(child_rows, rows);
    assert_eq!(next, rows, "rows received");
    assert_eq!(child_sum, sum.value(), "checksum of all payload bytes");
    Received {
        rows: next,
        bytes,
        child_fds: child_fds.expect("no fd report from the child"),
    }
}

fn stream_rows(rows: u64, seed: u64) {
    let _serial = serial();
    let shm_before = dev_shm();
    let fds_before = fd_table();
    // The child may inherit exactly: stdio, its ring fd, and whatever this
    // process itself inherited without close-on-exec (e.g. from the shell
    // or cargo) that is not shadowed by the ring fd.
    let mut allowed: BTreeSet<i32> = [0, 1, 2, RING_FD].into();
    allowed.extend(fds_before.iter().filter(|f| !f.cloexec).map(|f| f.fd));

    let start = Instant::now();
    {
        let memory = Arc::new(
            RingMemory::create(
                &RingConfig::with_capacity(1 << 20)
                    .with_max_payload(64 << 10)
                    .with_generation(0xC0FFEE),
            )
            .unwrap(),
        );
        let mut child = spawn_child(&memory, rows, seed);
        let mut rx = Consumer::new(memory.clone()).unwrap();
        assert_eq!(
            dev_shm(),
            shm_before,
            "/dev/shm changed while the ring is live"
        );

        let received = consume(&mut rx, &mut child, rows, seed);
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "child failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );

        // The child's fds: only allowed numbers, the ring memfd on RING_FD,
        // and no second copy of it anywhere (no scratch dup survived exec).
        let mut child_fds = BTreeSet::new();
        for line in received.child_fds.lines() {
            let (fd, target) = line.split_once('\t').unwrap();
            let fd: i32 = fd.parse().unwrap();
            child_fds.insert(fd);
            if fd == RING_FD {
                assert!(target.starts_with("/memfd:ringworker-ring"), "{line}");
            } else {
                assert!(
                    !target.starts_with("/memfd:"),
                    "extra memfd in the child: {line}"
                );
            }
        }
        assert!(child_fds.contains(&RING_FD), "{}", received.child_fds);
        assert!(
            child_fds.is_subset(&allowed),
            "child has unexpected fds:\n{}\nallowed: {allowed:?}",
            received.child_fds
        );
        eprintln!(
            "streamed {} rows, {} MiB across processes in {:.2?}",
            received.rows,
            received.bytes >> 20,
            start.elapsed()
        );
    }
    assert_eq!(dev_shm(), shm_before, "/dev/shm entries left behind");
    assert_eq!(
        fd_numbers(),
        fds_before.iter().map(|f| f.fd).collect(),
        "fds leaked"
    );
}

#[test]
fn child_streams_ten_million_rows_with_checksum() {
    let rows = std::env::var(ROWS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    stream_rows(rows, 0x5EED_0001);
}

#[test]
fn attach_with_the_wrong_generation_fails_typed() {
    let _serial = serial();
    let memory = RingMemory::create(&RingConfig::with_capacity(4096).with_generation(5)).unwrap();
    let fd = memory.fd().try_clone_to_owned().unwrap();
    let err = RingMemory::attach(fd, Some(6)).unwrap_err();
    assert!(
        matches!(
            err,
            RingError::Corrupt {
                field: CorruptField::Generation,
                found: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Corruption);
    let fd = memory.fd().try_clone_to_owned().unwrap();
    assert_eq!(RingMemory::attach(fd, Some(5)).unwrap().generation(), 5);
    let fd = memory.fd().try_clone_to_owned().unwrap();
    assert_eq!(RingMemory::attach(fd, None).unwrap().capacity(), 4096);
}

#[test]
fn attaching_something_that_is_not_a_ring_fails_typed() {
    let _serial = serial();
    // A memfd of another kind (one page: too small for any ring).
    let words = SharedWords::create().unwrap();
    let err = RingMemory::attach(words.fd().try_clone_to_owned().unwrap(), None).unwrap_err();
    assert!(
        matches!(
            err,
            RingError::Corrupt {
                field: CorruptField::Capacity,
                ..
            }
        ),
        "{err:?}"
    );

    // A plain file of exactly a ring's size, all zeros.
    let path = std::env::temp_dir().join(format!("shm-proto-not-a-ring-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.set_len((shm_proto::HEADER_BYTES + 4096) as u64)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = RingMemory::attach(file.as_fd().try_clone_to_owned().unwrap(), None).unwrap_err();
    assert!(
        matches!(
            err,
            RingError::Corrupt {
                field: CorruptField::Magic,
                found: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Corruption);

    // The same file opened write-only cannot be mapped shared.
    let write_only = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", file.as_fd().as_raw_fd()))
        .unwrap();
    let err = RingMemory::attach(write_only.into(), None).unwrap_err();
    assert!(matches!(err, RingError::Os { op: "mmap", .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::System);

    // Something that cannot be mapped at all: a directory.
    let dir = std::fs::File::open("/").unwrap();
    let err = RingMemory::attach(dir.into(), None).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Corruption | ErrorKind::System),
        "{err:?}"
    );
}

#[test]
fn take_inherited_fails_on_a_closed_fd() {
    let _serial = serial();
    let fds = fd_numbers();
    let unused = (900..1000).find(|fd| !fds.contains(fd)).unwrap();
    let err = take_inherited(unused).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    // Still not taken, still failing the same way.
    assert_eq!(
        take_inherited(unused).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}
