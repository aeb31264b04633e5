//! What a case measures: per-stage latency histograms, bytes over time, and whole-process
//! CPU time and context switches.

pub mod clock;
pub mod fiolog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::Serialize;
use workloads::Op;

/// The pipeline stages a bio passes through, each with its own histogram (and interval-log
/// tag). `*_wait` is time queued before a worker picked the item up; `*_run` is time running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    E2e,
    CsumWait,
    CsumRun,
    Io,
    EndioWait,
    EndioRun,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::E2e,
        Stage::CsumWait,
        Stage::CsumRun,
        Stage::Io,
        Stage::EndioWait,
        Stage::EndioRun,
    ];

    pub fn tag(self) -> &'static str {
        match self {
            Stage::E2e => "e2e",
            Stage::CsumWait => "csum_wait",
            Stage::CsumRun => "csum_run",
            Stage::Io => "io",
            Stage::EndioWait => "endio_wait",
            Stage::EndioRun => "endio_run",
        }
    }
}

/// Latencies are recorded in nanoseconds, 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// One histogram per stage.
#[derive(Clone)]
pub struct StageHists([Histogram<u64>; Stage::ALL.len()]);

impl Default for StageHists {
    fn default() -> Self {
        StageHists(Stage::ALL.map(|_| new_histogram()))
    }
}

impl StageHists {
    pub fn get(&self, stage: Stage) -> &Histogram<u64> {
        &self.0[stage as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Histogram::is_empty)
    }

    pub fn add(&mut self, other: &StageHists) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            mine.add(theirs).expect("same bounds");
        }
    }

    pub fn reset(&mut self) {
        self.0.iter_mut().for_each(|h| h.reset());
    }
}

/// The two directions, in the order [`DirectionHists`] and the per-direction counters keep
/// them.
pub const OPS: [Op; 2] = [Op::Read, Op::Write];

/// Where `op` sits in per-direction arrays.
#[inline]
pub fn op_index(op: Op) -> usize {
    match op {
        Op::Read => 0,
        Op::Write => 1,
    }
}

/// One [`StageHists`] per direction: a `rw=randrw` job's reads and writes apart, as fio
/// reports them.
#[derive(Clone, Default)]
pub struct DirectionHists([StageHists; 2]);

impl DirectionHists {
    pub fn get(&self, op: Op) -> &StageHists {
        &self.0[op_index(op)]
    }
}

/// HdrHistogram's layout for [`new_histogram`]'s bounds: 2048 sub-buckets (3 significant
/// digits), the lower half of each bucket after the first unused, unit 1 ns.
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;
const SUB_BUCKET_MASK: u64 = (1 << (SUB_BUCKET_HALF_MAGNITUDE + 1)) - 1;
const HIGHEST_NS: u64 = 3_600_000_000_000;
const COUNTS: usize = count_index(HIGHEST_NS) + 1;

/// The index of `ns`'s bucket, HdrHistogram's `index_for`.
const fn count_index(ns: u64) -> usize {
    let bucket = 64 - SUB_BUCKET_HALF_MAGNITUDE - 1 - (ns | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = ns >> bucket;
    (((bucket + 1) as u64) << SUB_BUCKET_HALF_MAGNITUDE) as usize + sub_bucket as usize
        - (1 << SUB_BUCKET_HALF_MAGNITUDE)
}

/// The lowest value in bucket `index`: where HdrHistogram counts it again.
fn count_value(index: usize) -> u64 {
    let half = 1usize << SUB_BUCKET_HALF_MAGNITUDE;
    if index < 2 * half {
        return index as u64;
    }
    let bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) - 1;
    (((index & (half - 1)) + half) as u64) << bucket
}

/// One stage's latencies in HdrHistogram's buckets, without its bookkeeping per sample
/// (min, max, total, resizing checks): a job records a few of these per bio. Turned into a
/// [`Histogram`] at the handover, losslessly (its figures come from the buckets).
struct Counts {
    counts: Box<[u64]>,
    /// The buckets touched, `lo..=hi` (`lo > hi`: none), so that emptying and reading leave
    /// the rest (and its memory) alone.
    lo: usize,
    hi: usize,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            counts: vec![0; COUNTS].into_boxed_slice(),
            lo: usize::MAX,
            hi: 0,
        }
    }
}

