//! Turns case results into the comparison: one row per (strategy, topology), medians over
//! the counted repeats that ended ok, and for every metric the paired ratio to the
//! baseline (the first row) with its 95 % interval and verdict (how: `stats`).
//!
//! Pairs are (baseline repeat i, candidate repeat i), both ok; with job groups, the k-th
//! case of a strategy in repeat i pairs with the baseline's k-th in repeat i. Latency
//! percentiles are compared per repeat, paired like everything else (each repeat's own
//! HDR percentile), not from histograms merged over repeats: merging would hide the
//! run-to-run spread the interval must account for.
//!
//! Warm-up cases are listed (`warmups`) and left out of everything else. Outlier
//! repeats, cases measured under interference and cases that never became steady are
//! named in the row, never dropped.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::case::{CaseResult, Status};
use crate::pipeline::Topology;
use crate::stats::{self, Comparison, Polarity};

/// What the comparison depends on besides the results: the lead wires
/// `--noise-threshold`; a fixed seed makes `harness report` reproduce `compare`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub noise_threshold: f64,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            noise_threshold: stats::DEFAULT_NOISE_THRESHOLD,
            seed: stats::DEFAULT_SEED,
        }
    }
}

/// The metrics compared with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    MibS,
    Iops,
    E2eP50,
    E2eP99,
    E2eP999,
    CpuSPerGib,
    /// Voluntary + involuntary context switches per GiB.
    CswPerGib,
    VcswPerGib,
    IvcswPerGib,
    /// The worst 100 ms interval's bandwidth.
    MinIntervalMibS,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::MibS,
        Metric::Iops,
        Metric::E2eP50,
        Metric::E2eP99,
        Metric::E2eP999,
        Metric::CpuSPerGib,
        Metric::CswPerGib,
        Metric::VcswPerGib,
        Metric::IvcswPerGib,
        Metric::MinIntervalMibS,
    ];

    /// The prefix of its `<metric>_ratio`, `_ci95_lo`, ... fields.
    pub fn name(self) -> &'static str {
        match self {
            Metric::MibS => "mib_s",
            Metric::Iops => "iops",
            Metric::E2eP50 => "e2e_p50",
            Metric::E2eP99 => "e2e_p99",
            Metric::E2eP999 => "e2e_p999",
            Metric::CpuSPerGib => "cpu_s_per_gib",
            Metric::CswPerGib => "csw_per_gib",
            Metric::VcswPerGib => "vcsw_per_gib",
            Metric::IvcswPerGib => "ivcsw_per_gib",
            Metric::MinIntervalMibS => "min_interval_mib_s",
        }
    }

    /// How a sentence names it.
    pub fn label(self) -> &'static str {
        match self {
            Metric::MibS => "throughput",
            Metric::Iops => "IOPS",
            Metric::E2eP50 => "e2e p50",
            Metric::E2eP99 => "e2e p99",
            Metric::E2eP999 => "e2e p99.9",
            Metric::CpuSPerGib => "CPU per GiB",
            Metric::CswPerGib => "context switches per GiB",
            Metric::VcswPerGib => "voluntary context switches",
            Metric::IvcswPerGib => "involuntary context switches",
            Metric::MinIntervalMibS => "worst-interval bandwidth",
        }
    }

    /// How the table's verdict column names it.
    pub fn short(self) -> &'static str {
        match self {
            Metric::MibS => "MiB/s",
            Metric::Iops => "IOPS",
            Metric::E2eP50 => "p50",
            Metric::E2eP99 => "p99",
            Metric::E2eP999 => "p99.9",
            Metric::CpuSPerGib => "CPU",
            Metric::CswPerGib => "csw",
            Metric::VcswPerGib => "vcsw",
            Metric::IvcswPerGib => "ivcsw",
            Metric::MinIntervalMibS => "min MiB/s",
        }
    }

    /// Whether people read it in the table's verdict column and the sentences. IOPS
    /// follows throughput for a fixed block size, and csw is vcsw + ivcsw: both are in
    /// the exports, but saying them again would only repeat.
    pub fn spoken(self) -> bool {
        !matches!(self, Metric::Iops | Metric::CswPerGib)
    }

    pub fn polarity(self) -> Polarity {
        match self {
            Metric::MibS | Metric::Iops | Metric::MinIntervalMibS => Polarity::HigherIsFaster,
            Metric::E2eP50 | Metric::E2eP99 | Metric::E2eP999 => Polarity::LowerIsFaster,
            Metric::CpuSPerGib | Metric::CswPerGib | Metric::VcswPerGib | Metric::IvcswPerGib => {
                Polarity::Cost
            }
        }
    }

    /// Its value in one case; NaN where the case did not measure it.
    pub fn of(self, r: &CaseResult) -> f64 {
        let e2e = |pick: fn(&crate::measure::Percentiles) -> f64| {
            r.latency_us.get("e2e").map(pick).unwrap_or(f64::NAN)
        };
        match self {
            Metric::MibS => r.mib_s,
            Metric::Iops => r.iops,
            Metric::E2eP50 => e2e(|p| p.p50_us),
            Metric::E2eP99 => e2e(|p| p.p99_us),
            Metric::E2eP999 => e2e(|p| p.p999_us),
            Metric::CpuSPerGib => r.cpu_s_per_gib,
            Metric::CswPerGib => r.vcsw_per_gib + r.ivcsw_per_gib,
            Metric::VcswPerGib => r.vcsw_per_gib,
            Metric::IvcswPerGib => r.ivcsw_per_gib,
            Metric::MinIntervalMibS if r.bandwidth.samples > 0 => r.bandwidth.min_mib_s,
            Metric::MinIntervalMibS => f64::NAN,
        }
    }
}

