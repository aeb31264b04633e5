//! `harness crossover`: where offloading checksums starts to pay on this machine.
//!
//! Whether a pool beats inline checksums depends on what a sector's checksum costs against
//! what a hand-off to the pool costs. The sweep measures that line: every checksum cost
//! (btrfs's four algorithms at what they cost here, and calibrated synthetic costs spread
//! log-uniformly between ~10 ns and ~20 µs per sector) × every submitter count, each point
//! an interleaved compare of inline against each strategy ([`session`], one results folder
//! per point), judged with the compare's paired intervals and verdicts ([`summary`]).
//! Then, per strategy and submitter count, where the throughput ratio crosses 1
//! ([`crossing`]), said in words ([`answer`]) and written as `crossover.csv` and
//! `crossings.csv` beside the points' folders ([`output`]).

mod answer;
mod axis;
mod crossing;
mod output;

pub use axis::{default_numjobs, log_uniform, measure, online_cpus, parse_numjobs, Cost, CostAxis};

use std::path::Path;

use anyhow::{anyhow, Result};
use strategies::csum::{Algo, SECTOR_SIZE};
use workloads::JobSpec;

use crate::case::{CaseResult, Status};
use crate::export::verdicts::{fmt_interval, fmt_ratio, ratio_cell};
use crate::results::{default_parent, RunDir};
use crate::session::{self, Finished, Plan, EXIT_INTERRUPTED};
use crate::stats::Comparison;
use crate::summary::{self, Metric, Row};
use output::Record;

/// The job every point runs unless the command line or a job file says otherwise: seed
/// 002's sequential 1 MiB writes with 8 bios in flight, time-based, on the null engine.
/// With no device in the way the map shows the checksum against the hand-off alone, which
/// is the line the question is about; `--ioengine psync` puts page-cache writes to a
/// temporary file under it, a real device shows how far the disk moves it.
pub fn default_job(quick: bool) -> JobSpec {
    let runtime = if quick { "200ms" } else { "500ms" };
    let mut job = JobSpec::default();
    for (k, v) in [
        ("name", "crossover"),
        ("rw", "write"),
        ("bs", "1m"),
        ("size", "256m"),
        ("iodepth", "8"),
        ("ioengine", "null"),
        ("time_based", "1"),
        ("runtime", runtime),
    ] {
        job.set(k, v).expect("valid default job");
    }
    job
}

/// The strategies of every point: inline first (the baseline), then each candidate (none
/// given: the default offload pool, kthread).
pub fn strategies(candidates: &[String]) -> Result<Vec<String>> {
    let mut out = vec!["inline".to_string()];
    match candidates {
        [] => out.push("kthread".into()),
        given => out.extend(given.iter().filter(|s| *s != "inline").cloned()),
    }
    if out.len() < 2 {
        return Err(anyhow!(
            "crossover maps a strategy against inline: give one that is not inline"
        ));
    }
    Ok(out)
}

/// What to sweep.
pub struct Sweep {
    /// Every point's plan but its checksum, submitter count and folder: the strategies
    /// (inline first), rounds, verdict settings, job groups and run options; `out` is the
    /// sweep's own folder.
    pub template: Plan,
    pub numjobs: Vec<u32>,
    pub axis: CostAxis,
}

/// One point of the sweep: a cost at a submitter count, run in its own folder.
#[derive(Debug, Clone)]
struct Point {
    folder: String,
    cost: Cost,
    numjobs: u32,
}

/// One strategy against the baseline at one point: a row of `crossover.csv`.
#[derive(Debug, Clone)]
pub struct Measured {
    pub point: String,
    pub cost: Cost,
    pub numjobs: u32,
    /// Submitter threads at once: numjobs times the jobs of the largest group.
    pub submitters: u32,
    /// The spec as given, and spelled out.
    pub strategy: String,
    pub canonical: String,
    pub throughput: Comparison,
    pub cpu: Comparison,
    pub baseline_mib_s: f64,
    pub mib_s: f64,
    pub baseline_cpu_s_per_gib: f64,
    pub cpu_s_per_gib: f64,
    /// The baseline's csum_run stage in this run, per sector: the median over its ok
    /// cases of each case's median per bio. Cache-cold and shared with the rest of the
    /// machine, unlike the hot-sector cost the axis uses.
    pub inline_csum_run_ns_per_sector: f64,
    /// Counted cases that did not end ok, per strategy ("inline: deadlock x1").
    pub problems: String,
}

