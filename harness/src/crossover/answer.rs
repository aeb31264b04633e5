//! The map in words: for each strategy and submitter count, where it starts to beat the
//! baseline (or that it never does in the range), then what each real algorithm costs
//! here and who wins at that cost.

use super::crossing::{self, Crossing, Direction, Sample, Shape, Side};
use super::Measured;
use crate::stats::Verdict;

/// One strategy at one submitter count: its points, cheapest first.
pub struct Series<'a> {
    pub strategy: &'a str,
    pub numjobs: u32,
    /// Submitter threads at once (numjobs times the jobs of a group).
    pub submitters: u32,
    pub points: Vec<&'a Measured>,
}

impl Series<'_> {
    pub fn shape(&self) -> Shape {
        let samples: Vec<Sample> = self
            .points
            .iter()
            .map(|m| Sample {
                cost_ns: m.cost.ns_per_sector,
                ratio: m.throughput.ratio,
                lo: m.throughput.ci95_lo,
                hi: m.throughput.ci95_hi,
                sure: match m.throughput.verdict {
                    Verdict::Faster => Some(Side::Above),
                    Verdict::Slower => Some(Side::Below),
                    _ => None,
                },
            })
            .collect();
        crossing::analyse(&samples)
    }

    /// The points that have a ratio (what [`crossing::analyse`] reads).
    pub fn usable(&self) -> Vec<&Measured> {
        self.points
            .iter()
            .copied()
            .filter(|m| m.throughput.ratio.is_finite())
            .collect()
    }
}

/// The measurements grouped by (strategy, numjobs), in the order they first ran, each
/// series sorted by cost.
pub fn series(measured: &[Measured]) -> Vec<Series<'_>> {
    let mut out: Vec<Series> = Vec::new();
    for m in measured {
        match out
            .iter_mut()
            .find(|s| s.strategy == m.strategy && s.numjobs == m.numjobs)
        {
            Some(s) => s.points.push(m),
            None => out.push(Series {
                strategy: &m.strategy,
                numjobs: m.numjobs,
                submitters: m.submitters,
                points: vec![m],
            }),
        }
    }
    for s in &mut out {
        s.points
            .sort_by(|a, b| a.cost.ns_per_sector.total_cmp(&b.cost.ns_per_sector));
    }
    out
}

/// A cost per sector as the answer prints it: whole ns below 1 µs, else µs.
pub fn fmt_cost(ns: f64) -> String {
    if ns < 1000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{:.1} µs", ns / 1000.0)
    }
}

fn submitters(n: u32) -> String {
    match n {
        1 => "1 submitter".into(),
        n => format!("{n} submitters"),
    }
}

fn crossing_clause(c: &Crossing, candidate: &str, baseline: &str, first: bool) -> String {
    let (winner, loser) = match c.direction {
        Direction::Rises => (candidate, baseline),
        Direction::Falls => (baseline, candidate),
    };
    let (at, ci) = (
        fmt_cost(c.cost_ns),
        format!(
            "95 % CI {} – {}",
            fmt_cost(c.ci_lo_ns),
            fmt_cost(c.ci_hi_ns)
        ),
    );
    if first {
        format!("{winner} beats {loser} above ~{at} per 4 KiB sector ({ci})")
    } else {
        format!("then {winner} above ~{at} ({ci})")
    }
}

/// The range a series covers: "from 160 ns to 20.1 µs per 4 KiB sector".
fn range(s: &Series) -> String {
    let usable = s.usable();
    let cost = |m: Option<&&Measured>| m.map_or(f64::NAN, |m| m.cost.ns_per_sector);
    format!(
        "from {} to {} per 4 KiB sector",
        fmt_cost(cost(usable.first())),
        fmt_cost(cost(usable.last()))
    )
}

/// A series whose sure points are all on one side: who wins, where it is sure.
fn one_side(s: &Series, side: Side, sure: usize, edge: Option<f64>, baseline: &str) -> String {
    let points = s.usable().len();
    let (winner, loser) = match side {
        Side::Above => (s.strategy, baseline),
        Side::Below => (baseline, s.strategy),
    };
    if sure == points {
        return format!("{winner} wins everywhere {}: no crossing", range(s));
    }
    let edge = match (side, edge) {
        (Side::Below, Some(ns)) => format!(", the last of them up to ~{}", fmt_cost(ns)),
        (Side::Above, Some(ns)) => format!(", the first of them from ~{}", fmt_cost(ns)),
        (_, None) => String::new(),
    };
    format!(
        "no crossing {}: {loser} never surely beats {winner}, which wins at {sure} of \
         {points} points{edge}; the others are within noise",
        range(s)
    )
}

fn who_wins(verdict: Verdict, candidate: &str, baseline: &str) -> String {
    match verdict {
        Verdict::Faster => format!("{candidate} wins"),
        Verdict::Slower => format!("{baseline} wins"),
        Verdict::Same => "no difference".into(),
        Verdict::Unknown => "too few pairs to say".into(),
        other => other.name().into(),
    }
}

