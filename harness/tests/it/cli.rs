//! The binary, tested from outside: what a user types, what a user sees.

// Each test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::os::unix::fs::FileExt;

use predicates::prelude::*;

use crate::common::{cases, harness, manifest};

#[test]
fn write_then_read_verify_passes_and_a_flipped_byte_is_reported_at_its_sector() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_arg = data.to_str().unwrap();
    let job = ["--bs", "64k", "--size", "4m", "--filename", data_arg];

    harness()
        .args(["run", "--strategy", "kthread", "--rw", "write"])
        .args(job)
        .arg("--out")
        .arg(tmp.path().join("w"))
        .assert()
        .success();
    harness()
        .args(["run", "--strategy", "kthread", "--rw", "read"])
        .args(job)
        .arg("--out")
        .arg(tmp.path().join("r1"))
        .assert()
        .success()
        .stderr(predicate::str::contains("laying out").not());
    let read = &cases(&tmp.path().join("r1"))[0];
    assert_eq!(read["status"], "ok");
    assert_eq!(read["bytes"], 4 << 20);
    assert_eq!(read["mismatch_count"], 0);

    // Flip one byte in the middle of sector 300.
    let victim = 300 * 4096 + 1234;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, victim).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], victim).unwrap();
    drop(f);

    harness()
        .args(["run", "--strategy", "kthread", "--rw", "read"])
        .args(job)
        .arg("--out")
        .arg(tmp.path().join("r2"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "checksum mismatch at offset {}",
            300 * 4096
        )));
    let bad = &cases(&tmp.path().join("r2"))[0];
    assert_eq!(bad["status"], "verify_failed");
    assert_eq!(bad["mismatch_count"], 1);
    assert_eq!(bad["mismatches"][0]["offset"], 300 * 4096);
}

#[test]
fn a_read_of_a_file_without_checksums_lays_it_out_first_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh");
    harness()
        .args(["run", "--rw", "randread", "--bs", "16k", "--size", "1m"])
        .arg("--filename")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("r"))
        .assert()
        .success()
        .stderr(
            predicate::str::contains("laying out")
                .and(predicate::str::contains("no checksum store")),
        );
    assert_eq!(cases(&tmp.path().join("r"))[0]["status"], "ok");
}

#[test]
fn compare_sync_crc_writes_every_result_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let assert = harness()
        .args([
            "compare",
            "--sync-crc",
            "--size",
            "16m",
            "--repeat",
            "1",
            "--warmup",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("strategy"), "{stdout}");
    assert!(rows[1].starts_with("inline "), "{stdout}");
    assert!(rows[2].starts_with("kthread:"), "{stdout}");
    for col in [
        "MiB/s",
        "ratio",
        "e2e p50",
        "p99.9",
        "CPU s/GiB",
        "vcsw/GiB",
        "min MiB/s",
    ] {
        assert!(rows[0].contains(col), "missing {col}: {}", rows[0]);
    }

    let manifest = manifest(&out);
    assert_eq!(manifest["status"], "complete");
    for key in ["kernel", "cpu_model", "cpu_flags"] {
        assert!(!manifest["machine"][key].is_null(), "manifest lacks {key}");
    }
    assert!(manifest["software"]["crates"]["crc32c"].is_string());
    assert_eq!(manifest["config"]["job"]["bs"], 1 << 20);
    assert_eq!(manifest["cases"].as_array().unwrap().len(), 2);

    let cases = cases(&out);
    assert_eq!(cases.len(), 2);
    for c in &cases {
        assert_eq!(c["status"], "ok", "{c}");
        assert_eq!(c["bytes"], 16 << 20);
        for tag in [
            "e2e",
            "csum_wait",
            "csum_run",
            "io",
            "endio_wait",
            "endio_run",
        ] {
            assert!(c["latency_us"][tag]["count"].as_u64().unwrap() > 0, "{tag}");
        }
        let hlog = fs::read_to_string(out.join(c["hlog"].as_str().unwrap())).unwrap();
        assert!(
            hlog.contains("Tag=e2e,") && hlog.contains("Tag=csum_run,"),
            "{hlog}"
        );
        assert!(
            hlog.lines().any(|l| l.contains(",HISTFAA")),
            "V2 deflate payloads"
        );
        let csv = fs::read_to_string(out.join(c["bw_csv"].as_str().unwrap())).unwrap();
        assert!(csv.starts_with("start_s,length_s,bytes,bios,mib_s\n"));
        let total: u64 = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            total,
            16 << 20,
            "bandwidth intervals add up to the bytes moved"
        );
    }
    // Nothing half-written is left behind.
    assert!(fs::read_dir(&out).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", "--strategy", "nosuch"],
            "unknown strategy 'nosuch'",
        ),
        (
            &["run", "--strategy", "kthread:bogus=1"],
            "unknown knob 'bogus'",
        ),
        (
            &["run", "--strategy", "kthread:max_workers=x"],
            "max_workers=x",
        ),
        (&["run", "--size", "12q"], "--size"),
        (&["run", "--bs", "1000"], "4KiB"),
        (
            &["run", "--filename", "/nonexistent-dir/f", "--rw", "write"],
            "does not exist",
        ),
    ];
    for (args, needle) in cases {
        harness()
            .args(args)
            .arg("--out")
            .arg(tmp.path().join("o"))
            .assert()
            .failure()
            .stderr(predicate::str::contains(needle));
    }
}

