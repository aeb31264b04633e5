//! csumbench's I/O pattern against fio's own. For each job text below, fio (3.x, with its
//! null engine, so nothing is written) logs the I/Os it issues (`write_iolog`), and
//! [`IoPattern`] issues its own for the same text, read by csumbench's job-file reader.
//! Sequential jobs must issue the same I/Os in the same order; random ones draw from
//! different generators, so they must issue the same set of blocks (each once per pass,
//! as fio's random map has it), or cover the same bytes, or at least the same number of
//! I/Os and bytes. Skipped, saying so, where fio is not installed (`scripts/test-all`
//! installs it).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use workloads::engine::Op;
use workloads::jobfile::parse_with;
use workloads::offsets::{ClonePattern, Io, IoPattern};

/// What csumbench and fio must agree on for a job.
#[derive(Debug, Clone, Copy)]
enum Same {
    /// The same I/Os in the same order.
    Order,
    /// The same I/Os, each as often, in any order (random offsets, fixed sizes).
    Blocks,
    /// The same bytes of the region, each as often (random sizes: fio's and csumbench's
    /// draws cut different I/Os).
    Bytes,
    /// As many I/Os and bytes, each I/O in the region (offsets that repeat at random).
    Totals,
    /// Each direction's I/Os in the same sequential order from the region's start, and as
    /// many bytes in all (a mixed job: the directions are drawn at random).
    PerDirection,
}

/// The job texts, each one job, and what must agree. fio's defaults hold where a text
/// says nothing (bs=4k, rw=read, randrepeat=1).
const CASES: &[(&str, Same)] = &[
    ("rw=read\nsize=1m", Same::Order),
    ("rw=write\nbs=64k\noffset=256k\nsize=1m", Same::Order),
    ("rw=write:4k\nsize=64k", Same::Order),
    ("rw=read:-8k\nsize=64k", Same::Order),
    ("rw=read\nbs=64k\nsize=1m\nio_size=3m", Same::Order),
    ("rw=read\nbs=8k\nsize=512k\nloops=2", Same::Order),
    ("kb_base=1000\nrw=write\nbs=8KiB\nsize=1MiB", Same::Order),
    ("rw=randread\nsize=1m\npercentage_random=0", Same::Order),
    ("rw=randread\nsize=1m", Same::Blocks),
    ("rw=randwrite\nbs=16k\nsize=512k\nloops=3", Same::Blocks),
    ("rw=randrw\nsize=1m", Same::Blocks),
    ("rw=randread\nbssplit=4k/50:16k/50\nsize=1m", Same::Bytes),
    ("rw=read\nbsrange=8k-64k\nsize=1m", Same::Bytes),
    ("rw=randread\nsize=1m\nnumber_ios=10", Same::Totals),
    ("rw=randread\nsize=1m\nnorandommap", Same::Totals),
    (
        "rw=randwrite\nbs=8k\nsize=1m\nrandom_distribution=zipf:1.2",
        Same::Totals,
    ),
    ("rw=randread\nsize=256k\nrw=randread:4", Same::Totals),
    ("rw=rw\nsize=1m\nrwmixread=70", Same::PerDirection),
];

/// fio's iolog of `job` under `[global]` `where_` (the file or directory) with the null
/// engine, in `dir` as `name.fio`/`name.iolog`; `None` when fio is not installed.
fn fio_iolog(dir: &Path, name: &str, where_: &str, job: &str) -> Option<String> {
    let file = dir.join(format!("{name}.fio"));
    let log = dir.join(format!("{name}.iolog"));
    let text = format!(
        "[global]\nioengine=null\n{where_}\nwrite_iolog={}\n[job]\n{job}\n",
        log.display()
    );
    std::fs::write(&file, text).unwrap();
    // fio appends to an iolog that is there.
    let _ = std::fs::remove_file(&log);
    let out = match Command::new("fio")
        .arg("--output=/dev/null")
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running fio: {e}"),
    };
    assert!(
        out.status.success(),
        "fio failed on {job:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read_to_string(&log).unwrap())
}

/// fio's I/Os for `job`, or `None` when fio is not installed.
fn fio_ios(dir: &Path, job: &str) -> Option<Vec<Io>> {
    let data = format!("filename={}", dir.join("data").display());
    let log = fio_iolog(dir, "job", &data, job)?;
    Some(log.lines().filter_map(logged_io).collect())
}

/// One I/O of fio's iolog (version 2: `FILE ACTION OFFSET LEN`; version 3 puts the time
/// first), or `None` for the other lines.
fn logged_io(line: &str) -> Option<Io> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "read" || *w == "write")?;
    let number = |i: usize| words.get(i)?.parse::<u64>().ok();
    Some(Io {
        op: if words[at] == "read" {
            Op::Read
        } else {
            Op::Write
        },
        offset: number(at + 1)?,
        len: number(at + 2)?,
    })
}

