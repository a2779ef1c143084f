//! The fixture's large-row command (`big_rows`), and the row contents both
//! the fixture and the tests compute: rows larger than the ring's maximum
//! record, written through `row`, `json` or `reserve`, with small rows
//! around them, optionally killing the worker in the middle of one.
//! Included by `fixture.rs` and by `large_rows.rs` with `#[path]`.
#![allow(dead_code)]

use ringworker_child::{ChildRuntime, CommandError, RowWriter};
use serde::{Deserialize, Serialize};
use shm_proto::payload::{FailureCode, RuntimeCode};
use shm_proto::record::fragment;
use shm_proto::{HEADER_BYTES, HeaderWord, RecordKind, record_size};

/// The command's name.
pub const BIG_ROWS: &str = "big_rows";

/// Makes the fixture announce this per-row limit instead of the one it was
/// given (for the handshake check).
pub const ENV_ANNOUNCE_MAX_ROW: &str = "FIXTURE_ANNOUNCE_MAX_ROW_BYTES";

/// How a row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `RowWriter::row` with [`pattern`] bytes.
    Row,
    /// `RowWriter::json` of the [`json_text`] string.
    Json,
    /// `RowWriter::reserve`, filled with [`pattern`] in place, committed.
    Reserve,
}

/// One row to write: `len` content bytes, row number `index` in the request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RowSpec {
    /// Content length (for `Json`, the string's length; the row is 2 longer).
    pub len: usize,
    /// How to write it.
    pub via: Via,
}

/// Arguments of [`BIG_ROWS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BigRowsRequest {
    /// The rows, in order; row `i` has content seeded by `i`.
    pub rows: Vec<RowSpec>,
    /// SIGKILL the worker once the ring's write index has moved this many
    /// bytes past where it was when the command started.
    #[serde(default)]
    pub kill_after_bytes: Option<u64>,
    /// After the rows, forge (raw bytes, no producer) the first fragment of
    /// a row and then an ordinary row of the same request, then linger: a
    /// fragmented row interrupted, which the supervisor must refuse.
    #[serde(default)]
    pub forge_interrupted: bool,
}

/// Summary of [`BIG_ROWS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BigRowsSummary {
    /// Rows written.
    pub written: u64,
    /// Indexes of rows whose write failed with the runtime's `row_too_large`.
    pub too_large: Vec<usize>,
    /// [`checksum`] of each row as written (0 for failed ones).
    pub checksums: Vec<u64>,
}

/// The content of row `index`, `len` bytes: 8-byte words that each encode
/// the row and the word's position, so a misplaced or stale fragment shows.
pub fn pattern(index: usize, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fill(index, &mut out);
    out
}

/// Fills `out` with [`pattern`]`(index, out.len())` in place.
pub fn fill(index: usize, out: &mut [u8]) {
    let seed = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (word, chunk) in out.chunks_mut(8).enumerate() {
        let value = (word as u64 ^ seed).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (word as u64);
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
}

/// The JSON string of row `index`: `len` printable ASCII characters.
pub fn json_text(index: usize, len: usize) -> String {
    pattern(index, len)
        .into_iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect()
}

/// The bytes of row `index` as the sink must see them.
pub fn expected_row(index: usize, spec: RowSpec) -> Vec<u8> {
    match spec.via {
        Via::Row | Via::Reserve => pattern(index, spec.len),
        Via::Json => serde_json::to_vec(&json_text(index, spec.len)).unwrap(),
    }
}

/// FNV-1a over 8-byte words (tail bytes zero-padded) mixed with the length.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

/// Registers [`BIG_ROWS`] and honours [`ENV_ANNOUNCE_MAX_ROW`].
pub fn register(worker: ChildRuntime) -> ChildRuntime {
    let worker = worker.command(
        BIG_ROWS,
        "writes rows larger than the ring's maximum record",
        big_rows,
    );
    match std::env::var(ENV_ANNOUNCE_MAX_ROW)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(limit) => worker.announce_max_row_bytes(limit),
        None => worker,
    }
}

fn big_rows(
    request: BigRowsRequest,
    writer: &mut RowWriter<'_>,
) -> Result<BigRowsSummary, CommandError> {
    if let Some(after) = request.kill_after_bytes {
        let memory = writer.ring_memory().clone();
        let start = memory.debug_load(HeaderWord::WriteIndex);
        std::thread::spawn(move || {
            while memory.debug_load(HeaderWord::WriteIndex) < start + after {
                std::hint::spin_loop();
            }
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        });
    }
    let mut summary = BigRowsSummary {
        written: 0,
        too_large: Vec::new(),
        checksums: Vec::new(),
    };
    for (index, spec) in request.rows.iter().enumerate() {
        let written = match spec.via {
            Via::Row => {
                let row = pattern(index, spec.len);
                writer.row(0, &row).map(|()| checksum(&row))
            }
            Via::Json => {
                let text = json_text(index, spec.len);
                let sum = checksum(&serde_json::to_vec(&text).unwrap());
                writer.json(0, &text).map(|()| sum)
            }
            Via::Reserve => writer.reserve(0, spec.len).and_then(|mut slot| {
                fill(index, slot.payload_mut());
                let sum = checksum(slot.payload_mut());
                slot.try_commit().map(|()| sum)
            }),
        };
        match written {
            Ok(sum) => {
                summary.written += 1;
                summary.checksums.push(sum);
            }
            // The typed failure of an oversize row: nothing of it went out,
            // the command goes on.
            Err(err) if *err.code() == FailureCode::Runtime(RuntimeCode::RowTooLarge) => {
                summary.too_large.push(index);
                summary.checksums.push(0);
            }
            Err(err) => return Err(err),
        }
    }
    if request.forge_interrupted {
        forge_interrupted(writer);
    }
    Ok(summary)
}

/// Writes a first fragment (announcing 1 MiB, carrying 8 bytes) and a data
/// row straight into the ring after everything published, publishes both by
/// storing the write index, and waits to be killed.
fn forge_interrupted(writer: &mut RowWriter<'_>) -> ! {
    writer.flush();
    let request = writer.request();
    let memory = writer.ring_memory().clone();
    let head = memory.debug_load(HeaderWord::WriteIndex);
    let mask = memory.capacity() as u64 - 1;
    let mut bytes = Vec::new();
    let mut record = |kind: RecordKind, flags: u8, payload: &[u8]| {
        // The 16-byte record header: len, kind, flags, stream, request.
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[kind as u8, flags]);
        bytes.extend_from_slice(&0u16.to_le_bytes());
        bytes.extend_from_slice(&request.to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes.resize(bytes.len().next_multiple_of(8), 0);
    };
    let mut first = (1u64 << 20).to_le_bytes().to_vec();
    first.extend_from_slice(&[7; 8]);
    record(RecordKind::Fragment, fragment::FIRST, &first);
    record(RecordKind::Data, 0, b"in the middle");
    assert_eq!(bytes.len(), record_size(16) + record_size(13));
    let pos = (head & mask) as usize;
    assert!(
        pos + bytes.len() <= memory.capacity(),
        "forged records would wrap"
    );
    memory
        .debug_write_bytes(HEADER_BYTES + pos, &bytes)
        .unwrap();
    memory.debug_store(HeaderWord::WriteIndex, head + bytes.len() as u64);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
