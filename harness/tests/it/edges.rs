//! Bad input, through the binary: every edge is a clear error that names the problem, exit
//! code 1, and nothing written — no data file, no checksum store, no case result. Never a
//! panic, never a hang, never a run that quietly does something else.

// Each test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::{case_paths, cases, harness, is_root, manifest, stderr, Loop};

/// Longer than any of these should take; a hang fails the test instead of stalling it.
const LIMIT: Duration = Duration::from_secs(60);

/// `harness run` with the page cache left alone (root would drop it before every read).
fn run() -> Command {
    let mut c = harness();
    c.timeout(LIMIT).args(["run", "--drop-caches", "false"]);
    c
}

/// `cmd` fails with exit code 1 and `needle` in its one error line, writes no case result
/// into `out` and creates none of `absent` (nor their checksum stores). Returns stderr.
fn refused(cmd: &mut Command, out: &Path, absent: &[&Path], needle: &str) -> String {
    let output = cmd.arg("--out").arg(out).output().unwrap();
    let stderr = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit code; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("error: ") && stderr.contains(needle),
        "expected '{needle}' in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(case_paths(out), Vec::<PathBuf>::new(), "no case result");
    if out.join("manifest.json").exists() {
        let m = manifest(out);
        assert_eq!(m["status"], "failed", "{m}");
        assert!(m["error"].as_str().unwrap().contains(needle), "{m}");
    }
    for p in absent {
        assert!(!p.exists(), "{} was created", p.display());
        let store = PathBuf::from(format!("{}.csum", p.display()));
        assert!(!store.exists(), "{} was created", store.display());
    }
    stderr
}

/// Bytes available on the filesystem holding `dir`, as the harness counts them.
fn available(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a zeroed statvfs is a valid place for statvfs to write; c is NUL-terminated.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut vfs) }, 0);
    vfs.f_bavail * vfs.f_frsize
}

#[test]
fn sizes_and_counts_that_make_no_sense_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--bs", "64k", "--size", "32k"],
            "job 'job': size=32KiB is smaller than bs=64KiB",
        ),
        (&["--size", "0"], "job 'job': size=0: nothing to do"),
        (
            &["--bs", "4k", "--size", "4097"],
            "job 'job': size=4097B: must be a multiple of the 4KiB checksum sector",
        ),
        (
            &["--bs", "4k", "--size", "6k"],
            "job 'job': size=6KiB: must be a multiple of the 4KiB checksum sector",
        ),
        (
            &["--numjobs", "0"],
            "--numjobs: numjobs=0: must be at least 1",
        ),
        (
            &["--iodepth", "0"],
            "--iodepth: iodepth=0: must be at least 1",
        ),
        (
            &["--iodepth", "-1"],
            "--iodepth: iodepth=-1: cannot be negative; must be at least 1",
        ),
        (
            &["--size", "-1m"],
            "--size: size=-1m: '-1m': a size cannot be negative",
        ),
        (
            &["--size", "99999999999999999999"],
            "--size: size=99999999999999999999: '99999999999999999999' is too large",
        ),
        (
            &["--size", "16777216t"],
            "--size: size=16777216t: '16777216t' is too large",
        ),
        (
            &["--iodepth", "99999999999"],
            "--iodepth: iodepth=99999999999: at most 65536",
        ),
        (
            &["--iodepth", "1000000"],
            "--iodepth: iodepth=1000000: at most 65536",
        ),
        (
            &["--numjobs", "4294967296"],
            "--numjobs: numjobs=4294967296: at most 4096",
        ),
        (
            &["--numjobs", "5000"],
            "--numjobs: numjobs=5000: at most 4096",
        ),
        (
            &["--numjobs", "4096", "--iodepth", "65536", "--bs", "1m"],
            "job 'job': numjobs=4096 x iodepth=65536 x 1MiB buffers = 256TiB of I/O \
             buffers, more than half of this machine's",
        ),
        (
            &["--runtime", "0"],
            "--runtime: runtime=0: must be more than zero (leave runtime out to run until \
             size is done)",
        ),
        (
            &["--runtime", "-5"],
            "--runtime: runtime=-5: '-5': a duration cannot be negative",
        ),
        (&["--fsync", "-1"], "--fsync: fsync=-1: cannot be negative"),
    ];
    for (i, (args, needle)) in cases.iter().enumerate() {
        for rw in ["write", "read"] {
            let data = tmp.path().join(format!("data-{i}-{rw}"));
            let out = tmp.path().join(format!("out-{i}-{rw}"));
            refused(
                run()
                    .args(["--rw", rw])
                    .args(*args)
                    .arg("--filename")
                    .arg(&data),
                &out,
                &[&data],
                needle,
            );
            assert!(!out.exists(), "refused before the results folder is made");
        }
    }
}