/// csumbench's I/Os for `job`, read as a job file, on a fresh file (as fio's), and the end
/// of what the job reaches.
fn our_ios(job: &str) -> (Vec<Io>, u64) {
    let file = parse_with(&format!("[job]\n{job}\n"), |_| None).unwrap();
    let spec = file.jobs().next().unwrap();
    spec.validate().unwrap();
    (
        IoPattern::new(spec, 0, 0, spec.seed(0)).collect(),
        spec.io_end(),
    )
}

/// How often each item occurs.
fn counted<T: Ord>(items: impl Iterator<Item = T>) -> BTreeMap<T, u32> {
    let mut map = BTreeMap::new();
    for item in items {
        *map.entry(item).or_insert(0) += 1;
    }
    map
}

/// Every 4 KiB sector an I/O covers, as often as it is covered.
fn sectors(ios: &[Io]) -> BTreeMap<u64, u32> {
    counted(
        ios.iter()
            .flat_map(|io| (io.offset..io.offset + io.len).step_by(4096)),
    )
}

fn bytes(ios: &[Io]) -> u64 {
    ios.iter().map(|io| io.len).sum()
}

fn check(job: &str, same: Same, fio: &[Io], (ours, end): (&[Io], u64)) {
    let key = |io: &Io| (io.offset, io.len);
    match same {
        Same::Order => assert_eq!(ours, fio, "{job:?}"),
        Same::Blocks => assert_eq!(counted(ours.iter().map(key)), counted(fio.iter().map(key))),
        Same::Bytes => assert_eq!(sectors(ours), sectors(fio), "{job:?}"),
        Same::Totals => {
            assert_eq!(
                (ours.len(), bytes(ours)),
                (fio.len(), bytes(fio)),
                "{job:?}"
            );
            for ios in [ours, fio] {
                assert!(ios.iter().all(|io| io.offset + io.len <= end), "{job:?}");
            }
        }
        Same::PerDirection => {
            assert_eq!(bytes(ours), bytes(fio), "{job:?}");
            for ios in [ours, fio] {
                for op in [Op::Read, Op::Write] {
                    let offsets: Vec<u64> = ios
                        .iter()
                        .filter(|io| io.op == op)
                        .map(|io| io.offset)
                        .collect();
                    let sequential: Vec<u64> =
                        (0..offsets.len() as u64).map(|i| i * 4096).collect();
                    assert_eq!(offsets, sequential, "{job:?} {op:?}");
                }
            }
        }
    }
}

#[test]
fn csumbench_issues_what_fio_issues() {
    let dir = tempfile::tempdir().unwrap();
    let mut compared = Vec::new();
    for (job, same) in CASES {
        let Some(fio) = fio_ios(dir.path(), job) else {
            eprintln!("skipped: fio is not installed (scripts/test-all installs it)");
            return;
        };
        assert!(!fio.is_empty(), "fio issued nothing for {job:?}");
        let (ours, end) = our_ios(job);
        check(job, *same, &fio, (&ours, end));
        compared.push(format!(
            "{:?}: {} I/Os, {} bytes",
            job,
            fio.len(),
            bytes(&fio)
        ));
    }
    eprintln!("same as fio:\n{}", compared.join("\n"));
}

/// Clone N of a job starts at `offset + N x offset_increment`: fio logs both clones of a
/// numjobs=2 job in one iolog, each in its own region.
#[test]
fn each_clone_issues_what_fios_clone_issues() {
    let dir = tempfile::tempdir().unwrap();
    let job = "rw=read\nsize=256k\nbs=16k\nnumjobs=2\noffset_increment=1m";
    let Some(fio) = fio_ios(dir.path(), job) else {
        eprintln!("skipped: fio is not installed (scripts/test-all installs it)");
        return;
    };
    let file = parse_with(&format!("[job]\n{job}\n"), |_| None).unwrap();
    let spec = file.jobs().next().unwrap();
    for clone in 0..2u32 {
        let start = u64::from(clone) << 20;
        let theirs: Vec<Io> = fio
            .iter()
            .copied()
            .filter(|io| (start..start + (1 << 20)).contains(&io.offset))
            .collect();
        let ours: Vec<Io> = IoPattern::new(spec, clone, 0, spec.seed(clone)).collect();
        assert_eq!(ours, theirs, "clone {clone}");
    }
}

