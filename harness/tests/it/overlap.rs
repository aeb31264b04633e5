//! Overlapping I/O on one file never reports corruption that is not there, and corruption
//! that is there is still caught: every strategy x {rw, randrw} x iodepth {1, 8, 64} x
//! numjobs {1, 4}, all on one small file (so I/Os in flight overlap all the time), then a
//! planted bit flip read back by every strategy.
//!
//! Seeds vary per configuration; set `OVERLAP_SEED` (a u64) to draw others. async-std's
//! executor is process-wide, so its "separate" endio pools are one: with endio items
//! waiting for metadata items queued behind them it can deadlock (seed 000's warning,
//! tested in deadlock.rs). A deadlocked case verifies nothing and is allowed here; a
//! mismatch never is.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use workloads::SECTOR_SIZE;

use crate::common::{cases, harness, stderr};

const FILE_SIZE: u64 = 1 << 20;

fn seed(rw: &str, depth: u32, jobs: u32) -> u64 {
    let base: u64 = std::env::var("OVERLAP_SEED")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("OVERLAP_SEED must be a u64"))
        .unwrap_or(0);
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ base;
    for b in format!("{rw}/{depth}/{jobs}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    h
}

/// Every registered strategy, async-std first: a case of it that deadlocks leaves the store
/// dirty, and the cases after it lay the file out again (`--relayout`).
fn strategies() -> Vec<&'static str> {
    let mut names: Vec<&str> = strategies::descriptors().iter().map(|d| d.name).collect();
    names.sort_by_key(|n| *n != "async-std");
    names
}

fn compare(dir: &Path, job: &str, out: &str) -> (Vec<Value>, String) {
    let jobfile = dir.join(format!("{out}.fio"));
    fs::write(&jobfile, job).unwrap();
    let mut cmd = harness();
    cmd.timeout(Duration::from_secs(180))
        .args([
            "compare",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--stall-timeout",
            "2",
            "--relayout",
        ])
        .args(["--drop-caches", "false", "--job"])
        .arg(&jobfile)
        .arg("--out")
        .arg(dir.join(out));
    for s in strategies() {
        cmd.args(["--strategy", s]);
    }
    let output = cmd.output().unwrap();
    let err = stderr(&output);
    assert!(dir.join(out).join("manifest.json").exists(), "{job}\n{err}");
    (cases(&dir.join(out)), err)
}

fn mismatch_offsets(case: &Value) -> Vec<u64> {
    let mut offsets: Vec<u64> = case["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_u64().unwrap())
        .collect();
    offsets.dedup();
    offsets
}

/// One configuration: the mixed run finds nothing wrong, a flipped bit is found by all.
fn check(rw: &str, depth: u32, jobs: u32) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("shared");
    let seed = seed(rw, depth, jobs);
    let what = format!("rw={rw} iodepth={depth} numjobs={jobs} randseed={seed}");
    let job = format!(
        "[global]\nfilename={}\nbs=4k\nsize=1m\niodepth={depth}\nnumjobs={jobs}\n\
         randseed={seed}\ntime_based=1\nruntime=200ms\nioengine=io_uring\n[mixed]\nrw={rw}\n",
        file.display()
    );
    let mut failures = Vec::new();
    let (mixed, err) = compare(tmp.path(), &job, "mixed");
    for case in &mixed {
        let (strategy, status) = (&case["spec"], case["status"].as_str().unwrap());
        let deadlocked = status == "deadlock" && strategy == "async-std";
        if case["mismatch_count"] != 0 || !(status == "ok" || deadlocked) {
            let m = &case["mismatches"];
            failures.push(format!("{what} {strategy}: {status}, {m}\n{err}"));
        }
    }
    // One flipped bit, read back (one pass, each clone) by every strategy.
    let sector = seed % (FILE_SIZE / SECTOR_SIZE);
    let at = sector * SECTOR_SIZE + seed % SECTOR_SIZE;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 1], at).unwrap();
    let read = if rw == "randrw" { "randread" } else { "read" };
    let job = job
        .replace("time_based=1\nruntime=200ms\n", "")
        .replace(&format!("rw={rw}\n"), &format!("rw={read}\n"));
    let (reads, err) = compare(tmp.path(), &job, "planted");
    for case in &reads {
        let strategy = &case["spec"];
        let found = mismatch_offsets(case);
        if case["status"] != "verify_failed" || found != [sector * SECTOR_SIZE] {
            let status = &case["status"];
            failures.push(format!(
                "{what} {strategy}: planted at sector {sector}, found {found:?} ({status})\n{err}"
            ));
        }
    }
    failures
}

fn campaign(rw: &str) {
    let mut failures = Vec::new();
    for depth in [1, 8, 64] {
        for jobs in [1, 4] {
            failures.extend(check(rw, depth, jobs));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sequential_mixed_io_on_one_file() {
    campaign("rw");
}

#[test]
fn random_mixed_io_on_one_file() {
    campaign("randrw");
}

/// The reported case: four random writers on one file, then (stonewall) a reader.
#[test]
fn writers_then_a_reader_on_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let job = format!(
        "[global]\nfilename={}\nbs=4k\nsize=16m\n[writers]\nrw=randwrite\nnumjobs=4\n\
         iodepth=16\nioengine=io_uring\n[reader]\nstonewall\nrw=read\n",
        tmp.path().join("f").display()
    );
    let (cases, err) = compare(tmp.path(), &job, "writers");
    for case in &cases {
        let deadlocked = case["status"] == "deadlock" && case["spec"] == "async-std";
        assert!(
            case["mismatch_count"] == 0 && (case["status"] == "ok" || deadlocked),
            "{}: {} {}\n{err}",
            case["case"],
            case["status"],
            case["mismatches"]
        );
    }
}