/// Every metric against the baseline. Serialized flat, as the exports name them:
/// `<metric>_ratio`, `<metric>_ci95_lo`, `<metric>_ci95_hi`, `<metric>_verdict`,
/// `<metric>_pairs`.
#[derive(Debug, Clone, PartialEq)]
pub struct VsBaseline(pub [Comparison; Metric::ALL.len()]);

impl VsBaseline {
    pub fn get(&self, metric: Metric) -> &Comparison {
        &self.0[metric as usize]
    }
}

impl Serialize for VsBaseline {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5 * Metric::ALL.len()))?;
        for metric in Metric::ALL {
            let c = self.get(metric);
            let name = metric.name();
            map.serialize_entry(&format!("{name}_ratio"), &c.ratio)?;
            map.serialize_entry(&format!("{name}_ci95_lo"), &c.ci95_lo)?;
            map.serialize_entry(&format!("{name}_ci95_hi"), &c.ci95_hi)?;
            map.serialize_entry(&format!("{name}_verdict"), &c.verdict)?;
            map.serialize_entry(&format!("{name}_pairs"), &c.pairs)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The canonical spec, every knob spelled out.
    pub strategy: String,
    /// The spec as given (what sentences call it).
    pub spec: String,
    pub topology: Topology,
    /// Counted cases (warm-ups are not).
    pub runs: usize,
    pub warmups: usize,
    /// Counted cases that did not end `ok`, by status (e.g. "deadlock x1").
    pub problems: Vec<String>,
    pub mib_s_median: f64,
    pub mib_s_min: f64,
    pub mib_s_max: f64,
    pub e2e_p50_us: f64,
    pub e2e_p99_us: f64,
    pub e2e_p999_us: f64,
    pub cpu_s_per_gib: f64,
    pub vcsw_per_gib: f64,
    pub ivcsw_per_gib: f64,
    /// The lowest per-interval bandwidth seen in any run: the worst dip.
    pub min_interval_mib_s: f64,
    #[serde(flatten)]
    pub vs_baseline: VsBaseline,
    /// Repeats whose throughput lies outside 1.5 IQR of this strategy's ok repeats.
    pub outlier_repeats: Vec<u32>,
    /// Repeats measured under interference (noise::INTERFERENCE_PCT).
    pub interference_repeats: Vec<u32>,
    /// Repeats that asked for steady state and never reached it.
    pub unsteady_repeats: Vec<u32>,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::VerifyFailed => "verify_failed",
        Status::Error => "error",
        Status::Deadlock => "deadlock",
        Status::Stall => "stall",
        Status::Interrupted => "interrupted",
    }
}

/// One strategy's cases: the counted ones (in run order) and how many warm-ups it had.
struct Group<'a> {
    slot: Option<usize>,
    strategy: String,
    topology: Topology,
    counted: Vec<&'a CaseResult>,
    warmups: usize,
}

fn groups(results: &[CaseResult]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group> = Vec::new();
    for r in results {
        // By the strategy's place in the run's list where recorded: the same spec given
        // twice (an A/A test) is two strategies.
        let i = match groups
            .iter()
            .position(|g| g.slot == r.slot && g.strategy == r.strategy && g.topology == r.topology)
        {
            Some(i) => i,
            None => {
                groups.push(Group {
                    slot: r.slot,
                    strategy: r.strategy.clone(),
                    topology: r.topology,
                    counted: Vec::new(),
                    warmups: 0,
                });
                groups.len() - 1
            }
        };
        if r.warmup {
            groups[i].warmups += 1;
        } else {
            groups[i].counted.push(r);
        }
    }
    groups
}

