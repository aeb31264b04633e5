//! The summary rows as a JSON array, field names as in `summary::Row`; a number that does
//! not exist (no successful run) is `null`.

use super::Exporter;
use crate::summary::Row;

pub struct Json;

impl Exporter for Json {
    fn render(&self, rows: &[Row]) -> String {
        serde_json::to_string_pretty(rows).expect("summary rows serialize") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::sample_rows;
    use serde_json::Value;

    #[test]
    fn parses_back_with_every_row() {
        let rows = sample_rows();
        let v: Value = serde_json::from_str(&Json.render(&rows)).unwrap();
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), rows.len());
        assert_eq!(list[1]["strategy"], rows[1].strategy.as_str());
        assert_eq!(list[0]["topology"], "separate");
        assert_eq!(list[0]["mib_s_median"], 1834.5678);
        assert!(list[2]["mib_s_median"].is_null());
        assert_eq!(list[2]["problems"][0], "deadlock x1");
    }
}
