//! Steady state, with fio's meaning (`steadystate` / `ss`, `ss_dur`, `ss_ramp`,
//! `ss_interval`; fio's HOWTO and steadystate.c): after `ss_ramp`, one sample of IOPS or
//! bandwidth per `ss_interval` (default 1 s) goes into a rolling window of
//! `ss_dur / ss_interval` samples; once the window is full, the job is steady, and ends,
//! as soon as the criterion over the window falls below the limit:
//!
//! - `iops:N`, `bw:N` (deviation): every sample is within N of the window's mean, i.e.
//!   max |sample − mean| < N; `N%` means N % of the mean. `bw` limits are bytes/s and
//!   take size suffixes (`bw:10m` is 10 MiB/s), as fio's do.
//! - `iops_slope:N`, `bw_slope:N`: the least-squares slope of the samples against their
//!   index (per interval) has |slope| < N; `N%` means N % of the mean per interval.
//!
//! Where this differs from fio, on purpose: a sample is the rate over its actual length
//! (fio scales by the timer's lateness instead of dividing by it), and fio's latency
//! criteria (`lat`, `lat_slope`) are refused with an error rather than half-supported.
//! A case runs one detector over all its jobs' totals, as fio does with
//! `group_reporting`.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::units::{parse_duration, parse_size};
use serde::{Deserialize, Serialize};

/// What is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Iops,
    /// Bytes per second.
    Bw,
}

/// How the window is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The largest distance of a sample from the window's mean.
    Deviation,
    /// The least-squares slope, per interval.
    Slope,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// In the quantity's unit (IOPS, bytes/s; per interval for a slope).
    Absolute(f64),
    /// Percent of the window's mean.
    Percent(f64),
}

/// One `ss=` value, e.g. `iops_slope:0.1%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criterion {
    pub quantity: Quantity,
    pub measure: Measure,
    pub limit: Limit,
}

impl Criterion {
    /// `key=text` (`steadystate=`, or its alias `ss=`); errors name the key as given.
    pub fn parse(key: &str, text: &str) -> Result<Criterion, String> {
        text.trim()
            .parse()
            .map_err(|why| format!("{key}={}: {why}", text.trim()))
    }
}

impl FromStr for Criterion {
    type Err = String;

    fn from_str(text: &str) -> Result<Criterion, String> {
        let (name, value) = text
            .split_once(':')
            .ok_or("a threshold must follow the criterion, e.g. iops:2%")?;
        let (quantity, measure) = match name.trim() {
            "iops" => (Quantity::Iops, Measure::Deviation),
            "iops_slope" => (Quantity::Iops, Measure::Slope),
            "bw" => (Quantity::Bw, Measure::Deviation),
            "bw_slope" => (Quantity::Bw, Measure::Slope),
            "lat" | "lat_slope" => {
                return Err("latency criteria are not supported; \
                     use iops, iops_slope, bw or bw_slope"
                    .into())
            }
            other => {
                return Err(format!(
                    "unknown criterion '{other}' (expected iops, iops_slope, bw or bw_slope)"
                ))
            }
        };
        let limit = parse_limit(value.trim(), quantity)
            .map_err(|why| format!("threshold '{value}' {why}"))?;
        Ok(Criterion {
            quantity,
            measure,
            limit,
        })
    }
}

fn parse_limit(value: &str, quantity: Quantity) -> Result<Limit, String> {
    let number = |t: &str| match t.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a number of 0 or more".to_string()),
        Err(_) => Err("is not a number".to_string()),
    };
    match (value.strip_suffix('%'), quantity) {
        (Some(pct), _) => number(pct).map(Limit::Percent),
        (None, Quantity::Iops) => number(value).map(Limit::Absolute),
        (None, Quantity::Bw) => parse_size(value)
            .map(|bytes| Limit::Absolute(bytes as f64))
            .map_err(|e| format!("is not a bandwidth in bytes/s: {e}")),
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match (self.quantity, self.measure) {
            (Quantity::Iops, Measure::Deviation) => "iops",
            (Quantity::Iops, Measure::Slope) => "iops_slope",
            (Quantity::Bw, Measure::Deviation) => "bw",
            (Quantity::Bw, Measure::Slope) => "bw_slope",
        };
        match self.limit {
            Limit::Absolute(v) => write!(f, "{name}:{v}"),
            Limit::Percent(v) => write!(f, "{name}:{v}%"),
        }
    }
}

