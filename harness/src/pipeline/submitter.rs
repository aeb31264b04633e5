//! One job's submitter: the state of its loop ([`super::run_job`]) and one method per step;
//! what happens to a bio once the engine completes it is in [`complete`].
//!
//! The hot path, for the `inline` strategy, is this thread alone: a bio comes from the
//! job's pool, is checksummed and verified in place (no work item, no trip through the
//! home channel), and its latencies go into the job's own histograms, handed to the
//! collector once an interval. Stages run by pools still go by work items and come home.
//! Each event is one clock reading ([`Stamp`]); inline work has no queue, so the reading
//! that ends one stage starts the next.

mod complete;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use strategies::inline::Inline;
use workloads::buf::Filler;
use workloads::offsets::{ClonePattern, FileSet, Io, IoPattern};
use workloads::verify::VerifyPass;
use workloads::{AlignedBuf, IoDone, IoReq, Op};

use super::bio::{Bio, FileLock, Homecoming};
use super::pacer::{Due, MinRate, Pacer};
use super::stages::StageCtx;
use super::state::{depth_level, CaseState, JobInput, JobOutcome, JobProgress, DEPTH_LEVELS};
use super::think::Think;
use super::{Pools, DRAIN_GRACE, POLL};
use crate::measure::clock::Stamp;
use crate::measure::fiolog::JobLog;
use crate::measure::StageCounts;
use complete::Batching;

/// One bio to issue: which file, where, how long, which way, and whether it reads back a
/// write of the pass (`verify_backlog`).
#[derive(Clone, Copy)]
struct NextBio {
    file: usize,
    offset: u64,
    len: u64,
    op: Op,
    verify: bool,
}

/// The I/Os of one pass of a job.
// One per job, and the large variant is the one the hot path reads: not worth a box.
#[allow(clippy::large_enum_variant)]
enum Ios {
    /// The measured pass: the job's own pattern, over its one file (unwrapped: the hot
    /// path asks it for every I/O) or several.
    One(IoPattern),
    Files(Box<FileSet>),
    /// The verify phase: what the job wrote, read back, one file after another (the
    /// current one last).
    Verify(Vec<(usize, VerifyPass)>),
    /// The verify phase of a job with `verify_backlog`: the writes no backlog read back.
    Listed(std::vec::IntoIter<(usize, Io)>),
}

impl Ios {
    /// The next I/O, and the index of its file.
    fn next(&mut self) -> Option<(usize, Io)> {
        match self {
            Ios::One(pattern) => pattern.next().map(|io| (0, io)),
            Ios::Files(files) => files.next(),
            Ios::Listed(ios) => ios.next(),
            Ios::Verify(files) => loop {
                let (file, pass) = files.last_mut()?;
                match pass.next() {
                    Some(io) => return Some((*file, io)),
                    None => drop(files.pop()),
                }
            },
        }
    }

    /// The verify phase over each of `input`'s files: what the store has sums for in the
    /// clone's region of it; after a pass with `verify_backlog`, the writes it left.
    fn verify(input: &mut JobInput, pass: Pass) -> Ios {
        if pass == Pass::Verify && input.job.verify_backlog > 0 {
            return Ios::Listed(std::mem::take(&mut input.unverified).into_iter());
        }
        let job = &input.job;
        let sizes = job.file_sizes(input.jobnum);
        let passes = input.files.iter().enumerate().rev().map(|(f, file)| {
            let own = job.for_file(sizes[f]);
            let region = own.region(input.jobnum, file.data_end);
            (
                f,
                VerifyPass::new(file.store.clone(), region, job.bio_size()),
            )
        });
        Ios::Verify(passes.collect())
    }
}

/// Which of a job's passes a submitter runs: the measured one, or fio's verify phase after
/// it, whose reads are verified but not counted in the case's figures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Measured,
    Verify,
}

/// The bios a job issues, in order: each I/O of its pass, split into bios of at most
/// 1 MiB (as btrfs splits them).
struct BioSource {
    ios: Ios,
    /// The current I/O (and its file) and how far into it the next bio starts; whether it
    /// reads back a write.
    current: Option<(usize, Io)>,
    verifying: bool,
    into: u64,
    bio_size: u64,
    exhausted: bool,
    backlog: Option<Backlog>,
}

