//! What a case measures: per-stage latency histograms, bytes over time, and whole-process
//! CPU time and context switches.

pub mod clock;

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

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
pub struct StageHists(pub Vec<Histogram<u64>>);

impl Default for StageHists {
    fn default() -> Self {
        StageHists(Stage::ALL.iter().map(|_| new_histogram()).collect())
    }
}

impl StageHists {
    pub fn record(&mut self, stage: Stage, d: Duration) {
        let ns = (d.as_nanos() as u64).max(1);
        self.0[stage as usize].saturating_record(ns);
    }

    pub fn get(&self, stage: Stage) -> &Histogram<u64> {
        &self.0[stage as usize]
    }

    /// Adds `other` into self and empties `other`.
    pub fn drain_from(&mut self, other: &mut StageHists) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter_mut()) {
            if !theirs.is_empty() {
                mine.add(&*theirs).expect("same bounds");
                theirs.reset();
            }
        }
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
        }
    }

    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            user_s: self.user_s - earlier.user_s,
            sys_s: self.sys_s - earlier.sys_s,
            voluntary_csw: self.voluntary_csw.saturating_sub(earlier.voluntary_csw),
            involuntary_csw: self.involuntary_csw.saturating_sub(earlier.involuntary_csw),
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
