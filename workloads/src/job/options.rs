//! Every job option, once: its fio name and aliases, the shape of its value, what it means,
//! where it may be given and what setting it does. [`JobSpec::set`], the job-file reader,
//! the harness's command-line flags, its `--help`, `harness list --options` and the README's
//! option table all come from [`OPTIONS`] and the engines' own options
//! ([`EngineDescriptor::options`](crate::engine::EngineDescriptor)), so they cannot drift.

use std::fmt::Write;

use super::csum::{CsumName, CSUMS, VERIFY};
use super::values::{
    count, cpu_list, duration, flag, int, non_empty, path, per_dir, percent, seed, size,
};
use super::{JobSpec, RwMode, MAX_IODEPTH, MAX_NUMJOBS};
use crate::engine::{registry, EngineKind};
use crate::steady::Criterion;

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

/// Whether csumbench does what the option asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Applied,
    /// Understood but not implemented yet, for the reason given: accepted where it
    /// changes nothing (its default), an error otherwise — never quietly ignored.
    NotYet(&'static str),
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
    pub status: Status,
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
            status: Status::Applied,
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
            status: Status::Applied,
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
            status: Status::Applied,
        }
    }

    const fn aliases(self, aliases: &'static [&'static str]) -> Self {
        JobOption { aliases, ..self }
    }

    const fn value(self, value: ValueKind) -> Self {
        JobOption { value, ..self }
    }

    /// Marks the option understood but not implemented yet (see [`Status::NotYet`]).
    pub const fn not_yet(self, why: &'static str) -> Self {
        JobOption {
            status: Status::NotYet(why),
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
        let before = matches!(self.status, Status::NotYet(_)).then(|| job.clone());
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
        match (self.status, before) {
            (Status::NotYet(why), Some(before)) if *job != before => {
                *job = before;
                Err(format!(
                    "{key}={}: not implemented yet ({why}); leave {key} out",
                    value.trim()
                ))
            }
            _ => Ok(()),
        }
    }
}

pub(crate) fn unsupported(key: &str) -> String {
    format!("unsupported option '{key}'")
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
        "rw",
        ValueKind::OneOf(RwMode::names),
        "I/O pattern: sequential or random reads or writes; rw (= readwrite) and randrw mix \
         reads and writes by rwmixread",
        store!(rw = RwMode::parse),
    )
    .aliases(&["readwrite"]),
    JobOption::set(
        "bs",
        ValueKind::Size,
        "block size per I/O, a multiple of 4k; I/Os above 1m are split into 1 MiB bios",
        store!(bs = size),
    )
    .aliases(&["blocksize"]),
    JobOption::set(
        "size",
        ValueKind::Size,
        "bytes of I/O per job, and the file size, a multiple of 4k (default 1g)",
        store!(size = size),
    ),
    JobOption::set(
        "offset",
        ValueKind::Size,
        "start I/O this far into the file, a multiple of 4k (no percentages)",
        store!(offset = offset),
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
        "file or block device to use (default: a temporary file)",
        store!(filename = |k, v| path(k, v).map(Some)),
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
        "fio's checksum names, as csum: crc32c-intel is crc32c, 0 is none. fio checksums \
         each block into a header and checks it in a verify phase; csumbench checksums \
         every 4 KiB sector as it is written, keeps the sums in its store, and checks them \
         when a read job reads the sector",
        store!(csum = CsumName::from_verify),
    ),
    JobOption::set(
        "verify_async",
        ValueKind::Int,
        "N: use strategy kthread:max_workers=N, 0: inline, when no --strategy is given \
         (fio's N verify threads)",
        store!(strategy_hint = |k, v| verify_async(k, v).map(Some)),
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
        store!(rate = |k, v| per_dir(k, v, |one| size(k, one))),
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
        "randrepeat",
        ValueKind::Flag,
        "1: the same random sequence every run (default 1)",
        store!(randrepeat = flag),
    ),
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
    JobOption::file_only(
        "stonewall",
        Action::Stonewall,
        "the job starts a new group, run after the jobs before it; in [global], every \
         later job does",
    )
    .aliases(&["wait_for_previous"]),
    JobOption::file_only("description", Action::Ignored, IGNORED_TEXT).value(ValueKind::Text),
    JobOption::file_only(
        "group_reporting",
        Action::Ignored,
        "accepted, no effect: fio merges the clones' results in its report; the I/O is \
         the same",
    ),
    JobOption::file_only(
        "thread",
        Action::Ignored,
        "accepted, no effect: csumbench always runs jobs as threads",
    ),
    JobOption::file_only("clat_percentiles", Action::Ignored, PERCENTILES),
    JobOption::file_only("lat_percentiles", Action::Ignored, PERCENTILES),
    JobOption::file_only("slat_percentiles", Action::Ignored, PERCENTILES),
    JobOption::file_only("percentile_list", Action::Ignored, PERCENTILES).value(ValueKind::Text),
];

fn offset(k: &str, v: &str) -> Result<u64, String> {
    if v.trim().ends_with('%') {
        return Err(format!(
            "{k}={v}: percentages are not supported; give a size (e.g. 1g)"
        ));
    }
    size(k, v)
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

const IGNORED_TEXT: &str = "accepted, no effect: free text";
const PERCENTILES: &str =
    "accepted, no effect: which latency percentiles fio prints, not what is measured";

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
        explain(option)
    } else {
        format!("[{}] {}", owners.join(", "), explain(option))
    }
}

/// The option's help, and whether it is implemented.
pub fn explain(option: &JobOption) -> String {
    match option.status {
        Status::Applied => option.help.to_string(),
        Status::NotYet(why) => format!(
            "{} — not implemented yet ({why}): only its default is accepted",
            option.help
        ),
    }
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
    fn not_yet_options_take_only_their_default() {
        let mut j = JobSpec::default();
        j.set("ioengine", "libaio").unwrap();
        let before = j.clone();
        j.set("userspace_reap", "0").unwrap();
        let e = j.set("userspace_reap", "1").unwrap_err();
        assert_eq!(
            e,
            "userspace_reap=1: not implemented yet (completions are reaped with \
             io_getevents); leave userspace_reap out"
        );
        assert_eq!(j, before, "a refused option changes nothing");
        assert!(j
            .set("iodepth_low", "x")
            .unwrap_err()
            .contains("whole number"));
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
        assert!(table.contains("not implemented yet"));
    }
}
