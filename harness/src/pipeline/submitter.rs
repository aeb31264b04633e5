//! One job's submitter: the state of its loop ([`super::run_job`]) and one method per step.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use workloads::buf::Filler;
use workloads::offsets::{MixChooser, Offsets};
use workloads::{AlignedBuf, IoDone, IoReq, JobSpec, Op};

use super::bio::{Bio, Homecoming};
use super::extent::ExtentLock;
use super::pacer::{Due, Pacer};
use super::stages::StageCtx;
use super::state::{CaseState, JobInput, JobOutcome, JobProgress};
use super::{Pools, DRAIN_GRACE, POLL};

/// One bio to issue: where, how long, which way.
#[derive(Clone, Copy)]
struct NextBio {
    offset: u64,
    len: u64,
    op: Op,
}

/// The bios a job issues, in order: each I/O's offset and direction, split into bios of at
/// most 1 MiB (as btrfs splits them).
struct BioSource {
    offsets: Offsets,
    directions: MixChooser,
    /// The bios of the current I/O not yet issued.
    pending: VecDeque<NextBio>,
    bs: u64,
    bio_size: u64,
    exhausted: bool,
}

impl BioSource {
    fn new(job: &JobSpec, seed: u64) -> BioSource {
        BioSource {
            offsets: Offsets::new(job, seed),
            directions: MixChooser::new(job, seed),
            pending: VecDeque::new(),
            bs: job.bs,
            bio_size: job.bio_size(),
            exhausted: false,
        }
    }

    /// The next bio to issue, left in place until [`BioSource::pop`]; `None` once the job
    /// has issued all its I/O.
    fn peek(&mut self) -> Option<NextBio> {
        if self.pending.is_empty() && !self.exhausted {
            match self.offsets.next() {
                Some(io) => {
                    let op = self.directions.next().expect("endless");
                    let (bs, most) = (self.bs, self.bio_size);
                    self.pending
                        .extend((0..bs).step_by(most as usize).map(|o| NextBio {
                            offset: io + o,
                            len: most.min(bs - o),
                            op,
                        }));
                }
                None => self.exhausted = true,
            }
        }
        self.pending.front().copied()
    }

    fn pop(&mut self) {
        self.pending.pop_front();
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

pub(super) struct Submitter<'a> {
    input: JobInput,
    pools: &'a Pools,
    case: &'a CaseState,
    progress: &'a JobProgress,
    ctx: StageCtx,
    home: Receiver<Homecoming>,
    depth: usize,
    bio_size: usize,
    free: Vec<AlignedBuf>,
    at_engine: AtEngine,
    source: BioSource,
    filler: Filler,
    pacer: Pacer,
    /// Bios between issue and retirement.
    in_pipeline: usize,
    completions: Vec<IoDone>,
    /// Reads, and writes back from the csum stage, waiting to be queued at the engine.
    to_submit: VecDeque<Box<Bio>>,
    /// A homecoming received while waiting, handled with the others at the next step.
    arrived: Option<Homecoming>,
    /// The next bio is not due before this instant (rate limiting).
    not_before: Option<Instant>,
    writes_since_fsync: u32,
    stopping_since: Option<Instant>,
    abandoned: u64,
    /// A synchronous engine completes in `queue`: reap after every submission.
    sync_engine: bool,
    start: Instant,
}

impl<'a> Submitter<'a> {
    pub fn new(
        input: JobInput,
        pools: &'a Pools,
        case: &'a Arc<CaseState>,
        progress: &'a JobProgress,
    ) -> Submitter<'a> {
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
        let job = &input.job;
        let depth = job.iodepth.max(1) as usize;
        let bio_size = job.bio_size() as usize;
        pin_to(&job.cpus_allowed, case, &input.file_label);
        let start = Instant::now();
        Submitter {
            depth,
            bio_size,
            free: (0..depth).map(|_| AlignedBuf::new(bio_size)).collect(),
            at_engine: AtEngine::new(depth),
            source: BioSource::new(job, input.seed),
            filler: Filler::new(input.seed, bio_size),
            pacer: Pacer::new(job, start),
            sync_engine: input.engine.caps().sync,
            in_pipeline: 0,
            completions: Vec::new(),
            to_submit: VecDeque::new(),
            arrived: None,
            not_before: None,
            writes_since_fsync: 0,
            stopping_since: None,
            abandoned: 0,
            start,
            ctx,
            home,
            input,
            pools,
            case,
            progress,
        }
    }

    /// Notes when the job was told to stop: an abort, a signal, or its deadline.
    pub fn note_stop(&mut self) {
        let deadline = self.input.deadline.is_some_and(|d| Instant::now() >= d);
        if self.stopping_since.is_none() && (self.case.aborted() || deadline) {
            self.stopping_since = Some(Instant::now());
        }
    }