/// Every job of `groups` with this point's checksum and submitter count.
fn point_groups(groups: &[Vec<JobSpec>], algo: Algo, numjobs: u32) -> Result<Vec<Vec<JobSpec>>> {
    let mut groups = groups.to_vec();
    for job in groups.iter_mut().flatten() {
        job.set("csum", &algo.name())
            .and_then(|()| job.set("numjobs", &numjobs.to_string()))
            .and_then(|()| job.validate())
            .map_err(|e| anyhow!("job '{}' at csum={algo}, numjobs={numjobs}: {e}", job.name))?;
    }
    Ok(groups)
}

/// Refuses, before anything is made, a sweep some point of which could not run: a
/// strategy that does not build, a submitter count the machine cannot hold. What a job
/// holds does not depend on its checksum.
pub fn check(strategies: &[String], groups: &[Vec<JobSpec>], numjobs: &[u32]) -> Result<()> {
    for &n in numjobs {
        session::check(strategies, &point_groups(groups, Algo::Crc32c, n)?)?;
    }
    Ok(())
}

impl Sweep {
    /// Every point in run order: each submitter count, and in it every cost, cheapest first.
    fn points(&self) -> Vec<Point> {
        let mut points = Vec::new();
        for &numjobs in &self.numjobs {
            for &cost in &self.axis.costs {
                let name = cost.algorithm.name().replace(':', "-");
                points.push(Point {
                    folder: format!("{:02}-{name}-nj{numjobs}", points.len() + 1),
                    cost,
                    numjobs,
                });
            }
        }
        points
    }

    fn plan_for(&self, point: &Point, top: &Path) -> Result<Plan> {
        Ok(Plan {
            groups: point_groups(&self.template.groups, point.cost.algorithm, point.numjobs)?,
            algos: vec![point.cost.algorithm],
            out: Some(top.join(&point.folder)),
            print_summary: false,
            ..self.template.clone()
        })
    }
}

/// One case's csum_run per sector: its median per bio over the sectors in a mean bio.
fn csum_run_ns_per_sector(case: &CaseResult) -> Option<f64> {
    let run = case.latency_us.get("csum_run")?;
    let sectors = case.bytes as f64 / case.bios as f64 / SECTOR_SIZE as f64;
    (case.bios > 0 && run.count > 0).then(|| run.p50_us * 1000.0 / sectors)
}

/// Counted cases that did not end ok, and strategies that moved no data at all (a runtime
/// shorter than a bio takes: 0 against 0 reads as "the same", which says nothing).
fn problems(rows: &[Row]) -> String {
    let named: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let mut said = r.problems.clone();
            if r.mib_s_median == 0.0 {
                said.push("moved no data: the runtime is shorter than a bio takes".into());
            }
            (!said.is_empty()).then(|| format!("{}: {}", r.spec, said.join(", ")))
        })
        .collect();
    named.join("; ")
}

/// What a point's run measured, one row per strategy after the baseline.
fn measured(point: &Point, finished: &Finished) -> Vec<Measured> {
    let Some((base, candidates)) = finished.rows.split_first() else {
        return Vec::new();
    };
    let baseline_runs = finished
        .cases
        .iter()
        .filter(|c| c.slot == Some(0) && !c.warmup && c.status == Status::Ok);
    let in_run = summary::median(baseline_runs.filter_map(csum_run_ns_per_sector).collect());
    let jobs = finished
        .cases
        .iter()
        .map(|c| c.jobs.len())
        .max()
        .unwrap_or(1);
    candidates
        .iter()
        .map(|row| Measured {
            point: point.folder.clone(),
            cost: point.cost,
            numjobs: point.numjobs,
            submitters: point.numjobs * jobs.max(1) as u32,
            strategy: row.spec.clone(),
            canonical: row.strategy.clone(),
            throughput: *row.vs_baseline.get(Metric::MibS),
            cpu: *row.vs_baseline.get(Metric::CpuSPerGib),
            baseline_mib_s: base.mib_s_median,
            mib_s: row.mib_s_median,
            baseline_cpu_s_per_gib: base.cpu_s_per_gib,
            cpu_s_per_gib: row.cpu_s_per_gib,
            inline_csum_run_ns_per_sector: in_run,
            problems: problems(&finished.rows),
        })
        .collect()
}

