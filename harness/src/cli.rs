//! The command line: `run`, `compare`, `crossover`, `list`, `report`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use strategies::csum::{self, Algo};
use workloads::engine::registry;
use workloads::job::options::{self, JobOption, Scope, ValueKind};
use workloads::JobSpec;

use crate::case::RunOptions;
use crate::crossover;
use crate::export::fio_json::{self, OutputFormat};
use crate::export::Format;
use crate::inject::Injection;
use crate::pipeline::Topology;
use crate::report;
use crate::session::{self, Plan, Repeats, Scratch};
use crate::stats::{self, AutoRepeat};
use crate::summary;

pub use crate::session::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_STALLED, EXIT_VERIFY_FAILED};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Where should per-sector checksum work run? Runs the same fio-like job through \
             interchangeable dispatch strategies and measures each."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one job through one strategy.
    Run(RunArgs),
    /// Compare strategies on the same job, repeated and interleaved (A B A B ...).
    Compare(CompareArgs),
    /// Map where offloading checksums beats inline here: checksum cost per sector x
    /// strategy x submitters, each point an interleaved compare with its verdict.
    Crossover(CrossoverArgs),
    /// List every strategy with its knobs and defaults, and every engine with its options.
    List(ListArgs),
    /// Show the summary of a stored run again, in any format.
    Report(ReportArgs),
}

#[derive(Args)]
struct ListArgs {
    /// List every job option instead (the job's, then each engine's).
    #[arg(long, conflicts_with = "fio")]
    options: bool,
    /// List every option fio has instead, and what csumbench does with it.
    #[arg(long)]
    fio: bool,
    /// How --options and --fio print them; markdown is the README's tables.
    #[arg(long, value_enum, default_value = "text")]
    format: ListFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Text,
    Markdown,
}

#[derive(Args)]
struct ReportArgs {
    /// A results folder written by `run` or `compare`.
    dir: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Args)]
struct RunArgs {
    /// Strategy spec: NAME[:knob=value,...] (see `harness list`). Default: what the job
    /// file's verify_async implies, else inline.
    #[arg(long)]
    strategy: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    job: JobArgs,
}

#[derive(Args)]
struct CompareArgs {
    /// Compare against synchronous (inline) checksums: puts `inline` first, as the baseline.
    /// With no --strategy, compares inline with the default offload pool (kthread).
    #[arg(long)]
    sync_crc: bool,
    /// A strategy to compare; give it several times. The first is the baseline.
    #[arg(long = "strategy")]
    strategies: Vec<String>,
    /// Sweep one knob: `NAME[:fixed=v,...]:KNOB=V1,V2,...` or `kthread:max_workers=1,2,4`
    /// adds one strategy per value (after any --strategy).
    #[arg(long, value_name = "SPEC=V1,V2,...")]
    sweep: Option<String>,
    #[command(flatten)]
    rounds: RoundArgs,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    job: JobArgs,
}

/// `crossover`: the sweep's axes, then a compare's rounds (fewer by default: a sweep runs
/// many compares), the common options and the job. `--numjobs` takes a list here.
#[derive(Args)]
#[command(
    mut_arg("max_repeat", |a| a.default_value("5")),
    mut_arg("warmup", |a| a.default_value("0")),
    mut_arg("numjobs", |a| a
        .value_name("N,...")
        .help("Submitter counts to sweep (default 1, 2, 4, ... up to the online CPUs)")),
)]
struct CrossoverArgs {
    /// An offload strategy to map against inline; give it several times (default kthread,
    /// the default offload pool).
    #[arg(long = "strategy")]
    strategies: Vec<String>,
    /// The real checksums, each placed on the cost axis at what it costs here.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "crc32c,xxhash64,sha256,blake2b"
    )]
    algorithms: Vec<Algo>,
    /// The cheapest synthetic cost per 4 KiB sector (csum=cost:TIME); points below what
    /// reading a sector for its crc32c costs here are left out.
    #[arg(long, default_value = "10ns", value_parser = parse_cost)]
    cost_min: u32,
    /// The dearest synthetic cost per 4 KiB sector.
    #[arg(long, default_value = "20us", value_parser = parse_cost)]
    cost_max: u32,
    /// Synthetic costs, spread log-uniformly from --cost-min to --cost-max (0: none).
    #[arg(long, default_value_t = 8)]
    cost_points: u32,
    /// A coarser sweep: at most 4 synthetic costs and 3 rounds a point, 200 ms cases,
    /// numjobs 1 and the online CPUs only (unless given).
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    rounds: RoundArgs,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    job: JobArgs,
}

