//! Every job option, once: its fio name and aliases, the shape of its value, what it means,
//! where it may be given and what setting it does. [`JobSpec::set`], the job-file reader,
//! the harness's command-line flags, its `--help`, `harness list --options` and the README's
//! option table all come from [`OPTIONS`] and the engines' own options
//! ([`EngineDescriptor::options`](crate::engine::EngineDescriptor)), so they cannot drift.

use std::fmt::Write;

use super::csum::{CsumName, CSUMS, VERIFY};
use super::fio::{self, Known};
use super::logs;
use super::pattern::{self, Generator, Sequencer};
use super::timing::{self, RateProcess, ThinkBlocks};
use super::values::{
    alternatives, count, cpu_list, cpu_mask, duration, flag, int, non_empty, path, per_dir,
    percent, sector_size, seed, size,
};
use super::{blocks, files, JobSpec, RwMode, MAX_IODEPTH, MAX_NUMJOBS};
use crate::engine::{registry, EngineKind};
use crate::steady::Criterion;
use crate::units::KbBase;

/// Where an option may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In a job file and as a `--name` flag of `harness run` / `compare`.
    Both,
    /// Only in a job file: it shapes the file (groups) or only fio's report.
    JobFile,
}

/// The shape of an option's value: what help texts show, and how the command line takes it.
#[derive(Clone, Copy)]
pub enum ValueKind {
    /// 0 or 1 (also true/false, yes/no, on/off); the bare name means 1.
    Flag,
    /// A whole number.
    Int,
    /// Bytes, with k/m/g/t/p suffixes in base 1024.
    Size,
    /// A duration: plain numbers are seconds; s, m, h, ms, us suffixes.
    Time,
    /// 0 to 100.
    Percent,
    Text,
    Path,
    /// One of a list of names.
    OneOf(fn() -> Vec<&'static str>),
    /// fio's per-direction form: `R` (both) or `R,W` or `,W`.
    PerDir,
    /// A CPU list such as `0-3,5`.
    Cpus,
}

impl ValueKind {
    /// How help texts show the value.
    pub fn placeholder(self) -> String {
        match self {
            ValueKind::Flag => "0|1".into(),
            ValueKind::Int => "N".into(),
            ValueKind::Size => "SIZE".into(),
            ValueKind::Time => "TIME".into(),
            ValueKind::Percent => "0-100".into(),
            ValueKind::Text => "TEXT".into(),
            ValueKind::Path => "PATH".into(),
            ValueKind::OneOf(names) => names().join("|"),
            ValueKind::PerDir => "R[,W]".into(),
            ValueKind::Cpus => "CPUS".into(),
        }
    }

    /// Numbers may be negative: on the command line a leading `-` is the value (and its
    /// error says what is wrong with it), not another flag.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ValueKind::Int
                | ValueKind::Size
                | ValueKind::Time
                | ValueKind::Percent
                | ValueKind::PerDir
        )
    }
}

/// Sets an option on a job: `(job, key as given, value)`; errors say `key=value: why`.
pub type Setter = fn(&mut JobSpec, &str, &str) -> Result<(), String>;

/// The [`Setter`] that stores what `parse(key, value)` returns in the job's `field`.
macro_rules! store {
    ($($field:ident).+ = $parse:expr) => {
        |j: &mut JobSpec, k: &str, v: &str| {
            j.$($field).+ = ($parse)(k, v)?;
            Ok(())
        }
    };
}

/// The [`Setter`] for a value with sizes: it stores what `parse(key, value, kb_base)`
/// returns, with the job's `kb_base`.
macro_rules! store_sized {
    ($($field:ident).+ = $parse:expr) => {
        |j: &mut JobSpec, k: &str, v: &str| {
            let kb = j.kb_base;
            j.$($field).+ = ($parse)(k, v, kb)?;
            Ok(())
        }
    };
}

/// The [`Setter`] that hands a block-size option to `set(&mut blocks, key, value,
/// kb_base)`.
macro_rules! on_blocks {
    ($set:path) => {
        |j: &mut JobSpec, k: &str, v: &str| {
            let kb = j.kb_base;
            $set(&mut j.blocks, k, v, kb)
        }
    };
}

/// What giving an option does.
#[derive(Clone, Copy)]
pub enum Action {
    /// Sets part of the [`JobSpec`].
    Set(Setter),
    /// An engine's own option, kept by name in [`JobSpec::engine_options`]: a flag (if the
    /// value is a [`ValueKind::Flag`]) or a whole number from `min` to `max`. `default` is
    /// what leaving it out means.
    Engine { min: i64, max: i64, default: i64 },
    /// The job starts a new group, after the jobs before it (fio's `stonewall`).
    Stonewall,
    /// Accepted and ignored: it shapes only fio's own report.
    Ignored,
}

/// One job option.
pub struct JobOption {
    /// fio's name.
    pub name: &'static str,
    /// fio's other names for it.
    pub aliases: &'static [&'static str],
    pub value: ValueKind,
    /// What it means (fio's meaning, and where csumbench differs).
    pub help: &'static str,
    pub scope: Scope,
    pub action: Action,
}

