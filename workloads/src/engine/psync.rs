//! `psync`: pread/pwrite, one I/O at a time, done in `queue`.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{Caps, Engine, IoDone, IoReq, Op};

pub struct PsyncEngine {
    file: Arc<File>,
    done: VecDeque<IoDone>,
}

impl PsyncEngine {
    pub fn new(file: Arc<File>) -> Self {
        PsyncEngine {
            file,
            done: VecDeque::new(),
        }
    }
}

/// Runs one I/O to completion; a short transfer (end of file) is an error naming the offset.
pub(crate) fn transfer(file: &File, req: &mut IoReq) -> io::Result<()> {
    let offset = req.offset;
    match req.op {
        Op::Write => file.write_all_at(&req.buf, offset),
        Op::Read => file.read_exact_at(&mut req.buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("short read at offset {offset}: the file ends before it"),
                )
            } else {
                e
            }
        }),
    }
}

impl Engine for PsyncEngine {
    fn caps(&self) -> Caps {
        Caps {
            sync: true,
            diskless: false,
        }
    }

    fn queue(&mut self, mut req: IoReq) -> io::Result<()> {
        let result = transfer(&self.file, &mut req);
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
        self.file.sync_all()
    }
}