/// The answer for one series: "on this machine, with 1 submitter, kthread beats inline
/// above ~1.90 µs per 4 KiB sector (95 % CI …); crc32c costs 160 ns (inline wins), …".
pub fn sentence(s: &Series, shape: &Shape, baseline: &str) -> String {
    let main = match shape {
        Shape::Crosses(crossings) => crossings
            .iter()
            .enumerate()
            .map(|(i, c)| crossing_clause(c, s.strategy, baseline, i == 0))
            .collect::<Vec<_>>()
            .join(", "),
        Shape::OneSide {
            side,
            sure,
            edge_ns,
        } => one_side(s, *side, *sure, *edge_ns, baseline),
        Shape::Unsure => format!(
            "no difference this run can show {}: {} and {baseline} are within noise at \
             every point",
            range(s),
            s.strategy
        ),
        Shape::Empty => format!(
            "no point has paired rounds of {} and {baseline} to compare",
            s.strategy
        ),
    };
    let algorithms: Vec<String> = s
        .points
        .iter()
        .filter(|m| m.cost.is_real())
        .map(|m| {
            format!(
                "{} costs {} ({})",
                m.cost.algorithm,
                fmt_cost(m.cost.ns_per_sector),
                who_wins(m.throughput.verdict, s.strategy, baseline)
            )
        })
        .collect();
    let mut text = format!("on this machine, with {}, {main}", submitters(s.submitters));
    if !algorithms.is_empty() {
        text += "; ";
        text += &algorithms.join(", ");
    }
    text + "."
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crossover::tests::measured;
    use strategies::csum::Algo;

    #[test]
    fn costs_print_in_ns_then_microseconds() {
        assert_eq!(fmt_cost(163.4), "163 ns");
        assert_eq!(fmt_cost(2412.0), "2.41 µs");
        assert_eq!(fmt_cost(18_940.0), "18.9 µs");
    }

    #[test]
    fn a_crossing_and_the_real_algorithms_in_one_sentence() {
        let points = [
            measured(Algo::Crc32c, 160.0, 0.5, 0.1, Verdict::Slower),
            measured(
                Algo::Cost { ns_per_sector: 800 },
                800.0,
                0.8,
                0.1,
                Verdict::Slower,
            ),
            measured(Algo::Sha256, 2400.0, 1.3, 0.1, Verdict::Faster),
        ];
        let all = series(&points);
        assert_eq!(all.len(), 1);
        let text = sentence(&all[0], &all[0].shape(), "inline");
        assert!(
            text.starts_with("on this machine, with 1 submitter, kthread beats inline above ~"),
            "{text}"
        );
        assert!(text.contains("per 4 KiB sector (95 % CI "), "{text}");
        assert!(
            text.ends_with(
                "; crc32c costs 160 ns (inline wins), sha256 costs 2.40 µs (kthread wins)."
            ),
            "{text}"
        );
    }

    #[test]
    fn no_crossing_is_said_with_who_wins_where() {
        let points = [
            measured(Algo::Crc32c, 160.0, 0.5, 0.1, Verdict::Slower),
            measured(Algo::Sha256, 2400.0, 0.99, 0.1, Verdict::Same),
        ];
        let all = series(&points);
        let text = sentence(&all[0], &all[0].shape(), "inline");
        assert!(
            text.contains(
                "no crossing from 160 ns to 2.40 µs per 4 KiB sector: kthread never surely \
                 beats inline, which wins at 1 of 2 points, the last of them up to ~"
            ),
            "{text}"
        );
        assert!(text.contains("; the others are within noise; "), "{text}");
        assert!(
            text.contains("sha256 costs 2.40 µs (no difference)"),
            "{text}"
        );
        let slower = [measured(Algo::Crc32c, 160.0, 0.5, 0.1, Verdict::Slower)];
        let all = series(&slower);
        let text = sentence(&all[0], &all[0].shape(), "inline");
        assert!(
            text.contains("inline wins everywhere from 160 ns to 160 ns per 4 KiB sector"),
            "{text}"
        );
        let same = [measured(Algo::Crc32c, 160.0, 1.0, 0.1, Verdict::Same)];
        let all = series(&same);
        let text = sentence(&all[0], &all[0].shape(), "inline");
        assert!(
            text.contains("no difference this run can show from 160 ns to 160 ns"),
            "{text}"
        );
    }

    #[test]
    fn series_split_by_submitters_and_sort_by_cost() {
        let mut two = measured(Algo::Crc32c, 160.0, 0.5, 0.1, Verdict::Slower);
        (two.numjobs, two.submitters) = (2, 2);
        let points = [
            measured(Algo::Sha256, 2400.0, 1.3, 0.1, Verdict::Faster),
            two,
            measured(Algo::Crc32c, 160.0, 0.5, 0.1, Verdict::Slower),
        ];
        let all = series(&points);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].numjobs, all[1].numjobs), (1, 2));
        let costs: Vec<f64> = all[0].points.iter().map(|m| m.cost.ns_per_sector).collect();
        assert_eq!(costs, [160.0, 2400.0]);
        let text = sentence(&all[1], &all[1].shape(), "inline");
        assert!(
            text.starts_with("on this machine, with 2 submitters, "),
            "{text}"
        );
    }

    #[test]
    fn later_crossings_name_only_the_new_winner() {
        let c = Crossing {
            direction: Direction::Falls,
            cost_ns: 1500.0,
            ci_lo_ns: 900.0,
            ci_hi_ns: 2500.0,
        };
        assert_eq!(
            crossing_clause(&c, "kthread", "inline", true),
            "inline beats kthread above ~1.50 µs per 4 KiB sector (95 % CI 900 ns – 2.50 µs)"
        );
        assert_eq!(
            crossing_clause(&c, "kthread", "inline", false),
            "then inline above ~1.50 µs (95 % CI 900 ns – 2.50 µs)"
        );
    }
}