#[test]
fn offsets_are_checked_and_an_offset_job_writes_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let job = |name: &str, body: &str| {
        let f = tmp.path().join(name);
        fs::write(
            &f,
            format!(
                "[j]\nbs=64k\nsize=1m\n{body}\nfilename={}\n",
                data.display()
            ),
        )
        .unwrap();
        f
    };
    for (i, (offset, needle)) in [
        (
            "offset=8192p",
            "job 'j': offset=8192PiB + size=1MiB is beyond any file (files end before 8EiB)",
        ),
        (
            // offset + size overflows 64 bits.
            "offset=16383p\nsize=1p",
            "job 'j': offset=16383PiB + size=1PiB is beyond any file",
        ),
        (
            "offset=6k",
            "job 'j': offset=6KiB: must be a multiple of the 4KiB",
        ),
        (
            "offset=-4k",
            "line 5: offset=-4k: '-4k': a size cannot be negative",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let f = job(&format!("bad{i}.fio"), &format!("rw=write\n{offset}"));
        let out = tmp.path().join(format!("bad{i}"));
        refused(run().arg("--job").arg(&f), &out, &[&data], needle);
    }

    // A job at an offset writes there, and a read at the same offset verifies it.
    let w = job("w.fio", "rw=write\noffset=1m");
    run()
        .arg("--job")
        .arg(&w)
        .arg("--out")
        .arg(tmp.path().join("w"))
        .assert()
        .success();
    let c = &cases(&tmp.path().join("w"))[0];
    assert_eq!(
        (c["status"].as_str(), c["bytes"].as_u64()),
        (Some("ok"), Some(1 << 20))
    );
    assert_eq!(fs::metadata(&data).unwrap().len(), 2 << 20, "offset + size");
    let r = job("r.fio", "rw=randread\noffset=1m");
    run()
        .arg("--job")
        .arg(&r)
        .arg("--out")
        .arg(tmp.path().join("r"))
        .assert()
        .success();
    let c = &cases(&tmp.path().join("r"))[0];
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(
        (c["bytes"].as_u64(), c["mismatch_count"].as_u64()),
        (Some(1 << 20), Some(0))
    );
}

#[test]
fn a_size_that_is_not_whole_blocks_runs_whole_blocks_and_counts_only_those() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    for rw in ["write", "randread"] {
        let out = tmp.path().join(rw);
        run()
            .args(["--rw", rw, "--bs", "64k", "--size", "100k", "--filename"])
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let c = &cases(&out)[0];
        assert_eq!(c["status"], "ok", "{c}");
        // As fio: one whole 64 KiB block of the 100 KiB; the job records what was asked.
        assert_eq!(
            (c["bytes"].as_u64(), c["bios"].as_u64()),
            (Some(64 << 10), Some(1))
        );
        assert_eq!(c["job"]["size"], 100 << 10);
    }
    assert_eq!(fs::metadata(&data).unwrap().len(), 64 << 10);
}

#[test]
fn more_than_the_free_space_is_refused_before_any_io() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    for rw in ["write", "read", "randrw"] {
        let data = tmp.path().join(format!("huge-{rw}"));
        let stderr = refused(
            run()
                .args(["--rw", rw, "--bs", "1m", "--size", "100t", "--filename"])
                .arg(&data),
            &tmp.path().join(format!("o-{rw}")),
            &[&data],
            &format!(
                "not enough free space for {}: the job needs 100TiB more, but the \
                 filesystem holding {dir} has ",
                data.display()
            ),
        );
        assert!(stderr.trim_end().ends_with(" free"), "{stderr}");
        // A read would lay the file out first: refused before that starts.
        assert!(!stderr.contains("laying out"), "{stderr}");
    }

    // Clones each fit; together they do not, and none of their files is made.
    let free = available(tmp.path());
    let each = (free / 3).next_multiple_of(1 << 20);
    let files: Vec<PathBuf> = (0..4)
        .map(|i| tmp.path().join(format!("job.{i}.0")))
        .collect();
    let absent: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    refused(
        run()
            .args(["--rw", "write", "--bs", "1m", "--numjobs", "4", "--size"])
            .arg(each.to_string())
            .arg("--directory")
            .arg(tmp.path()),
        &tmp.path().join("o-clones"),
        &absent,
        &format!(
            "not enough free space for {}: the job needs ",
            files[0].display()
        ),
    );
}

