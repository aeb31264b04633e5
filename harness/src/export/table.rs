//! The terminal table `compare` prints, then one sentence per strategy saying how it
//! compares with the baseline.

use super::{human_cells, verdicts, Align, Exporter, HUMAN_COLUMNS};
use crate::summary::Row;

pub struct Table;

impl Exporter for Table {
    fn render(&self, rows: &[Row]) -> String {
        let cells: Vec<[String; HUMAN_COLUMNS.len()]> = rows.iter().map(human_cells).collect();
        let mut widths = HUMAN_COLUMNS.map(|(h, _)| h.len());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let mut s = String::new();
            for ((c, w), (_, align)) in cols.iter().zip(widths).zip(HUMAN_COLUMNS) {
                match align {
                    Align::Left => s += &format!("{c:<w$}  "),
                    Align::Right => s += &format!("{c:>w$}  "),
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&HUMAN_COLUMNS.map(|(h, _)| h.to_string()));
        for row in &cells {
            out += &line(row);
        }
        let said = verdicts::sentences(rows);
        if !said.is_empty() {
            out += "\n";
            for sentence in said {
                out += &(sentence + "\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample_rows;

    #[test]
    fn columns_line_up() {
        let rows = sample_rows();
        let text = Table.render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        // Header, three rows, a blank line, a sentence for each row after the baseline.
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(lines[4], "");
        assert_eq!(lines[5], verdicts::sentence(&rows[1], &rows[0]));
        assert!(lines[0].starts_with("strategy"));
        // The right-aligned MiB/s column ends at the same place on every line.
        let end = lines[0].find("MiB/s").unwrap() + "MiB/s".len();
        assert_eq!(&lines[1][end - 4..end], "1835", "{text}");
        assert_eq!(&lines[3][end - 1..end], "-", "{text}");
        let ratio = lines[0].find("ratio [95% CI]").unwrap();
        assert!(
            lines[2][ratio..].starts_with("1.25 [1.20, 1.30] faster "),
            "{text}"
        );
        assert!(lines[2].ends_with("ok x3, +1 warm-up, noisy r2, outlier r1,r3"));
    }
}
