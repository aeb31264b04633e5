//! fio compatibility through the binary: job files, engines, mixed I/O, rates, devices.

use std::fs;
use std::path::Path;

use predicates::prelude::*;

use crate::common::{cases, harness, Loop};

/// `harness run ARGS --job FILE --out OUT`: its exit code, and what it said on stderr.
/// Without an `out`, results go beside the job file, never into the source tree.
fn run_job_file(file: &Path, args: &[&str], out: Option<&Path>) -> (Option<i32>, String) {
    let mut c = harness();
    c.arg("run").args(args).arg("--job").arg(file);
    let beside = file.with_extension("out");
    c.arg("--out").arg(out.unwrap_or(&beside));
    let o = c.output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

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
        .stderr(predicate::str::contains(
            "bad.fio:6: verify_pattern: a fio option csumbench does not implement",
        ));
}

#[test]
fn every_problem_of_a_job_file_is_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("many.fio");
    fs::write(
        &file,
        "[global]\ngroup_reporting\nbs=4q\n[a]\nrw=trim\niodpeth=4\nzonemode=zbd\n\
         ioengine=net\n",
    )
    .unwrap();
    let (code, stderr) = run_job_file(&file, &[], None);
    assert!(code != Some(0));
    let at = |line: u32| format!("many.fio:{line}: ");
    for (line, needle) in [
        (3, "bs=4q: '4q': unknown size suffix 'q'"),
        (5, "rw=trim: csumbench issues no trims"),
        (6, "iodpeth: not a fio option; did you mean iodepth?"),
        (
            7,
            "zonemode: a fio option csumbench does not implement: csumbench drives neither",
        ),
        (
            8,
            "ioengine=net: fio's net engine does not read or write a file's sectors",
        ),
    ] {
        assert!(
            stderr.contains(&format!("{}{needle}", at(line))),
            "line {line}: {stderr}"
        );
    }

    // Once the lines read: the job-level checks, at the line that set the value, and the
    // report-only options in one warning.
    fs::write(&file, "[global]\ngroup_reporting\nbs=6k\n[a]\nrw=read\n").unwrap();
    let (code, stderr) = run_job_file(&file, &[], None);
    assert!(code != Some(0));
    assert!(
        stderr.contains("many.fio:3: job 'a': bs=6KiB: must be a non-zero multiple"),
        "{stderr}"
    );
    let args = ["--ioengine", "null", "--size", "64k", "--bs", "4k"];
    let (code, stderr) = run_job_file(&file, &args, Some(&tmp.path().join("o")));
    assert!(code == Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("shape only fio's own report").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("group_reporting (line 2)"), "{stderr}");
}

