//! `harness report DIR`: loads a stored run so its summary can be shown again, in any
//! format, without re-running it.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::case::CaseResult;
use crate::session::RunStatus;

/// The parts of `manifest.json` a report needs.
#[derive(Deserialize)]
struct Manifest {
    tool: String,
    status: RunStatus,
    error: Option<String>,
    /// Case ids, in the order they ran; each is `<id>.json` beside the manifest.
    cases: Vec<String>,
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Deserialize)]
struct Config {
    summary: Option<crate::session::SummaryConfig>,
}

/// What a stored run holds: the cases that could be read, and what could not, by file.
pub struct Loaded {
    pub cases: Vec<CaseResult>,
    pub unreadable: Vec<String>,
    /// How the run compared its strategies (older runs: the defaults).
    pub settings: crate::summary::Settings,
}

/// Reads a file that must be a regular one. Opened without blocking, so a FIFO or a device
/// put where a results file should be is named, not waited on forever.
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The case results of the run in `dir`, in the order they ran, and the case files that
/// could not be read (missing, damaged, not a file), each with why. A run that did not
/// complete (still running, killed, interrupted, failed) still loads the cases it
/// finished; stderr says which it was.
pub fn load(dir: &Path) -> Result<Loaded> {
    if !dir.is_dir() {
        bail!(
            "{} is not a results folder: no such directory",
            dir.display()
        );
    }
    let path = dir.join("manifest.json");
    let text = match read_regular(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} is not a results folder: it has no manifest.json",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a csumbench manifest", path.display()))?;
    if manifest.tool != "csumbench" {
        bail!(
            "{} was written by '{}', not csumbench",
            path.display(),
            manifest.tool
        );
    }
    let n = manifest.cases.len();
    let why = match manifest.status {
        RunStatus::Complete => None,
        RunStatus::Running => Some("is still running, or was killed".to_string()),
        RunStatus::Interrupted => Some("was interrupted".to_string()),
        RunStatus::Failed => Some(match &manifest.error {
            Some(e) => format!("failed: {e}"),
            None => "failed".to_string(),
        }),
    };
    if let Some(why) = why {
        eprintln!(
            "note: the run in {} {why}; showing the {n} case(s) it finished",
            dir.display()
        );
    }
    let settings = match manifest.config.and_then(|c| c.summary) {
        Some(s) => crate::summary::Settings {
            noise_threshold: s.noise_threshold,
            seed: s.seed,
        },
        None => crate::summary::Settings::default(),
    };
    let mut loaded = Loaded {
        cases: Vec::new(),
        unreadable: Vec::new(),
        settings,
    };
    for id in &manifest.cases {
        match load_case(&dir.join(format!("{id}.json"))) {
            Ok(case) => loaded.cases.push(case),
            Err(e) => loaded.unreadable.push(format!("{e:#}")),
        }
    }
    Ok(loaded)
}

fn load_case(path: &Path) -> Result<CaseResult> {
    let bytes =
        read_regular(path).with_context(|| format!("cannot read case file {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("case file {} is not a case result", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<Loaded>) -> String {
        format!("{:#}", r.err().expect("an error"))
    }

    fn unreadable(dir: &Path) -> Vec<String> {
        let loaded = load(dir).unwrap();
        assert!(loaded.cases.is_empty());
        loaded.unreadable
    }

    #[test]
    fn says_what_is_wrong_with_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let e = message(load(&tmp.path().join("nope")));
        assert!(e.contains("no such directory"), "{e}");
        let e = message(load(tmp.path()));
        assert!(
            e.contains("not a results folder") && e.contains("manifest.json"),
            "{e}"
        );

        fs::write(tmp.path().join("manifest.json"), "{\"x\": 1}").unwrap();
        let e = message(load(tmp.path()));
        assert!(e.contains("not a csumbench manifest"), "{e}");

        let manifest = r#"{"tool": "csumbench", "status": "interrupted", "error": null,
                          "cases": ["01-inline-r1"]}"#;
        fs::write(tmp.path().join("manifest.json"), manifest).unwrap();
        let e = &unreadable(tmp.path())[0];
        assert!(
            e.contains("cannot read case file") && e.contains("01-inline-r1.json"),
            "{e}"
        );

        fs::write(tmp.path().join("01-inline-r1.json"), "{\"case\": \"01-in").unwrap();
        let e = &unreadable(tmp.path())[0];
        assert!(e.contains("01-inline-r1.json is not a case result"), "{e}");

        // A FIFO where a case file should be is named, not waited on.
        fs::remove_file(tmp.path().join("01-inline-r1.json")).unwrap();
        let fifo =
            std::ffi::CString::new(tmp.path().join("01-inline-r1.json").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = &unreadable(tmp.path())[0];
        assert!(e.contains("not a regular file"), "{e}");
    }
}