/// `--cost-min 10ns`: a time per sector, as `csum=cost:TIME` reads it.
fn parse_cost(s: &str) -> Result<u32, String> {
    match format!("cost:{s}").parse::<Algo>()? {
        Algo::Cost { ns_per_sector } => Ok(ns_per_sector),
        _ => unreachable!("a cost: name parses as a cost"),
    }
}

impl CrossoverArgs {
    /// Every checksum of the sweep: the real ones, then the synthetic costs.
    fn algorithms(&self) -> Result<Vec<Algo>> {
        if self.cost_min > self.cost_max {
            bail!(
                "--cost-min {} is above --cost-max {}",
                Algo::Cost {
                    ns_per_sector: self.cost_min
                },
                Algo::Cost {
                    ns_per_sector: self.cost_max
                }
            );
        }
        let points = if self.quick {
            self.cost_points.min(4)
        } else {
            self.cost_points
        };
        let synthetic = crossover::log_uniform(self.cost_min, self.cost_max, points)
            .into_iter()
            .map(|ns_per_sector| Algo::Cost { ns_per_sector });
        Ok(self.algorithms.iter().copied().chain(synthetic).collect())
    }

    /// The rounds per point; `--quick` caps them at 3 (the fewest a verdict needs).
    fn schedule(&self) -> Result<Schedule> {
        let mut schedule = self.rounds.schedule()?;
        if self.quick {
            schedule.repeats = match schedule.repeats {
                Repeats::Fixed(n) => Repeats::Fixed(n.min(3)),
                Repeats::Auto(rule) => Repeats::Auto(AutoRepeat {
                    max_rounds: rule.max_rounds.min(3),
                    ..rule
                }),
            };
        }
        Ok(schedule)
    }
}

/// How many interleaved rounds a compare runs, and how it judges them.
#[derive(Args)]
struct RoundArgs {
    /// Rounds of every strategy, interleaved (A B A B ...): a number, or `auto`: at least 3,
    /// then more until every throughput interval is within --precision, or a cap is hit.
    #[arg(long, default_value = "auto", value_parser = parse_repeat)]
    repeat: RepeatArg,
    /// With --repeat auto: the widest throughput interval accepted, ± this (e.g. 3%).
    #[arg(long, default_value = "3%", value_parser = stats::parse_fraction)]
    precision: f64,
    /// With --repeat auto: at most this many rounds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(3..))]
    max_repeat: u32,
    /// With --repeat auto: no round starts that would end after this (e.g. 2m).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    max_time: Duration,
    /// Rounds run first and not counted (recorded as warm-up), as fio's ramp_time.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// A ratio whose 95% interval stays within 1 ± this is `same` (e.g. 2%).
    #[arg(long, default_value = "2%", value_parser = stats::parse_fraction)]
    noise_threshold: f64,
}

#[derive(Clone, Copy)]
enum RepeatArg {
    Auto,
    Fixed(u32),
}

fn parse_repeat(s: &str) -> Result<RepeatArg, String> {
    match s {
        "auto" => Ok(RepeatArg::Auto),
        n => match n.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(RepeatArg::Fixed(n)),
            _ => Err(format!("expected auto or a whole number from 1, not '{n}'")),
        },
    }
}

impl RoundArgs {
    fn schedule(&self) -> Result<Schedule> {
        let repeats = match self.repeat {
            RepeatArg::Fixed(n) => Repeats::Fixed(n),
            RepeatArg::Auto => {
                let rule = AutoRepeat {
                    max_rounds: self.max_repeat,
                    max_time: Some(self.max_time),
                    precision: self.precision,
                    ..AutoRepeat::default()
                };
                rule.validate().map_err(|e| anyhow!(e))?;
                Repeats::Auto(rule)
            }
        };
        Ok(Schedule {
            repeats,
            warmup: self.warmup,
            summary: summary::Settings {
                noise_threshold: self.noise_threshold,
                ..summary::Settings::default()
            },
        })
    }
}