/// "[ 3/18] sha256 2.41 µs/sector, 1 submitter: kthread 1.42 [1.31, 1.55] faster, CPU/GiB 1.05 (0.98–1.12)".
fn point_line(n: usize, of: usize, point: &Point, rows: &[Row]) -> String {
    let verdicts: Vec<String> = rows
        .iter()
        .skip(1)
        .map(|r| {
            let cpu = r.vs_baseline.get(Metric::CpuSPerGib);
            format!(
                "{} {}, CPU/GiB {} ({})",
                r.spec,
                ratio_cell(r),
                fmt_ratio(cpu.ratio),
                fmt_interval(cpu)
            )
        })
        .collect();
    let mut line = format!(
        "[{n:>w$}/{of}] {} {}/sector, numjobs {}: {}",
        point.cost.algorithm,
        answer::fmt_cost(point.cost.ns_per_sector),
        point.numjobs,
        if verdicts.is_empty() {
            "no case finished".to_string()
        } else {
            verdicts.join("; ")
        },
        w = of.to_string().len()
    );
    let problems = problems(rows);
    if !problems.is_empty() {
        line += &format!(" — {problems}");
    }
    line
}

/// Runs the sweep (already [`check`]ed): every point, each written as it
/// finishes, then the answer. Returns the exit code, the most serious of the points'.
pub fn run(sweep: &Sweep) -> Result<i32> {
    let dir = match &sweep.template.out {
        Some(dir) => RunDir::create(dir)?,
        None => RunDir::create_new_under(&default_parent())?,
    };
    let points = sweep.points();
    println!(
        "crossover: {} points ({} costs x numjobs {}), {} against {}",
        points.len(),
        sweep.axis.costs.len(),
        sweep
            .numjobs
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        sweep.template.strategies[1..].join(", "),
        sweep.template.strategies[0]
    );
    let mut record = Record::new(sweep, dir);
    record.save()?;
    for (i, point) in points.iter().enumerate() {
        let finished = sweep
            .plan_for(point, record.path())
            .and_then(|plan| session::execute(&plan))
            .map_err(|e| e.context(format!("point {}", point.folder)));
        let finished = match finished {
            Ok(f) => f,
            Err(e) => return Err(record.fail(e)),
        };
        println!("{}", point_line(i + 1, points.len(), point, &finished.rows));
        record.add(&point.folder, finished.code, measured(point, &finished));
        if let Err(e) = record.save() {
            return Err(record.fail(e));
        }
        if finished.code == EXIT_INTERRUPTED {
            break;
        }
    }
    record.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::Verdict;

    /// A measurement of kthread at one submitter with ratio × [1 - spread, 1 + spread].
    pub(crate) fn measured(
        algorithm: Algo,
        ns_per_sector: f64,
        ratio: f64,
        spread: f64,
        verdict: Verdict,
    ) -> Measured {
        let throughput = Comparison {
            ratio,
            ci95_lo: ratio * (1.0 - spread),
            ci95_hi: ratio * (1.0 + spread),
            pairs: 3,
            verdict,
            noise_threshold: 0.02,
        };
        let requested_ns = match algorithm {
            Algo::Cost { ns_per_sector } => Some(ns_per_sector),
            _ => None,
        };
        Measured {
            point: format!("01-{algorithm}-nj1"),
            cost: Cost {
                algorithm,
                requested_ns,
                ns_per_sector,
            },
            numjobs: 1,
            submitters: 1,
            strategy: "kthread".into(),
            canonical: "kthread:idle_thresh=64,max_workers=4,ordered=0".into(),
            throughput,
            cpu: throughput,
            baseline_mib_s: 1000.0,
            mib_s: 1000.0 * ratio,
            baseline_cpu_s_per_gib: 0.5,
            cpu_s_per_gib: 0.5 * ratio,
            inline_csum_run_ns_per_sector: ns_per_sector * 1.1,
            problems: String::new(),
        }
    }

    #[test]
    fn inline_is_the_baseline_and_a_candidate_is_needed() {
        let given = |s: &[&str]| strategies(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(given(&[]).unwrap(), ["inline", "kthread"]);
        assert_eq!(given(&["kthread"]).unwrap(), ["inline", "kthread"]);
        assert_eq!(
            given(&["inline", "workqueue", "kthread"]).unwrap(),
            ["inline", "workqueue", "kthread"]
        );
        let e = given(&["inline"]).unwrap_err().to_string();
        assert!(e.contains("not inline"), "{e}");
    }

    #[test]
    fn every_job_gets_the_points_checksum_and_submitters() {
        let groups = vec![vec![default_job(true), default_job(false)]];
        let cost = Algo::Cost {
            ns_per_sector: 2300,
        };
        let out = point_groups(&groups, cost, 3).unwrap();
        assert!(out
            .iter()
            .flatten()
            .all(|j| *j.csum == *"cost:2300ns" && j.numjobs == 3));
        let e = point_groups(&groups, cost, 0).unwrap_err().to_string();
        assert!(e.contains("numjobs=0"), "{e}");
    }

    #[test]
    fn failed_cases_and_strategies_that_moved_nothing_are_named() {
        let mut still = crate::summary::tests::case("kthread", 1, 1000.0, 0.5);
        still.mib_s = 0.0;
        let mut broken = crate::summary::tests::case("inline", 1, 1000.0, 0.5);
        broken.status = Status::Deadlock;
        let rows = summary::rows(&[broken, still]);
        assert_eq!(
            problems(&rows),
            "inline: deadlock x1; kthread: moved no data: the runtime is shorter than a bio \
             takes"
        );
        let fine = summary::rows(&[crate::summary::tests::case("inline", 1, 1000.0, 0.5)]);
        assert_eq!(problems(&fine), "");
    }

    #[test]
    fn a_group_of_two_jobs_is_twice_the_submitters() {
        let cases: Vec<CaseResult> = [("inline", 1000.0), ("kthread", 1200.0)]
            .into_iter()
            .map(|(s, mib_s)| {
                let mut c = crate::summary::tests::case(s, 1, mib_s, 0.5);
                c.slot = Some(usize::from(s != "inline"));
                c.jobs = vec![
                    serde_json::json!({"name": "a"}),
                    serde_json::json!({"name": "b"}),
                ];
                c
            })
            .collect();
        let finished = Finished {
            code: 0,
            rows: summary::rows(&cases),
            cases,
        };
        let point = Point {
            folder: "01-crc32c-nj3".into(),
            cost: Cost {
                algorithm: Algo::Crc32c,
                requested_ns: None,
                ns_per_sector: 200.0,
            },
            numjobs: 3,
        };
        let rows = super::measured(&point, &finished);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].numjobs, rows[0].submitters), (3, 6));
        assert_eq!(rows[0].strategy, "kthread");
        assert!((rows[0].mib_s / rows[0].baseline_mib_s - 1.2).abs() < 1e-12);
    }

    #[test]
    fn the_in_run_cost_is_the_median_bio_over_its_sectors() {
        let mut case = crate::summary::tests::case("inline", 1, 1000.0, 0.5);
        // 1024 bios of 1 MiB (256 sectors); the csum_run median 64 µs is 250 ns a sector.
        case.latency_us.insert(
            "csum_run".into(),
            crate::measure::Percentiles {
                count: 1024,
                p50_us: 64.0,
                ..Default::default()
            },
        );
        assert_eq!(csum_run_ns_per_sector(&case), Some(250.0));
        case.latency_us.clear();
        assert_eq!(csum_run_ns_per_sector(&case), None);
    }
}
