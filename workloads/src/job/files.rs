//! A job's files as fio sets them: `nrfiles`, `filesize` (a size or a range), the order
//! files are served in (`file_service_type`), `filename` lists (`a:b`, `\:` for a colon
//! in a name), `filename_format`, `create_on_open` and `unlink`; and how fio's
//! `setup_files` shares a clone's I/O among its files ([`JobSpec::file_sizes`]).

use std::path::PathBuf;

use serde::Serialize;

use super::pattern::distribution;
use super::values::{count, size};
use super::{mix64, Distribution, JobSpec};
use crate::units::KbBase;

/// fio's `file_service_type`: which file the next I/O goes to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileService {
    /// Each file in turn, `ios` I/Os each (fio's default, `roundrobin`).
    RoundRobin {
        ios: u32,
    },
    /// A file at random, `ios` I/Os each.
    Random {
        ios: u32,
    },
    /// One file to its end, then the next.
    Sequential {
        ios: u32,
    },
    /// Files by fio's zipf, pareto or normal (`gauss`) distribution, with its parameter
    /// and where its hot spot is (0 to 1; `None`: at random, as fio's default).
    Zipf(f64, Option<f64>),
    Pareto(f64, Option<f64>),
    Normal(f64, Option<f64>),
}

/// The files of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Files {
    /// fio's `nrfiles` (`nr_files`): files per clone (default 1).
    pub nrfiles: u32,
    /// fio's `filesize`: each file's size, or a range each file's is drawn from (default:
    /// `size` / `nrfiles`).
    pub filesize: Option<(u64, u64)>,
    pub service: FileService,
    /// The names of a `filename=a:b:c` list after the first (which is `filename`).
    pub more_names: Vec<PathBuf>,
    /// fio's `filename_format` when it is not the default `$jobname.$jobnum.$filenum`.
    pub format: Option<String>,
    /// fio's `create_on_open`: create a file when the job first opens it, not before.
    pub create_on_open: bool,
    /// fio's `unlink`: remove the job's files when it ends.
    pub unlink: bool,
    /// `size` was given. fio has no default size: with `filesize` alone, a pass is the
    /// files' sizes together.
    pub size_given: bool,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            nrfiles: 1,
            filesize: None,
            service: FileService::RoundRobin { ios: 1 },
            more_names: Vec::new(),
            format: None,
            create_on_open: false,
            unlink: false,
            size_given: false,
        }
    }
}

/// fio's default file names, which csumbench's are.
pub const DEFAULT_FORMAT: &str = "$jobname.$jobnum.$filenum";

impl JobSpec {
    /// How many files each clone has: the names of a `filename` list, else `nrfiles`.
    pub fn nr_files(&self) -> u32 {
        match self.filename {
            Some(_) => 1 + self.files.more_names.len() as u32,
            None => self.files.nrfiles,
        }
    }

