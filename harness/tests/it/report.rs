//! What people look at after a run: the summaries in the results folder, `harness report`
//! in every format, and a stderr free of progress-bar drawing when it is not a terminal.

use std::fs;
use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{harness, manifest};

fn report(dir: &Path, format: &str) -> String {
    let out = harness()
        .arg("report")
        .arg(dir)
        .args(["--format", format])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn compare_writes_summaries_and_report_shows_them_again_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let assert = harness()
        .args([
            "compare",
            "--sync-crc",
            "--size",
            "8m",
            "--repeat",
            "2",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let output = assert.get_output();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();

    // stderr is a pipe here: the finished-case lines, and no bar drawing (carriage returns,
    // cursor movement, colours).
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    for id in ["01-inline-r1", "02-kthread", "04-kthread"] {
        assert!(stderr.contains(id), "no line for {id}: {stderr}");
    }

    let table: String = stdout
        .lines()
        .take_while(|l| !l.starts_with("results: "))
        .map(|l| format!("{l}\n"))
        .collect();
    // Header and two rows, a blank line, the kthread-vs-inline sentence.
    assert_eq!(table.lines().count(), 5, "{stdout}");
    assert!(table.contains("kthread vs inline: "), "{stdout}");
    assert_eq!(report(&out, "table"), table);

    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(report(&out, "markdown"), md);
    assert_eq!(report(&out, "csv"), csv);
    assert!(md.starts_with("| strategy | endio | MiB/s |"), "{md}");
    assert_eq!(
        md.lines().take_while(|l| l.starts_with('|')).count(),
        4,
        "{md}"
    );
    assert!(md.contains("| mib_s |"), "{md}");
    let csv_lines: Vec<&str> = csv.lines().collect();
    assert!(csv_lines[0].starts_with("strategy,topology,runs,problems,mib_s_median,"));
    assert!(csv_lines[1].starts_with("inline,separate,2,,"), "{csv}");
    // The kthread spec has commas, so it is quoted.
    assert!(csv_lines[2].starts_with("\"kthread:"), "{csv}");

    let json: Value = serde_json::from_str(&report(&out, "json")).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["strategy"], "inline");
    assert_eq!(rows[0]["runs"], 2);
    // Two repeats: a ratio, but no interval and no verdict.
    assert_eq!(rows[1]["mib_s_verdict"], "unknown");
    assert!(rows[1]["mib_s_ratio"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["mib_s_median"].as_f64().unwrap() > 0.0);
}

#[test]
fn report_shows_an_unfinished_run_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    harness()
        .args(["run", "--size", "4m", "--ioengine", "null"])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let path = out.join("manifest.json");
    let mut manifest = manifest(&out);
    manifest["status"] = "interrupted".into();
    fs::write(&path, manifest.to_string()).unwrap();
    harness()
        .arg("report")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("strategy"))
        .stdout(predicate::str::contains("inline"))
        .stderr(
            predicate::str::contains("was interrupted").and(predicate::str::contains("1 case")),
        );

    // A case file the manifest lists but that is gone is named.
    let id = manifest["cases"][0].as_str().unwrap().to_string();
    fs::remove_file(out.join(format!("{id}.json"))).unwrap();
    harness().arg("report").arg(&out).assert().failure().stderr(
        predicate::str::contains("cannot read case file")
            .and(predicate::str::contains(format!("{id}.json"))),
    );

    harness()
        .arg("report")
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a results folder"));
    harness()
        .args(["report", "--format", "yaml"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("markdown"));
}
