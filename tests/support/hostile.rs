//! `hostile_mutate`: a command that writes typed JSON rows, progress reports
//! and diagnostics (and gets an end marker with a summary written after
//! them) while a second thread of the child flips bytes of records it has
//! already published, racing the supervisor that reads them.
//!
//! Shared by the fixture worker (which registers [`hostile_mutate`]) and
//! `tests/hostile.rs` (which uses the contract types and the texts, so it
//! knows every value the child can send). Included with
//! `#[path = "support/hostile.rs"] mod hostile;`.
//!
//! The mutator only ever stores bytes that occur nowhere in valid UTF-8
//! (`0xC0`, `0xF8`, `0xFF`), so a payload it touched is never valid JSON:
//! whatever the supervisor decodes must be exactly what the command wrote,
//! and anything else must be a typed error.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringworker_child::{CommandError, RowWriter};
use serde::{Deserialize, Serialize};
use shm_proto::payload::{Diagnostic, Level, Progress};
use shm_proto::{HEADER_BYTES, HeaderWord, RECORD_HEADER_BYTES, RingMemory, record_size};

/// The command's name.
pub const HOSTILE: &str = "hostile_mutate";

/// Arguments of [`HOSTILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostileRequest {
    /// Rows to write (with a progress report every 16 and a diagnostic
    /// every 23).
    pub rows: u64,
    /// Seeds the mutator's choices.
    pub seed: u64,
    /// Mutate about one record in this many (0: none, a clean request).
    pub mutate_one_in: u64,
    /// Rows are fair game too, not only progress reports, diagnostics and
    /// the end marker (a mutated row ends the request at once, so requests
    /// that mutate rows rarely get as far as the end marker).
    pub rows_too: bool,
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostileRow {
    /// Its index in the request.
    pub i: u64,
    /// [`text`]`(i)`.
    pub text: String,
}

/// The summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostileSummary {
    /// Rows written.
    pub rows: u64,
    /// [`text`]`(rows)`.
    pub note: String,
}

/// Every text the command sends: multi-byte UTF-8 of every length.
pub const TEXTS: [&str; 4] = [
    "plain ascii text, long enough to take a while to validate and copy",
    "héllo wörld: ünïcödé ïn thé mïddlé öf à lòng mèssàgé",
    "∀ x ∈ ℕ, x + 0 = x ∧ 0 + x = x — proved ✓",
    "𝔽𝕚𝕟𝕚𝕤𝕙𝕖𝕕 𝕥𝕙𝕖 𝕤𝕨𝕖𝕖𝕡 🦀🦀",
];

/// The text of row, progress report, diagnostic or summary `i`.
pub fn text(i: u64) -> &'static str {
    TEXTS[(i % TEXTS.len() as u64) as usize]
}

/// The progress report written after row `i`.
pub fn progress(i: u64, rows: u64) -> Progress {
    Progress::new(i + 1)
        .with_total(Some(rows))
        .with_message(Some(text(i).to_owned()))
}

/// The diagnostic written after row `i`.
pub fn diagnostic(i: u64) -> Diagnostic {
    Diagnostic::new(Level::Warn, text(i))
}

/// Payload byte range `[start, end)` of a published record, as ring indices.
type Span = (u64, u64, bool);

/// The mutator of the previous request, joined before a new one starts so
/// that no mutation from it can reach a later request.
static MUTATOR: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// The command: see the module docs.
pub fn hostile_mutate(
    request: HostileRequest,
    writer: &mut RowWriter<'_>,
) -> Result<HostileSummary, CommandError> {
    if let Some(previous) = MUTATOR.lock().unwrap().take() {
        let _ = previous.join();
    }
    let memory = Arc::clone(writer.ring_memory());
    let mutate = request.mutate_one_in > 0;
    let (spans, inbox) = channel::<Span>();
    let done = Arc::new(AtomicU64::new(u64::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    if mutate {
        let (done, stop) = (done.clone(), stop.clone());
        let memory = memory.clone();
        let (seed, one_in) = (request.seed, request.mutate_one_in);
        *MUTATOR.lock().unwrap() = Some(std::thread::spawn(move || {
            mutator(&memory, &inbox, &done, &stop, seed, one_in)
        }));
    }
    let published = |writer: &mut RowWriter<'_>, len: usize, row: bool| {
        writer.flush();
        if mutate && (request.rows_too || !row) {
            let end = memory.debug_load(HeaderWord::WriteIndex);
            let start = end - record_size(len) as u64 + RECORD_HEADER_BYTES as u64;
            let _ = spans.send((start, start + len as u64, row));
        }
    };
    let result = (|| {
        for i in 0..request.rows {
            let before = writer.bytes();
            writer.json(
                0,
                &HostileRow {
                    i,
                    text: text(i).to_owned(),
                },
            )?;
            let len = (writer.bytes() - before) as usize;
            published(writer, len, true);
            if i % 16 == 15 {
                let p = progress(i, request.rows);
                writer.progress(p.done, p.total, p.message.as_deref())?;
                published(writer, serde_json::to_vec(&p).unwrap().len(), false);
            }
            if i % 23 == 22 {
                let d = diagnostic(i);
                writer.diagnostic(d.level, &d.message)?;
                published(writer, serde_json::to_vec(&d).unwrap().len(), false);
            }
        }
        Ok(HostileSummary {
            rows: request.rows,
            note: text(request.rows).to_owned(),
        })
    })();
    // From here on the mutator aims at the end marker the runtime writes
    // next: everything published after this index.
    done.store(memory.debug_load(HeaderWord::WriteIndex), Ordering::Release);
    if result.is_err() {
        stop.store(true, Ordering::Release);
    }
    result
}

fn mutator(
    memory: &RingMemory,
    inbox: &Receiver<Span>,
    done: &AtomicU64,
    stop: &AtomicBool,
    seed: u64,
    one_in: u64,
) {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let capacity = memory.capacity() as u64;
    let flip = |start: u64, end: u64, next: &mut dyn FnMut() -> u64| {
        if end <= start {
            return;
        }
        // Not yet released by the supervisor (as far as its published read
        // index says), so the slot still holds this record.
        if start < memory.debug_load(HeaderWord::ReadIndex) {
            return;
        }
        const BAD: [u8; 3] = [0xC0, 0xF8, 0xFF];
        let at = start + next() % (end - start);
        let offset = HEADER_BYTES + (at % capacity) as usize;
        for _ in 0..1 + next() % 32 {
            let _ = memory.debug_write_bytes(offset, &[BAD[(next() % 3) as usize]]);
        }
    };
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match inbox.recv_timeout(Duration::from_millis(1)) {
            Ok((start, end, _row)) => {
                if next() % one_in == 0 {
                    flip(start, end, &mut next);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let last = done.load(Ordering::Acquire);
                if last != u64::MAX {
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The end marker: wait (briefly) for it to be published, then maybe
    // flip a byte of it (past its header, which the writer padded to 8).
    let last = done.load(Ordering::Acquire);
    if last == u64::MAX || next() % 2 != 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(20);
    while Instant::now() < deadline {
        let write = memory.debug_load(HeaderWord::WriteIndex);
        if write > last {
            let start = last + RECORD_HEADER_BYTES as u64;
            flip(start, write, &mut next);
            return;
        }
        std::hint::spin_loop();
    }
}
