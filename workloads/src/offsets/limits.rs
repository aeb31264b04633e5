//! fio's limits on a job's passes and bytes (`backend.c`: `keep_running`,
//! `io_issue_bytes_exceeded`), and what counts against them. One file's pattern has them,
//! and so has a clone of several files, over all of them.

use crate::job::JobSpec;

pub(super) struct Limits {
    time_based: bool,
    loops: u64,
    io_size: Option<u64>,
    /// Bytes of one pass: the region's, or the files' together (fio's `o->size`).
    pass: u64,
    number_ios: u64,
    max_bs: u64,
    /// fio's `o->loops`, counted down by `keep_running`.
    loops_left: u32,
    bytes: u64,
    ios: u64,
}

impl Limits {
    /// `job`'s limits, one pass being `pass` bytes.
    pub fn new(job: &JobSpec, pass: u64) -> Limits {
        Limits {
            time_based: job.time_based,
            loops: u64::from(job.loops.max(1)),
            io_size: job.io_size,
            pass,
            number_ios: job.number_ios,
            max_bs: job.max_bs(),
            loops_left: job.loops,
            bytes: 0,
            ios: 0,
        }
    }

    /// fio's `keep_running`: whether another pass starts. `ended`: the last one ended at
    /// the end of what it covers, not at a limit.
    pub fn keep_running(&mut self, ended: bool) -> bool {
        if self.time_based {
            return true;
        }
        if self.loops_left > 0 {
            self.loops_left -= 1;
            return true;
        }
        if self.number_ios > 0 && self.ios >= self.number_ios * self.loops {
            return false;
        }
        let left = self.io_size.unwrap_or(self.pass).saturating_sub(self.bytes);
        left > 0 && left >= self.max_bs && !(ended && self.io_size.is_none())
    }

    /// fio's `io_issue_bytes_exceeded`: all that may be issued has been.
    pub fn reached(&self) -> bool {
        if self.time_based {
            return false;
        }
        let bytes = self.io_size.unwrap_or(self.pass).saturating_mul(self.loops);
        self.bytes >= bytes || (self.number_ios > 0 && self.ios >= self.number_ios * self.loops)
    }

    /// Counts one I/O of `len` bytes.
    pub fn count(&mut self, len: u64) {
        self.bytes += len;
        self.ios += 1;
    }

    /// Good for one more pass, counted afresh (one file of several starting again).
    pub fn restart(&mut self) {
        (self.bytes, self.ios, self.loops_left) = (0, 0, 1);
    }
}