/// The rounds of a run and how they are judged.
struct Schedule {
    repeats: Repeats,
    warmup: u32,
    summary: summary::Settings,
}

impl Schedule {
    /// `run`: one case, nothing to compare.
    fn single() -> Schedule {
        Schedule {
            repeats: Repeats::Fixed(1),
            warmup: 0,
            summary: summary::Settings::default(),
        }
    }
}

#[derive(Args)]
struct CommonArgs {
    /// separate: checksum, endio and metadata-endio work each get their own pool;
    /// shared: one pool for all (can deadlock, as the 2008 btrfs patch warns).
    #[arg(long, default_value = "separate", value_parser = crate::names::parser(&Topology::ALL))]
    endio: Topology,
    /// Results folder (default results/<UTC timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds without a completed I/O before the watchdog declares a deadlock or stall.
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    stall_timeout: Duration,
    /// Length of the bandwidth and histogram intervals (e.g. 100ms, 1s).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    interval: Duration,
    /// Keep the temporary data files (and their checksum stores) after the run.
    #[arg(long)]
    keep_files: bool,
    /// Allow writing over an existing file that csumbench did not create.
    #[arg(long)]
    overwrite: bool,
    /// Allow writing to a block device (destroys its contents).
    #[arg(long)]
    allow_device_write: bool,
    /// Let a read job write its file again when the checksum store beside it cannot verify
    /// what is there (interrupted, stale, another checksum, too small). Without it such a
    /// read fails and says why: the data it was asked to verify is never replaced silently.
    #[arg(long)]
    relayout: bool,
    /// Drop the page cache before every case that reads (needs root; default: on as root).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = is_root())]
    drop_caches: bool,
    /// A fio job file: [global] defaults, one job per section, stonewall between groups.
    /// Job options given on the command line override every job of the file.
    #[arg(long = "job", value_name = "FILE")]
    job_file: Option<PathBuf>,
    /// Inject a fault into every case, to see how the harness fails: eio@N, enospc@N,
    /// short@N fail the Nth data I/O; hang@N never completes it; panic@N panics inside the
    /// Nth checksum/endio work item. Repeatable.
    #[arg(long, value_name = "KIND@N")]
    inject: Vec<Injection>,
    /// Use this crc32c implementation instead of the fastest one start-up timing finds
    /// (crc32c-crate, crc-fast, crc-slice16; the manifest lists each one's speed).
    #[arg(long, value_name = "NAME")]
    csum_impl: Option<String>,
    /// fio's --output-format: normal (csumbench's table and files, always written), json or
    /// json+ (also <case>.fio.json beside each case's files, in fio's JSON shape; json+
    /// adds clat histogram bins). A comma list, as fio takes it; terse is not written.
    #[arg(long, value_name = "FORMAT[,FORMAT]", default_value = "normal",
          value_parser = fio_json::parse_output_format)]
    output_format: OutputFormat,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl CommonArgs {
    /// The job groups to run: the job file's, or `base` alone; command-line options over all.
    fn job_groups(&self, mut base: JobSpec, overrides: &JobArgs) -> Result<Vec<Vec<JobSpec>>> {
        let Some(path) = &self.job_file else {
            overrides.apply(&mut base)?;
            JobArgs::warn(&base);
            return Ok(vec![vec![base.as_run()]]);
        };
        let mut file = workloads::jobfile::read(path).map_err(|e| anyhow!("{e}"))?;
        for (key, value) in &overrides.given {
            file.set_everywhere(key, value)
                .map_err(|e| anyhow!("--{key}: {e}"))?;
        }
        file.validate().map_err(|e| anyhow!("{e}"))?;
        for warning in file.warnings() {
            eprintln!("warning: {warning}");
        }
        let groups: Vec<Vec<JobSpec>> = file
            .groups
            .into_iter()
            .map(|g| g.jobs.into_iter().map(JobSpec::as_run).collect::<Vec<_>>())
            .filter(|jobs| !jobs.is_empty())
            .collect();
        if groups.is_empty() {
            bail!("the job file defines no jobs");
        }
        groups.iter().flatten().for_each(JobArgs::warn);
        Ok(groups)
    }
}

