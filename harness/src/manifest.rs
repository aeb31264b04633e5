//! `manifest.json`: the machine, the software and the full configuration of a run, so a
//! number can always be traced back to what produced it.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use strategies::csum::{self, Algo, CostCalibration, Crc32cCalibration};

use crate::measure::clock::{self, ClockReport};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    pub cpus_online: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub os: String,
    /// The CPU features that decide checksum speed.
    pub cpu_flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Software {
    pub csumbench: &'static str,
    pub git_revision: String,
    pub rustc_target: &'static str,
    pub crates: BTreeMap<String, String>,
    /// Every fixed algorithm and every one the jobs use: the implementation that runs.
    pub checksum_implementations: BTreeMap<String, String>,
    /// Which crc32c runs, whether `--csum-impl` forced it, and each candidate's GiB/s here.
    pub crc32c: Crc32cCalibration,
    /// For each `cost:` checksum the jobs use: requested against achieved ns per sector.
    pub synthetic_costs: Vec<CostCalibration>,
    /// The clock the latencies were measured with (TSC or CLOCK_MONOTONIC, and why).
    pub latency_clock: ClockReport,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn cpuinfo_field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

pub fn machine() -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let flags = cpuinfo_field(&cpuinfo, "flags").unwrap_or_default();
    let interesting = [
        "sse4_2",
        "pclmulqdq",
        "avx",
        "avx2",
        "avx512f",
        "avx512vl",
        "vpclmulqdq",
        "sha_ni",
        "aes",
        "bmi2",
    ];
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap_or("unknown")
        .trim_matches('"')
        .to_string();
    Machine {
        hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        cpu_model: cpuinfo_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        cpus_online: strategies::registry::online_cpus(),
        memory_bytes: memory_kib * 1024,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        os,
        cpu_flags: flags
            .split_whitespace()
            .filter(|f| interesting.contains(f))
            .map(String::from)
            .collect(),
    }
}

/// The git revision of the source tree the binary was built from, `-dirty` if modified.
fn git_revision() -> String {
    let src = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(src)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    }
}

/// The software, with the checksums `algos` (the jobs') calibrated and recorded.
pub fn software(algos: &[Algo]) -> Software {
    let mut in_use: Vec<Algo> = Algo::ALL.to_vec();
    in_use.extend(algos.iter().filter(|a| !Algo::ALL.contains(a)));
    Software {
        csumbench: env!("CARGO_PKG_VERSION"),
        git_revision: git_revision(),
        rustc_target: std::env::consts::ARCH,
        crates: env!("CSUMBENCH_CRATES")
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        checksum_implementations: in_use
            .iter()
            .map(|a| (a.name().to_string(), a.implementation()))
            .collect(),
        crc32c: csum::crc32c_calibration(),
        synthetic_costs: algos
            .iter()
            .filter_map(|a| match *a {
                Algo::Cost { ns_per_sector } => Some(csum::cost_calibration(ns_per_sector)),
                _ => None,
            })
            .collect(),
        latency_clock: clock::clock().report().clone(),
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn parts(t: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

/// ISO 8601 UTC, for the manifest.
pub fn utc_iso(t: SystemTime) -> String {
    let (y, m, d, h, mi, s) = parts(t);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A timestamp that sorts and is safe in a file name: `20261121-103300`.
pub fn utc_stamp(t: SystemTime) -> String {
    let (y, m, d, h, mi, s) = parts(t);
    format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_iso(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_259_045);
        assert_eq!(utc_iso(t), "2026-11-21T11:04:05Z");
        assert_eq!(utc_stamp(t), "20261121-110405");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_iso(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn machine_facts_are_read() {
        let m = machine();
        assert!(m.cpus_online >= 1);
        assert!(!m.kernel.is_empty());
        let s = software(&[
            Algo::Sha256,
            Algo::Cost {
                ns_per_sector: 5_000,
            },
        ]);
        for c in ["crc32c", "crc-fast", "crc", "xxhash-rust", "blake2", "sha2"] {
            assert!(s.crates.contains_key(c), "{c}: {:?}", s.crates);
        }
        assert!(s.checksum_implementations.contains_key("cost:5us"));
        assert_eq!(s.checksum_implementations.len(), Algo::ALL.len() + 1);
        let candidates = &s.crc32c.candidates;
        assert!(candidates
            .iter()
            .any(|c| c.name == s.crc32c.chosen && c.verified));
        assert!(
            candidates.iter().all(|c| c.gib_s_4k.is_some()),
            "{candidates:?}"
        );
        assert_eq!(s.synthetic_costs.len(), 1);
        assert_eq!(s.synthetic_costs[0].requested_ns, 5_000);
        let clock = serde_json::to_value(&s.latency_clock).unwrap();
        let source = clock["source"].as_str().unwrap();
        assert!(["tsc", "clock_monotonic"].contains(&source), "{clock}");
        assert_eq!(clock["tsc_hz"].is_null(), source != "tsc", "{clock}");
        assert_eq!(clock["fallback"].is_null(), source == "tsc", "{clock}");
    }
}