/// Each case keyed by (repeat, its place among this strategy's cases of that repeat).
fn keyed<'a>(cases: &[&'a CaseResult]) -> Vec<((u32, usize), &'a CaseResult)> {
    let mut out: Vec<((u32, usize), &CaseResult)> = Vec::new();
    for &c in cases {
        let place = out.iter().filter(|((r, _), _)| *r == c.repeat).count();
        out.push(((c.repeat, place), c));
    }
    out
}

/// (baseline, candidate) cases of the same repeat (and place), both ok.
fn ok_pairs<'a>(
    base: &[&'a CaseResult],
    cand: &[&'a CaseResult],
) -> Vec<(&'a CaseResult, &'a CaseResult)> {
    let base = keyed(base);
    keyed(cand)
        .into_iter()
        .filter_map(|(key, c)| {
            let (_, b) = base.iter().find(|(k, _)| *k == key)?;
            (b.status == Status::Ok && c.status == Status::Ok).then_some((*b, c))
        })
        .collect()
}

fn vs_baseline(
    base: &[&CaseResult],
    group: &Group,
    is_baseline: bool,
    settings: &Settings,
) -> VsBaseline {
    let pairs = ok_pairs(base, &group.counted);
    VsBaseline(Metric::ALL.map(|metric| {
        if is_baseline {
            return Comparison::baseline(pairs.len());
        }
        let values: Vec<(f64, f64)> = pairs
            .iter()
            .map(|(b, c)| (metric.of(b), metric.of(c)))
            .collect();
        stats::compare(
            &values,
            metric.polarity(),
            settings.noise_threshold,
            settings.seed,
        )
    }))
}

fn problems(counted: &[&CaseResult]) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    for r in counted.iter().filter(|r| r.status != Status::Ok) {
        let n = counted.iter().filter(|x| x.status == r.status).count();
        let label = format!("{} x{n}", status_name(r.status));
        if !problems.contains(&label) {
            problems.push(label);
        }
    }
    problems
}

fn repeats_where(cases: &[&CaseResult], flagged: impl Fn(&CaseResult) -> bool) -> Vec<u32> {
    let mut repeats: Vec<u32> = cases
        .iter()
        .filter(|c| flagged(c))
        .map(|c| c.repeat)
        .collect();
    repeats.dedup();
    repeats
}

fn row(group: &Group, base: &[&CaseResult], is_baseline: bool, settings: &Settings) -> Row {
    let ok: Vec<&CaseResult> = group
        .counted
        .iter()
        .copied()
        .filter(|r| r.status == Status::Ok)
        .collect();
    let median_of = |metric: Metric| median(ok.iter().map(|r| metric.of(r)).collect());
    let mibs: Vec<f64> = ok.iter().map(|r| r.mib_s).collect();
    let outliers = stats::tukey_outliers(&mibs);
    Row {
        strategy: group.strategy.clone(),
        spec: group
            .counted
            .first()
            .map_or_else(|| group.strategy.clone(), |c| c.spec.clone()),
        topology: group.topology,
        runs: group.counted.len(),
        warmups: group.warmups,
        problems: problems(&group.counted),
        mib_s_median: median(mibs.clone()),
        mib_s_min: mibs.iter().cloned().fold(f64::NAN, f64::min),
        mib_s_max: mibs.iter().cloned().fold(f64::NAN, f64::max),
        e2e_p50_us: median_of(Metric::E2eP50),
        e2e_p99_us: median_of(Metric::E2eP99),
        e2e_p999_us: median_of(Metric::E2eP999),
        cpu_s_per_gib: median_of(Metric::CpuSPerGib),
        vcsw_per_gib: median_of(Metric::VcswPerGib),
        ivcsw_per_gib: median_of(Metric::IvcswPerGib),
        min_interval_mib_s: ok
            .iter()
            .map(|r| Metric::MinIntervalMibS.of(r))
            .fold(f64::NAN, f64::min),
        vs_baseline: vs_baseline(base, group, is_baseline, settings),
        outlier_repeats: outliers.iter().map(|&i| ok[i].repeat).collect(),
        interference_repeats: repeats_where(&group.counted, |c| {
            c.noise.as_ref().is_some_and(|n| n.interference)
        }),
        unsteady_repeats: repeats_where(&group.counted, |c| {
            c.steady.as_ref().is_some_and(|s| !s.attained)
        }),
    }
}

