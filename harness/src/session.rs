//! A run of `run` or `compare`: the cases planned in rounds (every strategy once per round,
//! interleaved A B A B), run one by one with each written as it finishes and the manifest
//! kept up to date around them, then the summary reported.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use workloads::JobSpec;

use crate::case::{self, CaseResult, CaseSpec, RunOptions, Status};
use crate::export::{self, Exporter, Table};
use crate::manifest;
use crate::pipeline::Topology;
use crate::progress::Progress;
use crate::results::RunDir;
use crate::stats::{AutoRepeat, StopReason};
use crate::summary::{self, Metric, Row};

pub const EXIT_ERROR: i32 = 1;
pub const EXIT_VERIFY_FAILED: i32 = 3;
pub const EXIT_STALLED: i32 = 4;
pub const EXIT_INTERRUPTED: i32 = 130;

/// Where a run stands, as `manifest.json` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Complete,
    Interrupted,
    Failed,
}

/// How many counted rounds a run has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Repeats {
    Fixed(u32),
    /// Until the throughput intervals are narrow enough, or a cap ([`AutoRepeat`]).
    Auto(AutoRepeat),
}

impl Serialize for Repeats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Repeats::Fixed(n) => s.serialize_u32(*n),
            Repeats::Auto(_) => s.serialize_str("auto"),
        }
    }
}

/// What a run is asked to do.
#[derive(Clone)]
pub struct Plan {
    pub strategies: Vec<String>,
    pub topology: Topology,
    pub repeats: Repeats,
    /// Rounds run before the counted ones, recorded but left out of the statistics.
    pub warmup: u32,
    /// How the summary compares strategies (noise threshold, bootstrap seed).
    pub summary: summary::Settings,
    /// Groups run one after another, the jobs of a group at once.
    pub groups: Vec<Vec<JobSpec>>,
    /// The checksums the jobs use (what the manifest describes).
    pub algos: Vec<strategies::csum::Algo>,
    pub options: RunOptions,
    /// `--out`, else a new folder under results/.
    pub out: Option<PathBuf>,
    /// Print the summary table at the end (`crossover` prints one line per run instead).
    pub print_summary: bool,
}

/// Which round: a warm-up one, or a counted one (from 1).
#[derive(Debug, Clone, Copy)]
enum Round {
    Warmup(u32),
    Counted(u32),
}

impl Plan {
    /// One round: every group, and in it every strategy once, in order.
    fn round(&self, round: Round, first_index: usize) -> Vec<CaseSpec> {
        let mut specs = Vec::new();
        let mut threads_before = 0;
        for (g, jobs) in self.groups.iter().enumerate() {
            for (slot, s) in self.strategies.iter().enumerate() {
                let group = (self.groups.len() > 1).then_some(g + 1);
                let index = first_index + specs.len() + 1;
                let (repeat, warmup) = match round {
                    Round::Warmup(w) => (w, true),
                    Round::Counted(r) => (r, false),
                };
                specs.push(CaseSpec {
                    id: case_id(index, s, self.topology, group, round),
                    strategy: s.clone(),
                    topology: self.topology,
                    repeat,
                    slot,
                    warmup,
                    jobs: jobs.clone(),
                    group: g as u32,
                    threads_before,
                });
            }
            threads_before += jobs.iter().map(|j| j.numjobs).sum::<u32>();
        }
        specs
    }

    fn cases_per_round(&self) -> usize {
        self.groups.len() * self.strategies.len()
    }

    /// The most cases the run can have (for the progress bar).
    fn most_cases(&self) -> usize {
        let rounds = match self.repeats {
            Repeats::Fixed(n) => n,
            Repeats::Auto(rule) => rule.max_rounds,
        };
        self.cases_per_round() * (self.warmup + rounds) as usize
    }
}

/// What a finished run leaves its caller.
pub struct Finished {
    /// The exit code: the most serious thing that happened to any case.
    pub code: i32,
    /// The summary, as the table shows it: the baseline first.
    pub rows: Vec<Row>,
    /// Every case, in the order it ran.
    pub cases: Vec<CaseResult>,
}

/// How the counted rounds ended.
#[derive(Debug, Clone, Serialize)]
struct Rounds {
    counted: u32,
    warmup: u32,
    /// Why `--repeat auto` stopped adding rounds.
    stopped: Option<StopReason>,
    stopped_because: Option<String>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    status: RunStatus,
    error: Option<String>,
    started: String,
    finished: Option<String>,
    command: Vec<String>,
    machine: &'a manifest::Machine,
    software: &'a manifest::Software,
    config: Config<'a>,
    rounds: &'a Rounds,
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
    repeat: Repeats,
    auto_repeat: Option<AutoRepeatConfig>,
    warmup: u32,
    summary: SummaryConfig,
    options: &'a RunOptions,
}

