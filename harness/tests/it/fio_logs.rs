//! fio's logs through the binary (`write_bw_log`, `write_iops_log`, `write_lat_log`,
//! `log_avg_msec`, `per_job_logs`, `log_offset`): the files are where csumbench promises
//! (its results folder, behind the case's id) under fio's names, every line is fio's
//! format, and what they say adds up to the case's own figures. Compared with the lines of
//! fio's own log of a similar null-engine job where fio is installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{harness, only_case, stderr};

/// One entry of a fio log: `time_ms, value, data_direction, block_size[, offset], prio`.
#[derive(Debug)]
struct Entry {
    ms: u64,
    value: u64,
    ddir: u64,
    bs: u64,
    offset: Option<u64>,
}

/// Every line of a log, which must each be one of fio's entries (`offset`: with the
/// offset field).
fn entries(path: &Path, offset: bool) -> Vec<Entry> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let fields: Vec<u64> = line
                .split(", ")
                .map(|f| f.parse().unwrap_or_else(|_| panic!("{line:?}: not fio's")))
                .collect();
            assert_eq!(fields.len(), 5 + usize::from(offset), "{line:?}");
            assert!(fields[2] <= 1, "{line:?}: a direction is 0 or 1");
            assert_eq!(fields.last(), Some(&0), "{line:?}: prio");
            Entry {
                ms: fields[0],
                value: fields[1],
                ddir: fields[2],
                bs: fields[3],
                offset: offset.then(|| fields[4]),
            }
        })
        .collect()
}

/// Runs a null-engine job with `options`, into `out`; its case.
fn run(out: &Path, options: &[&str]) -> Value {
    let o = harness()
        .args(["run", "--strategy", "inline", "--drop-caches", "false"])
        .args(["--ioengine", "null", "--bs", "4k"])
        .args(options)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{options:?}: {}", stderr(&o));
    let case = only_case(out);
    assert_eq!(case["status"], "ok", "{case}");
    case
}

fn log_path(out: &Path, case: &Value, name: &str) -> PathBuf {
    out.join(format!("{}.{name}", case["case"].as_str().unwrap()))
}

#[test]
fn per_io_logs_have_an_entry_per_io_that_adds_up_to_the_case() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let case = run(
        &out,
        &["--rw", "randrw", "--size", "400k", "--write_bw_log", "p"],
    );
    let (bytes, bios) = (
        case["bytes"].as_u64().unwrap(),
        case["bios"].as_u64().unwrap(),
    );
    assert_eq!(bios, 100);
    let bw = entries(&log_path(&out, &case, "p_bw.1.log"), false);
    assert_eq!(bw.len() as u64, bios, "one entry per I/O");
    assert_eq!(bw.iter().map(|e| e.bs).sum::<u64>(), bytes);
    assert!(bw.iter().any(|e| e.ddir == 0) && bw.iter().any(|e| e.ddir == 1));
    assert!(bw.iter().all(|e| e.value > 0), "per-I/O bandwidth");
    assert!(bw.windows(2).all(|w| w[0].ms <= w[1].ms), "in time order");

    let out = tmp.path().join("lat");
    let lat_options = ["--rw", "write", "--size", "400k", "--write_lat_log", "l"];
    let case = run(
        &out,
        &[
            &lat_options[..],
            &["--write_iops_log", "i", "--log_offset", "1"],
        ]
        .concat(),
    );
    for kind in ["lat", "clat"] {
        let lat = entries(&log_path(&out, &case, &format!("l_{kind}.1.log")), true);
        assert_eq!(lat.len(), 100, "{kind}: one line per I/O");
        let mut offsets: Vec<u64> = lat.iter().map(|e| e.offset.unwrap()).collect();
        offsets.sort_unstable();
        assert_eq!(
            offsets,
            (0..100).map(|i| i * 4096).collect::<Vec<_>>(),
            "{kind}"
        );
        assert!(lat.iter().all(|e| e.ddir == 1 && e.bs == 4096), "{kind}");
    }
    // The null engine completes as it submits: no submission latency, as in fio.
    assert_eq!(
        fs::read_to_string(log_path(&out, &case, "l_slat.1.log")).unwrap(),
        ""
    );
    let iops = entries(&log_path(&out, &case, "i_iops.1.log"), true);
    assert!(iops.len() == 100 && iops.iter().all(|e| e.value == 1));
}

#[test]
fn windowed_logs_average_over_log_avg_msec() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    // 500 I/Os at 1000 IOPS: about five 100 ms windows.
    let case = run(
        &out,
        &[
            "--rw",
            "write",
            "--size",
            "2000k",
            "--rate_iops",
            "1000",
            "--log_avg_msec",
            "100",
            "--write_bw_log",
            "p",
            "--write_iops_log",
            "p",
            "--write_lat_log",
            "p",
        ],
    );
    let (bytes, bios) = (
        case["bytes"].as_u64().unwrap(),
        case["bios"].as_u64().unwrap(),
    );
    let bw = entries(&log_path(&out, &case, "p_bw.1.log"), false);
    let iops = entries(&log_path(&out, &case, "p_iops.1.log"), false);
    assert!(!bw.is_empty() && bw.len() == iops.len());
    for e in bw.iter().chain(&iops) {
        assert_eq!(e.ms % 100, 0, "full windows only, at their ends: {e:?}");
        assert_eq!(e.bs, 0, "{e:?}");
    }
    // What the full windows saw: no more than the case moved, and all of it but the last,
    // partial window (at most 100 ms of 1000 IOPS, and each window's rounding).
    let ios: u64 = iops.iter().map(|e| e.value / 10).sum();
    let kib: u64 = bw.iter().map(|e| e.value / 10).sum();
    assert!(ios <= bios && ios + 110 >= bios, "{ios} of {bios}");
    assert!(
        kib * 1024 <= bytes && (kib + 450) * 1024 >= bytes,
        "{kib} KiB of {bytes}"
    );
    let lat = entries(&log_path(&out, &case, "p_lat.1.log"), false);
    assert!(lat.iter().all(|e| e.value > 0));
    assert!(lat.len() >= bw.len(), "the partial window too");
}