/// A job's steady-state settings, once enabled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SteadyState {
    pub criterion: Criterion,
    pub dur: Duration,
    pub ramp: Duration,
    pub interval: Duration,
}

/// fio's default criterion when only `ss_dur` is given.
pub const DEFAULT_CRITERION: &str = "iops_slope:0.01%";

/// The steady-state options of a job as set (`steadystate`/`ss`, `ss_dur`, `ss_ramp`,
/// `ss_interval`), in any order: enabled once `ss_dur` is more than zero, fio's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SteadyOptions {
    #[serde(serialize_with = "as_text")]
    pub criterion: Criterion,
    #[serde(serialize_with = "as_secs")]
    pub dur: Duration,
    #[serde(serialize_with = "as_secs")]
    pub ramp: Duration,
    #[serde(serialize_with = "as_secs")]
    pub interval: Duration,
}

fn as_text<S: serde::Serializer>(c: &Criterion, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(c)
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for SteadyOptions {
    fn default() -> Self {
        SteadyOptions {
            criterion: DEFAULT_CRITERION.parse().expect("a valid default"),
            dur: Duration::ZERO,
            ramp: Duration::ZERO,
            interval: Duration::from_secs(1),
        }
    }
}

impl SteadyState {
    /// From the option values as written (`ss`, `ss_dur`, `ss_ramp`, `ss_interval`;
    /// times in seconds unless suffixed). `None` when `ss_dur` is absent or 0: fio's
    /// "disabled".
    pub fn from_options(
        ss: Option<&str>,
        dur: Option<&str>,
        ramp: Option<&str>,
        interval: Option<&str>,
    ) -> Result<Option<SteadyState>, String> {
        let mut options = SteadyOptions::default();
        let time = |option: &str, value: Option<&str>, default: Duration| match value {
            Some(v) => parse_duration(v).map_err(|e| format!("{option}: {e}")),
            None => Ok(default),
        };
        if let Some(ss) = ss {
            options.criterion = Criterion::parse("steadystate", ss)?;
        }
        options.dur = time("ss_dur", dur, options.dur)?;
        options.ramp = time("ss_ramp", ramp, options.ramp)?;
        options.interval = time("ss_interval", interval, options.interval)?;
        SteadyState::of(&options)
    }

    /// The settings `options` enable, checked: `None` when `ss_dur` is 0 (disabled); an
    /// error when the window holds too few samples for the criterion.
    pub fn of(options: &SteadyOptions) -> Result<Option<SteadyState>, String> {
        if options.dur.is_zero() {
            return Ok(None);
        }
        let spec = SteadyState {
            criterion: options.criterion,
            dur: options.dur,
            ramp: options.ramp,
            interval: options.interval,
        };
        let least = match spec.criterion.measure {
            Measure::Deviation => 1,
            Measure::Slope => 2,
        };
        if spec.interval.is_zero() || spec.window() < least {
            return Err(format!(
                "steadystate_duration={}s with steadystate_check_interval={}s gives {} \
                 sample(s); {} needs at least {least}",
                spec.dur.as_secs_f64(),
                spec.interval.as_secs_f64(),
                if spec.interval.is_zero() {
                    0
                } else {
                    spec.window()
                },
                spec.criterion,
            ));
        }
        Ok(Some(spec))
    }

    /// Samples in the rolling window.
    pub fn window(&self) -> usize {
        (self.dur.as_nanos() / self.interval.as_nanos()) as usize
    }
}

/// What the case JSON records (`steady`): the settings, whether and when steady state
/// was reached, and the last full window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteadyReport {
    /// As fio prints it, e.g. `iops_slope:0.1%`.
    pub criterion: String,
    pub dur_s: f64,
    pub ramp_s: f64,
    pub interval_s: f64,
    pub attained: bool,
    /// Time since the job started when the criterion was met (the job then ended).
    pub attained_at_s: Option<f64>,
    /// The criterion over the last full window: max deviation or |slope|, in the
    /// limit's unit. `None` if the window never filled.
    pub value: Option<f64>,
    /// The mean of the last full window (IOPS or bytes/s).
    pub mean: Option<f64>,
    /// The samples of the last window, oldest first.
    pub window: Vec<f64>,
}

