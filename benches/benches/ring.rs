//! In-process criterion benches: a producer thread and a consumer thread over
//! the ring, next to the pipe + length-prefixed JSON equivalent. Every payload
//! byte is checksummed on the consumer side, as in `ringbench`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ringworker_benches::baseline::{Parse, raw_values, read_rows, write_rows};
use ringworker_benches::ring_case::{consume_until_end, produce, ring_config};
use ringworker_benches::rows::{RowTemplates, SizeSpec};

/// Rows per criterion iteration.
const BATCH: u64 = 10_000;
/// Ring capacity (small rings stay cache resident).
const CAPACITY: usize = 256 << 10;

fn ring_transfer(templates: &RowTemplates, rows: u64) -> Duration {
    let (mut producer, mut consumer) = shm_proto::ring(&ring_config(CAPACITY)).expect("ring");
    let start = Instant::now();
    std::thread::scope(|s| {
        let sender = s.spawn(move || produce(&mut producer, templates, rows).expect("produce"));
        let (seen, sent) = consume_until_end(&mut consumer, || Ok(())).expect("consume");
        seen.verify(&sent).expect("checksum");
        sender.join().expect("producer thread");
    });
    start.elapsed()
}

fn pipe_transfer(templates: &RowTemplates, rows: u64) -> Duration {
    let raw = raw_values(templates).expect("raw values");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let start = Instant::now();
    std::thread::scope(|s| {
        let raw = &raw;
        let sender = s.spawn(move || {
            write_rows(writer, templates, raw, rows, true, || Ok(())).expect("write rows")
        });
        let (seen, sent) = read_rows(reader, Parse::Owned, || Ok(())).expect("read rows");
        seen.verify(&sent).expect("checksum");
        sender.join().expect("writer thread");
    });
    start.elapsed()
}

fn transfer(c: &mut Criterion) {
    for row_bytes in [100usize, 4096] {
        let templates = RowTemplates::new(SizeSpec::Fixed(row_bytes), 1);
        let mut group = c.benchmark_group(format!("rows_{row_bytes}B"));
        group
            .throughput(Throughput::Bytes(BATCH * row_bytes as u64))
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        group.bench_function("ring", |b| {
            b.iter_custom(|iters| ring_transfer(&templates, iters * BATCH))
        });
        group.bench_function("pipe_json", |b| {
            b.iter_custom(|iters| pipe_transfer(&templates, iters * BATCH))
        });
        group.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    transfer(&mut criterion);
    criterion.final_summary();
}
