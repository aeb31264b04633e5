//! What the threads of a case share: the case's fate (errors, abort, mismatches), each job's
//! progress for the collector and the watchdog, and what a job thread starts from and ends
//! with.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use strategies::csum::Algo;
use workloads::{CsumStore, Engine, JobSpec};

use super::flow::{FlowMember, Flows};
use super::ExtentLocks;
use crate::measure::fiolog::JobLog;
use crate::measure::HistHandover;

/// Why a sector failed read verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MismatchKind {
    /// The data's checksum differs from the recorded one.
    #[serde(rename = "checksum mismatch")]
    Checksum,
    /// No checksum was ever recorded for the sector.
    #[serde(rename = "no checksum recorded")]
    NotRecorded,
    /// The sector lies past the end of a file that was cut short.
    #[serde(rename = "truncated")]
    Truncated,
}

impl std::fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MismatchKind::Checksum => "checksum mismatch",
            MismatchKind::NotRecorded => "no checksum recorded",
            MismatchKind::Truncated => "truncated",
        })
    }
}

/// A sector that failed read verification.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Mismatch {
    pub file: String,
    pub offset: u64,
    pub kind: MismatchKind,
}

/// Mismatches kept in full; beyond this they are only counted.
const MISMATCHES_KEPT: usize = 1000;

/// State shared by every thread of one case.
#[derive(Default)]
pub struct CaseState {
    /// Set to stop the case: an error or the watchdog.
    pub abort: AtomicBool,
    /// Set when the case has measured what it must before its jobs are done (fio's steady
    /// state): the jobs stop issuing as at the end of their runtime.
    done_early: AtomicBool,
    /// The run's SIGINT/SIGTERM flag: stops the case too.
    interrupted: Arc<AtomicBool>,
    /// `--inject panic@N`: the Nth csum or endio work item panics.
    panic_at: Option<u64>,
    work_items: AtomicU64,
    errors: Mutex<Vec<String>>,
    mismatches: Mutex<Vec<Mismatch>>,
    pub mismatch_count: AtomicU64,
    /// fio's flows, which the case's jobs join as they start.
    pub flows: Flows,
}

impl CaseState {
    pub fn new(interrupted: Arc<AtomicBool>, panic_at: Option<u64>) -> CaseState {
        CaseState {
            interrupted,
            panic_at,
            ..CaseState::default()
        }
    }

    /// Records an error and stops the case: the first error is the one reported.
    pub fn fail(&self, error: String) {
        self.errors.lock().unwrap().push(error);
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Ends the case's jobs as their runtime would: not an error.
    pub fn end_early(&self) {
        self.done_early.store(true, Ordering::SeqCst);
    }

    pub fn ended_early(&self) -> bool {
        self.done_early.load(Ordering::Relaxed)
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || self.interrupted.load(Ordering::Relaxed)
    }

    /// Counts one csum or endio work item; whether `--inject panic@N` picks it.
    pub(super) fn injects_panic(&self) -> Option<u64> {
        let at = self.panic_at?;
        (self.work_items.fetch_add(1, Ordering::Relaxed) + 1 == at).then_some(at)
    }

    pub(super) fn mismatch(&self, m: Mismatch) {
        self.mismatch_count.fetch_add(1, Ordering::Relaxed);
        let mut list = self.mismatches.lock().unwrap();
        if list.len() < MISMATCHES_KEPT {
            list.push(m);
        }
    }

    pub fn mismatches(&self) -> Vec<Mismatch> {
        let mut list = self.mismatches.lock().unwrap().clone();
        list.sort_by(|a, b| (&a.file, a.offset).cmp(&(&b.file, b.offset)));
        list
    }
}

/// What the collector reads from a running job. Only the job's thread writes the counters
/// (plain stores of its own totals: no read-modify-write per bio).
#[derive(Default)]
pub struct JobProgress {
    /// The job's latencies, handed over at each interval's end.
    pub hists: HistHandover,
    /// Bytes and bios counted (after the ramp).
    pub bytes: AtomicU64,
    pub bios: AtomicU64,
    /// The same, per direction ([`crate::measure::OPS`]'s order): fio reports reads and
    /// writes apart.
    pub by_direction: [DirectionCounters; 2],
    /// Submissions by the pipeline's depth at the time ([`depth_level`]), counted after
    /// the ramp; stored as the job finishes.
    pub depth_levels: [AtomicU64; DEPTH_LEVELS],
    /// I/Os the engine completed, for the watchdog.
    pub io_completions: AtomicU64,
    /// Bios currently between issue and endio completion.
    pub in_pipeline: AtomicU64,
    /// I/Os at the engine (submitted, not reaped), for the watchdog.
    pub at_engine: AtomicU64,
    /// In fsync: no bio completes meanwhile, so the watchdog looks at writeback instead.
    pub syncing: AtomicBool,
    /// In a start delay or a think time: idle on purpose, which the watchdog excuses.
    pub pausing: AtomicBool,
}

/// fio's `iodepth_level` ranges: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64 and more.
pub const DEPTH_LEVELS: usize = 7;

/// The `iodepth_level` range of `depth` bios in the pipeline.
#[inline]
pub fn depth_level(depth: usize) -> usize {
    ((usize::BITS - 1 - depth.max(1).leading_zeros()) as usize).min(DEPTH_LEVELS - 1)
}

/// One direction's bytes and bios counted (after the ramp).
#[derive(Default)]
pub struct DirectionCounters {
    pub bytes: AtomicU64,
    pub bios: AtomicU64,
}

impl DirectionCounters {
    pub fn load(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.bios.load(Ordering::Relaxed),
        )
    }
}

