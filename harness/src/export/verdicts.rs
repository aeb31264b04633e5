//! The comparison with the baseline in words and short cells: the table's ratio cell
//! (`1.02 [0.99, 1.05] same`), its compact verdict column, and one plain sentence per
//! strategy.

use crate::stats::{Comparison, Verdict, MIN_PAIRS};
use crate::summary::{Metric, Row};

/// A ratio with as many digits as it needs: 1.02, 12.5, 290.
pub fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// An interval bound as [`fmt_ratio`] shows it, with more decimals where two would hide
/// which side of the noise band the bound is on: against 1/1.02 = 0.9804, a bound of
/// 0.9812 shows as 0.981, not as an ambiguous 0.98.
pub fn fmt_bound(x: f64, c: &Comparison) -> String {
    let band = 1.0 + c.noise_threshold;
    let edges = [band, 1.0 / band];
    let keeps_side = |shown: &str| {
        let shown: f64 = shown.parse().unwrap_or(x);
        edges
            .iter()
            .all(|&e| (shown > e) == (x > e) && (shown < e) == (x < e))
    };
    let plain = fmt_ratio(x);
    if !x.is_finite() || !band.is_finite() || x >= 10.0 || keeps_side(&plain) {
        return plain;
    }
    (3..=6)
        .map(|d| format!("{x:.d$}"))
        .find(|s| keeps_side(s))
        .unwrap_or_else(|| format!("{x}"))
}

/// `lo–hi` of an interval, "-" without one.
pub fn fmt_interval(c: &Comparison) -> String {
    if c.ci95_lo.is_nan() {
        "-".into()
    } else {
        format!("{}–{}", fmt_bound(c.ci95_lo, c), fmt_bound(c.ci95_hi, c))
    }
}

/// The table's throughput cell: ratio, interval, verdict.
pub fn ratio_cell(row: &Row) -> String {
    let c = row.vs_baseline.get(Metric::MibS);
    match c.verdict {
        Verdict::Baseline => "baseline".into(),
        _ if c.ratio.is_nan() => "-".into(),
        Verdict::Unknown => format!("{} unknown", fmt_ratio(c.ratio)),
        v => format!(
            "{} [{}, {}] {}",
            fmt_ratio(c.ratio),
            fmt_bound(c.ci95_lo, c),
            fmt_bound(c.ci95_hi, c),
            v.name()
        ),
    }
}

/// The other metrics that differ, tersely ("p99 slower, CPU more"); "-" when none does
/// or there is nothing to say (the baseline, too few pairs).
pub fn compact(row: &Row) -> String {
    let differing: Vec<String> = Metric::ALL
        .into_iter()
        .filter(|&m| m != Metric::MibS && m.spoken())
        .filter(|&m| row.vs_baseline.get(m).verdict.differs())
        .map(|m| format!("{} {}", m.short(), row.vs_baseline.get(m).verdict.name()))
        .collect();
    if differing.is_empty() {
        "-".into()
    } else {
        differing.join(", ")
    }
}

/// How a sentence names a row: its spec as given, and its endio topology where that
/// differs from the baseline's.
fn name(row: &Row, baseline: &Row) -> String {
    if row.topology == baseline.topology {
        row.spec.clone()
    } else {
        format!("{} (endio {})", row.spec, crate::names::name(&row.topology))
    }
}

/// One clause: "CPU per GiB 1.33×, more (1.29–1.37)".
fn clause(metric: Metric, c: &Comparison) -> String {
    format!(
        "{} {}×, {} ({})",
        metric.label(),
        fmt_ratio(c.ratio),
        c.verdict.name(),
        fmt_interval(c)
    )
}

/// Labels of the spoken metrics (throughput aside) whose verdict is `verdict`.
fn labels_where(row: &Row, verdict: Verdict) -> Vec<&'static str> {
    Metric::ALL
        .into_iter()
        .filter(|&m| m != Metric::MibS && m.spoken())
        .filter(|&m| row.vs_baseline.get(m).verdict == verdict)
        .map(Metric::label)
        .collect()
}