#[derive(Serialize)]
struct AutoRepeatConfig {
    min_rounds: u32,
    max_rounds: u32,
    max_time_s: Option<f64>,
    precision: f64,
}

/// What `harness report` needs to compare the strategies as `compare` did.
#[derive(Serialize, Deserialize)]
pub struct SummaryConfig {
    pub noise_threshold: f64,
    pub seed: u64,
}

/// Runs every case in order, writing each as it finishes, and the manifest around them.
struct Session<'p> {
    plan: &'p Plan,
    out: RunDir,
    started: SystemTime,
    machine: manifest::Machine,
    software: manifest::Software,
    interrupted: Arc<AtomicBool>,
    live: Progress,
    results: Vec<CaseResult>,
    rounds: Rounds,
    /// A signal that stopped a case before it had anything to record (laying out its file).
    stopped: Option<String>,
    /// A signal stopped the run before its last planned case.
    cut_short: bool,
}

impl Session<'_> {
    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    fn write_manifest(&self, status: RunStatus, error: Option<String>) -> Result<()> {
        let plan = self.plan;
        let m = Manifest {
            tool: "csumbench",
            status,
            error,
            started: manifest::utc_iso(self.started),
            finished: (status != RunStatus::Running).then(|| manifest::utc_iso(SystemTime::now())),
            command: std::env::args().collect(),
            machine: &self.machine,
            software: &self.software,
            config: Config {
                job: &plan.groups[0][0],
                groups: &plan.groups,
                strategies: &plan.strategies,
                topology: plan.topology,
                repeat: plan.repeats,
                auto_repeat: match plan.repeats {
                    Repeats::Auto(rule) => Some(AutoRepeatConfig {
                        min_rounds: rule.min_rounds,
                        max_rounds: rule.max_rounds,
                        max_time_s: rule.max_time.map(|t| t.as_secs_f64()),
                        precision: rule.precision,
                    }),
                    Repeats::Fixed(_) => None,
                },
                warmup: plan.warmup,
                summary: SummaryConfig {
                    noise_threshold: plan.summary.noise_threshold,
                    seed: plan.summary.seed,
                },
                options: &plan.options,
            },
            rounds: &self.rounds,
            cases: self.results.iter().map(|c| c.case.clone()).collect(),
        };
        self.out.write_json("manifest.json", &m).map(|_| ())
    }

    /// The run stops on `error` (a case that could not run or be written, a manifest that
    /// could not be updated). Marks the manifest failed, best effort: `error` is what the
    /// user must see, so a manifest that cannot be written either (the disk is full) only
    /// adds a line to it.
    fn fail(&self, error: anyhow::Error) -> anyhow::Error {
        match self.write_manifest(RunStatus::Failed, Some(format!("{error:#}"))) {
            Ok(()) => error,
            Err(m) => anyhow!(
                "{error:#}\nalso: the run could not be marked failed: {m:#}; manifest.json \
                 lists the case(s) finished before that"
            ),
        }
    }

    /// Runs the cases of one round. Err: the run must stop (and has been marked failed).
    /// Ok(false): a signal stopped it.
    fn run_round(&mut self, round: Round) -> Result<bool> {
        let specs = self.plan.round(round, self.results.len());
        for spec in &specs {
            if self.interrupted() {
                self.cut_short = true;
                return Ok(false);
            }
            let plan = self.plan;
            let outcome = case::run_case(
                spec,
                &plan.options,
                &self.out,
                &self.interrupted,
                &self.live,
            );
            match outcome {
                Ok(result) => {
                    self.live.finish_case(&one_line(&result));
                    self.results.push(result);
                    if let Err(e) = self.write_manifest(RunStatus::Running, None) {
                        return Err(self.fail(e));
                    }
                }
                Err(e) => {
                    self.forget_partial_case(spec);
                    let e = e.context(format!("case {}", spec.id));
                    if !self.interrupted() {
                        return Err(self.fail(e));
                    }
                    // The signal cut the case's setup short: the run was interrupted, not
                    // failed; what finished before is kept and summarized as usual.
                    eprintln!("{e:#}");
                    self.stopped = Some(format!("{e:#}"));
                    self.cut_short = true;
                    return Ok(false);
                }
            }
        }
        match round {
            Round::Warmup(w) => self.rounds.warmup = w,
            Round::Counted(r) => self.rounds.counted = r,
        }
        Ok(!self.interrupted())
    }

    /// Runs the warm-up rounds, then counted rounds until the plan says stop. Err: the run
    /// must stop (and has been marked failed).
    fn run_rounds(&mut self) -> Result<()> {
        for w in 1..=self.plan.warmup {
            if !self.run_round(Round::Warmup(w))? {
                return Ok(());
            }
        }
        let counted_since = Instant::now();
        for r in 1.. {
            if !self.run_round(Round::Counted(r))? {
                return Ok(());
            }
            let rule = match self.plan.repeats {
                Repeats::Fixed(n) if r >= n => return Ok(()),
                Repeats::Fixed(_) => continue,
                Repeats::Auto(rule) => rule,
            };
            let rows = summary::rows_with(&self.results, &self.plan.summary);
            let throughput = rows.iter().map(|row| row.vs_baseline.get(Metric::MibS));
            if let Some(why) = rule.decide(r, counted_since.elapsed(), throughput) {
                let because = why.describe(&rule);
                eprintln!("stopped after {r} round(s): {because}");
                self.rounds.stopped = Some(why);
                self.rounds.stopped_because = Some(because);
                return Ok(());
            }
        }
        unreachable!("the rounds end by returning")
    }

    /// Whatever a failed case managed to write (its hlog before a full disk stopped its
    /// json) belongs to no case the manifest lists: removed, which also frees room to record
    /// the failure.
    fn forget_partial_case(&self, spec: &CaseSpec) {
        let written = [".hlog", ".bw.csv", ".json", ".fio.json"];
        for name in written.map(|ext| format!("{}{ext}", spec.id)) {
            let _ = std::fs::remove_file(self.out.path().join(name));
        }
    }

    /// The summary, printed first (it comes from memory, and a full disk must not hide
    /// it), then the manifest's last word and the summary files.
    fn report(self, code: i32) -> Result<Finished> {
        let rows = summary::rows_with(&self.results, &self.plan.summary);
        let dir = self.out.path().display().to_string();
        if self.plan.print_summary {
            print!("{}", Table.render(&rows));
        }
        let status = if code == EXIT_INTERRUPTED {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        let manifest = self.write_manifest(status, self.stopped.clone());
        let summaries = export::write_summaries(&self.out, &rows);
        if self.plan.print_summary {
            println!("results: {dir}");
        }
        match (manifest, summaries) {
            (Ok(()), Ok(())) => Ok(Finished {
                code,
                rows,
                cases: self.results,
            }),
            (Err(m), Ok(())) => Err(m),
            (Ok(()), Err(s)) => Err(anyhow!(
                "{s:#} (the cases are saved: `harness report {dir}` shows their summary)"
            )),
            (Err(m), Err(s)) => Err(anyhow!("{m:#}\nalso: {s:#}")),
        }
    }
}

