//! Before a case is measured: each job's files opened (laid out first where a read needs
//! data to verify), their checksum stores ready, the page cache dealt with, and the job
//! threads' inputs built. A clone has one file or several (fio's `nrfiles`, a `filename`
//! list); clones and jobs that name the same file share it.

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
use crate::pipeline::{
    self, CaseState, CloneFile, ExtentLocks, JobInput, JobProgress, Pools, Topology,
};

/// A file of the case, opened, with its checksum store and the locks on its sectors.
pub(super) struct PreparedFile {
    pub target: Target,
    pub store: Arc<CsumStore>,
    /// `None` where nothing writes the file through an engine that reaches it.
    pub extents: Option<Arc<ExtentLocks>>,
    /// (device, inode): two paths to one file are one file.
    id: (u64, u64),
}

impl PreparedFile {
    /// The file as a job thread uses it.
    fn clone_file(&self) -> CloneFile {
        CloneFile {
            store: self.store.clone(),
            extents: self.extents.clone(),
            label: self.target.path.display().to_string().into(),
            data_end: self.target.size,
        }
    }
}

/// Whether the page cache was dropped before a case that reads, and why not.
pub(super) struct PageCache {
    pub dropped: Option<bool>,
    pub note: Option<String>,
}

pub(super) struct PreparedCase {
    pub files: Vec<PreparedFile>,
    /// For each job of the group, for each of its clones, its files.
    file_of: Vec<Vec<Vec<usize>>>,
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
    let uses = FileUse::all(&spec.jobs, opts)?;
    // Room for every file before any is made, so a run that cannot fit leaves nothing.
    let planned = uses.iter().map(|u| (u.path.clone(), u.end, u.writes));
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
    case.file_of = spec
        .jobs
        .iter()
        .map(|job| vec![Vec::new(); job.numjobs as usize])
        .collect();
    for u in &uses {
        let job = &spec.jobs[u.job];
        let file = FileJob {
            job: &job.for_file(u.size),
            jobnum: u.jobnum,
            path: &u.path,
            algo: case.algos[u.job],
            make_dirs: makes_dirs(job),
        };
        let index = case.file_for(&file, &uses, opts, interrupted)?;
        case.file_of[u.job][u.jobnum as usize].push(index);
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

/// One file of one clone of one job: what the case does with it.
struct FileUse {
    /// The job's index in the group, and the clone.
    job: usize,
    jobnum: u32,
    path: PathBuf,
    /// The file's share of the clone's I/O.
    size: u64,
    writes: bool,
    reads: bool,
    /// The clone's region of the file, `[start, end)`: a file of its own is as long as
    /// its own region, one the clones share reaches the last one's (fio's file sizes).
    start: u64,
    end: u64,
    create_on_open: bool,
    verify_only: bool,
}

impl FileUse {
    /// Every file of every clone of `jobs`, in order.
    fn all(jobs: &[JobSpec], opts: &RunOptions) -> Result<Vec<FileUse>> {
        let mut uses = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            for jobnum in 0..job.numjobs {
                for (filenum, size) in (0..).zip(job.file_sizes(jobnum)) {
                    let own = job.for_file(size);
                    let start = own.region(jobnum, 0).start;
                    uses.push(FileUse {
                        job: j,
                        jobnum,
                        path: job_path(job, jobnum, filenum, opts)?,
                        size,
                        writes: job.rw.is_write(),
                        reads: job.rw.is_read(),
                        start,
                        end: start.saturating_add(own.reach()),
                        create_on_open: job.files.create_on_open,
                        verify_only: job.verify_only,
                    });
                }
            }
        }
        Ok(uses)
    }
}

/// The file of clone `jobnum`'s file `filenum`, as fio names it: the name from `filename`
/// or `filename_format` (`NAME.JOBNUM.FILENUM` without one), inside `directory` when one
/// is given (fio prefixes the directory to every file name); else a name of the user's
/// own as it is, and csumbench's (no `filename_format`, or a relative one) in the run's
/// scratch folder. A name with `..` under a directory, or a job name with a `/`, is
/// refused: nothing outside what the user named is written.
fn job_path(job: &JobSpec, jobnum: u32, filenum: u32, opts: &RunOptions) -> Result<PathBuf> {
    use std::path::Component;
    let name = job.file_name(jobnum, filenum);
    let named = job.filename.is_some() || job.files.format.is_some();
    if !named && job.name.contains('/') {
        bail!(
            "job name '{}' cannot name a file: it contains '/' (fio names a job's files \
             NAME.JOBNUM.FILENUM inside its directory)",
            job.name
        );
    }
    let dir = match (&job.directory, named && name.is_absolute()) {
        (Some(dir), _) => dir,
        (None, true) => return Ok(name),
        (None, false) if job.filename.is_some() => return Ok(name),
        (None, false) => &opts.scratch_dir,
    };
    if name.components().any(|c| c == Component::ParentDir) {
        let option = match job.filename {
            Some(_) => "filename",
            None => "filename_format",
        };
        let within = match &job.directory {
            Some(dir) => format!("with directory={}", dir.display()),
            None => "in the run's scratch folder".into(),
        };
        bail!(
            "{option}={} {within}: '..' would leave the directory",
            name.display()
        );
    }
    Ok(dir.join(name.strip_prefix("/").unwrap_or(&name)))
}

/// Whether the folders of a file's path may be made for it, as fio makes them: a
/// relative `filename_format` name, which is inside the job's directory (or the scratch
/// folder) and has no `..`.
fn makes_dirs(job: &JobSpec) -> bool {
    job.filename.is_none() && job.files.format.is_some() && !job.file_name(0, 0).is_absolute()
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

/// A job's clone and one of its files: the job as that file sees it.
struct FileJob<'a> {
    job: &'a JobSpec,
    jobnum: u32,
    path: &'a Path,
    algo: Algo,
    /// The folders of `path` may be made ([`makes_dirs`]).
    make_dirs: bool,
}

/// What the case's jobs do with one path, all together.
struct Sharing {
    writes: bool,
    reads: bool,
    /// The bytes the jobs touch: from the first region's start to the last one's end.
    start: u64,
    end: u64,
    /// Every job on it creates it on open (fio's `create_on_open`): not laid out first.
    create_on_open: bool,
    /// A job only verifies what an earlier run wrote there (`verify_only`).
    verify_only: bool,
}

impl Sharing {
    fn of(path: &Path, uses: &[FileUse]) -> Sharing {
        let mut s = Sharing {
            writes: false,
            reads: false,
            start: u64::MAX,
            end: 0,
            create_on_open: true,
            verify_only: false,
        };
        for u in uses.iter().filter(|u| u.path == path) {
            s.writes |= u.writes;
            s.reads |= u.reads;
            s.start = s.start.min(u.start);
            s.end = s.end.max(u.end);
            s.create_on_open &= u.create_on_open;
            s.verify_only |= u.verify_only;
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
        uses: &[FileUse],
        opts: &RunOptions,
        interrupted: &Arc<AtomicBool>,
    ) -> Result<usize> {
        let path = file.path;
        let known = |id| self.files.iter().position(|f| f.id == id);
        if let Some(i) = file_id(path).and_then(known) {
            return Ok(i);
        }
        if let Some(parent) = path.parent().filter(|p| file.make_dirs && !p.exists()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot make {} for filename_format", parent.display()))?;
        }
        let sharing = Sharing::of(path, uses);
        let plan =
            plan_for(path, &sharing, file.algo, opts).with_context(|| match sharing.writes {
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
        if let (Some(why), true) = (&plan.lay_out, sharing.verify_only) {
            bail!(
                "verify_only=1: {} has nothing an earlier run wrote to verify ({why})",
                path.display()
            );
        }
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
        for (job, clones) in jobs.iter().zip(&self.file_of) {
            if job.rw.is_write() && !job.ioengine.caps().diskless {
                for &f in clones.iter().flatten() {
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
        for (job, clones) in jobs.iter().zip(&self.file_of) {
            if job.invalidate && !job.direct {
                for target in clones.iter().flatten().map(|&i| &self.files[i].target) {
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
                let files: Vec<&PreparedFile> = self.file_of[ji][jobnum as usize]
                    .iter()
                    .map(|&i| &self.files[i])
                    .collect();
                let opened = files.iter().map(|f| f.target.file.clone()).collect();
                let mut engine = job
                    .open_engine(opened)
                    .with_context(|| format!("cannot start the {} engine", job.ioengine.name()))?;
                if let Some(plan) = &faults {
                    engine = Box::new(FaultyEngine::new(engine, plan.clone()));
                }
                inputs.push(JobInput {
                    engine,
                    files: files.iter().map(|f| f.clone_file()).collect(),
                    job: job.clone(),
                    jobnum,
                    number: spec.threads_before + inputs.len() as u32 + 1,
                    algo,
                    seed: job.seed(ji as u32 * 1000 + jobnum),
                    deadline,
                    ramp_end,
                    flow: None,
                    unverified: Vec::new(),
                });
            }
        }
        Ok(inputs)
    }

    /// fio's `unlink`: removes the regular files of the jobs that ask, each with its
    /// checksum store, once the case is over; what was done, for the case's record.
    pub fn unlink(&self, jobs: &[JobSpec]) -> Vec<Preparation> {
        let mut unlinked = Vec::new();
        let asked = jobs
            .iter()
            .zip(&self.file_of)
            .filter(|(job, _)| job.files.unlink);
        for (_, clones) in asked {
            for &f in clones.iter().flatten() {
                let file = &self.files[f];
                let path = &file.target.path;
                if file.target.is_device
                    || unlinked
                        .iter()
                        .any(|u: &Preparation| u.file == path.display().to_string())
                {
                    continue;
                }
                let removed = std::fs::remove_file(path)
                    .and_then(|()| std::fs::remove_file(file.store.path()));
                unlinked.push(Preparation {
                    file: path.display().to_string(),
                    action: match removed {
                        Ok(()) => "removed with its checksum store at the end (unlink=1)".into(),
                        Err(e) => format!("unlink=1: could not remove it and its store: {e}"),
                    },
                });
            }
        }
        unlinked
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
    let scratch =
        opts.preallocate_scratch && path.starts_with(&opts.scratch_dir) && !sharing.create_on_open;
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
    let path = file.path;
    let (span, write) = (sharing.end, sharing.writes);
    let target = target::open(path, span, access(file.job, write, opts))?;
    if target.is_device && span > target.size {
        bail!(
            "{}: the job needs {} bytes but the device holds {}",
            path.display(),
            span,
            target.size
        );
    }
    let store_path = CsumStore::path_for(path, target.is_device)?;
    let algo = file.algo;
    let store = if write {
        store_for_write(&store_path, path, algo, span, opts.overwrite)?
    } else {
        CsumStore::open_for(&store_path, path, algorithm(algo, &algo.name()), Mode::Read)
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
    let path = file.path;
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
        engine: layout.open_engine(vec![target.file.clone()])?,
        files: vec![CloneFile {
            store: store.clone(),
            extents: None,
            label: path.display().to_string().into(),
            data_end: target.size,
        }],
        job: layout,
        jobnum: file.jobnum,
        number: 1,
        algo: file.algo,
        seed: 0x5EED ^ file.jobnum as u64,
        deadline: None,
        ramp_end: None,
        flow: None,
        unverified: Vec::new(),
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
