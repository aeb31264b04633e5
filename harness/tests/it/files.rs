//! A clone with several files, through the binary, as fio has them: `nrfiles` files named
//! by `filename_format` (default `$jobname.$jobnum.$filenum`) or a `filename` list, each
//! with its own checksum store, sharing the clone's I/O (`file_service_type`); damage in
//! one is found and named; `unlink=1` removes them after the case; `create_on_open=1`
//! leaves a scratch file unallocated; a name that would leave the directory is refused.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{cases, harness, stderr};

const MIB: u64 = 1 << 20;

/// Runs a job file (`text`, with `DIR` standing for `dir`) and returns its cases and
/// stderr; the run must succeed.
fn run(dir: &Path, name: &str, text: &str) -> (Vec<Value>, String) {
    let job = dir.join(format!("{name}.fio"));
    fs::write(&job, text.replace("DIR", &dir.display().to_string())).unwrap();
    let out = dir.join(format!("{name}-out"));
    let o = harness()
        .args(["run", "--drop-caches", "false", "--out"])
        .arg(&out)
        .arg("--job")
        .arg(&job)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (cases(&out), stderr(&o))
}

/// Runs a job file (`text`, written to `dir/NAME.fio`) that must be refused; its stderr.
fn refused(dir: &Path, name: &str, text: &str) -> String {
    let job = dir.join(format!("{name}.fio"));
    fs::write(&job, text).unwrap();
    let o = harness()
        .args(["run", "--out"])
        .arg(dir.join(format!("{name}-out")))
        .arg("--job")
        .arg(&job)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    stderr(&o)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".fio") && !n.ends_with("-out"))
        .collect();
    names.sort();
    names
}

#[test]
fn nrfiles_writes_each_file_its_share_and_a_later_read_verifies_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, _) = run(
        tmp.path(),
        "w",
        "[global]\ndirectory=DIR\nsize=8m\nbs=64k\n\
         [w]\nrw=randwrite\nnrfiles=4\nfile_service_type=random\nverify=crc32c\n\
         [r]\nstonewall\nrw=read\nnrfiles=4\nfilename_format=w.0.$filenum\n",
    );
    let expected: Vec<String> = (0..4)
        .flat_map(|n| [format!("w.0.{n}"), format!("w.0.{n}.csum")])
        .collect();
    assert_eq!(names(tmp.path()), expected);
    for n in 0..4 {
        let len = fs::metadata(tmp.path().join(format!("w.0.{n}")))
            .unwrap()
            .len();
        assert_eq!(len, 2 * MIB, "each file is its quarter of size=8m");
    }
    for case in &cases {
        assert_eq!(case["status"], "ok", "{case}");
        assert_eq!(case["bytes"], 8 * MIB, "{case}");
    }
    assert_eq!(
        cases[0]["verify_phase"]["bytes"],
        8 * MIB,
        "all four read back"
    );
}

#[test]
fn damage_in_one_of_a_clones_files_is_found_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let job = "[global]\ndirectory=DIR\nsize=4m\nbs=64k\nnrfiles=4\n[j]\nrw=write\n";
    run(tmp.path(), "w", job);
    let victim = tmp.path().join("j.0.2");
    let mut data = fs::read(&victim).unwrap();
    data[70_000] ^= 0x40;
    fs::write(&victim, data).unwrap();
    let read = job.replace("rw=write", "rw=randread\nfile_service_type=sequential");
    let text = read.replace("DIR", &tmp.path().display().to_string());
    fs::write(tmp.path().join("r.fio"), text).unwrap();
    let out = tmp.path().join("r-out");
    let o = harness()
        .args(["run", "--drop-caches", "false", "--out"])
        .arg(&out)
        .arg("--job")
        .arg(tmp.path().join("r.fio"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    let case = &cases(&out)[0];
    assert_eq!(case["status"], "verify_failed", "{case}");
    assert_eq!(case["mismatch_count"], 1, "{case}");
    assert!(
        err.contains(&format!("offset 69632 in {}", victim.display())),
        "{err}"
    );
}

#[test]
fn a_filename_list_is_shared_by_the_clones_and_unlink_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, _) = run(
        tmp.path(),
        "list",
        "[j]\ndirectory=DIR\nfilename=a:b\nrw=randwrite\nsize=1m\nnumjobs=2\nunlink=1\n",
    );
    let case = &cases[0];
    assert_eq!(case["status"], "ok", "{case}");
    assert_eq!(case["bytes"], 2 * MIB, "two clones, each over both files");
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
    let removed: Vec<&str> = case["preparation"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["action"].as_str().unwrap().contains("unlink=1"))
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    let dir = tmp.path().display();
    assert_eq!(removed, [format!("{dir}/a"), format!("{dir}/b")]);
}