impl JobOption {
    /// An option that sets part of the job, in job files and on the command line.
    const fn set(name: &'static str, value: ValueKind, help: &'static str, set: Setter) -> Self {
        JobOption {
            name,
            aliases: &[],
            value,
            help,
            scope: Scope::Both,
            action: Action::Set(set),
        }
    }

    /// An engine's flag (default 0).
    pub const fn engine_flag(name: &'static str, help: &'static str) -> Self {
        Self::engine(name, ValueKind::Flag, help, 0, 1, 0)
    }

    /// An engine's whole-number option, from `min` to `max`; `default` is what leaving it
    /// out means (outside the range: "not set").
    pub const fn engine_int(
        name: &'static str,
        help: &'static str,
        min: i64,
        max: i64,
        default: i64,
    ) -> Self {
        Self::engine(name, ValueKind::Int, help, min, max, default)
    }

    const fn engine(
        name: &'static str,
        value: ValueKind,
        help: &'static str,
        min: i64,
        max: i64,
        default: i64,
    ) -> Self {
        JobOption {
            name,
            aliases: &[],
            value,
            help,
            scope: Scope::Both,
            action: Action::Engine { min, max, default },
        }
    }

    /// An option only a job file has.
    const fn file_only(name: &'static str, action: Action, help: &'static str) -> Self {
        JobOption {
            name,
            aliases: &[],
            value: ValueKind::Flag,
            help,
            scope: Scope::JobFile,
            action,
        }
    }

    const fn aliases(self, aliases: &'static [&'static str]) -> Self {
        JobOption { aliases, ..self }
    }

    const fn value(self, value: ValueKind) -> Self {
        JobOption { value, ..self }
    }

    /// Only a job file takes it.
    const fn in_job_files(self) -> Self {
        JobOption {
            scope: Scope::JobFile,
            ..self
        }
    }

    /// The name and every alias.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// Whether [`JobSpec::set`] takes it (the others shape only a job file).
    pub fn sets_job(&self) -> bool {
        matches!(self.action, Action::Set(_) | Action::Engine { .. })
    }

    /// Applies the option to `job`; `key` is the name it was given by.
    pub(crate) fn apply(&self, job: &mut JobSpec, key: &str, value: &str) -> Result<(), String> {
        match self.action {
            Action::Set(set) => set(job, key, value)?,
            Action::Engine { min, max, default } => {
                let v = match self.value {
                    ValueKind::Flag => i64::from(flag(key, value)?),
                    _ => int(key, value, min, max)?,
                };
                job.engine_options.set(self.name, v, default);
            }
            Action::Stonewall | Action::Ignored => return Err(unsupported(key)),
        }
        Ok(())
    }
}

/// Why csumbench does not take `key`: a fio option it does not implement (why, and what to
/// use instead), one that only shapes fio's report, or not a fio option at all (and the
/// nearest names, when there are some).
pub fn unsupported(key: &str) -> String {
    match fio::classify(key) {
        Some(Known::Refused(r)) => format!(
            "{key}: a fio option csumbench does not implement: {}; {}",
            r.why, r.instead
        ),
        Some(Known::EngineOption(engine)) if registry::find(engine).is_some() => format!(
            "{key}: an option of fio's {engine} engine that csumbench's {engine} does not \
             implement; leave it out"
        ),
        Some(Known::EngineOption(engine)) => format!(
            "{key}: an option of fio's {engine} engine, which csumbench does not have; \
             leave it out"
        ),
        Some(Known::Reporting) => format!(
            "{key}: shapes only fio's report; a job file may give it (it has no effect here)"
        ),
        Some(Known::Profile) => format!(
            "{key}: an option of fio's act or tiobench profile; a job file may give it (it \
             has no effect without profile=, in fio as here)"
        ),
        None => match nearest(key)[..] {
            [] => format!("{key}: not a fio option (nor one of csumbench's)"),
            ref near => format!(
                "{key}: not a fio option; did you mean {}?",
                alternatives(near)
            ),
        },
    }
}

/// The known option names nearest to `key` (csumbench's first, then fio's): at most three,
/// all at the smallest edit distance, which must be small for the length of `key`.
fn nearest(key: &str) -> Vec<&'static str> {
    let key = key.to_ascii_lowercase();
    let most = key.chars().count().div_ceil(4).clamp(1, 3);
    let known = every()
        .flat_map(JobOption::names)
        .chain(fio::names())
        .chain(["include"]);
    let near: Vec<(usize, &'static str)> = known
        .map(|name| (edit_distance(&key, name), name))
        .filter(|(d, _)| *d <= most)
        .collect();
    let Some(closest) = near.iter().map(|(d, _)| *d).min() else {
        return Vec::new();
    };
    let mut best: Vec<&'static str> = near
        .into_iter()
        .filter(|(d, _)| *d == closest)
        .map(|(_, name)| name)
        .collect();
    best.dedup();
    best.truncate(3);
    best
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours, each costing one (the usual typos).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d: Vec<usize> = (0..(a.len() + 1) * width).collect();
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[a.len() * width + b.len()]
}

