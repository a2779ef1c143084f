//! The manifest of a partitioned export: which parts are complete, so an
//! interrupted run started again with `--resume` skips them.
//!
//! One manifest per shard (`_manifest.json`, or
//! `_manifest-shard-0003-of-0008.json`), in the output directory beside the
//! parts. It is rewritten atomically ([`crate::atomic`]) after each part's
//! file is renamed into place, so whatever kills the supervisor, every part
//! the manifest lists is complete on disk; a part file the manifest does
//! not list (renamed just before the kill) is written again, to the same
//! name, with the same rows. The manifest also records what the run was
//! (input identity, shard, rows per part, format): `--resume` refuses a
//! manifest of a different run.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// The manifest's format version.
const VERSION: u32 = 1;

/// What identifies an input without reading all of it: its size and a
/// hash of its first and last MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputId {
    /// Size in bytes.
    pub bytes: u64,
    /// Hash of the first and last MiB.
    pub sample_hash: u64,
}

impl InputId {
    /// Identifies the file at `path`.
    pub fn of(path: &Path) -> std::io::Result<InputId> {
        const SAMPLE: u64 = 1 << 20;
        let mut file = std::fs::File::open(path)?;
        let bytes = file.metadata()?.len();
        let mut hasher = std::hash::DefaultHasher::new();
        let mut buf = Vec::with_capacity(SAMPLE as usize);
        (&mut file).take(SAMPLE).read_to_end(&mut buf)?;
        hasher.write(&buf);
        if bytes > SAMPLE {
            file.seek(SeekFrom::Start(bytes.saturating_sub(SAMPLE).max(SAMPLE)))?;
            buf.clear();
            file.take(SAMPLE).read_to_end(&mut buf)?;
            hasher.write(&buf);
        }
        Ok(InputId {
            bytes,
            sample_hash: hasher.finish(),
        })
    }
}

/// What makes two runs the same run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// The input.
    pub input: InputId,
    /// The shard.
    pub shard: Shard,
    /// Constants per part.
    pub rows_per_part: u64,
    /// `parquet` or `ndjson`.
    pub format: String,
}

/// A complete part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Its file name in the directory.
    pub file: String,
    /// Rows in it.
    pub rows: u64,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of this file.
    pub version: u32,
    /// The run.
    pub run: RunKey,
    /// Complete parts by number.
    pub parts: BTreeMap<u64, Part>,
    /// Parts of the shard, once a worker has reported the total.
    pub total_parts: Option<u64>,
    /// Whether every part is complete.
    pub complete: bool,
}

impl Manifest {
    /// An empty manifest of `run`.
    pub fn new(run: RunKey) -> Manifest {
        Manifest {
            version: VERSION,
            run,
            parts: BTreeMap::new(),
            total_parts: None,
            complete: false,
        }
    }

    /// The manifest's path in `dir` for `shard`.
    pub fn path(dir: &Path, shard: Shard) -> PathBuf {
        if shard.is_whole() {
            dir.join("_manifest.json")
        } else {
            dir.join(format!(
                "_manifest-shard-{:04}-of-{:04}.json",
                shard.index, shard.count
            ))
        }
    }

    /// Reads the manifest of `shard` in `dir`, if there is one.
    pub fn load(dir: &Path, shard: Shard) -> anyhow::Result<Option<Manifest>> {
        let path = Manifest::path(dir, shard);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
            }
        };
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a ringworker manifest: {e}", path.display()))?;
        if manifest.version != VERSION {
            anyhow::bail!(
                "{} has manifest version {}, this build reads {VERSION}",
                path.display(),
                manifest.version
            );
        }
        Ok(Some(manifest))
    }

    /// Writes the manifest into `dir`, atomically.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::atomic::write_all(&Manifest::path(dir, self.run.shard), &text)
    }

    /// Rows in the complete parts.
    pub fn rows(&self) -> u64 {
        self.parts.values().map(|p| p.rows).sum()
    }
}

/// Whether the file name `name` in an output directory is one that a run
/// of `shard` writes: its manifest or one of its parts. Parts of other
/// shards and files that are not ringworker's are not.
pub fn owned_by(shard: Shard, name: &str) -> bool {
    if Manifest::path(Path::new(""), shard).as_os_str() == name {
        return true;
    }
    let Some(rest) = name.strip_prefix("part-") else {
        return false;
    };
    let rest = if shard.is_whole() {
        rest
    } else {
        match rest.strip_prefix(&format!("s{:04}of{:04}-", shard.index, shard.count)) {
            Some(rest) => rest,
            None => return false,
        }
    };
    // The part number: at least five digits, then the format's extension.
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits >= 5 && rest[digits..].starts_with('.')
}

/// The file name of part `part` of `shard` in `format` (`parquet` or
/// `ndjson`): `part-00007.parquet`, or `part-s0003of0008-00007.parquet` in
/// a sharded run so all shards can share one directory.
pub fn part_file(shard: Shard, part: u64, format: &str) -> String {
    if shard.is_whole() {
        format!("part-{part:05}.{format}")
    } else {
        format!(
            "part-s{:04}of{:04}-{part:05}.{format}",
            shard.index, shard.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_owns_its_parts_and_manifest_only() {
        let s1 = Shard { index: 1, count: 4 };
        assert!(owned_by(s1, "part-s0001of0004-00007.parquet"));
        assert!(owned_by(s1, &part_file(s1, 123_456, "ndjson")));
        assert!(owned_by(s1, "_manifest-shard-0001-of-0004.json"));
        assert!(!owned_by(s1, "part-s0002of0004-00007.parquet"));
        assert!(!owned_by(s1, "_manifest-shard-0002-of-0004.json"));
        assert!(!owned_by(s1, "part-00007.parquet"));
        assert!(!owned_by(s1, "_manifest.json"));
        let whole = Shard::WHOLE;
        assert!(owned_by(whole, "part-00007.parquet"));
        assert!(owned_by(whole, "_manifest.json"));
        assert!(!owned_by(whole, "part-s0001of0004-00007.parquet"));
        assert!(!owned_by(whole, "part-7.parquet"));
        assert!(!owned_by(whole, "notes.txt"));
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let shard: Shard = "1/3".parse().unwrap();
        let mut m = Manifest::new(RunKey {
            input: InputId {
                bytes: 10,
                sample_hash: 7,
            },
            shard,
            rows_per_part: 100,
            format: "parquet".into(),
        });
        m.parts.insert(
            0,
            Part {
                file: part_file(shard, 0, "parquet"),
                rows: 100,
            },
        );
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path(), shard).unwrap(), Some(m));
        assert_eq!(Manifest::load(dir.path(), Shard::WHOLE).unwrap(), None);
        std::fs::write(Manifest::path(dir.path(), Shard::WHOLE), b"{").unwrap();
        assert!(Manifest::load(dir.path(), Shard::WHOLE).is_err());
    }

    #[test]
    fn input_ids_see_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = vec![0u8; 3 << 20];
        std::fs::write(&p, &data).unwrap();
        let a = InputId::of(&p).unwrap();
        *data.last_mut().unwrap() = 1;
        std::fs::write(&p, &data).unwrap();
        assert_ne!(a, InputId::of(&p).unwrap());
    }
}
