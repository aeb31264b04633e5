//! The pipeline being measured (DESIGN.md):
//!
//! ```text
//! write:  fill -> [csum stage] -> submit -> [endio stage: record csums, metadata I/O, wait]
//! read:   submit -> [endio stage: verify every sector against the store]
//! ```
//!
//! Each job has one submitter thread that owns its engine, as a fio job does: it fills
//! buffers, submits and reaps I/O, and hands the bracketed stages to the strategies. Up to
//! `iodepth` bios are in the pipeline at once. Every bio carries its own timestamps; the
//! submitter turns them into stage latencies when the bio comes home, so only that thread
//! ever touches the histograms.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, RecvTimeoutError, Sender};
use strategies::csum::Algo;
use strategies::{PoolStats, Strategy, Work};
use workloads::buf::Filler;
use workloads::offsets::{MixChooser, Offsets};
use workloads::store::Bad;
use workloads::{AlignedBuf, CsumStore, Engine, IoDone, IoReq, JobSpec, Op, SECTOR_SIZE};

use crate::measure::{Stage, StageHists};

/// Whether csum-side and endio-side work share one strategy instance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Each kind of work gets its own pool: checksums, data endio, metadata endio (as btrfs
    /// has separate workers, and later separate workqueues, for each).
    Separate,
    /// One pool for everything: the configuration the 2008 patch warns can deadlock.
    Shared,
}

/// The strategy instances of one case, by role.
pub struct Pools {
    pub csum: Arc<dyn Strategy>,
    pub endio: Arc<dyn Strategy>,
    pub meta: Arc<dyn Strategy>,
}

impl Pools {
    pub fn build(spec: &str, topology: Topology) -> Result<Pools, strategies::SpecError> {
        let csum = strategies::build(spec)?;
        Ok(match topology {
            Topology::Shared => Pools {
                endio: csum.clone(),
                meta: csum.clone(),
                csum,
            },
            Topology::Separate => Pools {
                endio: strategies::build(spec)?,
                meta: strategies::build(spec)?,
                csum,
            },
        })
    }

    /// Each distinct instance once, with the roles it serves.
    pub fn roles(&self) -> Vec<(&'static str, &Arc<dyn Strategy>)> {
        if Arc::ptr_eq(&self.csum, &self.endio) {
            vec![("shared", &self.csum)]
        } else {
            vec![
                ("csum", &self.csum),
                ("endio", &self.endio),
                ("meta_endio", &self.meta),
            ]
        }
    }

    pub fn stats(&self) -> Vec<(String, PoolStats)> {
        self.roles()
            .into_iter()
            .map(|(role, s)| (role.to_string(), s.stats()))
            .collect()
    }
}

/// A sector that failed read verification.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Mismatch {
    pub file: String,
    pub offset: u64,
    pub kind: String,
}

/// State shared by every thread of one case.
#[derive(Default)]
pub struct CaseState {
    /// Set to stop the case: an error or the watchdog.
    pub abort: AtomicBool,
    /// The run's SIGINT/SIGTERM flag: stops the case too.
    interrupted: Arc<AtomicBool>,
    /// `--inject panic@N`: the Nth csum or endio work item panics.
    panic_at: Option<u64>,
    work_items: AtomicU64,
    /// Bios whose I/O completed, for the watchdog.
    pub io_completions: AtomicU64,
    errors: Mutex<Vec<String>>,
    mismatches: Mutex<Vec<Mismatch>>,
    pub mismatch_count: AtomicU64,
}

/// Mismatches kept in full; beyond this they are only counted.
const MISMATCHES_KEPT: usize = 1000;

impl CaseState {
    pub fn new(interrupted: Arc<AtomicBool>, panic_at: Option<u64>) -> CaseState {
        CaseState {
            interrupted,
            panic_at,
            ..CaseState::default()
        }
    }

    /// Records an error and stops the case: the first error is the one reported.
    pub fn fail(&self, error: String) {
        self.errors.lock().unwrap().push(error);
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || self.interrupted.load(Ordering::Relaxed)
    }

    /// Counts one csum or endio work item; whether `--inject panic@N` picks it.
    fn injects_panic(&self) -> Option<u64> {
        let at = self.panic_at?;
        (self.work_items.fetch_add(1, Ordering::Relaxed) + 1 == at).then_some(at)
    }