/// Every job option that is not an engine's own.
pub static OPTIONS: &[JobOption] = &[
    JobOption::set(
        "name",
        ValueKind::Text,
        "job name",
        store!(name = |k, v| non_empty(k, v).map(str::to_string)),
    ),
    JobOption::set(
        "kb_base",
        ValueKind::OneOf(KbBase::names),
        "how size prefixes read, as in fio: 1024 (fio's default) makes k, m, KB... powers \
         of 1024 and KiB, MiB... powers of 1000; 1000 the other way round. A job file \
         applies it before the other options of its section",
        store!(kb_base = KbBase::parse),
    ),
    JobOption::set(
        "rw",
        ValueKind::OneOf(RwMode::names),
        "I/O pattern: sequential or random reads or writes; rw (= readwrite) and randrw mix \
         reads and writes by rwmixread. MODE:N skips N bytes after each sequential I/O \
         (negative: backwards), or keeps N I/Os per random offset (see rw_sequencer)",
        pattern::set_rw,
    )
    .aliases(&["readwrite"]),
    JobOption::set(
        "rw_sequencer",
        ValueKind::OneOf(Sequencer::names),
        "with rw=randMODE:N, the I/Os between two random offsets go on from the previous \
         one (sequential, the default) or repeat its offset (identical)",
        store!(sequencer = Sequencer::parse),
    ),
    JobOption::set(
        "bs",
        ValueKind::PerDir,
        "block size per I/O, per direction (R,W), a multiple of 4k; I/Os above 1m are split \
         into 1 MiB bios",
        on_blocks!(blocks::set_bs),
    )
    .aliases(&["blocksize"]),
    JobOption::set(
        "bsrange",
        ValueKind::Text,
        "MIN-MAX[,MIN-MAX]: block sizes drawn from a range per direction, as fio draws them \
         (over bs)",
        on_blocks!(blocks::set_range),
    )
    .aliases(&["blocksize_range"]),
    JobOption::set(
        "bssplit",
        ValueKind::Text,
        "BS/PERCENT:BS/PERCENT...[,...]: block sizes by their share of the I/Os, per \
         direction (over bs and bsrange)",
        on_blocks!(blocks::set_split),
    ),
    JobOption::set(
        "ba",
        ValueKind::PerDir,
        "random I/O: offsets are multiples of this, per direction (default: the smallest \
         block size); as in fio, it turns the random map off",
        on_blocks!(blocks::set_align),
    )
    .aliases(&["blockalign"]),
    JobOption::set(
        "size",
        ValueKind::Size,
        "bytes of each clone's region, and of I/O per pass unless io_size; a multiple of 4k \
         (default 1g). N% is of the file's size",
        |j, k, v| {
            let (bytes, percent) = bytes_or_percent(k, v, j.kb_base, sector_size)?;
            (j.size, j.size_percent) = (bytes.unwrap_or(j.size), percent);
            j.files.size_given = true;
            Ok(())
        },
    ),
    JobOption::set(
        "io_size",
        ValueKind::Size,
        "bytes of I/O per loop, over the region size covers: less stops early, more goes \
         round again",
        store_sized!(io_size = |k, v, kb| size(k, v, kb).map(Some)),
    )
    .aliases(&["io_limit"]),
    JobOption::set(
        "number_ios",
        ValueKind::Int,
        "stop after this many I/Os per loop, if size or io_size has not stopped it first",
        store!(number_ios = |k, v| int(k, v, 0, i64::MAX).map(|n| n as u64)),
    ),
    JobOption::set(
        "loops",
        ValueKind::Int,
        "passes over the region (default 1)",
        store!(loops = |k, v| count(k, v, 0, u32::MAX)),
    ),
    JobOption::set(
        "offset",
        ValueKind::Size,
        "start I/O this far into the file, a multiple of 4k; N% is of the file's size",
        |j, k, v| {
            let (bytes, percent) = bytes_or_percent(k, v, j.kb_base, sector_size)?;
            (j.offset, j.offset_percent) = (bytes.unwrap_or(j.offset), percent);
            Ok(())
        },
    )
    .aliases(&["fileoffset"]),
    JobOption::set(
        "offset_increment",
        ValueKind::Size,
        "each clone's region starts this much after the previous clone's (N%: of the file)",
        |j, k, v| {
            let (bytes, percent) = bytes_or_percent(k, v, j.kb_base, size)?;
            let bytes = bytes.unwrap_or(j.offset_increment);
            (j.offset_increment, j.offset_increment_percent) = (bytes, percent);
            Ok(())
        },
    ),
    JobOption::set(
        "norandommap",
        ValueKind::Flag,
        "1: random offsets may repeat within a pass (fio's random map, the default, visits \
         each block once)",
        store!(random.map = |k, v| flag(k, v).map(|off| !off)),
    ),
    JobOption::set(
        "random_generator",
        ValueKind::OneOf(Generator::names),
        "fio's generators; csumbench draws its own numbers, and lfsr, as fio's, never \
         repeats a block within a pass",
        store!(random.generator = Generator::parse),
    ),
    JobOption::set(
        "random_distribution",
        ValueKind::Text,
        "random, zipf[:THETA], pareto[:H], normal[:SIGMA] (each [:CENTER]), zoned:A/S:... \
         (A% of I/Os in S% of the region) or zoned_abs:A/SIZE:..., with fio's formulas; \
         any but random turns the random map off",
        store_sized!(random.distribution = pattern::distribution),
    ),
    JobOption::set(
        "percentage_random",
        ValueKind::PerDir,
        "random jobs: the share of I/Os at random offsets, per direction (R,W); the rest go \
         on from the direction's previous I/O",
        store!(random.percentage = |k, v| pattern::percentages(k, v, false)),
    ),
    JobOption::set(
        "percentage_sequential",
        ValueKind::PerDir,
        "the opposite of percentage_random",
        store!(random.percentage = |k, v| pattern::percentages(k, v, true)),
    ),
    JobOption::set(
        "numjobs",
        ValueKind::Int,
        "submitter threads (clones of the job), each with its own file unless filename is \
         set (1 to 4096)",
        store!(numjobs = |k, v| count(k, v, 1, MAX_NUMJOBS)),
    ),
    JobOption::set(
        "iodepth",
        ValueKind::Int,
        "I/Os (bios) in flight per job, 1 to 65536, their buffers at most half the memory; \
         with a synchronous engine it bounds the bios in the checksum and endio stages, \
         the I/O itself stays one at a time",
        store!(iodepth = |k, v| count(k, v, 1, MAX_IODEPTH)),
    ),
    JobOption::set(
        "iodepth_batch_submit",
        ValueKind::Int,
        "I/Os to submit at once (default 1: each as soon as it is ready; 0: iodepth)",
        store!(batch.submit = |k, v| count(k, v, 0, MAX_IODEPTH)),
    )
    .aliases(&["iodepth_batch"]),
    JobOption::set(
        "iodepth_batch_complete_min",
        ValueKind::Int,
        "fewest completions to wait for at once (default 1; 0: poll without waiting)",
        store!(batch.complete_min = |k, v| count(k, v, 0, MAX_IODEPTH)),
    )
    .aliases(&["iodepth_batch_complete"]),
    JobOption::set(
        "iodepth_batch_complete_max",
        ValueKind::Int,
        "most completions to take at once (default: iodepth_batch_complete_min)",
        store!(batch.complete_max = |k, v| count(k, v, 0, MAX_IODEPTH)),
    ),
    JobOption::set(
        "iodepth_low",
        ValueKind::Int,
        "once the queue is full, let it drain to this depth before filling it again \
         (default: iodepth)",
        store!(batch.low = |k, v| count(k, v, 0, MAX_IODEPTH)),
    ),
    JobOption::set(
        "direct",
        ValueKind::Flag,
        "1: O_DIRECT, bypass the page cache",
        store!(direct = flag),
    ),
    JobOption::set(
        "buffered",
        ValueKind::Flag,
        "the opposite of direct: 1 uses the page cache",
        store!(direct = |k, v| flag(k, v).map(|buffered| !buffered)),
    ),
    JobOption::set(
        "ioengine",
        ValueKind::OneOf(registry::names),
        "how the job issues I/O (see the engines in `harness list`)",
        store!(ioengine = EngineKind::parse),
    ),
    JobOption::set(
        "fsync",
        ValueKind::Int,
        "fsync after every N writes (0: never)",
        store!(fsync = |k, v| count(k, v, 0, u32::MAX)),
    ),
    JobOption::set(
        "end_fsync",
        ValueKind::Flag,
        "1: fsync when the job's writes are done, counted in its time",
        store!(end_fsync = flag),
    ),
    JobOption::set(
        "runtime",
        ValueKind::Time,
        "stop after this long, more than 0 (leave it out to run until size is done)",
        store!(runtime = |k, v| runtime(k, v).map(Some)),
    )
    .aliases(&["timeout"]),
    JobOption::set(
        "time_based",
        ValueKind::Flag,
        "1: keep going until runtime, wrapping around the file",
        store!(time_based = flag),
    ),
    JobOption::set(
        "ramp_time",
        ValueKind::Time,
        "run this long before measuring; adds to runtime, as in fio",
        store!(ramp_time = duration),
    ),
    JobOption::set(
        "steadystate",
        ValueKind::Text,
        "end the job once steady over ss_dur: iops, iops_slope, bw or bw_slope, then :LIMIT or \
         :LIMIT% (default iops_slope:0.01%)",
        store!(steady.criterion = Criterion::parse),
    )
    .aliases(&["ss"]),
    JobOption::set(
        "steadystate_duration",
        ValueKind::Time,
        "the window steady state is judged over; more than 0 turns steady state on",
        store!(steady.dur = |k, v| duration(k, v).map(Option::unwrap_or_default)),
    )
    .aliases(&["ss_dur"]),
    JobOption::set(
        "steadystate_ramp_time",
        ValueKind::Time,
        "how long to run before collecting steady-state samples",
        store!(steady.ramp = |k, v| duration(k, v).map(Option::unwrap_or_default)),
    )
    .aliases(&["ss_ramp"]),
    JobOption::set(
        "steadystate_check_interval",
        ValueKind::Time,
        "one steady-state sample per this long (default 1s)",
        store!(steady.interval = |k, v| duration(k, v).map(Option::unwrap_or_default)),
    )
    .aliases(&["ss_interval"]),
    JobOption::set(
        "filename",
        ValueKind::Path,
        "file or block device to use (default: a temporary file); a:b lists files, which \
         every clone uses",
        |j, k, v| {
            let mut names = files::filename_list(k, non_empty(k, v)?)?;
            j.files.more_names = names.split_off(1);
            j.filename = names.pop();
            Ok(())
        },
    ),
    JobOption::set(
        "nrfiles",
        ValueKind::Int,
        "files per clone (default 1)",
        store!(files.nrfiles = |k, v| count(k, v, 1, MAX_FILES)),
    )
    .aliases(&["nr_files"]),
    JobOption::set(
        "filesize",
        ValueKind::Size,
        "each file's size, or LOW-HIGH to draw each one's (default: size / nrfiles)",
        store_sized!(files.filesize = files::filesize),
    ),
    JobOption::set(
        "file_service_type",
        ValueKind::Text,
        "which file the next I/O goes to: roundrobin (default), random or sequential, \
         each [:N] I/Os per file; or zipf, pareto or normal [:VALUE]",
        store!(files.service = files::service),
    ),
    JobOption::set(
        "filename_format",
        ValueKind::Text,
        "file names from $jobname, $jobnum, $filenum (default, as csumbench's: \
         $jobname.$jobnum.$filenum)",
        store!(
            files.format =
                |k, v| non_empty(k, v).map(|f| (f != files::DEFAULT_FORMAT).then(|| f.to_string()))
        ),
    ),
    JobOption::set(
        "create_on_open",
        ValueKind::Flag,
        "1: create a file when it is opened rather than lay it out first (a scratch file is \
         not allocated before a write job); csumbench opens every file before the case \
         starts",
        store!(files.create_on_open = flag),
    ),
    JobOption::set(
        "unlink",
        ValueKind::Flag,
        "1: remove the job's regular files, with their checksum stores, once the case ends",
        store!(files.unlink = flag),
    ),
    JobOption::set(
        "directory",
        ValueKind::Path,
        "directory for the job's files",
        store!(directory = |k, v| path(k, v).map(Some)),
    ),
    JobOption::set(
        "csum",
        ValueKind::OneOf(|| CSUMS.to_vec()),
        "checksum per 4 KiB sector (csumbench's own option)",
        store!(csum = CsumName::parse),
    ),
    JobOption::set(
        "verify",
        ValueKind::OneOf(|| VERIFY.iter().map(|(fio, _)| *fio).collect()),
        "fio's checksum names, as csum: crc32c-intel is crc32c, 0 is none. csumbench \
         checksums every 4 KiB sector as it is written and keeps the sums in its store; a \
         write job reads its data back and verifies it after its writes (fio's verify \
         phase, do_verify=1), a read job verifies what it reads",
        |j: &mut JobSpec, k: &str, v: &str| {
            j.csum = CsumName::from_verify(k, v)?;
            j.verify = j.csum != "none";
            Ok(())
        },
    ),
    JobOption::set(
        "verify_async",
        ValueKind::Int,
        "N: use strategy kthread:max_workers=N, 0: inline, when no --strategy is given \
         (fio's N verify threads)",
        store!(strategy_hint = |k, v| verify_async(k, v).map(Some)),
    ),
    JobOption::set(
        "do_verify",
        ValueKind::Flag,
        "with verify, 1 (the default): a write job reads back and verifies what it wrote \
         once its writes end (fio's verify phase), apart from the measured figures; 0: no \
         verify phase",
        store!(do_verify = flag),
    ),
    JobOption::set(
        "verify_only",
        ValueKind::Flag,
        "1: only read back and verify what an earlier run wrote (the job's verify phase \
         alone, measured as its reads of the sectors the store has sums for)",
        store!(verify_only = flag),
    ),
    JobOption::set(
        "verify_backlog",
        ValueKind::Int,
        "with verify, read back and verify every N writes once they are done, before the \
         next (fio's backlog); what is left is read back after the writes. The read-backs \
         count with the verify phase, not in the job's figures, but take its time",
        store!(verify_backlog = |k, v| int(k, v, 0, i64::MAX).map(|n| n as u64)),
    ),
    JobOption::set(
        "rwmixread",
        ValueKind::Percent,
        "mixed jobs: percentage of I/Os that are reads (default 50; the later of rwmixread \
         and rwmixwrite wins)",
        store!(rwmixread = percent),
    ),
    JobOption::set(
        "rwmixwrite",
        ValueKind::Percent,
        "mixed jobs: percentage of I/Os that are writes (default 50)",
        store!(rwmixread = |k, v| percent(k, v).map(|writes| 100 - writes)),
    ),
    JobOption::set(
        "rate",
        ValueKind::PerDir,
        "bandwidth cap in bytes/s per direction (k/m/g); latency counts from the intended \
         issue time",
        store_sized!(rate = |k, v, kb| per_dir(k, v, |one| size(k, one, kb))),
    ),
    JobOption::set(
        "rate_iops",
        ValueKind::PerDir,
        "IOPS cap per direction; a direction's rate wins over its rate_iops",
        store!(rate_iops = rate_iops),
    ),
    JobOption::set(
        "cpus_allowed",
        ValueKind::Cpus,
        "CPUs the job's submitter threads may run on",
        store!(cpus_allowed = cpu_list),
    ),
    JobOption::set(
        "cpumask",
        ValueKind::Int,
        "CPUs the job's submitter threads may run on, as a bit mask (decimal or 0x hex): \
         cpus_allowed as fio's older option",
        store!(cpus_allowed = cpu_mask),
    ),
    JobOption::set(
        "randrepeat",
        ValueKind::Flag,
        "1: the same random sequence every run, and every loop (default 1)",
        store!(randrepeat = flag),
    )
    .aliases(&["allrandrepeat"]),
    JobOption::set(
        "randseed",
        ValueKind::Int,
        "seed for the random sequences (decimal or 0x hex); set, they repeat",
        store!(randseed = |k, v| seed(k, v).map(Some)),
    ),
    JobOption::set(
        "invalidate",
        ValueKind::Flag,
        "1: drop the file's cached pages before the job (default 1)",
        store!(invalidate = flag),
    ),
    JobOption::set(
        "write_bw_log",
        ValueKind::Text,
        "write fio's bandwidth log (KiB/s), PREFIX_bw.N.log, into the case's results folder \
         as CASE.PREFIX_bw.N.log (bare: the job's name is the prefix)",
        store!(logs.bw = logs::prefix),
    ),
    JobOption::set(
        "write_iops_log",
        ValueKind::Text,
        "write fio's IOPS log, PREFIX_iops.N.log, into the case's results folder as \
         CASE.PREFIX_iops.N.log (bare: the job's name)",
        store!(logs.iops = logs::prefix),
    ),
    JobOption::set(
        "write_lat_log",
        ValueKind::Text,
        "write fio's latency logs (ns), PREFIX_lat/_slat/_clat.N.log, into the case's results \
         folder as CASE.PREFIX_lat.N.log...; lat is issue to end of endio, clat the device's \
         part, slat issue to submission (async engines only, as in fio)",
        store!(logs.lat = logs::prefix),
    ),
    JobOption::set(
        "log_avg_msec",
        ValueKind::Int,
        "one log entry per window of this many ms, the window's average (0, the default: one \
         entry per I/O)",
        store!(logs.avg_msec = |k, v| count(k, v, 0, u32::MAX)),
    ),
    JobOption::set(
        "per_job_logs",
        ValueKind::Flag,
        "1: the job's number in its log file names (default 1); 0: jobs with one prefix \
         share a file",
        store!(logs.per_job = flag),
    ),
    JobOption::set(
        "log_offset",
        ValueKind::Flag,
        "1: each per-I/O log entry carries the I/O's offset",
        store!(logs.offset = flag),
    ),
    JobOption::set(
        "startdelay",
        ValueKind::Time,
        "start the job this long after its group (LOW-HIGH: a random delay in that range)",
        store!(timing.startdelay = timing::startdelay),
    ),
    JobOption::set(
        "thinktime",
        ValueKind::Time,
        "after every thinktime_blocks I/Os, let the I/Os in flight complete, then stall \
         this long (microseconds unless a unit is given)",
        store!(timing.thinktime = timing::micros),
    ),
    JobOption::set(
        "thinktime_spin",
        ValueKind::Time,
        "spin the CPU this long of each think time, and sleep the rest (microseconds)",
        store!(timing.thinktime_spin = timing::micros),
    ),
    JobOption::set(
        "thinktime_blocks",
        ValueKind::Int,
        "I/Os between two think times (default 1)",
        store!(timing.thinktime_blocks = |k, v| count(k, v, 1, u32::MAX)),
    ),
    JobOption::set(
        "thinktime_blocks_type",
        ValueKind::OneOf(ThinkBlocks::names),
        "what thinktime_blocks counts: I/Os completed (complete, the default) or issued \
         (issue)",
        store!(timing.thinktime_blocks_type = ThinkBlocks::parse),
    ),
    JobOption::set(
        "rate_min",
        ValueKind::PerDir,
        "fail the job when a direction's bandwidth over a second falls below this (bytes/s)",
        store_sized!(timing.rate_min = |k, v, kb| per_dir(k, v, |one| size(k, one, kb))),
    )
    .aliases(&["ratemin"]),
    JobOption::set(
        "rate_process",
        ValueKind::OneOf(RateProcess::names),
        "how a rate-limited job spaces its I/Os: evenly (linear) or with exponential gaps \
         (poisson)",
        store!(timing.rate_process = RateProcess::parse),
    ),
    JobOption::set(
        "flow",
        ValueKind::Int,
        "weight (1 to 1000) of the job in its flow: the running jobs of one flow_id issue \
         I/Os in the ratio of their weights (fio's flow control; 0: none)",
        store!(timing.flow = |k, v| count(k, v, 0, 1000)),
    ),
    JobOption::set(
        "flow_id",
        ValueKind::Int,
        "the flow a job's flow weight counts in (default 0)",
        store!(timing.flow_id = |k, v| count(k, v, 0, u32::MAX)),
    ),
    JobOption::set(
        "flow_sleep",
        ValueKind::Time,
        "microseconds a job held back by its flow waits before it asks again (default: \
         100; fio spins unless it is given)",
        store!(timing.flow_sleep = |k, v| timing::micros(k, v).map(Some)),
    ),
    JobOption::set(
        "exitall",
        ValueKind::Flag,
        "1: when this job ends, end every other job of its group",
        store!(timing.exitall = timing::exitall),
    ),
    JobOption::set(
        "wait_for",
        ValueKind::Text,
        "start once the named job has ended; a job file takes it where the groups do that \
         already (the named job is in an earlier group)",
        store!(wait_for = |k, v| non_empty(k, v).map(|n| Some(n.to_string()))),
    )
    .in_job_files(),
    JobOption::file_only(
        "stonewall",
        Action::Stonewall,
        "the job starts a new group, run after the jobs before it; in [global], every \
         later job does",
    )
    .aliases(&["wait_for_previous"]),
    JobOption::file_only("description", Action::Ignored, IGNORED_TEXT).value(ValueKind::Text),
    JobOption::file_only(
        "thread",
        Action::Ignored,
        "accepted, no effect: csumbench always runs jobs as threads",
    ),
    JobOption::file_only(
        "refill_buffers",
        Action::Ignored,
        "accepted, no effect: csumbench fills every write with fresh seeded data, always",
    ),
    JobOption::file_only(
        "scramble_buffers",
        Action::Ignored,
        "accepted, no effect: csumbench fills every write with fresh seeded data, always",
    ),
    JobOption::file_only(
        "serialize_overlap",
        Action::Ignored,
        "accepted, no effect: csumbench never lets an I/O overlap a write in flight, always",
    ),
    JobOption::file_only(
        "softrandommap",
        Action::Ignored,
        "accepted, no effect: csumbench's random map never fails to be made",
    ),
];

