//! What a case leaves behind: the `<case>.json` schema, how its status is decided, and the
//! bandwidth over intervals (its summary and `<case>.bw.csv`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::measure::{op_index, Percentiles, Usage};
use crate::pipeline::{JobProgress, Mismatch, Pools, Topology};

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

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::VerifyFailed,
        Status::Error,
        Status::Deadlock,
        Status::Stall,
        Status::Interrupted,
    ];

    /// The status of a case from what happened to it, the most telling first: a stuck
    /// case is stuck whatever else went wrong, an interrupted one was cut short, an error
    /// stopped it, and only a case that ran to its end can have failed verification.
    pub fn decide(
        stall: Option<&StallReport>,
        interrupted: bool,
        errors: bool,
        mismatches: u64,
    ) -> Status {
        match stall.map(|s| s.kind) {
            Some(StallKind::Deadlock) => Status::Deadlock,
            Some(StallKind::Stall) => Status::Stall,
            None if interrupted => Status::Interrupted,
            None if errors => Status::Error,
            None if mismatches > 0 => Status::VerifyFailed,
            None => Status::Ok,
        }
    }
}

/// Whether the watchdog saw a deadlock or another kind of stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallKind {
    Deadlock,
    Stall,
}

/// What the watchdog found stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallCause {
    /// Work queued in a pool whose workers are all busy waiting (the 2008 patch's deadlock).
    QueuedBehindBusyWorkers,
    /// A job in fsync while the kernel wrote nothing back.
    Fsync,
    /// I/O submitted to the device never completed.
    Device,
    /// A work item that never finishes.
    WorkItem,
    /// Nothing the watchdog can name.
    Unknown,
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

impl PoolReport {
    pub fn of(pools: &Pools) -> Vec<PoolReport> {
        pools
            .stats()
            .into_iter()
            .map(|(role, stats)| PoolReport {
                role,
                stats: serde_json::to_value(stats).expect("stats serialize"),
            })
            .collect()
    }
}

/// The watchdog's account of a case that stopped making progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StallReport {
    pub kind: StallKind,
    #[serde(default = "unknown_cause")]
    pub cause: StallCause,
    pub after_s: f64,
    pub detail: String,
    pub bios_in_pipeline: u64,
    pub pools: Vec<PoolReport>,
}

fn unknown_cause() -> StallCause {
    StallCause::Unknown
}

/// What the case did to a file before measuring it (laying it out, replacing its store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preparation {
    pub file: String,
    pub action: String,
}

/// Bytes and bios counted in one direction.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Moved {
    pub bytes: u64,
    pub bios: u64,
}

/// A case's bytes and bios per direction; they sum to its `bytes` and `bios`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ByDirection {
    pub read: Moved,
    pub write: Moved,
}

impl ByDirection {
    /// Every job's counts, added up.
    pub fn of(jobs: &[JobProgress]) -> ByDirection {
        let total = |op| {
            jobs.iter()
                .map(|j| j.by_direction[op_index(op)].load())
                .fold(Moved::default(), |sum, (bytes, bios)| Moved {
                    bytes: sum.bytes + bytes,
                    bios: sum.bios + bios,
                })
        };
        ByDirection {
            read: total(workloads::Op::Read),
            write: total(workloads::Op::Write),
        }
    }
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
    /// The strategy's place in the run's list (0: the baseline); absent in older results.
    #[serde(default)]
    pub slot: Option<usize>,
    pub status: Status,
    pub error: Option<String>,
    /// The first job of the group (the only one, unless a job file ran several at once).
    pub job: serde_json::Value,
    /// Every job of the group.
    pub jobs: Vec<serde_json::Value>,
    pub files: Vec<String>,
    /// What was done to the files before the measured run, if anything.
    #[serde(default)]
    pub preparation: Vec<Preparation>,
    /// The storage behind each file: device, filesystem, block sizes, scheduler.
    pub storage: Vec<workloads::DeviceInfo>,
    /// Whether the page cache was dropped before this case (`None`: not a read case), and
    /// why not when it could not be.
    pub page_cache_dropped: Option<bool>,
    pub page_cache_note: Option<String>,
    pub bytes: u64,
    pub bios: u64,
    /// `bytes` and `bios`, reads and writes apart (absent in older results).
    #[serde(default)]
    pub by_direction: ByDirection,
    pub elapsed_s: f64,
    pub mib_s: f64,
    pub iops: f64,
    pub usage: Usage,
    pub cpu_s_per_gib: f64,
    pub vcsw_per_gib: f64,
    pub ivcsw_per_gib: f64,
    pub latency_us: BTreeMap<String, Percentiles>,
    pub bandwidth: Bandwidth,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    pub pools: Vec<PoolReport>,
    pub stall: Option<StallReport>,
    pub hlog: String,
    pub bw_csv: String,
    /// A warm-up case: run before the first counted round, listed but left out of every
    /// statistic.
    #[serde(default)]
    pub warmup: bool,
    /// What else the machine did while the case ran (absent in older results).
    #[serde(default)]
    pub noise: Option<crate::noise::Noise>,
    /// Steady-state detection, when the job asked for it (`ss_dur`).
    #[serde(default)]
    pub steady: Option<workloads::steady::SteadyReport>,
    /// fio's verify phase, of the jobs that had one: read back after the measured part and
    /// left out of its figures; its mismatches count as any others.
    #[serde(default)]
    pub verify_phase: Option<VerifyPhase>,
}

