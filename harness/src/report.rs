//! `harness report DIR`: loads a stored run so its summary can be shown again, in any
//! format, without re-running it.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::case::CaseResult;

/// The parts of `manifest.json` a report needs.
#[derive(Deserialize)]
struct Manifest {
    tool: String,
    status: String,
    error: Option<String>,
    /// Case ids, in the order they ran; each is `<id>.json` beside the manifest.
    cases: Vec<String>,
}

/// The case results of the run in `dir`, in the order they ran. A run that did not
/// complete (still running, killed, interrupted, failed) still loads the cases it
/// finished; stderr says which it was.
pub fn load(dir: &Path) -> Result<Vec<CaseResult>> {
    if !dir.is_dir() {
        bail!(
            "{} is not a results folder: no such directory",
            dir.display()
        );
    }
    let path = dir.join("manifest.json");
    let text = match fs::read(&path) {
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
    let why = match manifest.status.as_str() {
        "complete" => None,
        "running" => Some("is still running, or was killed".to_string()),
        "interrupted" => Some("was interrupted".to_string()),
        "failed" => Some(match &manifest.error {
            Some(e) => format!("failed: {e}"),
            None => "failed".to_string(),
        }),
        other => Some(format!("has status '{other}'")),
    };
    if let Some(why) = why {
        eprintln!(
            "note: the run in {} {why}; showing the {n} case(s) it finished",
            dir.display()
        );
    }
    manifest
        .cases
        .iter()
        .map(|id| {
            let path = dir.join(format!("{id}.json"));
            let bytes = fs::read(&path)
                .with_context(|| format!("cannot read case file {}", path.display()))?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("case file {} is not a case result", path.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<Vec<CaseResult>>) -> String {
        format!("{:#}", r.expect_err("an error"))
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
        let e = message(load(tmp.path()));
        assert!(
            e.contains("cannot read case file") && e.contains("01-inline-r1.json"),
            "{e}"
        );

        fs::write(tmp.path().join("01-inline-r1.json"), "{}").unwrap();
        let e = message(load(tmp.path()));
        assert!(e.contains("01-inline-r1.json is not a case result"), "{e}");
    }
}
