//! Scratch files in the system's temporary directory (the `--synthetic`
//! input, spooled stdin, the bench's working directory), named so that a
//! later run can remove what a SIGKILLed one left behind.
//!
//! A run removes its scratch when it ends, on errors and Ctrl-C too; only
//! SIGKILL (or a crash of the machine) leaves it, and it can be large (an
//! 800 MB synthetic export). Every name carries the owning process id,
//! `ringworker-KIND-pidPID-RANDOM`, and creating scratch first sweeps the
//! temporary directory: an entry of this form owned by this user whose
//! process no longer exists is removed. An entry whose process id is alive
//! stays, even if the id was reused: leaving a leftover is better than
//! deleting a running export's input.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Creates a scratch file `ringworker-KIND-pidPID-RANDOM.SUFFIX`, after
/// sweeping the leftovers of dead runs.
pub fn file(kind: &str, suffix: &str) -> io::Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix(&prefix(kind))
        .suffix(suffix)
        .tempfile()?;
    sweep(&std::env::temp_dir(), file.as_file().metadata()?.uid());
    Ok(file)
}

/// Creates a scratch directory `ringworker-KIND-pidPID-RANDOM`, after
/// sweeping the leftovers of dead runs.
pub fn dir(kind: &str) -> io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix(&prefix(kind)).tempdir()?;
    sweep(&std::env::temp_dir(), std::fs::metadata(dir.path())?.uid());
    Ok(dir)
}

fn prefix(kind: &str) -> String {
    format!("ringworker-{kind}-pid{}-", std::process::id())
}

/// The process id in a scratch name, or `None` if `name` is not one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("ringworker-")?;
    let (_kind, rest) = rest.split_once("-pid")?;
    let (pid, random) = rest.split_once('-')?;
    if pid.is_empty() || random.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes, best effort, the scratch entries of `dir` owned by `uid` whose
/// process is gone. Returns how many it removed.
fn sweep(dir: &Path, uid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = owner_pid(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        // Not followed: a link is removed as a link.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != uid {
            continue;
        }
        let gone = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_their_process() {
        assert_eq!(owner_pid("ringworker-synthetic-pid42-AbC.ndjson"), Some(42));
        assert_eq!(owner_pid("ringworker-bench-export-pid7-x"), Some(7));
        assert_eq!(owner_pid("ringworker-synthetic-pid42-"), None);
        assert_eq!(owner_pid("ringworker-synthetic-pidx2-a"), None);
        assert_eq!(owner_pid("ringworker-synthetic-abc.ndjson"), None);
        assert_eq!(owner_pid("other-synthetic-pid42-a"), None);
    }

    #[test]
    fn the_leftovers_of_dead_processes_go_the_living_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(tmp.path()).unwrap().uid();
        // A process id that does not exist: above the kernel's maximum.
        let dead = 4_194_305;
        let alive = std::process::id();
        let parent = std::os::unix::process::parent_id();
        std::fs::write(
            tmp.path()
                .join(format!("ringworker-stdin-pid{dead}-a.ndjson")),
            b"x",
        )
        .unwrap();
        std::fs::create_dir(
            tmp.path()
                .join(format!("ringworker-bench-export-pid{dead}-b")),
        )
        .unwrap();
        std::fs::write(
            tmp.path()
                .join(format!("ringworker-bench-export-pid{dead}-b/input.ndjson")),
            b"x",
        )
        .unwrap();
        let kept = [
            format!("ringworker-synthetic-pid{alive}-c.ndjson"),
            format!("ringworker-synthetic-pid{parent}-d.ndjson"),
            format!("unrelated-pid{dead}-e"),
        ];
        for name in &kept {
            std::fs::write(tmp.path().join(name), b"x").unwrap();
        }
        assert_eq!(sweep(tmp.path(), uid), 2);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut kept = kept.to_vec();
        kept.sort();
        assert_eq!(left, kept);
        // Another user's leftovers are not this run's to remove.
        std::fs::write(
            tmp.path().join(format!("ringworker-stdin-pid{dead}-f")),
            b"x",
        )
        .unwrap();
        assert_eq!(sweep(tmp.path(), uid.wrapping_add(1)), 0);
    }
}