/// Watches one case's totals and says when it became steady.
#[derive(Debug, Clone)]
pub struct Detector {
    spec: SteadyState,
    samples: VecDeque<f64>,
    /// Where the current sample started: (elapsed, bytes, ios).
    since: Option<(Duration, u64, u64)>,
    attained_at: Option<Duration>,
    last: Option<(f64, f64)>,
}

impl Detector {
    pub fn new(spec: SteadyState) -> Detector {
        Detector {
            spec,
            samples: VecDeque::with_capacity(spec.window()),
            since: None,
            attained_at: None,
            last: None,
        }
    }

    /// Feeds the totals so far (`bytes`, `ios` done since the job started) at `elapsed`
    /// since the start; call it at least once per `ss_interval`. Returns whether steady
    /// state has been reached: then the job should end.
    pub fn observe(&mut self, elapsed: Duration, bytes: u64, ios: u64) -> bool {
        if self.attained_at.is_some() || elapsed < self.spec.ramp {
            return self.attained_at.is_some();
        }
        let Some((start, bytes0, ios0)) = self.since else {
            self.since = Some((elapsed, bytes, ios));
            return false;
        };
        let length = elapsed - start;
        if length < self.spec.interval {
            return false;
        }
        let count = match self.spec.criterion.quantity {
            Quantity::Iops => ios.saturating_sub(ios0),
            Quantity::Bw => bytes.saturating_sub(bytes0),
        };
        self.samples.push_back(count as f64 / length.as_secs_f64());
        self.since = Some((elapsed, bytes, ios));
        if self.samples.len() > self.spec.window() {
            self.samples.pop_front();
        }
        if self.samples.len() == self.spec.window() {
            let (value, mean) = self.judge();
            self.last = Some((value, mean));
            if value < self.threshold() {
                self.attained_at = Some(elapsed);
            }
        }
        self.attained_at.is_some()
    }

    /// (criterion value, window mean) of the full window, the value in the limit's unit.
    fn judge(&self) -> (f64, f64) {
        let n = self.samples.len() as f64;
        let mean = self.samples.iter().sum::<f64>() / n;
        let raw = match self.spec.criterion.measure {
            Measure::Deviation => self
                .samples
                .iter()
                .map(|s| (s - mean).abs())
                .fold(0.0, f64::max),
            Measure::Slope => {
                // Least squares against x = 0, 1, ..., n−1 (equally spaced, as in fio).
                let x_mean = (n - 1.0) / 2.0;
                let (sxy, sxx) =
                    self.samples
                        .iter()
                        .enumerate()
                        .fold((0.0, 0.0), |(sxy, sxx), (i, y)| {
                            let dx = i as f64 - x_mean;
                            (sxy + dx * (y - mean), sxx + dx * dx)
                        });
                (sxy / sxx).abs()
            }
        };
        match self.spec.criterion.limit {
            Limit::Absolute(_) => (raw, mean),
            Limit::Percent(_) => (100.0 * raw / mean, mean),
        }
    }

    /// The limit, in the unit `judge` returns.
    fn threshold(&self) -> f64 {
        match self.spec.criterion.limit {
            Limit::Absolute(v) | Limit::Percent(v) => v,
        }
    }

