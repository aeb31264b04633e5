//! fio job files. Every option goes through [`JobSpec::set`], so a job file means what the
//! same options mean on the command line; this module adds only the file's structure, and
//! reports everything wrong with a file at once: each bad line as `FILE:LINE: option: why`,
//! then (once the lines read) each job-level problem at the line that set the value.
//!
//! | fio job file | csumbench |
//! |---|---|
//! | `[global]` | defaults for the job sections *after* it (earlier jobs keep theirs) |
//! | `[NAME]` | one [`JobSpec`], `name` = NAME |
//! | `stonewall`, `wait_for_previous` | the job starts a new [`JobGroup`]; in `[global]`, every later job does |
//! | `;` or `#` at the start of a line, or after a blank | comment to the end of the line |
//! | `key=value`, `key = value` | option |
//! | bare `key` | a boolean option, set (`time_based`); other options need a value |
//! | `${VAR}` in a value | the environment variable; unset (or `${}`) is empty, as in fio, with a warning |
//! | `include` | error |
//! | an option of [`OPTIONS`](crate::job::OPTIONS) or of an engine | [`JobSpec::set`]; those only a job file has: `stonewall`, and the ones accepted without effect |
//! | a fio option that only shapes fio's report ([`fio::REPORTING`]) | accepted; one warning lists them all |
//! | any other fio option | error: why csumbench does not do it, and what to use instead |
//! | anything else | error: not a fio option, and the nearest names (`did you mean`) |
//!
//! What each option means, and where csumbench differs from fio, is in the option table
//! (`harness list --options`, and the README).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::job::fio::{self, Known};
use crate::job::options::{self, Action};
use crate::job::values::flag;
use crate::job::JobSpec;

/// Jobs that run together; groups run one after another (fio's `stonewall`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobGroup {
    pub jobs: Vec<JobSpec>,
}

/// A job file, read: its groups, what the user should hear before it runs, and where each
/// job's options were set, for the job-level checks of [`JobFile::validate`].
#[derive(Debug, Clone)]
pub struct JobFile {
    pub groups: Vec<JobGroup>,
    /// What the user should hear before the jobs run, in [`JobFile::warnings`].
    notes: Vec<Problem>,
    /// Per job, in the order of `groups`' jobs.
    origins: Vec<Origins>,
    /// The file's name in messages (empty for text without a file).
    source: String,
}

/// Where one job's options were set, by the option table's name for each.
#[derive(Debug, Clone, Default)]
struct Origins {
    /// The line of the job's `[name]`, where the defaults apply.
    header: usize,
    set_at: HashMap<&'static str, Origin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Line(usize),
    CommandLine,
}

/// One thing wrong with a job file: its line (`None`: the file as a whole), and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
}

/// Everything wrong with a job file's lines, found in one pass, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// One line per problem: `SOURCE:LINE: message`, or `SOURCE: message` for the file as a
    /// whole.
    pub fn at(&self, source: &str) -> String {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|p| match (source, p.line) {
                ("", None) => p.message.clone(),
                _ => format!("{}: {}", locate(source, p.line), p.message),
            })
            .collect();
        lines.join("\n")
    }
}

/// Without a file name: `line N: message`, one per line.
impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|p| match p.line {
                Some(_) => format!("{}: {}", locate("", p.line), p.message),
                None => p.message.clone(),
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// `FILE:LINE`, `line LINE` without a file, `FILE` for the file as a whole.
fn locate(source: &str, line: Option<usize>) -> String {
    match (source, line) {
        ("", Some(n)) => format!("line {n}"),
        (s, Some(n)) => format!("{s}:{n}"),
        (s, None) => s.to_string(),
    }
}

/// Reads a job file. Every problem of its lines comes back at once, each as
/// `PATH:LINE: message`.
pub fn read(path: &Path) -> Result<JobFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let source = path.display().to_string();
    let mut file = parse(&text).map_err(|p| p.at(&source))?;
    file.source = source;
    Ok(file)
}

/// Parses a job file's text, expanding `${VAR}` from the environment.
pub fn parse(text: &str) -> Result<JobFile, Problems> {
    parse_with(text, |var| std::env::var(var).ok())
}