#[test]
fn an_existing_file_that_is_not_ours_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let precious = tmp.path().join("precious");
    fs::write(&precious, vec![7u8; 1 << 20]).unwrap();
    harness()
        .args([
            "run",
            "--rw",
            "write",
            "--bs",
            "64k",
            "--size",
            "1m",
            "--filename",
        ])
        .arg(&precious)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("--overwrite"));
    assert_eq!(fs::read(&precious).unwrap(), vec![7u8; 1 << 20]);
}

#[test]
fn list_names_every_strategy_with_its_knobs() {
    harness()
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("inline"))
        .stdout(predicate::str::contains("kthread"))
        .stdout(predicate::str::contains("max_workers"))
        .stdout(predicate::str::contains("idle_thresh"));
}

#[test]
fn csum_impl_forces_a_crc32c_and_the_manifest_records_every_candidate_and_cost() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("forced");
    let job = ["--ioengine", "null", "--rw", "write", "--size", "1m"];
    harness()
        .args(["run", "--csum-impl", "crc-slice16", "--csum", "cost:3us"])
        .args(job)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let software = &manifest(&out)["software"];
    let crc = &software["crc32c"];
    assert_eq!(crc["chosen"], "crc-slice16", "{crc}");
    assert_eq!(crc["forced"], true, "{crc}");
    let candidates = crc["candidates"].as_array().unwrap();
    assert!(candidates.len() >= 3, "{crc}");
    for c in candidates {
        assert_eq!(c["verified"], true, "{c}");
        assert!(c["gib_s_4k"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["gib_s_1m"].as_f64().unwrap() > 0.0, "{c}");
    }
    let cost = &software["synthetic_costs"][0];
    assert_eq!(cost["requested_ns"], 3000, "{software}");
    assert!(cost["achieved_ns"].as_f64().unwrap() > 0.0, "{cost}");
    assert!(software["checksum_implementations"]["cost:3us"].is_string());

    // An unknown name fails before anything is written, listing the ones there are.
    harness()
        .args(["run", "--csum-impl", "crc32-ieee"])
        .args(job)
        .arg("--out")
        .arg(tmp.path().join("unknown"))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("--csum-impl crc32-ieee")
                .and(predicate::str::contains("crc-fast"))
                .and(predicate::str::contains("crc32c-crate")),
        );
    assert!(!tmp.path().join("unknown").exists());
}