/// `--csum-impl`, applied before anything times or runs a crc32c.
fn force_csum_impl(common: &CommonArgs) -> Result<()> {
    if let Some(name) = &common.csum_impl {
        csum::force_crc32c_impl(name).map_err(|e| anyhow!("--csum-impl {name}: {e}"))?;
    }
    Ok(())
}

/// Before any case: `--csum-impl` applied, every job's checksum parsed (a bad `csum=`
/// fails before any I/O) and each synthetic cost calibrated, so no case pays for it.
fn prepare_checksums(groups: &[Vec<JobSpec>], common: &CommonArgs) -> Result<Vec<Algo>> {
    force_csum_impl(common)?;
    let mut algos: Vec<Algo> = Vec::new();
    for job in groups.iter().flatten() {
        let algo = job
            .csum
            .parse::<Algo>()
            .map_err(|e| anyhow!("job '{}': csum={}: {e}", job.name, job.csum))?;
        if !algos.contains(&algo) {
            algos.push(algo);
        }
    }
    for &algo in &algos {
        if let Algo::Cost { ns_per_sector } = algo {
            let c = csum::cost_calibration(ns_per_sector);
            if c.clamped {
                eprintln!(
                    "note: csum={algo} is less than reading a sector for its crc32c costs \
                     here ({:.0} ns); it runs at that floor",
                    c.floor_ns
                );
            }
        }
    }
    Ok(algos)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = workloads::units::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// fio's job options, by fio's names: one `--NAME` flag per option of workloads' option
/// table (the engines' included), each with fio's aliases and `-` for `_`. The values are
/// applied in the order given, through `JobSpec::set`, over every job.
#[derive(Default)]
struct JobArgs {
    given: Vec<(&'static str, String)>,
}

const JOB_HEADING: &str = "Job (fio options)";
const ENGINE_HEADING: &str = "Engine options (fio's; each applies to its ioengine)";

/// The options the command line takes.
fn cli_options() -> impl Iterator<Item = &'static JobOption> {
    options::every().filter(|o| o.scope == Scope::Both)
}

/// The flag for one option.
fn job_flag(option: &'static JobOption) -> Arg {
    let heading = if registry::declaring(option.name).is_empty() {
        JOB_HEADING
    } else {
        ENGINE_HEADING
    };
    let mut arg = Arg::new(option.name)
        .long(option.name)
        .value_name(option.value.placeholder())
        .help(options::describe(option))
        .help_heading(heading)
        .action(ArgAction::Append);
    for alias in option.aliases {
        arg = arg.visible_alias(*alias);
    }
    for name in option.names().filter(|n| n.contains('_')) {
        arg = arg.alias(name.replace('_', "-"));
    }
    match option.value {
        // As in a job file, the bare name sets a flag.
        ValueKind::Flag => arg.num_args(0..=1).default_missing_value("1"),
        // A negative number is the value (and its error says what is wrong), not a flag.
        kind if kind.is_numeric() => arg.allow_hyphen_values(true),
        _ => arg,
    }
}

impl Args for JobArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cli_options().fold(cmd, |cmd, option| cmd.arg(job_flag(option)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for JobArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = JobArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        let mut given: Vec<(usize, &'static str, String)> = Vec::new();
        for option in cli_options() {
            if let (Some(at), Some(values)) = (
                matches.indices_of(option.name),
                matches.get_many::<String>(option.name),
            ) {
                given.extend(at.zip(values).map(|(i, v)| (i, option.name, v.clone())));
            }
        }
        given.sort_by_key(|(at, ..)| *at);
        self.given
            .extend(given.into_iter().map(|(_, name, value)| (name, value)));
        Ok(())
    }
}

impl JobArgs {
    /// Removes the values given for option `name`, for a command that reads it itself.
    fn take(&mut self, name: &str) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.given)
            .into_iter()
            .partition(|(key, _)| *key == name);
        self.given = kept;
        taken.into_iter().map(|(_, value)| value).collect()
    }

    fn has(&self, name: &str) -> bool {
        self.given.iter().any(|(key, _)| *key == name)
    }

    fn apply(&self, job: &mut JobSpec) -> Result<()> {
        for (key, value) in &self.given {
            job.set(key, value).map_err(|e| anyhow!("--{key}: {e}"))?;
        }
        job.validate()
            .map_err(|e| anyhow!("job '{}': {e}", job.name))
    }

    /// What the job should hear before it runs, on stderr.
    fn warn(job: &JobSpec) {
        for warning in job.warnings() {
            eprintln!("warning: job '{}': {warning}", job.name);
        }
    }
}

