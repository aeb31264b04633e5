//! Never a lost result, never a file nobody named: job paths that would leave their
//! directory, devices in use, runs that cannot fit, runs started together, scratch folders
//! of killed runs, results folders that hold odd or damaged files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common::{case_paths, harness, is_root, stderr, Loop};

const LIMIT: Duration = Duration::from_secs(60);

fn run() -> Command {
    let mut c = harness();
    c.timeout(LIMIT).args(["run", "--drop-caches", "false"]);
    c
}

/// `cmd` exits 1 with `needle` in stderr and leaves no case result in `out`.
fn refused(cmd: &mut Command, out: &Path, needle: &str) -> String {
    let output = cmd.arg("--out").arg(out).output().unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(case_paths(out).is_empty(), "no case result");
    stderr
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_under(&p));
        } else {
            found.push(p);
        }
    }
    found
}

#[test]
fn job_paths_stay_inside_their_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let inside = tmp.path().join("inside");
    fs::create_dir(&inside).unwrap();
    let jobfile = tmp.path().join("escape.fio");
    fs::write(&jobfile, "[../escaped]\nrw=write\nsize=64k\n").unwrap();
    refused(
        run()
            .arg("--job")
            .arg(&jobfile)
            .arg("--directory")
            .arg(&inside),
        &tmp.path().join("r1"),
        "job name '../escaped' cannot name a file: it contains '/'",
    );
    refused(
        run()
            .args(["--rw", "write", "--size", "64k", "--filename", "../out"])
            .arg("--directory")
            .arg(&inside),
        &tmp.path().join("r2"),
        "filename=../out with directory=",
    );
    assert!(files_under(tmp.path())
        .iter()
        .all(|p| p.starts_with(tmp.path().join("r1"))
            || p.starts_with(tmp.path().join("r2"))
            || p == &jobfile));
    // fio puts `filename` inside `directory`, absolute or not.
    run()
        .args(["--rw", "write", "--size", "64k", "--filename", "/data"])
        .arg("--directory")
        .arg(&inside)
        .arg("--out")
        .arg(tmp.path().join("r3"))
        .assert()
        .success();
    assert!(inside.join("data").is_file() && !Path::new("/data.csum").exists());
}

#[test]
fn a_directory_that_is_a_file_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain");
    fs::write(&file, b"x").unwrap();
    refused(
        run()
            .args(["--rw", "write", "--size", "64k"])
            .arg("--directory")
            .arg(&file),
        &tmp.path().join("r"),
        &format!("{} is not a directory", file.display()),
    );
}

