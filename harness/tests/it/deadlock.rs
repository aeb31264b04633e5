//! Seed 000's warning, reproduced: one shared, bounded pool for checksum and endio work
//! deadlocks (endio waits for its metadata I/O's endio, queued behind itself). The
//! watchdog must report it and the process must end — never hang.

use std::path::Path;
use std::time::Duration;

use predicates::prelude::*;

use crate::common::{harness, manifest, only_case};

const STALL_S: u64 = 3;

fn run(strategy: &str, endio: &str, out: &Path) -> assert_cmd::assert::Assert {
    harness()
        .args(["run", "--strategy", strategy, "--endio", endio])
        .args(["--rw", "write", "--bs", "1m", "--size", "32m"])
        .args(["--stall-timeout", &STALL_S.to_string()])
        .arg("--out")
        .arg(out)
        // The promise: reported and exited within stall-timeout + 5 s.
        .timeout(Duration::from_secs(STALL_S + 5))
        .assert()
}

#[test]
fn a_shared_single_worker_pool_deadlocks_and_is_reported() {
    for strategy in ["kthread:max_workers=1", "workqueue:max_active=1,unbound=1"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        run(strategy, "shared", &out)
            .code(4)
            .stderr(predicate::str::contains("deadlock"));
        let case = only_case(&out);
        assert_eq!(case["status"], "deadlock", "{strategy}: {case}");
        let stall = &case["stall"];
        assert_eq!(stall["kind"], "deadlock");
        assert!(stall["after_s"].as_f64().unwrap() >= STALL_S as f64);
        let detail = stall["detail"].as_str().unwrap();
        assert!(
            detail.contains("shared") && detail.contains("queued"),
            "{detail}"
        );
        assert_eq!(stall["pools"][0]["role"], "shared");
    }
}

#[test]
fn the_same_knobs_with_separate_pools_complete() {
    for strategy in ["kthread:max_workers=1", "workqueue:max_active=1,unbound=1"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        run(strategy, "separate", &out).success();
        let case = only_case(&out);
        assert_eq!(case["status"], "ok", "{strategy}");
        assert_eq!(case["bytes"], 32 << 20);
    }
}

#[test]
fn compare_reports_the_deadlock_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let assert = harness()
        .args([
            "compare", "--endio", "shared", "--repeat", "1", "--warmup", "0", "--size", "16m",
        ])
        .args([
            "--strategy",
            "kthread:max_workers=1",
            "--strategy",
            "inline",
        ])
        .args(["--stall-timeout", &STALL_S.to_string()])
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(2 * STALL_S + 20))
        .assert()
        .code(4);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(stdout.contains("deadlock x1"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("inline") && l.contains("ok x1")),
        "{stdout}"
    );
    let manifest = manifest(&out);
    assert_eq!(manifest["cases"].as_array().unwrap().len(), 2);
}
