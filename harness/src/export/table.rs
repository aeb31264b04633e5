//! The terminal table `compare` prints.

use super::{fmt_num, fmt_us, Exporter};
use crate::pipeline::Topology;
use crate::summary::Row;

pub struct Table;

const HEADERS: [&str; 13] = [
    "strategy",
    "endio",
    "MiB/s",
    "min-max",
    "ratio",
    "e2e p50",
    "p99",
    "p99.9",
    "CPU s/GiB",
    "vcsw/GiB",
    "ivcsw/GiB",
    "min MiB/s",
    "status",
];

impl Exporter for Table {
    fn render(&self, rows: &[Row]) -> String {
        let cells: Vec<[String; 13]> = rows
            .iter()
            .map(|r| {
                [
                    r.strategy.clone(),
                    match r.topology {
                        Topology::Separate => "separate".into(),
                        Topology::Shared => "shared".into(),
                    },
                    fmt_num(r.mib_s_median, 0),
                    if r.mib_s_min.is_nan() {
                        "-".into()
                    } else {
                        format!("{:.0}-{:.0}", r.mib_s_min, r.mib_s_max)
                    },
                    fmt_num(r.ratio, 2),
                    fmt_us(r.e2e_p50_us),
                    fmt_us(r.e2e_p99_us),
                    fmt_us(r.e2e_p999_us),
                    fmt_num(r.cpu_s_per_gib, 3),
                    fmt_num(r.vcsw_per_gib, 0),
                    fmt_num(r.ivcsw_per_gib, 0),
                    fmt_num(r.min_interval_mib_s, 0),
                    if r.problems.is_empty() {
                        format!("ok x{}", r.runs)
                    } else {
                        r.problems.join(", ")
                    },
                ]
            })
            .collect();
        let mut widths = HEADERS.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                // Text columns left-aligned, numbers right-aligned.
                if i < 2 || i == 12 {
                    s += &format!("{c:<w$}  ");
                } else {
                    s += &format!("{c:>w$}  ");
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&HEADERS.map(String::from));
        for row in &cells {
            out += &line(row);
        }
        out
    }
}