/// Parses a job file's text, expanding `${VAR}` through `env`. The jobs are not validated:
/// the caller may still override options ([`JobFile::set_everywhere`]), then calls
/// [`JobFile::validate`].
pub fn parse_with(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<JobFile, Problems> {
    let mut reader = Reader::default();
    for section in reader.split(text, &env) {
        reader.read_section(section);
    }
    reader.finish()
}

impl JobFile {
    /// What the user should hear before the jobs run, one line each, `FILE:LINE: ...`.
    pub fn warnings(&self) -> Vec<String> {
        Problems(self.notes.clone())
            .at(&self.source)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every job, group by group.
    pub fn jobs(&self) -> impl Iterator<Item = &JobSpec> {
        self.groups.iter().flat_map(|g| &g.jobs)
    }

    /// Sets an option over every job, as fio's command line does after a job file.
    pub fn set_everywhere(&mut self, key: &str, value: &str) -> Result<(), String> {
        let jobs = self.groups.iter_mut().flat_map(|g| &mut g.jobs);
        for (job, origins) in jobs.zip(&mut self.origins) {
            job.set(key, value)?;
            if let Some(option) = options::find(key) {
                origins.set_at.insert(option.name, Origin::CommandLine);
            }
        }
        Ok(())
    }

    /// Checks every job as a whole ([`JobSpec::check`]); every problem comes back at once,
    /// each at the line that set the value (the job's header where a default is at fault).
    pub fn validate(&self) -> Result<(), String> {
        let mut found = Vec::new();
        for (job, origins) in self.jobs().zip(&self.origins) {
            for invalid in job.check() {
                let at = match origins.set_at.get(invalid.option) {
                    Some(Origin::Line(n)) => locate(&self.source, Some(*n)),
                    Some(Origin::CommandLine) => "the command line".to_string(),
                    None => locate(&self.source, Some(origins.header)),
                };
                found.push(format!("{at}: job '{}': {}", job.name, invalid.message));
            }
        }
        match found.is_empty() {
            true => Ok(()),
            false => Err(found.join("\n")),
        }
    }
}

/// One `key=value` line of a section, its value expanded.
struct OptionLine {
    line: usize,
    key: String,
    value: String,
}

/// What a section header made of the lines under it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Global,
    Job,
    /// A header that did not read: its lines are still checked, but it makes no job.
    Broken,
}

/// A section: its header line, name and options.
struct Section {
    header: usize,
    kind: Kind,
    name: String,
    options: Vec<OptionLine>,
}

/// The state of a reading: the defaults `[global]` sections build up, the jobs so far, and
/// everything found wrong or worth saying.
#[derive(Default)]
struct Reader {
    defaults: JobSpec,
    default_stonewall: bool,
    default_origins: Origins,
    groups: Vec<JobGroup>,
    origins: Vec<Origins>,
    problems: Vec<Problem>,
    notes: Vec<Problem>,
    /// The options given that change nothing (report-only, profiles'), and where.
    inert: Vec<(Inert, String, usize)>,
}

impl Reader {
    fn problem(&mut self, line: usize, message: String) {
        self.problems.push(Problem {
            line: Some(line),
            message,
        });
    }

    /// The file's sections, each with its option lines. Lines that belong to no section,
    /// `include`s and lines without an option name are problems.
    fn split(&mut self, text: &str, env: &impl Fn(&str) -> Option<String>) -> Vec<Section> {
        let mut sections: Vec<Section> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                sections.push(self.header(n, line));
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (line, ""),
            };
            if key == "include" || key.starts_with("include ") {
                self.problem(
                    n,
                    "include is not supported; put every job in one file".into(),
                );
                continue;
            }
            if key.is_empty() {
                self.problem(n, format!("'{line}' has no option name"));
                continue;
            }
            let Some(section) = sections.last_mut() else {
                self.problem(
                    n,
                    format!(
                        "option '{key}' comes before any section; start with [global] or \
                         [jobname]"
                    ),
                );
                continue;
            };
            let value = expand(value, env, |message| {
                self.notes.push(Problem {
                    line: Some(n),
                    message,
                })
            });
            section.options.push(OptionLine {
                line: n,
                key: key.to_string(),
                value,
            });
        }
        sections
    }

    /// A section from its header line; a header that does not read is a problem.
    fn header(&mut self, n: usize, line: &str) -> Section {
        let name = line
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .map(str::trim)
            .filter(|name| !name.is_empty());
        let (kind, name) = match name {
            Some("global") => (Kind::Global, "global".to_string()),
            Some(name) => (Kind::Job, name.to_string()),
            None => {
                self.problem(n, format!("'{line}' is not a section header ([name])"));
                (Kind::Broken, String::new())
            }
        };
        Section {
            header: n,
            kind,
            name,
            options: Vec::new(),
        }
    }

    /// Applies a section's options: `[global]` to the defaults, a job's to its own copy.
    fn read_section(&mut self, section: Section) {
        let mut spec = self.defaults.clone();
        let mut stonewall = self.default_stonewall;
        let mut origins = Origins {
            header: section.header,
            ..self.default_origins.clone()
        };
        if section.kind == Kind::Job {
            spec.name = section.name.clone();
        }
        // fio reads a section's kb_base before its other options (its priority).
        let (units, others): (Vec<&OptionLine>, Vec<&OptionLine>) =
            section.options.iter().partition(|o| o.key == "kb_base");
        for option in units.into_iter().chain(others) {
            self.apply(&mut spec, &mut stonewall, &mut origins, option);
        }
        match section.kind {
            Kind::Global => {
                self.defaults = spec;
                self.default_stonewall = stonewall;
                self.default_origins = origins;
            }
            Kind::Job => {
                if stonewall || self.groups.is_empty() {
                    self.groups.push(JobGroup { jobs: Vec::new() });
                }
                self.groups.last_mut().expect("a group").jobs.push(spec);
                self.origins.push(origins);
            }
            Kind::Broken => {}
        }
    }

    /// One option line, on the section's job: set, or found wrong, or noted as report-only.
    fn apply(
        &mut self,
        spec: &mut JobSpec,
        stonewall: &mut bool,
        origins: &mut Origins,
        option: &OptionLine,
    ) {
        let (n, key, value) = (option.line, option.key.as_str(), option.value.as_str());
        let Some(known) = options::find(key) else {
            match fio::classify(key) {
                Some(Known::Reporting) => self.inert.push((Inert::Report, key.to_string(), n)),
                Some(Known::Profile) => self.inert.push((Inert::Profile, key.to_string(), n)),
                _ => self.problem(n, options::unsupported(key)),
            }
            return;
        };
        let applied = match known.action {
            Action::Stonewall => flag(key, value).map(|set| *stonewall = set),
            Action::Ignored => Ok(()),
            Action::Set(_) | Action::Engine { .. } => spec.set(key, value),
        };
        match applied {
            Ok(()) => {
                origins.set_at.insert(known.name, Origin::Line(n));
            }
            Err(e) => self.problem(n, e),
        }
    }

    /// fio's `wait_for`, where the group order does what it asks: the job it names is one
    /// other job, in an earlier group. Anything else is a problem at the `wait_for` line.
    fn check_waits(&mut self) {
        let placed: Vec<(usize, &JobSpec)> = self
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.jobs.iter().map(move |job| (g, job)))
            .collect();
        let mut found = Vec::new();
        for (&(group, job), origins) in placed.iter().zip(&self.origins) {
            let Some(waitee) = &job.wait_for else {
                continue;
            };
            let theirs: Vec<usize> = placed
                .iter()
                .filter(|(_, other)| other.name == *waitee)
                .map(|(g, _)| *g)
                .collect();
            let why = match theirs[..] {
                _ if *waitee == job.name => "a job cannot wait for itself".to_string(),
                [] => format!("no job is named '{waitee}'"),
                [g] if g < group => continue,
                [g] if g == group => format!(
                    "job '{waitee}' runs in the same group; starting a job when another of \
                     its group ends is not implemented yet: put stonewall in [{}] (it then \
                     waits for every job before it)",
                    job.name
                ),
                [_] => format!(
                    "job '{waitee}' is in a later group, which starts only once this job's \
                     has ended; put [{}] after it",
                    job.name
                ),
                _ => format!("several jobs are named '{waitee}'; name them apart"),
            };
            let line = match origins.set_at.get("wait_for") {
                Some(Origin::Line(n)) => *n,
                _ => origins.header,
            };
            found.push((line, format!("wait_for={waitee}: {why}")));
        }
        for (line, message) in found {
            self.problem(line, message);
        }
    }

    /// The file read: its jobs, or every problem found, in line order.
    fn finish(mut self) -> Result<JobFile, Problems> {
        self.check_waits();
        if self.groups.is_empty() && self.problems.is_empty() {
            self.problems.push(Problem {
                line: None,
                message: "no jobs: the file has no job section, only [global] or nothing".into(),
            });
        }
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|p| p.line);
            // A [global] line every job inherits is one problem.
            self.problems.dedup();
            return Err(Problems(self.problems));
        }
        for kind in [Inert::Report, Inert::Profile] {
            let given: Vec<(String, usize)> = self
                .inert
                .iter()
                .filter(|(k, ..)| *k == kind)
                .map(|(_, name, line)| (name.clone(), *line))
                .collect();
            if let Some(message) = inert_warning(kind, &given) {
                self.notes.push(Problem {
                    line: None,
                    message,
                });
            }
        }
        Ok(JobFile {
            groups: self.groups,
            notes: self.notes,
            origins: self.origins,
            source: String::new(),
        })
    }
}