/// A size (by `bytes`), or `N%` of the file (1 to 100): one of the two.
fn bytes_or_percent(
    k: &str,
    v: &str,
    kb: KbBase,
    bytes: fn(&str, &str, KbBase) -> Result<u64, String>,
) -> Result<(Option<u64>, Option<u32>), String> {
    match v.trim().strip_suffix('%') {
        None => Ok((Some(bytes(k, v, kb)?), None)),
        Some(p) => match percent(k, p)? {
            0 => Err(format!("{k}={v}: a percentage of the file from 1 to 100")),
            p => Ok((None, Some(p))),
        },
    }
}

fn runtime(k: &str, v: &str) -> Result<std::time::Duration, String> {
    // fio reads 0 as "no limit"; here that is leaving it out, so a 0 that meant something
    // else is not silently a run without a time limit.
    duration(k, v)?.ok_or_else(|| {
        format!("{k}={v}: must be more than zero (leave {k} out to run until size is done)")
    })
}

/// fio's `verify_async=N`: N verify threads, 0 verifies in the submitting thread.
fn verify_async(k: &str, v: &str) -> Result<String, String> {
    Ok(match count(k, v, 0, u32::MAX)? {
        0 => "inline".into(),
        n => format!("kthread:max_workers={n}"),
    })
}

