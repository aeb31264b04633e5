//! `libaio`: Linux native AIO through its system calls (io_setup, io_submit, io_getevents,
//! io_destroy), without the C library. `queue` prepares one iocb, `commit` hands every
//! queued iocb to the kernel in one io_submit, `reap` takes what io_getevents returns. An
//! iocb's `aio_data` is the index of the slot holding its [`IoReq`] while the kernel has it.
//!
//! As in fio, Linux queues AIO only with O_DIRECT: on a buffered file io_submit does each
//! I/O before it returns. It still works; the job is warned, and the engine reports itself
//! synchronous. Short transfers are resubmitted for the rest, as io_uring's are.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::slots::{IoVec, Slots};
use super::{
    ended_short, is_direct, Caps, Engine, EngineDescriptor, EngineSetup, IoDone, IoReq, Op,
};
use crate::job::{JobOption, JobSpec, MAX_IODEPTH};

pub static DESCRIPTOR: EngineDescriptor = EngineDescriptor {
    name: "libaio",
    aliases: &["aio", "linuxaio"],
    summary: "Linux AIO (io_submit/io_getevents): up to iodepth I/Os in the kernel with \
              direct=1",
    caps: Caps {
        sync: false,
        diskless: false,
        queues_only_direct: true,
    },
    options: OPTIONS,
    check,
    open: |setup| Ok(Box::new(AioEngine::open(setup)?)),
};

const VECTORED: &str = "libaio_vectored";
const USERSPACE_REAP: &str = "userspace_reap";

/// fio's libaio options.
static OPTIONS: &[JobOption] = &[
    JobOption::engine_flag(
        USERSPACE_REAP,
        "when reaping without waiting, read completions from the AIO ring in user space \
         instead of calling io_getevents",
    ),
    JobOption::engine_flag(
        VECTORED,
        "IOCB_CMD_PREADV/PWRITEV of one iovec instead of PREAD/PWRITE",
    ),
];

fn check(job: &JobSpec) -> Result<Vec<String>, String> {
    if job.direct {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "ioengine=libaio with direct=0: Linux AIO does buffered I/O inside io_submit, \
         so iodepth={} does not queue; set direct=1, or use io_uring",
        job.iodepth
    )])
}

// The kernel's ABI (include/uapi/linux/aio_abi.h).
type AioContext = libc::c_ulong;
const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;