/// The job `compare` runs when given nothing else: seed 002's experiment, sequential 1 MiB
/// buffered writes with end_fsync and crc32c, in a temporary file, big enough to reach the
/// writeback steady state ([`steady_state_size`]).
fn default_compare_job() -> JobSpec {
    let size = steady_state_size(&std::env::temp_dir()).to_string();
    JobSpec::with(&[
        ("name", "seq-write-1m"),
        ("rw", "write"),
        ("bs", "1m"),
        ("size", size.as_str()),
        ("end_fsync", "1"),
        ("iodepth", "8"),
        ("csum", "crc32c"),
    ])
    .expect("valid default job")
}

const GIB: u64 = 1 << 30;

/// Twice the kernel's dirty limit (`vm.dirty_bytes`, else `vm.dirty_ratio` of the available
/// memory), in whole GiB from 1 to 16 and at most a quarter of the free space in `dir`: the
/// first half fills the page cache at memory speed, the second is written at the pace
/// writeback allows, which is where seed 002's dips show. A 1 GiB job ended before
/// writeback began and fit three 100 ms intervals.
fn steady_state_size(dir: &std::path::Path) -> u64 {
    let read = |f: &str| std::fs::read_to_string(f).ok();
    let num = |f: &str| read(f).and_then(|s| s.trim().parse::<u64>().ok());
    let available = read("/proc/meminfo").and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib << 10)
    });
    let limit = match num("/proc/sys/vm/dirty_bytes") {
        Some(bytes) if bytes > 0 => Some(bytes),
        _ => num("/proc/sys/vm/dirty_ratio")
            .zip(available)
            .map(|(ratio, mem)| mem / 100 * ratio),
    };
    let free = workloads::target::free_space(dir).unwrap_or(u64::MAX);
    let want = limit.map_or(GIB, |l| (2 * l).div_ceil(GIB) * GIB);
    let room = (free / 4 / GIB).max(1) * GIB;
    want.clamp(GIB, 16 * GIB).min(room)
}

/// The run options of the command line, with the scratch folder for jobs that need one.
fn run_options(common: &CommonArgs, scratch: &Scratch) -> RunOptions {
    RunOptions {
        stall_timeout: common.stall_timeout,
        interval: common.interval,
        keep_files: common.keep_files,
        overwrite: common.overwrite,
        allow_device_write: common.allow_device_write,
        relayout: common.relayout,
        drop_caches: common.drop_caches,
        inject: common.inject.clone(),
        fio_json: common.output_format.fio_json,
        preallocate_scratch: scratch.path().is_some(),
        scratch_dir: scratch.path().unwrap_or_else(std::env::temp_dir),
    }
}

fn plan(
    strategies: Vec<String>,
    schedule: Schedule,
    groups: Vec<Vec<JobSpec>>,
    algos: Vec<Algo>,
    common: &CommonArgs,
    scratch: &Scratch,
) -> Plan {
    Plan {
        strategies,
        topology: common.endio,
        repeats: schedule.repeats,
        warmup: schedule.warmup,
        summary: schedule.summary,
        groups,
        algos,
        options: run_options(common, scratch),
        out: common.out.clone(),
        print_summary: true,
    }
}