/// fio's `verify_backlog`: the pass's writes since the last read-back, and the read-backs
/// due, which come before the pass's next I/O.
struct Backlog {
    every: usize,
    written: Vec<(usize, Io)>,
    due: std::collections::VecDeque<(usize, Io)>,
}

impl Backlog {
    fn of(job: &workloads::JobSpec, pass: Pass) -> Option<Backlog> {
        let on = pass == Pass::Measured && job.verify_backlog > 0 && job.verify_phase();
        on.then(|| Backlog {
            every: job.verify_backlog.min(1 << 20) as usize,
            written: Vec::new(),
            due: std::collections::VecDeque::new(),
        })
    }

    /// Notes an I/O of the pass: every `every` writes, they are due to be read back.
    fn note(&mut self, (file, io): (usize, Io)) {
        if io.op != Op::Write {
            return;
        }
        self.written.push((file, Io { op: Op::Read, ..io }));
        if self.written.len() >= self.every {
            self.due.extend(self.written.drain(..));
        }
    }

    /// What was written and not read back yet, for the verify phase.
    fn left(self) -> Vec<(usize, Io)> {
        self.due.into_iter().chain(self.written).collect()
    }
}

impl BioSource {
    /// The bios of `input`'s `pass`.
    fn new(input: &mut JobInput, pass: Pass) -> BioSource {
        let job = &input.job;
        let (bio_size, backlog) = (job.bio_size(), Backlog::of(job, pass));
        let ios = match pass {
            Pass::Measured if !job.verify_only => {
                match ClonePattern::new(job, input.jobnum, &input.data_ends(), input.seed) {
                    ClonePattern::One(pattern) => Ios::One(pattern),
                    ClonePattern::Many(files) => Ios::Files(files),
                }
            }
            // A verify_only job's measured pass is its verify phase.
            Pass::Measured | Pass::Verify => Ios::verify(input, pass),
        };
        BioSource {
            ios,
            current: None,
            verifying: false,
            into: 0,
            bio_size,
            exhausted: false,
            backlog,
        }
    }

    /// The next bio to issue, left in place until [`BioSource::pop`]; `None` once the job
    /// has issued all its I/O. Asked several times per bio: inlined.
    #[inline]
    fn peek(&mut self) -> Option<NextBio> {
        if self.current.is_none() {
            self.next_io();
        }
        let (file, Io { offset, len, op }) = self.current?;
        Some(NextBio {
            file,
            offset: offset + self.into,
            len: self.bio_size.min(len - self.into),
            op,
            verify: self.verifying,
        })
    }

    /// The next I/O: a read-back that is due, else the pass's next.
    #[inline]
    fn next_io(&mut self) {
        self.into = 0;
        if let Some(due) = self.backlog.as_mut().and_then(|b| b.due.pop_front()) {
            (self.current, self.verifying) = (Some(due), true);
            return;
        }
        if self.exhausted {
            return;
        }
        self.verifying = false;
        self.current = self.ios.next();
        match (self.current, &mut self.backlog) {
            (None, _) => self.exhausted = true,
            (Some(io), Some(backlog)) => backlog.note(io),
            (Some(_), None) => {}
        }
    }

    fn pop(&mut self) {
        self.into += self.bio_size;
        if self.current.is_some_and(|(_, io)| self.into >= io.len) {
            self.current = None;
        }
    }
}

/// Bios handed to the engine, by tag, with the free tags on a list.
struct AtEngine {
    slots: Vec<Option<Box<Bio>>>,
    free: Vec<usize>,
}

impl AtEngine {
    fn new(depth: usize) -> AtEngine {
        AtEngine {
            slots: (0..depth).map(|_| None).collect(),
            free: (0..depth).rev().collect(),
        }
    }

    fn put(&mut self, bio: Box<Bio>) -> u64 {
        let tag = self.free.pop().expect("a slot per bio");
        self.slots[tag] = Some(bio);
        tag as u64
    }

    fn take(&mut self, tag: u64) -> Box<Bio> {
        let bio = self.slots[tag as usize]
            .take()
            .expect("completion for a submitted bio");
        self.free.push(tag as usize);
        bio
    }
}

/// Most bios one issue step starts (with inline work on a synchronous engine each runs its
/// whole course within the step): the loop's other duties come round at least this often.
const MOST_PER_STEP: usize = 64;