/// What a case's verify phases read back: bytes over all its jobs, in the longest phase's
/// time. With `verify_backlog`, `during_writes_bytes` of `bytes` were read back among the
/// writes (in the case's elapsed time, not the phase's); `mib_s` is the phase's own.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct VerifyPhase {
    pub jobs: usize,
    pub bytes: u64,
    #[serde(default)]
    pub during_writes_bytes: u64,
    pub elapsed_s: f64,
    pub mib_s: f64,
}

impl VerifyPhase {
    /// The phases of `outcomes`, or `None` where no job had one.
    pub fn of(outcomes: &[crate::pipeline::JobOutcome]) -> Option<VerifyPhase> {
        let phases: Vec<_> = outcomes.iter().filter_map(|o| o.verified).collect();
        if phases.is_empty() {
            return None;
        }
        let bytes = phases.iter().map(|v| v.bytes).sum();
        let during_writes_bytes = phases.iter().map(|v| v.during_writes).sum();
        let elapsed_s = phases.iter().map(|v| v.seconds).fold(0.0, f64::max);
        let after = bytes - during_writes_bytes;
        Some(VerifyPhase {
            jobs: phases.len(),
            bytes,
            during_writes_bytes,
            elapsed_s,
            mib_s: after as f64 / f64::from(1 << 20) / elapsed_s.max(1e-9),
        })
    }
}

/// Bytes and bios moved in one interval of the case.
pub struct Interval {
    pub start: Duration,
    pub length: Duration,
    pub bytes: u64,
    pub bios: u64,
}

impl Interval {
    fn mib_s(&self) -> f64 {
        let len = self.length.as_secs_f64();
        if len > 0.0 {
            self.bytes as f64 / (1 << 20) as f64 / len
        } else {
            0.0
        }
    }
}

impl Bandwidth {
    /// The bandwidth over the intervals that streamed: a closing sliver of an interval says
    /// little, and leading intervals with nothing completed are the pipeline filling up,
    /// trailing ones the end_fsync: neither is a dip in streaming.
    pub fn of(intervals: &[Interval], nominal: Duration) -> Bandwidth {
        let first = intervals.iter().position(|i| i.bytes > 0);
        let last = intervals.iter().rposition(|i| i.bytes > 0);
        let streaming = match (first, last) {
            (Some(a), Some(b)) => &intervals[a..=b],
            _ => &intervals[..0],
        };
        let rates: Vec<f64> = streaming
            .iter()
            .filter(|i| i.length >= nominal / 2)
            .map(Interval::mib_s)
            .collect();
        let interval_s = nominal.as_secs_f64();
        if rates.is_empty() {
            return Bandwidth {
                interval_s,
                ..Bandwidth::default()
            };
        }
        let n = rates.len() as f64;
        let mean = rates.iter().sum::<f64>() / n;
        let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        Bandwidth {
            interval_s,
            samples: rates.len(),
            min_mib_s: rates.iter().cloned().fold(f64::INFINITY, f64::min),
            max_mib_s: rates.iter().cloned().fold(0.0, f64::max),
            mean_mib_s: mean,
            cov: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        }
    }
}

/// `<case>.bw.csv`: one row per interval.
pub fn bw_csv(intervals: &[Interval]) -> String {
    let mut s = String::from("start_s,length_s,bytes,bios,mib_s\n");
    for i in intervals {
        s += &format!(
            "{:.6},{:.6},{},{},{:.3}\n",
            i.start.as_secs_f64(),
            i.length.as_secs_f64(),
            i.bytes,
            i.bios,
            i.mib_s()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(start_ms: u64, length_ms: u64, mib: u64) -> Interval {
        Interval {
            start: Duration::from_millis(start_ms),
            length: Duration::from_millis(length_ms),
            bytes: mib << 20,
            bios: mib,
        }
    }

    #[test]
    fn bandwidth_skips_filling_draining_and_slivers() {
        let nominal = Duration::from_millis(100);
        let intervals = [
            interval(0, 100, 0),    // filling up
            interval(100, 100, 20), // 200 MiB/s
            interval(200, 100, 10), // 100 MiB/s: the dip
            interval(300, 20, 1),   // a sliver: not a rate
            interval(320, 100, 0),  // end_fsync
        ];
        let bw = Bandwidth::of(&intervals, nominal);
        assert_eq!(bw.samples, 2);
        assert!((bw.min_mib_s - 100.0).abs() < 1e-9 && (bw.max_mib_s - 200.0).abs() < 1e-9);
        assert!((bw.mean_mib_s - 150.0).abs() < 1e-9);
        assert!((bw.cov - 50.0 / 150.0).abs() < 1e-9);
        assert_eq!(Bandwidth::of(&[], nominal).samples, 0);
        let csv = bw_csv(&intervals[1..2]);
        assert_eq!(
            csv,
            "start_s,length_s,bytes,bios,mib_s\n0.100000,0.100000,20971520,20,200.000\n"
        );
    }

    #[test]
    fn the_most_telling_status_wins() {
        let stall = |kind| StallReport {
            kind,
            cause: StallCause::Unknown,
            after_s: 1.0,
            detail: String::new(),
            bios_in_pipeline: 0,
            pools: vec![],
        };
        let deadlock = stall(StallKind::Deadlock);
        assert_eq!(
            Status::decide(Some(&deadlock), true, true, 1),
            Status::Deadlock
        );
        assert_eq!(
            Status::decide(Some(&stall(StallKind::Stall)), true, true, 1),
            Status::Stall
        );
        assert_eq!(Status::decide(None, true, true, 1), Status::Interrupted);
        assert_eq!(Status::decide(None, false, true, 1), Status::Error);
        assert_eq!(Status::decide(None, false, false, 1), Status::VerifyFailed);
        assert_eq!(Status::decide(None, false, false, 0), Status::Ok);
    }
}
