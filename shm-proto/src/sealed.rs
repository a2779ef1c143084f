//! Unnamed, sealed, shared memory: the backing of rings and shared words.
//!
//! An unnamed memfd leaves nothing in `/dev/shm` and vanishes with its last
//! fd or mapping, whoever is SIGKILLed. Its pages are allocated up front
//! (`fallocate`) so a memory shortage fails at creation instead of raising
//! SIGBUS on first touch, and it is sealed against shrinking and growing so a
//! peer holding the fd cannot truncate it under the other side's mapping.

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use crate::error::RingError;

/// Creates an unnamed memfd of `len` bytes, allocated and sealed.
pub(crate) fn create(name: &CStr, len: u64) -> Result<OwnedFd, RingError> {
    use rustix::fs::{self, MemfdFlags, SealFlags};
    let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| RingError::os("memfd_create", e))?;
    fs::ftruncate(&fd, len).map_err(|e| RingError::os("ftruncate", e))?;
    fs::fallocate(&fd, fs::FallocateFlags::empty(), 0, len)
        .map_err(|e| RingError::os("fallocate", e))?;
    fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(|e| RingError::os("fcntl(F_ADD_SEALS)", e))?;
    Ok(fd)
}

/// Maps `len` bytes of `fd` shared, with page tables prefaulted.
#[cfg(any(feature = "fault-injection", feature = "reference-ring"))]
pub(crate) fn map(fd: &OwnedFd, len: usize) -> Result<memmap2::MmapRaw, RingError> {
    map_with(fd, len, true)
}

/// Maps `len` bytes of `fd` shared; `populate` prefaults the page tables
/// (worth it for the side that creates the ring ahead of time, not for a
/// child whose start-up latency counts: its first lap faults the pages in).
pub(crate) fn map_with(
    fd: &OwnedFd,
    len: usize,
    populate: bool,
) -> Result<memmap2::MmapRaw, RingError> {
    let mut options = memmap2::MmapOptions::new();
    options.len(len);
    if populate {
        options.populate();
    }
    options.map_raw(fd).map_err(|e| RingError::os("mmap", e))
}