    fn mismatch(&self, m: Mismatch) {
        self.mismatch_count.fetch_add(1, Ordering::Relaxed);
        let mut list = self.mismatches.lock().unwrap();
        if list.len() < MISMATCHES_KEPT {
            list.push(m);
        }
    }

    pub fn mismatches(&self) -> Vec<Mismatch> {
        let mut list = self.mismatches.lock().unwrap().clone();
        list.sort_by(|a, b| (&a.file, a.offset).cmp(&(&b.file, b.offset)));
        list
    }
}

/// What the collector reads from a running job.
#[derive(Default)]
pub struct JobProgress {
    pub hists: Mutex<StageHists>,
    pub bytes: AtomicU64,
    pub bios: AtomicU64,
    /// Bios currently between issue and endio completion.
    pub in_pipeline: AtomicU64,
    /// I/Os at the engine (submitted, not reaped), for the watchdog.
    pub at_engine: AtomicU64,
    /// In fsync: no bio completes meanwhile, so the watchdog looks at writeback instead.
    pub syncing: AtomicBool,
}

impl JobProgress {
    /// fsyncs the job's file, telling the watchdog so.
    fn sync(&self, engine: &mut dyn Engine) -> std::io::Result<()> {
        self.syncing.store(true, Ordering::Relaxed);
        let result = engine.sync();
        self.syncing.store(false, Ordering::Relaxed);
        result
    }
}

/// Everything one job thread needs.
pub struct JobInput {
    pub job: JobSpec,
    pub jobnum: u32,
    pub engine: Box<dyn Engine>,
    pub store: Arc<CsumStore>,
    pub file_label: String,
    pub algo: Algo,
    pub seed: u64,
    /// Where the file's data ends: a read past it is a truncated file, whose missing
    /// sectors verification reports, not an I/O error.
    pub data_end: u64,
    /// Stop issuing at this instant (ramp_time + runtime).
    pub deadline: Option<Instant>,
    /// Bios finishing before this instant are not counted (fio's ramp_time).
    pub ramp_end: Option<Instant>,
}

/// What a finished job reports.
pub struct JobOutcome {
    pub start: Instant,
    pub end: Instant,
    /// Bios that never came back (a stuck pool after an abort).
    pub abandoned: u64,
}

/// How long a stopping job waits for bios still in the pipeline before giving them up.
pub const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// How often blocked waits look at the abort flag.
const POLL: Duration = Duration::from_millis(50);

/// What comes back to the submitter from the stages.
enum Homecoming {
    Bio(Box<Bio>),
    /// A work item that owned a bio panicked; the bio is gone.
    Lost,
}

struct Bio {
    op: Op,
    offset: u64,
    buf: Option<AlignedBuf>,
    /// Bytes of a read that lie before the end of the file (all of them, but for a read of
    /// a truncated file).
    readable: u64,
    sums: Vec<u8>,
    issued: Instant,
    csum_queued: Instant,
    csum_start: Instant,
    csum_end: Instant,
    submitted: Instant,
    io_done: Instant,
    endio_queued: Instant,
    endio_start: Instant,
    endio_end: Instant,
    /// Set when the bio is coming home from endio (rather than from the csum stage).
    finished: bool,
    /// With an overlapping strategy: the checksums being computed while the write is in
    /// flight. Whoever frees the buffer must wait for it first.
    overlap: Option<Arc<OverlapCsum>>,
}

/// Checksums computed concurrently with the write that carries the same buffer.
#[derive(Default)]
struct OverlapCsum {
    done: Completion,
    /// Sums, and when the work started and ended.
    result: Mutex<Option<(Vec<u8>, Instant, Instant)>>,
}

impl OverlapCsum {
    /// Waits for the csum work however long it takes: until it has run, it may be reading
    /// the buffer, so the buffer may not be reused. Fills in the bio's sums and times;
    /// false if the work panicked and left none.
    fn finish_into(&self, bio: &mut Bio) -> bool {
        let mut done = self.done.done.lock().unwrap();
        while !*done {
            done = self.done.cv.wait(done).unwrap();
        }
        drop(done);
        match self.result.lock().unwrap().take() {
            Some((sums, start, end)) => {
                (bio.sums, bio.csum_start, bio.csum_end) = (sums, start, end);
                true
            }
            None => false,
        }
    }
}

