//! A job: fio's options, with fio's names and meanings. Both the command line and job
//! files go through [`JobSpec::set`], which looks the option up in [`options::OPTIONS`]
//! (and the engines' own options), so an option means the same thing everywhere.

mod batch;
mod blocks;
pub mod csum;
pub mod files;
pub mod fio;
pub mod logs;
pub mod options;
pub mod pattern;
mod span;
pub mod timing;
pub(crate) mod values;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use batch::Batch;
pub use blocks::{BlockSize, Blocks, Split};
pub use csum::CsumName;
pub use files::{FileService, Files};
pub use logs::{LogKind, Logs};
pub use options::{JobOption, OPTIONS};
pub use pattern::{Distribution, Generator, Random, Sequencer, Zone};
pub use span::Region;
pub use timing::{RateProcess, ThinkBlocks, Timing};

use crate::engine::{registry, EngineKind, EngineOptions, Op};
use crate::steady::{SteadyOptions, SteadyState};
use crate::units::{format_size, format_size_approx, substitute_keywords, KbBase, Machine};
use crate::SECTOR_SIZE;
use values::alternatives;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RwMode {
    Read,
    Write,
    RandRead,
    RandWrite,
    /// fio's `rw=rw` / `rw=readwrite`: sequential, reads and writes mixed by `rwmixread`.
    ReadWrite,
    /// fio's `rw=randrw`: random, reads and writes mixed by `rwmixread`.
    RandRw,
}

/// Every `rw=` value fio takes, and the mode it names.
const RW_NAMES: &[(&str, RwMode)] = &[
    ("read", RwMode::Read),
    ("write", RwMode::Write),
    ("randread", RwMode::RandRead),
    ("randwrite", RwMode::RandWrite),
    ("rw", RwMode::ReadWrite),
    ("readwrite", RwMode::ReadWrite),
    ("randrw", RwMode::RandRw),
];

/// fio's `rw=` values that trim.
const TRIMS: &[&str] = &["trim", "randtrim", "trimwrite", "randtrimwrite"];

impl RwMode {
    /// The job issues writes (the mixed modes do, as well as reads).
    pub fn is_write(self) -> bool {
        !matches!(self, RwMode::Read | RwMode::RandRead)
    }

    /// The job issues reads (the mixed modes do, as well as writes).
    pub fn is_read(self) -> bool {
        !matches!(self, RwMode::Write | RwMode::RandWrite)
    }

    /// Reads and writes mixed in one job: its [`IoPattern`](crate::offsets::IoPattern) draws
    /// each I/O's direction.
    pub fn is_mixed(self) -> bool {
        matches!(self, RwMode::ReadWrite | RwMode::RandRw)
    }

    pub fn is_random(self) -> bool {
        matches!(self, RwMode::RandRead | RwMode::RandWrite | RwMode::RandRw)
    }

    pub fn name(self) -> &'static str {
        match self {
            RwMode::Read => "read",
            RwMode::Write => "write",
            RwMode::RandRead => "randread",
            RwMode::RandWrite => "randwrite",
            RwMode::ReadWrite => "readwrite",
            RwMode::RandRw => "randrw",
        }
    }

    /// Every value `rw=` takes.
    pub fn names() -> Vec<&'static str> {
        RW_NAMES.iter().map(|(name, _)| *name).collect()
    }

    /// `rw=VALUE`, as fio reads it.
    pub fn parse(key: &str, value: &str) -> Result<RwMode, String> {
        let v = value.trim();
        if TRIMS.contains(&v) {
            return Err(format!(
                "{key}={v}: csumbench issues no trims; use rw=write or rw=randwrite"
            ));
        }
        RW_NAMES
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, mode)| *mode)
            .ok_or_else(|| format!("{key}={v}: expected {}", alternatives(&Self::names())))
    }
}

/// A per-direction value, as fio's `rate=r,w` comma form (for rates, 0 is "no limit").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerDir<T = u64> {
    pub read: T,
    pub write: T,
}

impl<T: Clone> PerDir<T> {
    /// The same value for both directions.
    pub fn both(v: T) -> PerDir<T> {
        PerDir {
            read: v.clone(),
            write: v,
        }
    }

    pub fn of(&self, op: Op) -> &T {
        match op {
            Op::Read => &self.read,
            Op::Write => &self.write,
        }
    }

    pub fn of_mut(&mut self, op: Op) -> &mut T {
        match op {
            Op::Read => &mut self.read,
            Op::Write => &mut self.write,
        }
    }
}

impl<T: Copy> PerDir<T> {
    pub fn get(self, op: Op) -> T {
        *self.of(op)
    }
}

/// A problem with a job as a whole: the option to change (fio's name), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub option: &'static str,
    pub message: String,
}

/// One of the checks of [`JobSpec::check`].
type JobCheck = fn(&JobSpec) -> Result<(), Invalid>;

impl Invalid {
    fn new(option: &'static str, message: String) -> Invalid {
        Invalid { option, message }
    }
}

/// The most clones of one job (fio's `REAL_MAX_JOBS`): each is a thread with its own buffers.
pub const MAX_NUMJOBS: u32 = 4096;
/// The deepest queue a job may keep: each slot holds an I/O buffer of up to 1 MiB.
/// (io_uring's own rings stop at 32768 entries; psync uses the depth for the pipeline.)
pub const MAX_IODEPTH: u32 = 65536;
/// The largest file offset the kernel accepts (`off_t` is signed).
pub const MAX_FILE_OFFSET: u64 = i64::MAX as u64;