/// Plans the run from the command line and runs it; the scratch folder goes away (or is
/// kept) however the run ends.
fn execute(
    strategies: Vec<String>,
    schedule: Schedule,
    groups: Vec<Vec<JobSpec>>,
    common: &CommonArgs,
) -> Result<i32> {
    session::check(&strategies, &groups)?;
    let algos = prepare_checksums(&groups, common)?;
    let scratch = Scratch::for_groups(&groups)?;
    let plan = plan(strategies, schedule, groups, algos, common, &scratch);
    let result = session::execute(&plan).map(|finished| finished.code);
    scratch.release(common.keep_files);
    result
}

/// `crossover`: the axes from the command line, checked and measured, then the sweep; the
/// scratch folder goes away (or is kept) however it ends.
fn crossover(mut args: CrossoverArgs) -> Result<i32> {
    if let Some(name) = ["csum", "verify"].into_iter().find(|n| args.job.has(n)) {
        bail!(
            "--{name}: crossover sets each point's checksum itself; choose them with \
             --algorithms and --cost-min, --cost-max, --cost-points"
        );
    }
    let numjobs = match args.job.take("numjobs") {
        given if given.is_empty() => {
            crossover::default_numjobs(crossover::online_cpus(), args.quick)
        }
        given => crossover::parse_numjobs(&given)?,
    };
    let groups = args
        .common
        .job_groups(crossover::default_job(args.quick), &args.job)?;
    let strategies = crossover::strategies(&args.strategies)?;
    crossover::check(&strategies, &groups, &numjobs)?;
    force_csum_impl(&args.common)?;
    let axis = crossover::measure(&args.algorithms()?)?;
    if let (false, Some(floor)) = (axis.below_floor.is_empty(), axis.floor_ns) {
        let names: Vec<String> = axis.below_floor.iter().map(|a| a.to_string()).collect();
        eprintln!(
            "note: {} cost less than reading a sector for its crc32c here ({floor:.0} ns): \
             left out",
            names.join(", ")
        );
    }
    let scratch = Scratch::for_groups(&groups)?;
    let template = plan(
        strategies,
        args.schedule()?,
        groups,
        Vec::new(),
        &args.common,
        &scratch,
    );
    let sweep = crossover::Sweep {
        template,
        numjobs,
        axis,
    };
    let result = crossover::run(&sweep);
    scratch.release(args.common.keep_files);
    result
}

pub fn main() -> Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::List(args) => {
            print!("{}", list(&args));
            Ok(0)
        }
        Command::Report(args) => {
            let loaded = report::load(&args.dir)?;
            let rows = summary::rows_with(&loaded.cases, &loaded.settings);
            print!("{}", args.format.exporter().render(&rows));
            for why in &loaded.unreadable {
                eprintln!("error: {why}");
            }
            Ok(if loaded.unreadable.is_empty() {
                0
            } else {
                EXIT_ERROR
            })
        }
        Command::Run(args) => {
            let groups = args.common.job_groups(JobSpec::default(), &args.job)?;
            let strategy = args
                .strategy
                .clone()
                .or_else(|| {
                    groups
                        .iter()
                        .flatten()
                        .find_map(|j| j.strategy_hint.clone())
                })
                .unwrap_or_else(|| "inline".into());
            execute(vec![strategy], Schedule::single(), groups, &args.common)
        }
        Command::Crossover(args) => crossover(args),
        Command::Compare(args) => {
            let groups = args.common.job_groups(default_compare_job(), &args.job)?;
            let mut strategies = args.strategies.clone();
            if let Some(sweep) = &args.sweep {
                strategies.extend(sweep_specs(sweep)?);
            }
            if strategies.is_empty() {
                strategies = vec!["inline".into(), "kthread".into()];
            } else if args.sync_crc && !strategies.iter().any(|s| s == "inline") {
                strategies.insert(0, "inline".into());
            }
            if strategies.len() < 2 && !args.sync_crc {
                bail!("compare needs at least two strategies (or --sync-crc)");
            }
            execute(strategies, args.rounds.schedule()?, groups, &args.common)
        }
    }
}