#[test]
fn a_run_that_cannot_fit_is_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    // Three jobs whose buffers each fit in half the memory, together not.
    let memory = fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = memory
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let depth = (kib / 1024 / 2 / 3 * 2).max(1); // each: two thirds of half the memory
    let job = format!("[big]\nrw=write\nbs=1m\nsize=1m\niodepth={depth}\nnumjobs=1\n");
    let jobfile = tmp.path().join("big.fio");
    fs::write(
        &jobfile,
        format!(
            "{job}{}{}",
            job.replace("[big]", "[big2]"),
            job.replace("[big]", "[big3]")
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    refused(
        run()
            .arg("--job")
            .arg(&jobfile)
            .arg("--directory")
            .arg(&data),
        &tmp.path().join("r1"),
        "of I/O buffers",
    );
    // Ten thousand sections: refused at once, no file left behind.
    let many: String = (0..10_000)
        .map(|i| format!("[j{i}]\nrw=write\nsize=4k\n"))
        .collect();
    fs::write(&jobfile, many).unwrap();
    let started = Instant::now();
    refused(
        run()
            .arg("--job")
            .arg(&jobfile)
            .arg("--directory")
            .arg(&data),
        &tmp.path().join("r2"),
        "job threads; at most 4096 run at once",
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(files_under(&data).is_empty(), "{:?}", files_under(&data));
    assert!(!tmp.path().join("r1").exists() && !tmp.path().join("r2").exists());
}

#[test]
fn runs_started_together_keep_their_own_results() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("harness");
    let args = [
        "run",
        "--ioengine",
        "null",
        "--rw",
        "write",
        "--size",
        "1m",
        "--drop-caches",
        "false",
    ];
    let children: Vec<_> = (0..4)
        .map(|_| {
            Proc::new(&bin)
                .args(args)
                .current_dir(tmp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut folders = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let folder = stdout
            .lines()
            .find_map(|l| l.strip_prefix("results: "))
            .unwrap()
            .to_string();
        folders.push(folder);
    }
    let mut unique = folders.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{folders:?}");
    for f in &folders {
        assert_eq!(case_paths(&tmp.path().join(f)).len(), 1, "{f}");
    }
}

#[test]
fn a_killed_runs_scratch_folder_is_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    fs::create_dir(&tmpdir).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("harness");
    let mut child = Proc::new(&bin)
        .args([
            "run",
            "--rw",
            "write",
            "--size",
            "16m",
            "--time_based",
            "1",
            "--runtime",
            "60",
        ])
        .args(["--drop-caches", "false", "--out"])
        .arg(tmp.path().join("r1"))
        .env("TMPDIR", &tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let scratch = || -> Vec<PathBuf> {
        fs::read_dir(&tmpdir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    let deadline = Instant::now() + LIMIT;
    while scratch().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = scratch();
    assert_eq!(left.len(), 1, "{left:?}");
    let out = run()
        .args(["--rw", "write", "--size", "64k", "--out"])
        .arg(tmp.path().join("r2"))
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("removed {}", left[0].display())),
        "{}",
        stderr(&out)
    );
    assert!(scratch().is_empty(), "{:?}", scratch());
}

#[test]
fn report_names_what_it_cannot_read_and_shows_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    harness()
        .args([
            "compare",
            "--strategy",
            "inline",
            "--strategy",
            "kthread",
            "--ioengine",
            "null",
        ])
        .args(["--size", "1m", "--repeat", "1", "--warmup", "0", "--out"])
        .arg(&out)
        .assert()
        .success();
    let cases = case_paths(&out);
    assert_eq!(cases.len(), 2);
    // One case file cut short, the other replaced by a FIFO.
    let text = fs::read(&cases[0]).unwrap();
    fs::write(&cases[0], &text[..text.len() / 2]).unwrap();
    fs::remove_file(&cases[1]).unwrap();
    let c = std::ffi::CString::new(cases[1].to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let output = harness()
        .timeout(Duration::from_secs(20))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "case file {} is not a case result",
            cases[0].display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("cannot read case file {}", cases[1].display()))
            && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn a_mounted_block_device_is_never_written() {
    if !is_root() {
        eprintln!("skipping: needs root for loop devices and mount");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("disk.img");
    fs::File::create(&backing)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let Some(lo) = Loop::new(&backing) else {
        return;
    };
    let mkfs = Proc::new("mkfs.ext4").args(["-q", "-F", &lo.dev]).status();
    if !mkfs.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfs.ext4 is not available");
        return;
    }
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    assert!(Proc::new("mount")
        .arg(&lo.dev)
        .arg(&mnt)
        .status()
        .unwrap()
        .success());
    let written = run()
        .args([
            "--rw",
            "write",
            "--size",
            "1m",
            "--allow-device-write",
            "--filename",
            &lo.dev,
        ])
        .arg("--out")
        .arg(tmp.path().join("r"))
        .output()
        .unwrap();
    let _ = Proc::new("umount").arg(&mnt).status();
    let err = stderr(&written);
    assert_eq!(written.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "refusing to write to block device {}: it is in use ({} is mounted at {})",
            lo.dev,
            lo.name(),
            mnt.display()
        )),
        "{err}"
    );
    // The filesystem is intact.
    let fsck = Proc::new("fsck.ext4")
        .args(["-n", "-f", &lo.dev])
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    // Held open exclusively by another program (here, this test): refused by the kernel,
    // and said so.
    use std::os::unix::fs::OpenOptionsExt;
    let _held = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(&lo.dev)
        .unwrap();
    let err = stderr(
        &run()
            .args(["--rw", "write", "--size", "1m", "--allow-device-write"])
            .args(["--filename", &lo.dev, "--out"])
            .arg(tmp.path().join("held"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("open it exclusively"), "{err}");
}

/// `harness run` of 1 MiB at 64 KiB on `data`.
fn on(data: &Path, rw: &str) -> Command {
    let mut c = run();
    c.args(["--rw", rw, "--bs", "64k", "--size", "1m", "--filename"])
        .arg(data);
    c
}

fn store_of(data: &Path) -> PathBuf {
    PathBuf::from(format!("{}.csum", data.display()))
}

#[test]
fn a_users_own_csum_file_or_a_symlink_there_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::write(store_of(&data), b"my own notes").unwrap();
    refused(&mut on(&data, "write"), &tmp.path().join("r1"), "data.csum");
    assert_eq!(fs::read(store_of(&data)).unwrap(), b"my own notes");
    assert!(!data.exists(), "refused before its data file was made");
    // A symlink where the store goes is refused even with --overwrite.
    let data2 = tmp.path().join("data2");
    let target = tmp.path().join("elsewhere");
    fs::write(&target, b"precious").unwrap();
    std::os::unix::fs::symlink(&target, store_of(&data2)).unwrap();
    let err = refused(
        on(&data2, "write").arg("--overwrite"),
        &tmp.path().join("r2"),
        "symbolic link",
    );
    assert!(err.contains("data2.csum"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"precious");
}

#[test]
fn a_damaged_store_is_named_never_trusted_and_never_a_reason_to_rewrite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    on(&data, "write")
        .arg("--out")
        .arg(tmp.path().join("w"))
        .assert()
        .success();
    let good = fs::read(store_of(&data)).unwrap();
    let written = fs::read(&data).unwrap();
    // csum_len (bytes 16..20) that cannot be: huge, zero; and one flipped header byte.
    for (at, bytes, field) in [
        (16, 0xffff_ffffu32.to_le_bytes(), "header"),
        (16, 0u32.to_le_bytes(), "header"),
        (40, *b"XXXX", "header"),
    ] {
        let mut bad = good.clone();
        bad[at..at + 4].copy_from_slice(&bytes);
        fs::write(store_of(&data), &bad).unwrap();
        let out = tmp.path().join(format!("r{at}-{}", bytes[0]));
        let o = on(&data, "read").arg("--out").arg(&out).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("checksum store") && err.contains(field),
            "{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("laying out"),
            "{err}"
        );
        assert_eq!(fs::read(&data).unwrap(), written, "the data was rewritten");
    }
}

#[test]
fn a_read_needs_only_read_access_to_the_store_and_a_relayout_is_recorded() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    on(&data, "write")
        .arg("--out")
        .arg(tmp.path().join("w"))
        .assert()
        .success();
    fs::set_permissions(store_of(&data), fs::Permissions::from_mode(0o444)).unwrap();
    on(&data, "read")
        .arg("--out")
        .arg(tmp.path().join("r"))
        .assert()
        .success();
    // A read with another checksum than the store's verifies nothing and rewrites nothing:
    // it names both and the option that opts in.
    let written = fs::read(&data).unwrap();
    for (csum, needle) in [("sha256", "not sha256"), ("none", "not none")] {
        let out = tmp.path().join(format!("r-{csum}"));
        let err = refused(on(&data, "read").args(["--csum", csum]), &out, "--relayout");
        assert!(err.contains("crc32c") && err.contains(needle), "{err}");
    }
    assert_eq!(fs::read(&data).unwrap(), written, "the data is as it was");
    // A write that fails midway leaves its store not cleanly closed: the read refuses, names
    // --relayout, and with it lays the file out and says so in the case's JSON.
    fs::set_permissions(store_of(&data), fs::Permissions::from_mode(0o644)).unwrap();
    let failed = on(&data, "write")
        .args(["--inject", "eio@3", "--out"])
        .arg(tmp.path().join("failed"))
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let err = refused(&mut on(&data, "read"), &tmp.path().join("r1"), "--relayout");
    assert!(err.contains("not cleanly closed"), "{err}");
    let out = tmp.path().join("r2");
    on(&data, "read")
        .arg("--relayout")
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let case = &crate::common::only_case(&out);
    let prep = &case["preparation"][0];
    assert_eq!(prep["file"], data.display().to_string(), "{case}");
    assert!(
        prep["action"].as_str().unwrap().starts_with("laid out: "),
        "{prep}"
    );
}
