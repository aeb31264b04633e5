//! A results folder on a disk that fills up mid-run (a small tmpfs; needs root, skipped
//! otherwise). The harness must stop with a clear error naming the file it could not write
//! and "No space left on device", never panic, and leave only whole files behind: every
//! json parses, no temp files, a valid manifest whose every case has its json, and a folder
//! `harness report` still reads.
//!
//! Every harness process is waited for with a deadline, then killed: none can hang a test.

// Each test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{is_root, manifest, read_json};

const DEADLINE: Duration = Duration::from_secs(180);

/// A tmpfs with mount `options` (`size=64k`, `nr_inodes=16`), unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, options: &str) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not root".into());
        }
        fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        let c_options = CString::new(options).unwrap();
        // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c_options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "mount -t tmpfs -o {options} tmpfs {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path. MNT_DETACH: never fails for a busy mount.
        let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            eprintln!(
                "umount {}: {}",
                self.path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the harness with `TMPDIR=tmpdir`, output to files beside it, for at most DEADLINE.
fn harness(args: &[&str], logs: &Path) -> Output {
    fs::create_dir_all(logs.join("tmp")).unwrap();
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env("TMPDIR", logs.join("tmp"))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("cannot start the harness");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "harness {args:?} still running after {DEADLINE:?}\nstderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: fs::read_to_string(&out_path).unwrap(),
        stderr: fs::read_to_string(&err_path).unwrap(),
    }
}

/// What one run on a full disk did.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    /// The file the error says could not be written (its name), if the run failed.
    failed_file: Option<String>,
    status: String,
    cases: usize,
    /// Whether `harness report` saw every case the run meant to (a failed run: fewer).
    total: usize,
}

/// A compare of inline vs kthread, `repeat` times (null engine, 1 MiB: each case is fast
/// and writes ~4 pages of results), into a tmpfs of `size_kib`; checks every promise and
/// says how it went. None when no tmpfs can be mounted here.
fn run_on_tmpfs(size_kib: u64, repeat: u32) -> Option<Outcome> {
    run_on_tmpfs_with(&format!("size={size_kib}k"), repeat)
}

/// [`run_on_tmpfs`] on a tmpfs mounted with `options`.
fn run_on_tmpfs_with(options: &str, repeat: u32) -> Option<Outcome> {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("m");
    let _fs = match Tmpfs::mount(&mnt, options) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("skipping: cannot mount a small tmpfs ({e})");
            return None;
        }
    };
    let out = mnt.join("r");
    let repeat_s = repeat.to_string();
    let run = harness(
        &[
            "compare",
            "--strategy",
            "inline",
            "--strategy",
            "kthread",
            "--repeat",
            &repeat_s,
            "--warmup",
            "0",
            "--ioengine",
            "null",
            "--rw",
            "write",
            "--bs",
            "64k",
            "--size",
            "1m",
            "--drop-caches",
            "false",
            "--out",
            out.to_str().unwrap(),
        ],
        &tmp.path().join("logs"),
    );
    let ctx = format!(
        "tmpfs {options}, repeat {repeat}: exit {:?}\nstderr:\n{}",
        run.code, run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{ctx}");
    assert!(matches!(run.code, Some(0 | 1)), "{ctx}");

    // The error: the file it could not write, and why.
    let failed_file = if run.code == Some(1) {
        assert!(run.stderr.contains("error: "), "{ctx}");
        assert!(run.stderr.contains("No space left on device"), "{ctx}");
        let prefix = format!("cannot write {}/", out.display());
        let at = run
            .stderr
            .find(&prefix)
            .unwrap_or_else(|| panic!("the error names no file in the results folder\n{ctx}"));
        let name: String = run.stderr[at + prefix.len()..]
            .chars()
            .take_while(|&c| c != ':')
            .collect();
        Some(name)
    } else {
        None
    };

    // Only whole files: no temp files, every json parses, every csv and hlog ends its line.
    for e in fs::read_dir(&out).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "leftover temp file {name}\n{ctx}");
        let bytes = fs::read(&path).unwrap();
        if name.ends_with(".json") {
            read_json(&path);
        } else if name.ends_with(".csv") || name.ends_with(".hlog") || name.ends_with(".md") {
            assert!(
                bytes.ends_with(b"\n"),
                "{name} does not end with a newline\n{ctx}"
            );
            if name.ends_with(".bw.csv") {
                assert!(bytes.starts_with(b"start_s,"), "{name}\n{ctx}");
            }
            if name.ends_with(".hlog") {
                assert!(bytes.starts_with(b"#csumbench"), "{name}\n{ctx}");
            }
        } else {
            panic!("unexpected file {name}\n{ctx}");
        }
    }

    // The manifest: valid, and every case it lists is there, whole.
    let manifest = manifest(&out);
    let status = manifest["status"].as_str().unwrap().to_string();
    let cases = manifest["cases"].as_array().unwrap();
    for id in cases {
        let id = id.as_str().unwrap();
        let case = read_json(&out.join(format!("{id}.json")));
        assert_eq!(case["case"], id, "{ctx}");
        for key in ["hlog", "bw_csv"] {
            let name = case[key].as_str().unwrap();
            assert!(out.join(name).is_file(), "{id}: no {name}\n{ctx}");
        }
    }
    // Every case file belongs to a case the manifest lists, except after a failed manifest
    // update: then the one case that finished just before it is there whole, unlisted.
    // (A case whose own files did not fit leaves none: they would belong to no case.)
    let listed: Vec<&str> = cases.iter().map(|c| c.as_str().unwrap()).collect();
    let mut unlisted: Vec<String> = Vec::new();
    for e in fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !is_case_file(&name) {
            continue;
        }
        let id = name
            .trim_end_matches(".json")
            .trim_end_matches(".hlog")
            .trim_end_matches(".bw.csv")
            .to_string();
        if !listed.contains(&id.as_str()) && !unlisted.contains(&id) {
            unlisted.push(id);
        }
    }
    if failed_file.as_deref() == Some("manifest.json") {
        assert!(unlisted.len() <= 1, "unlisted cases {unlisted:?}\n{ctx}");
        for id in &unlisted {
            for ext in ["json", "hlog", "bw.csv"] {
                assert!(
                    out.join(format!("{id}.{ext}")).is_file(),
                    "the error names manifest.json, but case {id} has no {ext}: the case's \
                     own failed write was the first error\n{ctx}"
                );
            }
        }
    } else {
        assert!(
            unlisted.is_empty(),
            "files of cases the manifest does not list: {unlisted:?}\n{ctx}"
        );
    }

    match (run.code, status.as_str()) {
        (Some(0), "complete") => {
            assert!(out.join("summary.md").is_file() && out.join("summary.csv").is_file())
        }
        (Some(1), "failed") => {
            let error = manifest["error"].as_str().unwrap();
            assert!(error.contains("No space left on device"), "{error}\n{ctx}");
        }
        // The failure could not be recorded either (the stderr says so), or came after
        // every case was recorded (the summary).
        (Some(1), "running") => assert!(
            run.stderr.contains("could not be marked failed")
                || failed_file.as_deref() == Some("manifest.json"),
            "{ctx}"
        ),
        (Some(1), "complete") => {}
        _ => panic!("manifest status {status}\n{ctx}"),
    }

    // `harness report` reads what is there.
    let report = harness(
        &["report", out.to_str().unwrap()],
        &tmp.path().join("report"),
    );
    assert_eq!(report.code, Some(0), "report: {}\n{ctx}", report.stderr);
    if !cases.is_empty() {
        assert!(report.stdout.contains("inline"), "{}", report.stdout);
    }
    eprintln!(
        "tmpfs {options}: exit {:?}, manifest {status} with {} case(s), failed on {:?}",
        run.code,
        cases.len(),
        failed_file
    );
    Some(Outcome {
        code: run.code,
        stderr: run.stderr,
        failed_file,
        status,
        cases: cases.len(),
        total: 2 * repeat as usize,
    })
}

