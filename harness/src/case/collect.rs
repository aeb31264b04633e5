//! While a case runs: every interval, the stage histograms go to the interval log and the
//! bytes moved to the bandwidth timeline; the watchdog looks for progress; a case whose
//! jobs do not stop is left behind.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use hdrhistogram::serialization::interval_log::{
    IntervalLogWriter, IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};
use hdrhistogram::serialization::{V2DeflateSerializeError, V2DeflateSerializer};
use strategies::PoolStats;
use workloads::steady::{Detector, SteadyReport, SteadyState};

use super::jobs::{RunningJobs, GIVE_UP};
use super::result::{Interval, PoolReport, StallCause, StallKind, StallReport};
use super::{CaseSpec, RunOptions};
use crate::measure::{pages_written, DirectionHists, Stage, StageCounts, StageHists};
use crate::pipeline::{CaseState, JobProgress, Pools};
use crate::progress::Progress;

/// What the collector gathered.
pub(super) struct Collected {
    /// The HdrHistogram interval log, whole.
    pub hlog: Vec<u8>,
    pub totals: StageHists,
    pub intervals: Vec<Interval>,
    /// Each job's own, in the order of the case's job inputs.
    pub jobs: Vec<JobTotals>,
    pub stall: Option<StallReport>,
    pub interrupted: bool,
    /// Job threads that did not stop when told to.
    pub left_behind: usize,
    /// Steady-state detection, when a job asked for it.
    pub steady: Option<SteadyReport>,
}

/// One job's latencies over the case, and what it moved in each of the case's intervals,
/// both per direction: what fio reports per job.
#[derive(Default)]
pub(super) struct JobTotals {
    pub latencies: DirectionHists,
    /// Bytes and bios per interval (as [`Collected::intervals`]), per direction
    /// ([`crate::measure::OPS`]'s order).
    pub moved: [Vec<(u64, u64)>; 2],
    /// What the job had moved by the end of the last interval.
    seen: [(u64, u64); 2],
}

impl JobTotals {
    /// Notes what the job has moved by the end of an interval.
    fn observe(&mut self, progress: &JobProgress) {
        for ((per_interval, published), seen) in self
            .moved
            .iter_mut()
            .zip(&progress.by_direction)
            .zip(&mut self.seen)
        {
            let now = published.load();
            per_interval.push((now.0 - seen.0, now.1 - seen.1));
            *seen = now;
        }
    }
}

/// Ends an interval for every job: their latencies into `interval` and each job's own
/// totals, and what each moved in it.
fn close_interval(
    jobs: &mut [JobTotals],
    progress: &[JobProgress],
    interval: &mut StageHists,
    spare: &mut StageCounts,
    patience: Duration,
) {
    let mut job_hists: Vec<&mut DirectionHists> =
        jobs.iter_mut().map(|j| &mut j.latencies).collect();
    gather(progress, interval, &mut job_hists, spare, patience);
    for (job, progress) in jobs.iter_mut().zip(progress) {
        job.observe(progress);
    }
}

/// Declares a stall when a counter of activity stops moving for `timeout`.
pub struct Watchdog {
    timeout: Duration,
    seen: u64,
    since: Instant,
}

impl Watchdog {
    pub fn new(timeout: Duration) -> Watchdog {
        Watchdog {
            timeout,
            seen: 0,
            since: Instant::now(),
        }
    }

    /// Feeds the activity counter; once it has not moved for the timeout, how long it has
    /// been still.
    pub fn check(&mut self, activity: u64, now: Instant) -> Option<Duration> {
        if activity != self.seen {
            (self.seen, self.since) = (activity, now);
            return None;
        }
        let still = now - self.since;
        (still >= self.timeout).then_some(still)
    }

    /// No activity is expected now (a job pauses on purpose): the still time starts over.
    pub fn excuse(&mut self, now: Instant) {
        self.since = now;
    }

    /// Looks at the jobs (`bios` counted so far): how long they have been still, once
    /// that is a stall. A job in a think time or start delay excuses them.
    fn watch(&mut self, progress: &[JobProgress], bios: u64, now: Instant) -> Option<Duration> {
        if progress.iter().any(|p| p.pausing.load(Ordering::Relaxed)) {
            self.excuse(now);
            return None;
        }
        self.check(activity(progress, bios), now)
    }
}