pub(super) struct Submitter<'a> {
    input: JobInput,
    pools: &'a Pools,
    case: &'a CaseState,
    progress: &'a JobProgress,
    ctx: Arc<StageCtx>,
    /// The csum and endio strategies when they are `inline`: their work runs right here.
    csum_here: Option<&'a Inline>,
    endio_here: Option<&'a Inline>,
    home: Receiver<Homecoming>,
    depth: usize,
    bio_size: usize,
    /// Bios not in the pipeline, each with its buffer. Boxed: bios travel to the pools and
    /// home again by pointer.
    #[allow(clippy::vec_box)]
    free: Vec<Box<Bio>>,
    at_engine: AtEngine,
    source: BioSource,
    /// Only the measured pass counts bytes and latencies into the case's figures.
    pass: Pass,
    filler: Filler,
    pacer: Pacer,
    min_rate: Option<MinRate>,
    think: Option<Think>,
    batch: Batching,
    /// Bios between issue and retirement.
    in_pipeline: usize,
    /// Bios a pool's work item holds: they come home.
    away: usize,
    /// Refused an extent lock since the last wake: a wake will come home.
    refused: bool,
    /// Queued at the engine since the last commit.
    queued: usize,
    /// Reaped from the engine, not handled yet, oldest first; `reaped` is where the engine
    /// puts them.
    completions: VecDeque<IoDone>,
    reaped: Vec<IoDone>,
    /// A homecoming received while waiting, handled with the others at the next step.
    arrived: Option<Homecoming>,
    /// The next bio is not due before this stamp (rate limiting).
    not_before: Option<Stamp>,
    writes_since_fsync: u32,
    stopping_since: Option<Instant>,
    abandoned: u64,
    /// A synchronous engine completes in `queue`: reap after every submission.
    sync_engine: bool,
    start: Instant,
    deadline: Option<Stamp>,
    ramp_end: Option<Stamp>,
    /// The latest clock reading of this thread's own.
    now: Stamp,
    /// Latencies recorded since the last handover, and what was counted, published as
    /// totals.
    hists: StageCounts,
    /// fio's logs, when the job asks for any (boxed: a job without pays one pointer).
    log: Option<Box<JobLog>>,
    epoch_seen: u64,
    /// Bytes and bios counted, per direction (`op_index`).
    moved: [(u64, u64); 2],
    /// Bytes of the pass's own writes read back and verified (`verify_backlog`): counted
    /// with the verify phase, not in the figures.
    read_back: u64,
    /// Submissions by the depth of the pipeline at the time (fio's `iodepth_level`).
    depth_levels: [u64; DEPTH_LEVELS],
    io_completions: u64,
}

