//! The options that set when a job's I/Os go, as fio means them: `startdelay`, `thinktime`
//! (`thinktime_blocks`, `thinktime_blocks_type`, `thinktime_spin`), `rate_min`, `rate_process`, `flow`/`flow_id` and
//! `exitall`. The job carries them; the pipeline's pacing applies them (see each field for
//! what fio does, which is what the pipeline must do).

use std::time::Duration;

use serde::Serialize;

use super::values::flag;
use super::PerDir;
use crate::units::{parse_duration, parse_duration_us};

/// fio's `rate_process`: how a rate-limited job spaces its I/Os.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateProcess {
    /// Evenly: each I/O one I/O's worth of the rate after the previous one.
    #[default]
    Linear,
    /// Exponential gaps with the rate's mean (fio: `(1e6 / iops) * -ln(U)` µs, `iops` the
    /// rate over the direction's smallest block).
    Poisson,
}

impl RateProcess {
    pub fn names() -> Vec<&'static str> {
        vec!["linear", "poisson"]
    }

    pub fn parse(key: &str, value: &str) -> Result<RateProcess, String> {
        match value.trim() {
            "linear" => Ok(RateProcess::Linear),
            "poisson" => Ok(RateProcess::Poisson),
            v => Err(format!("{key}={v}: expected linear or poisson")),
        }
    }
}

/// fio's `thinktime_blocks_type`: what `thinktime_blocks` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkBlocks {
    /// I/Os completed (fio's default).
    #[default]
    Complete,
    /// I/Os issued.
    Issue,
}

impl ThinkBlocks {
    pub fn names() -> Vec<&'static str> {
        vec!["complete", "issue"]
    }

    pub fn parse(key: &str, value: &str) -> Result<ThinkBlocks, String> {
        match value.trim() {
            "complete" => Ok(ThinkBlocks::Complete),
            "issue" => Ok(ThinkBlocks::Issue),
            v => Err(format!("{key}={v}: expected complete or issue")),
        }
    }
}

/// When a job's I/Os go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// fio's `startdelay`: wait this long after the group starts before the job starts; a
    /// range `LOW-HIGH` is a random delay in it, drawn once per job.
    pub startdelay: (Duration, Duration),
    /// fio's `thinktime`: after every `thinktime_blocks` I/Os have been issued, let every
    /// I/O in flight complete, then stall this long (fio's `handle_thinktime`).
    pub thinktime: Duration,
    /// Of the stall, spin the CPU for this long first and sleep the rest (capped at
    /// `thinktime`, as fio caps it: [`Timing::spin`]).
    pub thinktime_spin: Duration,
    /// I/Os between stalls (default 1).
    pub thinktime_blocks: u32,
    pub thinktime_blocks_type: ThinkBlocks,
    /// fio's `rate_min` per direction, bytes/s: the job fails when a direction's
    /// bandwidth over a rate cycle (fio's default: 1 s) falls below it.
    pub rate_min: PerDir,
    pub rate_process: RateProcess,
    /// fio's `flow`: the running jobs of one `flow_id` share a count of their I/Os, and a
    /// job holds back while its share of it is above its weight's share (fio's flow.c),
    /// so their I/Os keep the ratio of the weights (0: no flow control).
    pub flow: u32,
    pub flow_id: u32,
    /// fio's `flow_sleep`: how long a held-back job waits before it asks again (unset:
    /// the harness's short default).
    pub flow_sleep: Option<Duration>,
    /// fio's `exitall`: when this job ends, end every other job of its group.
    pub exitall: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            startdelay: (Duration::ZERO, Duration::ZERO),
            thinktime: Duration::ZERO,
            thinktime_spin: Duration::ZERO,
            thinktime_blocks: 1,
            thinktime_blocks_type: ThinkBlocks::default(),
            rate_min: PerDir::default(),
            rate_process: RateProcess::default(),
            flow: 0,
            flow_id: 0,
            flow_sleep: None,
            exitall: false,
        }
    }
}

