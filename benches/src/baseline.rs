//! The design the ring replaces: rows as 4-byte big-endian length +
//! serde_json frame over the child's stdout pipe, parsed by the parent into a
//! struct with a [`RawValue`] payload, every payload byte checksummed.
//!
//! Two variants run side by side:
//!
//! - [`Variant::Streaming`], the reported baseline, is the replaced design:
//!   the child flushes every frame, so each row reaches the parent as soon as
//!   it is written (the ring gives the same guarantee: it publishes at once
//!   to a waiting consumer), and the parent decodes each row into a struct
//!   that owns its payload (`Box<RawValue>`), as a supervisor handing rows to
//!   a sink must.
//! - [`Variant::Tuned`] is the fastest pipe design we could write: 64 KiB
//!   batched writes with no flush per frame (a row can sit unseen in the
//!   child until 64 KiB accumulate) and a payload borrowed from the frame
//!   buffer. It shows how much of the gap is the pipe itself.
//!
//! Both read through a 64 KiB buffer into one reused frame buffer.
//!
//! Frames: `{"type":"ready"}`, then one
//! `{"type":"data_row","body":{"stream":0,"sequence":N,"payload":<raw json>}}`
//! per row, then `{"type":"end","body":{"rows":..,"bytes":..,"sum":..}}`.

use std::io::{BufReader, BufWriter, Read, Write};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::checksum::Tally;
use crate::child::{ChildProc, self_command};
use crate::ring_case::Throughput;
use crate::rows::{RowTemplates, SizeSpec};

/// Hidden subcommand of the baseline producer child.
pub const CHILD_SUBCOMMAND: &str = "__child-baseline";

/// Largest frame the reader accepts (checked before allocating).
pub const MAX_FRAME: usize = 16 << 20;

/// Pipe buffer sizes on both ends.
const IO_BUF: usize = 64 << 10;

/// One frame of the baseline protocol.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", content = "body", rename_all = "snake_case")]
pub enum Frame<'a> {
    /// The child is set up and waits for "go" on stdin.
    Ready,
    /// A data row.
    #[serde(borrow)]
    DataRow(DataRow<'a>),
    /// The end of the stream with the producer's totals.
    End(EndReport),
}

/// A data row as carried by the baseline.
#[derive(Debug, Serialize, Deserialize)]
pub struct DataRow<'a> {
    /// Stream id.
    pub stream: u16,
    /// Row number, from 0.
    pub sequence: u64,
    /// The row's JSON value, unparsed.
    #[serde(borrow)]
    pub payload: &'a RawValue,
}

/// A frame decoded with an owned payload (see [`Parse::Owned`]).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", content = "body", rename_all = "snake_case")]
enum OwnedFrame {
    Ready,
    DataRow(OwnedDataRow),
    End(EndReport),
}

/// A data row that owns its payload.
#[derive(Debug, Deserialize)]
struct OwnedDataRow {
    stream: u16,
    sequence: u64,
    payload: Box<RawValue>,
}

/// How the parent decodes data frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// Into a struct owning its payload (`Box<RawValue>`).
    Owned,
    /// Into a struct borrowing its payload from the frame buffer.
    Borrowed,
}

/// Which pipe design to run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Flush per frame, owned payloads: the replaced design, the baseline.
    Streaming,
    /// Batched writes, borrowed payloads: the fastest pipe variant.
    Tuned,
}

impl Variant {
    fn parse(self) -> Parse {
        match self {
            Variant::Streaming => Parse::Owned,
            Variant::Tuned => Parse::Borrowed,
        }
    }
}

/// The producer's totals.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct EndReport {
    /// Rows sent.
    pub rows: u64,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Wrapping sum of the payload checksums.
    pub sum: u64,
}

/// Writes `{ready}`, `rows` data frames cycling through `raw` / `templates`,
/// and the end frame; returns what was sent. `before_rows` runs after the
/// ready frame is flushed (the child waits for go there).
pub fn write_rows<W: Write>(
    out: W,
    templates: &RowTemplates,
    raw: &[Box<RawValue>],
    rows: u64,
    flush_each: bool,
    before_rows: impl FnOnce() -> Result<()>,
) -> Result<Tally> {
    let mut out = BufWriter::with_capacity(IO_BUF, out);
    let mut frame = Vec::with_capacity(8192);
    let mut write_frame = |out: &mut BufWriter<W>, value: &Frame<'_>| -> Result<()> {
        frame.clear();
        serde_json::to_writer(&mut frame, value)?;
        out.write_all(&(frame.len() as u32).to_be_bytes())?;
        out.write_all(&frame)?;
        Ok(())
    };
    write_frame(&mut out, &Frame::Ready)?;
    out.flush()?;
    before_rows()?;
    let mut sent = Tally::default();
    let mask = raw.len() - 1;
    for sequence in 0..rows {
        let (payload, sum) = templates.row(sequence);
        let row = DataRow {
            stream: 0,
            sequence,
            payload: &raw[sequence as usize & mask],
        };
        write_frame(&mut out, &Frame::DataRow(row))?;
        if flush_each {
            out.flush()?;
        }
        sent.add_known(payload.len(), sum);
    }
    let end = EndReport {
        rows: sent.rows,
        bytes: sent.bytes,
        sum: sent.sum,
    };
    write_frame(&mut out, &Frame::End(end))?;
    out.flush()?;
    Ok(sent)
}