    /// The name of clone `jobnum`'s file `filenum`, before `directory`: the `filename`
    /// list's, else `NAME.JOBNUM.FILENUM`, or `filename_format` with `$jobname`, `$jobnum`
    /// and `$filenum` put in (in any case, as fio's `make_filename`), in one pass: what
    /// is put in is not read again.
    pub fn file_name(&self, jobnum: u32, filenum: u32) -> PathBuf {
        if let Some(first) = &self.filename {
            return match filenum {
                0 => first.clone(),
                n => self.files.more_names[n as usize - 1].clone(),
            };
        }
        let Some(format) = &self.files.format else {
            return PathBuf::from(format!("{}.{jobnum}.{filenum}", self.name));
        };
        let values = [
            ("$jobname", self.name.clone()),
            ("$jobnum", jobnum.to_string()),
            ("$filenum", filenum.to_string()),
        ];
        let mut name = String::new();
        let mut rest = format.as_str();
        while !rest.is_empty() {
            let lower = rest.to_ascii_lowercase();
            let found = values.iter().find(|(k, _)| lower.starts_with(k));
            match found {
                Some((keyword, value)) => {
                    name.push_str(value);
                    rest = &rest[keyword.len()..];
                }
                None => {
                    let c = rest.chars().next().expect("not empty");
                    name.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        PathBuf::from(name)
    }

    /// Each of clone `jobnum`'s files' share of its I/O (fio's `f->io_size`), as fio's
    /// `setup_files` works it out, in whole blocks of the smallest size: `filesize` (drawn
    /// in its range, the same way on every run) less the clone's offset; else `size`
    /// split evenly (fio gives the first files a block more each for what does not divide
    /// into blocks, which is never more than a few bytes: so the files issue whole blocks
    /// of their share, and the rest of `size` is not issued). One file without `filesize`
    /// has `size` itself.
    pub fn file_sizes(&self, jobnum: u32) -> Vec<u64> {
        if !self.has_file_set() {
            return vec![self.size];
        }
        let (n, bs) = (u64::from(self.nr_files()), self.min_bs().max(1));
        let Some((low, high)) = self.files.filesize else {
            let each = self.size / n;
            let extra = (self.size - each * n) / bs;
            return (0..n).map(|i| each + bs * u64::from(i < extra)).collect();
        };
        let start = self.region(jobnum, 0).start;
        let mut draw = mix64(self.randseed.unwrap_or(0) ^ mix64(u64::from(jobnum)));
        (0..n)
            .map(|_| {
                draw = mix64(draw);
                let size = low + (draw % (high - low + 1));
                let size = size.saturating_sub(start);
                size - size % bs
            })
            .collect()
    }

    /// Bytes of one pass over all of a clone's files (fio's `o->size` once `setup_files`
    /// has run): the files' shares together, but no more than `size` where it was given.
    pub fn pass_size(&self, jobnum: u32) -> u64 {
        let total: u64 = self.file_sizes(jobnum).iter().sum();
        match self.files.size_given || self.files.filesize.is_none() {
            true => total.min(self.size),
            false => total,
        }
    }

    /// Whether a clone's I/O is shared among files (more than one, or sized by
    /// `filesize`), rather than going to the one file the job itself describes.
    pub fn has_file_set(&self) -> bool {
        self.nr_files() > 1 || self.files.filesize.is_some()
    }

    /// The job as one of its files sees it: `size` bytes of that file, one file. With
    /// several files the pass, loops and limits are the whole clone's, so the file's own
    /// job makes one pass over it; one file sized by `filesize` stops, as fio's, after the
    /// job's `size` where that is less (fio's `o->size`, the bytes of a pass).
    pub fn for_file(&self, size: u64) -> JobSpec {
        let mut file = JobSpec {
            size,
            files: Files::default(),
            ..self.clone()
        };
        if self.nr_files() > 1 {
            (file.loops, file.io_size, file.number_ios) = (1, None, 0);
            file.time_based = false;
        } else if self.files.size_given && self.io_size.is_none() && self.size < size {
            file.io_size = Some(self.size);
        }
        file
    }
}

/// `filename=a:b:c`: the names, `\:` standing for a colon within one.
pub(crate) fn filename_list(key: &str, value: &str) -> Result<Vec<PathBuf>, String> {
    let mut names = vec![String::new()];
    let mut chars = value.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next_if_eq(&':').is_some() => names.last_mut().unwrap().push(':'),
            ':' => names.push(String::new()),
            c => names.last_mut().unwrap().push(c),
        }
    }
    if names.iter().any(String::is_empty) {
        return Err(format!("{key}={value}: a list of files has an empty name"));
    }
    Ok(names.into_iter().map(PathBuf::from).collect())
}

/// `filesize=SIZE` or `LOW-HIGH`.
pub(crate) fn filesize(key: &str, value: &str, kb: KbBase) -> Result<Option<(u64, u64)>, String> {
    let (lo, hi) = match value.trim().split_once(['-', ':']) {
        Some((lo, hi)) => (size(key, lo, kb)?, size(key, hi, kb)?),
        None => {
            let s = size(key, value, kb)?;
            (s, s)
        }
    };
    Ok(Some((lo.min(hi), lo.max(hi))))
}

/// `file_service_type=TYPE[:N]`: N I/Os per file for the plain types; for the others the
/// distribution's parameter and center, checked as `random_distribution`'s (fio's
/// defaults: zipf 1.1, pareto 0.2, normal 0).
pub(crate) fn service(key: &str, value: &str) -> Result<FileService, String> {
    let v = value.trim();
    let (name, postfix) = match v.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (v, None),
    };
    let ios = || postfix.map_or(Ok(1), |p| count(key, p, 1, u32::MAX));
    let skewed = |name: &str| {
        let text = postfix.map_or(name.to_string(), |p| format!("{name}:{p}"));
        distribution(key, &text, KbBase::default())
    };
    Ok(match name {
        "roundrobin" => FileService::RoundRobin { ios: ios()? },
        "random" => FileService::Random { ios: ios()? },
        "sequential" => FileService::Sequential { ios: ios()? },
        "zipf" | "pareto" | "normal" | "gauss" => {
            match skewed(if name == "gauss" { "normal" } else { name })? {
                Distribution::Zipf { theta, center } => FileService::Zipf(theta, center),
                Distribution::Pareto { h, center } => FileService::Pareto(h, center),
                Distribution::Normal { sigma, center } => FileService::Normal(sigma, center),
                _ => unreachable!("a skewed distribution by its name"),
            }
        }
        _ => {
            return Err(format!(
                "{key}={v}: expected roundrobin, random, sequential (each :N I/Os per \
                 file), zipf, pareto or normal"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_lists_split_at_unescaped_colons() {
        let names = |v| filename_list("filename", v).unwrap();
        assert_eq!(names("/dev/sdb"), vec![PathBuf::from("/dev/sdb")]);
        assert_eq!(names("a:b:c").len(), 3);
        assert_eq!(
            names("c\\:/x:y"),
            vec![PathBuf::from("c:/x"), PathBuf::from("y")]
        );
        assert!(filename_list("filename", "a::b").is_err());
    }

    #[test]
    fn filesizes_and_service_types_read_as_fio_reads_them() {
        let kb = KbBase::Compat;
        assert_eq!(filesize("f", "1m", kb), Ok(Some((1 << 20, 1 << 20))));
        assert_eq!(filesize("f", "4m-1m", kb), Ok(Some((1 << 20, 4 << 20))));
        assert_eq!(service("s", "random:4"), Ok(FileService::Random { ios: 4 }));
        assert_eq!(
            service("s", "sequential"),
            Ok(FileService::Sequential { ios: 1 })
        );
        assert_eq!(service("s", "zipf:1.2"), Ok(FileService::Zipf(1.2, None)));
        assert_eq!(service("s", "gauss"), Ok(FileService::Normal(0.0, None)));
        assert_eq!(
            service("s", "pareto:0.3:0.5"),
            Ok(FileService::Pareto(0.3, Some(0.5)))
        );
        assert!(service("s", "shuffle").is_err());
        assert!(service("s", "random:0").is_err());
        // fio's bounds, as random_distribution's.
        for bad in [
            "zipf:1",
            "zipf:nan",
            "pareto:0",
            "pareto:5",
            "pareto:-1",
            "normal:100",
        ] {
            assert!(service("s", bad).is_err(), "{bad}");
        }
    }
}