    /// Whether a new bio may enter the pipeline.
    fn room(&self) -> bool {
        self.stopping_since.is_none() && !self.source.exhausted && self.in_pipeline < self.depth
    }

    /// Everything the stages sent home: writes back from the csum stage go to the engine,
    /// finished bios retire.
    pub fn take_home(&mut self) -> bool {
        let mut progressed = false;
        while let Some(homecoming) = self.arrived.take().or_else(|| self.home.try_recv().ok()) {
            progressed = true;
            match homecoming {
                Homecoming::Bio(bio) if !bio.finished => self.to_submit.push_back(bio),
                Homecoming::Bio(bio) => self.retire(bio),
                Homecoming::Lost(lock) => self.give_up(lock, None),
                Homecoming::Wake => {}
            }
        }
        progressed
    }

    /// A bio that went all the way: counted (after the ramp), its buffer reused.
    fn retire(&mut self, mut bio: Box<Bio>) {
        if self.input.ramp_end.is_none_or(|r| bio.endio_end >= r) {
            bio.record_into(&mut self.progress.hists.lock().unwrap());
            let bytes = bio.data().len() as u64;
            self.progress.bytes.fetch_add(bytes, Ordering::Relaxed);
            self.progress.bios.fetch_add(1, Ordering::Relaxed);
        }
        let (lock, buf, op) = (bio.lock, bio.buf.take(), bio.op);
        self.give_up(lock, buf);
        if op == Op::Write {
            self.count_write();
        }
    }

    /// A bio leaves the pipeline, done or not: its lock is released and its buffer (or,
    /// when the buffer went with it, a new one) goes back on the free list.
    fn give_up(&mut self, lock: Option<ExtentLock>, buf: Option<AlignedBuf>) {
        if let (Some(lock), Some(extents)) = (lock, &self.input.extents) {
            extents.unlock(lock);
        }
        self.free
            .push(buf.unwrap_or_else(|| AlignedBuf::new(self.bio_size)));
        self.in_pipeline -= 1;
    }

    /// fio's `fsync=N`: an fsync after every N writes.
    fn count_write(&mut self) {
        let every = self.input.job.fsync;
        if every == 0 {
            return;
        }
        self.writes_since_fsync += 1;
        if self.writes_since_fsync >= every {
            self.writes_since_fsync = 0;
            if let Err(e) = self.progress.sync(self.input.engine.as_mut()) {
                let label = &self.input.file_label;
                self.case.fail(format!("fsync of {label} failed: {e}"));
            }
        }
    }

    /// Queues every ready bio at the engine and submits them.
    pub fn submit_ready(&mut self) -> bool {
        let progressed = !self.to_submit.is_empty();
        while let Some(mut bio) = self.to_submit.pop_front() {
            bio.submitted = Instant::now();
            let (op, offset, buf) = (bio.op, bio.offset, bio.buf.take().expect("buffer"));
            let tag = self.at_engine.put(bio);
            if let Err(e) = self.input.engine.queue(IoReq {
                op,
                offset,
                buf,
                tag,
            }) {
                self.submit_failed(e);
                // The engine kept the buffer; the bio is given up without it.
                let lock = self.at_engine.take(tag).lock;
                self.give_up(lock, None);
            }
        }
        if let Err(e) = self.input.engine.commit() {
            self.submit_failed(e);
        }
        progressed
    }

    fn submit_failed(&self, e: std::io::Error) {
        let label = &self.input.file_label;
        self.case
            .fail(format!("submitting I/O to {label} failed: {e}"));
    }

    /// Reaps completions when fio would: always for a synchronous engine or a paced job (so
    /// no completion waits behind the pacing), else once the pipeline is full or nothing more
    /// can be issued (reaping after every submit kept ~4 of 32 I/Os in flight). Then hands
    /// every completion to the endio stage.
    pub fn reap_if_due(&mut self) -> bool {
        let mut progressed = false;
        if self.sync_engine || !self.room() || self.pacer.paced() {
            progressed = self.reap(0);
        }
        let mut completions = std::mem::take(&mut self.completions);
        for done in completions.drain(..) {
            self.completed(done);
        }
        self.completions = completions;
        progressed
    }

    /// Reaps at least `min` completions into `completions`; whether any arrived. Errors
    /// stop the case.
    fn reap(&mut self, min: usize) -> bool {
        let before = self.completions.len();
        if let Err(e) = self.input.engine.reap(min, &mut self.completions) {
            let label = &self.input.file_label;
            self.case
                .fail(format!("reaping I/O on {label} failed: {e}"));
        }
        self.completions.len() > before
    }

