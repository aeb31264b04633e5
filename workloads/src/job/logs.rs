//! fio's per-job logs: `write_bw_log`, `write_iops_log`, `write_lat_log` with
//! `log_avg_msec`, `per_job_logs` and `log_offset`. The job says which it wants; the
//! harness records them and writes them, in fio's format and under fio's names, into the
//! case's results folder (never where a prefix points: csumbench writes only where the
//! user said).

use serde::Serialize;

/// The logs a job asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logs {
    /// Each log's prefix, when asked for; empty: the job's name (fio's default).
    pub bw: Option<String>,
    pub iops: Option<String>,
    pub lat: Option<String>,
    /// fio's `log_avg_msec`: one entry per window of this many ms, the average over it;
    /// 0 (fio's default): one entry per I/O.
    pub avg_msec: u32,
    /// fio's `per_job_logs`: the job's number in the file names (`PREFIX_bw.N.log`).
    pub per_job: bool,
    /// fio's `log_offset`: each per-I/O entry carries the I/O's offset.
    pub offset: bool,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            bw: None,
            iops: None,
            lat: None,
            avg_msec: 0,
            per_job: true,
            offset: false,
        }
    }
}

/// One of fio's log files: what it holds, and the suffix fio gives its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Bw,
    Iops,
    /// Total latency, submission and completion latency: `write_lat_log` writes all three.
    Lat,
    Slat,
    Clat,
}

impl LogKind {
    pub fn suffix(self) -> &'static str {
        match self {
            LogKind::Bw => "bw",
            LogKind::Iops => "iops",
            LogKind::Lat => "lat",
            LogKind::Slat => "slat",
            LogKind::Clat => "clat",
        }
    }
}

impl Logs {
    /// Whether any log is asked for.
    pub fn any(&self) -> bool {
        self.bw.is_some() || self.iops.is_some() || self.lat.is_some()
    }

    /// Every log file asked for, each with its prefix (`job` where none was given).
    pub fn files<'a>(&'a self, job: &'a str) -> Vec<(LogKind, &'a str)> {
        let prefix = |p: &'a String| if p.is_empty() { job } else { p.as_str() };
        let lat = [LogKind::Lat, LogKind::Slat, LogKind::Clat];
        let mut files = Vec::new();
        files.extend(self.bw.iter().map(|p| (LogKind::Bw, prefix(p))));
        files.extend(self.iops.iter().map(|p| (LogKind::Iops, prefix(p))));
        if let Some(p) = &self.lat {
            files.extend(lat.map(|kind| (kind, prefix(p))));
        }
        files
    }

    /// fio's file name of a log of the job numbered `number` (from 1).
    pub fn file_name(&self, kind: LogKind, prefix: &str, number: u32) -> String {
        match self.per_job {
            true => format!("{prefix}_{}.{number}.log", kind.suffix()),
            false => format!("{prefix}_{}.log", kind.suffix()),
        }
    }
}

/// A log prefix names files in the case's results folder: no path may lead out of it.
pub fn check_prefix(key: &str, prefix: &str) -> Result<(), String> {
    if prefix.contains('/') || prefix == ".." || prefix.contains('\0') {
        return Err(format!(
            "{key}={prefix}: a log prefix names files in the case's results folder; \
             it may not hold '/' or be '..'"
        ));
    }
    Ok(())
}

/// `write_*_log=PREFIX`; the bare name (no prefix) means the job's name, as in fio.
pub(crate) fn prefix(key: &str, value: &str) -> Result<Option<String>, String> {
    let prefix = value.trim();
    check_prefix(key, prefix)?;
    Ok(Some(prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_as_fio_names_them() {
        let logs = Logs {
            bw: Some("p".into()),
            lat: Some(String::new()),
            ..Logs::default()
        };
        let names: Vec<String> = logs
            .files("job")
            .into_iter()
            .map(|(kind, prefix)| logs.file_name(kind, prefix, 2))
            .collect();
        assert_eq!(
            names,
            [
                "p_bw.2.log",
                "job_lat.2.log",
                "job_slat.2.log",
                "job_clat.2.log"
            ]
        );
        let shared = Logs {
            per_job: false,
            ..logs
        };
        assert_eq!(shared.file_name(LogKind::Iops, "p", 2), "p_iops.log");
        assert!(!Logs::default().any() && shared.any());
    }

    #[test]
    fn a_prefix_may_not_leave_the_results_folder() {
        assert_eq!(prefix("write_bw_log", " p "), Ok(Some("p".into())));
        assert_eq!(prefix("write_bw_log", ""), Ok(Some(String::new())));
        for bad in ["../p", "/tmp/p", "a/b", ".."] {
            let e = prefix("write_lat_log", bad).unwrap_err();
            assert!(e.starts_with(&format!("write_lat_log={bad}: ")), "{e}");
        }
    }
}