/// The templates as raw JSON values (same bytes, same order).
pub fn raw_values(templates: &RowTemplates) -> Result<Vec<Box<RawValue>>> {
    (0..templates.len() as u64)
        .map(|i| {
            let text = std::str::from_utf8(templates.row(i).0)?;
            Ok(RawValue::from_string(text.to_string())?)
        })
        .collect()
}

/// Reads frames until the end frame, parsing each and checksumming every
/// payload byte. `on_ready` runs when the ready frame arrives. Returns what
/// was seen and what the end frame reports.
pub fn read_rows<R: Read>(
    input: R,
    parse: Parse,
    on_ready: impl FnOnce() -> Result<()>,
) -> Result<(Tally, Tally)> {
    let mut input = BufReader::with_capacity(IO_BUF, input);
    let mut buf = Vec::with_capacity(8192);
    let mut seen = Tally::default();
    let mut on_ready = Some(on_ready);
    loop {
        let mut len = [0u8; 4];
        input
            .read_exact(&mut len)
            .with_context(|| format!("reading a frame length after {} rows", seen.rows))?;
        let len = u32::from_be_bytes(len) as usize;
        ensure!(len <= MAX_FRAME, "frame of {len} bytes exceeds {MAX_FRAME}");
        buf.resize(len, 0);
        input.read_exact(&mut buf).context("reading a frame")?;
        let frame = match parse {
            Parse::Borrowed => {
                serde_json::from_slice::<Frame<'_>>(&buf).context("parsing a frame")?
            }
            Parse::Owned => {
                match serde_json::from_slice::<OwnedFrame>(&buf).context("parsing a frame")? {
                    OwnedFrame::Ready => Frame::Ready,
                    OwnedFrame::End(end) => Frame::End(end),
                    OwnedFrame::DataRow(row) => {
                        check_row(&seen, row.stream, row.sequence)?;
                        seen.add(row.payload.get().as_bytes());
                        continue;
                    }
                }
            }
        };
        match frame {
            Frame::Ready => match on_ready.take() {
                Some(f) => f()?,
                None => bail!("duplicate ready frame"),
            },
            Frame::DataRow(row) => {
                check_row(&seen, row.stream, row.sequence)?;
                seen.add(row.payload.get().as_bytes());
            }
            Frame::End(end) => {
                let sent = Tally {
                    rows: end.rows,
                    bytes: end.bytes,
                    sum: end.sum,
                };
                return Ok((seen, sent));
            }
        }
    }
}

fn check_row(seen: &Tally, stream: u16, sequence: u64) -> Result<()> {
    ensure!(
        sequence == seen.rows && stream == 0,
        "row {} arrived as sequence {sequence} on stream {stream}",
        seen.rows
    );
    Ok(())
}

/// The producer child's arguments (parsed by `suite::ChildCmd::Baseline`).
pub(crate) fn child_args(rows: u64, spec: SizeSpec, seed: u64, variant: Variant) -> Vec<String> {
    let mut args = vec![
        CHILD_SUBCOMMAND.to_string(),
        format!("--rows={rows}"),
        format!("--size={spec}"),
        format!("--seed={seed}"),
    ];
    if variant == Variant::Streaming {
        args.push("--flush-each".into());
    }
    args
}

/// Runs one baseline case: spawns the child, reads and parses its stdout.
pub fn run_parent(rows: u64, spec: SizeSpec, seed: u64, variant: Variant) -> Result<Throughput> {
    let parse = variant.parse();
    let args = child_args(rows, spec, seed, variant);
    let mut child = ChildProc::spawn(self_command(&args)?, "baseline producer")?;
    let result = (|| {
        let stdout = child.take_stdout()?;
        let mut start = None;
        let (seen, sent) = read_rows(stdout, parse, || {
            start = Some(Instant::now());
            child.go()
        })?;
        let secs = start.context("no ready frame")?.elapsed().as_secs_f64();
        seen.verify(&sent)?;
        Ok(Throughput {
            rows: seen.rows,
            bytes: seen.bytes,
            secs,
        })
    })();
    match result {
        Ok(t) => {
            child.finish()?;
            Ok(t)
        }
        Err(e) => Err(child.fail(e)),
    }
}

/// Child side: build the rows, announce ready, wait for go, stream to stdout.
pub fn run_child(rows: u64, spec: SizeSpec, seed: u64, flush_each: bool) -> Result<()> {
    ensure!(
        spec.max_bytes() <= MAX_FRAME / 2,
        "rows too large for a frame"
    );
    spec.validate(usize::MAX)?;
    let templates = RowTemplates::new(spec, seed);
    let raw = raw_values(&templates)?;
    let stdout = std::io::stdout().lock();
    write_rows(stdout, &templates, &raw, rows, flush_each, || {
        let mut go = [0u8; 1];
        std::io::stdin()
            .read_exact(&mut go)
            .context("waiting for go from the parent")
    })?;
    Ok(())
}
