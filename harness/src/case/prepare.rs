//! Before a case is measured: each job's file opened (laid out first where a read needs
//! data to verify), its checksum store ready, the page cache dealt with, and the job
//! threads' inputs built.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use strategies::csum::Algo;
use workloads::engine::FaultyEngine;
use workloads::plan::{self, Allowed, Plan, Use};
use workloads::store::{Algorithm, Mode, Overwrite, StoreError};
use workloads::target::{self, Access, Target};
use workloads::{CsumStore, JobSpec};

use super::result::Preparation;
use super::{CaseSpec, RunOptions};
use crate::inject;
use crate::pipeline::{self, CaseState, ExtentLocks, JobInput, JobProgress, Pools, Topology};

/// A file of the case, opened, with its checksum store and the locks on its sectors.
pub(super) struct PreparedFile {
    pub target: Target,
    pub store: Arc<CsumStore>,
    /// `None` where nothing writes the file through an engine that reaches it.
    pub extents: Option<Arc<ExtentLocks>>,
    /// (device, inode): two paths to one file are one file.
    id: (u64, u64),
}

/// Whether the page cache was dropped before a case that reads, and why not.
pub(super) struct PageCache {
    pub dropped: Option<bool>,
    pub note: Option<String>,
}

pub(super) struct PreparedCase {
    pub files: Vec<PreparedFile>,
    /// For each job of the group, the file of each of its clones.
    file_of: Vec<Vec<usize>>,
    algos: Vec<Algo>,
    pub page_cache: PageCache,
    pub preparation: Vec<Preparation>,
}

/// Validates the group's jobs and prepares their files. Nothing is created when the files
/// would not fit.
pub(super) fn prepare(
    spec: &CaseSpec,
    opts: &RunOptions,
    interrupted: &Arc<AtomicBool>,
) -> Result<PreparedCase> {
    let algos = checked_algos(&spec.jobs)?;
    // Room for every file before any is made, so a run that cannot fit leaves nothing.
    let mut planned = Vec::new();
    for job in &spec.jobs {
        for n in 0..job.numjobs {
            let path = job_path(job, file_index(job, n), opts)?;
            planned.push((path, job.io_end(), job.rw.is_write()));
        }
    }
    target::check_room(planned)?;
    let mut case = PreparedCase {
        files: Vec::new(),
        file_of: Vec::new(),
        algos,
        page_cache: PageCache {
            dropped: None,
            note: None,
        },
        preparation: Vec::new(),
    };
    for (job, algo) in spec.jobs.iter().zip(case.algos.clone()) {
        let mut mine = Vec::new();
        for jobnum in 0..job.numjobs {
            let file = FileJob {
                job,
                jobnum: file_index(job, jobnum),
                algo,
            };
            mine.push(case.file_for(&file, &spec.jobs, opts, interrupted)?);
        }
        case.file_of.push(mine);
    }
    case.lock_written_files(&spec.jobs);
    case.page_cache = case.deal_with_page_cache(&spec.jobs, opts);
    Ok(case)
}

fn checked_algos(jobs: &[JobSpec]) -> Result<Vec<Algo>> {
    jobs.iter()
        .map(|job| {
            job.validate()
                .map_err(|e| anyhow!("job '{}': {e}", job.name))?;
            job.csum
                .parse::<Algo>()
                .map_err(|e| anyhow!("job '{}': csum={}: {e}", job.name, job.csum))
        })
        .collect()
}

/// Which of a job's files clone `jobnum` uses: one shared file with `filename`, else one each.
fn file_index(job: &JobSpec, jobnum: u32) -> u32 {
    if job.filename.is_some() {
        0
    } else {
        jobnum
    }
}

/// The file a job's clone uses, as fio names it: `filename` (inside `directory` when both
/// are given: fio prefixes the directory to every file name), else `NAME.JOBNUM.0` in
/// `directory` or the run's scratch folder. A path that would leave its directory (a job
/// name with a `/`, a filename with `..`) is refused: nothing outside what the user named
/// is written.
fn job_path(job: &JobSpec, jobnum: u32, opts: &RunOptions) -> Result<PathBuf> {
    use std::path::Component;
    let dir = job.directory.as_ref();
    match (&job.filename, dir) {
        (Some(f), None) => Ok(f.clone()),
        (Some(f), Some(dir)) => {
            if f.components().any(|c| c == Component::ParentDir) {
                bail!(
                    "filename={} with directory={}: '..' would leave the directory",
                    f.display(),
                    dir.display()
                );
            }
            Ok(dir.join(f.strip_prefix("/").unwrap_or(f)))
        }
        (None, dir) => {
            if job.name.contains('/') {
                bail!(
                    "job name '{}' cannot name a file: it contains '/' (fio names a job's \
                     files NAME.JOBNUM.0 inside its directory)",
                    job.name
                );
            }
            let dir = dir.unwrap_or(&opts.scratch_dir);
            Ok(dir.join(format!("{}.{jobnum}.0", job.name)))
        }
    }
}