#[test]
fn list_names_every_engine_with_its_aliases_caps_and_options() {
    let out = harness().arg("list").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    for engine in workloads::engine::registry::engines() {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{} ", engine.name)))
            .unwrap_or_else(|| panic!("{} is not listed:\n{stdout}", engine.name));
        assert!(line.contains(engine.summary), "{line}");
        for alias in engine.aliases {
            assert!(stdout.contains(alias), "alias {alias}");
        }
        for option in engine.options {
            assert!(
                stdout.contains(&format!("    {} ", option.name)),
                "{}",
                option.name
            );
        }
    }
    assert!(stdout.contains("queues only with direct=1"), "{stdout}");
}

#[test]
fn list_fio_says_what_becomes_of_every_fio_option() {
    let out = harness().args(["list", "--fio"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_string()
    };
    assert!(line("group_reporting").contains("accepted, warned"));
    assert!(line("verify_pattern").contains("rejected"));
    assert!(line("bssplit").contains("honoured"));
    assert!(line("rate_process").contains("honoured"));
    assert!(line("flow").contains("honoured"));
    assert!(line("nrfiles,").contains("honoured"));
    assert!(line("thinktime").contains("honoured"));
    assert!(text.lines().count() > 350, "every fio option");
}

#[test]
fn list_options_prints_the_option_table() {
    let out = harness()
        .args(["list", "--options", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        workloads::job::options::markdown_table()
    );
    let text = harness().args(["list", "--options"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    for option in workloads::job::options::every() {
        assert!(text.contains(option.name), "{}", option.name);
    }
}

#[test]
fn help_offers_every_command_line_option_with_every_value() {
    use workloads::job::options::{every, Scope};
    let out = harness().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for option in every() {
        let flag = format!("--{} ", option.name);
        let bare = format!("--{} [", option.name);
        let offered = help.contains(&flag) || help.contains(&bare);
        assert_eq!(offered, option.scope == Scope::Both, "{}", option.name);
    }
    let rw = help.lines().find(|l| l.contains("--rw ")).unwrap();
    for mode in workloads::RwMode::names() {
        assert!(rw.contains(mode), "--rw help lacks {mode}: {rw}");
    }
    let engines = help.lines().find(|l| l.contains("--ioengine ")).unwrap();
    for name in workloads::engine::registry::names() {
        assert!(
            engines.contains(name),
            "--ioengine help lacks {name}: {engines}"
        );
    }
}

#[test]
fn job_options_apply_in_the_order_given() {
    let tmp = tempfile::tempdir().unwrap();
    let job = |args: &[&str], out: &str| {
        harness()
            .args(["run", "--drop-caches", "false", "--ioengine", "null"])
            .args(["--rw", "randrw", "--size", "1m"])
            .args(args)
            .arg("--out")
            .arg(tmp.path().join(out))
            .assert()
            .success();
        crate::common::only_case(&tmp.path().join(out))["job"].clone()
    };
    let j = job(&["--rwmixread", "70", "--rwmixwrite", "20"], "a");
    assert_eq!(j["rwmixread"], 80, "the later of the two wins");
    let j = job(&["--rwmixwrite", "20", "--rwmixread", "70"], "b");
    assert_eq!(j["rwmixread"], 70);
    // A bare flag is set, as in a job file; `-` stands for `_`; fio's aliases work.
    let j = job(
        &["--end-fsync", "--blocksize", "8k", "--readwrite", "rw"],
        "c",
    );
    assert_eq!(
        (j["end_fsync"].as_bool(), j["bs"].as_u64(), j["rw"].as_str()),
        (Some(true), Some(8192), Some("readwrite"))
    );
    let j = job(
        &[
            "--ioengine",
            "aio",
            "--iodepth",
            "4",
            "--direct",
            "--libaio-vectored",
        ],
        "d",
    );
    assert_eq!(j["ioengine"], "libaio");
    assert_eq!(j["engine_options"]["libaio_vectored"], 1);
}