#[test]
fn missing_directories_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/dir");
    for rw in ["write", "read"] {
        refused(
            run()
                .args(["--rw", rw, "--size", "1m", "--directory"])
                .arg(&missing),
            &tmp.path().join(format!("d-{rw}")),
            &[&missing],
            &format!("directory {} does not exist", missing.display()),
        );
        let file = missing.join("f");
        let stderr = refused(
            run()
                .args(["--rw", rw, "--size", "1m", "--filename"])
                .arg(&file),
            &tmp.path().join(format!("f-{rw}")),
            &[&file],
            &format!("directory {} does not exist", missing.display()),
        );
        if rw == "read" {
            assert!(stderr.contains("cannot lay out"), "{stderr}");
        }
    }
    assert!(!tmp.path().join("no").exists());
}

#[test]
fn a_foreign_file_is_neither_laid_out_nor_overwritten_by_a_read() {
    let tmp = tempfile::tempdir().unwrap();
    let precious = tmp.path().join("precious");
    let bytes: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + 3) as u8).collect();
    fs::write(&precious, &bytes).unwrap();
    let store = tmp.path().join("precious.csum");
    for rw in ["read", "randread", "randrw", "write"] {
        let stderr = refused(
            run()
                .args(["--rw", rw, "--bs", "64k", "--size", "1m", "--filename"])
                .arg(&precious),
            &tmp.path().join(format!("o-{rw}")),
            &[&store],
            &format!(
                "refusing to write {p}: csumbench did not write it (there is no checksum store \
                 of csumbench's beside it); pass --overwrite to use it anyway",
                p = precious.display()
            ),
        );
        if rw.ends_with("read") {
            assert!(
                stderr.contains(&format!(
                    "cannot lay out {} for the read, which needs data it can verify: refusing",
                    precious.display()
                )),
                "{stderr}"
            );
        }
        assert!(!stderr.contains("laying out"), "{stderr}");
        assert_eq!(fs::read(&precious).unwrap(), bytes, "{rw}: untouched");
    }
    // Told to, a read lays it out (writes it) and then verifies it.
    run()
        .args(["--rw", "read", "--bs", "64k", "--size", "1m", "--overwrite"])
        .arg("--filename")
        .arg(&precious)
        .arg("--out")
        .arg(tmp.path().join("told"))
        .assert()
        .success()
        .stderr(predicate::str::contains("laying out"));
    assert_ne!(fs::read(&precious).unwrap(), bytes);
}

#[test]
fn a_directory_or_a_fifo_is_not_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("adir");
    fs::create_dir(&dir).unwrap();
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for rw in ["write", "read"] {
        for extra in [&[][..], &["--overwrite", "--allow-device-write"][..]] {
            let tag = format!("{rw}{}", extra.len());
            refused(
                run()
                    .args(["--rw", rw, "--size", "1m"])
                    .args(extra)
                    .arg("--filename")
                    .arg(&dir),
                &tmp.path().join(format!("d-{tag}")),
                &[],
                &format!(
                    "{} is a directory: filename names the file or block device to use \
                     (directory names a folder for the job's files)",
                    dir.display()
                ),
            );
            // Opening a FIFO would wait for a writer forever: refused before it is opened.
            refused(
                run()
                    .args(["--rw", rw, "--size", "1m"])
                    .args(extra)
                    .arg("--filename")
                    .arg(&fifo),
                &tmp.path().join(format!("f-{tag}")),
                &[],
                &format!(
                    "{} is a FIFO (named pipe), not a regular file or a block device",
                    fifo.display()
                ),
            );
        }
    }
    assert!(fs::read_dir(&dir).unwrap().next().is_none());
    assert!(!tmp.path().join("fifo.csum").exists());
}

