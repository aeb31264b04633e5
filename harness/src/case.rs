//! One case: one job through one strategy and topology, measured, written to the results
//! folder when it ends.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::RecvTimeoutError;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use serde::{Deserialize, Serialize};
use strategies::csum::Algo;
use strategies::PoolStats;
use workloads::engine::FaultyEngine;
use workloads::target::{self, Access};
use workloads::{CsumStore, JobSpec};

use crate::inject::{self, Injection};
use crate::measure::{pages_written, Percentiles, Stage, StageHists, Usage};
use crate::pipeline::{
    self, CaseState, JobInput, JobOutcome, JobProgress, Mismatch, Pools, Topology,
};
use crate::progress::Progress;
use crate::results::RunDir;

/// Settings that apply to every case of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunOptions {
    #[serde(serialize_with = "secs")]
    pub stall_timeout: Duration,
    #[serde(serialize_with = "secs")]
    pub interval: Duration,
    pub keep_files: bool,
    pub overwrite: bool,
    pub allow_device_write: bool,
    /// Where jobs without filename/directory put their files.
    pub scratch_dir: PathBuf,
    /// The scratch files are ours: lay each out once before its first case so every case
    /// overwrites the same allocated blocks. (Deleting and re-creating it per case made
    /// alternate cases 3-4x slower on a thin-provisioned disk mounted with discard, which
    /// with A B A B interleaving always penalised the same strategy.)
    pub preallocate_scratch: bool,
    /// Drop the page cache (sync; echo 3 > drop_caches) before every case that reads.
    pub drop_caches: bool,
    /// Faults to inject into every case (`--inject`).
    pub inject: Vec<Injection>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What to run: a group of jobs that run at the same time (fio runs every job of a job
/// file at once unless `stonewall` separates them into groups).
#[derive(Debug, Clone)]
pub struct CaseSpec {
    pub id: String,
    pub strategy: String,
    pub topology: Topology,
    pub repeat: u32,
    pub jobs: Vec<JobSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Read verification found bad sectors.
    VerifyFailed,
    /// An I/O or setup error stopped the case.
    Error,
    /// The watchdog saw no progress while work sat queued in a pool that could not run it.
    Deadlock,
    /// The watchdog saw no progress for another reason (a stuck I/O, a stuck worker).
    Stall,
    /// Stopped by SIGINT/SIGTERM.
    Interrupted,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Bandwidth {
    pub interval_s: f64,
    pub samples: usize,
    pub min_mib_s: f64,
    pub max_mib_s: f64,
    pub mean_mib_s: f64,
    /// Coefficient of variation: stddev / mean of the per-interval bandwidth.
    pub cov: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolReport {
    pub role: String,
    pub stats: serde_json::Value,
}

/// The watchdog's account of a case that stopped making progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StallReport {
    pub kind: String,
    pub after_s: f64,
    pub detail: String,
    pub bios_in_pipeline: u64,
    pub pools: Vec<PoolReport>,
}

/// One case's result: the `<case>.json` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseResult {
    pub case: String,
    /// The canonical spec, every knob spelled out.
    pub strategy: String,
    /// The spec as given on the command line (as in the manifest's config).
    pub spec: String,
    pub topology: Topology,
    pub repeat: u32,
    pub status: Status,
    pub error: Option<String>,
    /// The first job of the group (the only one, unless a job file ran several at once).
    pub job: serde_json::Value,
    /// Every job of the group.
    pub jobs: Vec<serde_json::Value>,
    pub files: Vec<String>,
    /// The storage behind each file: device, filesystem, block sizes, scheduler.
    pub storage: Vec<workloads::DeviceInfo>,
    /// Whether the page cache was dropped before this case (`None`: not a read case), and
    /// why not when it could not be.
    pub page_cache_dropped: Option<bool>,
    pub page_cache_note: Option<String>,
    pub bytes: u64,
    pub bios: u64,
    pub elapsed_s: f64,
    pub mib_s: f64,
    pub iops: f64,
    pub usage: Usage,
    pub cpu_s_per_gib: f64,
    pub vcsw_per_gib: f64,
    pub ivcsw_per_gib: f64,
    pub latency_us: std::collections::BTreeMap<String, Percentiles>,
    pub bandwidth: Bandwidth,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    pub pools: Vec<PoolReport>,
    pub stall: Option<StallReport>,
    pub hlog: String,
    pub bw_csv: String,
}

/// A job's file, opened and with its checksum store ready.
struct Prepared {
    target: target::Target,
    store: Arc<CsumStore>,
}

fn job_path(job: &JobSpec, jobnum: u32, opts: &RunOptions) -> PathBuf {
    match &job.filename {
        Some(f) => f.clone(),
        None => job
            .directory
            .clone()
            .unwrap_or_else(|| opts.scratch_dir.clone())
            .join(format!("{}.{jobnum}.0", job.name)),
    }
}

fn access(job: &JobSpec, write: bool, opts: &RunOptions) -> Access {
    Access {
        write,
        direct: job.direct,
        overwrite: opts.overwrite,
        allow_device_write: opts.allow_device_write,
    }
}

/// The checksum store a write job updates: the existing one if it is clean, of this very
/// file or device (not another that took its name since), and matches; else a fresh one.
fn store_for_write(path: &Path, data: &Path, algo: Algo, size: u64) -> Result<CsumStore> {
    if let Ok(store) = CsumStore::open_for(path, data) {
        if store.algo() == algo.name() && store.data_size() >= size {
            store.begin_update()?;
            return Ok(store);
        }
    }
    let identity = workloads::store::Identity::of(data)
        .with_context(|| format!("cannot tell which file or device {} is", data.display()))?;
    CsumStore::create_for(path, &algo.name(), algo.len(), size, &identity)
        .with_context(|| format!("cannot create checksum store {}", path.display()))
}

/// Why a read job's file needs laying out first, if it does: no usable store of its data
/// (one written for another device under the same name is none), or sectors of the job's
/// range `[start, end)` without a checksum.
fn layout_reason(
    data: &Path,
    store_path: &Path,
    algo: Algo,
    start: u64,
    end: u64,
) -> Option<String> {
    match CsumStore::open_for(store_path, data) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no checksum store".into()),
        Err(e) => Some(e.to_string()),
        Ok(s) if s.algo() != algo.name() => Some(format!(
            "its checksums are {}, the job asks for {}",
            s.algo(),
            algo
        )),
        Ok(s) if !s.covers(start, end) => Some("the checksum store does not cover the job".into()),
        Ok(_) => None,
    }
}

