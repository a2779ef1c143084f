//! Memory of a child as the kernel accounts it: `RssAnon` from
//! `/proc/<pid>/status`, the figure the limits apply to.
//!
//! The ring's pages are shared memory (`RssShmem`) and never count: a child
//! that only touches its 64 MiB ring is not near a 32 MiB limit. A child's
//! heap, stacks and private copies are anonymous memory and do count.

use std::time::Instant;

/// One reading of a child's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RssSample {
    /// Pid the sample was read from (the worker itself, not a containment shim).
    pub pid: u32,
    /// Anonymous resident memory in bytes (`RssAnon`).
    pub rss_anon: u64,
    /// Shared-memory resident bytes (`RssShmem`: the ring, among others); reported, never limited.
    pub rss_shmem: u64,
    /// Anonymous memory a child forked from a warm template already had
    /// when it answered its handshake: the template's pages it maps
    /// copy-on-write, which `RssAnon` counts in every fork. Not limited
    /// (0 for exec'd children); see [`RssSample::limited`].
    pub inherited: u64,
    /// When it was read.
    pub at: Instant,
}

impl RssSample {
    /// The bytes the memory limits apply to: `rss_anon` beyond `inherited`.
    /// (A page of the template a forked child writes to becomes its own
    /// copy without changing `RssAnon`: such copies are not counted.)
    pub fn limited(&self) -> u64 {
        self.rss_anon.saturating_sub(self.inherited)
    }
}

/// What sampling a pid gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sampled {
    Sample(RssSample),
    /// `/proc` is not mounted or the pid's status has no `RssAnon` line (a
    /// zombie, a kernel without the field): counted, never treated as a breach.
    Unavailable,
}

/// Reads `/proc/<pid>/status`. One `read` of a ~1.5 KiB file.
pub(crate) fn sample(pid: u32) -> Sampled {
    let Ok(status) = std::fs::read(format!("/proc/{pid}/status")) else {
        return Sampled::Unavailable;
    };
    let (mut anon, mut shmem) = (None, None);
    for line in status.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"RssAnon:") {
            anon = parse_kib(rest);
        } else if let Some(rest) = line.strip_prefix(b"RssShmem:") {
            shmem = parse_kib(rest);
        }
    }
    match anon {
        Some(rss_anon) => Sampled::Sample(RssSample {
            pid,
            rss_anon,
            rss_shmem: shmem.unwrap_or(0),
            inherited: 0,
            at: Instant::now(),
        }),
        None => Sampled::Unavailable,
    }
}

/// `"   1234 kB"` as bytes.
fn parse_kib(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?.trim();
    let number = text.strip_suffix("kB").unwrap_or(text).trim();
    number.parse::<u64>().ok()?.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib_fields() {
        assert_eq!(parse_kib(b"    1234 kB"), Some(1234 * 1024));
        assert_eq!(parse_kib(b"\t0 kB"), Some(0));
        assert_eq!(parse_kib(b" x kB"), None);
    }

    #[test]
    fn samples_this_process() {
        match sample(std::process::id()) {
            Sampled::Sample(s) => {
                assert_eq!(s.pid, std::process::id());
                assert!(s.rss_anon > 0, "{s:?}");
            }
            Sampled::Unavailable => panic!("/proc is mounted on the development machines"),
        }
    }

    #[test]
    fn a_missing_pid_is_unavailable() {
        // Pid numbers are below 2^22 on Linux.
        assert_eq!(sample(u32::MAX - 1), Sampled::Unavailable);
    }
}