fn is_case_file(name: &str) -> bool {
    name.ends_with(".hlog")
        || name.ends_with(".bw.csv")
        || (name.ends_with(".json") && name != "manifest.json")
}

#[test]
fn a_disk_that_fills_mid_run_stops_it_with_a_clear_error_and_whole_files() {
    let Some(o) = run_on_tmpfs(256, 20) else {
        return;
    };
    assert_eq!(o.code, Some(1));
    assert!(
        o.cases >= 3 && o.cases < o.total,
        "{} case(s) recorded: pick a tmpfs size where several fit and then it fills",
        o.cases
    );
    assert!(o.failed_file.is_some());
    // One error, first; no other lines than the cases' and the error's.
    assert_eq!(o.stderr.matches("error: ").count(), 1, "{}", o.stderr);
}

/// Shifting the tmpfs size a page at a time moves the write that fails through a case's
/// files and the manifest update after it: each must fail cleanly, and the error the
/// user sees is always the first failed write (marking the manifest failed is best effort).
#[test]
fn wherever_the_disk_fills_the_first_failed_write_is_the_error() {
    let mut failed = Vec::new();
    for size in (192..=252).step_by(4) {
        let Some(o) = run_on_tmpfs(size, 20) else {
            return;
        };
        assert_eq!(o.code, Some(1), "tmpfs {size}k: the run should not fit");
        let file = o.failed_file.unwrap();
        if file == "manifest.json" {
            assert!(o.stderr.contains("cannot write"), "{}", o.stderr);
        } else {
            assert!(is_case_file(&file), "tmpfs {size}k: failed on {file}");
            // The case's own name comes first, then the file.
            assert!(o.stderr.contains("error: case "), "{}", o.stderr);
            assert_ne!(o.status, "complete");
        }
        failed.push(file);
    }
    assert!(
        failed.iter().any(|f| f == "manifest.json"),
        "no size made the manifest update fail: {failed:?}"
    );
    assert!(
        failed.iter().any(|f| is_case_file(f)),
        "no size made a case file fail: {failed:?}"
    );
}

/// A disk that fills only at the end: every case is saved and the manifest says so; the
/// summary that did not fit is the error, with how to get it back. It fills by running out
/// of inodes: the final manifest is rewritten (temp + rename) just before the summaries, so
/// in bytes there is room for the summaries after it only while the manifest fits in one
/// page, which a growing manifest outgrows; a file count does not depend on sizes.
#[test]
fn a_disk_that_fills_at_the_summary_keeps_every_case() {
    let mut at_summary = 0;
    for inodes in 12..=22 {
        let Some(o) = run_on_tmpfs_with(&format!("size=1m,nr_inodes={inodes}"), 2) else {
            return;
        };
        if let Some("summary.md" | "summary.csv") = o.failed_file.as_deref() {
            at_summary += 1;
            assert_eq!(o.code, Some(1));
            assert_eq!(o.status, "complete");
            assert_eq!(o.cases, o.total);
            assert!(o.stderr.contains("harness report"), "{}", o.stderr);
        }
    }
    assert!(
        at_summary > 0,
        "no size made the summary the write that fails"
    );
}
