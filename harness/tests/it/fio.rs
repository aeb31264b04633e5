//! fio compatibility through the binary: job files, engines, mixed I/O, rates, devices.

use std::fs;

use predicates::prelude::*;

use crate::common::{cases, harness, Loop};

#[test]
fn a_job_file_runs_groups_in_order_and_jobs_of_a_group_together() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("jobs.fio");
    fs::write(
        &file,
        format!(
            "; two writers at once, then a verifying reader\n\
             [global]\n\
             directory={dir}\n\
             bs=64k\n\
             size=2m\n\
             verify=crc32c\n\
             [w1]\n\
             rw=write\n\
             [w2]\n\
             rw=randwrite   # same group as w1\n\
             [r1]\n\
             stonewall\n\
             rw=read\n\
             filename=w1.0.0   # inside directory, as fio puts it\n",
            dir = tmp.path().display()
        ),
    )
    .unwrap();
    harness()
        .args(["run", "--drop-caches", "false", "--job"])
        .arg(&file)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .success()
        .stderr(predicate::str::contains("laying out").not());
    let c = cases(&tmp.path().join("o"));
    assert_eq!(c.len(), 2, "one case per group");
    assert_eq!(c[0]["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(c[0]["bytes"], 4 << 20, "both writers counted");
    assert_eq!(c[1]["jobs"][0]["name"], "r1");
    assert_eq!(c[1]["status"], "ok");
    assert_eq!(c[1]["bytes"], 2 << 20);
}

#[test]
fn an_unsupported_job_file_option_names_itself_and_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.fio");
    fs::write(
        &file,
        "[global]\nbs=4k\n\n[j]\nrw=read\nverify_pattern=0xff\n",
    )
    .unwrap();
    harness()
        .args(["run", "--job"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicate::str::contains("line 6").and(predicate::str::contains("verify_pattern")));
}

#[test]
fn io_uring_and_psync_verify_each_others_data_at_depth() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let common = |engine: &str, rw: &str, out: &str| {
        let mut c = harness();
        c.args(["run", "--drop-caches", "false", "--strategy", "kthread"])
            .args([
                "--ioengine",
                engine,
                "--rw",
                rw,
                "--bs",
                "16k",
                "--size",
                "4m",
            ])
            .args(["--iodepth", "32", "--direct", "1", "--filename"])
            .arg(&data)
            .arg("--out")
            .arg(tmp.path().join(out));
        c
    };
    common("io_uring", "randwrite", "w").assert().success();
    common("psync", "randread", "r1").assert().success();
    common("io_uring", "read", "r2").assert().success();
    for out in ["r1", "r2"] {
        let c = &cases(&tmp.path().join(out))[0];
        assert_eq!(c["status"], "ok", "{out}");
        assert_eq!(c["bytes"], 4 << 20, "{out}");
    }
}

#[test]
fn mixed_io_verifies_its_reads_and_follows_rwmixread() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mix");
    harness()
        .args([
            "run",
            "--drop-caches",
            "false",
            "--strategy",
            "kthread",
            "--job",
        ])
        .arg({
            let f = tmp.path().join("mix.fio");
            fs::write(
                &f,
                format!(
                    "[mix]\nrw=randrw\nrwmixread=70\nbs=4k\nsize=8m\nfilename={}\n",
                    data.display()
                ),
            )
            .unwrap();
            f
        })
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .success();
    let c = &cases(&tmp.path().join("o"))[0];
    assert_eq!(c["status"], "ok");
    assert_eq!(c["mismatch_count"], 0);
    // Reads go through endio verification; writes through the csum stage. 2048 I/Os.
    let writes = c["latency_us"]["csum_run"]["count"].as_u64().unwrap();
    let total = c["bios"].as_u64().unwrap();
    assert_eq!(total, 2048);
    let read_share = 1.0 - writes as f64 / total as f64;
    assert!(
        (0.65..=0.75).contains(&read_share),
        "read share {read_share}"
    );
}

