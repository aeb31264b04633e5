//! The command line: `run`, `compare`, `list`, `report`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use workloads::engine::registry;
use workloads::job::options::{self, JobOption, Scope, ValueKind};
use workloads::JobSpec;

use crate::case::RunOptions;
use crate::export::Format;
use crate::inject::Injection;
use crate::pipeline::Topology;
use crate::report;
use crate::session::{self, Plan, Scratch};
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
    /// List every strategy with its knobs and defaults, and every engine with its options.
    List(ListArgs),
    /// Show the summary of a stored run again, in any format.
    Report(ReportArgs),
}

#[derive(Args)]
struct ListArgs {
    /// List every job option instead (the job's, then each engine's).
    #[arg(long)]
    options: bool,
    /// How --options prints them; markdown is the README's option table.
    #[arg(long, value_enum, default_value = "text", requires = "options")]
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
    /// Runs of each strategy, interleaved.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    job: JobArgs,
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
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl CommonArgs {
    /// The job groups to run: the job file's, or `base` alone; command-line options over all.
    fn job_groups(&self, base: JobSpec, overrides: &JobArgs) -> Result<Vec<Vec<JobSpec>>> {
        let mut groups = match &self.job_file {
            Some(path) => workloads::jobfile::read(path)
                .map_err(|e| anyhow!("{e}"))?
                .into_iter()
                .map(|g| g.jobs)
                .filter(|jobs| !jobs.is_empty())
                .collect(),
            None => vec![vec![base]],
        };
        if groups.is_empty() {
            bail!("the job file defines no jobs");
        }
        for job in groups.iter_mut().flatten() {
            overrides.apply(job)?;
        }
        Ok(groups)
    }
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
    fn apply(&self, job: &mut JobSpec) -> Result<()> {
        for (key, value) in &self.given {
            job.set(key, value).map_err(|e| anyhow!("--{key}: {e}"))?;
        }
        job.validate()
            .map_err(|e| anyhow!("job '{}': {e}", job.name))?;
        for warning in job.warnings() {
            eprintln!("warning: job '{}': {warning}", job.name);
        }
        Ok(())
    }
}

/// The job `compare` runs when given nothing else: seed 002's experiment, sequential 1 MiB
/// buffered writes with end_fsync and crc32c, in a temporary file.
fn default_compare_job() -> JobSpec {
    let mut job = JobSpec::default();
    for (k, v) in [
        ("name", "seq-write-1m"),
        ("rw", "write"),
        ("bs", "1m"),
        ("size", "1g"),
        ("end_fsync", "1"),
        ("iodepth", "8"),
        ("csum", "crc32c"),
    ] {
        job.set(k, v).expect("valid default job");
    }
    job
}

/// Plans the run from the command line and runs it; the scratch folder goes away (or is
/// kept) however the run ends.
fn execute(
    strategies: Vec<String>,
    repeat: u32,
    groups: Vec<Vec<JobSpec>>,
    common: &CommonArgs,
) -> Result<i32> {
    session::check(&strategies, &groups)?;
    let scratch = Scratch::for_groups(&groups)?;
    let options = RunOptions {
        stall_timeout: common.stall_timeout,
        interval: common.interval,
        keep_files: common.keep_files,
        overwrite: common.overwrite,
        allow_device_write: common.allow_device_write,
        relayout: common.relayout,
        drop_caches: common.drop_caches,
        inject: common.inject.clone(),
        preallocate_scratch: scratch.path().is_some(),
        scratch_dir: scratch.path().unwrap_or_else(std::env::temp_dir),
    };
    let plan = Plan {
        strategies,
        topology: common.endio,
        repeat,
        groups,
        options,
        out: common.out.clone(),
    };
    let result = session::execute(&plan);
    scratch.release(common.keep_files);
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
            let rows = summary::rows(&loaded.cases);
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
            execute(vec![strategy], 1, groups, &args.common)
        }
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
            execute(strategies, args.repeat, groups, &args.common)
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
    match (args.options, args.format) {
        (false, _) => list_strategies() + &list_engines(),
        (true, ListFormat::Text) => list_options(),
        (true, ListFormat::Markdown) => options::markdown_table(),
    }
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
                options::explain(o)
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