/// fio numbers the threads of a job file in one sequence across its stonewalls: a second
/// group's job logs as the job after the first group's.
#[test]
fn a_later_groups_logs_go_on_numbering_the_jobs_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("groups.fio");
    fs::write(
        &job,
        "[global]\nioengine=null\nbs=4k\nsize=40k\nrw=write\nwrite_iops_log\n\
         [a]\nnumjobs=2\n[b]\nstonewall\n",
    )
    .unwrap();
    let out = tmp.path().join("o");
    let o = harness()
        .args([
            "run",
            "--strategy",
            "inline",
            "--drop-caches",
            "false",
            "--job",
        ])
        .arg(&job)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cases = crate::common::cases(&out);
    for (case, name) in [
        (&cases[0], "a_iops.1.log"),
        (&cases[0], "a_iops.2.log"),
        (&cases[1], "b_iops.3.log"),
    ] {
        assert_eq!(
            entries(&log_path(&out, case, name), false).len(),
            10,
            "{name}"
        );
    }
}

#[test]
fn per_job_logs_0_shares_the_file_and_1_numbers_the_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("two.fio");
    for per_job in [0, 1] {
        fs::write(
            &job,
            format!(
                "[global]\nioengine=null\nbs=4k\nsize=200k\nrw=write\nper_job_logs={per_job}\n\
                 [w]\nnumjobs=2\nwrite_iops_log\n"
            ),
        )
        .unwrap();
        let out = tmp.path().join(format!("o{per_job}"));
        let o = harness()
            .args([
                "run",
                "--strategy",
                "inline",
                "--drop-caches",
                "false",
                "--job",
            ])
            .arg(&job)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let case = only_case(&out);
        let lines = |name: &str| entries(&log_path(&out, &case, name), false).len();
        match per_job {
            0 => assert_eq!(lines("w_iops.log"), 100, "both jobs, bare: the job's name"),
            _ => assert_eq!((lines("w_iops.1.log"), lines("w_iops.2.log")), (50, 50)),
        }
    }
}

#[test]
fn a_prefix_that_would_leave_the_results_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for prefix in ["../escaped", "/tmp/escaped", "sub/p", ".."] {
        let out = tmp.path().join("o");
        let o = harness()
            .args([
                "run",
                "--strategy",
                "inline",
                "--ioengine",
                "null",
                "--size",
                "64k",
            ])
            .args(["--write_lat_log", prefix])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(0), "{prefix}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "write_lat_log={prefix}: a log prefix names files in the case's results folder"
            )),
            "{prefix}: {err}"
        );
        assert!(!out.exists(), "{prefix}: no run");
    }
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// fio's own logs of `options` (a null-engine job of 64 writes) in `dir`, or `None` where
/// fio is not installed.
fn fio_logs(dir: &Path, options: &[&str]) -> Option<()> {
    let ran = Command::new("fio")
        .current_dir(dir)
        .args([
            "--name=j",
            "--ioengine=null",
            "--rw=write",
            "--bs=4k",
            "--size=256k",
        ])
        .args(options)
        .arg("--output=/dev/null")
        .output();
    match ran {
        Ok(o) => {
            assert!(
                o.status.success(),
                "fio: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            Some(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running fio: {e}"),
    }
}

#[test]
fn the_lines_are_those_of_fios_own_logs() {
    let tmp = tempfile::tempdir().unwrap();
    for offset in ["0", "1"] {
        let fio_dir = tmp.path().join(format!("fio{offset}"));
        fs::create_dir(&fio_dir).unwrap();
        let logs = [
            "--write_bw_log=p",
            "--write_lat_log=p",
            "--write_iops_log=p",
        ];
        let log_offset = format!("--log_offset={offset}");
        if fio_logs(&fio_dir, &[&logs[..], &[log_offset.as_str()]].concat()).is_none() {
            eprintln!("skipping the comparison with fio: fio is not installed");
            return;
        }
        let out = tmp.path().join(format!("ours{offset}"));
        let case = run(
            &out,
            &[
                "--rw",
                "write",
                "--size",
                "256k",
                "--write_bw_log",
                "p",
                "--write_lat_log",
                "p",
                "--write_iops_log",
                "p",
                "--log_offset",
                offset,
            ],
        );
        let with_offset = offset == "1";
        for name in [
            "p_bw.1.log",
            "p_iops.1.log",
            "p_lat.1.log",
            "p_clat.1.log",
            "p_slat.1.log",
        ] {
            let theirs = entries(&fio_dir.join(name), with_offset);
            let ours = entries(&log_path(&out, &case, name), with_offset);
            assert_eq!(ours.len(), theirs.len(), "{name}: as many entries as fio's");
            for (a, b) in ours.iter().zip(&theirs) {
                assert_eq!((a.ddir, a.bs, a.offset), (b.ddir, b.bs, b.offset), "{name}");
                if name == "p_iops.1.log" {
                    assert_eq!(a.value, b.value, "{name}");
                }
            }
        }
    }
}
