//! SIGINT/SIGTERM through the real binary: the current case stops, what it measured so far
//! is kept (its json, hlog and bw.csv, the manifest marked "interrupted", the summary), the
//! temporary data files go (unless --keep-files), and the exit code is 130 — promptly, even
//! while a big file is being laid out.
//!
//! Every wait is bounded: a harness that does not do what it should within a (generous)
//! deadline is killed with SIGKILL and the test fails; none can hang.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{manifest, read_json};

/// One harness at a time: the machine running the tests is small, and these tests time
/// how fast the harness reacts.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Setup (laying out 64 MiB, starting a case) on a slow, busy machine.
const SETUP: Duration = Duration::from_secs(90);
/// From the signal to the exit. The harness checks the flag every --interval (100 ms).
const EXIT: Duration = Duration::from_secs(10);

/// A harness process, its output going to files (read while it runs, never a pipe that
/// could fill). Killed with SIGKILL if still running when dropped.
struct Harness {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Harness {
    fn start(args: &[&str], out: &Path, tmpdir: &Path) -> Harness {
        let logs = tmpdir.parent().unwrap();
        let stdout = logs.join("stdout");
        let stderr = logs.join("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(args)
            .arg("--out")
            .arg(out)
            .env("TMPDIR", tmpdir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("cannot start the harness");
        Harness {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `ready` until it holds; fails the test (after killing the harness) if the
    /// harness exits first or `within` passes.
    fn wait_until(&mut self, what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the harness exited ({status}) before {what}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "still not {what} after {within:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child, not
        // yet reaped (so not reused).
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the exit, at most `within`; on timeout kills it and fails the test.
    fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            if start.elapsed() >= within {
                self.kill();
                panic!(
                    "the harness did not exit within {within:?} of the signal\nstdout:\n{}\n\
                     stderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// manifest.json's status, once it exists (it is written atomically, so never half).
fn manifest_status(out: &Path) -> Option<String> {
    let bytes = fs::read(out.join("manifest.json")).ok()?;
    let m: Value = serde_json::from_slice(&bytes).expect("manifest.json is not JSON");
    m["status"].as_str().map(str::to_string)
}

/// The `csumbench-*` directories under `tmpdir`.
fn scratch_dirs(tmpdir: &Path) -> Vec<PathBuf> {
    fs::read_dir(tmpdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("csumbench-")
        })
        .collect()
}

/// The job's data file in the scratch dir, with its length.
fn data_file(tmpdir: &Path) -> Option<(PathBuf, u64)> {
    for dir in scratch_dirs(tmpdir) {
        for e in fs::read_dir(&dir).ok()? {
            let p = e.ok()?.path();
            if p.extension().is_some_and(|x| x == "csum") {
                continue;
            }
            if let Ok(m) = fs::metadata(&p) {
                return Some((p, m.len()));
            }
        }
    }
    None
}

/// The results folder holds no temp files (`.NAME.tmp`): every write finished or was undone.
fn assert_no_temp_files(out: &Path) {
    for e in fs::read_dir(out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "leftover temp file {name} in {}",
            out.display()
        );
    }
}

/// Checks an interrupted case: valid json, status interrupted, partial bytes, its hlog and
/// bw.csv beside it.
fn assert_interrupted_case(out: &Path, id: &str) -> Value {
    let case = read_json(&out.join(format!("{id}.json")));
    assert_eq!(case["status"], "interrupted", "{case}");
    assert!(case["bytes"].as_u64().unwrap() > 0, "no bytes kept: {case}");
    for key in ["hlog", "bw_csv"] {
        let name = case[key].as_str().unwrap();
        let len = fs::metadata(out.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len > 0, "{name} is empty");
    }
    let csv = fs::read_to_string(out.join(case["bw_csv"].as_str().unwrap())).unwrap();
    assert!(
        csv.starts_with("start_s,") && csv.lines().count() > 1,
        "{csv}"
    );
    case
}

const MIB64: u64 = 64 << 20;

/// `run` with a time-based 60 s write, stopped ~1 s into its measured part by `signal`.
fn interrupt_a_run(signal: libc::c_int, keep_files: bool) {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    fs::create_dir(&tmpdir).unwrap();
    let out = tmp.path().join("R");
    let mut args = vec![
        "run",
        "--strategy",
        "kthread",
        "--rw",
        "write",
        "--bs",
        "64k",
        "--size",
        "64m",
        "--time_based",
        "1",
        "--runtime",
        "60",
        "--drop-caches",
        "false",
    ];
    if keep_files {
        args.push("--keep-files");
    }
    let mut h = Harness::start(&args, &out, &tmpdir);
    // The scratch file is laid out to its full size before the measured case starts.
    h.wait_until("laid out and running", SETUP, || {
        data_file(&tmpdir).is_some_and(|(_, len)| len >= MIB64)
            && manifest_status(&out).as_deref() == Some("running")
    });
    std::thread::sleep(Duration::from_secs(1));
    h.signal(signal);
    let (status, took) = h.wait_exit(EXIT);
    eprintln!("signal {signal}: exited {took:?} after it");
    let (stdout, stderr) = (h.stdout(), h.stderr());
    assert_eq!(
        status.code(),
        Some(130),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let manifest = manifest(&out);
    assert_eq!(manifest["status"], "interrupted", "{manifest}");
    assert!(manifest["finished"].is_string(), "{manifest}");
    let cases = manifest["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{manifest}");
    let id = cases[0].as_str().unwrap();
    let case = assert_interrupted_case(&out, id);
    // Stopped well before its 60 s.
    assert!(case["elapsed_s"].as_f64().unwrap() < 30.0, "{case}");
    assert!(out.join("summary.md").is_file() && out.join("summary.csv").is_file());
    assert_no_temp_files(&out);

    let left = scratch_dirs(&tmpdir);
    if keep_files {
        assert_eq!(left.len(), 1, "{left:?}");
        let kept = &left[0];
        assert!(
            stdout.contains(&format!("data files kept in {}", kept.display())),
            "stdout:\n{stdout}"
        );
        assert!(data_file(&tmpdir).is_some_and(|(_, len)| len >= MIB64));
    } else {
        assert!(left.is_empty(), "temp data left behind: {left:?}");
        assert!(!stdout.contains("data files kept"), "{stdout}");
    }
}

#[test]
fn sigint_stops_a_run_keeps_its_partial_results_and_removes_the_temp_data() {
    interrupt_a_run(libc::SIGINT, false);
}

#[test]
fn sigterm_stops_a_run_keeps_its_partial_results_and_removes_the_temp_data() {
    interrupt_a_run(libc::SIGTERM, false);
}

#[test]
fn sigint_with_keep_files_keeps_the_temp_data_and_says_where() {
    interrupt_a_run(libc::SIGINT, true);
}

#[test]
fn sigint_in_the_second_case_of_a_compare_keeps_the_first_and_runs_no_more() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    fs::create_dir(&tmpdir).unwrap();
    let out = tmp.path().join("R");
    // Two repeats: four cases, so "nothing after the interrupted one" means something.
    let args = [
        "compare",
        "--strategy",
        "inline",
        "--strategy",
        "kthread",
        "--repeat",
        "2",
        "--warmup",
        "0",
        "--rw",
        "write",
        "--bs",
        "64k",
        "--size",
        "64m",
        "--time_based",
        "1",
        "--runtime",
        "3",
        "--drop-caches",
        "false",
    ];
    let mut h = Harness::start(&args, &out, &tmpdir);
    let first = out.join("01-inline-r1.json");
    h.wait_until("done with case 1", SETUP, || first.exists());
    // Case 2 starts at once (the file is laid out already) and runs 3 s: stop it in the middle.
    std::thread::sleep(Duration::from_secs(1));
    h.signal(libc::SIGINT);
    let (status, took) = h.wait_exit(EXIT);
    eprintln!("exited {took:?} after SIGINT");
    let (stdout, stderr) = (h.stdout(), h.stderr());
    assert_eq!(
        status.code(),
        Some(130),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let manifest = manifest(&out);
    assert_eq!(manifest["status"], "interrupted", "{manifest}");
    assert_eq!(
        manifest["cases"],
        serde_json::json!(["01-inline-r1", "02-kthread-r1"]),
        "{manifest}"
    );
    let case1 = read_json(&first);
    assert_eq!(case1["status"], "ok", "{case1}");
    assert!(case1["bytes"].as_u64().unwrap() > 0);
    assert!(case1["elapsed_s"].as_f64().unwrap() >= 2.5, "{case1}");
    assert_interrupted_case(&out, "02-kthread-r1");
    for later in ["03-inline-r2", "04-kthread-r2"] {
        for ext in ["json", "hlog", "bw.csv"] {
            let p = out.join(format!("{later}.{ext}"));
            assert!(!p.exists(), "{} ran after the interrupt", p.display());
        }
    }
    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("interrupted"));
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert_no_temp_files(&out);
    assert!(scratch_dirs(&tmpdir).is_empty());
}

/// Bytes of `file` laid out so far: its allocated blocks (its length is set up front).
fn written(file: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(file).map(|m| m.blocks() * 512).unwrap_or(0)
}

#[test]
fn sigint_while_laying_out_a_big_file_exits_promptly() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    fs::create_dir(&tmpdir).unwrap();
    let out = tmp.path().join("R");
    let file = tmp.path().join("F");
    const SIZE: u64 = 3 << 30;
    let args = [
        "run",
        "--rw",
        "read",
        "--bs",
        "1m",
        "--size",
        "3g",
        "--filename",
        file.to_str().unwrap(),
        "--drop-caches",
        "false",
    ];
    let mut h = Harness::start(&args, &out, &tmpdir);
    let stderr_path = h.stderr.clone();
    h.wait_until("laying out", SETUP, || {
        fs::read_to_string(&stderr_path).is_ok_and(|s| s.contains("laying out"))
            && written(&file) > 0
    });
    let at_signal = written(&file);
    assert!(
        at_signal < SIZE,
        "the 3 GiB layout ended before the test could interrupt it"
    );
    h.signal(libc::SIGINT);
    let (status, took) = h.wait_exit(EXIT);
    let (stdout, stderr) = (h.stdout(), h.stderr());
    eprintln!(
        "exited {took:?} after SIGINT, {} MiB of 3 GiB laid out at the signal",
        at_signal >> 20
    );
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to exit after SIGINT during the layout\nstderr:\n{stderr}"
    );
    assert_eq!(
        status.code(),
        Some(130),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let manifest = manifest(&out);
    assert_eq!(manifest["status"], "interrupted", "{manifest}");
    // Whatever it recorded is whole.
    for id in manifest["cases"].as_array().unwrap() {
        read_json(&out.join(format!("{}.json", id.as_str().unwrap())));
    }
    assert_no_temp_files(&out);
}