/// Why a fio option a job file gives changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inert {
    /// It shapes only fio's report.
    Report,
    /// It belongs to a fio profile, and no `profile=` uses it.
    Profile,
}

/// The one warning for every option of one `kind` given.
fn inert_warning(kind: Inert, given: &[(String, usize)]) -> Option<String> {
    let mut names: Vec<(&str, Vec<String>)> = Vec::new();
    for (name, line) in given {
        match names.iter_mut().find(|(n, _)| n == name) {
            Some((_, lines)) => lines.push(line.to_string()),
            None => names.push((name, vec![line.to_string()])),
        }
    }
    if names.is_empty() {
        return None;
    }
    let listed: Vec<String> = names
        .iter()
        .map(|(name, lines)| match &lines[..] {
            [one] => format!("{name} (line {one})"),
            many => format!("{name} (lines {})", many.join(", ")),
        })
        .collect();
    let why = match kind {
        Inert::Report => "as they shape only fio's own report",
        Inert::Profile => "as in fio without profile=, for they are its profiles' options",
    };
    Some(format!(
        "accepted with no effect, {why}: {}",
        listed.join(", ")
    ))
}

/// The line without its comment: `;` or `#` at the start or after whitespace (so a value
/// such as `filename=a#b` keeps its `#`).
pub fn strip_comment(line: &str) -> &str {
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        if prev_blank && (c == ';' || c == '#') {
            return &line[..i];
        }
        prev_blank = c.is_whitespace();
    }
    line
}

