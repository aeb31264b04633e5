//! The part every synchronous engine shares: the I/O happens in `queue`, and its completion
//! waits in a list for `reap` (fio's core does the same around its sync engines). An engine
//! supplies only one system call's worth of transfer, as a [`Transfer`]; short transfers are
//! continued here, so every synchronous engine moves whole I/Os the same way.

use std::collections::VecDeque;
use std::io;

use super::{ended_short, Caps, Engine, IoDone, IoReq, Op};

/// What a synchronous engine does for one system call and for fsync.
pub trait Transfer: Send {
    /// True when nothing reaches a file (the null engine).
    const DISKLESS: bool;
    /// Moves up to `buf.len()` bytes at `offset` of file `file`; the count moved, 0 at the
    /// end of the file.
    fn step(&mut self, op: Op, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    fn sync(&self, file: usize) -> io::Result<()>;
}

/// The capabilities of every synchronous engine.
pub const fn caps(diskless: bool) -> Caps {
    Caps {
        sync: true,
        diskless,
        queues_only_direct: false,
    }
}

pub struct SyncEngine<T> {
    io: T,
    done: VecDeque<IoDone>,
}

impl<T: Transfer> SyncEngine<T> {
    pub fn new(io: T) -> Self {
        SyncEngine {
            io,
            done: VecDeque::new(),
        }
    }

    /// Runs one I/O to completion, continuing short transfers; one that moves nothing
    /// more (the end of the file, for a read) is an error naming the I/O's offset.
    fn transfer(&mut self, req: &mut IoReq) -> io::Result<()> {
        let mut moved = 0;
        while moved < req.buf.len() {
            let at = req.offset + moved as u64;
            let rest = match req.op {
                Op::Read => &mut req.buf[moved..],
                Op::Write => req.buf.for_write(moved),
            };
            match self.io.step(req.op, req.file as usize, at, rest) {
                Ok(0) => return Err(ended_short(req.op, req.offset)),
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<T: Transfer> Engine for SyncEngine<T> {
    fn caps(&self) -> Caps {
        caps(T::DISKLESS)
    }

    fn queue(&mut self, mut req: IoReq) -> io::Result<()> {
        let result = self.transfer(&mut req);
        self.done.push_back(IoDone { req, result });
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn reap(&mut self, _min: usize, out: &mut Vec<IoDone>) -> io::Result<()> {
        // One at a time: usually there is one, and a drain costs more than the move.
        while let Some(done) = self.done.pop_front() {
            out.push(done);
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    fn sync(&mut self, file: usize) -> io::Result<()> {
        self.io.sync(file)
    }
}
