//! CSV for scripts and spreadsheets: one header row, plain numbers (units live in the
//! column names, which are the JSON field names), empty cells where there is no number,
//! RFC 4180 quoting (strategy specs have commas).

use std::borrow::Cow;

use super::Exporter;
use crate::summary::{Metric, Row};

pub struct Csv;

/// Full precision: Rust prints the shortest text that parses back to the same f64, and
/// never in exponent form.
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        String::new()
    }
}

type Cell = Box<dyn Fn(&Row) -> String>;
type FixedCell = fn(&Row) -> String;

/// "2 5" for a list of repeats.
fn repeats(list: &[u32]) -> String {
    let names: Vec<String> = list.iter().map(u32::to_string).collect();
    names.join(" ")
}

const FIXED: [(&str, FixedCell); 19] = [
    ("strategy", |r| r.strategy.clone()),
    ("topology", |r| crate::names::name(&r.topology)),
    ("runs", |r| r.runs.to_string()),
    ("problems", |r| r.problems.join(", ")),
    ("mib_s_median", |r| num(r.mib_s_median)),
    ("mib_s_min", |r| num(r.mib_s_min)),
    ("mib_s_max", |r| num(r.mib_s_max)),
    ("e2e_p50_us", |r| num(r.e2e_p50_us)),
    ("e2e_p99_us", |r| num(r.e2e_p99_us)),
    ("e2e_p999_us", |r| num(r.e2e_p999_us)),
    ("cpu_s_per_gib", |r| num(r.cpu_s_per_gib)),
    ("vcsw_per_gib", |r| num(r.vcsw_per_gib)),
    ("ivcsw_per_gib", |r| num(r.ivcsw_per_gib)),
    ("min_interval_mib_s", |r| num(r.min_interval_mib_s)),
    ("spec", |r| r.spec.clone()),
    ("warmups", |r| r.warmups.to_string()),
    ("outlier_repeats", |r| repeats(&r.outlier_repeats)),
    ("interference_repeats", |r| repeats(&r.interference_repeats)),
    ("unsteady_repeats", |r| repeats(&r.unsteady_repeats)),
];

/// The fixed columns, then five per metric: `<metric>_ratio`, `_ci95_lo`, `_ci95_hi`,
/// `_verdict`, `_pairs`.
fn columns() -> Vec<(String, Cell)> {
    let mut columns: Vec<(String, Cell)> = FIXED
        .into_iter()
        .map(|(name, cell)| (name.to_string(), Box::new(cell) as Cell))
        .collect();
    for metric in Metric::ALL {
        let of = move |r: &Row| *r.vs_baseline.get(metric);
        let name = metric.name();
        columns.push((format!("{name}_ratio"), Box::new(move |r| num(of(r).ratio))));
        columns.push((
            format!("{name}_ci95_lo"),
            Box::new(move |r| num(of(r).ci95_lo)),
        ));
        columns.push((
            format!("{name}_ci95_hi"),
            Box::new(move |r| num(of(r).ci95_hi)),
        ));
        columns.push((
            format!("{name}_verdict"),
            Box::new(move |r| of(r).verdict.name().to_string()),
        ));
        columns.push((
            format!("{name}_pairs"),
            Box::new(move |r| of(r).pairs.to_string()),
        ));
    }
    columns
}

pub(crate) fn quote(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

impl Exporter for Csv {
    fn render(&self, rows: &[Row]) -> String {
        let columns = columns();
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let mut out = names.join(",") + "\n";
        for r in rows {
            let fields: Vec<String> = columns
                .iter()
                .map(|(_, cell)| quote(&cell(r)).into_owned())
                .collect();
            out += &(fields.join(",") + "\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample_rows;

    /// A small RFC 4180 reader: quoted fields, doubled quotes, commas and newlines inside.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(
            !quoted && field.is_empty() && record.is_empty(),
            "unterminated"
        );
        records
    }

    fn back(cell: &str) -> f64 {
        if cell.is_empty() {
            f64::NAN
        } else {
            cell.parse()
                .unwrap_or_else(|e| panic!("'{cell}' is not a number: {e}"))
        }
    }

    fn same_number(x: f64, cell: &str) {
        let y = back(cell);
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{x} vs {cell}"
        );
    }

    #[test]
    fn round_trips_through_a_csv_reader() {
        let rows = sample_rows();
        let records = parse(&Csv.render(&rows));
        assert_eq!(records.len(), 1 + rows.len());
        let header = &records[0];
        assert_eq!(header.len(), FIXED.len() + 5 * Metric::ALL.len());
        assert!(records.iter().all(|r| r.len() == header.len()));
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        // No units in the cells; units are in the names.
        assert_eq!(header[0], "strategy");
        assert!(header.iter().any(|h| h == "e2e_p99_us"));
        for (row, rec) in rows.iter().zip(&records[1..]) {
            assert_eq!(rec[0], row.strategy);
            assert_eq!(rec[1], crate::names::name(&row.topology));
            assert_eq!(rec[2].parse::<usize>().unwrap(), row.runs);
            assert_eq!(rec[3], row.problems.join(", "));
            let numbers = [
                row.mib_s_median,
                row.mib_s_min,
                row.mib_s_max,
                row.e2e_p50_us,
                row.e2e_p99_us,
                row.e2e_p999_us,
                row.cpu_s_per_gib,
                row.vcsw_per_gib,
                row.ivcsw_per_gib,
                row.min_interval_mib_s,
            ];
            for (x, cell) in numbers.iter().zip(&rec[4..]) {
                same_number(*x, cell);
            }
            assert_eq!(rec[at("spec")], row.spec);
            for metric in Metric::ALL {
                let (c, name) = (row.vs_baseline.get(metric), metric.name());
                same_number(c.ratio, &rec[at(&format!("{name}_ratio"))]);
                same_number(c.ci95_lo, &rec[at(&format!("{name}_ci95_lo"))]);
                same_number(c.ci95_hi, &rec[at(&format!("{name}_ci95_hi"))]);
                assert_eq!(rec[at(&format!("{name}_verdict"))], c.verdict.name());
                assert_eq!(rec[at(&format!("{name}_pairs"))], c.pairs.to_string());
            }
        }
        assert_eq!(records[2][at("outlier_repeats")], "1 3");
        assert_eq!(records[2][at("mib_s_verdict")], "faster");
        assert_eq!(records[2][at("warmups")], "1");
    }

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("inline"), "inline");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(num(f64::NAN), "");
        assert_eq!(num(1e21), "1000000000000000000000");
    }
}