impl Counts {
    #[inline]
    fn record(&mut self, ns: u64) {
        let i = count_index(ns.clamp(1, HIGHEST_NS));
        self.counts[i] += 1;
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i);
    }

    fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    /// Adds every count into both `all` and `mine` and empties self.
    fn drain_into(&mut self, all: &mut Histogram<u64>, mine: &mut Histogram<u64>) {
        if self.is_empty() {
            return;
        }
        for (i, count) in self.counts[self.lo..=self.hi].iter_mut().enumerate() {
            if *count > 0 {
                let value = count_value(self.lo + i);
                for h in [&mut *all, &mut *mine] {
                    h.record_n(value, *count)
                        .expect("within the histogram's bounds");
                }
                *count = 0;
            }
        }
        (self.lo, self.hi) = (usize::MAX, 0);
    }

    /// Adds everything `other` holds into self and empties `other`.
    fn drain_from(&mut self, other: &mut Counts) {
        if other.is_empty() {
            return;
        }
        for i in other.lo..=other.hi {
            self.counts[i] += std::mem::take(&mut other.counts[i]);
        }
        (self.lo, self.hi) = (self.lo.min(other.lo), self.hi.max(other.hi));
        (other.lo, other.hi) = (usize::MAX, 0);
    }
}

/// What a job records as its bios retire: each stage's latencies ([`Counts`]), reads and
/// writes apart (one set per direction costs no more per sample than one set for both).
#[derive(Default)]
pub struct StageCounts([[Counts; Stage::ALL.len()]; 2]);

impl StageCounts {
    /// Records one latency of an `op` bio, in nanoseconds (0 counts as 1, the histograms'
    /// floor).
    #[inline]
    pub fn record(&mut self, op: Op, stage: Stage, ns: u64) {
        self.0[op_index(op)][stage as usize].record(ns);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().flatten().all(Counts::is_empty)
    }

    /// Adds everything into `all` (both directions together: the interval log's) and into
    /// `by_direction` (the job's own), and empties self.
    pub fn drain_into(&mut self, all: &mut StageHists, by_direction: &mut DirectionHists) {
        for (direction, mine) in self.0.iter_mut().zip(by_direction.0.iter_mut()) {
            for ((counts, a), m) in direction
                .iter_mut()
                .zip(all.0.iter_mut())
                .zip(mine.0.iter_mut())
            {
                counts.drain_into(a, m);
            }
        }
    }

    /// Adds everything `other` holds into self and empties `other`.
    fn drain_from(&mut self, other: &mut StageCounts) {
        for (mine, theirs) in self
            .0
            .iter_mut()
            .flatten()
            .zip(other.0.iter_mut().flatten())
        {
            mine.drain_from(theirs);
        }
    }
}

/// A job's latencies on their way to the collector, without a lock per sample: the job
/// records into [`StageCounts`] of its own and, once the collector has asked (a new `epoch`, at
/// the end of each interval), hands them over whole, swapping them for the emptied set the
/// collector left in the slot.
///
/// The collector waits a little for the answer, then takes what is there: a job that cannot
/// answer in time (in a long fsync, waiting for a slow or stuck I/O, descheduled) hands its
/// samples over later, and they land in the next interval. Two sets per job: if the slot
/// still holds the last handover when the job is asked again (it answered late), the job
/// acknowledges and keeps its samples for the next time.
#[derive(Default)]
pub struct HistHandover {
    /// Bumped by the collector to ask for the samples.
    epoch: AtomicU64,
    /// The last epoch the job answered.
    answered: AtomicU64,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    hists: StageCounts,
    /// The slot holds samples the collector has not taken yet.
    full: bool,
}

impl HistHandover {
    /// Job side: the epoch the collector asks for now, to compare with the last one answered.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Job side: answers `epoch`, handing `mine` over if the slot is free; `mine` comes back
    /// empty if it was handed over.
    pub fn hand_over(&self, mine: &mut StageCounts, epoch: u64) {
        let mut slot = self.slot.lock().unwrap();
        if !slot.full && !mine.is_empty() {
            std::mem::swap(&mut slot.hists, mine);
            slot.full = true;
        }
        drop(slot);
        self.answered.store(epoch, Ordering::Release);
    }

