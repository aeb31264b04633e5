//! The command line: `run`, `compare`, `list`, `report`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use strategies::csum::{self, Algo};
use workloads::JobSpec;

use crate::case::{self, CaseResult, CaseSpec, RunOptions, Status};
use crate::export::{self, Exporter, Format, Table};
use crate::inject::Injection;
use crate::manifest;
use crate::pipeline::Topology;
use crate::progress::Progress;
use crate::report;
use crate::results::{self, RunDir};
use crate::summary;

pub const EXIT_ERROR: i32 = 1;
pub const EXIT_VERIFY_FAILED: i32 = 3;
pub const EXIT_STALLED: i32 = 4;
pub const EXIT_INTERRUPTED: i32 = 130;

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
    /// List every strategy with its knobs and defaults.
    List,
    /// Show the summary of a stored run again, in any format.
    Report(ReportArgs),
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
    #[arg(long, value_enum, default_value = "separate")]
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

/// Before any case: `--csum-impl` applied, every job's checksum parsed (a bad `csum=`
/// fails before any I/O) and each synthetic cost calibrated, so no case pays for it.
fn prepare_checksums(groups: &[Vec<JobSpec>], common: &CommonArgs) -> Result<Vec<Algo>> {
    if let Some(name) = &common.csum_impl {
        csum::force_crc32c_impl(name).map_err(|e| anyhow!("--csum-impl {name}: {e}"))?;
    }
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

/// fio's job options, by fio's names. Applied over the defaults through `JobSpec::set`.
#[derive(Args, Default)]
struct JobArgs {
    /// Job name.
    #[arg(long, help_heading = "Job (fio options)")]
    name: Option<String>,
    /// read | write | randread | randwrite
    #[arg(long, help_heading = "Job (fio options)")]
    rw: Option<String>,
    /// Block size per I/O, a multiple of 4k (k/m/g, base 1024).
    #[arg(long, allow_hyphen_values = true, help_heading = "Job (fio options)")]
    bs: Option<String>,
    /// Bytes of I/O per job, and the file size.
    #[arg(long, allow_hyphen_values = true, help_heading = "Job (fio options)")]
    size: Option<String>,
    /// Submitter threads; each has its own file unless --filename is given.
    #[arg(long, allow_hyphen_values = true, help_heading = "Job (fio options)")]
    numjobs: Option<String>,
    /// Bios in flight per job. With psync the I/O itself stays synchronous; the depth
    /// bounds how many bios can be in the checksum/endio stages at once.
    #[arg(long, allow_hyphen_values = true, help_heading = "Job (fio options)")]
    iodepth: Option<String>,
    /// 1: O_DIRECT.
    #[arg(long, help_heading = "Job (fio options)")]
    direct: Option<String>,
    /// fsync after every N writes.
    #[arg(long, allow_hyphen_values = true, help_heading = "Job (fio options)")]
    fsync: Option<String>,
    /// 1: fsync at the end of the job (counted in its time).
    #[arg(
        long = "end_fsync",
        alias = "end-fsync",
        help_heading = "Job (fio options)"
    )]
    end_fsync: Option<String>,
    /// Stop after this long (30, 30s, 2m).
    #[arg(long, allow_hyphen_values = true, help_heading = "Job (fio options)")]
    runtime: Option<String>,
    /// 1: run for the whole runtime, wrapping around the file.
    #[arg(
        long = "time_based",
        alias = "time-based",
        help_heading = "Job (fio options)"
    )]
    time_based: Option<String>,
    /// File or block device.
    #[arg(long, help_heading = "Job (fio options)")]
    filename: Option<String>,
    /// Directory for the job's files.
    #[arg(long, help_heading = "Job (fio options)")]
    directory: Option<String>,
    /// psync | null
    #[arg(long, help_heading = "Job (fio options)")]
    ioengine: Option<String>,
    /// Checksum per 4 KiB sector: crc32c | sha256 | none.
    #[arg(long, help_heading = "Job (fio options)")]
    csum: Option<String>,
}

impl JobArgs {
    fn apply(&self, job: &mut JobSpec) -> Result<()> {
        let options = [
            ("name", &self.name),
            ("rw", &self.rw),
            ("bs", &self.bs),
            ("size", &self.size),
            ("numjobs", &self.numjobs),
            ("iodepth", &self.iodepth),
            ("direct", &self.direct),
            ("fsync", &self.fsync),
            ("end_fsync", &self.end_fsync),
            ("runtime", &self.runtime),
            ("time_based", &self.time_based),
            ("filename", &self.filename),
            ("directory", &self.directory),
            ("ioengine", &self.ioengine),
            ("csum", &self.csum),
        ];
        for (key, value) in options {
            if let Some(v) = value {
                job.set(key, v).map_err(|e| anyhow!("--{key}: {e}"))?;
            }
        }
        job.validate()
            .map_err(|e| anyhow!("job '{}': {e}", job.name))
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

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    status: &'a str,
    error: Option<String>,
    started: String,
    finished: Option<String>,
    command: Vec<String>,
    machine: manifest::Machine,
    software: manifest::Software,
    config: Config<'a>,
    cases: Vec<String>,
}

#[derive(Serialize)]
struct Config<'a> {
    /// The first job (of the first group).
    job: &'a JobSpec,
    /// Every job, by group: groups run one after another, the jobs of a group at once.
    groups: &'a [Vec<JobSpec>],
    strategies: &'a [String],
    topology: Topology,
    repeat: u32,
    options: &'a RunOptions,
}

