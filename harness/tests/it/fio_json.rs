//! `--output-format json` / `json+`: each case also in fio's JSON shape, read as fio's.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command as Proc;

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{harness, only_case, read_json};

/// Runs `harness run ARGS --out OUT`; the case JSON and its `.fio.json`.
fn run(out: &Path, args: &[&str]) -> (Value, Value) {
    harness()
        .args(["run", "--drop-caches", "false"])
        .args(args)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
    let case = only_case(out);
    let id = case["case"].as_str().unwrap();
    let fio = read_json(&out.join(format!("{id}.fio.json")));
    (case, fio)
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    let at = path.iter().fold(v, |v, k| &v[*k]);
    at.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is no whole number: {at}"))
}

/// The job's read and write bytes are the case's, split by direction, and sum to its total.
fn assert_split_as_the_case(case: &Value, fio: &Value) {
    let job = &fio["jobs"][0];
    for (dir, fio_dir) in [("read", "read"), ("write", "write")] {
        assert_eq!(
            u64_at(job, &[fio_dir, "io_bytes"]),
            u64_at(case, &["by_direction", dir, "bytes"]),
            "{dir} bytes"
        );
        assert_eq!(
            u64_at(job, &[fio_dir, "total_ios"]),
            u64_at(case, &["by_direction", dir, "bios"]),
            "{dir} I/Os"
        );
    }
    let bytes = u64_at(job, &["read", "io_bytes"]) + u64_at(job, &["write", "io_bytes"]);
    assert_eq!(bytes, u64_at(case, &["bytes"]));
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn json_on_the_null_engine_writes_a_fio_file_beside_the_case() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--ioengine",
        "null",
        "--rw",
        "randread",
        "--size",
        "4m",
        "--output-format",
        "json",
    ];
    let (case, fio) = run(&tmp.path().join("o"), &args);
    assert!(fio["fio version"]
        .as_str()
        .unwrap()
        .starts_with("csumbench "));
    for key in [
        "timestamp",
        "timestamp_ms",
        "time",
        "global options",
        "jobs",
    ] {
        assert!(fio.get(key).is_some(), "top-level {key}");
    }
    assert_split_as_the_case(&case, &fio);
    let read = &fio["jobs"][0]["read"];
    assert_eq!(u64_at(read, &["io_bytes"]), 4 << 20);
    assert_eq!(u64_at(read, &["clat_ns", "N"]), 1024);
    let percentiles = keys(&read["clat_ns"]["percentile"]);
    for key in [
        "1.000000",
        "5.000000",
        "50.000000",
        "99.900000",
        "99.990000",
    ] {
        assert!(percentiles.contains(key), "{key} in {percentiles:?}");
    }
    assert_eq!(percentiles.len(), 17, "fio's default list");
    assert!(read["clat_ns"].get("bins").is_none(), "bins are json+'s");
    assert_eq!(u64_at(&fio["jobs"][0], &["write", "total_ios"]), 0);
    let depths = &fio["jobs"][0]["iodepth_level"];
    assert_eq!(
        depths["1"], 100.0,
        "iodepth 1: every submission at depth 1: {depths}"
    );
}

#[test]
fn a_mixed_job_on_a_real_file_counts_reads_and_writes_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data");
    let filename = format!("--filename={}", file.display());
    let args = [
        filename.as_str(),
        "--rw",
        "randrw",
        "--rwmixread",
        "70",
        "--size",
        "2m",
        "--output-format",
        "normal,json",
    ];
    let (case, fio) = run(&tmp.path().join("o"), &args);
    assert_split_as_the_case(&case, &fio);
    let job = &fio["jobs"][0];
    let (reads, writes) = (
        u64_at(job, &["read", "total_ios"]),
        u64_at(job, &["write", "total_ios"]),
    );
    assert!(reads > 0 && writes > 0, "{reads} reads, {writes} writes");
    assert_eq!(reads + writes, u64_at(&case, &["bios"]));
    assert_eq!(job["job options"]["rwmixread"], "70");
}

