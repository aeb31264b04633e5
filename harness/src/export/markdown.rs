//! GitHub-flavoured Markdown for pasting into issues and notes: the terminal table's
//! cells, then every metric against the baseline (ratio, 95 % interval, verdict, pairs),
//! then the sentences.

use super::{human_cells, verdicts, Align, Exporter, HUMAN_COLUMNS};
use crate::summary::{Metric, Row};

pub struct Markdown;

fn line<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> String {
    let mut s = String::from("|");
    for c in cells {
        // A bare pipe would end the cell early.
        s += &format!(" {} |", c.as_ref().replace('|', "\\|"));
    }
    s + "\n"
}

impl Exporter for Markdown {
    fn render(&self, rows: &[Row]) -> String {
        let mut out = line(HUMAN_COLUMNS.map(|(h, _)| h));
        out += &line(HUMAN_COLUMNS.map(|(_, align)| match align {
            Align::Left => ":---",
            Align::Right => "---:",
        }));
        for r in rows {
            out += &line(human_cells(r));
        }
        if rows.len() > 1 {
            out += &vs_baseline(rows);
        }
        out
    }
}

/// Every metric of every strategy after the baseline, one line each.
fn vs_baseline(rows: &[Row]) -> String {
    let mut out = format!(
        "\n**vs {}** (paired ratio over the repeats, 95 % confidence interval):\n\n",
        rows[0].spec
    );
    out += &line(["strategy", "metric", "ratio", "95% CI", "verdict", "pairs"]);
    out += &line([":---", ":---", "---:", "---:", ":---", "---:"]);
    for r in &rows[1..] {
        for metric in Metric::ALL {
            let c = r.vs_baseline.get(metric);
            out += &line([
                r.strategy.clone(),
                metric.name().to_string(),
                verdicts::fmt_ratio(c.ratio),
                verdicts::fmt_interval(c),
                c.verdict.name().to_string(),
                c.pairs.to_string(),
            ]);
        }
    }
    out += "\n";
    for sentence in verdicts::sentences(rows) {
        out += &format!("- {}\n", sentence.replace('|', "\\|"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample_rows;

    /// Cells of a table line, splitting on pipes that are not escaped.
    fn cells(line: &str) -> Vec<String> {
        let inner = line
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
            .unwrap_or_else(|| panic!("not a table line: {line}"));
        let mut out = vec![String::new()];
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.last_mut().unwrap().extend(chars.next()),
                '|' => out.push(String::new()),
                c => out.last_mut().unwrap().push(c),
            }
        }
        out.iter().map(|c| c.trim().to_string()).collect()
    }

    #[test]
    fn every_line_has_every_column() {
        let mut rows = sample_rows();
        rows[0].strategy = "odd|name".into();
        let text = Markdown.render(&rows);
        let lines: Vec<&str> = text.lines().take_while(|l| l.starts_with('|')).collect();
        assert_eq!(lines.len(), 2 + rows.len(), "{text}");
        for l in &lines {
            assert_eq!(cells(l).len(), HUMAN_COLUMNS.len(), "{l}");
        }
        assert_eq!(cells(lines[0])[2], "MiB/s");
        assert_eq!(cells(lines[1])[0], ":---");
        assert_eq!(cells(lines[1])[2], "---:");
        assert_eq!(cells(lines[2])[0], "odd|name");
        assert_eq!(cells(lines[3])[0], rows[1].strategy);
        assert_eq!(cells(lines[4])[13], "deadlock x1, stall x1, unsteady r2");
    }

    #[test]
    fn every_metric_of_every_strategy_is_listed_with_its_interval() {
        let rows = sample_rows();
        let text = Markdown.render(&rows);
        let table: Vec<Vec<String>> = text
            .lines()
            .skip_while(|l| !l.starts_with("| strategy | metric |"))
            .take_while(|l| l.starts_with('|'))
            .map(cells)
            .collect();
        assert_eq!(table.len(), 2 + 2 * Metric::ALL.len(), "{text}");
        assert!(table.iter().all(|c| c.len() == 6));
        assert_eq!(
            table[2],
            [
                "kthread:max_workers=4,idle_thresh=\"32\"",
                "mib_s",
                "1.25",
                "1.20–1.30",
                "faster",
                "3"
            ]
        );
        let broken = &table[2 + Metric::ALL.len()];
        assert_eq!(broken[2..], ["-", "-", "unknown", "0"]);
        let bullets: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
        assert_eq!(bullets.len(), 2);
        assert!(bullets[0].starts_with("- kthread (endio shared) vs inline: throughput"));
        // A lone baseline has nothing to compare.
        assert!(!Markdown.render(&rows[..1]).contains("**vs"));
    }
}
