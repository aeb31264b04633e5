//! The part every synchronous engine shares: the I/O happens in `queue`, and its completion
//! waits in a list for `reap` (fio's core does the same around its sync engines). An engine
//! supplies only what one I/O does, as a [`Transfer`].

use std::collections::VecDeque;
use std::io;

use super::{Caps, Engine, IoDone, IoReq};

/// What a synchronous engine does for one I/O and for fsync.
pub trait Transfer: Send {
    /// True when nothing reaches a file (the null engine).
    const DISKLESS: bool;
    fn transfer(&self, req: &mut IoReq) -> io::Result<()>;
    fn sync(&self) -> io::Result<()>;
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
}

impl<T: Transfer> Engine for SyncEngine<T> {
    fn caps(&self) -> Caps {
        Caps {
            sync: true,
            diskless: T::DISKLESS,
        }
    }

    fn queue(&mut self, mut req: IoReq) -> io::Result<()> {
        let result = self.io.transfer(&mut req);
        self.done.push_back(IoDone { req, result });
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn reap(&mut self, _min: usize, out: &mut Vec<IoDone>) -> io::Result<()> {
        out.extend(self.done.drain(..));
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.io.sync()
    }
}