impl JobProgress {
    /// fsyncs one of the job's files, telling the watchdog so.
    pub(super) fn sync(&self, engine: &mut dyn Engine, file: usize) -> std::io::Result<()> {
        self.syncing.store(true, Ordering::Relaxed);
        let result = engine.sync(file);
        self.syncing.store(false, Ordering::Relaxed);
        result
    }
}

/// Everything one job thread needs.
pub struct JobInput {
    pub job: JobSpec,
    /// The clone's number among the job's clones (from 0).
    pub jobnum: u32,
    /// fio's job number in the case's group (from 1): the `N` of its log files.
    pub number: u32,
    /// The engine, over the clone's files in the order of `files`.
    pub engine: Box<dyn Engine>,
    /// The clone's files (fio's `nrfiles`, a `filename` list): one or more.
    pub files: Vec<CloneFile>,
    pub algo: Algo,
    pub seed: u64,
    /// The job's place in its flow once it runs (fio's `flow`): held by the job thread.
    pub flow: Option<FlowMember>,
    /// With `verify_backlog`: the measured pass's writes it did not read back, for the
    /// verify phase (each as a read, with its file).
    pub unverified: Vec<(usize, workloads::offsets::Io)>,
    /// Stop issuing at this instant (ramp_time + runtime).
    pub deadline: Option<Instant>,
    /// Bios finishing before this instant are not counted (fio's ramp_time).
    pub ramp_end: Option<Instant>,
}

/// One of a clone's files, as its thread uses it.
#[derive(Clone)]
pub struct CloneFile {
    pub store: Arc<CsumStore>,
    /// The locks on the file's sectors, shared by every job of the case on the same file;
    /// `None` where no I/O can overlap a write (nothing writes the file, or nothing reaches
    /// it: the null engine).
    pub extents: Option<Arc<ExtentLocks>>,
    /// The file's path, as messages name it.
    pub label: Arc<str>,
    /// Where the file's data ends: a read past it is a truncated file, whose missing
    /// sectors verification reports, not an I/O error.
    pub data_end: u64,
}

impl JobInput {
    /// The clone's files as messages about the whole clone name them: the first, and how
    /// many more.
    pub fn files_label(&self) -> String {
        match self.files.len() {
            1 => self.files[0].label.to_string(),
            n => format!("{} and {} more files", self.files[0].label, n - 1),
        }
    }

    /// Where each file's data ends.
    pub fn data_ends(&self) -> Vec<u64> {
        self.files.iter().map(|f| f.data_end).collect()
    }
}

/// What a finished job reports.
pub struct JobOutcome {
    pub start: Instant,
    pub end: Instant,
    /// Bios that never came back (a stuck pool after an abort).
    pub abandoned: u64,
    /// Bytes the pass moved (counted ones only: after ramp_time).
    pub bytes: u64,
    /// Bytes of its own writes the pass read back and verified (`verify_backlog`).
    pub read_back: u64,
    /// The verify phase that followed, for a job that has one and was not stopped.
    pub verified: Option<Verified>,
    /// fio's logs, when the job asked for any.
    pub log: Option<Box<JobLog>>,
}

/// A job's verify phase (fio's): what it read back and checked, and how long that took.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verified {
    pub bytes: u64,
    pub seconds: f64,
    /// Of `bytes`, those read back during the writes (`verify_backlog`), not in `seconds`.
    pub during_writes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_fall_in_fios_iodepth_level_ranges() {
        let levels: Vec<usize> = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 4096]
            .into_iter()
            .map(depth_level)
            .collect();
        assert_eq!(levels, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
    }
}
