//! The checksum both sides compute over every payload byte: the test kit's
//! ([`ringworker_testkit::checksum`]), which is `synthetic`'s per-payload
//! word sum.
//!
//! A wrapping sum of little-endian `u64` words plus the zero-padded tail: a
//! loop the compiler vectorizes, so that reading every byte costs about as
//! much as the memory traffic and does not become the benchmark's bottleneck.

pub use ringworker_testkit::checksum::{Tally, checksum};
