//! A bio: one I/O of at most 1 MiB on its way through the pipeline, with the timestamps
//! that become its stage latencies, and what comes back to the submitter from the stages.

use std::sync::{Arc, Condvar, Mutex};

use workloads::{AlignedBuf, Op, SECTOR_SIZE};

use super::extent::ExtentLock;
use super::state::CaseState;
use super::POLL;
use crate::measure::clock::Stamp;
use crate::measure::fiolog::Sample;
use crate::measure::{Stage, StageCounts};

/// What comes back to the submitter from the stages (and from other jobs).
pub(super) enum Homecoming {
    Bio(Box<Bio>),
    /// A work item that owned a bio panicked; the bio is gone, and so is its buffer. Its
    /// extent lock, if it held one, is still to be released.
    Lost(Option<FileLock>),
    /// An extent lock this job was refused has been released: try again.
    Wake,
}

/// An extent lock, and which of the clone's files it is on.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileLock {
    pub file: usize,
    pub lock: ExtentLock,
}

/// A bio's timestamps. Where one moment ends a stage and starts the next (inline work has
/// no queue), both are the same reading.
pub(super) struct Bio {
    pub op: Op,
    /// Which of the clone's files (`JobInput::files`).
    pub file: usize,
    /// A read back of the pass's own write (`verify_backlog`), not counted in its figures.
    pub read_back: bool,
    pub offset: u64,
    pub buf: Option<AlignedBuf>,
    /// The lock on the bio's sectors, released when it retires.
    pub lock: Option<FileLock>,
    /// Bytes of a read that lie before the end of the file (all of them, but for a read of
    /// a truncated file).
    pub readable: u64,
    pub sums: Vec<u8>,
    pub issued: Stamp,
    pub csum_queued: Stamp,
    pub csum_start: Stamp,
    pub csum_end: Stamp,
    pub submitted: Stamp,
    pub io_done: Stamp,
    pub endio_queued: Stamp,
    pub endio_start: Stamp,
    pub endio_end: Stamp,
    /// Set when the bio is coming home from endio (rather than from the csum stage).
    pub finished: bool,
    /// With an overlapping strategy: the checksums being computed while the write is in
    /// flight. Whoever frees the buffer must wait for it first.
    pub overlap: Option<Arc<OverlapCsum>>,
}

impl Bio {
    /// A bio of the pool, with a buffer of `size` bytes, to be [`Bio::start`]ed.
    pub fn new(size: usize) -> Box<Bio> {
        Box::new(Bio {
            op: Op::Read,
            file: 0,
            read_back: false,
            offset: 0,
            readable: 0,
            buf: Some(AlignedBuf::new(size)),
            lock: None,
            sums: Vec::new(),
            issued: Stamp::default(),
            csum_queued: Stamp::default(),
            csum_start: Stamp::default(),
            csum_end: Stamp::default(),
            submitted: Stamp::default(),
            io_done: Stamp::default(),
            endio_queued: Stamp::default(),
            endio_start: Stamp::default(),
            endio_end: Stamp::default(),
            finished: false,
            overlap: None,
        })
    }

    /// Sets a bio from the pool off on a new I/O, issued at `issued`. Stamps not taken on
    /// the way (a read has no csum stage) are not recorded.
    pub fn start(
        &mut self,
        op: Op,
        (file, offset, len): (usize, u64, u64),
        lock: Option<FileLock>,
        issued: Stamp,
    ) {
        let buf = self.buf.as_mut().expect("a pooled bio has its buffer");
        buf.set_len(len as usize);
        (self.op, self.file, self.offset) = (op, file, offset);
        (self.readable, self.lock) = (len, lock);
        self.issued = issued;
        self.finished = false;
    }

    pub fn data(&self) -> &[u8] {
        self.buf.as_deref().expect("bio buffer present")
    }

    pub fn first_sector(&self) -> u64 {
        self.offset / SECTOR_SIZE
    }

    pub fn sectors(&self) -> u64 {
        self.data().len() as u64 / SECTOR_SIZE
    }

    /// The bio as fio's logs see it (`write_*_log`).
    pub fn log_sample(&self) -> Sample {
        Sample {
            end: self.endio_end,
            op: self.op,
            len: self.data().len() as u64,
            offset: self.offset,
            slat: self.submitted.nanos_since(self.issued),
            clat: self.io_done.nanos_since(self.submitted),
            lat: self.endio_end.nanos_since(self.issued),
        }
    }

    pub fn record_into(&self, h: &mut StageCounts) {
        let op = self.op;
        h.record(op, Stage::E2e, self.endio_end.nanos_since(self.issued));
        if op == Op::Write {
            let wait = self.csum_start.nanos_since(self.csum_queued);
            h.record(op, Stage::CsumWait, wait);
            let run = self.csum_end.nanos_since(self.csum_start);
            h.record(op, Stage::CsumRun, run);
        }
        h.record(op, Stage::Io, self.io_done.nanos_since(self.submitted));
        let wait = self.endio_start.nanos_since(self.endio_queued);
        h.record(op, Stage::EndioWait, wait);
        let run = self.endio_end.nanos_since(self.endio_start);
        h.record(op, Stage::EndioRun, run);
    }
}

/// Checksums computed concurrently with the write that carries the same buffer.
#[derive(Default)]
pub(super) struct OverlapCsum {
    pub done: Completion,
    /// Sums, and when the work started and ended.
    pub result: Mutex<Option<(Vec<u8>, Stamp, Stamp)>>,
}

impl OverlapCsum {
    /// Waits for the csum work however long it takes: until it has run, it may be reading
    /// the buffer, so the buffer may not be reused. Fills in the bio's sums and times;
    /// false if the work panicked and left none.
    pub fn finish_into(&self, bio: &mut Bio) -> bool {
        self.done.wait_forever();
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
pub(super) struct SharedBuf {
    ptr: *const u8,
    len: usize,
}

// SAFETY: only read, and the owner waits for the reader (OverlapCsum::finish_into) before
// reusing or freeing the memory.
unsafe impl Send for SharedBuf {}

impl SharedBuf {
    pub fn of(data: &[u8]) -> SharedBuf {
        SharedBuf {
            ptr: data.as_ptr(),
            len: data.len(),
        }
    }

    /// SAFETY: the caller must be the csum work the owner waits for (see above).
    pub unsafe fn bytes(&self) -> &[u8] {
        std::slice::from_raw_parts(self.ptr, self.len)
    }
}

/// A one-shot signal that a waiter can give up on when the case is aborted.
#[derive(Default)]
pub(super) struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Completion {
    pub fn complete(&self) {
        *self.done.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits until completed (true) or the case is aborted (false).
    pub fn wait(&self, case: &CaseState) -> bool {
        let mut done = self.done.lock().unwrap();
        while !*done {
            if case.aborted() {
                return false;
            }
            done = self.cv.wait_timeout(done, POLL).unwrap().0;
        }
        true
    }

    fn wait_forever(&self) {
        let mut done = self.done.lock().unwrap();
        while !*done {
            done = self.cv.wait(done).unwrap();
        }
    }
}