fn prepare(job: &JobSpec, jobnum: u32, algo: Algo, opts: &RunOptions) -> Result<Prepared> {
    let path = job_path(job, jobnum, opts);
    let span = job.io_end();
    let write = job.rw.is_write();

    let target = target::open(&path, span, access(job, write, opts))?;
    if target.is_device && span > target.size {
        bail!(
            "{}: the job needs {} bytes but the device holds {}",
            path.display(),
            span,
            target.size
        );
    }
    let store_path = CsumStore::path_for(&path, target.is_device);
    let store = if write {
        store_for_write(&store_path, &path, algo, span)?
    } else {
        CsumStore::open_for(&store_path, &path)
            .with_context(|| format!("cannot open checksum store {}", store_path.display()))?
    };
    Ok(Prepared {
        target,
        store: Arc::new(store),
    })
}

/// Lays out a job's file, as fio does for reads: writes it once, unmeasured, inline,
/// recording checksums, so a read has something to verify and a write overwrites
/// allocated blocks. Says so on stderr.
fn lay_out_if_needed(
    job: &JobSpec,
    jobnum: u32,
    algo: Algo,
    opts: &RunOptions,
    interrupted: &Arc<AtomicBool>,
) -> Result<()> {
    let path = job_path(job, jobnum, opts);
    let is_device = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
        .unwrap_or(false);
    let span = job.io_end();
    let why = if !job.rw.is_read() {
        (opts.preallocate_scratch && !path.exists()).then(|| {
            "a scratch file, allocated once so every case overwrites the same blocks".into()
        })
    } else {
        let store = CsumStore::path_for(&path, is_device);
        layout_reason(&path, &store, algo, job.offset, span)
    };
    let Some(why) = why else {
        return Ok(());
    };
    let mut layout = job.clone();
    layout.rw = workloads::RwMode::Write;
    layout.time_based = false;
    layout.runtime = None;
    layout.ramp_time = None;
    layout.rate = Default::default();
    layout.rate_iops = Default::default();
    layout.cpus_allowed.clear();
    layout.iodepth = layout.iodepth.max(8);
    layout.numjobs = 1;
    let prepared = prepare(&layout, jobnum, algo, opts)
        .with_context(|| format!("cannot lay out {} ({why})", path.display()))?;
    let size = workloads::units::format_size(span - job.offset.min(span));
    let from = match job.offset {
        0 => String::new(),
        at => format!(" at offset {}", workloads::units::format_size(at)),
    };
    eprintln!("laying out {} ({size}{from}): {why}", path.display());
    let pools = Pools::build("inline", Topology::Shared)?;
    let case = Arc::new(CaseState::new(interrupted.clone(), None));
    let input = JobInput {
        data_end: prepared.target.size,
        engine: layout
            .ioengine
            .open(Some(prepared.target.file.clone()), layout.iodepth)?,
        job: layout,
        jobnum,
        store: prepared.store.clone(),
        file_label: path.display().to_string(),
        algo,
        seed: 0x5EED ^ jobnum as u64,
        deadline: None,
        ramp_end: None,
    };
    pipeline::run_job(input, &pools, &case, &JobProgress::default());
    if interrupted.load(Ordering::Relaxed) {
        bail!("interrupted while laying out {}", path.display());
    }
    if let Some(e) = case.errors().first() {
        bail!("laying out {} failed: {e}", path.display());
    }
    prepared.store.persist()?;
    Ok(())
}

