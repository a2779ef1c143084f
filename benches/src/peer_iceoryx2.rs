//! The peer: iceoryx2 publish-subscribe between the same two processes, the
//! shared-memory transport users would pick instead of the ring (only with
//! the `peers` feature).
//!
//! The parent creates the service and its subscriber, the re-executed child
//! opens it and publishes with `RetryUntilDelivered` backpressure (nothing is
//! lost; a full subscriber queue makes the publisher retry). Two ways:
//!
//! - one sample per row: `loan_slice_uninit(len)`, the row copied in, sent;
//! - hand-packed: as many whole rows as fit in a 64 KiB sample, each behind
//!   a 4-byte little-endian length, written straight into the loaned sample
//!   (loaned zero-filled, to stay in safe code: one `memset` per sample more
//!   than an in-place write into an uninitialized loan).
//!
//! The parent checksums every payload byte with the same
//! [`checksum`](crate::checksum::checksum) as the ring case and compares with
//! the tally the child prints on stdout once it has sent everything; the
//! child then keeps its publisher (and so its samples) alive until the parent
//! closes a "done" pipe.

use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use iceoryx2::prelude::*;
use shm_proto::{ChildFds, RING_FD, take_inherited};

use crate::checksum::Tally;
use crate::child::{ChildProc, READY_LINE, child_ready_then_wait_go, self_command};
use crate::ring_case::Throughput;
use crate::rows::{RowTemplates, SizeSpec};

/// Hidden subcommand of the iceoryx2 publisher child.
pub const CHILD_SUBCOMMAND: &str = "__child-iceoryx2";

/// Size of a hand-packed sample.
pub const PACKED_SAMPLE: usize = 64 << 10;

/// Bytes of the length prefix of a row in a hand-packed sample.
const PREFIX: usize = 4;

/// Bytes the subscriber's queue holds about (in samples: this divided by the
/// sample size, within `[16, 4096]`): the ring case's default capacity.
const QUEUE_BYTES: usize = 2 << 20;

/// How long the subscriber waits without a sample before giving up.
const NO_PROGRESS: Duration = Duration::from_secs(30);

/// Fd on which the child finds the read end of the "done" pipe.
const DONE_FD: std::os::fd::RawFd = RING_FD;

fn iox<T, E: Debug>(r: Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("iceoryx2: {what}: {e:?}"))
}

/// Samples of `sample_bytes` the subscriber's queue holds.
fn queue_len(sample_bytes: usize) -> usize {
    (QUEUE_BYTES / sample_bytes.max(1)).clamp(16, 4096)
}

/// Largest sample a run sends.
fn sample_bytes(spec: SizeSpec, packed: bool) -> usize {
    if packed {
        PACKED_SAMPLE
    } else {
        spec.max_bytes()
    }
}

fn node() -> Result<Node<ipc::Service>> {
    set_log_level_from_env_or(LogLevel::Error);
    iox(
        NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>(),
        "creating a node",
    )
}

/// The publisher child's arguments (parsed by `suite::ChildCmd::Iceoryx2`).
pub(crate) fn child_args(
    service: &str,
    rows: u64,
    spec: SizeSpec,
    seed: u64,
    packed: bool,
) -> Vec<String> {
    let mut args = vec![
        CHILD_SUBCOMMAND.to_string(),
        format!("--service={service}"),
        format!("--rows={rows}"),
        format!("--size={spec}"),
        format!("--seed={seed}"),
    ];
    if packed {
        args.push("--packed".into());
    }
    args
}