fn access(job: &JobSpec, write: bool, opts: &RunOptions) -> Access {
    Access {
        write,
        direct: job.direct,
        overwrite: opts.overwrite,
        allow_device_write: opts.allow_device_write,
    }
}

/// The (device, inode) of what `path` names now, if it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A job's clone and the file it uses.
struct FileJob<'a> {
    job: &'a JobSpec,
    /// Which of the job's files (clones share one with `filename`).
    jobnum: u32,
    algo: Algo,
}

/// What the case's jobs do with one path, all together.
struct Sharing {
    writes: bool,
    reads: bool,
    /// The bytes the jobs touch: `[offset, io_end)` over all of them.
    start: u64,
    end: u64,
}

impl Sharing {
    fn of(path: &Path, jobs: &[JobSpec], opts: &RunOptions) -> Sharing {
        let mut s = Sharing {
            writes: false,
            reads: false,
            start: u64::MAX,
            end: 0,
        };
        for job in jobs {
            let uses = (0..job.numjobs)
                .any(|n| job_path(job, file_index(job, n), opts).is_ok_and(|p| p == path));
            if uses {
                s.writes |= job.rw.is_write();
                s.reads |= job.rw.is_read();
                s.start = s.start.min(job.offset);
                s.end = s.end.max(job.io_end());
            }
        }
        s
    }
}

impl PreparedCase {
    /// The index of the file a job's clone uses, preparing it unless another job of the case
    /// already did (under this or another path to the same file): what the plan says must be
    /// done to it first (workloads::plan), done and recorded, then it and its store opened.
    fn file_for(
        &mut self,
        file: &FileJob,
        jobs: &[JobSpec],
        opts: &RunOptions,
        interrupted: &Arc<AtomicBool>,
    ) -> Result<usize> {
        let path = job_path(file.job, file.jobnum, opts)?;
        let known = |id| self.files.iter().position(|f| f.id == id);
        if let Some(i) = file_id(&path).and_then(known) {
            return Ok(i);
        }
        let sharing = Sharing::of(&path, jobs, opts);
        let plan =
            plan_for(&path, &sharing, file.algo, opts).with_context(|| match sharing.writes {
                true => format!("cannot use {}", path.display()),
                false => format!(
                    "cannot lay out {} for the read, which needs data it can verify",
                    path.display()
                ),
            })?;
        let note = |action: String| Preparation {
            file: path.display().to_string(),
            action,
        };
        if let Some(why) = &plan.lay_out {
            lay_out(file, &sharing, why, opts, interrupted)?;
            self.preparation.push(note(format!("laid out: {why}")));
        } else if let Some(why) = &plan.replace_store {
            self.preparation
                .push(note(format!("checksum store replaced: {why}")));
        }
        let (target, store) = open(file, &sharing, opts)?;
        let meta = target
            .file
            .metadata()
            .context("cannot stat the job's file")?;
        self.files.push(PreparedFile {
            target,
            store: Arc::new(store),
            extents: None,
            id: (meta.dev(), meta.ino()),
        });
        Ok(self.files.len() - 1)
    }

    /// Gives each file some job writes (through an engine that reaches it) the sector locks
    /// every job on it shares, so no I/O overlaps a write in flight.
    fn lock_written_files(&mut self, jobs: &[JobSpec]) {
        for (job, mine) in jobs.iter().zip(&self.file_of) {
            if job.rw.is_write() && !job.ioengine.caps().diskless {
                for &f in mine {
                    let locks = Arc::new(ExtentLocks::new(workloads::MAX_BIO));
                    self.files[f].extents.get_or_insert(locks);
                }
            }
        }
    }

