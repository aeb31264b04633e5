//! A job: fio's options, with fio's names and meanings. Both the command line and job
//! files go through [`JobSpec::set`], so an option means the same thing everywhere.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::engine::EngineKind;
use crate::units::{format_size, parse_duration, parse_size};
use crate::{MAX_BIO, SECTOR_SIZE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RwMode {
    Read,
    Write,
    RandRead,
    RandWrite,
}

impl RwMode {
    pub fn is_write(self) -> bool {
        matches!(self, RwMode::Write | RwMode::RandWrite)
    }

    pub fn is_random(self) -> bool {
        matches!(self, RwMode::RandRead | RwMode::RandWrite)
    }

    pub fn name(self) -> &'static str {
        match self {
            RwMode::Read => "read",
            RwMode::Write => "write",
            RwMode::RandRead => "randread",
            RwMode::RandWrite => "randwrite",
        }
    }
}

/// One fio job. Defaults are fio's, except `csum` (ours) and `size` (fio has none; ours
/// is 1 GiB so a bare `harness run` does something sensible).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSpec {
    pub name: String,
    pub rw: RwMode,
    pub bs: u64,
    pub size: u64,
    pub numjobs: u32,
    pub iodepth: u32,
    pub direct: bool,
    /// fsync after every N writes (0: never).
    pub fsync: u32,
    pub end_fsync: bool,
    #[serde(with = "opt_secs")]
    pub runtime: Option<Duration>,
    pub time_based: bool,
    pub filename: Option<PathBuf>,
    pub directory: Option<PathBuf>,
    pub ioengine: EngineKind,
    /// Checksum algorithm name (crc32c, sha256, none); checked by whoever computes it.
    pub csum: String,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            name: "job".into(),
            rw: RwMode::Read,
            bs: 4096,
            size: 1 << 30,
            numjobs: 1,
            iodepth: 1,
            direct: false,
            fsync: 0,
            end_fsync: false,
            runtime: None,
            time_based: false,
            filename: None,
            directory: None,
            ioengine: EngineKind::Psync,
            csum: "crc32c".into(),
        }
    }
}

/// The options [`JobSpec::set`] accepts, with one line of help each (fio's meanings).
pub const OPTIONS: &[(&str, &str)] = &[
    ("name", "job name"),
    ("rw", "read | write | randread | randwrite"),
    (
        "bs",
        "block size per I/O, multiple of 4k (k/m/g, base 1024)",
    ),
    ("size", "bytes of I/O per job, and the file size (k/m/g)"),
    (
        "numjobs",
        "submitter threads, each with its own file unless filename is set",
    ),
    ("iodepth", "I/Os (bios) in flight per job"),
    ("direct", "1: O_DIRECT, bypass the page cache"),
    ("fsync", "fsync after every N writes (0: never)"),
    (
        "end_fsync",
        "1: fsync when the job's writes are done (counted in its time)",
    ),
    ("runtime", "stop after this long (s, m, h, ms)"),
    (
        "time_based",
        "1: keep going until runtime, wrapping around the file",
    ),
    ("filename", "file or block device to use"),
    ("directory", "directory for the job's files"),
    ("ioengine", "psync | null"),
    ("csum", "checksum per 4 KiB sector: crc32c | sha256 | none"),
];

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "1" | "true" | "yes" | "on" | "" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        v => Err(format!("{key}={v}: expected 0 or 1")),
    }
}

fn count(key: &str, value: &str, min: u32) -> Result<u32, String> {
    let v: u32 = value
        .trim()
        .parse()
        .map_err(|_| format!("{key}={value}: expected a whole number"))?;
    if v < min {
        return Err(format!("{key}={value}: must be at least {min}"));
    }
    Ok(v)
}