/// One plain sentence: how `row` compares with `baseline`, throughput first, then every
/// metric that differs, then those that do not.
pub fn sentence(row: &Row, baseline: &Row) -> String {
    let head = format!("{} vs {}: ", name(row, baseline), name(baseline, baseline));
    let mibs = row.vs_baseline.get(Metric::MibS);
    if mibs.verdict == Verdict::Unknown {
        let measured = if mibs.ratio.is_nan() {
            String::new()
        } else {
            format!("; throughput {}×", fmt_ratio(mibs.ratio))
        };
        return format!(
            "{head}too few paired ok repeats for a verdict ({} of {MIN_PAIRS}){measured}.",
            mibs.pairs
        );
    }
    let mut clauses = vec![if mibs.verdict == Verdict::Same {
        format!(
            "throughput the same ({}, 95 % CI {})",
            fmt_ratio(mibs.ratio),
            fmt_interval(mibs)
        )
    } else {
        format!(
            "throughput {}×, {} (95 % CI {})",
            fmt_ratio(mibs.ratio),
            mibs.verdict.name(),
            fmt_interval(mibs)
        )
    }];
    for metric in Metric::ALL
        .into_iter()
        .filter(|&m| m != Metric::MibS && m.spoken())
    {
        let c = row.vs_baseline.get(metric);
        if c.verdict.differs() {
            clauses.push(clause(metric, c));
        }
    }
    for (verdict, what) in [(Verdict::Same, "the same"), (Verdict::Unknown, "unknown")] {
        let labels = labels_where(row, verdict);
        if !labels.is_empty() {
            clauses.push(format!("{what}: {}", labels.join(", ")));
        }
    }
    format!("{head}{}.", clauses.join("; "))
}

/// A sentence for every row after the baseline.
pub fn sentences(rows: &[Row]) -> Vec<String> {
    match rows.split_first() {
        Some((baseline, others)) => others.iter().map(|r| sentence(r, baseline)).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample_rows;

    #[test]
    fn ratios_keep_the_digits_that_matter() {
        assert_eq!(fmt_ratio(1.0234), "1.02");
        assert_eq!(fmt_ratio(12.46), "12.5");
        assert_eq!(fmt_ratio(290.4), "290");
        assert_eq!(fmt_ratio(f64::NAN), "-");
    }

    #[test]
    fn a_bound_near_the_noise_band_shows_which_side_it_is_on() {
        let c = Comparison {
            ratio: 0.92,
            ci95_lo: 0.86,
            ci95_hi: 0.9812,
            pairs: 15,
            verdict: Verdict::Same,
            noise_threshold: 0.02,
        };
        // 1/1.02 = 0.98039: "0.98" would read as outside the band, against "same".
        assert_eq!(fmt_interval(&c), "0.86–0.981");
        assert_eq!(fmt_bound(0.9806, &c), "0.981");
        assert_eq!(fmt_bound(0.9801, &c), "0.98", "below the band either way");
        assert_eq!(fmt_bound(1.0199, &c), "1.0199");
        assert_eq!(fmt_bound(1.25, &c), "1.25");
        let far = Comparison {
            noise_threshold: f64::NAN,
            ..c
        };
        assert_eq!(fmt_interval(&far), "0.86–0.98");
    }

    #[test]
    fn cells_say_ratio_interval_and_verdict() {
        let rows = sample_rows();
        assert_eq!(ratio_cell(&rows[0]), "baseline");
        assert_eq!(ratio_cell(&rows[1]), "1.25 [1.20, 1.30] faster");
        assert_eq!(ratio_cell(&rows[2]), "-");
        assert_eq!(compact(&rows[0]), "-");
        assert_eq!(compact(&rows[1]), "p99 slower, CPU more, vcsw more");
    }

    #[test]
    fn one_plain_sentence_per_strategy() {
        let rows = sample_rows();
        let said = sentences(&rows);
        assert_eq!(said.len(), 2);
        assert_eq!(
            said[0],
            "kthread (endio shared) vs inline: throughput 1.25×, faster (95 % CI 1.20–1.30); \
             e2e p99 1.61×, slower (1.40–1.85); CPU per GiB 1.33×, more (1.29–1.37); \
             voluntary context switches 290×, more (250–340); \
             the same: e2e p50, e2e p99.9, involuntary context switches, \
             worst-interval bandwidth."
        );
        assert_eq!(
            said[1],
            "workqueue:max_active=1 vs inline: too few paired ok repeats for a verdict \
             (0 of 3)."
        );
        let mut same = rows[1].clone();
        same.vs_baseline.0[Metric::MibS as usize] = Comparison {
            ratio: 1.0,
            ci95_lo: 0.98,
            ci95_hi: 1.02,
            pairs: 3,
            verdict: Verdict::Same,
            noise_threshold: 0.02,
        };
        assert!(sentence(&same, &rows[0])
            .contains(": throughput the same (1.00, 95 % CI 0.98–1.02); e2e p99"));
        let mut two = rows[1].clone();
        two.vs_baseline.0[Metric::MibS as usize].verdict = Verdict::Unknown;
        two.vs_baseline.0[Metric::MibS as usize].pairs = 2;
        assert!(sentence(&two, &rows[0]).ends_with("(2 of 3); throughput 1.25×."));
        assert!(sentences(&[]).is_empty());
    }
}
