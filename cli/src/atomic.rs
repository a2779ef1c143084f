//! Output files that appear whole or not at all.
//!
//! [`AtomicFile`] writes to a hidden temporary file in the destination's
//! directory (same file system, so the final `rename` is atomic) and
//! renames it over the destination only in [`AtomicFile::commit`], after
//! an `fsync`. Dropped without a commit (an error, Ctrl-C), it removes the
//! temporary file: nothing half-written is ever left under the output
//! name. A supervisor killed with SIGKILL can leave the temporary file
//! (`.NAME.tmp-PID`); [`remove_stale`] clears those of the names a run
//! owns, and only those: other runs (the shards of an array job) may be
//! writing into the same directory at the same time.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written under a temporary name.
#[derive(Debug)]
pub struct AtomicFile {
    temp: PathBuf,
    dest: PathBuf,
    file: Option<BufWriter<File>>,
}

/// The marker in temporary names: `.NAME.tmp-PID`.
const TEMP_MARK: &str = ".tmp-";

impl AtomicFile {
    /// Creates the temporary file for `dest`. Fails if `dest`'s directory
    /// does not exist or is not writable, or `dest` is a directory.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        if dest.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", dest.display()),
            ));
        }
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the output path has no file name",
            )
        })?;
        let dir = parent_dir(dest);
        let temp = dir.join(format!(
            ".{}{TEMP_MARK}{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_owned(),
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The buffered writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.file
            .as_mut()
            .expect("an AtomicFile is written only before its commit")
    }

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("committed once");
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.dest)?;
        // The rename is durable once the directory is synced.
        if let Ok(dir) = File::open(parent_dir(&self.dest)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_all(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(dest)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Removes the temporary files an earlier, killed run left in `dir` for the
/// destination names `owned` accepts. Returns how many it removed.
///
/// A temporary file of a name the caller does not own may belong to a run
/// that is writing right now (another shard into the same directory, on
/// this machine or another one sharing the file system), so it stays.
pub fn remove_stale(dir: &Path, owned: impl Fn(&str) -> bool) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((dest, _)) = parse_temp_name(&name.to_string_lossy()) else {
            continue;
        };
        if owned(&dest) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A temporary file in `dir`, of a destination name `owned` accepts, that
/// another ringworker process on this machine is writing right now: its
/// name and that process's id. (A process on another machine sharing the
/// directory cannot be seen from here.)
pub fn live_writer(dir: &Path, owned: impl Fn(&str) -> bool) -> io::Result<Option<(String, u32)>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((dest, pid)) = parse_temp_name(&name) else {
            continue;
        };
        if pid == std::process::id() || !owned(&dest) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "ringworker" {
            return Ok(Some((name, pid)));
        }
    }
    Ok(None)
}

/// The destination name and writer's process id of a temporary name
/// `.NAME.tmp-PID`, or `None` if `temp` is not one.
fn parse_temp_name(temp: &str) -> Option<(String, u32)> {
    let (dest, pid) = temp.strip_prefix('.')?.rsplit_once(TEMP_MARK)?;
    if dest.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((dest.to_owned(), pid.parse().ok()?))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn stale_temporaries_of_owned_names_are_removed_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".part-00001.parquet.tmp-123",
            ".other-00001.parquet.tmp-77",
            ".part-00002.parquet.tmp-",
            ".part-00003.parquet.tmp-12x",
            "part-00000.parquet",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let removed = remove_stale(dir.path(), |dest| dest.starts_with("part-")).unwrap();
        assert_eq!(removed, 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".other-00001.parquet.tmp-77",
                ".part-00002.parquet.tmp-",
                ".part-00003.parquet.tmp-12x",
                "part-00000.parquet"
            ]
        );
    }

    #[test]
    fn temporary_names_parse_back_to_their_destination() {
        assert_eq!(
            parse_temp_name(".a.tmp-1.parquet.tmp-42"),
            Some(("a.tmp-1.parquet".to_owned(), 42))
        );
        assert_eq!(parse_temp_name("a.parquet.tmp-42"), None);
        assert_eq!(parse_temp_name("..tmp-42"), None);
        assert_eq!(parse_temp_name(".a.tmp-"), None);
        assert_eq!(parse_temp_name(".a.tmp-+1"), None);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(AtomicFile::create(Path::new("/nonexistent-dir/x")).is_err());
    }
}
