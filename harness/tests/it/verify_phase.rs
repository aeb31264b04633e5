//! fio's verify phase through the binary: a write job with `verify=` reads back what it
//! wrote once its writes end; the read-back is verified and reported apart from the
//! measured figures; sectors it never wrote are not read; `csum=` alone and `do_verify=0`
//! have no such phase.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{harness, only_case};

const MIB: u64 = 1 << 20;

/// Runs `job` (one job file section body under `[global] filename=…`) and returns its case.
fn run(dir: &Path, name: &str, job: &str) -> (Value, String) {
    let file = dir.join(format!("{name}.fio"));
    let data = dir.join(format!("{name}.data"));
    fs::write(
        &file,
        format!("[global]\nfilename={}\n[{name}]\n{job}\n", data.display()),
    )
    .unwrap();
    let out = dir.join(name);
    let o = harness()
        .args(["run", "--drop-caches", "false", "--out"])
        .arg(&out)
        .arg("--job")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    (only_case(&out), stderr)
}

#[test]
fn a_write_job_with_verify_reads_back_all_it_wrote_apart_from_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ["psync", "io_uring"] {
        let (case, stderr) = run(
            tmp.path(),
            engine,
            &format!("rw=randwrite\nbs=16k\nsize=8m\niodepth=8\nioengine={engine}\nverify=crc32c"),
        );
        assert_eq!(case["status"], "ok", "{case}");
        assert_eq!(
            case["bytes"],
            8 * MIB,
            "the measured part is the writes alone"
        );
        let phase = &case["verify_phase"];
        assert_eq!(phase["bytes"], 8 * MIB, "{phase}");
        assert_eq!(phase["jobs"], 1);
        assert!(phase["elapsed_s"].as_f64().unwrap() > 0.0);
        assert_eq!(case["mismatch_count"], 0);
        assert!(stderr.contains("verify phase read back 8MiB"), "{stderr}");
        assert!(!stderr.contains("does not yet"), "{stderr}");
    }
}

#[test]
fn a_time_based_writer_on_a_new_file_has_only_what_it_wrote_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    // Random 4 KiB writes without a random map for a moment: some blocks twice, most
    // never. A read of a never-written sector would be reported as not recorded.
    let (case, _) = run(
        tmp.path(),
        "partial",
        "rw=randwrite\nbs=4k\nsize=64m\nnorandommap=1\nruntime=300ms\ntime_based=1\n\
         verify=xxhash",
    );
    assert_eq!(case["status"], "ok", "{case}");
    assert_eq!(case["mismatch_count"], 0, "{case}");
    let read_back = case["verify_phase"]["bytes"].as_u64().unwrap();
    let written = case["bytes"].as_u64().unwrap();
    assert!(
        read_back > 0 && read_back <= written,
        "{read_back} of {written}"
    );
    assert!(read_back < 64 * MIB, "only written sectors: {read_back}");
}

#[test]
fn csum_alone_and_do_verify_0_have_no_verify_phase() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, how) in [
        ("csum", "csum=crc32c"),
        ("off", "verify=crc32c\ndo_verify=0"),
    ] {
        let (case, stderr) = run(
            tmp.path(),
            name,
            &format!("rw=write\nbs=64k\nsize=2m\n{how}"),
        );
        assert_eq!(case["status"], "ok", "{case}");
        assert!(case["verify_phase"].is_null(), "{name}: {case}");
        assert!(!stderr.contains("verify phase"), "{stderr}");
    }
}
