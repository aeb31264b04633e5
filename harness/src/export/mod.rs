//! Exporters: one trait, one file per format (as hyperfine does).

mod table;

pub use table::Table;

use crate::summary::Row;

pub trait Exporter {
    fn render(&self, rows: &[Row]) -> String;
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
