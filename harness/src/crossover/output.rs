//! What a sweep leaves beside its points' folders: `crossover.csv` (one row per point and
//! strategy), `crossings.csv` (one row per crossing, or per series that has none) and
//! `manifest.json` (machine, configuration, the points, the answer), each rewritten as
//! points finish so an interrupted sweep keeps what it measured.

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{anyhow, Result};
use serde::Serialize;
use workloads::JobSpec;

use super::answer::{self, Series};
use super::crossing::{Direction, Shape, Side};
use super::{CostAxis, Measured, Sweep};
use crate::case::RunOptions;
use crate::export::csv::{num, quote};
use crate::manifest;
use crate::pipeline::Topology;
use crate::results::RunDir;
use crate::session::{self, Repeats, RunStatus, SummaryConfig, EXIT_INTERRUPTED};

type Cell = fn(&Measured) -> String;

/// The columns of `crossover.csv`: the issue's, then what explains them.
const COLUMNS: [(&str, Cell); 22] = [
    ("cost_ns_per_sector", |m| num(m.cost.ns_per_sector)),
    ("algorithm", |m| m.cost.algorithm.name().to_string()),
    ("numjobs", |m| m.numjobs.to_string()),
    ("strategy", |m| m.strategy.clone()),
    ("mib_s_ratio", |m| num(m.throughput.ratio)),
    ("mib_s_ci95_lo", |m| num(m.throughput.ci95_lo)),
    ("mib_s_ci95_hi", |m| num(m.throughput.ci95_hi)),
    ("cpu_s_per_gib_ratio", |m| num(m.cpu.ratio)),
    ("cpu_s_per_gib_ci95_lo", |m| num(m.cpu.ci95_lo)),
    ("cpu_s_per_gib_ci95_hi", |m| num(m.cpu.ci95_hi)),
    ("verdict", |m| m.throughput.verdict.name().to_string()),
    ("cpu_verdict", |m| m.cpu.verdict.name().to_string()),
    ("pairs", |m| m.throughput.pairs.to_string()),
    ("requested_ns", |m| {
        m.cost
            .requested_ns
            .map(|n| n.to_string())
            .unwrap_or_default()
    }),
    ("inline_csum_run_ns_per_sector", |m| {
        num(m.inline_csum_run_ns_per_sector)
    }),
    ("baseline_mib_s", |m| num(m.baseline_mib_s)),
    ("mib_s", |m| num(m.mib_s)),
    ("baseline_cpu_s_per_gib", |m| num(m.baseline_cpu_s_per_gib)),
    ("cpu_s_per_gib", |m| num(m.cpu_s_per_gib)),
    ("strategy_canonical", |m| m.canonical.clone()),
    ("point", |m| m.point.clone()),
    ("problems", |m| m.problems.clone()),
];

fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = fields.into_iter().map(|f| quote(&f).into_owned()).collect();
    quoted.join(",") + "\n"
}

pub fn crossover_csv(measured: &[Measured]) -> String {
    let mut out = csv_line(COLUMNS.iter().map(|(name, _)| name.to_string()));
    for m in measured {
        out += &csv_line(COLUMNS.iter().map(|(_, cell)| cell(m)));
    }
    out
}

/// How a crossing, or a series without one, is named in `crossings.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Rises,
    Falls,
    /// Every sure point above 1; `edge_ns` where that starts being sure.
    Above,
    /// Every sure point below 1; `edge_ns` where that stops being sure.
    Below,
    Unsure,
    Empty,
}

const CROSSINGS_HEADER: [&str; 12] = [
    "strategy",
    "numjobs",
    "kind",
    "cost_ns_per_sector",
    "ci95_lo_ns",
    "ci95_hi_ns",
    "edge_ns",
    "sure_points",
    "lowest_ns",
    "highest_ns",
    "points",
    "answer",
];

/// One row of `crossings.csv`: a crossing's (cost, interval), or a one-sided series' edge.
#[derive(Default)]
struct Found {
    cost_ns: Option<f64>,
    ci95: Option<(f64, f64)>,
    edge_ns: Option<f64>,
    sure: Option<usize>,
}