/// A read-only view of a bio's buffer for the overlapping csum work.
struct SharedBuf {
    ptr: *const u8,
    len: usize,
}

// SAFETY: only read, and the owner waits for the reader (OverlapCsum::finish_into) before
// reusing or freeing the memory.
unsafe impl Send for SharedBuf {}

impl SharedBuf {
    /// SAFETY: the caller must be the csum work the owner waits for (see above).
    unsafe fn bytes(&self) -> &[u8] {
        std::slice::from_raw_parts(self.ptr, self.len)
    }
}

impl Bio {
    fn new(op: Op, offset: u64, buf: AlignedBuf) -> Box<Bio> {
        let now = Instant::now();
        Box::new(Bio {
            op,
            offset,
            readable: buf.len() as u64,
            buf: Some(buf),
            sums: Vec::new(),
            issued: now,
            csum_queued: now,
            csum_start: now,
            csum_end: now,
            submitted: now,
            io_done: now,
            endio_queued: now,
            endio_start: now,
            endio_end: now,
            finished: false,
            overlap: None,
        })
    }

    fn data(&self) -> &[u8] {
        self.buf.as_deref().expect("bio buffer present")
    }

    fn first_sector(&self) -> u64 {
        self.offset / SECTOR_SIZE
    }

    fn sectors(&self) -> u64 {
        self.data().len() as u64 / SECTOR_SIZE
    }

    fn record_into(&self, h: &mut StageHists) {
        let d = |a: Instant, b: Instant| b.saturating_duration_since(a);
        h.record(Stage::E2e, d(self.issued, self.endio_end));
        if self.op == Op::Write {
            h.record(Stage::CsumWait, d(self.csum_queued, self.csum_start));
            h.record(Stage::CsumRun, d(self.csum_start, self.csum_end));
        }
        h.record(Stage::Io, d(self.submitted, self.io_done));
        h.record(Stage::EndioWait, d(self.endio_queued, self.endio_start));
        h.record(Stage::EndioRun, d(self.endio_start, self.endio_end));
    }
}

/// A one-shot signal that a waiter can give up on when the case is aborted.
#[derive(Default)]
struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Completion {
    fn complete(&self) {
        *self.done.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits until completed (true) or the case is aborted (false).
    fn wait(&self, case: &CaseState) -> bool {
        let mut done = self.done.lock().unwrap();
        while !*done {
            if case.aborted() {
                return false;
            }
            done = self.cv.wait_timeout(done, POLL).unwrap().0;
        }
        true
    }
}

std::thread_local!(static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) });

/// Keeps each thread's last panic message, so that a work item that unwinds can be reported
/// with what it said, whichever pool caught it. The hook it replaces still runs (the
/// default one prints the message to stderr).
pub fn capture_panic_messages() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let at = info
                .location()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            previous(info);
        }));
    });
}

/// Runs its closure if dropped while the thread unwinds: how a work item reports its own
/// panic, whatever the pool that catches it does next.
struct OnUnwind<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnUnwind<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// The parts of a job the stage closures need, cheap to clone into each work item.
#[derive(Clone)]
struct StageCtx {
    case: Arc<CaseState>,
    store: Arc<CsumStore>,
    meta: Arc<dyn Strategy>,
    /// The strategy's name, for messages.
    strategy: Arc<str>,
    algo: Algo,
    file_label: Arc<str>,
    home: Sender<Homecoming>,
    /// False for diskless engines (null): reads return no data, so there is nothing to
    /// verify; the checksums are still computed, so the CPU work is the same.
    verify: bool,
}

type BioCell = Mutex<Option<Box<Bio>>>;

