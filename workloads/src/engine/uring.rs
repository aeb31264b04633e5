//! `io_uring`: real queue depth. `queue` puts one SQE in the ring, `commit` submits them,
//! `reap` waits for completions. While the kernel owns an I/O, its [`IoReq`] (and so its
//! buffer) sits in a slot whose index is the SQE's `user_data`.
//!
//! Short transfers: the remainder is resubmitted, as the synchronous engines continue
//! theirs, so every engine sees the same I/O. Only a transfer that moves nothing ends
//! short: end of file for a read, which is an error naming the I/O's offset.
//!
//! The ring is set up as fio 3.33 sets up its own: COOP_TASKRUN (no interrupting IPI per
//! completion batch), SINGLE_ISSUER and DEFER_TASKRUN (completions are posted when the job
//! asks for them), falling back flag by flag where the kernel refuses them. SINGLE_ISSUER
//! binds the ring to one thread, and jobs open their engines before their threads start, so
//! the ring is created disabled and enabled by the first call from the job's thread; from
//! then on only that thread may use it.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

use super::slots::{IoVec, Slots};
use super::{
    ended_short, Caps, Engine, EngineDescriptor, EngineOptions, EngineSetup, IoDone, IoReq, Op,
};
use crate::buf::AlignedBuf;
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
const FIXEDBUFS: &str = "fixedbufs";
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
        FIXEDBUFS,
        "pre-map the I/O buffers (IORING_REGISTER_BUFFERS), so no I/O maps them: \
         IORING_OP_READ_FIXED/WRITE_FIXED",
    ),
    JobOption::engine_flag(
        REGISTERFILES,
        "register the files with the kernel (IORING_REGISTER_FILES): lighter submissions",
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
    if o.flag(FIXEDBUFS) {
        if o.get(NONVECTORED) == Some(0) {
            return Err(format!(
                "{FIXEDBUFS}=1 reads and writes registered buffers (READ_FIXED/WRITE_FIXED), \
                 which {NONVECTORED}=0 (READV/WRITEV) cannot"
            ));
        }
        if job.iodepth > MAX_REGISTERED {
            return Err(format!(
                "{FIXEDBUFS}=1 with iodepth={}: io_uring registers at most {MAX_REGISTERED} \
                 buffers, one per I/O in flight",
                job.iodepth
            ));
        }
    }
    Ok(Vec::new())
}

/// The kernel's cap on SQ entries is 32768; deeper than this buys nothing here.
const MAX_ENTRIES: u32 = 4096;
/// The kernel's caps on CQ entries and on registered buffers.
const MAX_CQ_ENTRIES: u32 = 65536;
const MAX_REGISTERED: u32 = 1 << 14;

/// The setup flags fio asks for, one rung less each time the kernel refuses (EINVAL): an
/// older kernel, or SQPOLL, which DEFER_TASKRUN excludes. fio drops them in this order.
#[derive(Clone, Copy)]
struct Rung {
    /// SINGLE_ISSUER | DEFER_TASKRUN, with the ring created disabled (R_DISABLED).
    deferred: bool,
    /// COOP_TASKRUN, with TASKRUN_FLAG: the ring says, without a system call, when
    /// completions wait to be posted.
    coop: bool,
    /// A completion queue as deep as the I/Os in flight.
    cq_size: bool,
}

const LADDER: [Rung; 4] = [
    Rung {
        deferred: true,
        coop: true,
        cq_size: true,
    },
    Rung {
        deferred: false,
        coop: true,
        cq_size: true,
    },
    Rung {
        deferred: false,
        coop: false,
        cq_size: true,
    },
    Rung {
        deferred: false,
        coop: false,
        cq_size: false,
    },
];

struct Slot {
    req: IoReq,
    /// Bytes already transferred (more than 0 only after a short transfer).
    done: usize,
    /// The iovec of a vectored I/O (`nonvectored=0`).
    iov: Option<IoVec>,
}