/// What the collector works with.
pub(super) struct CollectCtx<'a> {
    pub spec: &'a CaseSpec,
    pub opts: &'a RunOptions,
    pub case: &'a CaseState,
    pub interrupted: &'a AtomicBool,
    pub live: &'a Progress,
    pub wall_start: SystemTime,
    pub start: Instant,
}

/// Collects until every job has finished, or the stopped case gives up on those that
/// cannot.
pub(super) fn collect(jobs: &mut RunningJobs, ctx: &CollectCtx) -> Result<Collected> {
    let mut hlog = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .with_start_time(ctx.wall_start)
        .with_base_time(ctx.wall_start)
        .with_max_value_divisor(1e6)
        .add_comment(&format!(
            "csumbench {} case {}: latencies in nanoseconds; tags {}",
            env!("CARGO_PKG_VERSION"),
            ctx.spec.id,
            Stage::ALL.map(Stage::tag).join(",")
        ))
        .begin_log_with(&mut hlog, &mut serializer)?;
    let mut c = Collected {
        hlog: Vec::new(),
        totals: StageHists::default(),
        intervals: Vec::new(),
        jobs: jobs.progress.iter().map(|_| JobTotals::default()).collect(),
        stall: None,
        interrupted: false,
        left_behind: 0,
        steady: None,
    };
    let mut steady = steady_detector(&ctx.spec.jobs);
    let (mut interval, mut spare) = (StageHists::default(), StageCounts::default());
    let (mut last_flush, mut last_moved) = (ctx.start, (0, 0));
    let mut watchdog = Watchdog::new(ctx.opts.stall_timeout);
    let mut stopping_since: Option<Instant> = None;
    while !jobs.all_finished() {
        let next = last_flush + ctx.opts.interval;
        jobs.wait_until(next);
        let now = Instant::now();
        if now < next && !jobs.all_finished() {
            continue;
        }
        // Close the interval [last_flush, now).
        let patience = patience(ctx.opts.interval);
        close_interval(
            &mut c.jobs,
            &jobs.progress,
            &mut interval,
            &mut spare,
            patience,
        );
        let (from, length) = (last_flush - ctx.start, now - last_flush);
        if let Err(e) = write_interval(&mut log, &interval, from, length) {
            ctx.case.fail(format!("writing the interval log: {e}"));
        }
        c.totals.add(&interval);
        interval.reset();
        let moved = jobs.moved();
        c.intervals.push(Interval {
            start: from,
            length,
            bytes: moved.0 - last_moved.0,
            bios: moved.1 - last_moved.1,
        });
        (last_flush, last_moved) = (now, moved);
        ctx.live.update(moved.0);
        c.interrupted |= ctx.interrupted.load(Ordering::Relaxed);
        if let Some(detector) = &mut steady {
            if detector.observe(now - ctx.start, moved.0, moved.1) {
                ctx.case.end_early();
            }
        }

        let still = watchdog.watch(&jobs.progress, moved.1, now);
        if let Some(still) = still.filter(|_| c.stall.is_none()) {
            c.stall = Some(diagnose(&jobs.pools, ctx.spec, still, &jobs.progress));
            ctx.case.abort.store(true, Ordering::SeqCst);
        }
        // A stopped case whose jobs do not come back is left behind, not waited for.
        if ctx.case.aborted() && now - *stopping_since.get_or_insert(now) >= GIVE_UP {
            c.left_behind = jobs.unfinished();
            break;
        }
    }
    drop(log);
    c.hlog = hlog;
    c.steady = steady.map(|d| d.report());
    Ok(c)
}

/// One interval's histograms into the interval log, a tagged line per stage that has any.
fn write_interval(
    log: &mut IntervalLogWriter<Vec<u8>, V2DeflateSerializer>,
    interval: &StageHists,
    from: Duration,
    length: Duration,
) -> Result<(), IntervalLogWriterError<V2DeflateSerializeError>> {
    for stage in Stage::ALL {
        let h = interval.get(stage);
        if !h.is_empty() {
            log.write_histogram(h, from, length, Tag::new(stage.tag()))?;
        }
    }
    Ok(())
}