#[test]
fn rate_iops_caps_how_many_ios_are_issued() {
    let tmp = tempfile::tempdir().unwrap();
    harness()
        .args([
            "run",
            "--drop-caches",
            "false",
            "--ioengine",
            "null",
            "--rw",
            "randread",
        ])
        .args([
            "--bs",
            "4k",
            "--size",
            "64m",
            "--time_based",
            "1",
            "--runtime",
            "1",
        ])
        .args(["--job"])
        .arg({
            let f = tmp.path().join("rate.fio");
            fs::write(&f, "[rated]\nrate_iops=200\n").unwrap();
            f
        })
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .success();
    let c = &cases(&tmp.path().join("o"))[0];
    let ios = c["bios"].as_u64().unwrap();
    // 200 IOPS for one second: generous bounds, counts not timings.
    assert!(
        (100..=260).contains(&ios),
        "{ios} I/Os at rate_iops=200 for 1s"
    );
}

#[test]
fn block_devices_are_guarded_and_verify_on_a_loop_device() {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("disk.img");
    fs::write(&backing, vec![0u8; 32 << 20]).unwrap();
    let Some(lo) = Loop::new(&backing) else {
        return;
    };
    let run = |rw: &str, allow: bool, out: &str| {
        let mut c = harness();
        // Scratch files and device stores in this test's dir, removed with it.
        c.env("TMPDIR", tmp.path())
            .env("XDG_STATE_HOME", tmp.path());
        c.args([
            "run",
            "--drop-caches",
            "false",
            "--strategy",
            "kthread",
            "--rw",
            rw,
        ])
        .args([
            "--bs",
            "64k",
            "--size",
            "16m",
            "--direct",
            "1",
            "--ioengine",
            "io_uring",
        ])
        .args(["--iodepth", "8", "--filename", &lo.dev])
        .arg("--out")
        .arg(tmp.path().join(out));
        if allow {
            c.arg("--allow-device-write");
        }
        c
    };
    run("write", false, "refused")
        .assert()
        .failure()
        .stderr(predicate::str::contains("--allow-device-write"));
    assert!(
        fs::read(&backing).unwrap().iter().all(|&b| b == 0),
        "nothing written"
    );
    run("write", true, "w").assert().success();
    run("randread", false, "r").assert().success();
    let c = &cases(&tmp.path().join("r"))[0];
    assert_eq!(c["status"], "ok");
    assert_eq!(c["bytes"], 16 << 20);
    let storage = &c["storage"][0];
    assert_eq!(
        storage["logical_block_size"]
            .as_u64()
            .map(|b| b.is_power_of_two()),
        Some(true)
    );
}

#[test]
fn every_registered_engine_writes_then_verifies_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in workloads::engine::registry::engines() {
        if engine.caps.diskless {
            continue;
        }
        let data = tmp.path().join(engine.name);
        for (rw, direct) in [("randwrite", "1"), ("read", "1"), ("randread", "0")] {
            let out = tmp.path().join(format!("{}-{rw}-{direct}", engine.name));
            let o = harness()
                .args(["run", "--drop-caches", "false", "--strategy", "kthread"])
                .args(["--ioengine", engine.name, "--rw", rw, "--direct", direct])
                .args([
                    "--bs",
                    "16k",
                    "--size",
                    "2m",
                    "--iodepth",
                    "16",
                    "--filename",
                ])
                .arg(&data)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{} {rw}: {stderr}", engine.name);
            let c = &cases(&out)[0];
            assert_eq!(c["status"], "ok", "{} {rw}", engine.name);
            assert_eq!(c["bytes"], 2 << 20, "{} {rw}", engine.name);
            assert_eq!(c["mismatch_count"], 0, "{} {rw}", engine.name);
            let warned = stderr.contains("warning: job 'job': ioengine=libaio with direct=0");
            assert_eq!(
                warned,
                engine.caps.queues_only_direct && direct == "0",
                "{} {rw} direct={direct}: {stderr}",
                engine.name
            );
        }
    }
}