fn rate_iops(k: &str, v: &str) -> Result<super::PerDir, String> {
    per_dir(k, v, |one| {
        one.parse()
            .map_err(|_| format!("{k}={v}: expected a whole number of IOPS"))
    })
}

/// The most files one clone may have (fio's limit is memory).
const MAX_FILES: u32 = 1 << 20;
const IGNORED_TEXT: &str = "accepted, no effect: free text";

/// Every option: the job's, then each engine's.
pub fn every() -> impl Iterator<Item = &'static JobOption> {
    OPTIONS
        .iter()
        .chain(registry::engines().iter().flat_map(|e| e.options))
}

/// The option with this name or alias.
pub fn find(key: &str) -> Option<&'static JobOption> {
    every().find(|o| o.names().any(|n| n == key))
}

/// The options a job file accepts without effect.
pub fn ignored() -> impl Iterator<Item = &'static JobOption> {
    OPTIONS
        .iter()
        .filter(|o| matches!(o.action, Action::Ignored))
}

/// The README's option table, in Markdown: every option, the job's then the engines'.
pub fn markdown_table() -> String {
    let mut s = String::from("| option | value | where | meaning |\n|---|---|---|---|\n");
    for option in every() {
        let names: Vec<String> = option.names().map(|n| format!("`{n}`")).collect();
        let place = match option.scope {
            Scope::Both => "job file, command line",
            Scope::JobFile => "job file",
        };
        let _ = writeln!(
            s,
            "| {} | `{}` | {place} | {} |",
            names.join(", "),
            escape(&option.value.placeholder()),
            escape(&describe(option))
        );
    }
    s
}