impl<'a> Submitter<'a> {
    pub fn new(
        mut input: JobInput,
        pass: Pass,
        pools: &'a Pools,
        case: &'a Arc<CaseState>,
        progress: &'a JobProgress,
    ) -> Submitter<'a> {
        let (home_tx, home) = unbounded::<Homecoming>();
        let ctx = Arc::new(StageCtx {
            case: case.clone(),
            files: input.files.clone(),
            meta: pools.meta.clone(),
            strategy: pools.csum.name().into(),
            algo: input.algo,
            home: home_tx,
            verify: !input.engine.caps().diskless,
        });
        let source = BioSource::new(&mut input, pass);
        let job = &input.job;
        let depth = job.iodepth.max(1) as usize;
        let bio_size = job.bio_size() as usize;
        pin_to(&job.cpus_allowed, case, &input.files_label());
        let (start, now) = (Instant::now(), Stamp::now());
        let mut submitter = Submitter {
            depth,
            bio_size,
            free: (0..depth).map(|_| Bio::new(bio_size)).collect(),
            at_engine: AtEngine::new(depth),
            source,
            pass,
            filler: Filler::new(input.seed, bio_size),
            pacer: Pacer::new(job, now, input.seed),
            min_rate: MinRate::of(
                job,
                Stamp::of(input.ramp_end.map_or(start, |r| r.max(start))),
            ),
            think: Think::of(job),
            batch: Batching::of(job),
            sync_engine: input.engine.caps().sync,
            csum_here: pools.csum.as_inline().filter(|_| !pools.csum.overlaps_io()),
            endio_here: pools.endio.as_inline(),
            in_pipeline: 0,
            away: 0,
            refused: false,
            queued: 0,
            completions: VecDeque::with_capacity(depth),
            reaped: Vec::with_capacity(depth),
            arrived: None,
            not_before: None,
            writes_since_fsync: 0,
            stopping_since: None,
            abandoned: 0,
            start,
            deadline: input.deadline.map(Stamp::of),
            ramp_end: input.ramp_end.map(Stamp::of),
            now,
            hists: StageCounts::default(),
            // The verify phase is in no log, as it is in no figure.
            log: JobLog::new(
                job,
                input.number,
                input.engine.caps().sync,
                Stamp::of(input.ramp_end.map_or(start, |r| r.max(start))),
            )
            .filter(|_| pass == Pass::Measured)
            .map(Box::new),
            epoch_seen: progress.hists.epoch(),
            moved: [(0, 0); 2],
            read_back: 0,
            depth_levels: [0; DEPTH_LEVELS],
            // The watchdog sees completions go on across the passes.
            io_completions: progress.io_completions.load(Ordering::Relaxed),
            ctx,
            home,
            input,
            pools,
            case,
            progress,
        };
        submitter.register_buffers();
        submitter
    }

    /// Hands the pool's buffers to an engine that registers them (`fixedbufs`), from the
    /// job's own thread.
    fn register_buffers(&mut self) {
        let bufs: Vec<&AlignedBuf> = self.free.iter().filter_map(|b| b.buf.as_ref()).collect();
        if let Err(e) = self.input.engine.register_buffers(&bufs) {
            let label = self.input.files_label();
            self.case.fail(format!("setting up I/O on {label}: {e}"));
        }
    }

    /// A clock reading, kept as the latest.
    fn clock(&mut self) -> Stamp {
        self.now = Stamp::now();
        self.now
    }

    /// Notes when the job was told to stop: an abort, a signal, its deadline, or the case
    /// having measured enough (steady state).
    pub fn note_stop(&mut self) {
        let deadline = self.deadline.is_some_and(|d| self.now >= d);
        let told = self.case.aborted() || self.case.ended_early();
        if self.stopping_since.is_none() && (told || deadline) {
            self.stopping_since = Some(Instant::now());
        }
    }

    /// Whether a new bio may enter the pipeline.
    fn room(&self) -> bool {
        self.stopping_since.is_none()
            && !self.source.exhausted
            && self.in_pipeline < self.depth
            && !self.think.as_ref().is_some_and(Think::due)
    }

    /// fio's think time: once due and the pipeline is empty, the job stalls (not before
    /// nothing: once all its I/O is issued, or it is stopping, it ends instead).
    pub fn think(&mut self) -> bool {
        let Some(think) = &mut self.think else {
            return false;
        };
        if self.stopping_since.is_some() || self.source.peek().is_none() {
            return false;
        }
        let stalled = think.stall_if_due(
            self.in_pipeline,
            self.input.deadline,
            self.case,
            self.progress,
        );
        if stalled {
            let now = self.clock();
            self.pacer.resumed(now);
        }
        stalled
    }

    /// Everything the stages sent home: writes back from the csum stage go to the engine,
    /// finished bios retire. Only looks when something can come.
    pub fn take_home(&mut self) -> bool {
        if self.away == 0 && !self.refused && self.arrived.is_none() {
            return false;
        }
        let mut progressed = false;
        while let Some(homecoming) = self.arrived.take().or_else(|| self.home.try_recv().ok()) {
            progressed = true;
            match homecoming {
                Homecoming::Bio(bio) if !bio.finished => {
                    self.away -= 1;
                    let at = self.clock();
                    self.submit(bio, at);
                }
                Homecoming::Bio(bio) => {
                    self.away -= 1;
                    self.retire(bio);
                }
                Homecoming::Lost(lock) => {
                    self.away -= 1;
                    self.give_up(lock, None);
                }
                Homecoming::Wake => self.refused = false,
            }
        }
        self.commit();
        progressed
    }

    /// Issues bios while there is room (each due, and clear of in-flight I/O that
    /// overlaps it in a way that forbids it), then submits what is queued. A write is
    /// filled and goes to the csum stage; a read goes straight to the engine.
    pub fn issue(&mut self) -> bool {
        self.not_before = None;
        let mut issued = 0;
        while issued < self.depth.max(MOST_PER_STEP) && self.issue_one() {
            issued += 1;
        }
        self.commit();
        issued > 0
    }

    fn issue_one(&mut self) -> bool {
        if !self.room() {
            return false;
        }
        let Some(NextBio {
            file,
            offset,
            len,
            op,
            verify,
        }) = self.source.peek()
        else {
            return false;
        };
        let now = self.clock();
        if self.deadline.is_some_and(|d| now >= d) {
            self.note_stop();
            return false;
        }
        let intended = match self.pacer.check(op, now) {
            Due::Now(intended) => intended,
            Due::At(t) => {
                self.not_before = Some(t);
                return false;
            }
        };
        if let Some(flow) = self.input.flow.as_ref().filter(|f| f.ahead()) {
            self.not_before = Some(now.after(flow.pause()));
            return false;
        }
        let lock = match &self.input.files[file].extents {
            None => None,
            Some(extents) => match extents.try_lock(offset, len, op, &self.ctx.home) {
                Some(lock) => Some(FileLock { file, lock }),
                // Woken by the release; meanwhile the rest of the loop goes on.
                None => {
                    self.refused = true;
                    return false;
                }
            },
        };
        self.source.pop();
        self.pacer.issued(op, intended);
        if let Some(flow) = &mut self.input.flow {
            flow.issued();
        }
        if let Some(think) = &mut self.think {
            think.counted(true);
        }
        let mut bio = self.free.pop().expect("a bio per slot");
        let intended = self.pacer.counts_from(intended, now);
        bio.start(op, (file, offset, len), lock, intended);
        bio.read_back = verify;
        self.in_pipeline += 1;
        match op {
            Op::Write => self.send_to_csum(bio),
            Op::Read => self.submit(bio, now),
        }
        true
    }

    fn send_to_csum(&mut self, mut bio: Box<Bio>) {
        self.filler
            .fill(bio.buf.as_mut().expect("buffer"), bio.offset);
        bio.csum_queued = self.clock();
        if self.pools.csum.overlaps_io() {
            let work = self.ctx.overlap_csum_work(&mut bio);
            self.pools.csum.dispatch(work);
            let at = self.clock();
            self.submit(bio, at);
            return;
        }
        let Some(inline) = self.csum_here else {
            self.away += 1;
            self.pools.csum.dispatch(self.ctx.csum_work(bio));
            return;
        };
        let (ctx, inject) = (&self.ctx, self.case.injects_panic());
        let start = bio.csum_queued;
        let summed = inline.run(|| {
            StageCtx::inject(inject);
            ctx.checksum(&mut bio, start);
        });
        match summed {
            Some(()) => {
                let at = bio.csum_end;
                self.submit(bio, at);
            }
            None => {
                self.ctx.panicked("csum");
                let lock = bio.lock.take();
                self.give_up(lock, Some(bio));
            }
        }
    }

    /// Queues a bio at the engine, submitted at `at`; commits once a batch is queued
    /// (`iodepth_batch_submit`). A synchronous engine has done the I/O by then: its
    /// completion is handled at once.
    fn submit(&mut self, mut bio: Box<Bio>, at: Stamp) {
        bio.submitted = at;
        if self.ramp_end.is_none_or(|r| at >= r) {
            self.depth_levels[depth_level(self.in_pipeline)] += 1;
        }
        let (op, file, offset) = (bio.op, bio.file as u32, bio.offset);
        let buf = bio.buf.take().expect("buffer");
        let tag = self.at_engine.put(bio);
        if let Err(e) = self.input.engine.queue(IoReq {
            op,
            file,
            offset,
            buf,
            tag,
        }) {
            self.submit_failed(e);
            // The engine kept the buffer; the bio is given up without it.
            let mut bio = self.at_engine.take(tag);
            let lock = bio.lock.take();
            self.give_up(lock, Some(bio));
            return;
        }
        if self.sync_engine {
            self.reap(0);
            self.complete_ready(usize::MAX);
            return;
        }
        self.queued += 1;
        if self.queued >= self.batch.submit {
            self.commit();
        }
    }

    /// Submits what is queued at the engine.
    fn commit(&mut self) {
        if self.queued == 0 {
            return;
        }
        self.queued = 0;
        if let Err(e) = self.input.engine.commit() {
            self.submit_failed(e);
        }
    }

    fn submit_failed(&self, e: std::io::Error) {
        let label = self.input.files_label();
        self.case
            .fail(format!("submitting I/O to {label} failed: {e}"));
    }

    /// Tells the collector and the watchdog where the job stands, and hands its latencies
    /// over when the collector has asked.
    pub fn publish(&mut self) {
        let progress = self.progress;
        let at_engine = self.input.engine.in_flight();
        progress
            .in_pipeline
            .store(self.in_pipeline as u64, Ordering::Relaxed);
        progress
            .at_engine
            .store(at_engine as u64, Ordering::Relaxed);
        progress
            .io_completions
            .store(self.io_completions, Ordering::Relaxed);
        if self.pass != Pass::Measured {
            return;
        }
        for (&(bytes, bios), published) in self.moved.iter().zip(&progress.by_direction) {
            published.bytes.store(bytes, Ordering::Relaxed);
            published.bios.store(bios, Ordering::Relaxed);
        }
        let (bytes, bios) = self.moved_total();
        progress.bytes.store(bytes, Ordering::Relaxed);
        progress.bios.store(bios, Ordering::Relaxed);
        self.check_min_rate();
        let epoch = progress.hists.epoch();
        if epoch != self.epoch_seen {
            self.epoch_seen = epoch;
            progress.hists.hand_over(&mut self.hists, epoch);
        }
    }

    /// fio's `rate_min`: a direction below its floor fails the job, naming it.
    fn check_min_rate(&mut self) {
        let moved = self.moved.map(|(bytes, _)| bytes);
        if let Some(Err(e)) = self.min_rate.as_mut().map(|m| m.check(self.now, moved)) {
            let label = self.input.files_label();
            self.case.fail(format!("job on {label}: {e}"));
            self.min_rate = None;
        }
    }

    /// Bytes and bios moved, both directions together.
    fn moved_total(&self) -> (u64, u64) {
        let [(read_bytes, read_bios), (write_bytes, write_bios)] = self.moved;
        (read_bytes + write_bytes, read_bios + write_bios)
    }

    /// Nothing in the pipeline, and nothing more to issue.
    pub fn drained(&self) -> bool {
        self.in_pipeline == 0 && (self.source.exhausted || self.stopping_since.is_some())
    }

    /// Waits for whatever comes first: an I/O if any is in flight, else a homecoming, a due
    /// time or a released lock. False when the job gives up on bios a stuck pool holds.
    pub fn wait(&mut self) -> bool {
        if self.input.engine.in_flight() > 0 {
            self.commit();
            self.reap(self.batch.least_to_wait_for());
            self.clock();
            return true;
        }
        let timeout = self.not_before.map_or(POLL, |t| {
            t.saturating_duration_since(Stamp::now()).min(POLL)
        });
        let received = self.home.recv_timeout(timeout);
        self.clock();
        match received {
            Ok(homecoming) => self.arrived = Some(homecoming),
            Err(RecvTimeoutError::Timeout) => {
                let grace_over = self
                    .stopping_since
                    .is_some_and(|s| s.elapsed() > DRAIN_GRACE);
                if self.case.aborted() && grace_over {
                    // A pool that cannot finish what it holds: give those bios up.
                    self.abandoned = self.in_pipeline as u64;
                    return false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
        }
        true
    }

    /// Ends the job: everything counted handed over, then its `end_fsync`, and what it
    /// reports.
    /// The pass's outcome, and the job's input for a pass after it.
    pub fn finish(mut self) -> (JobOutcome, JobInput) {
        self.publish();
        if self.pass == Pass::Measured {
            self.progress.hists.hand_over_all(&mut self.hists);
            for (published, &n) in self.progress.depth_levels.iter().zip(&self.depth_levels) {
                published.store(n, Ordering::Relaxed);
            }
        }
        self.progress
            .in_pipeline
            .store(self.abandoned, Ordering::Relaxed);
        let job = &self.input.job;
        if job.rw.is_write() && job.end_fsync && !self.case.aborted() {
            for (f, file) in self.input.files.iter().enumerate() {
                if let Err(e) = self.progress.sync(self.input.engine.as_mut(), f) {
                    let label = &file.label;
                    self.case.fail(format!("end_fsync of {label} failed: {e}"));
                }
            }
        }
        let end = Instant::now();
        if let Some(log) = &mut self.log {
            log.finish(Stamp::of(end));
        }
        if let Some(backlog) = self.source.backlog.take() {
            self.input.unverified = backlog.left();
        }
        let outcome = JobOutcome {
            log: self.log.take(),
            start: self
                .input
                .ramp_end
                .map_or(self.start, |r| r.max(self.start)),
            end,
            abandoned: self.abandoned,
            bytes: self.moved_total().0,
            read_back: self.read_back,
            verified: None,
        };
        (outcome, self.input)
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
