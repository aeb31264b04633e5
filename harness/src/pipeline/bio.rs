//! A bio: one I/O of at most 1 MiB on its way through the pipeline, with the timestamps
//! that become its stage latencies, and what comes back to the submitter from the stages.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use workloads::{AlignedBuf, Op, SECTOR_SIZE};

use super::extent::ExtentLock;
use super::state::CaseState;
use super::POLL;
use crate::measure::{Stage, StageHists};

/// What comes back to the submitter from the stages (and from other jobs).
pub(super) enum Homecoming {
    Bio(Box<Bio>),
    /// A work item that owned a bio panicked; the bio is gone, and so is its buffer. Its
    /// extent lock, if it held one, is still to be released.
    Lost(Option<ExtentLock>),
    /// An extent lock this job was refused has been released: try again.
    Wake,
}

pub(super) struct Bio {
    pub op: Op,
    pub offset: u64,
    pub buf: Option<AlignedBuf>,
    /// The lock on the bio's sectors, released when it retires.
    pub lock: Option<ExtentLock>,
    /// Bytes of a read that lie before the end of the file (all of them, but for a read of
    /// a truncated file).
    pub readable: u64,
    pub sums: Vec<u8>,
    pub issued: Instant,
    pub csum_queued: Instant,
    pub csum_start: Instant,
    pub csum_end: Instant,
    pub submitted: Instant,
    pub io_done: Instant,
    pub endio_queued: Instant,
    pub endio_start: Instant,
    pub endio_end: Instant,
    /// Set when the bio is coming home from endio (rather than from the csum stage).
    pub finished: bool,
    /// With an overlapping strategy: the checksums being computed while the write is in
    /// flight. Whoever frees the buffer must wait for it first.
    pub overlap: Option<Arc<OverlapCsum>>,
}

impl Bio {
    pub fn new(op: Op, offset: u64, buf: AlignedBuf, lock: Option<ExtentLock>) -> Box<Bio> {
        let now = Instant::now();
        Box::new(Bio {
            op,
            offset,
            readable: buf.len() as u64,
            buf: Some(buf),
            lock,
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

    pub fn data(&self) -> &[u8] {
        self.buf.as_deref().expect("bio buffer present")
    }

    pub fn first_sector(&self) -> u64 {
        self.offset / SECTOR_SIZE
    }

    pub fn sectors(&self) -> u64 {
        self.data().len() as u64 / SECTOR_SIZE
    }

    pub fn record_into(&self, h: &mut StageHists) {
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

/// Checksums computed concurrently with the write that carries the same buffer.
#[derive(Default)]
pub(super) struct OverlapCsum {
    pub done: Completion,
    /// Sums, and when the work started and ended.
    pub result: Mutex<Option<(Vec<u8>, Instant, Instant)>>,
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
