//! Throughput over the shared-memory ring: a child process produces rows,
//! the parent consumes them and checksums every payload byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shm_proto::{
    ChildFds, Consumer, Producer, RING_FD, Readiness, RecordKind, RecordMeta, RingConfig,
    RingMemory, take_inherited,
};

use crate::checksum::Tally;
use crate::child::{ChildProc, child_ready_then_wait_go, self_command};
use crate::rows::{RowTemplates, SizeSpec};

/// Hidden subcommand of the ring producer child.
pub const CHILD_SUBCOMMAND: &str = "__child-ring";

/// Request id the benchmark's records carry.
const REQUEST: u64 = 1;

/// Generation the benchmark's rings are created with (checked on attach).
const GENERATION: u64 = 1;

/// Consumer wait slice; between slices the parent checks the child is alive.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// One throughput case over the ring.
#[derive(Debug, Clone)]
pub struct RingParams {
    /// Ring data capacity in bytes (power of two).
    pub capacity: usize,
    /// Rows to send.
    pub rows: u64,
    /// Payload sizes.
    pub spec: SizeSpec,
    /// Template seed.
    pub seed: u64,
    /// Producer batch size in bytes (`None`: shm-proto's default).
    pub producer_publish_every: Option<usize>,
    /// Consumer release batch size in bytes (`None`: shm-proto's default).
    pub consumer_publish_every: Option<usize>,
}

/// What a throughput run delivered and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Rows delivered and checksummed.
    pub rows: u64,
    /// Payload bytes delivered and checksummed.
    pub bytes: u64,
    /// Seconds from "go" until the end marker was consumed.
    pub secs: f64,
}

impl Throughput {
    /// Rows per second.
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.secs
    }

    /// Payload bytes per second.
    pub fn bytes_per_s(&self) -> f64 {
        self.bytes as f64 / self.secs
    }
}

/// The ring config a case runs with.
pub fn ring_config(capacity: usize) -> RingConfig {
    RingConfig::with_capacity(capacity).with_generation(GENERATION)
}

/// The producer child's arguments (parsed by `suite::ChildCmd::Ring`).
pub(crate) fn child_args(p: &RingParams) -> Vec<String> {
    let mut args = vec![
        CHILD_SUBCOMMAND.to_string(),
        format!("--rows={}", p.rows),
        format!("--size={}", p.spec),
        format!("--seed={}", p.seed),
    ];
    if let Some(n) = p.producer_publish_every {
        args.push(format!("--publish-every={n}"));
    }
    args
}

/// Runs one case: creates the ring, spawns the producer child, consumes.
pub fn run_parent(p: &RingParams) -> Result<Throughput> {
    let memory = Arc::new(RingMemory::create(&ring_config(p.capacity))?);
    p.spec.validate(memory.max_payload())?;
    let mut cmd = self_command(&child_args(p))?;
    ChildFds::new()
        .map(memory.fd(), RING_FD)
        .die_with_parent(true)
        .apply(&mut cmd);
    let mut child = ChildProc::spawn(cmd, "ring producer")?;
    let mut consumer = Consumer::new(memory)?;
    if let Some(n) = p.consumer_publish_every {
        consumer.set_publish_every(n);
    }
    match consume_timed(&mut child, &mut consumer) {
        Ok(t) => {
            child.finish()?;
            Ok(t)
        }
        Err(e) => Err(child.fail(e)),
    }
}

fn consume_timed(child: &mut ChildProc, consumer: &mut Consumer) -> Result<Throughput> {
    child.await_ready()?;
    let start = Instant::now();
    child.go()?;
    let (seen, sent) = consume_until_end(consumer, || child.check_alive())?;
    let secs = start.elapsed().as_secs_f64();
    seen.verify(&sent)?;
    Ok(Throughput {
        rows: seen.rows,
        bytes: seen.bytes,
        secs,
    })
}

/// Consumes data rows until the end record, checksumming every payload byte.
/// Drains with `try_recv` and only waits when the ring is empty; `on_idle`
/// runs whenever a wait slice passes without data (to notice a dead
/// producer). Returns what was seen and what the end record reports.
pub fn consume_until_end(
    consumer: &mut Consumer,
    mut on_idle: impl FnMut() -> Result<()>,
) -> Result<(Tally, Tally)> {
    let mut seen = Tally::default();
    loop {
        let got = match consumer.try_recv()? {
            Some(record) => {
                match record.kind() {
                    RecordKind::Data => seen.add(record.payload()),
                    RecordKind::End => {
                        let sent = Tally::from_bytes(record.payload())
                            .context("malformed end record from the producer")?;
                        return Ok((seen, sent));
                    }
                    other => bail!("unexpected {other:?} record after {} rows", seen.rows),
                }
                true
            }
            None => false,
        };
        if got {
            continue;
        }
        match consumer.wait(WAIT_SLICE)? {
            Readiness::Ready | Readiness::Woken => {}
            Readiness::TimedOut => on_idle()?,
            Readiness::Closed => {
                bail!(
                    "ring closed before the end record, after {} rows",
                    seen.rows
                )
            }
        }
    }
}

/// Produces `rows` rows cycling through `templates`, then an end record
/// carrying the producer's [`Tally`], and flushes.
pub fn produce(producer: &mut Producer, templates: &RowTemplates, rows: u64) -> Result<Tally> {
    let meta = RecordMeta::data(REQUEST, 0);
    let mut sent = Tally::default();
    for i in 0..rows {
        let (payload, sum) = templates.row(i);
        producer.push(meta, payload)?;
        sent.add_known(payload.len(), sum);
    }
    producer.push(
        RecordMeta::of_kind(RecordKind::End, REQUEST),
        &sent.to_bytes(),
    )?;
    producer.flush();
    Ok(sent)
}

/// Child side: attach to the inherited ring, wait for go, produce, close.
pub fn run_child(rows: u64, spec: SizeSpec, seed: u64, publish_every: Option<usize>) -> Result<()> {
    let fd = take_inherited(RING_FD).context("the ring fd was not inherited")?;
    let memory = Arc::new(RingMemory::attach(fd, Some(GENERATION))?);
    spec.validate(memory.max_payload())?;
    let mut producer = Producer::new(memory)?;
    if let Some(n) = publish_every {
        producer.set_publish_every(n);
    }
    let templates = RowTemplates::new(spec, seed);
    child_ready_then_wait_go()?;
    produce(&mut producer, &templates, rows)?;
    producer.close();
    Ok(())
}
