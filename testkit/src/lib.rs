//! `ringworker-testkit`: the one copy of the test support that ringworker's
//! integration tests (`tests/`), `shm-proto`'s integration tests, the benches
//! and the tests' fixture worker share. Unpublished (`publish = false`).
//!
//! - [`checksum`]: the order-sensitive [`checksum::Checksum`] of a request's
//!   payloads, the per-payload [`checksum::checksum`] and the benches'
//!   [`checksum::Tally`].
//! - [`rng`]: the deterministic generator ([`rng::SplitMix`]), the hash
//!   behind it and the size distributions.
//! - [`rows`]: the row format ([`rows::fill_row`]: the row's per-request
//!   sequence number in its first 8 bytes, then filler) and
//!   [`rows::RowCheck`], which verifies content and embedded sequence.
//! - [`procfs`]: fd, child, zombie, thread, `/dev/shm` and RSS scanners.
//! - [`harness`]: re-executing the running binary as a child, reaping it.
//! - [`faults`]: the `fault` command the fixture worker registers.
//!
//! # Dependency direction
//!
//! `ringworker-child` is published and cannot depend on this crate, and its
//! `synthetic` command is product: its summary carries a checksum over the
//! rows it generates. So `synthetic`'s generator, row content and
//! [`checksum::Checksum`] are *the* implementation, and this crate re-exports
//! them (`ringworker_child::builtins::synthetic::{Checksum, fill_row, mix,
//! word_sum, log_normal, Sizes, ...}`) and adds what only tests need on top.
//! A test that verifies `synthetic`'s rows therefore cannot disagree with
//! what the child computed.
//!
//! `shm-proto`'s integration tests use this crate through a dev-dependency
//! (a dev-dependency cycle `shm-proto` → kit → `ringworker-child` →
//! `shm-proto`, which cargo permits; the lib is built once). It is declared
//! under `cfg(not(loom))`: the loom model builds `shm-proto` without the
//! pieces `ringworker-child` needs. `shm-proto`'s unit tests do not use the
//! kit (they would see a second `shm-proto`).
//!
//! The fault commands live here, not in `ringworker-child`: a user writing a
//! worker should not see `Fault::ScribbleHeader`. They reach the ring through
//! `RowWriter::ring_memory()`, which exists only with `ringworker-child`'s
//! non-default `fault-injection` feature; this crate enables it.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod faults;
pub mod harness;
pub mod procfs;
pub mod rng;
pub mod rows;
