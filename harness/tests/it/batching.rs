//! fio's batching options, through the binary: whatever batches a job submits and reaps in
//! (iodepth_batch_submit, iodepth_batch_complete_min/max, iodepth_low, polling), every I/O
//! is done once, verified, and counted in every stage's latencies; and io_uring's
//! registered buffers (fixedbufs) and libaio's userspace_reap move the same data.

use std::path::Path;
use std::time::Duration;

use crate::common::{harness, only_case, stderr};

const LIMIT: Duration = Duration::from_secs(120);

/// Writes the file with `options`, then reads it all back verified with the same options.
fn write_then_verify(dir: &Path, engine: &str, options: &[&str]) {
    let file = dir.join(format!("{engine}.dat"));
    for (i, rw) in ["randwrite", "randread"].into_iter().enumerate() {
        let out = dir.join(format!("{engine}-{i}-{}", options.join("_")));
        let mut cmd = harness();
        cmd.timeout(LIMIT)
            .args(["run", "--strategy", "inline", "--drop-caches", "false"])
            .args(["--rw", rw, "--bs", "4k", "--size", "2m", "--iodepth", "16"])
            .args(["--ioengine", engine, "--direct", "1", "--csum", "crc32c"])
            .args(options)
            .arg("--filename")
            .arg(&file)
            .arg("--out")
            .arg(&out);
        let o = cmd.output().unwrap();
        let what = format!("{engine} {rw} {options:?}");
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
        let case = only_case(&out);
        assert_eq!(case["status"], "ok", "{what}");
        assert_eq!(case["bios"], 512, "{what}");
        assert_eq!(case["mismatch_count"], 0, "{what}");
        for (stage, latencies) in case["latency_us"].as_object().unwrap() {
            assert_eq!(latencies["count"], 512, "{what}: {stage}");
        }
    }
}

#[test]
fn every_batching_moves_every_io_once() {
    let tmp = tempfile::tempdir().unwrap();
    let batchings: &[&[&str]] = &[
        &[],
        &["--iodepth_batch_submit", "0"],
        &["--iodepth_batch_submit", "4", "--iodepth_low", "4"],
        &[
            "--iodepth_batch_complete_min",
            "3",
            "--iodepth_batch_complete_max",
            "8",
        ],
        // Both 0: fio polls for completions at every step, never waiting.
        &[
            "--iodepth_batch_complete_min",
            "0",
            "--iodepth_batch_complete_max",
            "0",
        ],
    ];
    for engine in ["io_uring", "libaio", "psync"] {
        for options in batchings {
            write_then_verify(tmp.path(), engine, options);
        }
    }
}

#[test]
fn registered_buffers_move_the_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    write_then_verify(tmp.path(), "io_uring", &["--fixedbufs", "1"]);
}

/// libaio's userspace_reap, where it applies: a job that polls for completions reads them
/// from the AIO ring itself, and moves every I/O once, verified.
#[test]
fn libaio_userspace_reap_polls_the_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let polling = [
        "--iodepth_batch_complete_min",
        "0",
        "--iodepth_batch_complete_max",
        "0",
    ];
    write_then_verify(
        tmp.path(),
        "libaio",
        &[&polling[..], &["--userspace_reap", "1"]].concat(),
    );
}