impl Timing {
    /// The spin of a stall, as fio settles it: at most the whole think time.
    pub fn spin(&self) -> Duration {
        self.thinktime_spin.min(self.thinktime)
    }

    /// The start delay of the clone seeded with `seed`: `startdelay`, or a draw from its
    /// range (the same draw for the same seed, as fio's seeded jobs do).
    pub fn start_delay(&self, seed: u64) -> Duration {
        let (lo, hi) = self.startdelay;
        let span = (hi - lo).as_nanos() as u64;
        match span {
            0 => lo,
            _ => lo + Duration::from_nanos(super::mix64(seed) % (span + 1)),
        }
    }
}

/// `startdelay=TIME` or `LOW-HIGH` (seconds unless a unit is given; fio swaps a reversed
/// range).
pub(crate) fn startdelay(key: &str, value: &str) -> Result<(Duration, Duration), String> {
    let time = |t: &str| parse_duration(t).map_err(|e| format!("{key}={value}: {e}"));
    match value.trim().split_once(['-', ':']) {
        Some((lo, hi)) if !lo.trim().is_empty() => {
            let (lo, hi) = (time(lo)?, time(hi)?);
            Ok((lo.min(hi), lo.max(hi)))
        }
        _ => time(value).map(|d| (d, d)),
    }
}

/// A think time: microseconds unless a unit is given, as fio reads it.
pub(crate) fn micros(key: &str, value: &str) -> Result<Duration, String> {
    parse_duration_us(value).map_err(|e| format!("{key}={value}: {e}"))
}

/// `exitall`: a flag, its bare name set.
pub(crate) fn exitall(key: &str, value: &str) -> Result<bool, String> {
    flag(key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startdelays_are_times_or_ranges() {
        let s = Duration::from_secs;
        assert_eq!(startdelay("d", "5"), Ok((s(5), s(5))));
        assert_eq!(startdelay("d", "2-10"), Ok((s(2), s(10))));
        assert_eq!(
            startdelay("d", "10s:2s"),
            Ok((s(2), s(10))),
            "swapped, as in fio"
        );
        assert_eq!(
            startdelay("d", "500ms"),
            Ok((Duration::from_millis(500), Duration::from_millis(500)))
        );
        assert!(startdelay("d", "soon").unwrap_err().starts_with("d=soon: "));
        assert!(startdelay("d", "-1").is_err());
    }

    #[test]
    fn think_times_are_microseconds_and_the_spin_is_capped() {
        assert_eq!(micros("t", "100"), Ok(Duration::from_micros(100)));
        assert_eq!(micros("t", "2ms"), Ok(Duration::from_millis(2)));
        let t = Timing {
            thinktime: Duration::from_micros(100),
            thinktime_spin: Duration::from_micros(500),
            ..Timing::default()
        };
        assert_eq!(t.spin(), Duration::from_micros(100));
        assert_eq!(RateProcess::parse("r", "poisson"), Ok(RateProcess::Poisson));
        assert!(RateProcess::parse("r", "bursty").is_err());
        assert_eq!(exitall("e", ""), Ok(true));
        assert_eq!(ThinkBlocks::parse("t", "issue"), Ok(ThinkBlocks::Issue));
        assert!(ThinkBlocks::parse("t", "both").is_err());
    }

    #[test]
    fn a_start_delay_range_is_drawn_once_per_seed_within_it() {
        let s = Duration::from_secs;
        let fixed = Timing {
            startdelay: (s(3), s(3)),
            ..Timing::default()
        };
        assert_eq!(fixed.start_delay(7), s(3));
        let range = Timing {
            startdelay: (s(2), s(10)),
            ..Timing::default()
        };
        let draws: Vec<Duration> = (0..50).map(|seed| range.start_delay(seed)).collect();
        assert!(draws.iter().all(|d| (s(2)..=s(10)).contains(d)));
        assert!(draws.iter().any(|d| *d != draws[0]), "seeds draw apart");
        assert_eq!(range.start_delay(9), range.start_delay(9), "seeded");
    }
}