/// The option's help with the engines it belongs to, for lists of every option.
pub fn describe(option: &JobOption) -> String {
    let owners = registry::declaring(option.name);
    if owners.is_empty() {
        option.help.to_string()
    } else {
        format!("[{}] {}", owners.join(", "), option.help)
    }
}

/// What csumbench does with one of fio's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Honoured, with fio's meaning (or csumbench's, where its help says so).
    Honoured,
    /// Taken in a job file, with no effect, and said so in one warning.
    Warned,
    /// Taken in a job file, with no effect (it changes nothing csumbench does).
    NoEffect,
    /// Refused, saying why and what to use instead.
    Rejected,
}

impl Treatment {
    pub fn label(self) -> &'static str {
        match self {
            Treatment::Honoured => "honoured",
            Treatment::Warned => "accepted, warned: no effect",
            Treatment::NoEffect => "accepted, no effect",
            Treatment::Rejected => "rejected",
        }
    }
}

/// Every fio option (its names), what csumbench does with it and why, in name order.
pub fn fio_options() -> Vec<(Vec<&'static str>, Treatment, String)> {
    let ours = every().filter(|o| !OURS_ONLY.contains(&o.name)).map(|o| {
        let treatment = match o.action {
            Action::Ignored => Treatment::NoEffect,
            _ => Treatment::Honoured,
        };
        (o.names().collect(), treatment, describe(o))
    });
    let reporting = fio::REPORTING.iter().map(|&name| {
        let note = "shapes only fio's own report".to_string();
        (vec![name], Treatment::Warned, note)
    });
    let profile = fio::PROFILE.iter().map(|&name| {
        let note = "an option of fio's act or tiobench profile: without profile= (which \
                    csumbench has not) it changes nothing, in fio too"
            .to_string();
        (vec![name], Treatment::Warned, note)
    });
    let refused = fio::REFUSED.iter().flat_map(|r| {
        let note = format!("{}; {}", r.why, r.instead);
        r.names
            .iter()
            .map(move |&name| (vec![name], Treatment::Rejected, note.clone()))
    });
    let engines = fio::ENGINE_OPTIONS.iter().flat_map(|&(engine, names)| {
        names.iter().map(move |&name| {
            let note = match registry::find(engine) {
                Some(_) => {
                    format!("an option of fio's {engine} that csumbench's does not implement")
                }
                None => {
                    format!("an option of fio's {engine} engine, which csumbench does not have")
                }
            };
            (vec![name], Treatment::Rejected, note)
        })
    });
    let mut rows: Vec<_> = ours
        .chain(reporting)
        .chain(profile)
        .chain(refused)
        .chain(engines)
        .collect();
    rows.sort_by_key(|(names, ..)| names[0]);
    rows
}

