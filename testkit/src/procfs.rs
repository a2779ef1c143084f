//! What this process holds, read from `/proc`: fds, children (zombie or
//! not), threads, `/dev/shm` entries and mappings, anonymous RSS. The leak
//! tests compare these before and after.
//!
//! fds and threads are per process: a test comparing them must not run in
//! parallel with tests that open fds or start threads (own binary, or a
//! lock).

use std::collections::BTreeSet;

/// One open fd of this process.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenFd {
    /// The fd number.
    pub fd: i32,
    /// Its link target (`/memfd:ringworker-ring (deleted)`, `pipe:[123]`, ...).
    pub target: String,
    /// Whether it is close-on-exec.
    pub cloexec: bool,
}

/// The fds open in this process right now, by number, without the one used
/// to list them.
pub fn fd_table() -> Vec<OpenFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds = Vec::new();
    for entry in dir.filter_map(|e| e.ok()) {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // Gone since the listing (or the listing's own fd, closed by now).
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if target.starts_with("/proc/") && target.ends_with("/fd") {
            continue; // the listing's own directory fd
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        const O_CLOEXEC: u32 = 0o2000000;
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        fds.push(OpenFd {
            fd,
            target,
            cloexec: flags & O_CLOEXEC != 0,
        });
    }
    fds.sort();
    fds
}

/// The fds open in this process right now, as `"<fd> -> <target>"`.
pub fn open_fds() -> BTreeSet<String> {
    fd_table()
        .into_iter()
        .map(|f| format!("{} -> {}", f.fd, f.target))
        .collect()
}

/// The numbers of the fds open in this process right now.
pub fn fd_numbers() -> BTreeSet<i32> {
    fd_table().into_iter().map(|f| f.fd).collect()
}

/// Entries in `/dev/shm`, other than those of the iceoryx2 peer benchmark.
pub fn dev_shm() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // ringworker itself never names a segment; these belong to
                // the iceoryx2 peer of `ringbench --features peers`, which
                // may run beside the tests on a shared machine.
                .filter(|name| !name.starts_with(IOX2_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// Name prefix of iceoryx2's `/dev/shm` segments.
const IOX2_PREFIX: &str = "iox2_";

/// This process's mappings of files in `/dev/shm` (lines of `/proc/self/maps`).
pub fn shm_mappings() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/dev/shm/"))
        .map(str::to_owned)
        .collect()
}

/// Pids of this process's children that are zombies.
pub fn zombie_children() -> Vec<u32> {
    children_in_state(Some('Z'))
}

/// Pids of this process's children (any state).
pub fn children() -> Vec<u32> {
    children_in_state(None)
}

/// State letter and parent pid of process `pid`, from `/proc/<pid>/stat`.
fn state_and_parent(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command (which may contain spaces and
    // parentheses): state, ppid, ...
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn children_in_state(wanted: Option<char>) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| {
            state_and_parent(pid)
                .is_some_and(|(state, ppid)| ppid == me && wanted.is_none_or(|w| w == state))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// True if a process with this pid exists and is neither a zombie nor dead.
pub fn alive(pid: u32) -> bool {
    state_and_parent(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// This process's anonymous resident memory in KiB (excludes shared pages,
/// such as the rings').
pub fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Proportional set size of process `pid` in KiB (`Pss:` of
/// `/proc/<pid>/smaps_rollup`): each resident page divided by the number of
/// processes that map it, so copy-on-write pages shared by N forks count
/// 1/N in each, unlike RSS. `None` if the process is gone or the kernel has
/// no `smaps_rollup`.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Number of threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanners_see_what_this_process_opens_and_starts() {
        let before = fd_table();
        assert!(before.iter().any(|f| f.fd == 0 || f.fd == 1 || f.fd == 2));
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let after = fd_table();
        let new: Vec<_> = after.iter().filter(|f| !before.contains(f)).collect();
        assert!(
            new.iter()
                .any(|f| f.target.ends_with("/status") && f.cloexec),
            "{new:?}"
        );
        drop(file);

        assert!(threads() >= 1);
        assert!(rss_anon_kib() > 0);
        assert!(alive(std::process::id()));
        assert!(pss_kib(std::process::id()).is_some_and(|kib| kib > 0));

        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 0"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let zombie = (0..1000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            zombie_children().contains(&pid)
        });
        assert!(zombie, "the exited child shows as a zombie until reaped");
        assert!(children().contains(&pid));
        assert!(!alive(pid));
        child.wait().unwrap();
        assert!(!children().contains(&pid));
    }
}