/// fio's default seed (`FIO_RANDSEED`), used when `randrepeat=1` and no `randseed` is given.
const FIO_RANDSEED: u64 = 0xb189_9bed;

/// One fio job. Defaults are fio's, except `csum` (ours) and `size` (fio has none; ours
/// is 1 GiB so a bare `harness run` does something sensible).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSpec {
    pub name: String,
    /// How size prefixes read (fio's `kb_base`).
    pub kb_base: KbBase,
    pub rw: RwMode,
    /// `rw=MODE:N` of a sequential mode: bytes to skip after each I/O (negative: backwards).
    pub seq_skip: i64,
    /// `rw=MODE:N` of a random mode: I/Os per random offset (1: each its own).
    pub rand_run: u32,
    /// What the I/Os between two random offsets do (fio's `rw_sequencer`).
    pub sequencer: Sequencer,
    /// Block sizes per direction (`bs`, `bsrange`, `bssplit`, `blockalign`).
    #[serde(flatten)]
    pub blocks: Blocks,
    /// Bytes of the region each clone's I/O covers; with `io_size` unset, also the bytes
    /// of I/O per pass.
    pub size: u64,
    /// `size=N%`: the region is N% of the file (over `size`).
    pub size_percent: Option<u32>,
    /// Bytes of I/O per pass when not `size` (fio's `io_size`, `io_limit`).
    pub io_size: Option<u64>,
    /// Stop after this many I/Os (per loop; 0: no such limit).
    pub number_ios: u64,
    /// Passes over the region (fio's `loops`; 0 is 1).
    pub loops: u32,
    /// The random options: the random map, generator, distribution, share of random I/O.
    pub random: Random,
    pub numjobs: u32,
    pub iodepth: u32,
    /// fio's `iodepth_batch_*` and `iodepth_low`: how many I/Os to submit and reap at once.
    pub batch: Batch,
    pub direct: bool,
    /// fsync after every N writes (0: never).
    pub fsync: u32,
    pub end_fsync: bool,
    #[serde(with = "opt_secs")]
    pub runtime: Option<Duration>,
    pub time_based: bool,
    pub filename: Option<PathBuf>,
    pub directory: Option<PathBuf>,
    /// The job's files beyond one per clone: `nrfiles`, `filesize`, `filename` lists...
    pub files: Files,
    /// fio's `verify=` was given (not `0`/`none`): what asks for fio's verify phase. Only
    /// `csum=`, csumbench's own, does not.
    pub verify: bool,
    /// fio's `do_verify`: a write job with `verify` reads its data back after the writes
    /// (fio's verify phase; default 1).
    pub do_verify: bool,
    /// fio's `verify_only`: only the verify phase, over data written before.
    pub verify_only: bool,
    /// fio's `verify_backlog`: with a verify phase, read back every N writes during the
    /// pass, and only what is left after it (0: all after it).
    pub verify_backlog: u64,
    pub ioengine: EngineKind,
    /// The options of `ioengine` that were set (fio's engine options), by name.
    pub engine_options: EngineOptions,
    /// Checksum algorithm, checked when the job is read; computed by strategies.
    pub csum: CsumName,
    /// Percentage of a mixed job's I/Os that are reads (fio's `rwmixread`, default 50).
    pub rwmixread: u32,
    /// Where in the file the job's I/O starts; it covers `offset..io_end()`.
    pub offset: u64,
    /// `offset=N%`: the region starts N% into the file (over `offset`).
    pub offset_percent: Option<u32>,
    /// Each clone's region starts this much after the previous clone's (fio's
    /// `offset_increment`).
    pub offset_increment: u64,
    /// `offset_increment=N%`: that, in percent of the file.
    pub offset_increment_percent: Option<u32>,
    /// Run this long before measuring; as in fio, it adds to `runtime`.
    #[serde(with = "opt_secs")]
    pub ramp_time: Option<Duration>,
    /// When the job's I/Os go: start delay, think time, minimum rate, flows, exitall.
    pub timing: Timing,
    /// fio's `wait_for`: the job starts once the named job has ended. A job file takes it
    /// only where the group order does that already (the named job is in an earlier group).
    pub wait_for: Option<String>,
    /// fio's steady state: end the job once its IOPS or bandwidth settles.
    pub steady: SteadyOptions,
    /// Bandwidth cap in bytes/s per direction (0: none).
    pub rate: PerDir,
    /// IOPS cap per direction (0: none); a direction's `rate` takes precedence, as in fio.
    pub rate_iops: PerDir,
    /// CPUs the job's threads may run on, sorted and deduplicated (empty: any).
    pub cpus_allowed: Vec<usize>,
    /// Same random sequence on every run (fio's default).
    pub randrepeat: bool,
    /// Seed for the random sequences; set, it makes them repeatable whatever `randrepeat`.
    pub randseed: Option<u64>,
    /// Drop the file's cached pages before the job starts (fio's default).
    pub invalidate: bool,
    /// A strategy spec implied by the job (fio's `verify_async`), for when none is given.
    pub strategy_hint: Option<String>,
    /// fio's bandwidth, IOPS and latency logs the job asks for.
    pub logs: Logs,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            name: "job".into(),
            kb_base: KbBase::default(),
            rw: RwMode::Read,
            seq_skip: 0,
            rand_run: 1,
            sequencer: Sequencer::default(),
            blocks: Blocks::new(4096),
            size: 1 << 30,
            size_percent: None,
            io_size: None,
            number_ios: 0,
            loops: 1,
            random: Random::default(),
            numjobs: 1,
            iodepth: 1,
            batch: Batch::default(),
            direct: false,
            fsync: 0,
            end_fsync: false,
            runtime: None,
            time_based: false,
            filename: None,
            directory: None,
            files: Files::default(),
            verify: false,
            do_verify: true,
            verify_only: false,
            verify_backlog: 0,
            ioengine: EngineKind::default(),
            engine_options: EngineOptions::default(),
            csum: CsumName::default(),
            rwmixread: 50,
            offset: 0,
            offset_percent: None,
            offset_increment: 0,
            offset_increment_percent: None,
            ramp_time: None,
            timing: Timing::default(),
            wait_for: None,
            steady: SteadyOptions::default(),
            rate: PerDir::default(),
            rate_iops: PerDir::default(),
            cpus_allowed: Vec::new(),
            randrepeat: true,
            randseed: None,
            invalidate: true,
            strategy_hint: None,
            logs: Logs::default(),
        }
    }
}