/// How long the collector waits for the jobs to hand their latencies over.
fn patience(interval: Duration) -> Duration {
    (interval / 10).min(Duration::from_millis(5))
}

/// Asks every job for the latencies it recorded and adds what they hand over into `into`
/// and the job's own `per_job`.
/// A job that does not answer within `patience` (in fsync, waiting for a slow or stuck
/// I/O, not scheduled) is not waited for: its samples land in a later interval.
fn gather(
    progress: &[JobProgress],
    into: &mut StageHists,
    per_job: &mut [&mut DirectionHists],
    spare: &mut StageCounts,
    patience: Duration,
) {
    let epochs: Vec<u64> = progress.iter().map(|p| p.hists.ask()).collect();
    let until = Instant::now() + patience;
    let pending = || {
        progress
            .iter()
            .zip(&epochs)
            .any(|(p, &e)| !p.hists.answered(e) && !p.syncing.load(Ordering::Relaxed))
    };
    while pending() && Instant::now() < until {
        std::thread::sleep(Duration::from_micros(50));
    }
    for (p, job) in progress.iter().zip(per_job.iter_mut()) {
        p.hists.take_into(into, job, spare);
    }
}

/// One detector over the case's totals (fio's `group_reporting` meaning), with the first
/// job's settings that enable steady state.
fn steady_detector(jobs: &[workloads::JobSpec]) -> Option<Detector> {
    jobs.iter()
        .find_map(|j| SteadyState::of(&j.steady).ok().flatten())
        .map(Detector::new)
}

