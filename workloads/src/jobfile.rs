//! fio job files. Every option goes through [`JobSpec::set`], so a job file means what the
//! same options mean on the command line; this module adds only the file's structure.
//!
//! | fio job file | csumbench |
//! |---|---|
//! | `[global]` | defaults for the job sections *after* it (earlier jobs keep theirs) |
//! | `[NAME]` | one [`JobSpec`], `name` = NAME |
//! | `stonewall`, `wait_for_previous` | the job starts a new [`JobGroup`]; in `[global]`, every later job does |
//! | `;` or `#` at the start of a line, or after a blank | comment to the end of the line |
//! | `key=value`, `key = value` | option |
//! | bare `key` | a boolean option, set (`time_based`); other options need a value |
//! | `${VAR}` in a value | the environment variable; unset is an error naming it and the line |
//! | `include` | error |
//! | an option of [`OPTIONS`](crate::job::OPTIONS) or of an engine | [`JobSpec::set`]; those only a job file has: `stonewall`, and the ones accepted without effect |
//! | anything else | error: `line 7: unsupported option 'verify_pattern'` |
//!
//! What each option means, and where csumbench differs from fio, is in the option table
//! (`harness list --options`, and the README).

use std::path::Path;

use crate::job::options::{self, Action};
use crate::job::values::flag;
use crate::job::JobSpec;

/// Jobs that run together; groups run one after another (fio's `stonewall`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobGroup {
    pub jobs: Vec<JobSpec>,
}

/// Reads a job file. Errors start with the path, then the line.
pub fn read(path: &Path) -> Result<Vec<JobGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a job file's text, expanding `${VAR}` from the environment.
pub fn parse(text: &str) -> Result<Vec<JobGroup>, String> {
    parse_with(text, |var| std::env::var(var).ok())
}

/// A section being read: `[global]` edits the defaults in place, a job edits its own copy.
enum Section {
    None,
    Global,
    Job { spec: Box<JobSpec>, stonewall: bool },
}

/// Parses a job file's text, expanding `${VAR}` through `env`. The jobs are not validated:
/// the caller may still override options, then calls [`JobSpec::validate`].
pub fn parse_with(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<JobGroup>, String> {
    let mut defaults = JobSpec::default();
    let mut default_stonewall = false;
    let mut section = Section::None;
    let mut groups: Vec<JobGroup> = Vec::new();
    let finish = |section: Section, groups: &mut Vec<JobGroup>| {
        if let Section::Job { spec, stonewall } = section {
            if stonewall || groups.is_empty() {
                groups.push(JobGroup { jobs: Vec::new() });
            }
            groups.last_mut().expect("a group").jobs.push(*spec);
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let at = |e: String| format!("line {n}: {e}");
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let name = line
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .ok_or_else(|| at(format!("'{line}' is not a section header ([name])")))?;
            finish(std::mem::replace(&mut section, Section::None), &mut groups);
            section = if name == "global" {
                Section::Global
            } else {
                let mut spec = Box::new(defaults.clone());
                spec.name = name.to_string();
                Section::Job {
                    spec,
                    stonewall: default_stonewall,
                }
            };
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        if key == "include" || key.starts_with("include ") {
            return Err(at(
                "include is not supported; put every job in one file".into()
            ));
        }
        if key.is_empty() {
            return Err(at(format!("'{line}' has no option name")));
        }
        let value = expand(value, &env).map_err(at)?;
        let (spec, stonewall) = match &mut section {
            Section::None => {
                return Err(at(format!(
                    "option '{key}' comes before any section; start with [global] or [jobname]"
                )))
            }
            Section::Global => (&mut defaults, &mut default_stonewall),
            Section::Job { spec, stonewall } => (&mut **spec, stonewall),
        };
        match options::find(key).map(|o| o.action) {
            Some(Action::Stonewall) => *stonewall = flag(key, &value).map_err(at)?,
            Some(Action::Ignored) => {}
            _ => spec.set(key, &value).map_err(at)?,
        }
    }
    finish(section, &mut groups);
    if groups.is_empty() {
        return Err("no jobs: the file has no job section, only [global] or nothing".into());
    }
    Ok(groups)
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

/// Replaces each `${VAR}` with its value; an unset variable is an error naming it.
fn expand(value: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("'{value}': '${{' without a closing '}}'"))?;
        let var = &after[..end];
        let v = env(var).ok_or_else(|| format!("environment variable '{var}' is not set"))?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::RwMode;
    use crate::EngineKind;
    use std::time::Duration;

    fn engine(name: &str) -> EngineKind {
        name.parse().unwrap()
    }

    fn parse_env(text: &str) -> Result<Vec<JobGroup>, String> {
        parse_with(text, |v| match v {
            "DEV" => Some("/dev/nvme0n1".into()),
            "BS" => Some("64k".into()),
            _ => None,
        })
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
            assert_eq!(j.bs, 64 << 10);
            assert_eq!(j.size, 1 << 30);
            assert_eq!(j.runtime, Some(Duration::from_secs(30)));
            assert_eq!(j.filename.as_deref(), Some(Path::new("/dev/nvme0n1")));
            j.validate().unwrap();
        }
        assert_eq!((w.iodepth, r.iodepth, r.numjobs), (32, 16, 4));
        assert_eq!((w.csum.as_str(), r.csum.as_str()), ("crc32c", "sha256"));
    }

    #[test]
    fn a_later_global_affects_only_later_jobs() {
        let text = "[global]\nbs=8k\n[a]\n[global]\nbs=16k\niodepth=4\n[b]\nbs=32k\n[c]\n";
        let groups = parse(text).unwrap();
        assert_eq!(groups.len(), 1, "no stonewall: one group");
        let j = jobs(&groups);
        assert_eq!(
            j.iter().map(|j| (j.bs, j.iodepth)).collect::<Vec<_>>(),
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
        assert_eq!((j.bs, j.iodepth, j.size), (8192, 2, 1 << 30));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("[job]\nbs=4k\n\n\n\n\nverify_pattern=0xff\n").unwrap_err();
        assert_eq!(e, "line 7: unsupported option 'verify_pattern'");
        let e = parse("[job]\niodepth=0\n").unwrap_err();
        assert!(e.starts_with("line 2: iodepth=0"), "{e}");
        let e = parse("[global]\nrw=sideways\n[job]\n").unwrap_err();
        assert!(e.starts_with("line 2: rw=sideways"), "{e}");
        let e = parse_env("[job]\nfilename=${NOPE}/x\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("'NOPE'"), "{e}");
        let e = parse_env("[job]\nfilename=${DEV\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
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
        assert!(
            e.starts_with("line 2: ioengine=posixaio: expected sync, psync,")
                && e.contains("libaio"),
            "{e}"
        );
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

    #[test]
    fn read_prefixes_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.fio");
        std::fs::write(&p, "[job]\nbogus=1\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.ends_with("bad.fio: line 2: unsupported option 'bogus'"),
            "{e}"
        );
        assert!(read(&dir.path().join("missing.fio")).is_err());
    }
}