/// The machine's physical memory in bytes (`u64::MAX` if the kernel will not say).
pub fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    match (u64::try_from(pages), u64::try_from(page)) {
        (Ok(p), Ok(s)) if p > 0 && s > 0 => p.saturating_mul(s),
        _ => u64::MAX,
    }
}

/// splitmix64's finaliser: spreads nearby inputs (job numbers) over the seed space.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A block size csumbench can checksum: whole 4 KiB sectors.
fn whole_sectors(bytes: u64) -> bool {
    bytes > 0 && bytes.is_multiple_of(SECTOR_SIZE)
}

/// What is wrong with block size `bad` given by `option`.
fn block_size_problem(option: &str, bad: u64) -> String {
    let why = match bad {
        1..SECTOR_SIZE => {
            "is under the 4KiB checksum sector, which csumbench checksums whole; \
                           use 4k or more"
        }
        _ => "must be a non-zero multiple of the 4KiB checksum sector",
    };
    format!("{option}={}: {why}", format_size(bad))
}

impl JobSpec {
    /// The default job with `options` set in order, as a job file's lines would be.
    pub fn with(options: &[(&str, &str)]) -> Result<JobSpec, String> {
        let mut job = JobSpec::default();
        for (key, value) in options {
            job.set(key, value)?;
        }
        Ok(job)
    }

