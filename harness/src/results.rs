//! The results folder: one per run, written as each case finishes, every file atomically
//! (temp + rename), so a crash or a full disk never leaves a half-written file behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates the folder (and its parents). An existing non-empty folder is refused so
    /// one run never mixes its files with another's.
    pub fn create(path: &Path) -> Result<RunDir> {
        if path.is_dir()
            && fs::read_dir(path)
                .with_context(|| format!("cannot read results folder {}", path.display()))?
                .next()
                .is_some()
        {
            anyhow::bail!(
                "results folder {} already holds files; pick another --out",
                path.display()
            );
        }
        fs::create_dir_all(path)
            .with_context(|| format!("cannot create results folder {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
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

/// The default results folder: `results/<UTC timestamp>` under the current directory.
pub fn default_dir() -> PathBuf {
    PathBuf::from("results").join(crate::manifest::utc_stamp(std::time::SystemTime::now()))
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
    }
}