fn case_id(
    index: usize,
    strategy: &str,
    topology: Topology,
    group: Option<usize>,
    round: Round,
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
    let round = match round {
        Round::Warmup(w) => format!("w{w}"),
        Round::Counted(r) => format!("r{r}"),
    };
    format!("{index:02}-{clean}{topo}{group}-{round}")
}

/// The exit code of a run: the most serious thing that happened to any case.
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

/// The most serious of several runs' exit codes, in [`exit_code`]'s order.
pub fn most_serious(codes: impl IntoIterator<Item = i32>) -> i32 {
    const ORDER: [i32; 4] = [
        EXIT_INTERRUPTED,
        EXIT_ERROR,
        EXIT_VERIFY_FAILED,
        EXIT_STALLED,
    ];
    let codes: Vec<i32> = codes.into_iter().collect();
    ORDER.into_iter().find(|c| codes.contains(c)).unwrap_or(0)
}

fn one_line(r: &CaseResult) -> String {
    let mut s = format!(
        "{}: {:?}, {:.0} MiB/s, {:.2}s",
        r.case, r.status, r.mib_s, r.elapsed_s
    );
    if let Some(v) = &r.verify_phase {
        let size = workloads::units::format_size_approx;
        s += &format!("; verify phase read back {}", size(v.bytes));
        if v.during_writes_bytes > 0 {
            s += &format!(" ({} of it during the writes)", size(v.during_writes_bytes));
        }
        s += &format!(" in {:.2}s", v.elapsed_s);
    }
    if r.status != Status::Ok {
        s += &format!(" [strategy {}]", r.strategy);
    }
    if let Some(stall) = &r.stall {
        s += &format!(" — {}: {}", crate::names::name(&stall.kind), stall.detail);
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

/// A SIGINT or SIGTERM stops the run at the next case (the current one is cut short and
/// written `interrupted`); a second one exits at once. One flag for the whole process,
/// registered once: a process that runs several sessions (`crossover`) must see a signal
/// that came between two of them, and must not pile up handlers.
fn catch_signals() -> Result<Arc<AtomicBool>> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag.clone());
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone())?;
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    Ok(FLAG.get_or_init(|| interrupted).clone())
}