impl StageCtx {
    /// A work item of `stage` is unwinding: the case fails with the panic's message.
    fn panicked(&self, stage: &str) {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "(message not captured)".into());
        self.case.fail(format!(
            "work item panicked in the {stage} stage on strategy {}: {message}",
            self.strategy
        ));
    }

    /// A panicking item owned a bio: drop it (out of `cell`, if it sits in one, so that no
    /// ordered part can still send it) and tell the submitter it is gone.
    fn lost(&self, stage: &str, cell: Option<&BioCell>) {
        self.panicked(stage);
        if let Some(cell) = cell {
            drop(cell.lock().unwrap_or_else(PoisonError::into_inner).take());
        }
        let _ = self.home.send(Homecoming::Lost);
    }

    /// The csum stage: checksum every sector of a write, then send the bio home for
    /// submission. The send is the ordered part: ordered pools submit in issue order.
    fn csum_work(&self, bio: Box<Bio>) -> Work {
        let cell: Arc<BioCell> = Arc::new(Mutex::new(Some(bio)));
        let inject = self.case.injects_panic();
        let (ctx, home) = (self.clone(), self.home.clone());
        let run_cell = cell.clone();
        Work::with_ordered(
            move || {
                let _unwind = OnUnwind(|| ctx.lost("csum", Some(&run_cell)));
                if let Some(at) = inject {
                    panic!("injected by --inject panic@{at}");
                }
                let mut guard = run_cell.lock().unwrap();
                let bio = guard.as_mut().expect("bio in cell");
                bio.csum_start = Instant::now();
                let mut sums = std::mem::take(&mut bio.sums);
                sums.resize(bio.sectors() as usize * ctx.algo.len(), 0);
                ctx.algo.sectors(bio.data(), &mut sums);
                bio.sums = sums;
                bio.csum_end = Instant::now();
            },
            move || {
                let bio = cell.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(bio) = bio {
                    let _ = home.send(Homecoming::Bio(bio));
                }
            },
        )
    }

    /// The overlapping csum stage: checksums the buffer while the write carries it.
    fn overlap_csum_work(&self, bio: &mut Bio) -> Work {
        let overlap = Arc::new(OverlapCsum::default());
        bio.overlap = Some(overlap.clone());
        let data = bio.data();
        let shared = SharedBuf {
            ptr: data.as_ptr(),
            len: data.len(),
        };
        let inject = self.case.injects_panic();
        let ctx = self.clone();
        Work::new(move || {
            // The endio waiting for these sums goes on without them.
            let _unwind = OnUnwind(|| {
                ctx.panicked("csum");
                overlap.done.complete();
            });
            if let Some(at) = inject {
                panic!("injected by --inject panic@{at}");
            }
            let start = Instant::now();
            // SAFETY: see SharedBuf; the bio's owner waits for `done` before reuse.
            let data = unsafe { shared.bytes() };
            let mut sums = vec![0u8; data.len() / SECTOR_SIZE as usize * ctx.algo.len()];
            ctx.algo.sectors(data, &mut sums);
            *overlap.result.lock().unwrap() = Some((sums, start, Instant::now()));
            overlap.done.complete();
        })
    }

    /// The endio stage.
    fn endio_work(&self, mut bio: Box<Bio>) -> Work {
        let inject = self.case.injects_panic();
        let ctx = self.clone();
        Work::new(move || {
            let _unwind = OnUnwind(|| ctx.lost("endio", None));
            bio.endio_start = Instant::now();
            // Before anything can panic: the buffer must outlive the overlapping csum work.
            let summed = match bio.overlap.take() {
                Some(overlap) => overlap.finish_into(&mut bio),
                None => true,
            };
            if let Some(at) = inject {
                panic!("injected by --inject panic@{at}");
            }
            match bio.op {
                Op::Write if summed => ctx.finish_ordered_extent(&bio),
                Op::Write => {}
                Op::Read => ctx.verify(&mut bio),
            }
            bio.endio_end = Instant::now();
            bio.finished = true;
            let _ = ctx.home.send(Homecoming::Bio(bio));
        })
    }

    /// Finishing a write's ordered extent: record its checksums, write them as a metadata
    /// I/O, and wait for that I/O's own endio, which runs on the metadata endio pool. With
    /// one shared, bounded pool this wait can be for an item queued behind ourselves.
    fn finish_ordered_extent(&self, bio: &Bio) {
        let first = bio.first_sector();
        let unsummed = self.algo.len() == 0;
        let recorded = match unsummed {
            true => self.store.record_unsummed(first, bio.sectors()),
            false => self.store.record(first, &bio.sums),
        };
        if let Err(e) = recorded {
            self.case.fail(format!(
                "metadata write to {} for offset {} failed: {e}",
                self.store.path().display(),
                bio.offset
            ));
            return;
        }
        if unsummed {
            return;
        }
        let meta_done = Arc::new(Completion::default());
        let signal = meta_done.clone();
        self.meta.dispatch(Work::new(move || signal.complete()));
        meta_done.wait(&self.case);
    }

    /// Read endio: checksum what came back and compare every sector with the store. Sectors
    /// past the end of a truncated file are reported as such.
    fn verify(&self, bio: &mut Bio) {
        let sectors = bio.sectors();
        let whole = (bio.readable / SECTOR_SIZE).min(sectors);
        let len = self.algo.len();
        let mut sums = std::mem::take(&mut bio.sums);
        sums.resize(whole as usize * len, 0);
        self.algo
            .sectors(&bio.data()[..(whole * SECTOR_SIZE) as usize], &mut sums);
        if self.verify {
            let bad = self.store.verify(bio.first_sector(), &sums, whole);
            let truncated = (whole..sectors).map(|s| (bio.first_sector() + s, "truncated"));
            let bad = bad.into_iter().map(|(sector, bad)| {
                let kind = match bad {
                    Bad::Mismatch => "checksum mismatch",
                    Bad::Missing => "no checksum recorded",
                };
                (sector, kind)
            });
            for (sector, kind) in bad.chain(truncated) {
                self.case.mismatch(Mismatch {
                    file: self.file_label.to_string(),
                    offset: sector * SECTOR_SIZE,
                    kind: kind.into(),
                });
            }
        }
        bio.sums = sums;
    }
}

