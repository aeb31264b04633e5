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
            mine.push(case.file_for(job, file_index(job, jobnum), algo, opts, interrupted)?);
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

impl PreparedCase {
    /// The index of the file a job's clone uses, preparing it unless another job of the case
    /// already did (under this or another path to the same file).
    fn file_for(
        &mut self,
        job: &JobSpec,
        jobnum: u32,
        algo: Algo,
        opts: &RunOptions,
        interrupted: &Arc<AtomicBool>,
    ) -> Result<usize> {
        let path = job_path(job, jobnum, opts)?;
        let known = |id| self.files.iter().position(|f| f.id == id);
        if let Some(i) = file_id(&path).and_then(known) {
            return Ok(i);
        }
        if let Some(why) = lay_out_if_needed(job, jobnum, algo, opts, interrupted)? {
            self.preparation.push(Preparation {
                file: path.display().to_string(),
                action: format!("laid out: {why}"),
            });
        }
        let (target, store) = open(job, jobnum, algo, opts)?;
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
                .persist()
                .with_context(|| format!("cannot save {}", f.store.path().display()))?;
        }
        Ok(())
    }
}

/// The checksum store a write job updates: the existing one if it is clean, of this very
/// file or device (not another that took its name since), and matches; else a fresh one.
fn store_for_write(path: &Path, data: &Path, algo: Algo, size: u64) -> Result<CsumStore> {
    if let Ok(store) = CsumStore::open_for(path, data) {
        if store.algo() == algo.name() && store.data_size() >= size {
            store.begin_update()?;
            return Ok(store);
        }
    }
    let identity = workloads::store::Identity::of(data)
        .with_context(|| format!("cannot tell which file or device {} is", data.display()))?;
    CsumStore::create_for(path, &algo.name(), algo.len(), size, &identity)
        .with_context(|| format!("cannot create checksum store {}", path.display()))
}

/// Why a read job's file needs laying out first, if it does: no usable store of its data
/// (one written for another device under the same name is none), or sectors of the job's
/// range `[start, end)` without a checksum.
fn layout_reason(
    data: &Path,
    store_path: &Path,
    algo: Algo,
    start: u64,
    end: u64,
) -> Option<String> {
    match CsumStore::open_for(store_path, data) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no checksum store".into()),
        Err(e) => Some(e.to_string()),
        Ok(s) if s.algo() != algo.name() => Some(format!(
            "its checksums are {}, the job asks for {}",
            s.algo(),
            algo
        )),
        Ok(s) if !s.covers(start, end) => Some("the checksum store does not cover the job".into()),
        Ok(_) => None,
    }
}

/// Opens a job's file and its store.
fn open(job: &JobSpec, jobnum: u32, algo: Algo, opts: &RunOptions) -> Result<(Target, CsumStore)> {
    let path = job_path(job, jobnum, opts)?;
    let span = job.io_end();
    let write = job.rw.is_write();
    let target = target::open(&path, span, access(job, write, opts))?;
    if target.is_device && span > target.size {
        bail!(
            "{}: the job needs {} bytes but the device holds {}",
            path.display(),
            span,
            target.size
        );
    }
    let store_path = CsumStore::path_for(&path, target.is_device);
    let store = if write {
        store_for_write(&store_path, &path, algo, span)?
    } else {
        CsumStore::open_for(&store_path, &path)
            .with_context(|| format!("cannot open checksum store {}", store_path.display()))?
    };
    Ok((target, store))
}

/// Lays out a job's file if it must be, as fio does for reads: writes it once, unmeasured,
/// inline, recording checksums, so a read has something to verify and a write overwrites
/// allocated blocks. Says so on stderr, and returns why it did.
fn lay_out_if_needed(
    job: &JobSpec,
    jobnum: u32,
    algo: Algo,
    opts: &RunOptions,
    interrupted: &Arc<AtomicBool>,
) -> Result<Option<String>> {
    let path = job_path(job, jobnum, opts)?;
    let is_device = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
        .unwrap_or(false);
    let span = job.io_end();
    let why = if !job.rw.is_read() {
        (opts.preallocate_scratch && !path.exists()).then(|| {
            "a scratch file, allocated once so every case overwrites the same blocks".into()
        })
    } else {
        let store = CsumStore::path_for(&path, is_device);
        layout_reason(&path, &store, algo, job.offset, span)
    };
    let Some(why) = why else {
        return Ok(None);
    };
    let layout = layout_job(job);
    let (target, store) = open(&layout, jobnum, algo, opts)
        .with_context(|| format!("cannot lay out {} ({why})", path.display()))?;
    let size = workloads::units::format_size(span - job.offset.min(span));
    let from = match job.offset {
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
        jobnum,
        store: store.clone(),
        extents: None,
        file_label: path.display().to_string(),
        algo,
        seed: 0x5EED ^ jobnum as u64,
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
    store.persist()?;
    Ok(Some(why))
}

/// The job that lays out `job`'s range: one sequential pass of writes over every sector
/// the job reaches ([`JobSpec::plain_pass`]), as fast as it goes.
fn layout_job(job: &JobSpec) -> JobSpec {
    let mut layout = job.plain_pass();
    layout.ramp_time = None;
    layout.rate = Default::default();
    layout.rate_iops = Default::default();
    layout.cpus_allowed.clear();
    layout.iodepth = layout.iodepth.max(8);
    layout
}
