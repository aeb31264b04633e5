//! Exporters: one trait, one file per format (as hyperfine does).

pub(crate) mod csv;
pub mod fio_json;
mod json;
mod markdown;
mod table;
pub mod verdicts;

pub use self::csv::Csv;
pub use json::Json;
pub use markdown::Markdown;
pub use table::Table;

use anyhow::Result;

use crate::results::RunDir;
use crate::summary::Row;

pub trait Exporter {
    fn render(&self, rows: &[Row]) -> String;
}

/// The formats `harness report --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for the terminal (what `compare` prints).
    Table,
    /// A GitHub-flavoured Markdown table.
    Markdown,
    /// One header row, plain numbers, units in the column names.
    Csv,
    /// The summary rows as a JSON array.
    Json,
}

impl Format {
    pub fn exporter(self) -> &'static dyn Exporter {
        match self {
            Format::Table => &Table,
            Format::Markdown => &Markdown,
            Format::Csv => &Csv,
            Format::Json => &Json,
        }
    }
}

/// Writes `summary.md` and `summary.csv` into the results folder, from the rows the table
/// shows, so the folder explains itself without re-running anything.
pub fn write_summaries(dir: &RunDir, rows: &[Row]) -> Result<()> {
    dir.write("summary.md", Markdown.render(rows).as_bytes())?;
    dir.write("summary.csv", Csv.render(rows).as_bytes())?;
    Ok(())
}

/// Latency in the unit that keeps it readable.
pub fn fmt_us(us: f64) -> String {
    if us.is_nan() {
        "-".into()
    } else if us >= 10_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}us")
    }
}

/// A number, or "-" when there is none (no successful run).
pub fn fmt_num(x: f64, decimals: usize) -> String {
    if x.is_nan() || x.is_infinite() {
        "-".into()
    } else {
        format!("{x:.decimals$}")
    }
}

/// Numbers are right-aligned in the human-readable formats, text left-aligned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// The columns people read (the terminal table and Markdown): rounded numbers with units.
const HUMAN_COLUMNS: [(&str, Align); 14] = [
    ("strategy", Align::Left),
    ("endio", Align::Left),
    ("MiB/s", Align::Right),
    ("min-max", Align::Right),
    ("ratio [95% CI]", Align::Left),
    ("e2e p50", Align::Right),
    ("p99", Align::Right),
    ("p99.9", Align::Right),
    ("CPU s/GiB", Align::Right),
    ("vcsw/GiB", Align::Right),
    ("ivcsw/GiB", Align::Right),
    ("min MiB/s", Align::Right),
    ("verdicts", Align::Left),
    ("status", Align::Left),
];

fn human_cells(r: &Row) -> [String; 14] {
    [
        r.strategy.clone(),
        crate::names::name(&r.topology),
        fmt_num(r.mib_s_median, 0),
        if r.mib_s_min.is_nan() {
            "-".into()
        } else {
            format!("{:.0}-{:.0}", r.mib_s_min, r.mib_s_max)
        },
        verdicts::ratio_cell(r),
        fmt_us(r.e2e_p50_us),
        fmt_us(r.e2e_p99_us),
        fmt_us(r.e2e_p999_us),
        fmt_num(r.cpu_s_per_gib, 3),
        fmt_num(r.vcsw_per_gib, 0),
        fmt_num(r.ivcsw_per_gib, 0),
        fmt_num(r.min_interval_mib_s, 0),
        verdicts::compact(r),
        status_cell(r),
    ]
}

/// "r2,r5" for a list of repeats.
fn repeat_list(repeats: &[u32]) -> String {
    let names: Vec<String> = repeats.iter().map(|r| format!("r{r}")).collect();
    names.join(",")
}