    pub fn report(&self) -> SteadyReport {
        let full = self.last.is_some();
        SteadyReport {
            criterion: self.spec.criterion.to_string(),
            dur_s: self.spec.dur.as_secs_f64(),
            ramp_s: self.spec.ramp.as_secs_f64(),
            interval_s: self.spec.interval.as_secs_f64(),
            attained: self.attained_at.is_some(),
            attained_at_s: self.attained_at.map(|t| t.as_secs_f64()),
            value: self.last.map(|(v, _)| v),
            mean: self.last.map(|(_, m)| m),
            window: if full {
                self.samples.iter().copied().collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ss: &str, dur: &str, ramp: &str) -> SteadyState {
        SteadyState::from_options(Some(ss), Some(dur), Some(ramp), None)
            .unwrap()
            .unwrap()
    }

    /// Feeds one sample per second of the given IOPS (4 KiB each) from t = `start` s.
    fn feed(d: &mut Detector, start: u64, iops: &[u64]) -> Option<u64> {
        let (mut ios, mut t) = (0, start);
        d.observe(Duration::from_secs(t), ios * 4096, ios);
        for &rate in iops {
            ios += rate;
            t += 1;
            if d.observe(Duration::from_secs(t), ios * 4096, ios) {
                return Some(t);
            }
        }
        None
    }

    #[test]
    fn parses_fios_examples_and_its_parser_tests() {
        // fio's examples/steadystate.fio.
        let write = spec("iops:10%", "30s", "10s");
        assert_eq!(write.criterion.limit, Limit::Percent(10.0));
        assert_eq!((write.window(), write.ramp), (30, Duration::from_secs(10)));
        let read = spec("bw_slope:1%", "10s", "5s");
        assert_eq!(
            (read.criterion.quantity, read.criterion.measure),
            (Quantity::Bw, Measure::Slope)
        );
        // t/steadystate_tests.py's parsing cases.
        for (ss, limit) in [
            ("iops:10", Limit::Absolute(10.0)),
            ("iops:10%", Limit::Percent(10.0)),
            ("iops:.1%", Limit::Percent(0.1)),
            ("bw:10%", Limit::Percent(10.0)),
            ("bw:.1%", Limit::Percent(0.1)),
            ("bw:12", Limit::Absolute(12.0)),
            ("bw:10m", Limit::Absolute(10.0 * 1048576.0)),
        ] {
            assert_eq!(ss.parse::<Criterion>().unwrap().limit, limit, "{ss}");
        }
        assert_eq!(read.criterion.to_string(), "bw_slope:1%");
        assert_eq!("bw:1k".parse::<Criterion>().unwrap().to_string(), "bw:1024");
        // ss_dur alone: fio's default criterion and interval; no ss_dur: disabled.
        let default = SteadyState::from_options(None, Some("5"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(default.criterion.to_string(), "iops_slope:0.01%");
        assert_eq!(
            (default.window(), default.interval),
            (5, Duration::from_secs(1))
        );
        assert_eq!(
            SteadyState::from_options(Some("iops:1"), None, None, None),
            Ok(None)
        );
        assert_eq!(
            SteadyState::from_options(None, Some("0"), None, None),
            Ok(None)
        );
        let every_5s = SteadyState::from_options(None, Some("300s"), None, Some("30s"));
        assert_eq!(every_5s.unwrap().unwrap().window(), 10);
    }

    #[test]
    fn bad_values_are_named() {
        let err = |ss: &str, dur: &str, interval: Option<&str>| {
            SteadyState::from_options(Some(ss), Some(dur), None, interval).unwrap_err()
        };
        let e = err("iops", "10", None);
        assert!(
            e.contains("steadystate=iops") && e.contains("threshold must follow"),
            "{e}"
        );
        let e = err("iopz:1", "10", None);
        assert!(e.contains("unknown criterion 'iopz'"), "{e}");
        let e = err("iops:x%", "10", None);
        assert!(e.contains("threshold 'x%' is not a number"), "{e}");
        let e = err("iops:-1", "10", None);
        assert!(e.contains("'-1' must be a number of 0 or more"), "{e}");
        let e = err("bw:fast", "10", None);
        assert!(e.contains("'fast' is not a bandwidth"), "{e}");
        let e = err("lat:1ms", "10", None);
        assert!(e.contains("latency criteria are not supported"), "{e}");
        let e = err("iops:1", "ten", None);
        assert!(e.starts_with("ss_dur: 'ten'"), "{e}");
        let e = err("iops_slope:1%", "1", None);
        assert!(
            e.contains("gives 1 sample(s); iops_slope:1% needs at least 2"),
            "{e}"
        );
        let e = err("iops:1%", "10", Some("0"));
        assert!(e.contains("gives 0 sample(s)"), "{e}");
        let e = err("iops:1%", "10", Some("20s"));
        assert!(e.contains("gives 0 sample(s)"), "{e}");
    }

    #[test]
    fn deviation_is_the_largest_distance_from_the_mean() {
        // Window 100 102 98 100: mean 100, max deviation 2 = 2 %; the limit is strict.
        let samples = [100, 102, 98, 100];
        for (ss, steady) in [
            ("iops:2%", false),
            ("iops:2.1%", true),
            ("iops:2", false),
            ("iops:3", true),
        ] {
            let mut d = Detector::new(spec(ss, "4", "0"));
            assert_eq!(feed(&mut d, 0, &samples).is_some(), steady, "{ss}");
            let r = d.report();
            assert_eq!((r.mean, r.window.len()), (Some(100.0), 4), "{ss}");
        }
        let mut d = Detector::new(spec("iops:2%", "4", "0"));
        feed(&mut d, 0, &samples);
        assert!((d.report().value.unwrap() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn slope_is_least_squares_per_interval() {
        // 100..104: slope 1 per interval, mean 102, 0.980 % of the mean.
        let rising = [100, 101, 102, 103, 104];
        for (ss, steady) in [
            ("iops_slope:1%", true),
            ("iops_slope:0.98%", false),
            ("iops_slope:1", false),
            ("iops_slope:1.01", true),
        ] {
            let mut d = Detector::new(spec(ss, "5", "0"));
            assert_eq!(feed(&mut d, 0, &rising).is_some(), steady, "{ss}");
        }
        // Falling counts the same: |slope|. 110 104 100 98 98: slope −3.0 (hand-computed:
        // Σ(x−2)(y−102) = −30, Σ(x−2)² = 10).
        let mut d = Detector::new(spec("iops_slope:3.1", "5", "0"));
        assert_eq!(feed(&mut d, 0, &[110, 104, 100, 98, 98]), Some(5));
        assert!((d.report().value.unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_window_rolls_and_the_ramp_is_not_sampled() {
        // Ramping up, then flat at 1000: with a 3 s window and a 1 % deviation limit the
        // first all-flat window is seconds 4–6, complete at t = 6.
        let climb = [200, 600, 900, 1000, 1000, 1000, 1000];
        let mut d = Detector::new(spec("iops:1%", "3", "0"));
        assert_eq!(feed(&mut d, 0, &climb), Some(6));
        let r = d.report();
        assert!(r.attained && r.attained_at_s == Some(6.0));
        assert_eq!(r.window, vec![1000.0; 3]);
        // ss_ramp=3: the climb before t = 3 is never sampled; sampling starts at 3.
        let mut d = Detector::new(spec("iops:1%", "3", "3"));
        assert_eq!(feed(&mut d, 0, &[1, 5000, 9, 1000, 1000, 1000]), Some(6));
        // After steady state it stays steady.
        assert!(d.observe(Duration::from_secs(7), 0, 0));
    }

    #[test]
    fn a_job_that_never_settles_reports_why() {
        let mut d = Detector::new(spec("bw:1%", "3", "0"));
        assert_eq!(feed(&mut d, 0, &[100, 200, 100, 200, 100]), None);
        let r = d.report();
        assert!(!r.attained && r.attained_at_s.is_none());
        // Last window 100 200 100 (× 4 KiB/s): mean 133.3, max deviation 66.7 = 50 %.
        assert!((r.value.unwrap() - 50.0).abs() < 1e-9, "{r:?}");
        assert!((r.mean.unwrap() - 4096.0 * 400.0 / 3.0).abs() < 1e-6);
        // One that never filled its window has no value.
        let mut d = Detector::new(spec("bw:1%", "10", "0"));
        feed(&mut d, 0, &[100, 100]);
        let r = d.report();
        assert_eq!((r.value, r.mean, r.window.len()), (None, None, 0));
    }

    #[test]
    fn samples_are_rates_over_their_real_length() {
        // Observed every 300 ms: each sample closes at the first look 1 s or more after it
        // opened (1.2 s), and 1200 ios in 1.2 s is 1000 IOPS.
        let mut d = Detector::new(spec("iops:0.1%", "2", "0"));
        let mut reached = None;
        for step in 0..=10u64 {
            let t = Duration::from_millis(300 * step);
            if d.observe(t, 0, step * 300) {
                reached = Some(t);
                break;
            }
        }
        assert_eq!(reached, Some(Duration::from_millis(2400)));
        assert_eq!(d.report().window, vec![1000.0, 1000.0]);
    }
}
