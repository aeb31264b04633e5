//! `null`: no I/O at all, as fio's null engine. Tests the harness itself and shows the
//! pipeline's own cost. Reads leave the buffer as it was.

use std::collections::VecDeque;
use std::io;

use super::{Caps, Engine, IoDone, IoReq};

#[derive(Default)]
pub struct NullEngine {
    done: VecDeque<IoDone>,
}

impl Engine for NullEngine {
    fn caps(&self) -> Caps {
        Caps {
            sync: true,
            diskless: true,
        }
    }

    fn queue(&mut self, req: IoReq) -> io::Result<()> {
        self.done.push_back(IoDone {
            req,
            result: Ok(()),
        });
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
        Ok(())
    }
}
