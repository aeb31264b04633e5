//! Helpers shared by the tests of the binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Output};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// Longer than any run of these tests should take: a hang fails the test instead of
/// stalling it. A test that expects less sets its own `.timeout(..)` after this one.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The `harness` binary, killed after [`TIMEOUT`].
pub fn harness() -> Command {
    let mut c = Command::cargo_bin("harness").unwrap();
    c.timeout(TIMEOUT);
    c
}

/// The case results in a results folder (every `*.json` but the manifest and `*.fio.json`),
/// sorted by name, which is the order the run wrote them in (case ids start with their
/// index). None where `out` does not exist (a refused run makes none).
pub fn case_paths(out: &Path) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(out) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("manifest.json"))
        // A case's fio-shaped twin (`--output-format json`) is no case result.
        .filter(|p| !p.to_string_lossy().ends_with(".fio.json"))
        .collect();
    paths.sort();
    paths
}

/// Parses a JSON file, which must be whole.
pub fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not whole JSON: {e}", path.display()))
}

/// The results folder's `manifest.json`.
pub fn manifest(out: &Path) -> Value {
    read_json(&out.join("manifest.json"))
}

/// The case results of a run, in the order it ran them. The folder's manifest must list
/// exactly these cases, in this order.
pub fn cases(out: &Path) -> Vec<Value> {
    let paths = case_paths(out);
    let ids: Vec<String> = paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed = manifest(out)["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest in {} lists no cases", out.display()))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        listed,
        ids,
        "the manifest in {} lists other cases than the folder holds",
        out.display()
    );
    paths.iter().map(|p| read_json(p)).collect()
}

/// The one case result of a run.
pub fn only_case(out: &Path) -> Value {
    let mut cases = cases(out);
    assert_eq!(cases.len(), 1, "one case in {}: {cases:?}", out.display());
    cases.remove(0)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A loop device over a file, detached on drop.
pub struct Loop {
    pub dev: String,
}

impl Loop {
    /// Attaches `backing` to the first free loop device. None (and says why) where loop
    /// devices cannot be made: the caller skips.
    pub fn new(backing: &Path) -> Option<Loop> {
        Loop::losetup(backing, None)
            .map_err(|e| eprintln!("skipping: cannot make a loop device: {e}"))
            .ok()
    }

    /// Attaches `backing` to `dev` if given (and free), else to the first free device.
    pub fn attach(backing: &Path, dev: Option<&str>) -> Option<Loop> {
        Loop::losetup(backing, dev)
            .map_err(|e| eprintln!("cannot attach a loop device: {e}"))
            .ok()
    }

    fn losetup(backing: &Path, dev: Option<&str>) -> Result<Loop, String> {
        let mut cmd = Proc::new("losetup");
        match dev {
            Some(d) => cmd.arg(d).arg(backing),
            None => cmd.args(["--find", "--show"]).arg(backing),
        };
        let out = cmd.output().map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let lo = Loop {
            dev: match dev {
                Some(d) => d.to_string(),
                None => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            },
        };
        // A checksum store left by an earlier user of this device name is not ours to
        // trust (tests that give the harness a state dir of their own need no such care).
        if let Ok(store) = workloads::CsumStore::path_for(Path::new(&lo.dev), true) {
            let _ = fs::remove_file(store);
        }
        Ok(lo)
    }

    /// The device's name: `loop3` for `/dev/loop3`.
    pub fn name(&self) -> String {
        Path::new(&self.dev)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Proc::new("losetup").args(["-d", &self.dev]).status();
    }
}
