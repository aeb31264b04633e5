//! One case: one group of jobs through one strategy and topology, measured, written to the
//! results folder when it ends.
//!
//! ```text
//! prepare (files, stores, page cache) -> start the job threads -> collect (intervals,
//! interval log, watchdog) -> the result (status, figures) -> persist, shut down, write
//! ```

mod collect;
mod jobs;
mod prepare;
mod result;

pub use collect::Watchdog;
pub use result::{
    Bandwidth, ByDirection, CaseResult, Moved, PoolReport, Preparation, StallCause, StallKind,
    StallReport, Status, VerifyPhase,
};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde::Serialize;
use workloads::JobSpec;

use crate::export::fio_json::{self, FioCase, FioDetail, FioJob};
use crate::inject::{self, Injection};
use crate::measure::{Percentiles, Stage, Usage};
use crate::pipeline::{CaseState, JobOutcome, Pools, Topology, DEPTH_LEVELS};
use crate::progress::Progress;
use crate::results::RunDir;
use collect::{CollectCtx, Collected};
use jobs::{RunningJobs, GIVE_UP};
use prepare::PreparedCase;
use result::bw_csv;

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
    /// A read may write its file again when the checksum store beside it cannot verify it
    /// (stale, interrupted, for another checksum, too small): the data is replaced.
    pub relayout: bool,
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
    /// Also write each case in fio's JSON shape (`--output-format=json`, `json+`).
    pub fio_json: Option<FioDetail>,
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
    /// The strategy's place in the run's list (0: the baseline).
    pub slot: usize,
    /// A warm-up case: recorded, left out of the statistics.
    pub warmup: bool,
    pub jobs: Vec<JobSpec>,
    /// The job file's group (stonewall) the case runs, from 0 (fio's `groupid`).
    pub group: u32,
    /// Job threads in the job file's groups before this one: fio numbers every thread of
    /// a file in one sequence (its logs' `N`), across stonewalls.
    pub threads_before: u32,
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
    let pools = Pools::build(&spec.strategy, spec.topology)?;
    let prepared = prepare::prepare(spec, opts, interrupted)?;
    let case = Arc::new(CaseState::new(
        interrupted.clone(),
        inject::panic_at(&opts.inject),
    ));
    live.start_case(&spec.id, &spec.jobs);
    let noise = crate::noise::Watch::start();
    let usage_before = Usage::now();
    let (wall_start, start) = (SystemTime::now(), Instant::now());
    let inputs = prepared.job_inputs(spec, opts, start)?;
    let mut jobs = RunningJobs::start(inputs, pools, &case);
    let ctx = CollectCtx {
        spec,
        opts,
        case: &case,
        interrupted,
        live,
        wall_start,
        start,
    };
    let mut collected = collect::collect(&mut jobs, &ctx)?;
    note_left_behind(&mut collected, &case);
    let outcomes = jobs.outcomes();
    let abandoned: u64 = outcomes.iter().map(|o| o.abandoned).sum();
    let stuck = abandoned > 0 || collected.left_behind > 0;
    if !stuck {
        jobs.settle();
    }
    let usage = Usage::now().since(usage_before);
    let noise = noise.stop();
    let ran = Ran {
        jobs: &jobs,
        collected: &collected,
        outcomes: &outcomes,
        usage,
        case: &case,
    };
    let mut result = summarize(spec, opts, &prepared, &ran)?;
    result.noise = Some(noise);
    // A ramp that outlasted the jobs leaves nothing measured: an error, never an ok of 0.
    if result.status == Status::Ok && result.bytes == 0 {
        if let Some(why) = spec.jobs.iter().find_map(JobSpec::nothing_measured) {
            (result.status, result.error) = (Status::Error, Some(why));
        }
    }
    if result.status == Status::Ok {
        // Read-only stores are untouched; persisting them again is harmless.
        prepared.persist()?;
    }
    // Read before the jobs are shut down, for the fio JSON.
    let job_moved: Vec<[(u64, u64); 2]> = jobs
        .progress
        .iter()
        .map(|p| p.by_direction.each_ref().map(|m| m.load()))
        .collect();
    let depth_levels: Vec<[u64; DEPTH_LEVELS]> = jobs
        .progress
        .iter()
        .map(|p| p.depth_levels.each_ref().map(|n| n.load(Ordering::Relaxed)))
        .collect();
    if let Err(e) = jobs.shut_down(stuck) {
        result.status = Status::Error;
        result.error.get_or_insert(e);
    }
    result.preparation.extend(prepared.unlink(&spec.jobs));
    out.write(&result.hlog, &collected.hlog)?;
    out.write(&result.bw_csv, bw_csv(&collected.intervals).as_bytes())?;
    write_fio_logs(out, &spec.id, &outcomes)?;
    out.write_json(&format!("{}.json", spec.id), &result)?;
    if let Some(detail) = opts.fio_json {
        let threads = Threads {
            collected: &collected,
            outcomes: &outcomes,
            moved: &job_moved,
            depth_levels: &depth_levels,
        };
        let fio = fio_case(spec, opts, &threads, &result, detail);
        out.write_json(&format!("{}.fio.json", spec.id), &fio_json::render(&fio))?;
    }
    Ok(result)
}