impl JobSpec {
    /// Sets one option by its fio name. Errors name the option and the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let key = key.trim();
        let size = |v: &str| parse_size(v).map_err(|e| format!("{key}={v}: {e}"));
        match key {
            "name" => self.name = value.trim().to_string(),
            "rw" | "readwrite" => {
                self.rw = match value.trim() {
                    "read" => RwMode::Read,
                    "write" => RwMode::Write,
                    "randread" => RwMode::RandRead,
                    "randwrite" => RwMode::RandWrite,
                    v => {
                        return Err(format!(
                            "{key}={v}: expected read, write, randread or randwrite"
                        ))
                    }
                }
            }
            "bs" | "blocksize" => self.bs = size(value)?,
            "size" => self.size = size(value)?,
            "numjobs" => self.numjobs = count(key, value, 1)?,
            "iodepth" => self.iodepth = count(key, value, 1)?,
            "direct" => self.direct = flag(key, value)?,
            "buffered" => self.direct = !flag(key, value)?,
            "fsync" => self.fsync = count(key, value, 0)?,
            "end_fsync" => self.end_fsync = flag(key, value)?,
            "runtime" | "timeout" => {
                let d = parse_duration(value).map_err(|e| format!("{key}={value}: {e}"))?;
                self.runtime = (!d.is_zero()).then_some(d);
            }
            "time_based" => self.time_based = flag(key, value)?,
            "filename" => self.filename = Some(PathBuf::from(value.trim())),
            "directory" => self.directory = Some(PathBuf::from(value.trim())),
            "ioengine" => self.ioengine = value.trim().parse()?,
            "csum" => self.csum = value.trim().to_string(),
            _ => return Err(format!("unsupported option '{key}'")),
        }
        Ok(())
    }

    /// Checks the job as a whole; the error says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.bs == 0 || self.bs % SECTOR_SIZE != 0 {
            return Err(format!(
                "bs={}: must be a non-zero multiple of the 4KiB checksum sector",
                format_size(self.bs)
            ));
        }
        if self.size == 0 {
            return Err("size=0: nothing to do".into());
        }
        if self.size < self.bs {
            return Err(format!(
                "size={} is smaller than bs={}",
                format_size(self.size),
                format_size(self.bs)
            ));
        }
        if self.time_based && self.runtime.is_none() {
            return Err("time_based=1 needs a runtime".into());
        }
        Ok(())
    }

    /// Bios per I/O: btrfs splits I/Os larger than 1 MiB.
    pub fn bio_size(&self) -> u64 {
        self.bs.min(MAX_BIO)
    }

    /// The span of the file a job touches: whole blocks of `bs` within `size`.
    pub fn blocks(&self) -> u64 {
        self.size / self.bs
    }
}

mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_option_is_accepted() {
        let samples = [
            ("name", "x"),
            ("rw", "randwrite"),
            ("bs", "64k"),
            ("size", "1g"),
            ("numjobs", "2"),
            ("iodepth", "8"),
            ("direct", "1"),
            ("fsync", "4"),
            ("end_fsync", "1"),
            ("runtime", "10"),
            ("time_based", "1"),
            ("filename", "/tmp/x"),
            ("directory", "/tmp"),
            ("ioengine", "null"),
            ("csum", "sha256"),
        ];
        assert_eq!(samples.len(), OPTIONS.len());
        let mut j = JobSpec::default();
        for (k, v) in samples {
            assert!(OPTIONS.iter().any(|(o, _)| *o == k), "{k} not documented");
            j.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        assert_eq!(j.rw, RwMode::RandWrite);
        assert_eq!(j.bs, 65536);
        assert_eq!(j.iodepth, 8);
        assert!(j.direct && j.end_fsync && j.time_based);
        assert_eq!(j.runtime, Some(Duration::from_secs(10)));
        j.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_option() {
        let mut j = JobSpec::default();
        assert!(j.set("rw", "sideways").unwrap_err().contains("rw=sideways"));
        assert!(j.set("iodepth", "0").unwrap_err().contains("iodepth=0"));
        assert!(j.set("numjobs", "-1").unwrap_err().contains("numjobs=-1"));
        assert!(j.set("bs", "4q").unwrap_err().contains("bs=4q"));
        assert!(j
            .set("verify_pattern", "1")
            .unwrap_err()
            .contains("verify_pattern"));
    }

    #[test]
    fn validation_catches_edges() {
        let job = |k: &str, v: &str| {
            let mut j = JobSpec::default();
            j.set(k, v).unwrap();
            j.validate()
        };
        assert!(job("bs", "512").unwrap_err().contains("4KiB"));
        assert!(job("size", "0").unwrap_err().contains("size=0"));
        assert!(job("size", "2k").unwrap_err().contains("smaller than bs"));
        assert!(job("time_based", "1").unwrap_err().contains("runtime"));
        assert!(job("bs", "6k").is_err());
        assert!(job("bs", "8k").is_ok());
    }
}