fn crossing_rows(shape: &Shape) -> Vec<(Kind, Found)> {
    match shape {
        Shape::Crosses(crossings) => crossings
            .iter()
            .map(|c| {
                let kind = match c.direction {
                    Direction::Rises => Kind::Rises,
                    Direction::Falls => Kind::Falls,
                };
                let found = Found {
                    cost_ns: Some(c.cost_ns),
                    ci95: Some((c.ci_lo_ns, c.ci_hi_ns)),
                    ..Found::default()
                };
                (kind, found)
            })
            .collect(),
        Shape::OneSide {
            side,
            sure,
            edge_ns,
        } => {
            let kind = match side {
                Side::Above => Kind::Above,
                Side::Below => Kind::Below,
            };
            let found = Found {
                edge_ns: *edge_ns,
                sure: Some(*sure),
                ..Found::default()
            };
            vec![(kind, found)]
        }
        Shape::Unsure => vec![(Kind::Unsure, Found::default())],
        Shape::Empty => vec![(Kind::Empty, Found::default())],
    }
}

/// One row per crossing; a series without one gets one row saying how it lies.
fn crossings_csv(analysed: &[(Series, Shape, String)]) -> String {
    let opt = |x: Option<f64>| x.map_or(String::new(), num);
    let mut out = csv_line(CROSSINGS_HEADER.map(String::from));
    for (s, shape, text) in analysed {
        let usable = s.usable();
        let ends = [usable.first(), usable.last()].map(|m| opt(m.map(|m| m.cost.ns_per_sector)));
        for (kind, found) in crossing_rows(shape) {
            out += &csv_line([
                s.strategy.to_string(),
                s.numjobs.to_string(),
                crate::names::name(&kind),
                opt(found.cost_ns),
                opt(found.ci95.map(|c| c.0)),
                opt(found.ci95.map(|c| c.1)),
                opt(found.edge_ns),
                found.sure.map_or(String::new(), |n| n.to_string()),
                ends[0].clone(),
                ends[1].clone(),
                usable.len().to_string(),
                text.clone(),
            ]);
        }
    }
    out
}

/// A point as the manifest lists it.
#[derive(Serialize)]
struct PointRecord {
    folder: String,
    exit_code: i32,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    kind: &'static str,
    status: RunStatus,
    error: Option<String>,
    started: String,
    finished: Option<String>,
    duration_s: f64,
    command: Vec<String>,
    machine: &'a manifest::Machine,
    software: &'a manifest::Software,
    config: Config<'a>,
    points: &'a [PointRecord],
    answer: &'a [String],
}

#[derive(Serialize)]
struct Config<'a> {
    /// Every job, by group, before each point sets its checksum and numjobs.
    groups: &'a [Vec<JobSpec>],
    strategies: &'a [String],
    numjobs: &'a [u32],
    costs: &'a [super::Cost],
    /// Synthetic costs below the floor, left out.
    below_floor: Vec<String>,
    floor_ns: Option<f64>,
    topology: Topology,
    repeat: Repeats,
    warmup: u32,
    summary: SummaryConfig,
    options: &'a RunOptions,
}

/// The sweep's results folder as it fills: what has been measured and the files that say so.
pub struct Record<'s> {
    sweep: &'s Sweep,
    dir: RunDir,
    started: (SystemTime, Instant),
    machine: manifest::Machine,
    software: manifest::Software,
    points: Vec<PointRecord>,
    measured: Vec<Measured>,
    answer: Vec<String>,
}

