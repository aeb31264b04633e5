//! The whole pipeline per strategy, on the null engine: fill, checksum, submit, endio with
//! its checksum-store update and metadata round trip, and nothing of the disk. What one
//! strategy costs over another shows here without device noise.
//!
//! `bookkeeping`: the harness's own cost per bio (inline, csum none, null engine: no
//! checksum, no I/O, nothing but the pipeline's work), reported per bio, as the null case
//! of `scripts/vs-fio.sh` sets it against fio.
//!
//! Some strategies deadlock on some machines (async-std's executor is process-wide, so
//! `--endio separate` still shares one pool; with few CPUs it fills with endio items
//! waiting for metadata items queued behind them). A watchdog aborts such a run, as the
//! harness's does; a strategy that stalls on its first run is not benched, and says so.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use harness::case::Watchdog;
use harness::pipeline::{self, CaseState, CloneFile, JobInput, JobProgress, Pools, Topology};
use strategies::csum::Algo;
use workloads::store::{Algorithm, Identity, Overwrite};
use workloads::{CsumStore, JobSpec};

/// Big sequential bios, and small ones where per-item dispatch costs dominate.
const JOBS: [(&str, &str, &str); 2] = [
    ("write-64m-bs1m", "1m", "64m"),
    ("write-16m-bs4k", "4k", "16m"),
];

/// No I/O completing for this long is a stall (a healthy run completes one every few
/// microseconds, even in a debug build on a busy machine).
const STALL: Duration = Duration::from_secs(3);

/// The harness's own work per bio: 4 KiB bios, no checksum, no I/O.
const BOOKKEEPING: [(&str, &str, &str); 3] = [
    ("randread-qd1", "randread", "1"),
    ("randread-qd32", "randread", "32"),
    ("randwrite-qd1", "randwrite", "1"),
];

/// Bios per bookkeeping run.
const BOOKKEEPING_BIOS: u64 = 1 << 16;

fn job(options: &[(&str, &str)]) -> JobSpec {
    let mut job = JobSpec::default();
    for (k, v) in [("ioengine", "null")].iter().chain(options) {
        job.set(k, v).expect("valid bench job");
    }
    job
}

/// A store for `job`'s checksum, beside an empty file `label` in `dir`.
fn store_for(dir: &std::path::Path, label: &str, job: &JobSpec) -> Arc<CsumStore> {
    let algo = algo(job);
    let data = dir.join(label);
    std::fs::write(&data, b"").expect("a file in a temporary folder");
    CsumStore::create(
        &CsumStore::beside(&data),
        Algorithm {
            name: &algo.name(),
            csum_len: algo.len(),
        },
        job.io_end(),
        &Identity::of(&data).expect("the file just made"),
        Overwrite::StoresOnly,
    )
    .map(Arc::new)
    .expect("checksum store in a temporary folder")
}

fn algo(job: &JobSpec) -> Algo {
    job.csum.parse().expect("a known checksum")
}

/// Aborts the case when I/O completions stop (the harness's watchdog), until `done` is
/// dropped.
fn watchdog(case: &CaseState, progress: &JobProgress, done: Receiver<()>) {
    let mut watchdog = Watchdog::new(STALL);
    while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(Duration::from_millis(50)) {
        let completions = progress.io_completions.load(Ordering::Relaxed);
        if watchdog.check(completions, Instant::now()).is_some() {
            case.abort.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// One run of the job: the time `run_job` took, or why it failed. Building and dropping
/// the pools (starting and joining threads) is outside the timing.
fn run_once(strategy: &str, job: &JobSpec, store: &Arc<CsumStore>) -> Result<Duration, String> {
    let pools = Pools::build(strategy, Topology::Separate).map_err(|e| e.to_string())?;
    let input = JobInput {
        engine: job.open_engine(Vec::new()).expect("null engine"),
        job: job.clone(),
        jobnum: 0,
        number: 1,
        files: vec![CloneFile {
            store: store.clone(),
            extents: None,
            label: "bench".into(),
            data_end: u64::MAX,
        }],
        algo: algo(job),
        seed: 1,
        deadline: None,
        ramp_end: None,
        flow: None,
        unverified: Vec::new(),
    };
    let case = Arc::new(CaseState::default());
    let progress = JobProgress::default();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (elapsed, outcome) = std::thread::scope(|s| {
        s.spawn(|| watchdog(&case, &progress, done_rx));
        let start = Instant::now();
        let outcome = pipeline::run_job(input, &pools, &case, &progress);
        let elapsed = start.elapsed();
        drop(done_tx);
        (elapsed, outcome)
    });
    if outcome.abandoned > 0 {
        // Its stuck workers would never join.
        std::mem::forget(pools);
    }
    if let Some(e) = case.errors().first() {
        return Err(e.clone());
    }
    if case.aborted() {
        return Err(format!("stalled: no I/O completed for {STALL:?}"));
    }
    Ok(elapsed)
}

/// The time `iters` runs took.
fn runs(iters: u64, strategy: &str, job: &JobSpec, store: &Arc<CsumStore>) -> Duration {
    (0..iters)
        .map(|_| run_once(strategy, job, store))
        .sum::<Result<Duration, String>>()
        .unwrap_or_else(|why| panic!("{strategy} failed mid-bench: {why}"))
}

fn pipelines(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (label, bs, size) in JOBS {
        let job = job(&[
            ("rw", "write"),
            ("bs", bs),
            ("size", size),
            ("iodepth", "8"),
            ("csum", "crc32c"),
        ]);
        let store = store_for(tmp.path(), label, &job);
        group.throughput(Throughput::Bytes(job.io_bytes()));
        for d in strategies::descriptors() {
            if let Err(why) = run_once(d.name, &job, &store) {
                eprintln!("NOT BENCHED: pipeline/{label}/{}: {why}", d.name);
                continue;
            }
            group.bench_function(BenchmarkId::new(label, d.name), |b| {
                b.iter_custom(|iters| runs(iters, d.name, &job, &store))
            });
        }
    }
    group.finish();
}

/// What the pipeline itself costs per bio: criterion's time per element is ns per bio.
fn bookkeeping(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let mut group = c.benchmark_group("bookkeeping");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BOOKKEEPING_BIOS));
    let size = (BOOKKEEPING_BIOS * 4096).to_string();
    for (label, rw, iodepth) in BOOKKEEPING {
        let job = job(&[
            ("rw", rw),
            ("bs", "4k"),
            ("size", &size),
            ("iodepth", iodepth),
            ("csum", "none"),
        ]);
        let store = store_for(tmp.path(), label, &job);
        group.bench_function(BenchmarkId::new("inline-null", label), |b| {
            b.iter_custom(|iters| runs(iters, "inline", &job, &store))
        });
    }
    group.finish();
}

criterion_group!(benches, pipelines, bookkeeping);
criterion_main!(benches);