    /// Job side, as it ends: everything, whatever the slot holds (the collector takes the
    /// slot once more after the job has finished), and every later ask counts as answered.
    pub fn hand_over_all(&self, mine: &mut StageCounts) {
        let mut slot = self.slot.lock().unwrap();
        if slot.full {
            slot.hists.drain_from(mine);
        } else {
            std::mem::swap(&mut slot.hists, mine);
            slot.full = !slot.hists.is_empty();
        }
        drop(slot);
        self.answered.store(u64::MAX, Ordering::Release);
    }

    /// Collector side: asks for the samples; the epoch to wait for.
    pub fn ask(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Collector side: whether the job has answered `epoch`.
    pub fn answered(&self, epoch: u64) -> bool {
        self.answered.load(Ordering::Acquire) >= epoch
    }

    /// Collector side: adds what was handed over into `into` (every job's, this interval)
    /// and `job` (this job's, the whole case). The slot gets `spare` (empty) in exchange, so
    /// the job never waits for the adding; `spare` comes back empty.
    pub fn take_into(
        &self,
        into: &mut StageHists,
        job: &mut DirectionHists,
        spare: &mut StageCounts,
    ) {
        {
            let mut slot = self.slot.lock().unwrap();
            if !slot.full {
                return;
            }
            std::mem::swap(&mut slot.hists, spare);
            slot.full = false;
        }
        spare.drain_into(into, job);
    }
}

/// Latency summary of one stage, in microseconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Whole-process resource usage (all threads, pool workers included).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Usage {
    pub user_s: f64,
    pub sys_s: f64,
    pub voluntary_csw: u64,
    pub involuntary_csw: u64,
    /// Page faults that did and did not need I/O (fio's `majf`, `minf`); absent in older
    /// results.
    #[serde(default)]
    pub major_faults: u64,
    #[serde(default)]
    pub minor_faults: u64,
}

impl Usage {
    pub fn now() -> Usage {
        // SAFETY: getrusage fills the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        Usage {
            user_s: secs(ru.ru_utime),
            sys_s: secs(ru.ru_stime),
            voluntary_csw: ru.ru_nvcsw as u64,
            involuntary_csw: ru.ru_nivcsw as u64,
            major_faults: ru.ru_majflt as u64,
            minor_faults: ru.ru_minflt as u64,
        }
    }

    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            user_s: self.user_s - earlier.user_s,
            sys_s: self.sys_s - earlier.sys_s,
            voluntary_csw: self.voluntary_csw.saturating_sub(earlier.voluntary_csw),
            involuntary_csw: self.involuntary_csw.saturating_sub(earlier.involuntary_csw),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}

