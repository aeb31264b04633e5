//! Verdicts with their confidence, through the binary: the same strategy twice is `same`;
//! a one-worker pool against inline at 4 KiB on the null engine at queue depth 1 with no
//! checksum work (nothing but two hand-offs per bio) is `slower` with an interval excluding
//! 1; `--repeat auto` adds rounds until sure or capped and says which; warm-up rounds are
//! recorded, not counted.

use std::time::Duration;

use serde_json::Value;

use crate::common::{cases, harness, manifest};

fn compare(dir: &std::path::Path, strategies: &[&str], extra: &[&str]) -> (Vec<Value>, Value) {
    let out = dir.join("cmp");
    let mut cmd = harness();
    cmd.timeout(Duration::from_secs(120))
        .args([
            "compare",
            "--ioengine",
            "null",
            "--rw",
            "write",
            "--bs",
            "4k",
            // No checksum work: what differs is the hand-off per bio alone.
            "--csum",
            "none",
        ])
        .args(["--drop-caches", "false"])
        .args(extra)
        .arg("--out")
        .arg(&out);
    for s in strategies {
        cmd.args(["--strategy", s]);
    }
    if !extra.contains(&"--size") {
        cmd.args(["--size", "32m"]);
    }
    cmd.assert().success();
    let report = harness()
        .args(["report", "--format", "json"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: Value = serde_json::from_slice(&report).unwrap();
    (cases(&out), rows[1].clone())
}

#[test]
fn the_same_strategy_twice_is_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    // A 95 % interval misses 1 one time in twenty even when nothing differs, and more
    // often beside the other tests of this binary: what must hold is the verdict, at a
    // threshold wider than that noise.
    let (cases, row) = compare(
        tmp.path(),
        &["inline", "inline"],
        &["--repeat", "5", "--noise-threshold", "5%"],
    );
    assert_eq!(cases.iter().filter(|c| c["warmup"] == false).count(), 10);
    let (lo, hi) = (
        row["mib_s_ci95_lo"].as_f64().unwrap(),
        row["mib_s_ci95_hi"].as_f64().unwrap(),
    );
    assert!(lo <= hi && lo < 1.05 && hi > 0.95, "[{lo}, {hi}]");
    assert_eq!(row["mib_s_verdict"], "same", "{row}");
}

#[test]
fn a_hand_off_per_bio_is_slower_than_inline() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, row) = compare(
        tmp.path(),
        &["inline", "kthread:max_workers=1"],
        // Long enough (~0.1 s inline) that a descheduled moment in one round, with
        // the other tests running beside it, cannot turn that round around.
        &["--repeat", "6", "--size", "128m"],
    );
    let hi = row["mib_s_ci95_hi"].as_f64().unwrap();
    assert!(hi < 1.0, "{row}");
    assert_eq!(row["mib_s_verdict"], "slower", "{row}");
}

#[test]
fn auto_repeat_stops_and_says_why_and_warmups_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, _) = compare(
        tmp.path(),
        &["inline", "kthread"],
        &["--repeat", "auto", "--max-repeat", "4", "--warmup", "1"],
    );
    let m = manifest(&tmp.path().join("cmp"));
    let rounds = &m["rounds"];
    let counted = rounds["counted"].as_u64().unwrap();
    assert!((3..=4).contains(&counted), "{rounds}");
    let why = rounds["stopped"].as_str().unwrap();
    assert!(
        ["precise", "max_repeat", "max_time"].contains(&why),
        "{rounds}"
    );
    assert_eq!(m["config"]["repeat"], "auto");
    let warm: Vec<&Value> = cases.iter().filter(|c| c["warmup"] == true).collect();
    assert_eq!(warm.len(), 2, "one warm-up case per strategy");
    assert!(warm
        .iter()
        .all(|c| c["case"].as_str().unwrap().ends_with("-w1")));
    assert_eq!(cases.len() as u64, 2 + 2 * counted);
    // Every case knows what else the machine did meanwhile.
    assert!(cases
        .iter()
        .all(|c| c["noise"]["load_avg_1m"].is_number() || c["noise"].is_object()));
}

fn run_steady(dir: &std::path::Path, ss: &str, out: &str) -> Value {
    let out = dir.join(out);
    harness()
        .timeout(Duration::from_secs(60))
        .args([
            "run",
            "--ioengine",
            "null",
            "--rw",
            "write",
            "--bs",
            "64k",
            "--size",
            "64m",
        ])
        .args([
            "--time_based",
            "1",
            "--runtime",
            "5",
            "--ss",
            ss,
            "--ss_dur",
            "1",
        ])
        .args(["--ss_interval", "200ms", "--drop-caches", "false", "--out"])
        .arg(&out)
        .assert()
        .success();
    cases(&out).remove(0)
}

#[test]
fn steady_state_ends_a_job_early_and_a_job_that_never_settles_is_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    // A null engine settles at once: the job ends well before its 5 s.
    let settled = run_steady(tmp.path(), "iops_slope:50%", "settled");
    let steady = &settled["steady"];
    assert_eq!(steady["attained"], true, "{steady}");
    assert_eq!(steady["criterion"], "iops_slope:50%");
    assert!(steady["attained_at_s"].as_f64().unwrap() < 4.0, "{steady}");
    assert!(settled["elapsed_s"].as_f64().unwrap() < 4.5);
    assert_eq!(settled["status"], "ok");
    // No rate varies by less than nothing: it runs its whole runtime and says so.
    let restless = run_steady(tmp.path(), "iops:0", "restless");
    assert_eq!(
        restless["steady"]["attained"], false,
        "{}",
        restless["steady"]
    );
    assert!(restless["elapsed_s"].as_f64().unwrap() >= 4.9);
    let table = harness()
        .arg("report")
        .arg(tmp.path().join("restless"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8_lossy(&table).contains("unsteady"),
        "{}",
        String::from_utf8_lossy(&table)
    );
}