/// One row per (strategy, topology), in order of first appearance; the first is the
/// baseline. Medians and ratios come from the counted runs that finished `ok`; the others
/// are counted in `problems`.
pub fn rows_with(results: &[CaseResult], settings: &Settings) -> Vec<Row> {
    let groups = groups(results);
    let base: &[&CaseResult] = groups.first().map_or(&[], |g| &g.counted);
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| row(g, base, i == 0, settings))
        .collect()
}

/// [`rows_with`] the default settings (2 % noise threshold, the fixed seed).
pub fn rows(results: &[CaseResult]) -> Vec<Row> {
    rows_with(results, &Settings::default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::Verdict;

    #[test]
    fn medians_handle_even_odd_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    /// A case result with the figures a summary reads; the rest empty.
    pub(crate) fn case(strategy: &str, repeat: u32, mib_s: f64, cpu: f64) -> CaseResult {
        serde_json::from_value(serde_json::json!({
            "case": format!("{strategy}-r{repeat}"), "strategy": strategy,
            "spec": strategy.split(':').next().unwrap(), "topology": "separate",
            "repeat": repeat, "status": "ok", "error": null, "job": {}, "jobs": [],
            "files": [], "storage": [], "page_cache_dropped": null, "page_cache_note": null,
            "bytes": 1u64 << 30, "bios": 1024, "elapsed_s": 1024.0 / mib_s, "mib_s": mib_s,
            "iops": mib_s, "usage": {"user_s": cpu, "sys_s": 0.0, "voluntary_csw": 10,
            "involuntary_csw": 0}, "cpu_s_per_gib": cpu, "vcsw_per_gib": 10.0,
            "ivcsw_per_gib": 0.0,
            "latency_us": {"e2e": {"count": 1024, "mean_us": 500.0, "p50_us": 400.0,
                "p90_us": 800.0, "p99_us": 1000.0, "p999_us": 2000.0, "max_us": 3000.0}},
            "bandwidth": {"interval_s": 0.1, "samples": 10, "min_mib_s": mib_s / 2.0,
                "max_mib_s": mib_s, "mean_mib_s": mib_s, "cov": 0.1},
            "mismatch_count": 0, "mismatches": [], "pools": [], "stall": null,
            "hlog": "", "bw_csv": ""
        }))
        .expect("a valid case result")
    }

    /// Interleaved rounds of inline (baseline) and a pool 20 % faster with 1.3× the CPU,
    /// under ±10 % machine drift that both see.
    fn interleaved(rounds: u32) -> Vec<CaseResult> {
        let drift = [1.0, 0.9, 1.1, 0.95, 1.05, 1.0, 0.92];
        (1..=rounds)
            .flat_map(|r| {
                let d = drift[(r as usize - 1) % drift.len()];
                let jitter = 1.0 + 0.01 * f64::from(r % 3);
                [
                    case("inline", r, 2000.0 * d, 0.2),
                    case(
                        "kthread:max_workers=4",
                        r,
                        2400.0 * d * jitter,
                        0.26 / jitter,
                    ),
                ]
            })
            .collect()
    }

    #[test]
    fn a_real_difference_under_shared_drift_gets_its_verdict() {
        let rows = rows(&interleaved(5));
        assert_eq!(rows.len(), 2);
        let (base, pool) = (&rows[0], &rows[1]);
        assert_eq!(
            base.vs_baseline.get(Metric::MibS).verdict,
            Verdict::Baseline
        );
        let mibs = pool.vs_baseline.get(Metric::MibS);
        assert_eq!((mibs.pairs, mibs.verdict), (5, Verdict::Faster), "{mibs:?}");
        // The geometric mean of the paired ratios 1.2 × (1.01, 1.02, 1, 1.01, 1.02).
        let truth = 1.2 * (1.01f64 * 1.02 * 1.01 * 1.02).powf(1.0 / 5.0);
        assert!((mibs.ratio - truth).abs() < 1e-12, "{mibs:?}");
        assert!(mibs.ci95_lo < mibs.ratio && mibs.ratio < mibs.ci95_hi);
        // Drift of ±10 % would swamp an unpaired comparison; paired, the interval is ±1 %.
        assert!(mibs.relative_half_width() < 0.02, "{mibs:?}");
        assert_eq!(
            pool.vs_baseline.get(Metric::CpuSPerGib).verdict,
            Verdict::More
        );
        assert_eq!(
            pool.vs_baseline.get(Metric::VcswPerGib).verdict,
            Verdict::Same
        );
        // Both zero: the same, not missing.
        let ivcsw = pool.vs_baseline.get(Metric::IvcswPerGib);
        assert_eq!((ivcsw.ratio, ivcsw.verdict), (1.0, Verdict::Same));
        assert_eq!(pool.spec, "kthread");
        assert!(pool.outlier_repeats.is_empty() && pool.interference_repeats.is_empty());
    }

    #[test]
    fn an_identical_pair_of_strategies_is_the_same() {
        let results: Vec<CaseResult> = interleaved(4)
            .into_iter()
            .map(|mut c| {
                if c.strategy == "inline" {
                    c.strategy = "inline:copy".into();
                } else {
                    c.mib_s *= 2000.0 / 2400.0;
                }
                c
            })
            .collect();
        let rows = rows(&results);
        let mibs = rows[1].vs_baseline.get(Metric::MibS);
        assert_eq!(mibs.verdict, Verdict::Same, "{mibs:?}");
        assert!(mibs.ci95_lo <= 1.0 && 1.0 <= mibs.ci95_hi, "{mibs:?}");
    }

    #[test]
    fn pairs_need_both_repeats_ok_and_warm_ups_are_left_out() {
        let mut results = interleaved(4);
        results[3].status = Status::Deadlock; // the pool's repeat 2
        let mut warm = case("inline", 0, 10.0, 9.0);
        warm.warmup = true;
        results.insert(0, warm);
        let rows = rows(&results);
        assert_eq!((rows[0].runs, rows[0].warmups), (4, 1));
        // The warm-up's 10 MiB/s is not the minimum.
        assert_eq!(rows[0].mib_s_min, 2000.0 * 0.9);
        assert_eq!(rows[1].problems, vec!["deadlock x1"]);
        assert_eq!(rows[1].vs_baseline.get(Metric::MibS).pairs, 3);
        assert_eq!(rows[0].vs_baseline.get(Metric::MibS).pairs, 4);
    }

    #[test]
    fn fewer_than_three_pairs_is_unknown_never_a_guess() {
        let rows = rows(&interleaved(2));
        let mibs = rows[1].vs_baseline.get(Metric::MibS);
        assert_eq!((mibs.pairs, mibs.verdict), (2, Verdict::Unknown));
        assert!(mibs.ci95_lo.is_nan() && mibs.ratio > 1.0);
    }

    #[test]
    fn outliers_interference_and_unsteady_repeats_are_named() {
        let mut results = interleaved(6);
        // The pool's repeat 4 ran at a third of its speed; its repeat 2 had a neighbour.
        results[7].mib_s /= 3.0;
        results[3].noise = Some(crate::noise::Noise {
            interference: true,
            ..Default::default()
        });
        results[5].steady = Some(workloads::steady::SteadyReport {
            criterion: "iops:1%".into(),
            dur_s: 5.0,
            ramp_s: 0.0,
            interval_s: 1.0,
            attained: false,
            attained_at_s: None,
            value: Some(4.0),
            mean: Some(1000.0),
            window: vec![],
        });
        let rows = rows(&results);
        assert_eq!(rows[1].outlier_repeats, vec![4]);
        assert_eq!(rows[1].interference_repeats, vec![2]);
        assert_eq!(rows[1].unsteady_repeats, vec![3]);
        // Flagged, not dropped: all six pairs still count.
        assert_eq!(rows[1].vs_baseline.get(Metric::MibS).pairs, 6);
    }

    #[test]
    fn the_json_carries_every_metric_flat() {
        let rows = rows(&interleaved(3));
        let v = serde_json::to_value(&rows).unwrap();
        for metric in Metric::ALL {
            for field in ["ratio", "ci95_lo", "ci95_hi", "verdict", "pairs"] {
                let key = format!("{}_{field}", metric.name());
                assert!(v[1].get(&key).is_some(), "{key}");
            }
        }
        assert_eq!(v[1]["mib_s_verdict"], "faster");
        assert_eq!(v[0]["mib_s_verdict"], "baseline");
        assert!(v[0]["mib_s_ci95_lo"].is_null());
    }

    #[test]
    fn the_same_seed_gives_the_same_intervals() {
        let results = interleaved(7);
        let a = rows_with(&results, &Settings::default());
        let b = rows_with(&results, &Settings::default());
        assert_eq!(a[1].vs_baseline, b[1].vs_baseline);
        let strict = Settings {
            noise_threshold: 0.5,
            ..Settings::default()
        };
        let c = rows_with(&results, &strict);
        assert_eq!(c[1].vs_baseline.get(Metric::MibS).verdict, Verdict::Same);
    }
}