#[test]
fn a_results_folder_that_cannot_be_used_stops_the_run_before_any_io() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let out = Path::new("/proc/csumbench-cannot-be-here");
    refused(
        run()
            .args(["--rw", "write", "--size", "1m", "--filename"])
            .arg(&data),
        out,
        &[&data],
        &format!("cannot create results folder {}", out.display()),
    );
    let used = tmp.path().join("used");
    fs::create_dir(&used).unwrap();
    fs::write(used.join("keep"), b"x").unwrap();
    refused(
        run()
            .args(["--rw", "write", "--size", "1m", "--filename"])
            .arg(&data),
        &used,
        &[&data],
        &format!(
            "results folder {} already holds files; pick another --out",
            used.display()
        ),
    );
    assert_eq!(fs::read_dir(&used).unwrap().count(), 1);
}

/// A read-only tmpfs, unmounted on drop. None where it cannot be mounted (not root).
struct ReadOnlyMount {
    dir: PathBuf,
}

impl ReadOnlyMount {
    fn new(dir: &Path) -> Option<ReadOnlyMount> {
        fs::create_dir_all(dir).unwrap();
        if !is_root() {
            eprintln!("skipping: mounting a read-only tmpfs needs root");
            return None;
        }
        let out = Proc::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=8m", "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipping: cannot mount a read-only tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(ReadOnlyMount {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Proc::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_read_only_filesystem_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ro) = ReadOnlyMount::new(&tmp.path().join("ro")) else {
        return;
    };
    let data = ro.dir.join("data");
    for rw in ["write", "read", "randrw"] {
        refused(
            run()
                .args(["--rw", rw, "--size", "1m", "--filename"])
                .arg(&data),
            &tmp.path().join(format!("o-{rw}")),
            &[&data],
            &format!(
                "{}: cannot write: Read-only file system (os error 30)",
                data.display()
            ),
        );
    }
    // The same through --directory, and the message says it once.
    let stderr = refused(
        run()
            .args(["--rw", "write", "--size", "1m", "--directory"])
            .arg(&ro.dir),
        &tmp.path().join("o-dir"),
        &[&ro.dir.join("job.0.0")],
        "job.0.0: cannot write: Read-only file system (os error 30)",
    );
    assert_eq!(
        stderr.matches("Read-only file system").count(),
        1,
        "{stderr}"
    );
    refused(
        run()
            .args(["--rw", "write", "--size", "1m", "--filename"])
            .arg(tmp.path().join("elsewhere")),
        &ro.dir.join("out"),
        &[&tmp.path().join("elsewhere")],
        "Read-only file system",
    );
    assert!(fs::read_dir(&ro.dir).unwrap().next().is_none());
}

#[test]
fn a_block_device_is_never_written_unless_allowed_nor_past_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("disk.img");
    fs::write(&backing, vec![0u8; 32 << 20]).unwrap();
    let Some(lo) = Loop::new(&backing) else {
        return;
    };
    let dev = lo.dev.as_str();
    let untouched = || {
        assert!(
            fs::read(&backing).unwrap().iter().all(|&b| b == 0),
            "the device was written"
        );
    };
    // A read of a device with no checksum store would lay it out, i.e. write all of it.
    for rw in ["read", "randread", "write"] {
        let stderr = refused(
            run().args([
                "--rw",
                rw,
                "--bs",
                "64k",
                "--size",
                "16m",
                "--filename",
                dev,
            ]),
            &tmp.path().join(format!("o-{rw}")),
            &[],
            &format!(
                "refusing to write to block device {dev}: csumbench has no checksum store for \
                 it; pass --allow-device-write if that is what you want (it destroys its \
                 contents)"
            ),
        );
        if rw.ends_with("read") {
            assert!(
                stderr.contains(&format!("cannot lay out {dev} for the read")),
                "{stderr}"
            );
        }
        untouched();
    }
    // More than the device holds, even when writing is allowed.
    for rw in ["write", "read"] {
        refused(
            run()
                .args([
                    "--rw",
                    rw,
                    "--bs",
                    "64k",
                    "--size",
                    "64m",
                    "--filename",
                    dev,
                ])
                .arg("--allow-device-write"),
            &tmp.path().join(format!("big-{rw}")),
            &[],
            &format!("{dev}: the job needs 64MiB but the device holds 32MiB"),
        );
        untouched();
    }
}