#[test]
fn json_plus_bins_count_every_io() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--ioengine",
        "null",
        "--rw",
        "randrw",
        "--size",
        "4m",
        "--output-format",
        "json+",
    ];
    let (_, fio) = run(&tmp.path().join("o"), &args);
    for dir in ["read", "write"] {
        let d = &fio["jobs"][0][dir];
        let bins = d["clat_ns"]["bins"].as_object().unwrap();
        let binned: u64 = bins.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(binned, u64_at(d, &["total_ios"]), "{dir}");
        assert!(bins.keys().all(|k| k.parse::<u64>().is_ok()), "ns keys");
    }
}

/// fio's own JSON for a job like ours, or `None` where fio is not installed.
fn real_fio(dir: &Path) -> Option<Value> {
    let out = Proc::new("fio")
        .current_dir(dir)
        .args(["--name=x", "--ioengine=null", "--rw=randrw", "--size=4m"])
        .arg("--output-format=json")
        .output();
    match out {
        Ok(out) if out.status.success() => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Ok(out) => panic!("fio failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running fio: {e}"),
    }
}

#[test]
fn a_job_has_the_keys_real_fio_gives_one() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(theirs) = real_fio(tmp.path()) else {
        println!("note: fio is not installed; the key sets were not compared with its own");
        return;
    };
    let args = [
        "--ioengine",
        "null",
        "--rw",
        "randrw",
        "--size",
        "4m",
        "--output-format",
        "json",
    ];
    let (_, ours) = run(&tmp.path().join("o"), &args);
    let (mine, fios) = (&ours["jobs"][0], &theirs["jobs"][0]);
    assert_eq!(keys(mine), keys(fios), "a job's keys");
    for dir in ["read", "write", "trim"] {
        assert_eq!(keys(&mine[dir]), keys(&fios[dir]), "{dir}'s keys");
    }
    for lat in ["slat_ns", "clat_ns", "lat_ns"] {
        assert_eq!(
            keys(&mine["read"][lat]),
            keys(&fios["read"][lat]),
            "{lat}'s keys"
        );
    }
    for map in [
        "iodepth_level",
        "latency_ns",
        "latency_us",
        "latency_ms",
        "sync",
    ] {
        assert_eq!(keys(&mine[map]), keys(&fios[map]), "{map}'s keys");
    }
    let percentiles = |v: &Value| keys(&v["read"]["clat_ns"]["percentile"]);
    assert_eq!(percentiles(mine), percentiles(fios), "percentile keys");
}

#[test]
fn terse_is_refused_and_says_what_instead() {
    let tmp = tempfile::tempdir().unwrap();
    harness()
        .args([
            "run",
            "--ioengine",
            "null",
            "--size",
            "1m",
            "--output-format",
            "terse",
        ])
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("terse").and(predicate::str::contains("json+")));
}

#[test]
fn compare_writes_one_per_case() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    harness()
        .args(["compare", "--strategy", "inline", "--strategy", "kthread"])
        .args(["--repeat", "1", "--warmup", "0", "--drop-caches", "false"])
        .args(["--ioengine", "null", "--rw", "write", "--size", "1m"])
        .args(["--output-format", "json"])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    for case in crate::common::cases(&out) {
        let id = case["case"].as_str().unwrap();
        let fio = read_json(&out.join(format!("{id}.fio.json")));
        assert_split_as_the_case(&case, &fio);
        assert_eq!(fio["global options"]["strategy"], case["strategy"]);
    }
}

#[test]
fn each_clone_of_numjobs_is_a_job_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--ioengine",
        "null",
        "--rw",
        "write",
        "--size",
        "1m",
        "--numjobs",
        "2",
        "--output-format",
        "json",
    ];
    let (case, fio) = run(&tmp.path().join("o"), &args);
    let jobs = fio["jobs"].as_array().unwrap();
    assert_eq!(
        jobs.len(),
        2,
        "one per clone, as fio without group_reporting"
    );
    for job in jobs {
        assert_eq!(u64_at(job, &["write", "io_bytes"]), 1 << 20);
        assert_eq!(u64_at(job, &["read", "total_ios"]), 0);
    }
    let written: u64 = jobs.iter().map(|j| u64_at(j, &["write", "io_bytes"])).sum();
    assert_eq!(written, u64_at(&case, &["by_direction", "write", "bytes"]));
    assert_eq!(written, u64_at(&case, &["bytes"]));
}