/// How long a stopped case waits for its job threads before leaving them behind: longer
/// than a job waits for its own bios to drain.
const GIVE_UP: Duration = Duration::from_secs(pipeline::DRAIN_GRACE.as_secs() + 3);

/// The per-interval record the collector keeps.
struct Interval {
    start: Duration,
    length: Duration,
    bytes: u64,
    bios: u64,
}

/// Runs one case and writes its files into `out`. Setup problems (a file that is not ours,
/// an unwritable path) are errors; failures during the run are the case's status. `live`
/// shows the measured part as it goes.
pub fn run_case(
    spec: &CaseSpec,
    opts: &RunOptions,
    out: &RunDir,
    interrupted: &Arc<AtomicBool>,
    live: &Progress,
) -> Result<CaseResult> {
    let mut algos = Vec::new();
    for job in &spec.jobs {
        job.validate()
            .map_err(|e| anyhow!("job '{}': {e}", job.name))?;
        algos.push(
            job.csum
                .parse::<Algo>()
                .map_err(|e| anyhow!("job '{}': csum={}: {e}", job.name, job.csum))?,
        );
    }
    let pools = Pools::build(&spec.strategy, spec.topology)?;
    // Room for every file before any is made, so a run that cannot fit leaves nothing.
    target::check_room(spec.jobs.iter().flat_map(|job| {
        let file = |n: u32| if job.filename.is_some() { 0 } else { n };
        let write = job.rw.is_write();
        (0..job.numjobs).map(move |n| (job_path(job, file(n), opts), job.io_end(), write))
    }))?;
    // Each job's files: one shared file with `filename`, else one per clone. Jobs that name
    // the same file share it (and its checksum store).
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut file_of: Vec<Vec<usize>> = Vec::new();
    for (job, &algo) in spec.jobs.iter().zip(&algos) {
        let mut mine = Vec::new();
        for jobnum in 0..job.numjobs {
            let file = if job.filename.is_some() { 0 } else { jobnum };
            let path = job_path(job, file, opts);
            if let Some(i) = prepared.iter().position(|p| p.target.path == path) {
                mine.push(i);
                continue;
            }
            lay_out_if_needed(job, file, algo, opts, interrupted)?;
            prepared.push(prepare(job, file, algo, opts)?);
            mine.push(prepared.len() - 1);
        }
        file_of.push(mine);
    }
    let reads = spec.jobs.iter().any(|j| j.rw.is_read());
    let (page_cache_dropped, page_cache_note) = if !reads {
        (None, None)
    } else {
        let mut note = None;
        for (job, files) in spec.jobs.iter().zip(&file_of) {
            if job.invalidate && !job.direct {
                for &i in files {
                    if let Err(e) = prepared[i].target.invalidate_cache() {
                        note = Some(format!(
                            "invalidate {}: {e}",
                            prepared[i].target.path.display()
                        ));
                    }
                }
            }
        }
        if !opts.drop_caches {
            (Some(false), note.or(Some("--drop-caches false".into())))
        } else {
            match workloads::device::drop_caches() {
                Ok(()) => (Some(true), note),
                Err(e) => (
                    Some(false),
                    Some(format!("dropping the page cache failed: {e}")),
                ),
            }
        }
    };

    let case = Arc::new(CaseState::new(
        interrupted.clone(),
        inject::panic_at(&opts.inject),
    ));
    let faults = inject::io_plan(&opts.inject);
    let threads: usize = spec.jobs.iter().map(|j| j.numjobs as usize).sum();
    let progress: Vec<JobProgress> = (0..threads).map(|_| JobProgress::default()).collect();
    live.start_case(&spec.id, &spec.jobs);
    let usage_before = Usage::now();
    let wall_start = SystemTime::now();
    let start = Instant::now();
    let mut inputs = Vec::new();
    for (ji, (job, &algo)) in spec.jobs.iter().zip(&algos).enumerate() {
        let ramp_end = job.ramp_time.map(|r| start + r);
        let deadline = job.runtime.map(|r| ramp_end.unwrap_or(start) + r);
        for jobnum in 0..job.numjobs {
            let p = &prepared[file_of[ji][jobnum as usize]];
            let mut engine = job
                .ioengine
                .open(Some(p.target.file.clone()), job.iodepth)
                .with_context(|| format!("cannot start the {} engine", job.ioengine.name()))?;
            if let Some(plan) = &faults {
                engine = Box::new(FaultyEngine::new(engine, plan.clone()));
            }
            inputs.push(JobInput {
                engine,
                data_end: p.target.size,
                job: job.clone(),
                jobnum,
                store: p.store.clone(),
                file_label: p.target.path.display().to_string(),
                algo,
                seed: job.seed(ji as u32 * 1000 + jobnum),
                deadline,
                ramp_end,
            });
        }
    }

    let mut hlog = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .with_start_time(wall_start)
        .with_base_time(wall_start)
        .with_max_value_divisor(1e6)
        .add_comment(&format!(
            "csumbench {} case {}: latencies in nanoseconds; tags {}",
            env!("CARGO_PKG_VERSION"),
            spec.id,
            Stage::ALL.map(Stage::tag).join(",")
        ))
        .begin_log_with(&mut hlog, &mut serializer)?;
    let mut totals = StageHists::default();
    let mut intervals: Vec<Interval> = Vec::new();
    let mut stall: Option<StallReport> = None;
    let mut was_interrupted = false;

    // Job threads are not scoped: one blocked for good in an I/O that never returns must
    // not keep the case, or the process, from ending. Each reports its outcome on `done`.
    let pools = Arc::new(pools);
    let progress = Arc::new(progress);
    let jobs = inputs.len();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<(usize, Option<JobOutcome>)>();
    for (i, input) in inputs.into_iter().enumerate() {
        let (pools, job_case, progress, done) = (
            pools.clone(),
            case.clone(),
            progress.clone(),
            done_tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("job{}", input.jobnum))
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    pipeline::run_job(input, &pools, &job_case, &progress[i])
                }));
                if outcome.is_err() {
                    job_case.fail("a job thread panicked (a csumbench bug; see stderr)".into());
                }
                let _ = done.send((i, outcome.ok()));
            });
        if let Err(e) = spawned {
            case.fail(format!("cannot start a job thread: {e}"));
            for unstarted in i..jobs {
                let _ = done_tx.send((unstarted, None));
            }
            break;
        }
    }
    drop(done_tx);

    let mut outcomes: Vec<Option<JobOutcome>> = (0..jobs).map(|_| None).collect();
    let mut finished = 0;
    let mut stopping_since: Option<Instant> = None;
    let mut left_behind = 0;
    let mut interval = StageHists::default();
    let mut last_flush = start;
    let mut last_bytes = 0u64;
    let mut last_bios = 0u64;
    let mut watch = (0u64, Instant::now());
    while finished < jobs {
        let next = last_flush + opts.interval;
        match done_rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok((i, outcome)) => {
                outcomes[i] = outcome;
                finished += 1;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now < next && finished < jobs {
            continue;
        }
        // Close the interval [last_flush, now).
        for p in progress.iter() {
            interval.drain_from(&mut p.hists.lock().unwrap());
        }
        let (bytes, bios) = moved(&progress);
        let (from, length) = (last_flush - start, now - last_flush);
        for stage in Stage::ALL {
            let h = interval.get(stage);
            if !h.is_empty() {
                if let Err(e) = log.write_histogram(h, from, length, Tag::new(stage.tag())) {
                    case.fail(format!("writing the interval log: {e}"));
                }
            }
        }
        totals.add(&interval);
        interval.reset();
        intervals.push(Interval {
            start: from,
            length,
            bytes: bytes - last_bytes,
            bios: bios - last_bios,
        });
        (last_flush, last_bytes, last_bios) = (now, bytes, bios);
        live.update(bytes);

        if interrupted.load(Ordering::Relaxed) {
            was_interrupted = true;
        }
        // The watchdog: I/O completions must keep coming, or, while a job is in fsync,
        // pages must keep being written back (a long fsync on a slow disk is no stall).
        let syncing = progress.iter().any(|p| p.syncing.load(Ordering::Relaxed));
        let writeback = if syncing { pages_written() } else { 0 };
        let activity = case.io_completions.load(Ordering::Relaxed) + bios + writeback;
        if activity != watch.0 {
            watch = (activity, now);
        } else if stall.is_none() && now - watch.1 >= opts.stall_timeout {
            stall = Some(diagnose(&pools, spec, now - watch.1, &progress));
            case.abort.store(true, Ordering::SeqCst);
        }
        // A stopped case whose jobs do not come back is left behind, not waited for.
        if case.aborted() {
            let since = *stopping_since.get_or_insert(now);
            if now - since >= GIVE_UP {
                left_behind = jobs - finished;
                break;
            }
        }
    }
    if left_behind > 0 {
        let note = format!(
            "{left_behind} job thread(s) did not stop within {}s of being told to \
             (blocked in an I/O that never returned); left behind",
            GIVE_UP.as_secs()
        );
        match &mut stall {
            Some(s) => s.detail = format!("{}; {note}", s.detail),
            None => case.fail(note),
        }
    }
    let now = Instant::now();
    let outcomes: Vec<JobOutcome> = outcomes
        .into_iter()
        .zip(progress.iter())
        .map(|(o, p)| {
            o.unwrap_or_else(|| JobOutcome {
                start,
                end: now,
                abandoned: p.in_pipeline.load(Ordering::Relaxed),
            })
        })
        .collect();

    let usage = Usage::now().since(usage_before);
    let abandoned: u64 = outcomes.iter().map(|o| o.abandoned).sum();
    let first_start = outcomes.iter().map(|o| o.start).min().unwrap_or(start);
    let last_end = outcomes.iter().map(|o| o.end).max().unwrap_or(start);
    let elapsed = (last_end - first_start).as_secs_f64().max(1e-9);
    let (bytes, bios) = moved(&progress);
    let errors = case.errors();
    let mismatch_count = case.mismatch_count.load(Ordering::Relaxed);
    let status = if stall.as_ref().is_some_and(|s| s.kind == "deadlock") {
        Status::Deadlock
    } else if stall.is_some() {
        Status::Stall
    } else if was_interrupted {
        Status::Interrupted
    } else if !errors.is_empty() {
        Status::Error
    } else if mismatch_count > 0 {
        Status::VerifyFailed
    } else {
        Status::Ok
    };
    if status == Status::Ok {
        // Read-only stores are untouched; persisting them again is harmless.
        for p in &prepared {
            p.store
                .persist()
                .with_context(|| format!("cannot save {}", p.store.path().display()))?;
        }
    }
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let per_gib = |x: f64| if gib > 0.0 { x / gib } else { 0.0 };
    let mut result = CaseResult {
        case: spec.id.clone(),
        strategy: pools.csum.name().to_string(),
        spec: spec.strategy.clone(),
        topology: spec.topology,
        repeat: spec.repeat,
        status,
        error: errors.first().cloned(),
        job: serde_json::to_value(&spec.jobs[0])?,
        jobs: spec
            .jobs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?,
        storage: prepared
            .iter()
            .map(|p| workloads::device::describe(&p.target.path))
            .collect(),
        page_cache_dropped,
        page_cache_note,
        files: prepared
            .iter()
            .map(|p| p.target.path.display().to_string())
            .collect(),
        bytes,
        bios,
        elapsed_s: elapsed,
        mib_s: bytes as f64 / (1 << 20) as f64 / elapsed,
        iops: bios as f64 / elapsed,
        usage,
        cpu_s_per_gib: per_gib(usage.user_s + usage.sys_s),
        vcsw_per_gib: per_gib(usage.voluntary_csw as f64),
        ivcsw_per_gib: per_gib(usage.involuntary_csw as f64),
        latency_us: Stage::ALL
            .iter()
            .filter(|s| !totals.get(**s).is_empty())
            .map(|s| (s.tag().to_string(), Percentiles::of(totals.get(*s))))
            .collect(),
        bandwidth: bandwidth_summary(&intervals, opts.interval),
        mismatch_count,
        mismatches: case.mismatches(),
        pools: pool_reports(&pools),
        stall,
        hlog: format!("{}.hlog", spec.id),
        bw_csv: format!("{}.bw.csv", spec.id),
    };
    if abandoned > 0 || left_behind > 0 {
        // Some pool or job still holds work it cannot finish; joining would hang.
        std::mem::forget(pools);
    } else if let Err(e) = shut_down(pools) {
        result.status = Status::Error;
        result.error.get_or_insert(e);
    }
    out.write(&result.hlog, &hlog)?;
    out.write(&result.bw_csv, bw_csv(&intervals).as_bytes())?;
    out.write_json(&format!("{}.json", spec.id), &result)?;
    Ok(result)
}