/// Runs every case in order, writing each as it finishes, and the manifest around them.
struct Session {
    out: RunDir,
    started: SystemTime,
    machine: manifest::Machine,
    software: manifest::Software,
    interrupted: Arc<AtomicBool>,
    scratch: Option<tempfile::TempDir>,
}

impl Session {
    fn write_manifest(
        &self,
        status: &str,
        error: Option<String>,
        config: Config,
        cases: &[CaseResult],
    ) -> Result<()> {
        let m = Manifest {
            tool: "csumbench",
            status,
            error,
            started: manifest::utc_iso(self.started),
            finished: (status != "running").then(|| manifest::utc_iso(SystemTime::now())),
            command: std::env::args().collect(),
            machine: self.machine.clone(),
            software: self.software.clone(),
            config,
            cases: cases.iter().map(|c| c.case.clone()).collect(),
        };
        self.out.write_json("manifest.json", &m).map(|_| ())
    }

    /// The run stops on `error` (a case that could not run or be written, a manifest that
    /// could not be updated). Marks the manifest failed, best effort: `error` is what the
    /// user must see, so a manifest that cannot be written either (the disk is full) only
    /// adds a line to it.
    fn fail(&self, error: anyhow::Error, config: Config, cases: &[CaseResult]) -> anyhow::Error {
        match self.write_manifest("failed", Some(format!("{error:#}")), config, cases) {
            Ok(()) => error,
            Err(m) => anyhow!(
                "{error:#}\nalso: the run could not be marked failed: {m:#}; manifest.json \
                 lists the case(s) finished before that"
            ),
        }
    }

    /// Ends the temporary data directory: removed, or kept (and said where) with
    /// --keep-files. Either way, done now rather than when the session is dropped.
    fn release_scratch(&mut self, keep: bool) {
        if let Some(dir) = self.scratch.take() {
            if keep {
                println!("data files kept in {}", dir.keep().display());
            } else {
                let path = dir.path().to_path_buf();
                if let Err(e) = dir.close() {
                    eprintln!("warning: cannot remove {}: {e}", path.display());
                }
            }
        }
    }
}

fn case_id(
    index: usize,
    strategy: &str,
    topology: Topology,
    group: Option<usize>,
    repeat: u32,
) -> String {
    let clean: String = strategy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let topo = match topology {
        Topology::Shared => "-shared",
        Topology::Separate => "",
    };
    let group = group.map(|g| format!("-g{g}")).unwrap_or_default();
    format!("{index:02}-{clean}{topo}{group}-r{repeat}")
}

fn exit_code(results: &[CaseResult]) -> i32 {
    let has = |s: Status| results.iter().any(|r| r.status == s);
    if has(Status::Interrupted) {
        EXIT_INTERRUPTED
    } else if has(Status::Error) {
        EXIT_ERROR
    } else if has(Status::VerifyFailed) {
        EXIT_VERIFY_FAILED
    } else if has(Status::Deadlock) || has(Status::Stall) {
        EXIT_STALLED
    } else {
        0
    }
}

fn one_line(r: &CaseResult) -> String {
    let mut s = format!(
        "{}: {:?}, {:.0} MiB/s, {:.2}s",
        r.case, r.status, r.mib_s, r.elapsed_s
    );
    if r.status != Status::Ok {
        s += &format!(" [strategy {}]", r.strategy);
    }
    if let Some(stall) = &r.stall {
        s += &format!(" — {}: {}", stall.kind, stall.detail);
    }
    if let Some(e) = &r.error {
        s += &format!(" — {e}");
    }
    if r.mismatch_count > 0 {
        s += &format!(" — {} bad sector(s)", r.mismatch_count);
        for m in r.mismatches.iter().take(10) {
            s += &format!("\n    {} at offset {} in {}", m.kind, m.offset, m.file);
        }
    }
    s
}