/// How the runs ended, then what to keep in mind reading them: warm-ups (not counted),
/// repeats under interference, outliers, and repeats that never became steady.
fn status_cell(r: &Row) -> String {
    let mut parts = if r.problems.is_empty() {
        vec![format!("ok x{}", r.runs)]
    } else {
        r.problems.clone()
    };
    if r.warmups > 0 {
        parts.push(format!("+{} warm-up", r.warmups));
    }
    for (what, repeats) in [
        ("noisy", &r.interference_repeats),
        ("outlier", &r.outlier_repeats),
        ("unsteady", &r.unsteady_repeats),
    ] {
        if !repeats.is_empty() {
            parts.push(format!("{what} {}", repeat_list(repeats)));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pipeline::Topology;
    use crate::stats::{Comparison, Verdict};
    use crate::summary::{Metric, VsBaseline};

    fn compared(ratio: f64, lo: f64, hi: f64, verdict: Verdict) -> Comparison {
        Comparison {
            ratio,
            ci95_lo: lo,
            ci95_hi: hi,
            pairs: 3,
            verdict,
            noise_threshold: 0.02,
        }
    }

    /// Rows that exercise every exporter: a baseline, a spec with commas (every knob spec
    /// has them) and a quote that beats the baseline on throughput and loses on p99, CPU
    /// and switches, and a strategy with no successful run (NaN everywhere).
    pub(crate) fn sample_rows() -> Vec<Row> {
        let ok = Row {
            strategy: "inline".into(),
            spec: "inline".into(),
            topology: Topology::Separate,
            runs: 3,
            warmups: 0,
            problems: vec![],
            mib_s_median: 1834.5678,
            mib_s_min: 1790.25,
            mib_s_max: 1901.0,
            e2e_p50_us: 512.25,
            e2e_p99_us: 1536.0,
            e2e_p999_us: 20480.5,
            cpu_s_per_gib: 0.123456789,
            vcsw_per_gib: 42.0,
            ivcsw_per_gib: 7.5,
            min_interval_mib_s: 1500.125,
            vs_baseline: VsBaseline(Metric::ALL.map(|_| Comparison::baseline(3))),
            outlier_repeats: vec![],
            interference_repeats: vec![],
            unsteady_repeats: vec![],
        };
        let same = compared(1.0, 0.98, 1.02, Verdict::Same);
        let pool = Row {
            strategy: "kthread:max_workers=4,idle_thresh=\"32\"".into(),
            spec: "kthread".into(),
            topology: Topology::Shared,
            warmups: 1,
            mib_s_median: 2293.20975,
            vs_baseline: VsBaseline(Metric::ALL.map(|m| match m {
                Metric::MibS | Metric::Iops => compared(1.25, 1.2, 1.3, Verdict::Faster),
                Metric::E2eP99 => compared(1.61, 1.4, 1.85, Verdict::Slower),
                Metric::CpuSPerGib => compared(1.33, 1.29, 1.37, Verdict::More),
                Metric::VcswPerGib | Metric::CswPerGib => {
                    compared(290.4, 250.0, 340.0, Verdict::More)
                }
                _ => same,
            })),
            interference_repeats: vec![2],
            outlier_repeats: vec![1, 3],
            ..ok.clone()
        };
        let unknown = Comparison {
            ratio: f64::NAN,
            ci95_lo: f64::NAN,
            ci95_hi: f64::NAN,
            pairs: 0,
            verdict: Verdict::Unknown,
            noise_threshold: 0.02,
        };
        let broken = Row {
            strategy: "workqueue:max_active=1".into(),
            spec: "workqueue:max_active=1".into(),
            runs: 2,
            problems: vec!["deadlock x1".into(), "stall x1".into()],
            mib_s_median: f64::NAN,
            mib_s_min: f64::NAN,
            mib_s_max: f64::NAN,
            e2e_p50_us: f64::NAN,
            e2e_p99_us: f64::NAN,
            e2e_p999_us: f64::NAN,
            cpu_s_per_gib: f64::NAN,
            vcsw_per_gib: f64::NAN,
            ivcsw_per_gib: f64::NAN,
            min_interval_mib_s: f64::NAN,
            vs_baseline: VsBaseline(Metric::ALL.map(|_| unknown)),
            unsteady_repeats: vec![2],
            ..ok.clone()
        };
        vec![ok, pool, broken]
    }

    #[test]
    fn the_status_cell_lists_problems_and_marks() {
        let rows = sample_rows();
        assert_eq!(status_cell(&rows[0]), "ok x3");
        assert_eq!(
            status_cell(&rows[1]),
            "ok x3, +1 warm-up, noisy r2, outlier r1,r3"
        );
        assert_eq!(status_cell(&rows[2]), "deadlock x1, stall x1, unsteady r2");
    }

    #[test]
    fn every_format_has_an_exporter_and_the_summaries_land_in_the_folder() {
        let rows = sample_rows();
        for f in [Format::Table, Format::Markdown, Format::Csv, Format::Json] {
            assert!(f.exporter().render(&rows).contains("inline"), "{f:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(&tmp.path().join("r")).unwrap();
        write_summaries(&dir, &rows).unwrap();
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
        assert_eq!(md, Markdown.render(&rows));
        assert_eq!(csv, Csv.render(&rows));
    }
}
