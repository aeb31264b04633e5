//! `io_uring`: real queue depth. `queue` puts one SQE in the ring, `commit` submits them,
//! `reap` waits for completions. While the kernel owns an I/O, its [`IoReq`] (and so its
//! buffer) sits in a slab slot whose index is the SQE's `user_data`.
//!
//! Short transfers: the remainder is resubmitted, as psync's `read_exact_at` and
//! `write_all_at` loop, so both engines see the same I/O. Only a transfer that moves nothing
//! ends short: end of file for a read, which is an error naming the I/O's offset.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

use super::{Caps, Engine, IoDone, IoReq, Op};

/// The kernel's cap on SQ entries is 32768; deeper than this buys nothing here.
const MAX_ENTRIES: u32 = 4096;

struct Slot {
    req: IoReq,
    /// Bytes already transferred (more than 0 only after a short transfer).
    done: usize,
}

pub struct UringEngine {
    ring: IoUring,
    file: Arc<File>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Slots whose I/O is queued or in the kernel: each has exactly one SQE outstanding.
    busy: usize,
    /// Completions `sync` waited for, handed out by the next `reap`.
    done: VecDeque<IoDone>,
    /// Scratch for draining the completion queue before acting on it.
    cqes: Vec<(u64, i32)>,
}

/// Retries an interrupted wait: `want` counts completions in the ring, so a retry is exact.
fn enter(ring: &IoUring, want: usize) -> io::Result<()> {
    loop {
        match ring.submit_and_wait(want) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}

impl UringEngine {
    pub fn new(file: Arc<File>, depth: u32) -> io::Result<Self> {
        let entries = depth.clamp(1, MAX_ENTRIES).next_power_of_two();
        let ring = IoUring::new(entries)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring is unavailable: {e}")))?;
        Ok(UringEngine {
            ring,
            file,
            slots: Vec::new(),
            free: Vec::new(),
            busy: 0,
            done: VecDeque::new(),
            cqes: Vec::new(),
        })
    }

    /// Puts the SQE for the rest of slot `idx`'s transfer into the submission queue.
    fn push(&mut self, idx: usize) -> io::Result<()> {
        let slot = self.slots[idx].as_mut().expect("pushing an empty slot");
        let fd = types::Fd(self.file.as_raw_fd());
        let offset = slot.req.offset + slot.done as u64;
        // Longer transfers are cut short by the kernel and resubmitted like any other.
        let len = (slot.req.buf.len() - slot.done).min(u32::MAX as usize) as u32;
        let entry = match slot.req.op {
            // SAFETY: `done` is within the buffer, so the pointer stays in bounds.
            Op::Read => {
                let at = unsafe { slot.req.buf.as_mut_ptr().add(slot.done) };
                opcode::Read::new(fd, at, len).offset(offset).build()
            }
            Op::Write => {
                let at = unsafe { slot.req.buf.as_ptr().add(slot.done) };
                opcode::Write::new(fd, at, len).offset(offset).build()
            }
        }
        .user_data(idx as u64);
        self.push_entry(&entry)
    }

    fn push_entry(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entry points into a buffer owned by a slot, which keeps it (the
            // heap allocation does not move with the IoReq) until the completion is reaped;
            // the file stays open through `self.file`.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            // Submission queue full (more queued than the depth): let the kernel take some.
            enter(&self.ring, 0)?;
        }
    }

    /// Turns the completions in the ring into `IoDone`s (resubmitting short transfers);
    /// returns how many it appended.
    fn collect(&mut self, out: &mut Vec<IoDone>) -> usize {
        self.cqes.clear();
        self.cqes
            .extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        let mut appended = 0;
        for i in 0..self.cqes.len() {
            let (data, res) = self.cqes[i];
            let idx = data as usize;
            let slot = self.slots[idx]
                .as_mut()
                .expect("completion for an idle slot");
            let offset = slot.req.offset;
            let result = match res {
                r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
                0 if slot.done < slot.req.buf.len() => Err(match slot.req.op {
                    Op::Read => io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("short read at offset {offset}: the file ends before it"),
                    ),
                    Op::Write => io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short write at offset {offset}: nothing more was written"),
                    ),
                }),
                r => {
                    slot.done += r as usize;
                    if slot.done < slot.req.buf.len() {
                        // Resubmitted, the slot stays busy; if that fails, it completes here
                        // so that no busy slot is left without an SQE.
                        match self.push(idx) {
                            Ok(()) => continue,
                            Err(e) => Err(e),
                        }
                    } else {
                        Ok(())
                    }
                }
            };
            let slot = self.slots[idx].take().expect("slot emptied twice");
            self.free.push(idx);
            self.busy -= 1;
            out.push(IoDone {
                req: slot.req,
                result,
            });
            appended += 1;
        }
        appended
    }
}

impl Engine for UringEngine {
    fn caps(&self) -> Caps {
        Caps {
            sync: false,
            diskless: false,
        }
    }

    fn queue(&mut self, req: IoReq) -> io::Result<()> {
        let slot = Some(Slot { req, done: 0 });
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.busy += 1;
        if let Err(e) = self.push(idx) {
            self.slots[idx] = None;
            self.free.push(idx);
            self.busy -= 1;
            return Err(e);
        }
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        if self.ring.submission().is_empty() {
            return Ok(());
        }
        enter(&self.ring, 0)
    }

    fn reap(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<()> {
        let mut got = self.done.len();
        out.extend(self.done.drain(..));
        got += self.collect(out);
        let want = min.min(got + self.busy);
        while got < want {
            // Every busy slot yields exactly one more CQE, so this wait always ends.
            enter(&self.ring, want - got)?;
            got += self.collect(out);
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.busy + self.done.len()
    }

    fn sync(&mut self) -> io::Result<()> {
        // fsync covers only completed writes: wait for every I/O first, keeping the
        // completions for the caller's next reap.
        let mut drained = Vec::new();
        let mut waited = Ok(());
        while self.busy > 0 && waited.is_ok() {
            waited = enter(&self.ring, self.busy);
            self.collect(&mut drained);
        }
        self.done.extend(drained);
        waited?;
        self.file.sync_all()
    }
}

impl Drop for UringEngine {
    /// The kernel may still be using the buffers of unreaped I/Os: wait for them before
    /// they are freed, and leak them if the wait itself fails.
    fn drop(&mut self) {
        while self.busy > 0 {
            if enter(&self.ring, 1).is_err() {
                std::mem::forget(std::mem::take(&mut self.slots));
                return;
            }
            for cqe in self.ring.completion() {
                if self.slots[cqe.user_data() as usize].take().is_some() {
                    self.busy -= 1;
                }
            }
        }
    }
}