    /// fio's `invalidate` per file, then the whole page cache dropped if `--drop-caches`.
    fn deal_with_page_cache(&self, jobs: &[JobSpec], opts: &RunOptions) -> PageCache {
        if !jobs.iter().any(|j| j.rw.is_read()) {
            return PageCache {
                dropped: None,
                note: None,
            };
        }
        let mut note = None;
        for (job, files) in jobs.iter().zip(&self.file_of) {
            if job.invalidate && !job.direct {
                for target in files.iter().map(|&i| &self.files[i].target) {
                    if let Err(e) = target.invalidate_cache() {
                        note = Some(format!("invalidate {}: {e}", target.path.display()));
                    }
                }
            }
        }
        if !opts.drop_caches {
            return PageCache {
                dropped: Some(false),
                note: note.or(Some("--drop-caches false".into())),
            };
        }
        match workloads::device::drop_caches() {
            Ok(()) => PageCache {
                dropped: Some(true),
                note,
            },
            Err(e) => PageCache {
                dropped: Some(false),
                note: Some(format!("dropping the page cache failed: {e}")),
            },
        }
    }

    /// One input per job thread, each with its own engine (wrapped in the injected faults).
    pub fn job_inputs(
        &self,
        spec: &CaseSpec,
        opts: &RunOptions,
        start: Instant,
    ) -> Result<Vec<JobInput>> {
        let faults = inject::io_plan(&opts.inject);
        let mut inputs = Vec::new();
        for (ji, (job, &algo)) in spec.jobs.iter().zip(&self.algos).enumerate() {
            let ramp_end = job.ramp_time.map(|r| start + r);
            let deadline = job.runtime.map(|r| ramp_end.unwrap_or(start) + r);
            for jobnum in 0..job.numjobs {
                let file = &self.files[self.file_of[ji][jobnum as usize]];
                let mut engine = job
                    .open_engine(Some(file.target.file.clone()))
                    .with_context(|| format!("cannot start the {} engine", job.ioengine.name()))?;
                if let Some(plan) = &faults {
                    engine = Box::new(FaultyEngine::new(engine, plan.clone()));
                }
                inputs.push(JobInput {
                    engine,
                    data_end: file.target.size,
                    job: job.clone(),
                    jobnum,
                    number: inputs.len() as u32 + 1,
                    store: file.store.clone(),
                    extents: file.extents.clone(),
                    file_label: file.target.path.display().to_string(),
                    algo,
                    seed: job.seed(ji as u32 * 1000 + jobnum),
                    deadline,
                    ramp_end,
                });
            }
        }
        Ok(inputs)
    }

    /// Marks every store clean: the case ran to its end, so the sums it recorded are true.
    pub fn persist(&self) -> Result<()> {
        for f in &self.files {
            f.store
                .persist(&f.target.file)
                .with_context(|| format!("cannot save {}", f.store.path().display()))?;
        }
        Ok(())
    }
}

/// The algorithm a store is checked against, by `name` (`algo.name()`, which it borrows).
fn algorithm(algo: Algo, name: &str) -> Algorithm<'_> {
    Algorithm {
        name,
        csum_len: algo.len(),
    }
}

/// The one place that decides about a store that cannot be used: `Ok(why)` when the data
/// may be laid out again (a new store replaces it), an error when csumbench must refuse
/// (another run holds it, it cannot be read, a newer csumbench wrote it).
fn why_lay_out(e: StoreError) -> Result<String> {
    match e {
        StoreError::NotFound { .. } => Ok("no checksum store".into()),
        StoreError::OtherAlgorithm {
            found, expected, ..
        } => Ok(format!(
            "its checksums are {found}, the job asks for {expected}"
        )),
        StoreError::NotAStore { .. }
        | StoreError::Invalid { .. }
        | StoreError::Dirty { .. }
        | StoreError::OldFormat { .. }
        | StoreError::Stale(_) => Ok(e.to_string()),
        e => Err(e.into()),
    }
}

/// The checksum store a write job updates: the existing one if it is clean, of this very
/// file or device (not another that took its name since), and matches; else a fresh one,
/// which replaces a store of ours, and anything else only with `overwrite`.
fn store_for_write(
    path: &Path,
    data: &Path,
    algo: Algo,
    size: u64,
    overwrite: bool,
) -> Result<CsumStore> {
    let name = algo.name();
    match CsumStore::open_for(path, data, algorithm(algo, &name), Mode::Update) {
        Ok(store) if store.data_size() >= size => return Ok(store),
        // Closed (and unlocked) before a new one replaces it.
        Ok(smaller) => drop(smaller),
        Err(e @ StoreError::Invalid { .. }) => eprintln!("replacing a damaged {e}"),
        Err(e) => {
            why_lay_out(e)?;
        }
    }
    let identity = workloads::store::Identity::of(data)
        .with_context(|| format!("cannot tell which file or device {} is", data.display()))?;
    let overwrite = match overwrite {
        true => Overwrite::AnyFile,
        false => Overwrite::StoresOnly,
    };
    CsumStore::create(path, algorithm(algo, &name), size, &identity, overwrite)
        .with_context(|| format!("cannot create checksum store {}", path.display()))
}