#[repr(C)]
#[derive(Default)]
struct Iocb {
    aio_data: u64,
    #[cfg(target_endian = "little")]
    aio_key: u32,
    aio_rw_flags: i32,
    #[cfg(target_endian = "big")]
    aio_key: u32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

/// The header of the completion ring the kernel maps at a context's address (fs/aio.c's
/// `struct aio_ring`); the events follow it.
#[repr(C)]
struct AioRing {
    id: u32,
    nr: u32,
    head: std::sync::atomic::AtomicU32,
    tail: std::sync::atomic::AtomicU32,
    magic: u32,
    compat_features: u32,
    incompat_features: u32,
    header_length: u32,
}

/// fs/aio.c's `AIO_RING_MAGIC`: the ring's layout is the one above.
const AIO_RING_MAGIC: u32 = 0xa10a_10a1;

const _: () = assert!(std::mem::size_of::<AioRing>() == 32);
const _: () = assert!(std::mem::size_of::<Iocb>() == 64);
const _: () = assert!(std::mem::size_of::<IoEvent>() == 32);

/// A system call's result: the count, or the error in errno.
fn syscall_result(r: libc::c_long) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

fn io_setup(events: u32) -> io::Result<AioContext> {
    let mut ctx: AioContext = 0;
    // SAFETY: io_setup writes the new context to `ctx`, which outlives the call.
    syscall_result(unsafe {
        libc::syscall(libc::SYS_io_setup, libc::c_long::from(events), &mut ctx)
    })?;
    Ok(ctx)
}

struct Slot {
    req: IoReq,
    /// Bytes already transferred (more than 0 only after a short transfer).
    done: usize,
    /// What the kernel reads; on the heap so that it stays put while the slot moves.
    iocb: Box<Iocb>,
    iov: Option<IoVec>,
}

pub struct AioEngine {
    ctx: AioContext,
    files: Vec<Arc<File>>,
    direct: bool,
    vectored: bool,
    /// Reap without waiting from the ring itself (`userspace_reap`).
    userspace_reap: bool,
    /// The most iocbs the context takes at once (the job's depth).
    capacity: usize,
    slots: Slots<Slot>,
    /// Slots prepared but not yet submitted, in order.
    pending: VecDeque<usize>,
    /// Slots whose iocb the kernel holds.
    submitted: usize,
    /// Completions taken but not yet handed out: failed submissions, and `sync`'s.
    done: VecDeque<IoDone>,
    /// Scratch for io_submit and io_getevents.
    iocbs: Vec<*mut Iocb>,
    events: Vec<IoEvent>,
}

// SAFETY: the raw pointers in `iocbs` point into this engine's own slots and are only used
// during its own io_submit; the AIO context may be used from any thread.
unsafe impl Send for AioEngine {}

impl AioEngine {
    fn open(setup: EngineSetup) -> io::Result<Self> {
        let files = setup.files(DESCRIPTOR.name)?;
        let capacity = setup.depth.clamp(1, MAX_IODEPTH);
        let ctx = io_setup(capacity).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    "more AIO events than fs.aio-max-nr allows in all; \
                                       lower iodepth or numjobs, or raise fs.aio-max-nr"
                }
                Some(libc::ENOSYS) => "this kernel has no Linux AIO",
                _ => "cannot set up Linux AIO",
            };
            io::Error::new(e.kind(), format!("io_setup({capacity}): {why}: {e}"))
        })?;
        let capacity = capacity as usize;
        Ok(AioEngine {
            ctx,
            // A clone's files are all opened alike.
            direct: is_direct(&files[0])?,
            files,
            vectored: setup.options.flag(VECTORED),
            userspace_reap: setup.options.flag(USERSPACE_REAP),
            capacity,
            slots: Slots::new(),
            pending: VecDeque::new(),
            submitted: 0,
            done: VecDeque::new(),
            iocbs: Vec::with_capacity(capacity),
            events: vec![IoEvent::default(); capacity],
        })
    }

    /// Fills slot `idx`'s iocb for the rest of its transfer.
    fn prep(&mut self, idx: usize) {
        let vectored = self.vectored;
        let slot = self.slots.get_mut(idx);
        let fd = self.files[slot.req.file as usize].as_raw_fd() as u32;
        let len = slot.req.buf.len() - slot.done;
        // Only a read writes the buffer (a write leaves what it holds for the next fill).
        let base = match slot.req.op {
            Op::Read => slot.req.buf.as_mut_ptr(),
            Op::Write => slot.req.buf.as_ptr().cast_mut(),
        };
        // SAFETY: `done` is within the buffer, so the pointer stays in bounds.
        let at = unsafe { base.add(slot.done) };
        let (opcode, buf, nbytes) = match (vectored, slot.req.op) {
            (false, Op::Read) => (IOCB_CMD_PREAD, at as u64, len as u64),
            (false, Op::Write) => (IOCB_CMD_PWRITE, at as u64, len as u64),
            (true, op) => {
                let iov = slot.iov.insert(IoVec::new(at, len)).as_ptr() as u64;
                let opcode = match op {
                    Op::Read => IOCB_CMD_PREADV,
                    Op::Write => IOCB_CMD_PWRITEV,
                };
                (opcode, iov, 1)
            }
        };
        *slot.iocb = Iocb {
            aio_data: idx as u64,
            aio_lio_opcode: opcode,
            aio_fildes: fd,
            aio_buf: buf,
            aio_nbytes: nbytes,
            aio_offset: (slot.req.offset + slot.done as u64) as i64,
            ..Iocb::default()
        };
    }

    /// Hands pending iocbs to the kernel, as many as the context has room for. An iocb the
    /// kernel refuses completes with the error, so every I/O gets its own answer.
    fn submit(&mut self) {
        while !self.pending.is_empty() && self.submitted < self.capacity {
            let n = self.pending.len().min(self.capacity - self.submitted);
            self.iocbs.clear();
            for i in 0..n {
                let idx = self.pending[i];
                self.iocbs.push(&mut *self.slots.get_mut(idx).iocb);
            }
            // SAFETY: every pointer is to a prepared iocb owned by a busy slot, whose
            // buffer stays allocated until its completion is taken (or the engine waits
            // for it in drop).
            let r = syscall_result(unsafe {
                libc::syscall(
                    libc::SYS_io_submit,
                    self.ctx,
                    n as libc::c_long,
                    self.iocbs.as_mut_ptr(),
                )
            });
            match r {
                Ok(0) => break,
                Ok(k) => {
                    self.pending.drain(..k);
                    self.submitted += k;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Room comes back as submitted I/Os complete.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && self.submitted > 0 => break,
                Err(e) => {
                    let idx = self.pending.pop_front().expect("a pending iocb");
                    let req = self.slots.remove(idx).req;
                    self.done.push_back(IoDone {
                        req,
                        result: Err(e),
                    });
                }
            }
        }
    }

    /// Waits for at least `min` of the submitted iocbs (never more than there are) and
    /// takes every completion there is; short transfers go back to `pending` for the rest.
    /// Returns how many I/Os it completed into `out`.
    fn getevents(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<usize> {
        if self.submitted == 0 {
            return Ok(0);
        }
        let min = min.min(self.submitted);
        let n = match (min, self.userspace_reap) {
            (0, true) => self.ring_events().map_or_else(|| self.io_getevents(0), Ok)?,
            _ => self.io_getevents(min)?,
        };
        self.submitted -= n;
        let mut completed = 0;
        for i in 0..n {
            let IoEvent { data, res, .. } = self.events[i];
            let idx = data as usize;
            let slot = self.slots.get_mut(idx);
            let result = match res {
                r if r < 0 => Err(io::Error::from_raw_os_error(-r as i32)),
                0 if slot.done < slot.req.buf.len() => {
                    Err(ended_short(slot.req.op, slot.req.offset))
                }
                r => {
                    slot.done += r as usize;
                    if slot.done < slot.req.buf.len() {
                        self.prep(idx);
                        self.pending.push_back(idx);
                        continue;
                    }
                    Ok(())
                }
            };
            let req = self.slots.remove(idx).req;
            out.push(IoDone { req, result });
            completed += 1;
        }
        Ok(completed)
    }
}

impl AioEngine {
    /// io_getevents(2) for at least `min` events, into `events`; how many it took.
    fn io_getevents(&mut self, min: usize) -> io::Result<usize> {
        loop {
            // SAFETY: `events` has room for `capacity` events, which the kernel fills.
            let r = syscall_result(unsafe {
                libc::syscall(
                    libc::SYS_io_getevents,
                    self.ctx,
                    min as libc::c_long,
                    self.events.len() as libc::c_long,
                    self.events.as_mut_ptr(),
                    std::ptr::null_mut::<libc::timespec>(),
                )
            });
            match r {
                // Nothing was taken, so waiting again for `min` is exact.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// fio's `user_io_getevents`: the completions in the ring, taken without a system
    /// call, into `events`; `None` where the ring is not laid out as this code knows it.
    fn ring_events(&mut self) -> Option<usize> {
        use std::sync::atomic::Ordering;
        // SAFETY: the kernel maps the context's ring at its address for as long as the
        // context lives (until io_destroy, in drop); we only read it, but for `head`,
        // which belongs to the reader, and this engine is its only reader.
        let ring = unsafe { &*(self.ctx as *const AioRing) };
        if ring.magic != AIO_RING_MAGIC || ring.nr == 0 {
            return None;
        }
        // SAFETY: the `nr` events follow the header.
        let events = unsafe { (ring as *const AioRing).add(1).cast::<IoEvent>() };
        let mut n = 0;
        while n < self.events.len() {
            let head = ring.head.load(Ordering::Relaxed);
            if head == ring.tail.load(Ordering::Acquire) {
                break;
            }
            // SAFETY: `head` < `nr`, an event the kernel has published (tail, acquired).
            self.events[n] = unsafe { events.add((head % ring.nr) as usize).read_volatile() };
            ring.head.store((head + 1) % ring.nr, Ordering::Release);
            n += 1;
        }
        Some(n)
    }
}

impl Engine for AioEngine {
    fn caps(&self) -> Caps {
        Caps {
            sync: !self.direct,
            ..DESCRIPTOR.caps
        }
    }

    fn queue(&mut self, req: IoReq) -> io::Result<()> {
        let idx = self.slots.insert(Slot {
            req,
            done: 0,
            iocb: Box::default(),
            iov: None,
        });
        self.prep(idx);
        self.pending.push_back(idx);
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        self.submit();
        Ok(())
    }

    fn reap(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<()> {
        let mut got = 0;
        loop {
            self.submit();
            got += self.done.len();
            out.extend(self.done.drain(..));
            // Never wait for more than could still complete.
            let want = min.min(got + self.submitted + self.pending.len());
            got += self.getevents(want.saturating_sub(got), out)?;
            if got >= want {
                return Ok(());
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.slots.busy() + self.done.len()
    }

    fn sync(&mut self, file: usize) -> io::Result<()> {
        // fsync covers only completed writes: wait for every I/O first, keeping the
        // completions for the caller's next reap.
        let mut drained = Vec::new();
        let waited = self.reap(usize::MAX, &mut drained);
        self.done.extend(drained);
        waited?;
        self.files[file].sync_all()
    }
}

impl Drop for AioEngine {
    /// The kernel may still be using the buffers of submitted I/Os: wait for them before
    /// they are freed, and leak them if the wait itself fails.
    fn drop(&mut self) {
        let mut discard = Vec::new();
        while self.submitted > 0 {
            discard.clear();
            if self.getevents(self.submitted, &mut discard).is_err() {
                self.slots.leak();
                break;
            }
        }
        // SAFETY: the context is ours and nothing uses it after this.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.ctx) };
    }
}
