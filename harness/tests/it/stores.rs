//! Checksum stores through the binary: a store is used only for the data it was written
//! for (not another device that took the name, not a file moved over the old one), and a
//! job at an offset is judged by the sectors it touches.

// Each test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use workloads::CsumStore;

use crate::common::{case_paths, harness, only_case, stderr, Loop};

/// Runs `cmd` with `--out out`; asserts its exit code; returns stderr.
fn exits(cmd: &mut Command, out: &Path, code: i32) -> String {
    let o = cmd.arg("--out").arg(out).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "stderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_loop_device_attached_to_another_file_is_not_verified_against_the_old_sums() {
    let tmp = tempfile::tempdir().unwrap();
    // Device stores in this test's state dir, removed with it.
    let state = tmp.path().join("state");
    let stores = state.join("csumbench");
    let (a, b) = (tmp.path().join("a.img"), tmp.path().join("b.img"));
    fs::write(&a, vec![0u8; 32 << 20]).unwrap();
    // Other contents: verified against a's checksums, every sector would mismatch.
    let b_bytes: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    fs::write(&b, &b_bytes).unwrap();
    let Some(first) = Loop::attach(&a, None) else {
        eprintln!("skipping: no loop devices here (needs root)");
        return;
    };
    let dev = first.dev.clone();
    let run = |rw: &str, dev: &str, allow: bool| {
        let mut c = harness();
        c.env("XDG_STATE_HOME", &state)
            .args(["run", "--drop-caches", "false", "--strategy", "kthread"])
            .args(["--rw", rw, "--bs", "64k", "--size", "16m", "--direct", "1"])
            .args(["--filename", dev]);
        if allow {
            c.arg("--allow-device-write");
        }
        c
    };
    exits(&mut run("write", &dev, true), &tmp.path().join("w"), 0);
    let store = stores.join(format!("{}.csum", first.name()));
    assert!(
        CsumStore::exists(&store).unwrap(),
        "{} missing",
        store.display()
    );
    let err = exits(&mut run("read", &dev, false), &tmp.path().join("r0"), 0);
    assert!(!err.contains("laying out"), "{err}");

    // Detach; attach the other file, under the same name if it is still free (else under
    // another, to which the store is moved: a different disk enumerated under the name).
    drop(first);
    let Some(second) = Loop::attach(&b, Some(&dev)).or_else(|| Loop::attach(&b, None)) else {
        eprintln!("skipping: cannot attach a second loop device");
        return;
    };
    let dev = second.dev.clone();
    let moved = stores.join(format!("{}.csum", second.name()));
    if moved != store {
        fs::rename(&store, &moved).unwrap();
    }

    // Without --allow-device-write: refused, naming both devices; nothing verified,
    // nothing written.
    let err = exits(&mut run("read", &dev, false), &tmp.path().join("r1"), 1);
    let want = format!(
        "cannot lay out {dev} for the read, which needs data it can verify: refusing to write \
         to block device {dev}: the checksum store was written for a different device \
         (was: loop backing_file={} ",
        a.display()
    );
    assert!(err.contains(&want), "expected '{want}' in:\n{err}");
    assert!(
        err.contains(&format!(", now: loop backing_file={} ", b.display())),
        "{err}"
    );
    assert!(err.contains("--allow-device-write"), "{err}");
    assert!(!err.contains("mismatch"), "{err}");
    assert_eq!(
        case_paths(&tmp.path().join("r1")).len(),
        0,
        "no case result"
    );
    assert!(fs::read(&b).unwrap() == b_bytes, "b.img was written");

    // With it: laid out (saying why), then verified.
    let err = exits(&mut run("read", &dev, true), &tmp.path().join("r2"), 0);
    assert!(
        err.contains(&format!(
            "laying out {dev} (16MiB): the checksum store was written for a different device"
        )),
        "{err}"
    );
    let c = only_case(&tmp.path().join("r2"));
    assert_eq!(
        (c["status"].as_str(), c["mismatch_count"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert_eq!(c["bytes"], 16 << 20);
    // The store is now this device's: the next read verifies at once.
    let err = exits(&mut run("randread", &dev, false), &tmp.path().join("r3"), 0);
    assert!(!err.contains("laying out"), "{err}");
    assert_eq!(only_case(&tmp.path().join("r3"))["status"], "ok");
    drop(second);
    // Stores went to the test's state dir, not to the machine's.
    assert!(moved.exists());
}

#[test]
fn a_file_moved_over_the_data_is_not_ours_and_is_written_only_with_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |rw: &str| {
        let mut c = harness();
        c.args(["run", "--drop-caches", "false", "--rw", rw])
            .args(["--bs", "64k", "--size", "2m", "--filename"])
            .arg(&data);
        c
    };
    exits(&mut run("write"), &tmp.path().join("w"), 0);
    let was = fs::read(CsumStore::beside(&data)).unwrap();
    let other = tmp.path().join("other");
    fs::write(&other, vec![0x5au8; 2 << 20]).unwrap();
    fs::rename(&other, &data).unwrap();
    // Neither a read (which would lay it out) nor a write touches the moved-in file.
    for rw in ["read", "write"] {
        let err = exits(&mut run(rw), &tmp.path().join(format!("refused-{rw}")), 1);
        assert!(
            err.contains(&format!(
                "refusing to write {}: csumbench did not write it (the checksum store was \
                 written for a different file (was: inode=",
                data.display()
            )) && err.contains("pass --overwrite"),
            "{err}"
        );
        assert_eq!(fs::read(&data).unwrap(), vec![0x5au8; 2 << 20]);
    }
    let err = exits(run("read").arg("--overwrite"), &tmp.path().join("r"), 0);
    assert!(
        err.contains(&format!(
            "laying out {} (2MiB): the checksum store was written for a different file \
             (was: inode=",
            data.display()
        )),
        "{err}"
    );
    assert!(err.contains(", now: inode="), "{err}");
    let c = only_case(&tmp.path().join("r"));
    assert_eq!(
        (c["status"].as_str(), c["mismatch_count"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert_ne!(fs::read(CsumStore::beside(&data)).unwrap(), was);
}

#[test]
fn a_store_from_an_older_csumbench_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |rw: &str| {
        let mut c = harness();
        c.args(["run", "--drop-caches", "false", "--rw", rw])
            .args(["--bs", "64k", "--size", "1m", "--filename"])
            .arg(&data);
        c
    };
    exits(&mut run("write"), &tmp.path().join("w"), 0);
    // Mark the store as format 2 wrote it (format 2's header has no checksum to break).
    let store = CsumStore::beside(&data);
    let mut raw = fs::read(&store).unwrap();
    raw[8..12].copy_from_slice(&2u32.to_le_bytes());
    fs::write(&store, &raw).unwrap();
    // It cannot vouch for the file: csumbench's only with --overwrite.
    let err = exits(&mut run("read"), &tmp.path().join("refused"), 1);
    assert!(
        err.contains("refusing to write") && err.contains("--overwrite"),
        "{err}"
    );
    let err = exits(run("read").arg("--overwrite"), &tmp.path().join("r"), 0);
    assert!(
        err.contains(&format!(
            "laying out {} (1MiB): nothing tells whose data it is: checksum store {}: \
             written by an older csumbench \
             (store format 2), which did not protect it with checksums of its own; not trusted",
            data.display(),
            store.display()
        )),
        "{err}"
    );
    assert_eq!(only_case(&tmp.path().join("r"))["status"], "ok");
}

#[test]
fn a_read_at_an_offset_verifies_what_the_write_at_that_offset_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let job = |rw: &str| {
        let f = tmp.path().join(format!("{rw}.fio"));
        fs::write(
            &f,
            format!(
                "[{rw}]\nrw={rw}\nbs=64k\nsize=1m\noffset=1m\nfilename={}\n",
                data.display()
            ),
        )
        .unwrap();
        let mut c = harness();
        c.args([
            "run",
            "--drop-caches",
            "false",
            "--strategy",
            "kthread",
            "--job",
        ])
        .arg(f);
        c
    };
    exits(&mut job("write"), &tmp.path().join("w"), 0);
    let before = fs::read(&data).unwrap();
    assert_eq!(before.len(), 2 << 20);
    assert!(
        before[..1 << 20].iter().all(|&b| b == 0),
        "nothing before the offset"
    );

    let err = exits(&mut job("read"), &tmp.path().join("r1"), 0);
    assert!(!err.contains("laying out"), "{err}");
    let c = only_case(&tmp.path().join("r1"));
    assert_eq!(
        (c["status"].as_str(), c["mismatch_count"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert_eq!(c["bytes"], 1 << 20);
    assert_eq!(fs::read(&data).unwrap(), before, "the read wrote nothing");

    // One flipped byte in sector 300 (inside the job's range: sectors 256..512).
    let victim = 300 * 4096 + 77;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, victim).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], victim).unwrap();
    drop(f);
    let err = exits(&mut job("read"), &tmp.path().join("r2"), 3);
    assert!(!err.contains("laying out"), "{err}");
    assert!(
        err.contains(&format!("checksum mismatch at offset {}", 300 * 4096)),
        "{err}"
    );
    let c = only_case(&tmp.path().join("r2"));
    assert_eq!(c["status"], "verify_failed");
    assert_eq!(c["mismatch_count"], 1);
    assert_eq!(c["mismatches"][0]["offset"], 300 * 4096);

    // A read from the start needs sectors no job wrote: refused, and laid out (saying
    // where) only when told to.
    let from_start = || {
        let mut c = harness();
        c.args([
            "run",
            "--drop-caches",
            "false",
            "--rw",
            "read",
            "--bs",
            "64k",
        ])
        .args(["--size", "2m", "--filename"])
        .arg(&data);
        c
    };
    let err = exits(&mut from_start(), &tmp.path().join("r3-refused"), 1);
    assert!(
        err.contains("the checksum store does not cover the job") && err.contains("--relayout"),
        "{err}"
    );
    let err = exits(from_start().arg("--relayout"), &tmp.path().join("r3"), 0);
    assert!(
        err.contains(&format!(
            "laying out {} (2MiB): the checksum store does not cover the job",
            data.display()
        )),
        "{err}"
    );
}

#[test]
fn a_layout_at_an_offset_writes_only_the_jobs_range_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let f = tmp.path().join("r.fio");
    fs::write(
        &f,
        format!(
            "[r]\nrw=randread\nbs=16k\nsize=512k\noffset=256k\nfilename={}\n",
            data.display()
        ),
    )
    .unwrap();
    let read = || {
        let mut c = harness();
        c.args(["run", "--drop-caches", "false", "--job"]).arg(&f);
        c
    };
    let err = exits(&mut read(), &tmp.path().join("r1"), 0);
    assert!(
        err.contains(&format!(
            "laying out {} (512KiB at offset 256KiB): a new file: no data and no checksum store",
            data.display()
        )),
        "{err}"
    );
    let err = exits(&mut read(), &tmp.path().join("r2"), 0);
    assert!(!err.contains("laying out"), "{err}");
    assert_eq!(only_case(&tmp.path().join("r2"))["status"], "ok");
}

#[test]
fn a_second_csumbench_on_the_same_file_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = CsumStore::beside(&data);
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let job_on = |path: &Path, rw: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_harness"));
        c.args(["run", "--drop-caches", "false", "--rw", rw, "--bs", "4k"])
            .args(["--size", "1m", "--filename"])
            .arg(path);
        c
    };
    let job = |rw: &str| job_on(&data, rw);
    // The first writes for a long while: until it is killed, which to its store is a crash.
    let mut first = job("randwrite")
        .args(["--time_based", "1", "--runtime", "120", "--out"])
        .arg(tmp.path().join("first"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    let deadline = Instant::now() + crate::common::TIMEOUT;
    let held = format!(" WRITE {pid} ");
    while !fs::read_to_string("/proc/locks").unwrap().contains(&held) {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        assert!(
            Instant::now() < deadline,
            "the first run never locked its store"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = format!(
        "checksum store {} is in use by process {pid}: another csumbench is running on the \
         same data",
        store.display()
    );
    // Through a symbolic link too: one file, one store, one lock.
    for (n, (path, rw)) in [(&data, "read"), (&data, "write"), (&link, "write")]
        .into_iter()
        .enumerate()
    {
        let mut second = Command::from_std(job_on(path, rw));
        second.timeout(crate::common::TIMEOUT);
        let err = exits(&mut second, &tmp.path().join(format!("{rw}-{n}")), 1);
        assert!(err.contains(&busy), "{}: {err}", path.display());
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // Killed mid-write, its store is not trusted: a read says so, and lays the file out
    // again only when told to.
    let mut read = Command::from_std(job("read"));
    read.timeout(crate::common::TIMEOUT);
    let err = exits(&mut read, &tmp.path().join("after"), 1);
    assert!(
        err.contains("not cleanly closed (the run that wrote it did not finish")
            && err.contains("--relayout"),
        "{err}"
    );
    let mut read = Command::from_std(job("read"));
    read.arg("--relayout").timeout(crate::common::TIMEOUT);
    let err = exits(&mut read, &tmp.path().join("relaid"), 0);
    assert!(err.contains("laying out"), "{err}");
}

#[test]
fn a_write_through_a_link_keeps_the_files_own_store_true() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let link = tmp.path().join("sub").join("link");
    fs::create_dir(tmp.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let run = |path: &Path, rw: &str, out: &str| {
        let mut c = harness();
        c.args(["run", "--drop-caches", "false", "--rw", rw, "--bs", "4k"])
            .args(["--size", "2m", "--filename"])
            .arg(path);
        exits(&mut c, &tmp.path().join(out), 0)
    };
    run(&data, "write", "w1");
    // The link leads to the same file: its store, no --overwrite needed, no second store.
    run(&link, "randwrite", "w2");
    assert!(!tmp.path().join("sub/link.csum").exists());
    for (path, out) in [(&data, "r1"), (&link, "r2")] {
        run(path, "read", out);
        let case = only_case(&tmp.path().join(out));
        assert_eq!(case["mismatch_count"], 0, "{}: {case}", path.display());
        assert_eq!(case["status"], "ok");
    }
}

#[test]
fn a_job_file_may_reach_one_file_by_a_link_first_and_its_own_path_after() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("sub")).unwrap();
    let link = tmp.path().join("sub").join("link");
    // A relative link to a file not made yet: the writer makes it through the link.
    std::os::unix::fs::symlink("../data", &link).unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("jobs.fio");
    fs::write(
        &file,
        format!(
            "[global]\nbs=4k\nsize=2m\n[w]\nrw=randwrite\nfilename={}\n\
             [r]\nstonewall\nrw=read\nfilename={}\n",
            link.display(),
            data.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let mut c = harness();
    c.args(["run", "--drop-caches", "false", "--job"])
        .arg(&file);
    exits(&mut c, &out, 0);
    let cases = crate::common::cases(&out);
    assert_eq!(cases.len(), 2);
    for case in &cases {
        assert_eq!(case["status"], "ok", "{case}");
        assert_eq!(case["mismatch_count"], 0, "{case}");
    }
    assert!(CsumStore::beside(&data).exists() && data.exists());
    assert!(!tmp.path().join("sub/link.csum").exists());
}