/// Expands `kthread:max_workers=1,2,4` into `kthread:max_workers=1`, `...=2`, `...=4`.
/// The swept knob is the last `=`; anything before its name stays fixed in every spec.
fn sweep_specs(sweep: &str) -> Result<Vec<String>> {
    let bad = || {
        anyhow!("--sweep {sweep}: expected NAME:KNOB=V1,V2,... (e.g. kthread:max_workers=1,2,4)")
    };
    let (head, values) = sweep.rsplit_once('=').ok_or_else(bad)?;
    let cut = head.rfind([':', ',']).ok_or_else(bad)?;
    let (fixed, knob) = (&head[..cut], &head[cut + 1..]);
    let sep = &head[cut..=cut];
    if knob.is_empty() || values.split(',').any(str::is_empty) {
        return Err(bad());
    }
    let specs: Vec<String> = values
        .split(',')
        .map(|v| format!("{fixed}{sep}{knob}={v}"))
        .collect();
    for s in &specs {
        strategies::build(s).map_err(|e| anyhow!("--sweep {sweep}: {s}: {e}"))?;
    }
    Ok(specs)
}

fn list(args: &ListArgs) -> String {
    match (args.options, args.fio, args.format) {
        (true, _, ListFormat::Text) => list_options(),
        (true, _, ListFormat::Markdown) => options::markdown_table(),
        (_, true, ListFormat::Text) => list_fio_options(),
        (_, true, ListFormat::Markdown) => options::fio_markdown_table(),
        _ => list_strategies() + &list_engines(),
    }
}

/// Every fio option, one a line: its names, what csumbench does with it, and why.
fn list_fio_options() -> String {
    let mut s = String::new();
    for (names, treatment, note) in options::fio_options() {
        s += &format!(
            "{:<32} {:<28} {note}\n",
            names.join(", "),
            treatment.label()
        );
    }
    s
}

fn list_strategies() -> String {
    let mut s = String::new();
    for d in strategies::descriptors() {
        s += &format!("{:<15} {}\n", d.name, d.summary);
        for k in d.knobs {
            s += &format!(
                "    {:<14} default {:<6} {}\n",
                k.name,
                (k.default)(),
                k.help
            );
        }
    }
    s
}

/// Every engine, as `ioengine=` takes it: aliases, capabilities, its own options.
fn list_engines() -> String {
    let mut s = String::from("\nengines (ioengine=NAME):\n");
    for e in registry::engines() {
        s += &format!("{:<15} {}\n", e.name, e.summary);
        if !e.aliases.is_empty() {
            s += &format!("    aliases        {}\n", e.aliases.join(", "));
        }
        s += &format!("    caps           {}\n", e.caps.words().join(", "));
        for o in e.options {
            s += &format!(
                "    {:<18} {:<6} {}\n",
                o.name,
                o.value.placeholder(),
                o.help
            );
        }
    }
    s
}

fn list_options() -> String {
    let mut s = String::new();
    for o in options::every() {
        let place = match o.scope {
            Scope::Both => "",
            Scope::JobFile => " (job file only)",
        };
        let names: Vec<&str> = o.names().collect();
        s += &format!(
            "{} <{}>{place}\n    {}\n",
            names.join(", "),
            o.value.placeholder(),
            options::describe(o)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_expand_one_knob_and_keep_the_rest() {
        assert_eq!(
            sweep_specs("kthread:max_workers=1,2,4").unwrap(),
            [
                "kthread:max_workers=1",
                "kthread:max_workers=2",
                "kthread:max_workers=4"
            ]
        );
        assert_eq!(
            sweep_specs("kthread:ordered=1,idle_thresh=2,64").unwrap(),
            [
                "kthread:ordered=1,idle_thresh=2",
                "kthread:ordered=1,idle_thresh=64"
            ]
        );
        assert!(sweep_specs("kthread").is_err());
        assert!(sweep_specs("kthread:max_workers=1,,2").is_err());
        let e = sweep_specs("kthread:max_workers=0,1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_workers=0"), "{e}");
    }
}