/// Pages the kernel has written back since boot (`nr_written` in /proc/vmstat): progress
/// while a job sits in fsync, where no bio of ours completes. 0 where unavailable.
pub fn pages_written() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("nr_written "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(samples: &[u64]) -> StageCounts {
        let mut h = StageCounts::default();
        samples
            .iter()
            .for_each(|&ns| h.record(Op::Read, Stage::Io, ns));
        h
    }

    fn count(h: &StageCounts) -> u64 {
        h.0.iter()
            .map(|d| d[Stage::Io as usize].counts.iter().sum::<u64>())
            .sum()
    }

    fn hist_count(h: &StageHists) -> u64 {
        h.get(Stage::Io).len()
    }

    #[test]
    fn buckets_are_hdrhistograms() {
        let h = new_histogram();
        let mut last = 0;
        let mut values: Vec<u64> = (1..5000).collect();
        values.extend((0..42).flat_map(|b| [3u64 << b, (3u64 << b) + 1, (1u64 << b) - 1]));
        values.extend([HIGHEST_NS - 1, HIGHEST_NS]);
        values.sort_unstable();
        for v in values
            .into_iter()
            .filter(|&v| (1..=HIGHEST_NS).contains(&v))
        {
            let i = count_index(v);
            assert!(i < COUNTS && i >= last, "{v}");
            last = i;
            let lowest = count_value(i);
            assert!(
                lowest <= v && h.equivalent(lowest, v),
                "{v}: bucket {i} starts at {lowest}"
            );
            assert_eq!(h.lowest_equivalent(v), lowest, "{v}");
        }
    }

    #[test]
    fn counts_become_the_histogram_direct_recording_makes() {
        let samples: Vec<u64> = (0..20_000u64)
            .map(|i| (i * 7919) % 10_000_000 + i % 3)
            .collect();
        let mut direct = new_histogram();
        let mut counts = StageCounts::default();
        for &ns in &samples {
            direct.saturating_record(ns.max(1));
            counts.record(Op::Write, Stage::E2e, ns);
        }
        counts.record(Op::Write, Stage::E2e, u64::MAX);
        direct.saturating_record(HIGHEST_NS);
        let (mut hists, mut by_direction) = (StageHists::default(), DirectionHists::default());
        counts.drain_into(&mut hists, &mut by_direction);
        let via = hists.get(Stage::E2e);
        assert_eq!(
            by_direction.get(Op::Write).get(Stage::E2e),
            via,
            "the job's own too"
        );
        assert!(by_direction.get(Op::Read).is_empty());
        assert_eq!(via.len(), direct.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(via.value_at_quantile(q), direct.value_at_quantile(q), "{q}");
        }
        assert_eq!((via.min(), via.max()), (direct.min(), direct.max()));
        assert_eq!(via.mean(), direct.mean());
        assert!(counts.is_empty(), "drained");
    }

    #[test]
    fn a_handover_moves_every_sample_once() {
        let handover = HistHandover::default();
        let mut job = DirectionHists::default();
        let (mut mine, mut interval, mut spare) = (
            with(&[0, 5, 7]),
            StageHists::default(),
            StageCounts::default(),
        );
        assert_eq!(handover.epoch(), 0, "nothing asked yet");
        let epoch = handover.ask();
        assert!(!handover.answered(epoch));
        handover.hand_over(&mut mine, handover.epoch());
        assert!(handover.answered(epoch) && mine.is_empty());
        handover.take_into(&mut interval, &mut job, &mut spare);
        assert_eq!(hist_count(&interval), 3);
        assert_eq!(interval.get(Stage::Io).min(), 1, "0 ns counts as 1");
        assert!(spare.is_empty());
        handover.take_into(&mut interval, &mut job, &mut spare);
        assert_eq!(hist_count(&interval), 3, "taken once");
        assert_eq!(
            job.get(Op::Read).get(Stage::Io).len(),
            3,
            "the job's own, once"
        );
    }

    #[test]
    fn a_late_answer_lands_in_the_next_interval() {
        let handover = HistHandover::default();
        let mut job = DirectionHists::default();
        let mut spare = StageCounts::default();
        let mut mine = with(&[10, 20]);
        // Interval 1: asked, not answered in time.
        let first = handover.ask();
        let mut one = StageHists::default();
        handover.take_into(&mut one, &mut job, &mut spare);
        assert!(one.is_empty());
        handover.hand_over(&mut mine, first);
        // Interval 2: the slot still holds the late samples; the job's new ones wait.
        mine = with(&[30]);
        let second = handover.ask();
        handover.hand_over(&mut mine, second);
        assert!(handover.answered(second));
        assert_eq!(count(&mine), 1, "kept for the next handover");
        let mut two = StageHists::default();
        handover.take_into(&mut two, &mut job, &mut spare);
        assert_eq!(hist_count(&two), 2);
        // The job ends: the rest goes.
        handover.hand_over_all(&mut mine);
        let mut last = StageHists::default();
        handover.take_into(&mut last, &mut job, &mut spare);
        assert_eq!((hist_count(&last), count(&mine)), (1, 0));
        assert!(
            handover.answered(handover.ask()),
            "an ended job answers every ask"
        );
    }

    #[test]
    fn the_last_handover_merges_into_a_full_slot() {
        let handover = HistHandover::default();
        let mut first = with(&[1, 2]);
        handover.hand_over(&mut first, handover.ask());
        let mut rest = with(&[3]);
        handover.hand_over_all(&mut rest);
        let (mut all, mut spare) = (StageHists::default(), StageCounts::default());
        let mut job = DirectionHists::default();
        handover.take_into(&mut all, &mut job, &mut spare);
        assert_eq!(hist_count(&all), 3);
        assert!(rest.is_empty());
    }
}