/// Job texts of a clone with several files, and what must agree, file by file.
const FILE_CASES: &[(&str, Same)] = &[
    ("rw=read\nsize=40k\nnrfiles=3", Same::Order),
    (
        "rw=write\nbs=8k\nsize=256k\nnrfiles=4\nfile_service_type=roundrobin:3",
        Same::Order,
    ),
    (
        "rw=read\nsize=64k\nnrfiles=2\nfile_service_type=sequential",
        Same::Order,
    ),
    ("rw=read\nfilesize=64k\nnrfiles=3", Same::Order),
    ("rw=read\nfilesize=64k\nsize=100k\nnrfiles=3", Same::Order),
    ("rw=read\nsize=64k\nnrfiles=2\nloops=2", Same::Order),
    ("rw=read\nsize=64k\nnrfiles=2\nio_size=96k", Same::Order),
    ("rw=read\nsize=64k\nnrfiles=4\nnumber_ios=5", Same::Order),
    ("rw=read\nsize=64k\nfilename=a:b:c", Same::Order),
    ("rw=write\nfilesize=64k\nsize=32k", Same::Order),
    ("rw=write\nfilesize=64k\nsize=32k\nloops=2", Same::Order),
    (
        "rw=read\nfilesize=64k\nnumjobs=2\noffset_increment=16k\nnrfiles=2",
        Same::Order,
    ),
    ("rw=randread\nsize=256k\nnrfiles=4", Same::Blocks),
    (
        "rw=randwrite\nsize=256k\nnrfiles=4\nfile_service_type=random:2",
        Same::Blocks,
    ),
    (
        "rw=randread\nsize=1m\nnrfiles=4\nfile_service_type=zipf:1.2",
        Same::Totals,
    ),
];

/// fio's I/Os for a job of several files in `dir`, each with the index of its file (by
/// fio's default names, JOB.0.N, or the job's `filename` list).
fn fio_file_ios(dir: &Path, job: &str) -> Option<Vec<(usize, (usize, Io))>> {
    let log = fio_iolog(dir, "files", &format!("directory={}", dir.display()), job)?;
    let names: Vec<String> = job
        .lines()
        .find_map(|l| l.strip_prefix("filename="))
        .map_or(Vec::new(), |list| {
            list.split(':').map(String::from).collect()
        });
    // (clone, file) by the name: JOB.CLONE.FILE, or a name of the list (clone 0's).
    let index = |name: &str| {
        let name = Path::new(name).file_name().unwrap().to_str().unwrap();
        if let Some(i) = names.iter().position(|n| n == name) {
            return (0, i);
        }
        let mut parts = name.rsplit('.').map(|p| p.parse::<usize>().unwrap());
        let file = parts.next().unwrap();
        (parts.next().unwrap(), file)
    };
    let ios = log.lines().filter_map(|line| {
        let io = logged_io(line)?;
        let (clone, file) = index(line.split_whitespace().nth(1)?);
        Some((clone, (file, io)))
    });
    Some(ios.collect())
}

/// fio serves a clone's files as csumbench does: each file's own I/Os as fio issues them
/// (in fio's order where that is fixed), and the order of the files too.
#[test]
fn a_clone_with_several_files_issues_what_fio_issues() {
    let dir = tempfile::tempdir().unwrap();
    for (job, same) in FILE_CASES {
        let Some(fio) = fio_file_ios(dir.path(), job) else {
            eprintln!("skipped: fio is not installed (scripts/test-all installs it)");
            return;
        };
        assert!(!fio.is_empty(), "fio issued nothing for {job:?}");
        let file = parse_with(&format!("[job]\n{job}\n"), |_| None).unwrap();
        let spec = file.jobs().next().unwrap();
        spec.validate().unwrap();
        let ends = vec![0; spec.nr_files() as usize];
        let clone = |c: usize| -> Vec<(usize, Io)> {
            fio.iter()
                .filter(|(of, _)| *of == c)
                .map(|(_, io)| *io)
                .collect()
        };
        let fio = clone(0);
        let ours: Vec<(usize, Io)> = ClonePattern::new(spec, 0, &ends, spec.seed(0)).collect();
        if let Same::Order = same {
            assert_eq!(ours, fio, "{job:?}");
            for c in 1..spec.numjobs {
                let ours: Vec<_> = ClonePattern::new(spec, c, &ends, spec.seed(c)).collect();
                assert_eq!(ours, clone(c as usize), "{job:?}, clone {c}");
            }
            continue;
        }
        for f in 0..spec.nr_files() as usize {
            let of = |ios: &[(usize, Io)]| -> Vec<Io> {
                ios.iter()
                    .filter(|(g, _)| *g == f)
                    .map(|(_, io)| *io)
                    .collect()
            };
            if let Same::Blocks = same {
                check(job, *same, &of(&fio), (&of(&ours), u64::MAX));
            }
        }
        let all = |ios: &[(usize, Io)]| -> Vec<Io> { ios.iter().map(|(_, io)| *io).collect() };
        check(
            job,
            Same::Totals,
            &all(&fio),
            (&all(&ours), spec.for_file(spec.file_sizes(0)[0]).io_end()),
        );
    }
}