    /// One I/O came back from the engine: on to endio, or the case fails.
    fn completed(&mut self, done: IoDone) {
        let mut bio = self.at_engine.take(done.req.tag);
        bio.io_done = Instant::now();
        bio.buf = Some(done.req.buf);
        self.case.io_completions.fetch_add(1, Ordering::Relaxed);
        let end = bio.offset + bio.data().len() as u64;
        let data_end = self.input.data_end;
        let result = match done.result {
            // A read that runs off the end of a truncated file: verification reports the
            // sectors that are not there.
            Err(e)
                if bio.op == Op::Read
                    && e.kind() == std::io::ErrorKind::UnexpectedEof
                    && end > data_end =>
            {
                bio.readable = data_end.saturating_sub(bio.offset);
                Ok(())
            }
            r => r,
        };
        match result {
            Ok(()) => {
                bio.endio_queued = Instant::now();
                self.pools.endio.dispatch(self.ctx.endio_work(bio));
            }
            Err(e) => {
                if let Some(overlap) = bio.overlap.take() {
                    overlap.finish_into(&mut bio);
                }
                let what = if bio.op == Op::Write { "write" } else { "read" };
                self.case.fail(format!(
                    "{what} error on {} at offset {} (strategy {}): {e}",
                    self.input.file_label, bio.offset, self.ctx.strategy
                ));
                let (lock, buf) = (bio.lock, bio.buf.take());
                self.give_up(lock, buf);
            }
        }
    }

    /// Issues the job's next bio if there is room, it is due, and no I/O in flight overlaps
    /// its sectors in a way that forbids it. A write is filled and goes to the csum stage; a
    /// read goes straight to the engine.
    pub fn issue_next(&mut self) -> bool {
        self.not_before = None;
        if !self.room() {
            return false;
        }
        let Some(NextBio { offset, len, op }) = self.source.peek() else {
            return false;
        };
        let intended = match self.pacer.check(op, Instant::now()) {
            Due::Now(intended) => intended,
            Due::At(t) => {
                self.not_before = Some(t);
                return false;
            }
        };
        let lock = match &self.input.extents {
            None => None,
            Some(extents) => {
                match extents.try_lock(offset, len, op, &self.ctx.home) {
                    Some(lock) => Some(lock),
                    // Woken by the release; meanwhile the rest of the loop goes on.
                    None => return false,
                }
            }
        };
        self.source.pop();
        self.pacer.issued(op, intended);
        let mut buf = self.free.pop().expect("a buffer per slot");
        buf.set_len(len as usize);
        let mut bio = Bio::new(op, offset, buf, lock);
        bio.issued = intended.unwrap_or(bio.issued);
        self.in_pipeline += 1;
        match op {
            Op::Write => self.send_to_csum(bio),
            Op::Read => self.to_submit.push_back(bio),
        }
        true
    }

    fn send_to_csum(&mut self, mut bio: Box<Bio>) {
        let buf = bio.buf.as_mut().expect("buffer");
        self.filler.fill(buf, bio.offset);
        bio.csum_queued = Instant::now();
        if self.pools.csum.overlaps_io() {
            let work = self.ctx.overlap_csum_work(&mut bio);
            self.pools.csum.dispatch(work);
            self.to_submit.push_back(bio);
        } else {
            self.pools.csum.dispatch(self.ctx.csum_work(bio));
        }
    }

    /// Tells the collector and the watchdog where the job stands.
    pub fn publish(&self) {
        let (in_pipeline, at_engine) = (self.in_pipeline, self.input.engine.in_flight());
        let progress = self.progress;
        progress
            .in_pipeline
            .store(in_pipeline as u64, Ordering::Relaxed);
        progress
            .at_engine
            .store(at_engine as u64, Ordering::Relaxed);
    }

    /// Nothing in the pipeline, and nothing more to issue.
    pub fn drained(&self) -> bool {
        self.in_pipeline == 0 && (self.source.exhausted || self.stopping_since.is_some())
    }

    /// Waits for whatever comes first: an I/O if any is in flight, else a homecoming, a due
    /// time or a released lock. False when the job gives up on bios a stuck pool holds.
    pub fn wait(&mut self) -> bool {
        if self.input.engine.in_flight() > 0 {
            self.reap(1);
            return true;
        }
        let timeout = self.not_before.map_or(POLL, |t| {
            t.saturating_duration_since(Instant::now()).min(POLL)
        });
        match self.home.recv_timeout(timeout) {
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

    /// Ends the job: its `end_fsync`, and what it reports.
    pub fn finish(mut self) -> JobOutcome {
        self.progress
            .in_pipeline
            .store(self.abandoned, Ordering::Relaxed);
        let job = &self.input.job;
        if job.rw.is_write() && job.end_fsync && !self.case.aborted() {
            if let Err(e) = self.progress.sync(self.input.engine.as_mut()) {
                let label = &self.input.file_label;
                self.case.fail(format!("end_fsync of {label} failed: {e}"));
            }
        }
        JobOutcome {
            start: self
                .input
                .ramp_end
                .map_or(self.start, |r| r.max(self.start)),
            end: Instant::now(),
            abandoned: self.abandoned,
        }
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
