//! A page of plain shared atomic words with shared-futex wait/wake, for
//! signalling between processes outside a ring.
//!
//! [`SharedWords`] is one sealed memfd page (created like a ring's backing:
//! unnamed, `MFD_CLOEXEC`, sized, sealed against shrink/grow, mapped shared
//! and prefaulted) holding [`SHARED_U32_WORDS`] 32-bit futex words followed
//! by [`SHARED_U64_WORDS`] 64-bit words. It is attachable from another
//! process given only its fd (inherited, see [`crate::ChildFds`]). Uses: a
//! wake-up word for a watchdog in another process, a bare futex ping-pong to
//! compare ring wake-ups against (`ringbench`), small shared counters.
//!
//! Every word is an atomic, valid for any bit pattern, so a peer that writes
//! garbage can only change values, never cause undefined behaviour here.
//!
//! Only with the `fault-injection` feature: the rings do not need it, and
//! only benchmarks and tests use it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::error::RingError;
use crate::sealed;
use crate::sync::{AtomicU32, AtomicU64};
use crate::wait::{self, Wakeup};

/// Number of 32-bit (futex) words in a [`SharedWords`] page.
pub const SHARED_U32_WORDS: usize = 256;
/// Number of 64-bit words in a [`SharedWords`] page.
pub const SHARED_U64_WORDS: usize = 384;

/// Size of the shared page in bytes.
const PAGE_BYTES: usize = 4096;

/// The page layout: 32-bit words first, then 64-bit words; no mixed-size
/// access to any byte.
#[repr(C)]
struct WordsPage {
    u32s: [AtomicU32; SHARED_U32_WORDS],
    u64s: [AtomicU64; SHARED_U64_WORDS],
}

const _: () = {
    assert!(std::mem::size_of::<WordsPage>() == PAGE_BYTES);
    assert!(std::mem::align_of::<WordsPage>() <= PAGE_BYTES);
    assert!(std::mem::offset_of!(WordsPage, u64s) == 4 * SHARED_U32_WORDS);
};

/// A sealed shared page of atomic words (see the module docs).
pub struct SharedWords {
    /// Owns the mapping that `page` points into.
    _map: memmap2::MmapRaw,
    fd: OwnedFd,
    page: *const WordsPage,
}

// SAFETY: `page` points into `_map`, owned by `self` and alive as long as it
// is; the page holds only atomics, which may be accessed from any thread.
unsafe impl Send for SharedWords {}
// SAFETY: as above; `&SharedWords` exposes nothing but shared references to atomics.
unsafe impl Sync for SharedWords {}

