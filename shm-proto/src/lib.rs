//! `shm-proto`: the wire of ringworker.
//!
//! A single-producer single-consumer byte ring in shared memory that carries
//! records from a worker child (producer) to its supervisor (consumer).
//!
//! Layering, bottom up:
//!
//! - `layout` (crate-private): the `#[repr(C)]` header of atomics, one
//!   128-byte line per writer, with the invariants of every word documented
//!   on its field. Only this crate can store to a header word, and only the
//!   half that owns it does: [`Producer`] publishes the write index and
//!   beats, [`Consumer`] publishes the read index, [`ConsumerRemote`]
//!   (obtainable only from a claimed consumer) cancels, poisons and wakes.
//! - [`record`]: the 16-byte record header, record kinds and sizing.
//! - `sealed`: unnamed, allocated, sealed memfds and their shared mappings.
//! - `memory`: the ring's mapping ([`RingMemory`]), created by the
//!   supervisor and attached by the child from an inherited fd. It offers
//!   identity and geometry only; nothing on it stores to shared memory.
//! - `wait`: spin-then-futex waiting on shared futex words.
//! - `producer` / `consumer`: the two halves; the consumer validates every
//!   value it reads from shared memory. `record_ref`: the [`Record`] a
//!   consumer hands out, a borrow of a payload in shared memory, with the
//!   note on why that borrow is sound.
//! - `inherit`: placing fds at fixed numbers in a child and taking them over.
//! - [`contain`]: the worker's process group, limits and the subreaper shim
//!   that holds its whole process tree, run from `inherit`'s spawn hook.
//! - [`fork`]: warm templates: forking workers from a template process
//!   (`clone(CLONE_PARENT)`) and passing their fds over `SCM_RIGHTS`.
//! - `slot_ring` (feature `reference-ring`): a bare fixed-slot SPSC ring,
//!   the benchmarks' reference, sharing nothing with the layers above but
//!   `sealed`.
//!
//! This is the only core crate with `unsafe`: each block states its local
//! reason in a `// SAFETY:` line, and each Acquire names its Release.
//!
//! # Features
//!
//! - `fault-injection` (off by default): raw, protocol-free writes to the
//!   mapping (`RingMemory::debug_write_bytes`, `RingMemory::debug_store` /
//!   `debug_load` / `debug_futex_wake` on a `HeaderWord`) and `SharedWords`,
//!   for tests, benchmarks and the worker's fault commands. Never enable it
//!   in production builds: it is exactly what a hostile peer can do, offered
//!   as an API.
//! - `reference-ring` (off by default): `slot_ring`, the bare fixed-slot ring
//!   that `ringbench` reports as its "ceiling". For benchmarks only: it trusts
//!   its peer beyond memory safety (no validation of content, no recovery).

mod command;
pub mod control;
pub mod payload;
pub mod record;

mod consumer;
pub mod contain;
mod error;
#[cfg(not(loom))]
pub mod fork;
#[cfg(all(not(loom), feature = "fault-injection"))]
mod futex_word;
mod inherit;
pub(crate) mod layout;
mod memory;
mod producer;
mod record_ref;
pub mod sched;
#[cfg(not(loom))]
mod sealed;
#[cfg(all(not(loom), feature = "reference-ring"))]
pub mod slot_ring;
mod sync;
mod wait;

pub use command::Command;
pub use consumer::{Consumer, ConsumerRemote, ConsumerStats, Readiness};
pub use contain::{Rlimit, shim_worker_pid, tree_containment_available};
pub use error::{ClosedBy, CorruptField, ErrorKind, Half, RingError};
#[cfg(all(not(loom), feature = "fault-injection"))]
pub use futex_word::{SHARED_U32_WORDS, SHARED_U64_WORDS, SharedWords};
pub use inherit::{CONTROL_FD, ChildFds, RING_FD, take_inherited};
pub use layout::{HEADER_BYTES, LAYOUT_VERSION, MAGIC, MAX_CAPACITY, MIN_CAPACITY};
#[cfg(feature = "fault-injection")]
pub use memory::HeaderWord;
pub use memory::{RingConfig, RingMemory};
pub use producer::{Producer, ProducerStats, Slot};
pub use record::{RECORD_HEADER_BYTES, RecordHeader, RecordKind, RecordMeta, record_size};
pub use record_ref::Record;
pub use wait::WaitStrategy;

/// Creates a ring and claims both halves in this process (tests, benchmarks,
/// in-process pipelines).
#[cfg(not(loom))]
pub fn ring(config: &RingConfig) -> Result<(Producer, Consumer), RingError> {
    let memory = std::sync::Arc::new(RingMemory::create(config)?);
    Ok((Producer::new(memory.clone())?, Consumer::new(memory)?))
}