/// One run: `rows` rows of `spec`, one sample per row or hand-packed.
pub fn run_parent(rows: u64, spec: SizeSpec, seed: u64, packed: bool) -> Result<Throughput> {
    static RUN: AtomicU64 = AtomicU64::new(0);
    ensure!(
        spec.max_bytes() + PREFIX <= PACKED_SAMPLE,
        "rows of {} B do not fit a {PACKED_SAMPLE} B sample",
        spec.max_bytes()
    );
    let name = format!(
        "ringbench/{}/{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let node = node()?;
    let service_name = iox(ServiceName::new(&name), "service name")?;
    let queue = queue_len(sample_bytes(spec, packed));
    let service = iox(
        node.service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(queue)
            .enable_safe_overflow(false)
            .create(),
        "creating the service",
    )?;
    let subscriber = iox(
        service.subscriber_builder().buffer_size(queue).create(),
        "creating the subscriber",
    )?;

    let (done_read, done_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .context("creating the done pipe")?;
    let mut cmd = self_command(&child_args(&name, rows, spec, seed, packed))?;
    ChildFds::new()
        .map(done_read.as_fd(), DONE_FD)
        .die_with_parent(true)
        .apply(&mut cmd);
    let mut child = ChildProc::spawn(cmd, "iceoryx2 publisher")?;
    drop(done_read);
    let timed = (|| {
        let mut out = BufReader::new(child.take_stdout()?);
        let mut line = String::new();
        out.read_line(&mut line)
            .context("reading the child's ready line")?;
        ensure!(
            line.trim_end() == READY_LINE,
            "the iceoryx2 child did not report ready (got {line:?})"
        );
        let start = Instant::now();
        child.go()?;
        let seen = receive(&subscriber, rows, packed, || child.check_alive())?;
        let secs = start.elapsed().as_secs_f64();
        line.clear();
        out.read_line(&mut line)
            .context("reading the child's tally")?;
        let sent = parse_tally(&line)?;
        seen.verify(&sent)?;
        Ok(Throughput {
            rows: seen.rows,
            bytes: seen.bytes,
            secs,
        })
    })();
    drop(done_write);
    match timed {
        Ok(t) => {
            child.finish()?;
            Ok(t)
        }
        Err(e) => Err(child.fail(e)),
    }
}

/// Receives until `rows` rows were seen, checksumming every payload byte.
fn receive(
    subscriber: &iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8], ()>,
    rows: u64,
    packed: bool,
    mut on_idle: impl FnMut() -> Result<()>,
) -> Result<Tally> {
    let mut seen = Tally::default();
    let mut idle = 0u32;
    let mut last = Instant::now();
    while seen.rows < rows {
        match iox(subscriber.receive(), "receive")? {
            Some(sample) => {
                idle = 0;
                let payload = sample.payload();
                if packed {
                    unpack(payload, &mut seen)?;
                } else {
                    seen.add(payload);
                }
            }
            None => {
                idle += 1;
                if idle.is_multiple_of(4096) {
                    on_idle()?;
                    let now = Instant::now();
                    if idle == 4096 {
                        last = now;
                    } else if now - last > NO_PROGRESS {
                        bail!(
                            "iceoryx2: no sample for {NO_PROGRESS:?} after {} rows",
                            seen.rows
                        );
                    }
                }
                std::hint::spin_loop();
            }
        }
    }
    Ok(seen)
}

/// Adds every length-prefixed row of a hand-packed sample to `seen`.
#[inline]
fn unpack(mut sample: &[u8], seen: &mut Tally) -> Result<()> {
    while !sample.is_empty() {
        let (len, rest) = sample
            .split_first_chunk::<PREFIX>()
            .context("truncated length prefix in a packed sample")?;
        let len = u32::from_le_bytes(*len) as usize;
        ensure!(
            len <= rest.len(),
            "row of {len} B overruns its packed sample"
        );
        let (row, rest) = rest.split_at(len);
        seen.add(row);
        sample = rest;
    }
    Ok(())
}

fn parse_tally(line: &str) -> Result<Tally> {
    let words: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("malformed tally line {line:?}"))?;
    match words[..] {
        [rows, bytes, sum] => Ok(Tally { rows, bytes, sum }),
        _ => bail!("malformed tally line {line:?}"),
    }
}

/// Child side: open the service, publish, print the tally, wait for done.
pub fn run_child(service: &str, rows: u64, spec: SizeSpec, seed: u64, packed: bool) -> Result<()> {
    let done = take_inherited(DONE_FD).context("the done pipe was not inherited")?;
    let node = node()?;
    let service_name = iox(ServiceName::new(service), "service name")?;
    let service = iox(
        node.service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .open(),
        "opening the service",
    )?;
    let publisher = iox(
        service
            .publisher_builder()
            .initial_max_slice_len(sample_bytes(spec, packed))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create(),
        "creating the publisher",
    )?;
    let templates = RowTemplates::new(spec, seed);
    child_ready_then_wait_go()?;
    let mut sent = Tally::default();
    let mut i = 0;
    while i < rows {
        let receivers = if packed {
            // Whole rows that fit in one sample, then write them in place.
            let mut end = i;
            let mut bytes = 0;
            while end < rows {
                let len = PREFIX + templates.row(end).0.len();
                if bytes + len > PACKED_SAMPLE {
                    break;
                }
                bytes += len;
                end += 1;
            }
            // Safe code costs one extra pass here: `loan_slice` zero-fills
            // the sample (`loan_slice_uninit` + `write_from_fn(|_| 0)`, a
            // clear of `bytes`, up to 64 KiB per sample) before the rows are
            // written over it in place, where writing
            // them into the uninitialized loan would need `assume_init`. The
            // other safe way, packing into a private buffer and
            // `write_from_slice`, costs a full extra copy instead (read and
            // write); the clear is the cheaper of the two. So this peer does
            // a little more work per byte than it could with `unsafe`.
            let mut sample = iox(publisher.loan_slice(bytes), "loan")?;
            let mut out = &mut sample.payload_mut()[..];
            for j in i..end {
                let (row, sum) = templates.row(j);
                let (prefix, rest) = out.split_at_mut(PREFIX);
                prefix.copy_from_slice(&(row.len() as u32).to_le_bytes());
                let (body, rest) = rest.split_at_mut(row.len());
                body.copy_from_slice(row);
                out = rest;
                sent.add_known(row.len(), sum);
            }
            debug_assert!(out.is_empty());
            i = end;
            iox(sample.send(), "send")?
        } else {
            let (row, sum) = templates.row(i);
            let sample = iox(publisher.loan_slice_uninit(row.len()), "loan")?;
            sent.add_known(row.len(), sum);
            i += 1;
            iox(sample.write_from_slice(row).send(), "send")?
        };
        ensure!(
            receivers == 1,
            "sample reached {receivers} subscribers, not 1"
        );
    }
    println!("{} {} {}", sent.rows, sent.bytes, sent.sum);
    // Keep the publisher and its samples until the parent has read them all.
    let mut byte = [0u8; 1];
    let _ = std::fs::File::from(done).read(&mut byte);
    drop(publisher);
    Ok(())
}