pub struct UringEngine {
    ring: IoUring,
    /// Created disabled, to be enabled by the first call from the job's thread.
    disabled: bool,
    /// The clone's files, kept open while the ring may name them.
    files: Vec<Arc<File>>,
    /// Each file as SQEs name it: its descriptor, or its index in the registered files.
    targets: Vec<types::Fd>,
    flags: squeue::Flags,
    vectored: bool,
    fixedbufs: bool,
    /// Registered buffers (`fixedbufs`): each buffer's id and its index, sorted by id.
    registered: Vec<(u64, u16)>,
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

/// The ring for `entries` SQEs and `cq_entries` CQEs with the job's options, on the first
/// rung of [`LADDER`] the kernel takes; whether it was created disabled.
fn build_ring(o: &EngineOptions, entries: u32, cq_entries: u32) -> io::Result<(IoUring, bool)> {
    let mut refused = None;
    for rung in LADDER {
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
        if rung.deferred {
            builder
                .setup_r_disabled()
                .setup_single_issuer()
                .setup_defer_taskrun();
        }
        if rung.coop {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        if rung.cq_size {
            builder.setup_cqsize(cq_entries);
        }
        match builder.build(entries) {
            Ok(ring) => return Ok((ring, rung.deferred)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => refused = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(refused.expect("every rung was tried"))
}

impl UringEngine {
    fn open(setup: EngineSetup) -> io::Result<Self> {
        let files = setup.files(DESCRIPTOR.name)?;
        let o = setup.options;
        let entries = setup.depth.clamp(1, MAX_ENTRIES).next_power_of_two();
        let cq_entries = setup
            .depth
            .max(1)
            .next_power_of_two()
            .clamp(entries, MAX_CQ_ENTRIES);
        let set: Vec<&str> = o.names().collect();
        let with = if set.is_empty() {
            String::new()
        } else {
            format!(" with {}", set.join(", "))
        };
        let (ring, disabled) = build_ring(o, entries, cq_entries)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring{with} is unavailable: {e}")))?;
        let registered = o.flag(REGISTERFILES);
        let fds: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
        if registered {
            ring.submitter()
                .register_files(&fds)
                .map_err(|e| io::Error::new(e.kind(), format!("{REGISTERFILES}: {e}")))?;
        }
        let targets = match registered {
            true => (0..fds.len() as i32).map(types::Fd).collect(),
            false => fds.into_iter().map(types::Fd).collect(),
        };
        Ok(UringEngine {
            ring,
            disabled,
            targets,
            flags: if registered {
                squeue::Flags::FIXED_FILE
            } else {
                squeue::Flags::empty()
            },
            files,
            vectored: o.get(NONVECTORED) == Some(0),
            fixedbufs: o.flag(FIXEDBUFS),
            registered: Vec::new(),
            slots: Slots::new(),
            done: VecDeque::new(),
            cqes: Vec::new(),
        })
    }

    /// Enables a ring created disabled, binding it to the calling thread (SINGLE_ISSUER).
    fn enable(&mut self) -> io::Result<()> {
        if self.disabled {
            self.ring.submitter().register_enable_rings()?;
            self.disabled = false;
        }
        Ok(())
    }

    /// The index of the registered buffer with this id.
    fn registered_index(&self, id: u64) -> Option<u16> {
        let at = self.registered.binary_search_by_key(&id, |&(id, _)| id).ok()?;
        Some(self.registered[at].1)
    }

    /// Puts the SQE for the rest of slot `idx`'s transfer into the submission queue.
    fn push(&mut self, idx: usize) -> io::Result<()> {
        let vectored = self.vectored;
        let fixed = match self.fixedbufs {
            true => {
                let id = self.slots.get_mut(idx).req.buf.id();
                self.registered_index(id)
            }
            false => None,
        };
        let slot = self.slots.get_mut(idx);
        let fd = self.targets[slot.req.file as usize];
        let offset = slot.req.offset + slot.done as u64;
        // Longer transfers are cut short by the kernel and resubmitted like any other.
        let len = (slot.req.buf.len() - slot.done).min(u32::MAX as usize);
        let op = slot.req.op;
        // Only a read writes the buffer (a write leaves what it holds for the next fill).
        let base = match op {
            Op::Read => slot.req.buf.as_mut_ptr(),
            Op::Write => slot.req.buf.as_ptr().cast_mut(),
        };
        // SAFETY: `done` is within the buffer, so the pointer stays in bounds.
        let at = unsafe { base.add(slot.done) };
        let entry = match (fixed, vectored) {
            (Some(index), _) => {
                let len = len as u32;
                match op {
                    Op::Read => opcode::ReadFixed::new(fd, at, len, index)
                        .offset(offset)
                        .build(),
                    Op::Write => opcode::WriteFixed::new(fd, at.cast_const(), len, index)
                        .offset(offset)
                        .build(),
                }
            }
            (None, true) => {
                let iov = slot.iov.insert(IoVec::new(at, len)).as_ptr();
                match op {
                    Op::Read => opcode::Readv::new(fd, iov, 1).offset(offset).build(),
                    Op::Write => opcode::Writev::new(fd, iov, 1).offset(offset).build(),
                }
            }
            (None, false) => {
                let len = len as u32;
                match op {
                    Op::Read => opcode::Read::new(fd, at, len).offset(offset).build(),
                    Op::Write => opcode::Write::new(fd, at.cast_const(), len)
                        .offset(offset)
                        .build(),
                }
            }
        };
        // With FIXED_FILE, `fd` is the index into the registered files.
        self.push_entry(&entry.flags(self.flags).user_data(idx as u64))
    }

    fn push_entry(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entry points into a buffer (and iovec) owned by a slot, which
            // keeps it (heap allocations do not move with the slot) until the completion
            // is reaped; the file stays open through `self.file`; a registered buffer's
            // index names the same buffer, which the caller keeps while registered.
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
        self.enable()?;
        // With TASKRUN_FLAG set by the kernel, this enter also posts waiting completions
        // (GETEVENTS), as fio's commit does.
        enter(&self.ring, 0)
    }

    fn reap(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<()> {
        self.enable()?;
        let mut got = self.done.len();
        out.extend(self.done.drain(..));
        got += self.collect(out);
        let want = min.min(got + self.slots.busy());
        // Deferred completions are posted only by an enter that asks for them, polled ones
        // (hipri) only by an enter that polls, and resubmitted remainders wait in the
        // submission queue: a wait's enter does all three; a reap that does not wait
        // enters for them alone (as fio, a wait met from the completion queue does not
        // enter at all).
        let polled = self.ring.params().is_setup_iopoll() && self.slots.busy() > 0;
        let pending = {
            let sq = self.ring.submission();
            sq.taskrun() || !sq.is_empty() || polled
        };
        if min == 0 && pending {
            enter(&self.ring, 0)?;
            got += self.collect(out);
        }
        while got < want {
            // Every busy slot yields exactly one more CQE, so this wait always ends.
            enter(&self.ring, want - got)?;
            got += self.collect(out);
        }
        Ok(())
    }

    fn register_buffers(&mut self, bufs: &[&AlignedBuf]) -> io::Result<()> {
        if !self.fixedbufs {
            return Ok(());
        }
        self.enable()?;
        let iovecs: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr().cast_mut().cast(),
                iov_len: b.capacity(),
            })
            .collect();
        let submitter = self.ring.submitter();
        if !self.registered.is_empty() {
            submitter.unregister_buffers()?;
            self.registered.clear();
        }
        // SAFETY: each iovec is a live allocation; the caller keeps it while the engine
        // lives, and a buffer it replaces is never used as registered (known by its id).
        unsafe { submitter.register_buffers(&iovecs) }.map_err(|e| {
            let bytes: usize = iovecs.iter().map(|v| v.iov_len).sum();
            io::Error::new(
                e.kind(),
                format!(
                    "{FIXEDBUFS}=1: registering {} buffers ({bytes} bytes) with io_uring \
                     failed: {e} (pinned memory counts against RLIMIT_MEMLOCK, `ulimit -l`)",
                    iovecs.len()
                ),
            )
        })?;
        self.registered = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id(), i as u16))
            .collect();
        self.registered.sort_unstable();
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.slots.busy() + self.done.len()
    }

    fn sync(&mut self, file: usize) -> io::Result<()> {
        self.enable()?;
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
        self.files[file].sync_all()
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
