//! fio's verify phase through the binary: a write job with `verify=` reads back what it
//! wrote once its writes end; the read-back is verified and reported apart from the
//! measured figures; sectors it never wrote are not read; `csum=` alone and `do_verify=0`
//! have no such phase; `verify_only=1` runs the phase alone, over an earlier run's data,
//! and finds a sector damaged since.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{harness, only_case};

const MIB: u64 = 1 << 20;

/// Runs `job` (one job file section body under `[global] filename=…`) and returns its case.
fn run(dir: &Path, name: &str, job: &str) -> (Value, String) {
    run_into(dir, name, job, name)
}

/// [`run`], its results in `dir/out`.
fn run_into(dir: &Path, name: &str, job: &str, out: &str) -> (Value, String) {
    let file = dir.join(format!("{name}.fio"));
    let data = dir.join(format!("{name}.data"));
    fs::write(
        &file,
        format!("[global]\nfilename={}\n[{name}]\n{job}\n", data.display()),
    )
    .unwrap();
    let out = dir.join(out);
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

#[test]
fn verify_only_reads_back_an_earlier_runs_data_and_finds_what_changed_since() {
    use std::os::unix::fs::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let job = "rw=randwrite\nbs=16k\nsize=4m\nverify=crc32c\ndo_verify=0";
    run(tmp.path(), "data", job);
    let data = tmp.path().join("data.data");
    let before = fs::read(&data).unwrap();
    let (case, _) = run_into(tmp.path(), "data", &format!("{job}\nverify_only=1"), "v");
    assert_eq!(case["status"], "ok", "{case}");
    assert_eq!(
        case["bytes"],
        4 * MIB,
        "every sector read back, as the job's reads"
    );
    assert_eq!(case["mismatch_count"], 0);
    assert_eq!(fs::read(&data).unwrap(), before, "nothing written");
    // One flipped bit in sector 100: found, and nowhere else.
    let file = fs::OpenOptions::new().write(true).open(&data).unwrap();
    file.write_at(&[before[100 * 4096 + 7] ^ 1], 100 * 4096 + 7)
        .unwrap();
    let file = tmp.path().join("again.fio");
    fs::write(
        &file,
        format!(
            "[global]\nfilename={}\n[data]\n{job}\nverify_only=1\n",
            data.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("again");
    let o = harness()
        .args(["run", "--drop-caches", "false", "--out"])
        .arg(&out)
        .arg("--job")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let case = only_case(&out);
    assert_eq!(case["mismatch_count"], 1, "{case}");
    assert_eq!(case["mismatches"][0]["offset"], 100 * 4096);
}

/// fio's `verify_backlog=N`: every N writes are read back and verified once done, before
/// the next; the rest after the writes. The read-backs count with the verify phase, not
/// as the job's reads.
#[test]
fn verify_backlog_reads_back_every_n_writes_and_the_rest_after() {
    let tmp = tempfile::tempdir().unwrap();
    for (backlog, during) in [(16u64, 128u64), (100, 100)] {
        let (case, stderr) = run(
            tmp.path(),
            &format!("backlog{backlog}"),
            &format!(
                "rw=randwrite\nbs=64k\nsize=8m\niodepth=8\nioengine=io_uring\n\
                 verify=crc32c\nverify_backlog={backlog}"
            ),
        );
        assert_eq!(case["status"], "ok", "{case}");
        assert_eq!(case["bytes"], 8 * MIB);
        assert_eq!(
            case["by_direction"]["read"]["bytes"], 0,
            "not the job's reads"
        );
        let phase = &case["verify_phase"];
        assert_eq!(phase["bytes"], 8 * MIB, "every write, once: {phase}");
        assert_eq!(phase["during_writes_bytes"], during * (64 << 10), "{phase}");
        if during < 128 {
            assert!(stderr.contains("of it during the writes"), "{stderr}");
        }
    }
}