/// Runs one job to completion on the calling thread.
pub fn run_job(
    mut input: JobInput,
    pools: &Pools,
    case: &Arc<CaseState>,
    progress: &JobProgress,
) -> JobOutcome {
    capture_panic_messages();
    let job = input.job.clone();
    let (home_tx, home) = unbounded::<Homecoming>();
    let ctx = StageCtx {
        case: case.clone(),
        store: input.store.clone(),
        meta: pools.meta.clone(),
        strategy: pools.csum.name().into(),
        algo: input.algo,
        file_label: input.file_label.clone().into(),
        home: home_tx,
        verify: !input.engine.caps().diskless,
    };
    let depth = job.iodepth.max(1) as usize;
    let bio_size = job.bio_size() as usize;
    let mut free: Vec<AlignedBuf> = (0..depth).map(|_| AlignedBuf::new(bio_size)).collect();
    // Bios handed to the engine, by tag.
    let mut at_engine: Vec<Option<Box<Bio>>> = (0..depth).map(|_| None).collect();
    let mut filler = Filler::new(input.seed, bio_size);
    let mut io_offsets = Offsets::new(&job, input.seed);
    let mut directions = MixChooser::new(&job, input.seed);
    // The bios of the current I/O not yet issued, with the I/O's direction.
    let mut bio_offsets: VecDeque<(u64, Op)> = VecDeque::new();
    // With rate/rate_iops, when the next bio of each direction is due. Latency counts from
    // the due time, so falling behind shows up as latency (no coordinated omission).
    let limits = [Op::Read, Op::Write].map(|op| job.rate_limit(op));
    // A paced job reaps eagerly, so no completion waits behind the submitter's pacing.
    let paced = limits.iter().any(Option::is_some);
    let sync_engine = input.engine.caps().sync;
    let mut due = [None::<Instant>; 2];
    pin_to(&job.cpus_allowed, case, &input.file_label);
    let mut in_pipeline = 0usize;
    let mut exhausted = false;
    let mut completions: Vec<IoDone> = Vec::new();
    let mut to_submit: VecDeque<Box<Bio>> = VecDeque::new();
    // A bio received while blocked, handled with the others at the top of the next step.
    let mut arrived: Option<Homecoming> = None;
    let mut writes_since_fsync = 0u32;
    let mut stopping_since: Option<Instant> = None;
    let mut abandoned = 0u64;
    let start = Instant::now();

    // One step at a time: take what came home, submit what is ready, reap, then issue one
    // new bio. A bio is submitted as soon as its checksums are done, so inline's pipeline
    // is truly synchronous and the offload pools get the overlap the depth allows.
    loop {
        if stopping_since.is_none()
            && (case.aborted() || input.deadline.is_some_and(|d| Instant::now() >= d))
        {
            stopping_since = Some(Instant::now());
        }
        let mut progressed = false;

        for homecoming in arrived.take().into_iter().chain(home.try_iter()) {
            progressed = true;
            let mut bio = match homecoming {
                Homecoming::Bio(bio) => bio,
                Homecoming::Lost => {
                    free.push(AlignedBuf::new(bio_size));
                    in_pipeline -= 1;
                    continue;
                }
            };
            if !bio.finished {
                to_submit.push_back(bio);
                continue;
            }
            if input.ramp_end.is_none_or(|r| bio.endio_end >= r) {
                bio.record_into(&mut progress.hists.lock().unwrap());
                progress
                    .bytes
                    .fetch_add(bio.data().len() as u64, Ordering::Relaxed);
                progress.bios.fetch_add(1, Ordering::Relaxed);
            }
            free.push(bio.buf.take().expect("buffer"));
            in_pipeline -= 1;
            if bio.op == Op::Write && job.fsync > 0 {
                writes_since_fsync += 1;
                if writes_since_fsync >= job.fsync {
                    writes_since_fsync = 0;
                    if let Err(e) = progress.sync(input.engine.as_mut()) {
                        case.fail(format!("fsync of {} failed: {e}", input.file_label));
                    }
                }
            }
        }

        // Submit what is ready (reads, and writes back from the csum stage).
        while let Some(mut bio) = to_submit.pop_front() {
            progressed = true;
            let tag = at_engine
                .iter()
                .position(Option::is_none)
                .expect("a slot per bio");
            bio.submitted = Instant::now();
            let req = IoReq {
                op: bio.op,
                offset: bio.offset,
                buf: bio.buf.take().expect("buffer"),
                tag: tag as u64,
            };
            at_engine[tag] = Some(bio);
            if let Err(e) = input.engine.queue(req) {
                case.fail(format!(
                    "submitting I/O to {} failed: {e}",
                    input.file_label
                ));
                // The engine kept the buffer; the slot's bio is lost with it.
                at_engine[tag] = None;
                free.push(AlignedBuf::new(bio_size));
                in_pipeline -= 1;
            }
        }
        if let Err(e) = input.engine.commit() {
            case.fail(format!(
                "submitting I/O to {} failed: {e}",
                input.file_label
            ));
        }
        // An async engine is reaped once the pipeline is full or nothing more can be
        // issued, as fio does: reaping after every submit kept ~4 of 32 I/Os in flight.
        let room = stopping_since.is_none() && !exhausted && in_pipeline < depth;
        if sync_engine || !room || paced {
            progressed |= reap(&mut input, 0, &mut completions, case);
        }
        for done in completions.drain(..) {
            let mut bio = at_engine[done.req.tag as usize]
                .take()
                .expect("completion for a submitted bio");
            bio.io_done = Instant::now();
            bio.buf = Some(done.req.buf);
            case.io_completions.fetch_add(1, Ordering::Relaxed);
            let end = bio.offset + bio.data().len() as u64;
            let result = match done.result {
                // A read that runs off the end of a truncated file: verification reports
                // the sectors that are not there.
                Err(e)
                    if bio.op == Op::Read
                        && e.kind() == std::io::ErrorKind::UnexpectedEof
                        && end > input.data_end =>
                {
                    bio.readable = input.data_end.saturating_sub(bio.offset);
                    Ok(())
                }
                r => r,
            };
            match result {
                Ok(()) => {
                    bio.endio_queued = Instant::now();
                    pools.endio.dispatch(ctx.endio_work(bio));
                }
                Err(e) => {
                    if let Some(overlap) = bio.overlap.take() {
                        overlap.finish_into(&mut bio);
                    }
                    let what = if bio.op == Op::Write { "write" } else { "read" };
                    case.fail(format!(
                        "{what} error on {} at offset {} (strategy {}): {e}",
                        input.file_label, bio.offset, ctx.strategy
                    ));
                    free.push(bio.buf.take().expect("buffer"));
                    in_pipeline -= 1;
                }
            }
        }

        // Issue one new bio if there is room in the pipeline and it is due.
        let mut wait_until: Option<Instant> = None;
        if stopping_since.is_none() && !exhausted && in_pipeline < depth {
            if bio_offsets.is_empty() {
                match io_offsets.next() {
                    // I/Os larger than a bio are split, as btrfs does at 1 MiB.
                    Some(io) => {
                        let op = directions.next().expect("endless");
                        bio_offsets.extend((0..job.bs).step_by(bio_size).map(|o| (io + o, op)));
                    }
                    None => exhausted = true,
                }
            }
            if let Some(&(offset, op)) = bio_offsets.front() {
                let now = Instant::now();
                let slot = op as usize;
                let intended = limits[slot].map(|_| *due[slot].get_or_insert(start));
                if intended.is_some_and(|t| t > now) {
                    wait_until = intended;
                } else {
                    bio_offsets.pop_front();
                    progressed = true;
                    if let (Some(t), Some(rate)) = (intended, limits[slot]) {
                        due[slot] =
                            Some(t + Duration::from_secs_f64(bio_size as f64 / rate as f64));
                    }
                    let mut bio = Bio::new(op, offset, free.pop().expect("a buffer per slot"));
                    bio.issued = intended.unwrap_or(bio.issued);
                    in_pipeline += 1;
                    match op {
                        Op::Write => {
                            filler.fill(bio.buf.as_deref_mut().expect("buffer"), offset);
                            bio.csum_queued = Instant::now();
                            if pools.csum.overlaps_io() {
                                let work = ctx.overlap_csum_work(&mut bio);
                                pools.csum.dispatch(work);
                                to_submit.push_back(bio);
                            } else {
                                pools.csum.dispatch(ctx.csum_work(bio));
                            }
                        }
                        Op::Read => to_submit.push_back(bio),
                    }
                }
            }
        }
        progress
            .in_pipeline
            .store(in_pipeline as u64, Ordering::Relaxed);
        progress
            .at_engine
            .store(input.engine.in_flight() as u64, Ordering::Relaxed);

        if in_pipeline == 0 && (exhausted || stopping_since.is_some()) {
            break;
        }
        if progressed {
            continue;
        }
        // Nothing to do but wait: for I/O if any is in flight, else for a bio to come home.
        if input.engine.in_flight() > 0 {
            reap(&mut input, 1, &mut completions, case);
            continue;
        }
        let timeout = wait_until.map_or(POLL, |t| {
            t.saturating_duration_since(Instant::now()).min(POLL)
        });
        match home.recv_timeout(timeout) {
            Ok(homecoming) => arrived = Some(homecoming),
            Err(RecvTimeoutError::Timeout) => {
                if case.aborted() && stopping_since.is_some_and(|s| s.elapsed() > DRAIN_GRACE) {
                    // A pool that cannot finish what it holds: give those bios up.
                    abandoned = in_pipeline as u64;
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
        }
    }
    progress.in_pipeline.store(abandoned, Ordering::Relaxed);
    if job.rw.is_write() && job.end_fsync && !case.aborted() {
        if let Err(e) = progress.sync(input.engine.as_mut()) {
            case.fail(format!("end_fsync of {} failed: {e}", input.file_label));
        }
    }
    JobOutcome {
        start: input.ramp_end.map_or(start, |r| r.max(start)),
        end: Instant::now(),
        abandoned,
    }
}

/// Pins the calling submitter to `cpus` (fio's cpus_allowed); empty means anywhere.
fn pin_to(cpus: &[usize], case: &CaseState, label: &str) {
    if cpus.is_empty() {
        return;
    }
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for indices < CPU_SETSIZE.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        case.fail(format!(
            "cpus_allowed={cpus:?} for the job on {label}: {}",
            std::io::Error::last_os_error()
        ));
    }
}

/// Reaps completions; returns whether any arrived. Errors stop the case.
fn reap(input: &mut JobInput, min: usize, out: &mut Vec<IoDone>, case: &CaseState) -> bool {
    let before = out.len();
    if let Err(e) = input.engine.reap(min, out) {
        case.fail(format!("reaping I/O on {} failed: {e}", input.file_label));
    }
    out.len() > before
}