/// The case as fio's JSON shows it: a job per job thread (each clone of `numjobs`), in the
/// order the case started them.
fn fio_case<'a>(
    spec: &'a CaseSpec,
    opts: &RunOptions,
    threads: &Threads<'a>,
    result: &'a CaseResult,
    detail: FioDetail,
) -> FioCase<'a> {
    let clones = spec
        .jobs
        .iter()
        .flat_map(|job| (0..job.numjobs).map(move |_| job));
    let per_thread = threads
        .collected
        .jobs
        .iter()
        .zip(threads.outcomes)
        .zip(threads.moved)
        .zip(threads.depth_levels);
    let jobs = clones
        .zip(per_thread)
        .map(
            |(job, (((totals, outcome), &moved), &depth_levels))| FioJob {
                spec: job,
                runtime: outcome.end - outcome.start,
                latencies: &totals.latencies,
                moved,
                per_interval: &totals.moved,
                depth_levels,
            },
        )
        .collect();
    FioCase {
        detail,
        ended: SystemTime::now(),
        status: result.status,
        strategy: &result.strategy,
        topology: crate::names::name(&result.topology),
        usage: result.usage,
        elapsed: Duration::from_secs_f64(result.elapsed_s),
        interval: opts.interval,
        interval_lengths: threads
            .collected
            .intervals
            .iter()
            .map(|i| i.length)
            .collect(),
        groupid: spec.group,
        jobs,
    }
}

/// The jobs' fio logs, each as `CASE.NAME` with fio's name for it: in the results folder,
/// never where fio would put it. Jobs that share a name (`per_job_logs=0`) share the file,
/// one after the other.
fn write_fio_logs(out: &RunDir, case: &str, outcomes: &[JobOutcome]) -> Result<()> {
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for log in outcomes.iter().filter_map(|o| o.log.as_ref()) {
        for (name, text) in log.render() {
            files.entry(name).or_default().push_str(&text);
        }
    }
    for (name, text) in files {
        out.write(&format!("{case}.{name}"), text.as_bytes())?;
    }
    Ok(())
}

/// Job threads that did not stop are named in the stall's detail, or fail the case.
fn note_left_behind(collected: &mut Collected, case: &CaseState) {
    if collected.left_behind == 0 {
        return;
    }
    let note = format!(
        "{} job thread(s) did not stop within {}s of being told to \
         (blocked in an I/O that never returned); left behind",
        collected.left_behind,
        GIVE_UP.as_secs()
    );
    match &mut collected.stall {
        Some(s) => s.detail = format!("{}; {note}", s.detail),
        None => case.fail(note),
    }
}

/// What each job thread left, in the order the case started them.
struct Threads<'a> {
    collected: &'a Collected,
    outcomes: &'a [JobOutcome],
    /// Bytes and bios per direction.
    moved: &'a [[(u64, u64); 2]],
    depth_levels: &'a [[u64; DEPTH_LEVELS]],
}

/// What the measured run left: its jobs, what the collector gathered, the CPU it used.
struct Ran<'a> {
    jobs: &'a RunningJobs,
    collected: &'a Collected,
    outcomes: &'a [JobOutcome],
    usage: Usage,
    case: &'a CaseState,
}

/// The case's figures and status, from what its jobs did.
fn summarize(
    spec: &CaseSpec,
    opts: &RunOptions,
    prepared: &PreparedCase,
    ran: &Ran,
) -> Result<CaseResult> {
    let Ran {
        jobs,
        collected,
        outcomes,
        usage,
        case,
    } = *ran;
    let first_start = outcomes.iter().map(|o| o.start).min();
    let last_end = outcomes.iter().map(|o| o.end).max();
    let elapsed = match (first_start, last_end) {
        (Some(a), Some(b)) => (b - a).as_secs_f64().max(1e-9),
        _ => 1e-9,
    };
    let (bytes, bios) = jobs.moved();
    let by_direction = ByDirection::of(&jobs.progress);
    let errors = case.errors();
    let mismatch_count = case
        .mismatch_count
        .load(std::sync::atomic::Ordering::Relaxed);
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let per_gib = |x: f64| if gib > 0.0 { x / gib } else { 0.0 };
    let totals = &collected.totals;
    let files = prepared.files.iter().map(|f| &f.target.path);
    Ok(CaseResult {
        case: spec.id.clone(),
        strategy: jobs.pools.csum.name().to_string(),
        spec: spec.strategy.clone(),
        topology: spec.topology,
        repeat: spec.repeat,
        slot: Some(spec.slot),
        status: Status::decide(
            collected.stall.as_ref(),
            collected.interrupted,
            !errors.is_empty(),
            mismatch_count,
        ),
        error: errors.first().cloned(),
        job: serde_json::to_value(&spec.jobs[0])?,
        jobs: spec
            .jobs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?,
        storage: files
            .clone()
            .map(|p| workloads::device::describe(p))
            .collect(),
        files: files.map(|p| p.display().to_string()).collect(),
        preparation: prepared.preparation.clone(),
        page_cache_dropped: prepared.page_cache.dropped,
        page_cache_note: prepared.page_cache.note.clone(),
        bytes,
        bios,
        by_direction,
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
        bandwidth: Bandwidth::of(&collected.intervals, opts.interval),
        mismatch_count,
        mismatches: case.mismatches(),
        pools: PoolReport::of(&jobs.pools),
        stall: collected.stall.clone(),
        hlog: format!("{}.hlog", spec.id),
        bw_csv: format!("{}.bw.csv", spec.id),
        warmup: spec.warmup,
        noise: None,
        steady: collected.steady.clone(),
        verify_phase: VerifyPhase::of(outcomes),
    })
}