impl std::fmt::Debug for SharedWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWords")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl SharedWords {
    /// Creates a zeroed page in a new unnamed, sealed memfd.
    pub fn create() -> Result<Self, RingError> {
        let fd = sealed::create(c"ringworker-words", PAGE_BYTES as u64)?;
        Self::map(fd)
    }

    /// Attaches to a page created by [`SharedWords::create`] (normally in
    /// another process), given its fd. Fails unless the file is exactly one
    /// page and sealed against shrinking, so the peer cannot truncate it
    /// under this mapping.
    pub fn attach(fd: OwnedFd) -> Result<Self, RingError> {
        use rustix::fs::{self, SealFlags};
        let size = fs::fstat(&fd)
            .map_err(|e| RingError::os("fstat", e))?
            .st_size;
        if size != PAGE_BYTES as i64 {
            return Err(RingError::InvalidConfig {
                reason: format!("shared words file is {size} bytes, expected {PAGE_BYTES}"),
            });
        }
        let seals = fs::fcntl_get_seals(&fd).map_err(|e| RingError::os("fcntl(F_GET_SEALS)", e))?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(RingError::InvalidConfig {
                reason: "shared words file is not sealed against shrink/grow".to_string(),
            });
        }
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> Result<Self, RingError> {
        let map = sealed::map(&fd, PAGE_BYTES)?;
        let page = map.as_ptr().cast::<WordsPage>();
        Ok(SharedWords {
            _map: map,
            fd,
            page,
        })
    }

    #[inline]
    fn page(&self) -> &WordsPage {
        // Every field is an atomic, valid for any bit pattern and for
        // concurrent access from other processes.
        // SAFETY: `page` starts a live, page-aligned, page-long mapping owned by `self`.
        unsafe { &*self.page }
    }

    /// The memfd, to hand to a child (see [`crate::ChildFds`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// 32-bit word `i` (usable with [`SharedWords::wait`] and [`SharedWords::wake`]).
    ///
    /// # Panics
    /// If `i >= SHARED_U32_WORDS`.
    #[inline]
    pub fn word32(&self, i: usize) -> &AtomicU32 {
        &self.page().u32s[i]
    }

    /// 64-bit word `i`.
    ///
    /// # Panics
    /// If `i >= SHARED_U64_WORDS`.
    #[inline]
    pub fn word64(&self, i: usize) -> &AtomicU64 {
        &self.page().u64s[i]
    }

    /// Sleeps on 32-bit word `i` while it holds `expected`, for at most
    /// `timeout` (a shared futex: woken by [`SharedWords::wake`] from any
    /// process mapping the page). Returns `true` if woken or the word did not
    /// hold `expected` (callers re-check the word either way; spurious
    /// wake-ups happen), `false` if the timeout elapsed.
    ///
    /// # Panics
    /// If `i >= SHARED_U32_WORDS`.
    pub fn wait(&self, i: usize, expected: u32, timeout: Duration) -> Result<bool, RingError> {
        Ok(wait::futex_wait(self.word32(i), expected, timeout)? == Wakeup::Woken)
    }

    /// Wakes every sleeper on 32-bit word `i`, in any process.
    ///
    /// # Panics
    /// If `i >= SHARED_U32_WORDS`.
    pub fn wake(&self, i: usize) {
        wait::futex_wake(self.word32(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn words_are_shared_between_two_mappings() {
        let a = SharedWords::create().unwrap();
        let fd = a.fd().try_clone_to_owned().unwrap();
        let b = SharedWords::attach(fd).unwrap();
        a.word64(SHARED_U64_WORDS - 1).store(42, Ordering::Relaxed);
        a.word32(7).store(9, Ordering::Relaxed);
        assert_eq!(b.word64(SHARED_U64_WORDS - 1).load(Ordering::Relaxed), 42);
        assert_eq!(b.word32(7).load(Ordering::Relaxed), 9);
    }

    #[test]
    fn wait_times_out_or_sees_a_changed_word() {
        let w = SharedWords::create().unwrap();
        assert!(!w.wait(0, 0, Duration::from_millis(5)).unwrap());
        assert!(w.wait(0, 1, Duration::from_millis(5)).unwrap());
    }

    #[test]
    fn wake_reaches_a_sleeper() {
        let w = std::sync::Arc::new(SharedWords::create().unwrap());
        let sleeper = {
            let w = w.clone();
            std::thread::spawn(move || {
                // Pairs with the waker's Release store below.
                while w.word32(1).load(Ordering::Acquire) == 0 {
                    w.wait(1, 0, Duration::from_secs(5)).unwrap();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        w.word32(1).store(1, Ordering::Release);
        w.wake(1);
        sleeper.join().unwrap();
    }

    #[test]
    fn attach_rejects_unsealed_or_wrong_size_files() {
        use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
        let fd = memfd_create(c"t", MemfdFlags::CLOEXEC).unwrap();
        assert!(SharedWords::attach(fd).is_err());
        let fd = memfd_create(c"t", MemfdFlags::CLOEXEC).unwrap();
        ftruncate(&fd, PAGE_BYTES as u64).unwrap();
        assert!(SharedWords::attach(fd).is_err());
    }
}