/// Replaces each `${VAR}` with its value, as fio does: an unset variable (or `${}`) is
/// empty, and `warn` hears of it; a `${` that is never closed stays as written.
fn expand(
    value: &str,
    env: impl Fn(&str) -> Option<String>,
    mut warn: impl FnMut(String),
) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let var = &after[..end];
        match env(var) {
            Some(v) => out.push_str(&v),
            None => warn(format!(
                "${{{var}}} is not set: it reads as empty, as in fio"
            )),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{FileService, PerDir, RwMode};
    use crate::EngineKind;
    use std::time::Duration;

    fn engine(name: &str) -> EngineKind {
        name.parse().unwrap()
    }

    fn parse_env(text: &str) -> Result<Vec<JobGroup>, String> {
        parse_with(text, env)
            .map(|f| f.groups)
            .map_err(|e| e.to_string())
    }

    fn env(var: &str) -> Option<String> {
        match var {
            "DEV" => Some("/dev/nvme0n1".into()),
            "BS" => Some("64k".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Vec<JobGroup>, String> {
        super::parse(text)
            .map(|f| f.groups)
            .map_err(|e| e.to_string())
    }

    fn jobs(groups: &[JobGroup]) -> Vec<&JobSpec> {
        groups.iter().flat_map(|g| &g.jobs).collect()
    }

    #[test]
    fn a_typical_fio_file() {
        let text = "\
; a typical fio job file
[global]
ioengine=io_uring
direct = 1
bs=${BS}   # from the environment
size=1g
time_based
runtime=30
group_reporting
filename=${DEV}

[seq-write]
rw=write
iodepth=32

[rand-read]
stonewall
rw=randread
iodepth=16
numjobs=4
verify=sha256
";
        let groups = parse_env(text).unwrap();
        assert_eq!(groups.len(), 2);
        let w = &groups[0].jobs[0];
        let r = &groups[1].jobs[0];
        assert_eq!(
            (w.name.as_str(), r.name.as_str()),
            ("seq-write", "rand-read")
        );
        assert_eq!((w.rw, r.rw), (RwMode::Write, RwMode::RandRead));
        for j in [w, r] {
            assert_eq!(j.ioengine, engine("io_uring"));
            assert!(j.direct && j.time_based);
            assert_eq!(j.blocks.bs.read, 64 << 10);
            assert_eq!(j.size, 1 << 30);
            assert_eq!(j.runtime, Some(Duration::from_secs(30)));
            assert_eq!(j.filename.as_deref(), Some(Path::new("/dev/nvme0n1")));
            j.validate().unwrap();
        }
        assert_eq!((w.iodepth, r.iodepth, r.numjobs), (32, 16, 4));
        assert_eq!((w.csum.as_str(), r.csum.as_str()), ("crc32c", "sha256"));
    }

    #[test]
    fn kb_base_applies_first_in_its_section_and_says_why_kib_breaks_sectors() {
        let e = parse("[job]\nbs=4KiB\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: bs=4KiB: 4000 bytes, not whole 4KiB checksum sectors: with \
             kb_base=1024, fio's default, fio reads KiB, MiB... as powers of 1000; write k, \
             m... for powers of 1024, or set kb_base=1000"
        );
        let groups = parse("[a]\nbs=4KiB\nsize=1MiB\nkb_base=1000\n[b]\nsize=1MB\n").unwrap();
        let j = jobs(&groups);
        assert_eq!(
            (j[0].blocks.bs.read, j[0].size),
            (4096, 1 << 20),
            "kb_base first, wherever it is"
        );
        assert_eq!(j[1].size, 1 << 20, "a job's own kb_base is its own");
        let groups = parse("[global]\nkb_base=1000\n[a]\nsize=1m\n").unwrap();
        assert_eq!(
            jobs(&groups)[0].size,
            1_000_000,
            "[global]'s applies to later jobs"
        );
        let e = parse("[global]\nsize=1MiB\n[a]\n").unwrap_err();
        assert!(e.starts_with("line 2: size=1MiB: 1000000 bytes"), "{e}");
    }

    #[test]
    fn keywords_and_arithmetic_as_fio_computes_them() {
        let groups = parse(
            "[a]\nnumjobs=$ncpus\niodepth=(2*16)\nbs=(2*4k)\nsize=(1024*$pagesize)\n\
             runtime=(1m+30s)\n",
        )
        .unwrap();
        let j = jobs(&groups)[0];
        let machine = crate::units::Machine::this();
        assert_eq!(u64::from(j.numjobs), machine.ncpus.min(4096));
        assert_eq!((j.iodepth, j.blocks.bs.read), (32, 8192));
        assert_eq!(j.size, 1024 * machine.pagesize);
        assert_eq!(j.runtime, Some(Duration::from_secs(90)));
        let e = parse("[a]\nsize=$mb_memory*2m\n").unwrap_err();
        assert!(
            e.starts_with("line 2: size=$mb_memory*2m: '$mb_memory*2m' is "),
            "{e}"
        );
        let e = parse("[a]\niodepth=(2*)\n").unwrap_err();
        assert!(e.starts_with("line 2: iodepth=(2*): '(2*)': "), "{e}");
    }

    #[test]
    fn wait_for_is_taken_where_the_groups_do_it_already() {
        let groups = parse("[a]\n[b]\nstonewall\nwait_for=a\n").unwrap();
        assert_eq!(jobs(&groups)[1].wait_for.as_deref(), Some("a"));
        let e = parse("[a]\n[b]\nwait_for=a\n").unwrap_err();
        assert!(
            e.starts_with("line 3: wait_for=a: job 'a' runs in the same group; starting a job")
                && e.contains("put stonewall in [b]"),
            "{e}"
        );
        let e = parse("[a]\nwait_for=b\n[b]\nstonewall\n").unwrap_err();
        assert!(e.contains("job 'b' is in a later group"), "{e}");
        let e = parse("[a]\nwait_for=a\n").unwrap_err();
        assert_eq!(e, "line 2: wait_for=a: a job cannot wait for itself");
        let e = parse("[global]\nwait_for=x\n[a]\n[b]\n").unwrap_err();
        assert_eq!(
            e, "line 2: wait_for=x: no job is named 'x'",
            "one problem per line, though two jobs inherit it"
        );
        let e = parse("[a]\n[a]\n[b]\nstonewall\nwait_for=a\n").unwrap_err();
        assert!(e.contains("several jobs are named 'a'"), "{e}");
    }

    #[test]
    fn pauses_are_read_with_fios_meaning() {
        let groups = parse(
            "[global]\nthinktime=100\nthinktime_spin=1ms\n[a]\nthinktime_blocks=4\n\
             thinktime_blocks_type=issue\nstartdelay=2-1\n",
        )
        .unwrap();
        let t = &jobs(&groups)[0].timing;
        let (us, s) = (Duration::from_micros, Duration::from_secs);
        assert_eq!((t.thinktime, t.spin()), (us(100), us(100)), "spin capped");
        assert_eq!(t.thinktime_blocks, 4);
        assert_eq!(t.thinktime_blocks_type, crate::job::ThinkBlocks::Issue);
        assert_eq!(t.startdelay, (s(1), s(2)), "a reversed range, swapped");
        let e = parse("[a]\nthinktime_blocks_type=both\n").unwrap_err();
        assert!(e.contains("expected complete or issue"), "{e}");
    }

    #[test]
    fn timing_options_are_read() {
        let groups = parse("[a]\nthinktime_blocks=1\nflow_id=0\nrate_process=linear\n").unwrap();
        assert_eq!(jobs(&groups)[0].timing, crate::job::Timing::default());
        let flow = parse("[a]\nflow=2\nflow_id=5\nflow_sleep=200\n").unwrap();
        let t = &jobs(&flow)[0].timing;
        assert_eq!((t.flow, t.flow_id), (2, 5));
        assert_eq!(t.flow_sleep, Some(Duration::from_micros(200)));
        let e = parse("[a]\nflow=-1\n").unwrap_err();
        assert!(e.starts_with("line 2: flow=-1"), "{e}");
        assert!(jobs(&parse("[a]\nexitall\n").unwrap())[0].timing.exitall);
        let paced = parse("[a]\nratemin=1m,2m\nrate_process=poisson\n").unwrap();
        let t = &jobs(&paced)[0].timing;
        assert_eq!((t.rate_min.read, t.rate_min.write), (1 << 20, 2 << 20));
        assert_eq!(t.rate_process, crate::job::RateProcess::Poisson);
        assert!(parse("[a]\nstartdelay=soon\n")
            .unwrap_err()
            .contains("startdelay=soon"));
    }

    #[test]
    fn a_clones_files_are_read_as_fio_reads_them() {
        let file = super::parse(
            "[global]\nsize=64m\n[a]\nnrfiles=4\nfilesize=1m-4m\n\
             file_service_type=random:8\nfilename_format=$jobname.$filenum\n\
             create_on_open=1\nunlink=1\n",
        )
        .unwrap();
        file.validate().unwrap();
        let j = file.jobs().next().unwrap();
        assert_eq!(j.nr_files(), 4);
        assert_eq!(j.files.service, FileService::Random { ios: 8 });
        assert_eq!(j.file_name(0, 3), Path::new("a.3"));
        assert!(j.files.create_on_open && j.files.unlink);
        let file = super::parse("[a]\nfilename=/x\\:y:/z\nnrfiles=9\n").unwrap();
        file.validate().unwrap();
        let j = file.jobs().next().unwrap();
        assert_eq!(j.nr_files(), 2, "a list sets the number of files");
        assert_eq!(j.file_name(0, 0), Path::new("/x:y"));
        let backlog = parse("[a]\nverify_backlog=64\n").unwrap();
        assert_eq!(jobs(&backlog)[0].verify_backlog, 64);
        let e = super::parse("[a]\nsize=16k\nnrfiles=8\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.contains("less than one 4KiB block"), "{e}");
    }

    #[test]
    fn fios_verify_on_a_write_job_asks_for_its_verify_phase() {
        let phase = |options: &[(&str, &str)]| JobSpec::with(options).unwrap().verify_phase();
        assert!(phase(&[("rw", "randwrite"), ("verify", "crc32c")]));
        assert!(phase(&[
            ("rw", "rw"),
            ("verify", "sha256"),
            ("do_verify", "1")
        ]));
        // csumbench's own csum= keeps the sums for a later read job and no more.
        assert!(!phase(&[("rw", "write"), ("csum", "crc32c")]));
        assert!(!phase(&[
            ("rw", "write"),
            ("verify", "crc32c"),
            ("do_verify", "0")
        ]));
        assert!(!phase(&[("rw", "write"), ("verify", "0")]));
        assert!(!phase(&[("rw", "read"), ("verify", "crc32c")]));
        assert!(!phase(&[
            ("rw", "write"),
            ("verify", "crc32c"),
            ("ioengine", "null")
        ]));
        let job = JobSpec::with(&[
            ("rw", "randwrite"),
            ("verify", "crc32c"),
            ("runtime", "5s"),
            ("time_based", "1"),
            ("rate", "1m"),
            ("end_fsync", "1"),
        ])
        .unwrap();
        let pass = job.verify_pass();
        assert_eq!(
            (pass.rw, pass.runtime, pass.time_based),
            (RwMode::Read, None, false)
        );
        assert_eq!((pass.rate, pass.end_fsync), (PerDir::default(), false));
        assert_eq!((pass.iodepth, pass.blocks), (job.iodepth, job.blocks));
    }

    #[test]
    fn a_later_global_affects_only_later_jobs() {
        let text = "[global]\nbs=8k\n[a]\n[global]\nbs=16k\niodepth=4\n[b]\nbs=32k\n[c]\n";
        let groups = parse(text).unwrap();
        assert_eq!(groups.len(), 1, "no stonewall: one group");
        let j = jobs(&groups);
        assert_eq!(
            j.iter()
                .map(|j| (j.blocks.bs.read, j.iodepth))
                .collect::<Vec<_>>(),
            vec![(8192, 1), (32768, 4), (16384, 4)]
        );
    }

    #[test]
    fn stonewall_starts_groups() {
        let text = "[a]\n[b]\nstonewall\n[c]\n[d]\nwait_for_previous=1\n[e]\nstonewall=0\n";
        let groups = parse(text).unwrap();
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.jobs.iter().map(|j| j.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a"], vec!["b", "c"], vec!["d", "e"]]);
        // In [global], every later job stands alone; the first job opens the first group.
        let groups = parse("[global]\nstonewall\n[a]\n[b]\n[c]\n").unwrap();
        assert_eq!(groups.len(), 3);
    }

    #[test]
    fn comments_and_whitespace() {
        let text = "\
   # indented comment
[job]   ; trailing comment on a header
filename=/tmp/a#b
bs = 8k ; trailing
\tiodepth\t=\t2\t# tabs
;size=1m
";
        let j = parse(text).unwrap().remove(0).jobs.remove(0);
        assert_eq!(j.filename.as_deref(), Some(Path::new("/tmp/a#b")));
        assert_eq!((j.blocks.bs.read, j.iodepth, j.size), (8192, 2, 1 << 30));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("[job]\nbs=4k\n\n\n\n\nverify_pattern=0xff\n").unwrap_err();
        assert_eq!(
            e,
            "line 7: verify_pattern: a fio option csumbench does not implement: csumbench \
             verifies every 4 KiB sector against its checksum store, not fio's per-block \
             headers and patterns; verify= names the checksum; leave the rest out"
        );
        let e = parse("[job]\niodepth=0\n").unwrap_err();
        assert!(e.starts_with("line 2: iodepth=0"), "{e}");
        let e = parse("[global]\nrw=sideways\n[job]\n").unwrap_err();
        assert!(e.starts_with("line 2: rw=sideways"), "{e}");
        let e = parse("[job]\ninclude other.fio\n").unwrap_err();
        assert!(e.starts_with("line 2: include"), "{e}");
        let e = parse("bs=4k\n[job]\n").unwrap_err();
        assert!(
            e.starts_with("line 1:") && e.contains("before any section"),
            "{e}"
        );
        let e = parse("[job\n").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
        let e = parse("[job]\n= 3\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse("[job]\nstonewall=maybe\n").unwrap_err();
        assert!(e.starts_with("line 2: stonewall=maybe"), "{e}");
        assert!(parse("[global]\nbs=8k\n").unwrap_err().contains("no jobs"));
        assert!(parse("").unwrap_err().contains("no jobs"));
        let e = parse("[job]\nioengine=posixaio\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: ioengine=posixaio: fio's posixaio engine is not one of csumbench's; use \
             libaio or io_uring"
        );
        let e = parse("[job]\nioengine=net\n").unwrap_err();
        assert!(e.contains("does not read or write a file's sectors"), "{e}");
        let e = parse("[job]\nioengine=sideways\n").unwrap_err();
        assert!(
            e.starts_with("line 2: ioengine=sideways: expected sync, psync,")
                && e.contains("libaio"),
            "{e}"
        );
    }

    #[test]
    fn every_bad_line_is_reported_in_one_pass() {
        let text = "\
[global]
bs=4q
iodpeth=8
[job
rw=sideways
[ok]
verify_pattern=0xff
http_host=example.com
blah=1
";
        let e = parse(text).unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 7, "{e}");
        assert!(lines[0].starts_with("line 2: bs=4q:"), "{e}");
        assert_eq!(
            lines[1],
            "line 3: iodpeth: not a fio option; did you mean iodepth?"
        );
        assert!(lines[2].starts_with("line 4: '[job' is not a section header"));
        assert!(
            lines[3].starts_with("line 5: rw=sideways"),
            "a broken section's lines too"
        );
        assert!(lines[4].starts_with("line 7: verify_pattern: a fio option csumbench does not"));
        assert_eq!(
            lines[5],
            "line 8: http_host: an option of fio's http engine, which csumbench does not \
             have; leave it out"
        );
        assert_eq!(
            lines[6],
            "line 9: blah: not a fio option (nor one of csumbench's)"
        );
    }

    #[test]
    fn near_misses_name_the_nearest_options() {
        for (typo, meant) in [
            ("iodepth_batch_complet", "iodepth_batch_complete"),
            ("randrpeat", "randrepeat"),
            ("numjob", "numjobs"),
            ("BS", "bs"),
            ("group_reportin", "group_reporting"),
            ("verify_patern", "verify_pattern"),
        ] {
            let e = JobSpec::default().set(typo, "1").unwrap_err();
            assert!(
                e.starts_with(&format!("{typo}: not a fio option; did you mean {meant}")),
                "{typo}: {e}"
            );
        }
    }

    #[test]
    fn the_path_prefixes_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.fio");
        std::fs::write(&p, "[job]\nbogus=1\nbs=4q\n").unwrap();
        let e = read(&p).unwrap_err();
        let path = p.display().to_string();
        assert_eq!(
            e,
            format!(
                "{path}:2: bogus: not a fio option (nor one of csumbench's)\n\
                 {path}:3: bs=4q: '4q': unknown size suffix 'q'; use k, m, g, t or p (or \
                 KiB, MiB...)"
            )
        );
        assert!(read(&dir.path().join("missing.fio")).is_err());
        std::fs::write(&p, "[global]\nbs=8k\n").unwrap();
        assert_eq!(
            read(&p).unwrap_err(),
            format!("{path}: no jobs: the file has no job section, only [global] or nothing")
        );
    }

    #[test]
    fn report_only_options_are_accepted_with_one_warning() {
        let text = "[global]\ngroup_reporting\nwrite_hist_log=h\n[a]\n[b]\n\
                    group_reporting=1\nlog_hist_msec=1000\nthreads=1\n";
        let file = super::parse(text).unwrap();
        assert_eq!(
            file.warnings(),
            vec![
                "accepted with no effect, as they shape only fio's own report: \
                 group_reporting (lines 2, 6), write_hist_log (line 3), log_hist_msec (line 7)"
                    .to_string(),
                "accepted with no effect, as in fio without profile=, for they are its \
                 profiles' options: threads (line 8)"
                    .to_string()
            ]
        );
        let plain = |name: &str| JobSpec {
            name: name.into(),
            ..JobSpec::default()
        };
        let jobs: Vec<&JobSpec> = file.jobs().collect();
        assert_eq!(jobs, vec![&plain("a"), &plain("b")]);
        let e = JobSpec::default().set("group_reporting", "1").unwrap_err();
        assert!(e.contains("shapes only fio's report"), "{e}");
    }

    #[test]
    fn log_options_are_read_with_fios_meaning() {
        let text = "[global]\nwrite_bw_log=p\nlog_avg_msec=500\n[a]\nwrite_lat_log\n\
                    per_job_logs=0\nlog_offset=1\n[b]\nwrite_iops_log=q\n";
        let file = super::parse(text).unwrap();
        assert!(file.warnings().is_empty(), "{:?}", file.warnings());
        let jobs: Vec<&JobSpec> = file.jobs().collect();
        let a = &jobs[0].logs;
        assert_eq!(
            (a.bw.as_deref(), a.lat.as_deref(), a.iops.as_deref()),
            (Some("p"), Some(""), None)
        );
        assert_eq!((a.avg_msec, a.per_job, a.offset), (500, false, true));
        let names: Vec<String> = a
            .files(&jobs[0].name)
            .into_iter()
            .map(|(kind, prefix)| a.file_name(kind, prefix, 1))
            .collect();
        assert_eq!(names, ["p_bw.log", "a_lat.log", "a_slat.log", "a_clat.log"]);
        let b = &jobs[1].logs;
        assert_eq!(
            (b.iops.as_deref(), b.per_job, b.offset),
            (Some("q"), true, false)
        );
        let e = parse("[a]\nwrite_bw_log=../out\n").unwrap_err();
        assert!(
            e.starts_with("line 2: write_bw_log=../out: a log prefix names files in the case's"),
            "{e}"
        );
    }

    #[test]
    fn unset_variables_are_empty_with_a_warning() {
        let file = parse_with("[job]\nfilename=/x${NOPE}y\ndescription=${}\n", env).unwrap();
        let job = file.jobs().next().unwrap();
        assert_eq!(job.filename.as_deref(), Some(Path::new("/xy")));
        assert_eq!(
            file.warnings(),
            vec![
                "line 2: ${NOPE} is not set: it reads as empty, as in fio".to_string(),
                "line 3: ${} is not set: it reads as empty, as in fio".to_string(),
            ]
        );
        let file = parse_with("[job]\nfilename=/dev/${DEV\n", env).unwrap();
        let job = file.jobs().next().unwrap();
        assert_eq!(
            job.filename.as_deref(),
            Some(Path::new("/dev/${DEV")),
            "an unclosed ${{ stays as written, as in fio"
        );
    }

    #[test]
    fn job_level_problems_name_the_line_that_set_the_value() {
        let text = "[global]\nbs=6k\n[a]\nsize=1m\n[b]\ntime_based\nbs=8k\n[c]\n";
        let mut file = super::parse(text).unwrap();
        assert_eq!(
            file.validate().unwrap_err(),
            "line 2: job 'a': bs=6KiB: must be a non-zero multiple of the 4KiB checksum sector\n\
             line 6: job 'b': time_based=1 needs a runtime\n\
             line 2: job 'c': bs=6KiB: must be a non-zero multiple of the 4KiB checksum sector"
        );
        file.set_everywhere("bs", "4k").unwrap();
        assert_eq!(
            file.validate().unwrap_err(),
            "line 6: job 'b': time_based=1 needs a runtime"
        );
        file.set_everywhere("runtime", "1").unwrap();
        file.validate().unwrap();
        file.set_everywhere("iodepth", "65536").unwrap();
        file.set_everywhere("size", "1k").unwrap();
        let e = file.validate().unwrap_err();
        assert!(
            e.starts_with("the command line: job 'a': size=1KiB is smaller than bs=4KiB"),
            "{e}"
        );
        assert!(file.set_everywhere("bs", "4q").is_err());
        let file = super::parse("[global]\n[a]\nnumjobs=1\n").unwrap();
        let mut file = file;
        file.set_everywhere("rwmixread", "100").unwrap();
        file.validate().unwrap();
    }

    #[test]
    fn ignored_options_are_accepted_and_change_nothing() {
        let mut text = String::from("[job]\n");
        for opt in options::ignored() {
            text.push_str(&format!("{}=1\n", opt.name));
        }
        let j = parse(&text).unwrap().remove(0).jobs.remove(0);
        let plain = JobSpec {
            name: "job".into(),
            ..JobSpec::default()
        };
        assert_eq!(j, plain);
        assert!(options::ignored().count() >= 2);
        // Only options that shape fio's report; none that JobSpec itself takes.
        for opt in options::ignored() {
            assert!(
                JobSpec::default().set(opt.name, "1").is_err(),
                "{}",
                opt.name
            );
        }
    }

    #[test]
    fn engines_and_verify_map_onto_ours() {
        let text = "[a]\nioengine=sync\nverify=crc32c-intel\nverify_async=2\n\
                    [b]\nioengine=pvsync\nverify=0\n[c]\nioengine=aio\nhipri=1\n\
                    [d]\nioengine=io_uring\nhipri\ndirect=1\n";
        let groups = parse(text).unwrap();
        let j = jobs(&groups);
        assert_eq!(j[0].ioengine, engine("sync"));
        assert_eq!(j[0].csum, "crc32c");
        assert_eq!(j[0].strategy_hint.as_deref(), Some("kthread:max_workers=2"));
        assert_eq!(
            (j[1].ioengine, j[1].csum.as_str()),
            (engine("pvsync"), "none")
        );
        assert_eq!(j[1].strategy_hint, None);
        assert_eq!(j[2].ioengine, engine("libaio"));
        // Engine options are read in any order and checked against the engine as a whole.
        assert_eq!(
            j[2].validate().unwrap_err(),
            "hipri: an option of ioengine=io_uring, but the job's ioengine is libaio"
        );
        assert!(j[3].engine_options.flag("hipri"));
        j[3].validate().unwrap();
    }
}