/// What must be done to `path` before the case, from the one place that decides.
fn plan_for(path: &Path, sharing: &Sharing, algo: Algo, opts: &RunOptions) -> Result<Plan> {
    let name = algo.name();
    let scratch = opts.preallocate_scratch && path.starts_with(&opts.scratch_dir);
    let allowed = Allowed {
        overwrite: opts.overwrite,
        allow_device_write: opts.allow_device_write,
        relayout: opts.relayout,
    };
    let file = Use {
        path,
        writes: sharing.writes,
        reads: sharing.reads,
        read_range: (sharing.start, sharing.end),
        algorithm: algorithm(algo, &name),
        scratch,
    };
    Ok(plan::plan(&file, &allowed)?)
}

/// Opens a job's file and its store: for writing if any job of the case writes it.
fn open(file: &FileJob, sharing: &Sharing, opts: &RunOptions) -> Result<(Target, CsumStore)> {
    let path = job_path(file.job, file.jobnum, opts)?;
    let (span, write) = (sharing.end, sharing.writes);
    let target = target::open(&path, span, access(file.job, write, opts))?;
    if target.is_device && span > target.size {
        bail!(
            "{}: the job needs {} bytes but the device holds {}",
            path.display(),
            span,
            target.size
        );
    }
    let store_path = CsumStore::path_for(&path, target.is_device)?;
    let algo = file.algo;
    let store = if write {
        store_for_write(&store_path, &path, algo, span, opts.overwrite)?
    } else {
        CsumStore::open_for(
            &store_path,
            &path,
            algorithm(algo, &algo.name()),
            Mode::Read,
        )
        .with_context(|| format!("cannot open checksum store {}", store_path.display()))?
    };
    Ok((target, store))
}

/// Lays out a file as the plan says, as fio does for reads: writes the case's range of it
/// once, unmeasured, inline, recording checksums, so a read has something to verify and a
/// write overwrites allocated blocks. Says so on stderr.
fn lay_out(
    file: &FileJob,
    sharing: &Sharing,
    why: &str,
    opts: &RunOptions,
    interrupted: &Arc<AtomicBool>,
) -> Result<()> {
    let path = job_path(file.job, file.jobnum, opts)?;
    let layout = layout_job(file.job, sharing.start, sharing.end);
    let writing = Sharing {
        writes: true,
        ..*sharing
    };
    let layout_file = FileJob {
        job: &layout,
        ..*file
    };
    let (target, store) = open(&layout_file, &writing, opts)
        .with_context(|| format!("cannot lay out {} ({why})", path.display()))?;
    let size = workloads::units::format_size(sharing.end - sharing.start);
    let from = match sharing.start {
        0 => String::new(),
        at => format!(" at offset {}", workloads::units::format_size(at)),
    };
    eprintln!("laying out {} ({size}{from}): {why}", path.display());
    let store = Arc::new(store);
    let case = Arc::new(CaseState::new(interrupted.clone(), None));
    let input = JobInput {
        data_end: target.size,
        engine: layout.open_engine(Some(target.file.clone()))?,
        job: layout,
        jobnum: file.jobnum,
        number: 1,
        store: store.clone(),
        extents: None,
        file_label: path.display().to_string(),
        algo: file.algo,
        seed: 0x5EED ^ file.jobnum as u64,
        deadline: None,
        ramp_end: None,
    };
    let pools = Pools::build("inline", Topology::Shared)?;
    pipeline::run_job(input, &pools, &case, &JobProgress::default());
    if interrupted.load(Ordering::Relaxed) {
        bail!("interrupted while laying out {}", path.display());
    }
    if let Some(e) = case.errors().first() {
        bail!("laying out {} failed: {e}", path.display());
    }
    store.persist(&target.file)?;
    Ok(())
}

/// The job that lays out `[start, end)` of `job`'s file: one sequential pass of writes
/// over every sector of it ([`JobSpec::plain_pass`]), as fast as it goes.
fn layout_job(job: &JobSpec, start: u64, end: u64) -> JobSpec {
    let mut layout = job.plain_pass(start, end);
    layout.ramp_time = None;
    layout.rate = Default::default();
    layout.rate_iops = Default::default();
    layout.cpus_allowed.clear();
    // Unmeasured: no pauses, no logs.
    layout.timing = Default::default();
    layout.logs = Default::default();
    layout.iodepth = layout.iodepth.max(8);
    layout
}