/// Options csumbench has that fio does not.
const OURS_ONLY: &[&str] = &["csum"];

/// The README's table of every fio option, in Markdown.
pub fn fio_markdown_table() -> String {
    let mut s =
        String::from("| fio option | csumbench | what it does here, or why not |\n|---|---|---|\n");
    for (names, treatment, note) in fio_options() {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            names.join(", "),
            treatment.label(),
            escape(&note)
        );
    }
    s
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_alias_is_unique() {
        let mut names: Vec<&str> = every().flat_map(JobOption::names).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an option name or alias is used twice");
    }

    #[test]
    fn every_option_is_found_by_each_of_its_names() {
        for option in every() {
            for name in option.names() {
                assert_eq!(find(name).map(|o| o.name), Some(option.name), "{name}");
            }
        }
        assert!(find("verify_pattern").is_none());
    }

    #[test]
    fn a_refused_value_changes_nothing_and_says_why() {
        let mut j = JobSpec::default();
        let before = j.clone();
        assert!(j
            .set("iodepth_low", "x")
            .unwrap_err()
            .contains("whole number"));
        assert!(j.set("flow", "1001").is_err(), "fio's most is 1000");
        assert_eq!(j, before);
    }

    #[test]
    fn the_markdown_table_has_a_row_per_option_and_escapes_bars() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), 2 + every().count());
        assert!(
            table.contains("| `rw`, `readwrite` | `read\\|write\\|"),
            "{table}"
        );
        assert!(table.contains("| `stonewall`, `wait_for_previous` | `0\\|1` | job file |"));
    }
}