#[test]
fn filesize_sizes_each_file_and_the_format_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, _) = run(
        tmp.path(),
        "fmt",
        "[j]\ndirectory=DIR\nfilesize=256k\nnrfiles=3\nnumjobs=2\n\
         filename_format=data-$jobnum-$filenum\nrw=write\nbs=64k\n",
    );
    assert_eq!(cases[0]["status"], "ok");
    assert_eq!(
        cases[0]["bytes"],
        (6 * 256) << 10,
        "two clones of three files"
    );
    let data: Vec<String> = names(tmp.path())
        .into_iter()
        .filter(|n| !n.ends_with(".csum"))
        .collect();
    assert_eq!(
        data,
        ["data-0-0", "data-0-1", "data-0-2", "data-1-0", "data-1-1", "data-1-2"]
    );
}

#[test]
fn create_on_open_leaves_a_scratch_file_unallocated() {
    let tmp = tempfile::tempdir().unwrap();
    let laid_out = |extra: &str| {
        let (cases, _) = run(
            tmp.path(),
            "scratch",
            &format!("[j]\nrw=randwrite\nsize=1m\nnrfiles=2\n{extra}\n"),
        );
        let prep = cases[0]["preparation"].as_array().unwrap().clone();
        prep.iter()
            .filter(|p| p["action"].as_str().unwrap().starts_with("laid out"))
            .count()
    };
    assert_eq!(laid_out(""), 2, "each scratch file is allocated first");
    fs::remove_dir_all(tmp.path().join("scratch-out")).unwrap();
    assert_eq!(laid_out("create_on_open=1"), 0);
}

#[test]
fn a_file_name_that_would_leave_the_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "[j]\ndirectory={}\nfilename_format=../$jobname.$filenum\nnrfiles=2\nrw=write\nsize=1m\n",
        tmp.path().join("inner").display()
    );
    fs::create_dir(tmp.path().join("inner")).unwrap();
    let err = refused(tmp.path(), "out", &text);
    assert!(err.contains("'..' would leave the directory"), "{err}");
    assert!(!tmp.path().join("j.0").exists() && !tmp.path().join("j.1").exists());
}

#[test]
fn a_format_may_name_folders_inside_the_directory_or_a_path_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, _) = run(
        tmp.path(),
        "sub",
        "[j]\ndirectory=DIR\nfilename_format=sub/$jobname.$filenum\nnrfiles=2\nrw=write\nsize=128k\n",
    );
    assert_eq!(cases[0]["status"], "ok");
    assert!(tmp.path().join("sub/j.0").exists() && tmp.path().join("sub/j.1").exists());
    // Without a directory, an absolute format is the user's own path, as in fio.
    let (cases, _) = run(
        tmp.path(),
        "abs",
        "[j]\nfilename_format=DIR/abs.$filenum\nnrfiles=2\nrw=write\nsize=128k\n",
    );
    assert_eq!(cases[0]["status"], "ok");
    assert!(tmp.path().join("abs.0").exists() && tmp.path().join("abs.1").exists());
}

#[test]
fn verify_only_over_files_no_run_wrote_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "[j]\ndirectory={}\nnrfiles=2\nrw=write\nsize=128k\nverify=crc32c\nverify_only=1\n",
        tmp.path().display()
    );
    let err = refused(tmp.path(), "vo", &text);
    assert!(
        err.contains("has nothing an earlier run wrote to verify"),
        "{err}"
    );
    assert!(!tmp.path().join("j.0.0").exists(), "nothing laid out");
}

#[test]
fn a_skewed_file_service_moves_the_jobs_bytes_and_they_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, _) = run(
        tmp.path(),
        "zipf",
        "[j]\ndirectory=DIR\nnrfiles=4\nrw=randwrite\nsize=4m\nbs=16k\n\
         file_service_type=zipf:1.2\nverify=crc32c\n",
    );
    let case = &cases[0];
    assert_eq!(case["status"], "ok", "{case}");
    assert_eq!(
        case["bytes"],
        4 * MIB,
        "zipf over files ends by the job's bytes"
    );
    // A file that comes round again is written again: each sector written is read back
    // once.
    let read_back = case["verify_phase"]["bytes"].as_u64().unwrap();
    assert!(read_back > 0 && read_back < 4 * MIB, "{read_back}");
    assert_eq!(case["mismatch_count"], 0);
}
