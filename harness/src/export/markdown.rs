//! A GitHub-flavoured Markdown table: the terminal table's cells, for pasting into issues
//! and notes.

use super::{human_cells, Align, Exporter, HUMAN_COLUMNS};
use crate::summary::Row;

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
        out
    }
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
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + rows.len(), "{text}");
        for l in &lines {
            assert_eq!(cells(l).len(), HUMAN_COLUMNS.len(), "{l}");
        }
        assert_eq!(cells(lines[0])[2], "MiB/s");
        assert_eq!(cells(lines[1])[0], ":---");
        assert_eq!(cells(lines[1])[2], "---:");
        assert_eq!(cells(lines[2])[0], "odd|name");
        assert_eq!(cells(lines[3])[0], rows[1].strategy);
        assert_eq!(cells(lines[4])[12], "deadlock x1, stall x1");
    }
}