/// What counts as progress: I/O completions, and, while a job is in fsync, pages written
/// back (a long fsync on a slow disk is no stall).
fn activity(progress: &[JobProgress], bios: u64) -> u64 {
    let syncing = progress.iter().any(|p| p.syncing.load(Ordering::Relaxed));
    let writeback = if syncing { pages_written() } else { 0 };
    let completions: u64 = progress
        .iter()
        .map(|p| p.io_completions.load(Ordering::Relaxed))
        .sum();
    completions + bios + writeback
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
    let (in_pipeline, at_engine) = (sum(|p| &p.in_pipeline), sum(|p| &p.at_engine));
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
    // Work queued while workers are busy and nothing completes is a deadlock: queued
    // behind its own pool's workers, or, where the roles share one executor (async-std's is
    // process-wide), behind another role's.
    let queued = stats.iter().any(|(_, s)| s.queued > 0);
    let busy_somewhere = stats.iter().any(|(_, s)| s.workers_busy > 0);
    let stuck = match queued && busy_somewhere {
        true => describe(|s| s.queued > 0 || s.workers_busy > 0),
        false => Vec::new(),
    };
    let busy = describe(|s| s.workers_busy > 0);
    let syncing = progress.iter().any(|p| p.syncing.load(Ordering::Relaxed));
    let (cause, what) = if !stuck.is_empty() {
        let topology = crate::names::name(&spec.topology);
        let what = format!(
            "{} with --endio {topology}: {}",
            spec.strategy,
            stuck.join("; ")
        );
        (StallCause::QueuedBehindBusyWorkers, what)
    } else if syncing {
        let what = "a job is in fsync and the kernel wrote nothing back meanwhile".to_string();
        (StallCause::Fsync, what)
    } else if at_engine > 0 {
        let what = format!(
            "{at_engine} I/O(s) submitted to the device never completed ({in_pipeline} bio(s) \
             in the pipeline): a stuck device or a lost I/O"
        );
        (StallCause::Device, what)
    } else if !busy.is_empty() {
        let what = format!("a work item that does not finish ({})", busy.join("; "));
        (StallCause::WorkItem, what)
    } else {
        let what = format!("{in_pipeline} bio(s) in the pipeline");
        (StallCause::Unknown, what)
    };
    let secs = after.as_secs_f64();
    let detail = match cause {
        StallCause::Unknown => format!("no I/O completed for {secs:.1}s with {what}"),
        _ => format!("no I/O completed for {secs:.1}s: {what}"),
    };
    StallReport {
        kind: match cause {
            StallCause::QueuedBehindBusyWorkers => StallKind::Deadlock,
            _ => StallKind::Stall,
        },
        cause,
        after_s: secs,
        detail,
        bios_in_pipeline: in_pipeline,
        pools: PoolReport::of(pools),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Stage;

    fn io_count(h: &StageHists) -> u64 {
        h.get(Stage::Io).len()
    }

    fn own(per_job: &mut [DirectionHists]) -> Vec<&mut DirectionHists> {
        per_job.iter_mut().collect()
    }

    fn one_sample(ns: u64) -> StageCounts {
        let mut counts = StageCounts::default();
        counts.record(workloads::Op::Read, Stage::Io, ns);
        counts
    }

    #[test]
    fn the_collector_waits_for_running_jobs_to_answer() {
        let jobs: Vec<JobProgress> = (0..2).map(|_| JobProgress::default()).collect();
        let (mut into, mut spare) = (StageHists::default(), StageCounts::default());
        let mut per_job = vec![DirectionHists::default(); 2];
        std::thread::scope(|s| {
            for job in &jobs {
                s.spawn(move || {
                    let mut mine = one_sample(5);
                    while job.hists.epoch() == 0 {
                        std::thread::yield_now();
                    }
                    job.hists.hand_over(&mut mine, job.hists.epoch());
                });
            }
            // Returns as soon as both have answered, long before its patience runs out.
            gather(
                &jobs,
                &mut into,
                &mut own(&mut per_job),
                &mut spare,
                Duration::from_secs(600),
            );
        });
        assert_eq!(io_count(&into), 2);
    }

    #[test]
    fn a_job_that_does_not_answer_is_not_waited_for() {
        let jobs: Vec<JobProgress> = (0..2).map(|_| JobProgress::default()).collect();
        let (mut into, mut spare) = (StageHists::default(), StageCounts::default());
        let mut per_job = vec![DirectionHists::default(); 2];
        // Job 0 handed over before (a late answer); job 1 is blocked and never answers.
        jobs[0].hists.hand_over(&mut one_sample(5), 0);
        gather(
            &jobs,
            &mut into,
            &mut own(&mut per_job),
            &mut spare,
            Duration::from_millis(1),
        );
        assert_eq!(
            io_count(&into),
            1,
            "what was there, without waiting for job 1"
        );
        let job_io = |j: &DirectionHists| j.get(workloads::Op::Read).get(Stage::Io).len();
        assert_eq!(
            (job_io(&per_job[0]), job_io(&per_job[1])),
            (1, 0),
            "each job its own"
        );
        // Job 1 comes back and answers late: its samples land in the next interval.
        let asked = jobs[1].hists.epoch();
        jobs[1].hists.hand_over(&mut one_sample(7), asked);
        let mut next = StageHists::default();
        gather(
            &jobs,
            &mut next,
            &mut own(&mut per_job),
            &mut spare,
            Duration::from_millis(1),
        );
        assert_eq!(io_count(&next), 1);
    }

    #[test]
    fn a_job_in_fsync_is_not_waited_for() {
        let jobs = [JobProgress::default()];
        jobs[0].syncing.store(true, Ordering::Relaxed);
        let (mut into, mut spare) = (StageHists::default(), StageCounts::default());
        let mut per_job = vec![DirectionHists::default(); 2];
        // Its patience would outlast the test run.
        gather(
            &jobs,
            &mut into,
            &mut own(&mut per_job),
            &mut spare,
            Duration::from_secs(600),
        );
        assert!(into.is_empty());
    }

    #[test]
    fn the_watchdog_fires_only_after_a_still_timeout() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = Watchdog::new(Duration::from_millis(100));
        assert_eq!(w.check(1, at(0)), None);
        assert_eq!(w.check(1, at(99)), None);
        assert_eq!(w.check(1, at(150)), Some(Duration::from_millis(150)));
        assert_eq!(w.check(2, at(160)), None, "activity resets it");
        assert_eq!(w.check(2, at(200)), None);
        assert_eq!(w.check(2, at(260)), Some(Duration::from_millis(100)));
        w.excuse(at(300));
        assert_eq!(w.check(2, at(350)), None, "still since the excuse only");
        assert_eq!(w.check(2, at(400)), Some(Duration::from_millis(100)));
    }
}