fn execute(
    strategies: &[String],
    repeat: u32,
    groups: Vec<Vec<JobSpec>>,
    common: &CommonArgs,
) -> Result<i32> {
    let job = groups[0][0].clone();
    // Build every strategy once up front, so a typo fails before any I/O.
    for s in strategies {
        strategies::build(s).map_err(|e| anyhow!("--strategy {s}: {e}"))?;
    }
    let algos = prepare_checksums(&groups, common)?;
    let scratch = if groups
        .iter()
        .flatten()
        .any(|j| j.filename.is_none() && j.directory.is_none())
    {
        Some(
            tempfile::Builder::new()
                .prefix("csumbench-")
                .tempdir()
                .context("cannot create a temporary directory for the data files")?,
        )
    } else {
        None
    };
    let options = RunOptions {
        stall_timeout: common.stall_timeout,
        interval: common.interval,
        keep_files: common.keep_files,
        overwrite: common.overwrite,
        allow_device_write: common.allow_device_write,
        drop_caches: common.drop_caches,
        inject: common.inject.clone(),
        preallocate_scratch: scratch.is_some(),
        scratch_dir: scratch
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_else(std::env::temp_dir),
    };
    let out_path = common.out.clone().unwrap_or_else(results::default_dir);
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone())?;
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let mut session = Session {
        out: RunDir::create(&out_path)?,
        started: SystemTime::now(),
        machine: manifest::machine(),
        software: manifest::software(&algos),
        interrupted,
        scratch,
    };
    let config = || Config {
        job: &job,
        groups: &groups,
        strategies,
        topology: common.endio,
        repeat,
        options: &options,
    };
    session.write_manifest("running", None, config(), &[])?;

    let mut specs = Vec::new();
    for r in 1..=repeat {
        for (g, jobs) in groups.iter().enumerate() {
            for s in strategies {
                let group = (groups.len() > 1).then_some(g + 1);
                specs.push(CaseSpec {
                    id: case_id(specs.len() + 1, s, common.endio, group, r),
                    strategy: s.clone(),
                    topology: common.endio,
                    repeat: r,
                    jobs: jobs.clone(),
                });
            }
        }
    }
    let live = Progress::new(specs.len());
    let mut results: Vec<CaseResult> = Vec::new();
    // A signal that stopped a case before it had anything to record (laying out its file).
    let mut stopped: Option<String> = None;
    for spec in &specs {
        if session
            .interrupted
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            break;
        }
        match case::run_case(spec, &options, &session.out, &session.interrupted, &live) {
            Ok(result) => {
                live.finish_case(&one_line(&result));
                results.push(result);
                if let Err(e) = session.write_manifest("running", None, config(), &results) {
                    let e = session.fail(e, config(), &results);
                    session.release_scratch(common.keep_files);
                    return Err(e);
                }
            }
            Err(e) => {
                // Whatever the case managed to write (its hlog before a full disk stopped
                // its json) belongs to no case the manifest lists: remove it, which also
                // frees room to record the failure.
                for name in [".hlog", ".bw.csv", ".json"].map(|ext| format!("{}{ext}", spec.id)) {
                    let _ = std::fs::remove_file(session.out.path().join(name));
                }
                let e = e.context(format!("case {}", spec.id));
                if session
                    .interrupted
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    // The signal cut the case's setup short: the run was interrupted, not
                    // failed; what finished before is kept and summarized as usual.
                    eprintln!("{e:#}");
                    stopped = Some(format!("{e:#}"));
                    break;
                }
                let e = session.fail(e, config(), &results);
                session.release_scratch(common.keep_files);
                return Err(e);
            }
        }
    }
    // Cases skipped because of a signal make the run interrupted, whatever the others did.
    let cut_short = results.len() < specs.len()
        && session
            .interrupted
            .load(std::sync::atomic::Ordering::Relaxed);
    let code = if cut_short {
        EXIT_INTERRUPTED
    } else {
        exit_code(&results)
    };
    let status = if code == EXIT_INTERRUPTED {
        "interrupted"
    } else {
        "complete"
    };
    // The summary is shown first: it comes from memory, and a full disk must not hide it.
    let rows = summary::rows(&results);
    print!("{}", Table.render(&rows));
    let manifest = session.write_manifest(status, stopped, config(), &results);
    let summaries = export::write_summaries(&session.out, &rows);
    let dir = session.out.path().display().to_string();
    println!("results: {dir}");
    session.release_scratch(common.keep_files);
    match (manifest, summaries) {
        (Ok(()), Ok(())) => Ok(code),
        (Err(m), Ok(())) => Err(m),
        (Ok(()), Err(s)) => Err(anyhow!(
            "{s:#} (the cases are saved: `harness report {dir}` shows their summary)"
        )),
        (Err(m), Err(s)) => Err(anyhow!("{m:#}\nalso: {s:#}")),
    }
}

pub fn main() -> Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::List => {
            print!("{}", list());
            Ok(0)
        }
        Command::Report(args) => {
            let rows = summary::rows(&report::load(&args.dir)?);
            print!("{}", args.format.exporter().render(&rows));
            Ok(0)
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
            execute(&[strategy], 1, groups, &args.common)
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
            execute(&strategies, args.repeat, groups, &args.common)
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

fn list() -> String {
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
