//! `io_uring`: real queue depth. `queue` puts one SQE in the ring, `commit` submits them,
//! `reap` waits for completions. While the kernel owns an I/O, its [`IoReq`] (and so its
//! buffer) sits in a slot whose index is the SQE's `user_data`.
//!
//! Short transfers: the remainder is resubmitted, as the synchronous engines continue
//! theirs, so every engine sees the same I/O. Only a transfer that moves nothing ends
//! short: end of file for a read, which is an error naming the I/O's offset.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

use super::slots::{IoVec, Slots};
use super::{ended_short, Caps, Engine, EngineDescriptor, EngineSetup, IoDone, IoReq, Op};
use crate::job::{JobOption, JobSpec};

pub static DESCRIPTOR: EngineDescriptor = EngineDescriptor {
    name: "io_uring",
    aliases: &[],
    summary: "io_uring: up to iodepth I/Os in the kernel at once, direct or buffered",
    caps: Caps {
        sync: false,
        diskless: false,
        queues_only_direct: false,
    },
    options: OPTIONS,
    check,
    open: |setup| Ok(Box::new(UringEngine::open(setup)?)),
};

const HIPRI: &str = "hipri";
const REGISTERFILES: &str = "registerfiles";
const SQTHREAD_POLL: &str = "sqthread_poll";
const SQTHREAD_POLL_CPU: &str = "sqthread_poll_cpu";
const NONVECTORED: &str = "nonvectored";

/// fio's io_uring options.
static OPTIONS: &[JobOption] = &[
    JobOption::engine_flag(
        HIPRI,
        "polled completions (IORING_SETUP_IOPOLL) instead of interrupts; needs direct=1",
    ),
    JobOption::engine_flag(
        "fixedbufs",
        "pre-map the I/O buffers (IORING_REGISTER_BUFFERS), so no I/O maps them",
    )
    .not_yet("the pipeline's buffers are not registered with the kernel"),
    JobOption::engine_flag(
        REGISTERFILES,
        "register the file with the kernel (IORING_REGISTER_FILES): lighter submissions",
    ),
    JobOption::engine_flag(
        SQTHREAD_POLL,
        "a kernel thread polls the submission queue (IORING_SETUP_SQPOLL): submitting \
         needs no system call",
    ),
    JobOption::engine_int(
        SQTHREAD_POLL_CPU,
        "the CPU the sqthread_poll thread runs on",
        0,
        libc::CPU_SETSIZE as i64 - 1,
        -1,
    ),
    JobOption::engine_int(
        NONVECTORED,
        "1 or -1 (the default): IORING_OP_READ/WRITE; 0: READV/WRITEV of one iovec",
        -1,
        1,
        -1,
    ),
];

fn check(job: &JobSpec) -> Result<Vec<String>, String> {
    let o = &job.engine_options;
    if o.flag(HIPRI) && !job.direct {
        return Err(format!(
            "{HIPRI}=1 needs direct=1: polled completions work only for O_DIRECT I/O"
        ));
    }
    if let (Some(cpu), false) = (o.get(SQTHREAD_POLL_CPU), o.flag(SQTHREAD_POLL)) {
        return Err(format!("{SQTHREAD_POLL_CPU}={cpu} needs {SQTHREAD_POLL}=1"));
    }
    Ok(Vec::new())
}

/// The kernel's cap on SQ entries is 32768; deeper than this buys nothing here.
const MAX_ENTRIES: u32 = 4096;

struct Slot {
    req: IoReq,
    /// Bytes already transferred (more than 0 only after a short transfer).
    done: usize,
    /// The iovec of a vectored I/O (`nonvectored=0`).
    iov: Option<IoVec>,
}

