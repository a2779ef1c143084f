//! `ringworker-benches`: the pieces of `ringbench` (and the criterion benches),
//! which measure the shared-memory ring side by side with the design it
//! replaces (4-byte big-endian length + serde_json frames over a pipe).
//!
//! - [`checksum`]: the checksum both sides compute over every payload byte.
//! - [`rows`]: the payloads (JSON string literals, fixed or mixed sizes).
//! - [`child`]: re-executing this binary as a producer child, reaping it.
//! - [`ring_case`]: throughput over the ring.
//! - [`ceiling`]: the limit: a bare fixed-slot SPSC ring between the same
//!   two processes (`shm_proto::slot_ring`, feature `reference-ring`).
//! - [`baseline`]: throughput over the pipe + JSON baseline.
//! - [`e2e`]: throughput through the public `Worker::stream` API.
//! - [`large_rows`]: rows larger than the ring's records, end to end.
//! - `peer_iceoryx2` (feature `peers`): the same rows over iceoryx2.
//! - [`latency`]: idle CPU, ring wake-up vs bare futex wake-up latency.
//! - [`pin`]: parent and children on separate CPUs.
//! - [`supervision`]: kill → ready (cold and prewarmed) and the watchdog's
//!   idle CPU, through the public `Worker` API.
//! - [`pool_case`]: pool throughput with 1 and 2 workers (supervisor CPU
//!   per row next to the children's) and the idle CPU of 8 pooled workers.
//! - [`report`]: the table, JSON lines and targets.
//! - [`suite`]: the whole report as a callable suite (options, progress,
//!   the children it starts); `ringbench` prints what it returns.

// No `unsafe` here: the ceiling's raw ring is `shm_proto::slot_ring`.
#![forbid(unsafe_code)]

pub mod baseline;
pub mod ceiling;
pub mod checksum;
pub mod child;
pub mod e2e;
pub mod large_rows;
pub mod latency;
#[cfg(feature = "peers")]
pub mod peer_iceoryx2;
pub mod pin;
pub mod pool_case;
pub mod report;
pub mod ring_case;
pub mod rows;
pub mod suite;
pub mod supervision;
