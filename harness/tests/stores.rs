//! Checksum stores through the binary: a store is used only for the data it was written
//! for (not another device that took the name, not a file moved over the old one), and a
//! job at an offset is judged by the sectors it touches.

// Each test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use assert_cmd::Command;
use workloads::CsumStore;

mod common;
use common::{case_paths, harness, only_case, stderr, Loop};

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
    // The harness keeps device stores in its temp dir: this test's, removed with it.
    let tmpdir = tmp.path().join("tmpdir");
    fs::create_dir(&tmpdir).unwrap();
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
        c.env("TMPDIR", &tmpdir)
            .args(["run", "--drop-caches", "false", "--strategy", "kthread"])
            .args(["--rw", rw, "--bs", "64k", "--size", "16m", "--direct", "1"])
            .args(["--filename", dev]);
        if allow {
            c.arg("--allow-device-write");
        }
        c
    };
    exits(&mut run("write", &dev, true), &tmp.path().join("w"), 0);
    let store = tmpdir.join(format!("csumbench-dev-{}.csum", first.name()));
    assert!(CsumStore::exists(&store), "{} missing", store.display());
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
    let moved = tmpdir.join(format!("csumbench-dev-{}.csum", second.name()));
    if moved != store {
        fs::rename(&store, &moved).unwrap();
    }

    // Without --allow-device-write: refused, naming both devices; nothing verified,
    // nothing written.
    let err = exits(&mut run("read", &dev, false), &tmp.path().join("r1"), 1);
    let want = format!(
        "cannot lay out {dev} (the checksum store was written for a different device \
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
    // Stores went to the test's temp dir, not to the machine's.
    assert!(moved.exists());
}

#[test]
fn a_file_moved_over_the_data_is_laid_out_again_not_reported_corrupt() {
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
    let was = fs::read(CsumStore::path_for(&data, false)).unwrap();
    let other = tmp.path().join("other");
    fs::write(&other, vec![0x5au8; 2 << 20]).unwrap();
    fs::rename(&other, &data).unwrap();
    let err = exits(&mut run("read"), &tmp.path().join("r"), 0);
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
    assert_ne!(fs::read(CsumStore::path_for(&data, false)).unwrap(), was);
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
    // Rewrite the store as format 1 wrote it: no identity after the checksums.
    let store = CsumStore::path_for(&data, false);
    let mut raw = fs::read(&store).unwrap();
    let id_len = u32::from_le_bytes(raw[48..52].try_into().unwrap()) as usize;
    assert!(id_len > 0);
    raw.truncate(raw.len() - id_len);
    raw[8..12].copy_from_slice(&1u32.to_le_bytes());
    raw[48..52].fill(0);
    fs::write(&store, &raw).unwrap();
    let err = exits(&mut run("read"), &tmp.path().join("r"), 0);
    assert!(
        err.contains(
            "the checksum store does not record which file it was written for \
             (an older csumbench wrote it)"
        ),
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

    // A read from the start needs sectors no job wrote: laid out, and says where.
    let err = exits(
        harness()
            .args([
                "run",
                "--drop-caches",
                "false",
                "--rw",
                "read",
                "--bs",
                "64k",
            ])
            .args(["--size", "2m", "--filename"])
            .arg(&data),
        &tmp.path().join("r3"),
        0,
    );
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
            "laying out {} (512KiB at offset 256KiB): no checksum store",
            data.display()
        )),
        "{err}"
    );
    let err = exits(&mut read(), &tmp.path().join("r2"), 0);
    assert!(!err.contains("laying out"), "{err}");
    assert_eq!(only_case(&tmp.path().join("r2"))["status"], "ok");
}