pub struct UringEngine {
    ring: IoUring,
    file: Arc<File>,
    /// The file as SQEs name it: its descriptor, or index 0 of the registered files.
    target: types::Fd,
    flags: squeue::Flags,
    vectored: bool,
    /// I/Os queued or in the kernel: each has exactly one SQE outstanding.
    slots: Slots<Slot>,
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
    fn open(setup: EngineSetup) -> io::Result<Self> {
        let file = setup.file(DESCRIPTOR.name)?;
        let o = setup.options;
        let entries = setup.depth.clamp(1, MAX_ENTRIES).next_power_of_two();
        let mut builder = IoUring::builder();
        if o.flag(HIPRI) {
            builder.setup_iopoll();
        }
        if o.flag(SQTHREAD_POLL) {
            // Idle 0: the kernel's default before the thread sleeps (one second).
            builder.setup_sqpoll(0);
        }
        if let Some(cpu) = o.get(SQTHREAD_POLL_CPU) {
            builder.setup_sqpoll_cpu(cpu as u32);
        }
        let set: Vec<&str> = o.names().collect();
        let with = if set.is_empty() {
            String::new()
        } else {
            format!(" with {}", set.join(", "))
        };
        let ring = builder
            .build(entries)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring{with} is unavailable: {e}")))?;
        let registered = o.flag(REGISTERFILES);
        if registered {
            ring.submitter()
                .register_files(&[file.as_raw_fd()])
                .map_err(|e| io::Error::new(e.kind(), format!("{REGISTERFILES}: {e}")))?;
        }
        Ok(UringEngine {
            ring,
            target: types::Fd(if registered { 0 } else { file.as_raw_fd() }),
            flags: if registered {
                squeue::Flags::FIXED_FILE
            } else {
                squeue::Flags::empty()
            },
            file,
            vectored: o.get(NONVECTORED) == Some(0),
            slots: Slots::new(),
            done: VecDeque::new(),
            cqes: Vec::new(),
        })
    }

    /// Puts the SQE for the rest of slot `idx`'s transfer into the submission queue.
    fn push(&mut self, idx: usize) -> io::Result<()> {
        let (fd, vectored) = (self.target, self.vectored);
        let slot = self.slots.get_mut(idx);
        let offset = slot.req.offset + slot.done as u64;
        // Longer transfers are cut short by the kernel and resubmitted like any other.
        let len = (slot.req.buf.len() - slot.done).min(u32::MAX as usize);
        // SAFETY: `done` is within the buffer, so the pointer stays in bounds.
        let at = unsafe { slot.req.buf.as_mut_ptr().add(slot.done) };
        let entry = if vectored {
            let iov = slot.iov.insert(IoVec::new(at, len)).as_ptr();
            match slot.req.op {
                Op::Read => opcode::Readv::new(fd, iov, 1).offset(offset).build(),
                Op::Write => opcode::Writev::new(fd, iov, 1).offset(offset).build(),
            }
        } else {
            let len = len as u32;
            match slot.req.op {
                Op::Read => opcode::Read::new(fd, at, len).offset(offset).build(),
                Op::Write => opcode::Write::new(fd, at.cast_const(), len)
                    .offset(offset)
                    .build(),
            }
        };
        // With FIXED_FILE, `fd` is the index into the registered files.
        self.push_entry(&entry.flags(self.flags).user_data(idx as u64))
    }

    fn push_entry(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entry points into a buffer (and iovec) owned by a slot, which
            // keeps it (heap allocations do not move with the slot) until the completion
            // is reaped; the file stays open through `self.file`.
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
            let slot = self.slots.get_mut(idx);
            let result = match res {
                r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
                0 if slot.done < slot.req.buf.len() => {
                    Err(ended_short(slot.req.op, slot.req.offset))
                }
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
            let req = self.slots.remove(idx).req;
            out.push(IoDone { req, result });
            appended += 1;
        }
        appended
    }
}

impl Engine for UringEngine {
    fn caps(&self) -> Caps {
        DESCRIPTOR.caps
    }

    fn queue(&mut self, req: IoReq) -> io::Result<()> {
        let idx = self.slots.insert(Slot {
            req,
            done: 0,
            iov: None,
        });
        if let Err(e) = self.push(idx) {
            self.slots.remove(idx);
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
        let want = min.min(got + self.slots.busy());
        while got < want {
            // Every busy slot yields exactly one more CQE, so this wait always ends.
            enter(&self.ring, want - got)?;
            got += self.collect(out);
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.slots.busy() + self.done.len()
    }

    fn sync(&mut self) -> io::Result<()> {
        // fsync covers only completed writes: wait for every I/O first, keeping the
        // completions for the caller's next reap.
        let mut drained = Vec::new();
        let mut waited = Ok(());
        while self.slots.busy() > 0 && waited.is_ok() {
            waited = enter(&self.ring, self.slots.busy());
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
        while self.slots.busy() > 0 {
            if enter(&self.ring, 1).is_err() {
                self.slots.leak();
                return;
            }
            for cqe in self.ring.completion() {
                self.slots.remove(cqe.user_data() as usize);
            }
        }
    }
}