    /// Sets one option by its fio name or alias. Errors name the option and the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let key = key.trim();
        let Some(option) = options::find(key) else {
            return Err(options::unsupported(key));
        };
        let value = match value.contains('$') {
            true => substitute_keywords(value, &Machine::this())
                .map_err(|e| format!("{key}={}: {e}", value.trim()))?,
            false => value.into(),
        };
        option.apply(self, key, &value)
    }

    /// Checks the job as a whole; the error says what to change (the first of [`check`]).
    ///
    /// [`check`]: JobSpec::check
    pub fn validate(&self) -> Result<(), String> {
        match self.check().into_iter().next() {
            Some(invalid) => Err(invalid.message),
            None => Ok(()),
        }
    }

    /// Everything wrong with the job as a whole, each with the option to change.
    pub fn check(&self) -> Vec<Invalid> {
        let checks: [JobCheck; 9] = [
            Self::check_blocks,
            Self::check_verify_only,
            Self::check_logs,
            Self::check_pattern,
            Self::check_time_and_mix,
            Self::check_span,
            Self::check_counts,
            Self::check_engine,
            |job| {
                job.check_memory(physical_memory())
                    .map_err(|e| Invalid::new("iodepth", e))
            },
        ];
        checks
            .iter()
            .filter_map(|check| check(self).err())
            .collect()
    }

    /// What the job's engine has to say about it that does not stop it, e.g. that it will
    /// not queue I/O the way the job asks. For the user to see before it runs.
    pub fn warnings(&self) -> Vec<String> {
        (self.ioengine.descriptor().check)(self).unwrap_or_default()
    }

    /// Whether the job reads back and verifies what it wrote once its writes end (fio's
    /// verify phase: `verify=` given, `do_verify=1`, a job that writes, an engine with a
    /// disk).
    pub fn verify_phase(&self) -> bool {
        self.verify
            && self.do_verify
            && self.csum != "none"
            && self.rw.is_write()
            && !self.ioengine.descriptor().caps.diskless
    }

    /// The job as it runs: with fio's `verify_only`, only its verify phase (reads of what
    /// an earlier run wrote, measured); otherwise itself.
    pub fn as_run(self) -> JobSpec {
        match self.verify_only {
            true => self.verify_pass(),
            false => self,
        }
    }

    /// The job of its verify phase: sequential reads of what it wrote, at its depth and
    /// with its engine, unpaced and not timed.
    pub fn verify_pass(&self) -> JobSpec {
        JobSpec {
            rw: RwMode::Read,
            seq_skip: 0,
            runtime: None,
            time_based: false,
            ramp_time: None,
            fsync: 0,
            end_fsync: false,
            rate: PerDir::default(),
            rate_iops: PerDir::default(),
            timing: Timing::default(),
            steady: SteadyOptions::default(),
            ..self.clone()
        }
    }

    /// Opens the job's engine over a clone's already opened files (none only for a
    /// diskless engine), with the job's depth and engine options.
    pub fn open_engine(
        &self,
        files: Vec<std::sync::Arc<std::fs::File>>,
    ) -> std::io::Result<Box<dyn crate::Engine>> {
        self.ioengine.open(crate::engine::EngineSetup {
            files,
            depth: self.iodepth,
            options: &self.engine_options,
        })
    }

    fn check_blocks(&self) -> Result<(), Invalid> {
        for op in self.directions() {
            let option = self.blocks.option(op);
            let sizes = self.blocks.of(op);
            if let Some(bad) = sizes.sizes().find(|s| !whole_sectors(*s)) {
                return Err(Invalid::new(option, block_size_problem(option, bad)));
            }
            let align = self.blocks.align.get(op);
            if self.rw.is_random() && !align.is_multiple_of(SECTOR_SIZE) {
                return Err(Invalid::new(
                    "ba",
                    format!(
                        "ba={}: must be a multiple of the 4KiB checksum sector",
                        format_size(align)
                    ),
                ));
            }
        }
        if self.size == 0 {
            return Err(Invalid::new("size", "size=0: nothing to do".into()));
        }
        let min = self.min_bs();
        if self.size < min {
            return Err(Invalid::new(
                "size",
                format!(
                    "size={} is smaller than bs={}",
                    format_size(self.size),
                    format_size(min)
                ),
            ));
        }
        if !self.size.is_multiple_of(SECTOR_SIZE) {
            return Err(Invalid::new(
                "size",
                format!(
                    "size={}: must be a multiple of the 4KiB checksum sector",
                    format_size(self.size)
                ),
            ));
        }
        Ok(())
    }

    /// The options that shape where I/Os go, as a whole.
    fn check_pattern(&self) -> Result<(), Invalid> {
        if !self.seq_skip.unsigned_abs().is_multiple_of(SECTOR_SIZE) {
            return Err(Invalid::new(
                "rw",
                format!(
                    "rw={}:{}: a skip must be whole 4KiB checksum sectors",
                    self.rw.name(),
                    self.seq_skip
                ),
            ));
        }
        if !self.offset_increment.is_multiple_of(SECTOR_SIZE) {
            return Err(Invalid::new(
                "offset_increment",
                format!(
                    "offset_increment={}: must be a multiple of the 4KiB checksum sector",
                    format_size(self.offset_increment)
                ),
            ));
        }
        for (option, percent) in [
            ("size", self.size_percent),
            ("offset", self.offset_percent),
            ("offset_increment", self.offset_increment_percent),
        ] {
            if let Some(p) = percent {
                return Err(Invalid::new(
                    option,
                    format!(
                        "{option}={p}%: not implemented yet (the harness sizes a job's file \
                         before it knows the file's size); give {option} in bytes"
                    ),
                ));
            }
        }
        self.check_zones()?;
        self.check_file_shares()
    }

    /// Every file of every clone gets at least one block (fio ignores a file whose share
    /// is nothing, and refuses a clone whose files have none: csumbench says so for
    /// either). Without `filesize` every clone's shares are the first's.
    fn check_file_shares(&self) -> Result<(), Invalid> {
        if !self.has_file_set() {
            return Ok(());
        }
        let bs = self.max_bs();
        let clones = match self.files.filesize {
            Some(_) => self.numjobs,
            None => 1,
        };
        for (jobnum, sizes) in (0..clones).map(|n| (n, self.file_sizes(n))) {
            let Some(smallest) = sizes.iter().min().copied().filter(|&s| s < bs) else {
                continue;
            };
            let (option, why) = match self.files.filesize {
                Some(_) => (
                    "filesize",
                    format!(
                        "filesize less clone {jobnum}'s offset of {}",
                        format_size(self.region(jobnum, 0).start)
                    ),
                ),
                None => (
                    "size",
                    format!("size={} over {} files", format_size(self.size), sizes.len()),
                ),
            };
            return Err(Invalid::new(
                option,
                format!(
                    "a file's share of the I/O is {} ({why}), less than one {} block; give \
                     more size or fewer files (or clones)",
                    format_size(smallest),
                    format_size(bs)
                ),
            ));
        }
        Ok(())
    }

    /// zoned_abs zones must lie within the region (fio stops the job when they do not).
    fn check_zones(&self) -> Result<(), Invalid> {
        for op in self.directions() {
            if let Some((zones, true)) = self.random.distribution.zones(op) {
                let end: u64 = zones.iter().map(|z| z.size).sum();
                if end > self.size {
                    return Err(Invalid::new(
                        "random_distribution",
                        format!(
                            "random_distribution=zoned_abs: the zones reach {}, beyond \
                             size={}",
                            format_size(end),
                            format_size(self.size)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_time_and_mix(&self) -> Result<(), Invalid> {
        if self.time_based && self.runtime.is_none() {
            return Err(Invalid::new(
                "time_based",
                "time_based=1 needs a runtime".into(),
            ));
        }
        if self.rwmixread > 100 {
            return Err(Invalid::new(
                "rwmixread",
                format!("rwmixread={}: a percentage is at most 100", self.rwmixread),
            ));
        }
        SteadyState::of(&self.steady)
            .map(drop)
            .map_err(|e| Invalid::new("steadystate_duration", e))
    }

    fn check_span(&self) -> Result<(), Invalid> {
        if !self.offset.is_multiple_of(SECTOR_SIZE) {
            return Err(Invalid::new(
                "offset",
                format!(
                    "offset={}: must be a multiple of the 4KiB checksum sector",
                    format_size(self.offset)
                ),
            ));
        }
        if self
            .last_region_end()
            .is_none_or(|end| end > MAX_FILE_OFFSET)
        {
            return Err(Invalid::new(
                "offset",
                format!(
                    "offset={} + size={} is beyond any file (files end before 8EiB)",
                    format_size(self.offset),
                    format_size(self.size)
                ),
            ));
        }
        Ok(())
    }

    fn check_counts(&self) -> Result<(), Invalid> {
        if !(1..=MAX_NUMJOBS).contains(&self.numjobs) {
            return Err(Invalid::new(
                "numjobs",
                format!("numjobs={}: must be from 1 to {MAX_NUMJOBS}", self.numjobs),
            ));
        }
        if !(1..=MAX_IODEPTH).contains(&self.iodepth) {
            return Err(Invalid::new(
                "iodepth",
                format!("iodepth={}: must be from 1 to {MAX_IODEPTH}", self.iodepth),
            ));
        }
        Ok(())
    }

    /// A log named after the job (`write_bw_log` bare) takes the job's name as its prefix,
    /// which must then stay in the results folder as a given prefix must.
    fn check_logs(&self) -> Result<(), Invalid> {
        let by_name = [&self.logs.bw, &self.logs.iops, &self.logs.lat]
            .into_iter()
            .any(|p| p.as_deref() == Some(""));
        match by_name {
            true => logs::check_prefix("name", &self.name).map_err(|e| Invalid::new("name", e)),
            false => Ok(()),
        }
    }

    /// `verify_only` checks sums: a job without a checksum has none to check.
    fn check_verify_only(&self) -> Result<(), Invalid> {
        if self.verify_only && self.csum == "none" {
            return Err(Invalid::new(
                "verify_only",
                "verify_only=1 reads back what an earlier run wrote and checks its sums: \
                 give the checksum it wrote with (verify= or csum=), not none"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Engine options belong to the job's engine, and the engine accepts the job.
    fn check_engine(&self) -> Result<(), Invalid> {
        let engine = self.ioengine.descriptor();
        for name in self.engine_options.names() {
            if engine.options.iter().any(|o| o.name == name) {
                continue;
            }
            let option = options::find(name).map_or("ioengine", |o| o.name);
            return Err(Invalid::new(
                option,
                format!(
                    "{name}: an option of ioengine={}, but the job's ioengine is {}",
                    registry::declaring(name).join(", "),
                    engine.name
                ),
            ));
        }
        (engine.check)(self)
            .map(drop)
            .map_err(|e| Invalid::new("ioengine", e))
    }

    /// Bytes of I/O buffers the job holds: one bio-sized buffer per iodepth slot, per clone.
    pub fn buffer_bytes(&self) -> u64 {
        u64::from(self.numjobs)
            .saturating_mul(u64::from(self.iodepth))
            .saturating_mul(self.bio_size())
    }

    /// Refuses a job whose I/O buffers would take more than half of `memory` (a machine's
    /// physical memory): it would be swapped or killed, not measured.
    pub fn check_memory(&self, memory: u64) -> Result<(), String> {
        let need = self.buffer_bytes();
        if need > memory / 2 {
            return Err(format!(
                "numjobs={} x iodepth={} x {} buffers = {} of I/O buffers, more than half \
                 of this machine's {} of memory; lower iodepth or numjobs",
                self.numjobs,
                self.iodepth,
                format_size(self.bio_size()),
                format_size_approx(need),
                format_size_approx(memory)
            ));
        }
        Ok(())
    }

    /// Why a case of this job measured nothing, when its ramp is to blame: the job ended
    /// before its `ramp_time` did, so every I/O fell in the ramp.
    pub fn nothing_measured(&self) -> Option<String> {
        let ramp = self.ramp_time?;
        Some(format!(
            "job '{}': ramp_time={}s swallowed the whole job: nothing measured (it ended \
             before its ramp did); lower ramp_time, or give time_based=1 and a runtime",
            self.name,
            ramp.as_secs_f64()
        ))
    }

    /// Percentage of I/Os that are reads: 100 or 0 for the pure modes, `rwmixread` for
    /// the mixed ones.
    pub fn read_percent(&self) -> u32 {
        match self.rw {
            RwMode::ReadWrite | RwMode::RandRw => self.rwmixread,
            RwMode::Read | RwMode::RandRead => 100,
            RwMode::Write | RwMode::RandWrite => 0,
        }
    }

    /// The bandwidth cap for one direction in bytes/s, as fio settles it: `rate` if set,
    /// else `rate_iops` × the direction's smallest block; `None` when unlimited.
    pub fn rate_limit(&self, op: Op) -> Option<u64> {
        match (self.rate.get(op), self.rate_iops.get(op)) {
            (0, 0) => None,
            (0, iops) => Some(iops.saturating_mul(self.blocks.of(op).min)),
            (bytes, _) => Some(bytes),
        }
    }

    /// The seed for one submitter, by fio's rules: with `randrepeat=1` or a `randseed`,
    /// the same for the same `job_number` on every run; otherwise different each run.
    /// `job_number` tells the job's clones (and the jobs of a job file) apart.
    pub fn seed(&self, job_number: u32) -> u64 {
        let base = if self.randrepeat || self.randseed.is_some() {
            self.randseed.unwrap_or(FIO_RANDSEED)
        } else {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            now ^ (u64::from(std::process::id()) << 32)
        };
        mix64(base ^ mix64(u64::from(job_number)))
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
    use crate::units::parse_size;

    #[test]
    #[allow(clippy::too_many_lines)] // a sample for every option
    fn every_job_option_is_accepted() {
        let samples = [
            ("name", "x"),
            ("kb_base", "1024"),
            ("rw", "randwrite"),
            ("bs", "64k"),
            ("size", "1g"),
            ("numjobs", "2"),
            ("iodepth", "8"),
            ("iodepth_batch_submit", "1"),
            ("iodepth_batch_complete_min", "1"),
            ("iodepth_batch_complete_max", "0"),
            ("iodepth_low", "0"),
            ("direct", "1"),
            ("buffered", "0"),
            ("fsync", "4"),
            ("end_fsync", "1"),
            ("runtime", "10"),
            ("time_based", "1"),
            ("filename", "/tmp/x"),
            ("directory", "/tmp"),
            ("ioengine", "null"),
            ("csum", "sha256"),
            ("rwmixread", "70"),
            ("rwmixwrite", "20"),
            ("offset", "1m"),
            ("offset_increment", "4m"),
            ("bsrange", "4k-64k"),
            ("bssplit", "4k/50:64k/50,8k"),
            ("ba", "4k"),
            ("rw_sequencer", "identical"),
            ("io_size", "2g"),
            ("number_ios", "1000"),
            ("loops", "2"),
            ("norandommap", "1"),
            ("random_generator", "lfsr"),
            ("random_distribution", "zipf:1.2"),
            ("percentage_sequential", "10"),
            ("percentage_random", "80,70"),
            ("ramp_time", "2"),
            ("startdelay", "1-2"),
            ("thinktime", "2ms"),
            ("thinktime_spin", "1ms"),
            ("thinktime_blocks", "8"),
            ("thinktime_blocks_type", "issue"),
            ("write_bw_log", "b"),
            ("write_iops_log", "i"),
            ("write_lat_log", ""),
            ("log_avg_msec", "250"),
            ("per_job_logs", "0"),
            ("log_offset", "1"),
            // Not implemented yet: only their defaults are taken.
            ("rate_min", "0"),
            ("rate_process", "linear"),
            ("flow", "0"),
            ("flow_id", "0"),
            ("flow_sleep", "0"),
            ("exitall", "0"),
            ("wait_for", "other"),
            ("steadystate", "bw_slope:1%"),
            ("steadystate_duration", "10"),
            ("steadystate_ramp_time", "1"),
            ("steadystate_check_interval", "500ms"),
            ("rate", "1m,2m"),
            ("rate_iops", "100"),
            ("cpumask", "0x3"),
            ("cpus_allowed", "0-1"),
            ("randrepeat", "0"),
            ("randseed", "0x10"),
            ("invalidate", "0"),
            ("verify", "crc32c-intel"),
            ("verify_async", "4"),
            ("do_verify", "0"),
            ("verify_only", "0"),
            ("verify_backlog", "0"),
            ("nrfiles", "1"),
            ("file_service_type", "roundrobin"),
            ("filename_format", "$jobname.$jobnum.$filenum"),
            ("create_on_open", "0"),
            ("unlink", "0"),
        ];
        // filesize has no value that changes nothing, so none that it takes yet.
        let mut job_options: Vec<&str> = OPTIONS
            .iter()
            .filter(|o| o.sets_job() && o.name != "filesize")
            .map(|o| o.name)
            .collect();
        let mut sampled: Vec<&str> = samples.iter().map(|(k, _)| *k).collect();
        job_options.sort_unstable();
        sampled.sort_unstable();
        assert_eq!(sampled, job_options, "a sample for every option");
        let mut j = JobSpec::default();
        for (k, v) in samples {
            j.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        assert_eq!(j.rw, RwMode::RandWrite);
        assert_eq!(j.blocks.bs, PerDir::both(65536));
        assert_eq!(j.blocks.of(Op::Read).max, 65536, "the split's");
        assert_eq!(j.blocks.of(Op::Write).min, 8192);
        assert_eq!((j.io_size, j.number_ios, j.loops), (Some(2 << 30), 1000, 2));
        assert_eq!(
            j.random.percentage,
            PerDir {
                read: 80,
                write: 70
            }
        );
        assert!(!j.random.map && j.random.generator.is_lfsr());
        assert_eq!(j.sequencer, Sequencer::Identical);
        assert_eq!(j.iodepth, 8);
        assert!(j.direct && j.end_fsync && j.time_based);
        assert_eq!(j.runtime, Some(Duration::from_secs(10)));
        assert_eq!(j.rwmixread, 80, "the later of rwmixread/rwmixwrite wins");
        assert_eq!(j.offset, 1 << 20);
        assert_eq!(
            j.io_end(),
            (1 << 30) + (5 << 20),
            "offset + a second clone's increment"
        );
        assert_eq!(j.ramp_time, Some(Duration::from_secs(2)));
        assert_eq!(j.cpus_allowed, vec![0, 1]);
        assert!(!j.randrepeat && !j.invalidate);
        assert_eq!(j.randseed, Some(16));
        assert_eq!(j.csum, "crc32c");
        assert_eq!(j.strategy_hint.as_deref(), Some("kthread:max_workers=4"));
        j.validate().unwrap();
    }

    #[test]
    fn rw_modes_and_the_readwrite_alias() {
        let mut j = JobSpec::default();
        for (v, mode) in [
            ("rw", RwMode::ReadWrite),
            ("readwrite", RwMode::ReadWrite),
            ("randrw", RwMode::RandRw),
            ("randread", RwMode::RandRead),
        ] {
            j.set("rw", v).unwrap();
            assert_eq!(j.rw, mode);
            j.set("readwrite", "write").unwrap();
            assert_eq!(j.rw, RwMode::Write, "readwrite= is rw=");
        }
        j.set("rw", "randrw").unwrap();
        assert!(j.rw.is_read() && j.rw.is_write() && j.rw.is_mixed() && j.rw.is_random());
        assert_eq!(j.rw.name(), "randrw");
        j.set("rw", "readwrite").unwrap();
        assert!(j.rw.is_mixed() && !j.rw.is_random());
        assert_eq!(j.read_percent(), 50);
        j.set("rwmixwrite", "30").unwrap();
        assert_eq!(j.read_percent(), 70);
        j.set("rw", "write").unwrap();
        assert_eq!(j.read_percent(), 0);
        assert!(!j.rw.is_read() && !j.rw.is_mixed());
        for trim in ["trim", "randtrim", "trimwrite", "randtrimwrite"] {
            let e = j.set("rw", trim).unwrap_err();
            assert!(
                e.contains(&format!("rw={trim}: csumbench issues no trims")),
                "{e}"
            );
        }
        j.set("rw", "randread:8").unwrap();
        assert_eq!((j.rw, j.rand_run), (RwMode::RandRead, 8));
    }

    #[test]
    fn rates_follow_fios_comma_form_and_precedence() {
        let mut j = JobSpec::default();
        j.set("rate", "1m").unwrap();
        assert_eq!(
            j.rate,
            PerDir {
                read: 1 << 20,
                write: 1 << 20
            }
        );
        j.set("rate", ",500k").unwrap();
        assert_eq!(
            j.rate,
            PerDir {
                read: 0,
                write: 500 << 10
            }
        );
        j.set("rate", "2m,").unwrap();
        assert_eq!(
            j.rate,
            PerDir {
                read: 2 << 20,
                write: 0
            }
        );
        j.set("rate", "1m,1m,1m").unwrap();
        assert_eq!(j.rate, PerDir::both(1 << 20), "the trims' rate is ignored");
        assert!(j.set("rate", "1m,1m,1m,1m").unwrap_err().contains("R,W,T"));
        j.set("rate", "2m,").unwrap();
        assert!(j.set("rate", "fast").unwrap_err().contains("rate=fast"));
        j.set("bs", "8k").unwrap();
        j.set("rate_iops", "100,10").unwrap();
        // rate wins where both are set, as in fio; rate_iops counts whole blocks.
        assert_eq!(j.rate_limit(Op::Read), Some(2 << 20));
        assert_eq!(j.rate_limit(Op::Write), Some(10 * 8192));
        j.validate().unwrap();
        assert_eq!(JobSpec::default().rate_limit(Op::Read), None);
        assert!(j.set("rate_iops", "1k").is_err());
    }

    #[test]
    fn cpu_lists_use_fios_syntax() {
        let mut j = JobSpec::default();
        j.set("cpus_allowed", "0-3,5, 2").unwrap();
        assert_eq!(j.cpus_allowed, vec![0, 1, 2, 3, 5]);
        for bad in ["", "3-1", "a", "0-", "1,,2", "99999"] {
            assert!(j.set("cpus_allowed", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeds_repeat_only_when_asked() {
        let mut j = JobSpec::default();
        assert_eq!(j.seed(0), j.seed(0), "randrepeat=1 is the default");
        assert_ne!(j.seed(0), j.seed(1), "clones get different sequences");
        let default_seed = j.seed(0);
        j.set("randseed", "42").unwrap();
        assert_ne!(j.seed(0), default_seed);
        j.set("randrepeat", "0").unwrap();
        assert_eq!(
            j.seed(3),
            j.seed(3),
            "a randseed repeats whatever randrepeat"
        );
        j.randseed = None;
        let a = j.seed(0);
        std::thread::sleep(Duration::from_millis(1));
        assert_ne!(a, j.seed(0), "randrepeat=0 without a seed differs per run");
    }

    #[test]
    fn verify_options_map_onto_csum_and_strategy() {
        let mut j = JobSpec::default();
        for (v, csum) in [
            ("sha256", "sha256"),
            ("crc32c", "crc32c"),
            ("0", "none"),
            ("none", "none"),
        ] {
            j.set("verify", v).unwrap();
            assert_eq!(j.csum, csum);
        }
        assert!(j.set("verify", "md5").unwrap_err().contains("verify=md5"));
        j.set("verify_async", "0").unwrap();
        assert_eq!(j.strategy_hint.as_deref(), Some("inline"));
        assert!(j.set("verify_async", "x").is_err());
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
        assert!(job("offset", "512").unwrap_err().contains("offset=512B"));
        let set = |k: &str, v: &str| JobSpec::default().set(k, v);
        assert!(job("offset", "10%")
            .unwrap_err()
            .starts_with("offset=10%: not implemented yet"));
        assert!(set("offset", "0%").unwrap_err().contains("from 1 to 100"));
        assert!(job("bs", "512")
            .unwrap_err()
            .contains("under the 4KiB checksum sector"));
        assert!(job("rw", "read:6k").unwrap_err().contains("whole 4KiB"));
        assert!(set("rwmixread", "101")
            .unwrap_err()
            .contains("rwmixread=101"));
        assert!(set("rwmixwrite", "101").is_err());
        let mut j = JobSpec {
            rwmixread: 101,
            ..JobSpec::default()
        };
        assert!(j.validate().unwrap_err().contains("rwmixread=101"));
        j.rwmixread = 100;
        j.offset = u64::MAX - 4095;
        assert!(j.validate().is_err());
        for empty in ["name", "filename", "directory", "csum"] {
            assert!(set(empty, " ").is_err(), "{empty}");
        }
    }

    #[test]
    fn counts_say_which_way_they_are_out_of_range() {
        let set = |k: &str, v: &str| JobSpec::default().set(k, v).unwrap_err();
        assert_eq!(set("iodepth", "0"), "iodepth=0: must be at least 1");
        assert_eq!(
            set("iodepth", "-1"),
            "iodepth=-1: cannot be negative; must be at least 1"
        );
        assert_eq!(
            set("iodepth", "99999999999"),
            "iodepth=99999999999: at most 65536"
        );
        assert_eq!(set("iodepth", "65537"), "iodepth=65537: at most 65536");
        assert_eq!(
            set("numjobs", "4294967296"),
            "numjobs=4294967296: at most 4096"
        );
        assert_eq!(set("numjobs", "4097"), "numjobs=4097: at most 4096");
        assert_eq!(
            set("numjobs", "two"),
            "numjobs=two: expected a whole number"
        );
        assert!(set("fsync", "-3").contains("cannot be negative"));
        assert_eq!(
            set("size", "-1m"),
            "size=-1m: '-1m': a size cannot be negative"
        );
        let mut j = JobSpec::default();
        j.set("iodepth", "65536").unwrap();
        j.set("numjobs", "4096").unwrap();
        assert_eq!((j.iodepth, j.numjobs), (65536, 4096));
    }

    #[test]
    fn runtime_zero_is_refused_not_read_as_no_limit() {
        let mut j = JobSpec::default();
        let e = j.set("runtime", "0").unwrap_err();
        assert!(e.starts_with("runtime=0: must be more than zero"), "{e}");
        assert!(j.set("timeout", "0s").unwrap_err().contains("timeout=0s"));
        assert_eq!(j.runtime, None);
        j.set("ramp_time", "0").unwrap();
        assert_eq!(j.ramp_time, None, "ramp_time=0 is fio's default: no ramp");
    }

    #[test]
    fn sizes_must_be_whole_sectors_and_whole_blocks_are_what_runs() {
        let job = |size: &str, bs: &str| {
            let mut j = JobSpec::default();
            j.set("size", size).unwrap();
            j.set("bs", bs).unwrap();
            j
        };
        for bad in ["4097", "6k", "1025k"] {
            let size = parse_size(bad).unwrap();
            let j = JobSpec {
                size,
                ..JobSpec::default()
            };
            let e = j.validate().unwrap_err();
            assert!(
                e.contains("4KiB checksum sector") && e.starts_with("size="),
                "{e}"
            );
        }
        assert!(job("6k", "4k")
            .validate()
            .unwrap_err()
            .contains("size=6KiB"));
        // A multiple of the sector but not of bs: whole blocks only, as fio.
        let j = job("100k", "64k");
        j.validate().unwrap();
        assert_eq!((j.reach(), j.io_end()), (64 << 10, 64 << 10));
    }

    #[test]
    fn offsets_must_stay_within_the_largest_file() {
        let mut j = JobSpec::default();
        j.set("size", "1m").unwrap();
        j.set("offset", "8191p").unwrap();
        j.validate().unwrap();
        j.set("offset", "8192p").unwrap();
        let e = j.validate().unwrap_err();
        assert_eq!(
            e,
            "offset=8192PiB + size=1MiB is beyond any file (files end before 8EiB)"
        );
        j.set("offset", "16383p").unwrap();
        assert!(j.validate().is_err());
    }

    #[test]
    fn caps_and_memory_are_checked_as_a_whole() {
        let j = JobSpec {
            iodepth: 0,
            ..JobSpec::default()
        };
        assert!(j.validate().unwrap_err().contains("iodepth=0"));
        let j = JobSpec {
            numjobs: MAX_NUMJOBS + 1,
            ..JobSpec::default()
        };
        assert!(j.validate().unwrap_err().contains("numjobs=4097"));
        let mut j = JobSpec::default();
        j.set("bs", "4m").unwrap();
        j.set("iodepth", "1024").unwrap();
        j.set("numjobs", "2").unwrap();
        // Bios are 1 MiB at most: 2 x 1024 x 1 MiB.
        assert_eq!(j.buffer_bytes(), 2 << 30);
        j.check_memory(4 << 30).unwrap();
        let e = j.check_memory((4 << 30) - 1).unwrap_err();
        assert!(
            e.starts_with("numjobs=2 x iodepth=1024 x 1MiB buffers = 2GiB of I/O buffers")
                && e.contains("4.0GiB of memory"),
            "{e}"
        );
        j.set("numjobs", "4096").unwrap();
        j.set("iodepth", "65536").unwrap();
        assert!(j.validate().unwrap_err().contains("256TiB of I/O buffers"));
    }
}