impl<'s> Record<'s> {
    pub fn new(sweep: &'s Sweep, dir: RunDir) -> Record<'s> {
        let algos: Vec<_> = sweep.axis.costs.iter().map(|c| c.algorithm).collect();
        Record {
            sweep,
            dir,
            started: (SystemTime::now(), Instant::now()),
            machine: manifest::machine(),
            software: manifest::software(&algos),
            points: Vec::new(),
            measured: Vec::new(),
            answer: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn add(&mut self, folder: &str, exit_code: i32, measured: Vec<Measured>) {
        self.points.push(PointRecord {
            folder: folder.to_string(),
            exit_code,
        });
        self.measured.extend(measured);
    }

    fn write_manifest(&self, status: RunStatus, error: Option<String>) -> Result<()> {
        let plan = &self.sweep.template;
        let axis: &CostAxis = &self.sweep.axis;
        let m = Manifest {
            tool: "csumbench",
            kind: "crossover",
            status,
            error,
            started: manifest::utc_iso(self.started.0),
            finished: (status != RunStatus::Running).then(|| manifest::utc_iso(SystemTime::now())),
            duration_s: self.started.1.elapsed().as_secs_f64(),
            command: std::env::args().collect(),
            machine: &self.machine,
            software: &self.software,
            config: Config {
                groups: &plan.groups,
                strategies: &plan.strategies,
                numjobs: &self.sweep.numjobs,
                costs: &axis.costs,
                below_floor: axis
                    .below_floor
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect(),
                floor_ns: axis.floor_ns,
                topology: plan.topology,
                repeat: plan.repeats,
                warmup: plan.warmup,
                summary: SummaryConfig {
                    noise_threshold: plan.summary.noise_threshold,
                    seed: plan.summary.seed,
                },
                options: &plan.options,
            },
            points: &self.points,
            answer: &self.answer,
        };
        self.dir.write_json("manifest.json", &m).map(|_| ())
    }

    /// The manifest and `crossover.csv` as they stand, the sweep still running.
    pub fn save(&self) -> Result<()> {
        self.write_manifest(RunStatus::Running, None)?;
        self.dir
            .write("crossover.csv", crossover_csv(&self.measured).as_bytes())?;
        Ok(())
    }

    /// The sweep stops on `error`: the manifest says so, best effort (as a session's).
    pub fn fail(&self, error: anyhow::Error) -> anyhow::Error {
        match self.write_manifest(RunStatus::Failed, Some(format!("{error:#}"))) {
            Ok(()) => error,
            Err(m) => anyhow!("{error:#}\nalso: the sweep could not be marked failed: {m:#}"),
        }
    }

    /// The answer, printed first (it comes from memory), then every file in its final form.
    pub fn finish(mut self) -> Result<i32> {
        let baseline = &self.sweep.template.strategies[0];
        let analysed: Vec<(Series, Shape, String)> = answer::series(&self.measured)
            .into_iter()
            .map(|s| {
                let shape = s.shape();
                let text = answer::sentence(&s, &shape, baseline);
                (s, shape, text)
            })
            .collect();
        println!();
        for (_, _, text) in &analysed {
            println!("{text}");
        }
        let crossings = crossings_csv(&analysed);
        self.answer = analysed.into_iter().map(|(_, _, text)| text).collect();
        let code = session::most_serious(self.points.iter().map(|p| p.exit_code));
        let status = if code == EXIT_INTERRUPTED {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        self.dir.write("crossings.csv", crossings.as_bytes())?;
        self.dir
            .write("crossover.csv", crossover_csv(&self.measured).as_bytes())?;
        self.write_manifest(status, None)?;
        println!(
            "swept {} point(s) in {:.0} s; results: {}",
            self.points.len(),
            self.started.1.elapsed().as_secs_f64(),
            self.dir.path().display()
        );
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crossover::tests::measured;
    use crate::stats::Verdict;
    use strategies::csum::Algo;

    #[test]
    fn the_csv_has_the_issues_columns_first_and_one_row_per_measurement() {
        let rows = [
            measured(Algo::Crc32c, 160.0, 0.5, 0.1, Verdict::Slower),
            measured(
                Algo::Cost {
                    ns_per_sector: 2300,
                },
                2310.5,
                1.25,
                0.1,
                Verdict::Faster,
            ),
        ];
        let text = crossover_csv(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(
            "cost_ns_per_sector,algorithm,numjobs,strategy,mib_s_ratio,mib_s_ci95_lo,\
             mib_s_ci95_hi,cpu_s_per_gib_ratio,cpu_s_per_gib_ci95_lo,cpu_s_per_gib_ci95_hi,\
             verdict,"
        ));
        assert!(
            lines[1].starts_with("160,crc32c,1,kthread,0.5,0.45,0.55,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("2310.5,cost:2300ns,1,kthread,1.25,"),
            "{}",
            lines[2]
        );
        // The canonical spec has commas: quoted.
        assert!(lines[2].contains("\"kthread:idle_thresh=64,max_workers=4,ordered=0\""));
        let fields = lines[0].split(',').count();
        assert_eq!(fields, COLUMNS.len());
    }

    #[test]
    fn every_crossing_gets_a_row_and_a_series_without_one_says_its_side() {
        let mut two = measured(Algo::Crc32c, 160.0, 0.6, 0.1, Verdict::Slower);
        (two.numjobs, two.submitters) = (2, 2);
        let rows = [
            measured(Algo::Crc32c, 100.0, 0.5, 0.1, Verdict::Slower),
            measured(Algo::Sha256, 1000.0, 2.0, 0.1, Verdict::Faster),
            two,
        ];
        let analysed: Vec<_> = answer::series(&rows)
            .into_iter()
            .map(|s| {
                let shape = s.shape();
                (s, shape, "text, with a comma".to_string())
            })
            .collect();
        let text = crossings_csv(&analysed);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CROSSINGS_HEADER.join(","));
        // √(100 · 1000), as the crossing's own test works out.
        assert!(
            lines[1].starts_with("kthread,1,rises,316.227766016"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(",,,100,1000,2,\"text, with a comma\""),
            "{}",
            lines[1]
        );
        assert_eq!(
            lines[2],
            "kthread,2,below,,,,,1,160,160,1,\"text, with a comma\""
        );
    }
}
