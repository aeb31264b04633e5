//! The results folder: one per run, written as each case finishes, every file atomically
//! (temp + rename), so a crash or a full disk never leaves a half-written file behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Claims the folder `path` (`--out`) for this run: made (parents too) if it does not
    /// exist; an existing empty folder is claimed by creating its manifest exclusively, so
    /// two runs given the same folder never share it; one that holds files is refused.
    pub fn create(path: &Path) -> Result<RunDir> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create results folder {}", parent.display()))?;
        }
        match fs::create_dir(path) {
            Ok(()) => return Ok(RunDir::at(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create results folder {}", path.display()))
            }
        }
        if !path.is_dir() {
            bail!(
                "results folder {} exists and is not a folder",
                path.display()
            );
        }
        let used = || {
            anyhow!(
                "results folder {} already holds files; pick another --out",
                path.display()
            )
        };
        let mut entries = fs::read_dir(path)
            .with_context(|| format!("cannot read results folder {}", path.display()))?;
        if entries.next().is_some() {
            return Err(used());
        }
        match fs::File::create_new(path.join("manifest.json")) {
            Ok(_) => Ok(RunDir::at(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(used()),
            Err(e) => Err(e).with_context(|| format!("cannot write into {}", path.display())),
        }
    }

    /// A new folder under `parent` named for the current UTC second, or, when another run
    /// took that name, the same with `-2`, `-3`, …: created atomically, so runs started
    /// together never share one.
    pub fn create_new_under(parent: &Path) -> Result<RunDir> {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create results folder {}", parent.display()))?;
        let stamp = crate::manifest::utc_stamp(std::time::SystemTime::now());
        for n in 1u32.. {
            let name = match n {
                1 => stamp.clone(),
                n => format!("{stamp}-{n}"),
            };
            let path = parent.join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir::at(&path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create results folder {}", path.display())
                    })
                }
            }
        }
        unreachable!("fewer than 2^32 runs in one second")
    }

    fn at(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` inside the folder: temp file, fsync, rename.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let target = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let result = (|| -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", target.display()));
        }
        Ok(target)
    }

    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let mut bytes = serde_json::to_vec_pretty(value).context("serializing results")?;
        bytes.push(b'\n');
        self.write(name, &bytes)
    }
}

/// Where runs without `--out` make their folder: `results/` under the current directory.
pub fn default_parent() -> PathBuf {
    PathBuf::from("results")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_refuses_a_used_folder() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(&dir.path().join("r")).unwrap();
        run.write_json("a.json", &serde_json::json!({"x": 1}))
            .unwrap();
        let names: Vec<_> = fs::read_dir(run.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["a.json"]);
        let e = RunDir::create(&dir.path().join("r"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("already holds files"), "{e}");
        // An empty folder is claimed once.
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        RunDir::create(&empty).unwrap();
        let e = RunDir::create(&empty).err().unwrap().to_string();
        assert!(e.contains("already holds files"), "{e}");
    }

    #[test]
    fn runs_started_together_get_folders_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("results");
        let made: Vec<PathBuf> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| RunDir::create_new_under(&parent).unwrap().path))
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let mut unique = made.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8, "{made:?}");
        assert!(made
            .iter()
            .all(|p| p.is_dir() && p.parent() == Some(&parent)));
    }
}
