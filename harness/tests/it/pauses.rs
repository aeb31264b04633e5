//! fio's deliberate idle time through the binary: `thinktime` (with `thinktime_blocks`,
//! `thinktime_blocks_type`, `thinktime_spin`) and `startdelay`. Every I/O is still done
//! once, the elapsed time includes the think time, and the watchdog calls neither a long
//! think time nor a start delay a stall. Only lower bounds on time: the machine is noisy.
//! And fio's `flow`: jobs of one flow_id issue in the ratio of their weights.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{harness, only_case, stderr};

/// Runs one null-engine job of `ios` 4 KiB writes with `options`; its case, and how long
/// the process took.
fn run(dir: &Path, ios: u64, options: &[&str]) -> (Value, Duration) {
    let out = dir.join(options.join("_").replace(['-', '/'], ""));
    let size = format!("{}k", ios * 4);
    let started = Instant::now();
    let o = harness()
        .args(["run", "--strategy", "inline", "--drop-caches", "false"])
        .args([
            "--ioengine",
            "null",
            "--rw",
            "write",
            "--bs",
            "4k",
            "--size",
            &size,
        ])
        .args(["--stall-timeout", "1", "--interval", "100ms"])
        .args(options)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{options:?}: {}", stderr(&o));
    let case = only_case(&out);
    assert_eq!(case["status"], "ok", "{options:?}: {case}");
    assert_eq!(case["bios"], ios, "{options:?}: every I/O once");
    (case, took)
}

fn elapsed(case: &Value) -> f64 {
    case["elapsed_s"].as_f64().unwrap()
}

#[test]
fn think_times_stall_between_blocks_and_count_in_the_elapsed_time() {
    let tmp = tempfile::tempdir().unwrap();
    // 100 I/Os, a stall after every 10: at least 9 of 20 ms before the last I/O.
    let think = ["--thinktime", "20ms", "--thinktime_blocks", "10"];
    let (case, _) = run(tmp.path(), 100, &think);
    assert!(elapsed(&case) >= 9.0 * 0.020, "{case}");
    let issue = [&think[..], &["--thinktime_blocks_type", "issue"]].concat();
    let (case, _) = run(tmp.path(), 100, &issue);
    assert!(elapsed(&case) >= 9.0 * 0.020, "{case}");
    // Spinning is still thinking: the same lower bound.
    let spin = [&think[..], &["--thinktime_spin", "5ms", "--iodepth", "4"]].concat();
    let (case, _) = run(tmp.path(), 100, &spin);
    assert!(elapsed(&case) >= 9.0 * 0.020, "{case}");
}

#[test]
fn a_think_time_longer_than_the_stall_timeout_is_no_stall() {
    let tmp = tempfile::tempdir().unwrap();
    // Two I/Os and one 2 s stall between them, watched with a 1 s stall timeout.
    let (case, _) = run(tmp.path(), 2, &["--thinktime", "2s"]);
    assert!(case["stall"].is_null(), "{case}");
    assert!(elapsed(&case) >= 2.0, "{case}");
}

#[test]
fn a_start_delay_waits_without_being_a_stall_and_is_not_elapsed_time() {
    let tmp = tempfile::tempdir().unwrap();
    for delay in ["2", "1500ms-2s"] {
        let (case, took) = run(tmp.path(), 64, &["--startdelay", delay]);
        assert!(took >= Duration::from_millis(1500), "{delay}: {took:?}");
        assert!(case["stall"].is_null(), "{delay}: {case}");
        // As in fio, a job's time runs from its start, after the delay.
        assert!(elapsed(&case) < 1.5, "{delay}: {case}");
    }
}

#[test]
fn a_think_time_is_not_latency_of_a_rate_limited_job() {
    let tmp = tempfile::tempdir().unwrap();
    // 20 I/Os at 100 IOPS, 300 ms of thought after every 5: the job falls behind its rate
    // by design, and its I/Os (microseconds on the null engine) must not count it.
    let options = [
        "--rate_iops",
        "100",
        "--thinktime",
        "300ms",
        "--thinktime_blocks",
        "5",
    ];
    let (case, _) = run(tmp.path(), 20, &options);
    assert!(elapsed(&case) >= 3.0 * 0.3, "{case}");
    let max_us = case["latency_us"]["e2e"]["max_us"].as_f64().unwrap();
    assert!(
        max_us < 200_000.0,
        "the think time counted as latency: {max_us} us"
    );
}

/// fio's flow control: two jobs of one flow_id, weights 1 and 3, issue I/Os 1 : 3 while
/// both run (the count, not the time, decides: a job ahead of its share holds back).
#[test]
fn the_jobs_of_a_flow_issue_in_the_ratio_of_their_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("flow.fio");
    std::fs::write(
        &job,
        "[global]\nioengine=null\nrw=write\nbs=4k\nsize=1g\ntime_based=1\nruntime=1\n\
         flow_id=3\nflow_sleep=50\n[light]\nflow=1\n[heavy]\nflow=3\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = harness()
        .args([
            "run",
            "--drop-caches",
            "false",
            "--output-format",
            "json",
            "--out",
        ])
        .arg(&out)
        .arg("--job")
        .arg(&job)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fio = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".fio.json"))
        .unwrap();
    let fio: Value = serde_json::from_slice(&std::fs::read(fio).unwrap()).unwrap();
    let bytes = |i: usize| fio["jobs"][i]["write"]["io_bytes"].as_f64().unwrap();
    let ratio = bytes(1) / bytes(0);
    assert!((2.8..3.2).contains(&ratio), "heavy : light = {ratio}");
}