/// Shuts the case's pools down (each quiesces and joins its threads) on a thread of its
/// own, so that a backend that cannot stop costs the run a grace period, not a hang.
fn shut_down(pools: Arc<Pools>) -> Result<(), String> {
    let name = pools.csum.name().to_string();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || {
            // Job threads drop their handles as they exit, just after reporting.
            let mut pools = pools;
            let since = Instant::now();
            loop {
                match Arc::try_unwrap(pools) {
                    Ok(last) => break drop(last),
                    Err(shared) if since.elapsed() < GIVE_UP => pools = shared,
                    Err(shared) => break std::mem::forget(shared),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = done_tx.send(());
        });
    if spawned.is_err() {
        return Ok(()); // No thread to spare: leave the pools to the process's exit.
    }
    done_rx.recv_timeout(GIVE_UP * 2).map_err(|_| {
        format!(
            "the {name} pools did not shut down within {}s of the case's end \
             (a backend bug); left behind",
            (GIVE_UP * 2).as_secs()
        )
    })
}

/// Bytes and bios counted so far, over every job.
fn moved(progress: &[JobProgress]) -> (u64, u64) {
    progress.iter().fold((0, 0), |(bytes, bios), p| {
        (
            bytes + p.bytes.load(Ordering::Relaxed),
            bios + p.bios.load(Ordering::Relaxed),
        )
    })
}

fn pool_reports(pools: &Pools) -> Vec<PoolReport> {
    pools
        .stats()
        .into_iter()
        .map(|(role, stats)| PoolReport {
            role,
            stats: serde_json::to_value(stats).expect("stats serialize"),
        })
        .collect()
}

/// Tells a deadlock (work queued in a pool whose workers are all stuck) from the other
/// stalls: I/O the device never completed, a work item that never finishes.
fn diagnose(
    pools: &Pools,
    spec: &CaseSpec,
    after: Duration,
    progress: &[JobProgress],
) -> StallReport {
    let sum = |f: fn(&JobProgress) -> &AtomicU64| -> u64 {
        progress.iter().map(|p| f(p).load(Ordering::Relaxed)).sum()
    };
    let in_pipeline = sum(|p| &p.in_pipeline);
    let at_engine = sum(|p| &p.at_engine);
    let stats: Vec<(String, PoolStats)> = pools.stats();
    let describe = |pred: fn(&PoolStats) -> bool| -> Vec<String> {
        stats
            .iter()
            .filter(|(_, s)| pred(s))
            .map(|(role, s)| {
                format!(
                    "{role} pool: {} queued behind {} busy worker(s)",
                    s.queued, s.workers_busy
                )
            })
            .collect()
    };
    let stuck = describe(|s| s.queued > 0 && s.workers_busy > 0);
    let busy = describe(|s| s.workers_busy > 0);
    let secs = after.as_secs_f64();
    let (kind, detail) = if !stuck.is_empty() {
        let detail = format!(
            "no I/O completed for {secs:.1}s: {} with --endio {}: {}",
            spec.strategy,
            match spec.topology {
                Topology::Shared => "shared",
                Topology::Separate => "separate",
            },
            stuck.join("; ")
        );
        ("deadlock", detail)
    } else if progress.iter().any(|p| p.syncing.load(Ordering::Relaxed)) {
        let detail = format!(
            "no I/O completed for {secs:.1}s: a job is in fsync and the kernel wrote \
             nothing back meanwhile"
        );
        ("stall", detail)
    } else if at_engine > 0 {
        let detail = format!(
            "no I/O completed for {secs:.1}s: {at_engine} I/O(s) submitted to the device never \
             completed ({in_pipeline} bio(s) in the pipeline): a stuck device or a lost I/O"
        );
        ("stall", detail)
    } else if !busy.is_empty() {
        let detail = format!(
            "no I/O completed for {secs:.1}s: a work item that does not finish ({})",
            busy.join("; ")
        );
        ("stall", detail)
    } else {
        let detail =
            format!("no I/O completed for {secs:.1}s with {in_pipeline} bio(s) in the pipeline");
        ("stall", detail)
    };
    StallReport {
        kind: kind.into(),
        after_s: secs,
        detail,
        bios_in_pipeline: in_pipeline,
        pools: pool_reports(pools),
    }
}

fn bandwidth_summary(intervals: &[Interval], nominal: Duration) -> Bandwidth {
    // A closing sliver of an interval says little about bandwidth; skip short ones.
    // Leading intervals with nothing completed are the pipeline filling up, trailing ones
    // the end_fsync: neither is a dip in streaming.
    let first = intervals.iter().position(|i| i.bytes > 0);
    let last = intervals.iter().rposition(|i| i.bytes > 0);
    let streaming = match (first, last) {
        (Some(a), Some(b)) => &intervals[a..=b],
        _ => &intervals[..0],
    };
    let rates: Vec<f64> = streaming
        .iter()
        .filter(|i| i.length >= nominal / 2)
        .map(|i| i.bytes as f64 / (1 << 20) as f64 / i.length.as_secs_f64())
        .collect();
    if rates.is_empty() {
        return Bandwidth {
            interval_s: nominal.as_secs_f64(),
            ..Bandwidth::default()
        };
    }
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    Bandwidth {
        interval_s: nominal.as_secs_f64(),
        samples: rates.len(),
        min_mib_s: rates.iter().cloned().fold(f64::INFINITY, f64::min),
        max_mib_s: rates.iter().cloned().fold(0.0, f64::max),
        mean_mib_s: mean,
        cov: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
    }
}

fn bw_csv(intervals: &[Interval]) -> String {
    let mut s = String::from("start_s,length_s,bytes,bios,mib_s\n");
    for i in intervals {
        let len = i.length.as_secs_f64();
        s += &format!(
            "{:.6},{:.6},{},{},{:.3}\n",
            i.start.as_secs_f64(),
            len,
            i.bytes,
            i.bios,
            if len > 0.0 {
                i.bytes as f64 / (1 << 20) as f64 / len
            } else {
                0.0
            }
        );
    }
    s
}
