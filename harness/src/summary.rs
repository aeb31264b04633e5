//! Turns case results into the comparison: one row per strategy, medians over repeats,
//! ratios to the first strategy (the baseline).

use serde::Serialize;

use crate::case::{CaseResult, Status};
use crate::pipeline::Topology;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub strategy: String,
    pub topology: Topology,
    pub runs: usize,
    /// Runs that did not end `ok`, by status (e.g. "deadlock x1").
    pub problems: Vec<String>,
    pub mib_s_median: f64,
    pub mib_s_min: f64,
    pub mib_s_max: f64,
    /// Median throughput over the baseline's.
    pub ratio: f64,
    pub e2e_p50_us: f64,
    pub e2e_p99_us: f64,
    pub e2e_p999_us: f64,
    pub cpu_s_per_gib: f64,
    pub vcsw_per_gib: f64,
    pub ivcsw_per_gib: f64,
    /// The lowest per-interval bandwidth seen in any run: the worst dip.
    pub min_interval_mib_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
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

/// One row per (strategy, topology), in order of first appearance. Throughput and latency
/// come from the runs that finished `ok`; the others are counted in `problems`.
pub fn rows(results: &[CaseResult]) -> Vec<Row> {
    let mut keys: Vec<(String, Topology)> = Vec::new();
    for r in results {
        let k = (r.strategy.clone(), r.topology);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut rows: Vec<Row> = keys
        .into_iter()
        .map(|(strategy, topology)| {
            let all: Vec<&CaseResult> = results
                .iter()
                .filter(|r| r.strategy == strategy && r.topology == topology)
                .collect();
            let ok: Vec<&CaseResult> = all
                .iter()
                .copied()
                .filter(|r| r.status == Status::Ok)
                .collect();
            let mut problems: Vec<String> = Vec::new();
            for r in all.iter().filter(|r| r.status != Status::Ok) {
                let name = status_name(r.status);
                let n = all.iter().filter(|x| x.status == r.status).count();
                let label = format!("{name} x{n}");
                if !problems.contains(&label) {
                    problems.push(label);
                }
            }
            let of = |f: &dyn Fn(&CaseResult) -> f64| median(ok.iter().map(|r| f(r)).collect());
            let e2e = |f: &dyn Fn(&crate::measure::Percentiles) -> f64| {
                of(&|r| r.latency_us.get("e2e").map(f).unwrap_or(f64::NAN))
            };
            let mibs: Vec<f64> = ok.iter().map(|r| r.mib_s).collect();
            Row {
                strategy,
                topology,
                runs: all.len(),
                problems,
                mib_s_median: median(mibs.clone()),
                mib_s_min: mibs.iter().cloned().fold(f64::NAN, f64::min),
                mib_s_max: mibs.iter().cloned().fold(f64::NAN, f64::max),
                ratio: f64::NAN,
                e2e_p50_us: e2e(&|p| p.p50_us),
                e2e_p99_us: e2e(&|p| p.p99_us),
                e2e_p999_us: e2e(&|p| p.p999_us),
                cpu_s_per_gib: of(&|r| r.cpu_s_per_gib),
                vcsw_per_gib: of(&|r| r.vcsw_per_gib),
                ivcsw_per_gib: of(&|r| r.ivcsw_per_gib),
                min_interval_mib_s: ok
                    .iter()
                    .filter(|r| r.bandwidth.samples > 0)
                    .map(|r| r.bandwidth.min_mib_s)
                    .fold(f64::NAN, f64::min),
            }
        })
        .collect();
    if let Some(base) = rows.first().map(|r| r.mib_s_median) {
        for r in &mut rows {
            r.ratio = r.mib_s_median / base;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_handle_even_odd_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