/// Refuses, before anything is made, a run that cannot work: a strategy that does not build
/// (a typo), groups that do not fit the machine.
pub fn check(strategies: &[String], groups: &[Vec<JobSpec>]) -> Result<()> {
    for s in strategies {
        strategies::build(s).map_err(|e| anyhow!("--strategy {s}: {e}"))?;
    }
    crate::budget::check(groups)
}

/// Runs the plan (already [`check`]ed): every round of cases, then the report.
pub fn execute(plan: &Plan) -> Result<Finished> {
    let out = match &plan.out {
        Some(dir) => RunDir::create(dir)?,
        None => RunDir::create_new_under(&crate::results::default_parent())?,
    };
    let mut session = Session {
        plan,
        out,
        started: SystemTime::now(),
        machine: manifest::machine(),
        software: manifest::software(&plan.algos),
        interrupted: catch_signals()?,
        live: Progress::new(plan.most_cases()),
        results: Vec::new(),
        rounds: Rounds {
            counted: 0,
            warmup: 0,
            stopped: None,
            stopped_because: None,
        },
        stopped: None,
        cut_short: false,
    };
    session.write_manifest(RunStatus::Running, None)?;
    session.run_rounds()?;
    // Cases skipped because of a signal make the run interrupted, whatever the others did.
    let code = if session.cut_short {
        EXIT_INTERRUPTED
    } else {
        exit_code(&session.results)
    };
    session.report(code)
}

/// The temporary folder for the data files of jobs that name none: removed at the end of
/// the run, or kept (and said where) with --keep-files. Named for the process that made it,
/// so a later run can tell one whose run was killed (SIGKILL leaves it behind) and remove it.
pub struct Scratch(Option<tempfile::TempDir>);

/// Scratch folders are `$TMPDIR/csumbench-run-<pid>-<random>`.
const SCRATCH_PREFIX: &str = "csumbench-run-";

impl Scratch {
    /// A scratch folder if any job needs one, after removing those whose runs are gone.
    pub fn for_groups(groups: &[Vec<JobSpec>]) -> Result<Scratch> {
        let needed = groups
            .iter()
            .flatten()
            .any(|j| j.filename.is_none() && j.directory.is_none());
        if !needed {
            return Ok(Scratch(None));
        }
        remove_stale_scratch(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir()
            .context("cannot create a temporary directory for the data files")?;
        Ok(Scratch(Some(dir)))
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.0.as_ref().map(|d| d.path().to_path_buf())
    }

    /// Ends the folder now: removed, or kept and said where.
    pub fn release(mut self, keep: bool) {
        if let Some(dir) = self.0.take() {
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

/// Removes the scratch folders in `tmp` that this user's runs left behind when they were
/// killed: those whose process no longer exists. Best effort, and said on stderr.
fn remove_stale_scratch(tmp: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SCRATCH_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // Not followed through a symlink; only this user's own folders.
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && !process_exists(pid) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => eprintln!(
                    "removed {}: left behind by run {pid}, which is gone",
                    entry.path().display()
                ),
                Err(e) => eprintln!("warning: cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_serious_exit_code_wins() {
        assert_eq!(most_serious([0, EXIT_STALLED, EXIT_ERROR, 0]), EXIT_ERROR);
        assert_eq!(
            most_serious([EXIT_VERIFY_FAILED, EXIT_STALLED]),
            EXIT_VERIFY_FAILED
        );
        assert_eq!(
            most_serious([EXIT_ERROR, EXIT_INTERRUPTED]),
            EXIT_INTERRUPTED
        );
        assert_eq!(most_serious([0, 0]), 0);
        assert_eq!(most_serious([]), 0);
    }

    #[test]
    fn scratch_folders_of_gone_runs_are_removed_and_others_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // pid 0x7ffffff0 is beyond any pid_max: that run is gone.
        let gone = tmp
            .path()
            .join(format!("{SCRATCH_PREFIX}{}-abc", 0x7fff_fff0));
        let alive = tmp
            .path()
            .join(format!("{SCRATCH_PREFIX}{}-abc", std::process::id()));
        let other = tmp.path().join("csumbench-dev-stores");
        let file = tmp
            .path()
            .join(format!("{SCRATCH_PREFIX}{}-file", 0x7fff_fff0));
        for d in [&gone, &alive, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("job.0.0"), b"data").unwrap();
        }
        std::fs::write(&file, b"not a folder").unwrap();
        remove_stale_scratch(tmp.path());
        assert!(!gone.exists());
        assert!(alive.exists() && other.exists() && file.exists());
    }
}
