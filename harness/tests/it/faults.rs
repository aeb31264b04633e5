//! `--inject`: every fault, through the binary. What a user must see: the run stops with a
//! clear error naming the offset and the strategy, a non-zero exit, the results of the cases
//! that finished on disk, and no process left hanging.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common::{cases, harness, manifest, stderr};

const LIMIT: Duration = Duration::from_secs(60);

/// `harness run` over one small file: 16 I/Os of 64 KiB. A failed write leaves the store
/// not cleanly closed, so the reads after it may lay the file out again (`--relayout`).
fn run(dir: &Path, strategy: &str, rw: &str, engine: &str, out: &str, extra: &[&str]) -> Command {
    let mut c = harness();
    c.timeout(LIMIT)
        .args([
            "run",
            "--drop-caches",
            "false",
            "--relayout",
            "--strategy",
            strategy,
        ])
        .args(["--rw", rw, "--bs", "64k", "--size", "1m", "--iodepth", "4"])
        .args(["--ioengine", engine])
        .arg("--filename")
        .arg(dir.join("data"))
        .arg("--out")
        .arg(dir.join(out))
        .args(extra);
    c
}

#[test]
fn io_errors_stop_the_case_with_the_offset_and_the_strategy() {
    let tmp = tempfile::tempdir().unwrap();
    // Reads need a written file first.
    run(tmp.path(), "inline", "write", "psync", "setup", &[])
        .assert()
        .success();
    let faults = [
        ("eio@3", "os error 5"),
        ("enospc@2", "os error 28"),
        ("short@4", "short"),
    ];
    for engine in ["psync", "io_uring"] {
        for rw in ["write", "read"] {
            for (fault, says) in faults {
                let out = format!("{engine}-{rw}-{fault}");
                let o = run(
                    tmp.path(),
                    "kthread",
                    rw,
                    engine,
                    &out,
                    &["--inject", fault],
                )
                .output()
                .unwrap();
                let what = format!("{engine} {rw} --inject {fault}");
                assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
                let case = &cases(&tmp.path().join(&out))[0];
                assert_eq!(case["status"], "error", "{what}");
                let error = case["error"].as_str().unwrap();
                // The Nth I/O of a sequential job: its offset is known.
                let n: u64 = fault.split('@').nth(1).unwrap().parse().unwrap();
                let offset = format!("at offset {}", (n - 1) * 65536);
                for needle in [says, offset.as_str(), "strategy kthread:", "--inject", rw] {
                    assert!(error.contains(needle), "{what}: {error} lacks {needle}");
                }
                assert!(stderr(&o).contains(error), "{what}: {}", stderr(&o));
                // The run itself ended normally: its manifest and summary are complete.
                let dir = tmp.path().join(&out);
                assert_eq!(manifest(&dir)["status"], "complete", "{what}");
                assert!(dir.join("summary.md").exists(), "{what}");
            }
        }
    }
}

#[test]
fn a_failing_case_does_not_stop_a_compare_and_its_partial_counts_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let o = harness()
        .timeout(LIMIT)
        .args(["compare", "--strategy", "inline", "--strategy", "rayon"])
        .args([
            "--repeat", "1", "--warmup", "0", "--rw", "write", "--bs", "64k", "--size", "1m",
        ])
        .args(["--inject", "eio@5", "--drop-caches", "false", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let cases = cases(&out);
    assert_eq!(cases.len(), 2);
    for c in &cases {
        assert_eq!(c["status"], "error");
        // The four I/Os before the failed one completed and count; I/Os already in flight
        // beside it may complete too; nothing is issued after it.
        let bios = c["bios"].as_u64().unwrap();
        assert!((4..16).contains(&bios), "{bios} bios counted");
    }
}

#[test]
fn a_panicking_work_item_fails_its_case_on_every_strategy() {
    let tmp = tempfile::tempdir().unwrap();
    let mut strategies: Vec<&str> = strategies::descriptors().iter().map(|d| d.name).collect();
    strategies.push("kthread:ordered=1");
    for engine in ["psync", "io_uring"] {
        for strategy in &strategies {
            for (rw, stage) in [("write", "csum"), ("read", "endio")] {
                // A write's first items are checksums; a read's are all endio.
                let out = format!("{engine}-{strategy}-{rw}").replace(':', "_");
                let started = Instant::now();
                let o = run(
                    tmp.path(),
                    strategy,
                    rw,
                    engine,
                    &out,
                    &["--inject", "panic@1", "--stall-timeout", "5"],
                )
                .output()
                .unwrap();
                let what = format!("{strategy} {engine} {rw}");
                assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
                let case = &cases(&tmp.path().join(&out))[0];
                assert_eq!(case["status"], "error", "{what}");
                let error = case["error"].as_str().unwrap();
                assert!(
                    error.contains(&format!("panicked in the {stage} stage"))
                        && error.contains("--inject panic@1")
                        && error
                            .contains(&format!("strategy {}", strategy.split(':').next().unwrap())),
                    "{what}: {error}"
                );
                let panics: u64 = case["pools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["stats"]["panics"].as_u64().unwrap())
                    .sum();
                assert_eq!(panics, 1, "{what}: {}", case["pools"]);
                // Caught and reported at once: not found by the watchdog.
                assert!(case["stall"].is_null(), "{what}");
                assert!(started.elapsed() < Duration::from_secs(5), "{what}");
            }
        }
    }
}

#[test]
fn an_io_that_never_completes_is_reported_as_a_stall_and_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ["psync", "io_uring"] {
        let out = format!("hang-{engine}");
        let started = Instant::now();
        let o = run(
            tmp.path(),
            "btrfs-wq",
            "write",
            engine,
            &out,
            &["--inject", "hang@3", "--stall-timeout", "1"],
        )
        .output()
        .unwrap();
        assert_eq!(o.status.code(), Some(4), "{engine}: {}", stderr(&o));
        // Watchdog (1 s) + giving up on the blocked job thread (6 s), and no more.
        assert!(started.elapsed() < Duration::from_secs(30), "{engine}");
        let case = &cases(&tmp.path().join(&out))[0];
        assert_eq!(case["status"], "stall", "{engine}");
        let detail = case["stall"]["detail"].as_str().unwrap();
        assert!(
            detail.contains("1 I/O(s) submitted to the device never completed")
                && detail.contains("left behind"),
            "{engine}: {detail}"
        );
        assert!(stderr(&o).contains("strategy btrfs-wq"), "{}", stderr(&o));
        assert_eq!(manifest(&tmp.path().join(&out))["status"], "complete");
    }
}

#[test]
fn bad_injections_are_refused_before_any_io() {
    let tmp = tempfile::tempdir().unwrap();
    for (bad, says) in [
        ("eio", "KIND@N"),
        ("eio@0", "from 1"),
        ("boom@2", "unknown fault 'boom'"),
    ] {
        let o = run(
            tmp.path(),
            "inline",
            "write",
            "psync",
            "o",
            &["--inject", bad],
        )
        .output()
        .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains(says), "{bad}: {}", stderr(&o));
        assert!(!tmp.path().join("data").exists(), "{bad}");
    }
}