#[test]
fn units_keywords_and_arithmetic_read_as_fio_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("units.fio");
    fs::write(&file, "[kib]\nioengine=null\nbs=4KiB\nsize=1m\n").unwrap();
    let (code, stderr) = run_job_file(&file, &[], None);
    assert!(code != Some(0));
    assert!(
        stderr.contains(
            "units.fio:3: bs=4KiB: 4000 bytes, not whole 4KiB checksum sectors: \
                         with kb_base=1024, fio's default"
        ),
        "{stderr}"
    );
    fs::write(
        &file,
        format!(
            "[kib]\nioengine=null\nbs=4KiB\nsize=256KiB\nkb_base=1000\niodepth=(2*2)\n\
         numjobs=$ncpus\nrw=write\nfilename={}/x${{UNSET_IN_THIS_TEST}}y\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let (code, stderr) = run_job_file(&file, &[], Some(&tmp.path().join("o")));
    assert!(code == Some(0), "{stderr}");
    assert!(
        stderr.contains("units.fio:9: ${UNSET_IN_THIS_TEST} is not set: it reads as empty"),
        "{stderr}"
    );
    let c = &cases(&tmp.path().join("o"))[0];
    let job = &c["jobs"][0];
    assert_eq!(
        (job["bs"].as_u64(), job["iodepth"].as_u64()),
        (Some(4096), Some(4))
    );
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    assert!(job["numjobs"].as_u64().unwrap() >= cpus.min(4096), "{job}");
    let want = tmp.path().join("xy");
    assert_eq!(job["filename"].as_str(), want.to_str());
}

#[test]
fn the_io_pattern_options_shape_what_runs_and_it_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("pattern.fio");
    let data = tmp.path().join("data");
    fs::write(
        &file,
        format!(
            "[global]\nfilename={}\nsize=4m\nverify=crc32c\n\
             [split-writes]\nrw=randwrite\nbssplit=4k/30:64k/70\n\
             [range-reads]\nstonewall\nrw=randread\nbsrange=8k-64k\n\
             [two-loops]\nstonewall\nrw=randread\nbs=16k\nloops=2\n\
             [io-size]\nstonewall\nrw=read\nbs=64k\nsize=1m\nio_size=3m\n\
             [ten-ios]\nstonewall\nrw=randread\nnumber_ios=10\n\
             [holes]\nstonewall\nrw=write:64k\nbs=64k\nsize=1m\n\
             [mixed]\nstonewall\nrw=rw\nbs=4k,64k\n\
             [backwards]\nstonewall\nrw=read:-8k\nbs=4k\n",
            data.display()
        ),
    )
    .unwrap();
    let args = ["--drop-caches", "false", "--strategy", "kthread"];
    let (code, stderr) = run_job_file(&file, &args, Some(&tmp.path().join("o")));
    assert!(code == Some(0), "{stderr}");
    let c = cases(&tmp.path().join("o"));
    let bytes: Vec<(String, u64)> = c
        .iter()
        .map(|c| {
            (
                c["jobs"][0]["name"].as_str().unwrap().to_string(),
                c["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("split-writes", 4 << 20),
        ("range-reads", 4 << 20),
        ("two-loops", 8 << 20),
        ("io-size", 3 << 20),
        ("ten-ios", 10 << 12),
        // Every other 64k block of the first 1m of the 4m file, once (fio 3.33 does the
        // same on a file longer than the region).
        ("holes", 512 << 10),
        ("mixed", 4 << 20),
        ("backwards", 4 << 20),
    ];
    let want: Vec<(String, u64)> = want.iter().map(|(n, b)| (n.to_string(), *b)).collect();
    assert_eq!(bytes, want);
    for case in &c {
        assert_eq!(case["status"], "ok", "{}", case["jobs"][0]["name"]);
        assert_eq!(case["mismatch_count"], 0);
    }
}

#[test]
fn a_ramp_that_outlasts_the_job_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ramp.fio");
    fs::write(
        &file,
        "[ramped]\nioengine=null\nrw=write\nsize=64k\nramp_time=30\n",
    )
    .unwrap();
    let (code, stderr) = run_job_file(&file, &[], Some(&tmp.path().join("o")));
    assert_eq!(code, Some(1), "{stderr}");
    let c = &cases(&tmp.path().join("o"))[0];
    assert_eq!(c["status"], "error");
    assert_eq!(c["bytes"], 0);
    assert!(
        c["error"]
            .as_str()
            .unwrap()
            .starts_with("job 'ramped': ramp_time=30s swallowed the whole job: nothing measured"),
        "{c}"
    );
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

#[test]
fn exitall_ends_the_groups_other_jobs_when_its_job_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("exitall.fio");
    // Without exitall the second job would run its two minutes.
    fs::write(
        &file,
        "[global]\nioengine=null\nbs=4k\n[short]\nrw=read\nsize=4m\nexitall\n\
         [long]\nrw=read\nsize=1g\nruntime=120s\ntime_based=1\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let (code, stderr) = run_job_file(&file, &[], Some(&out));
    assert_eq!(code, Some(0), "{stderr}");
    let case = &cases(&out)[0];
    assert_eq!(case["status"], "ok", "{case}");
    let elapsed = case["elapsed_s"].as_f64().unwrap();
    assert!(elapsed < 60.0, "the long job ran on: {elapsed} s");
}

#[test]
fn rate_min_fails_a_job_that_falls_below_it_and_poisson_pacing_keeps_the_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, body: &str| {
        let file = tmp.path().join(format!("{name}.fio"));
        fs::write(
            &file,
            format!("[{name}]\nioengine=null\nrw=read\nbs=4k\nsize=1g\n{body}\n"),
        )
        .unwrap();
        let out = tmp.path().join(name);
        let (code, stderr) = run_job_file(&file, &[], Some(&out));
        (code, stderr, cases(&out))
    };
    // Paced to 1 MiB/s, asked for at least 2: fails once settled, naming the floor.
    let (code, stderr, cases_) = run("floor", "rate=1m\nrate_min=2m\nruntime=6s\ntime_based=1");
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(cases_[0]["status"], "error");
    assert!(
        stderr.contains("rate_min: the read rate fell below 2MiB/s"),
        "{stderr}"
    );
    // Exponential gaps of the rate's mean: about the rate, over a second.
    let (code, stderr, cases_) = run(
        "poisson",
        "rate=4m\nrate_process=poisson\nruntime=1s\ntime_based=1",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let mib_s = cases_[0]["mib_s"].as_f64().unwrap();
    assert!((2.0..6.0).contains(&mib_s), "{mib_s} MiB/s paced to 4");
}
