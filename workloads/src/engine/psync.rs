//! `psync`: pread/pwrite, one I/O at a time, done in `queue`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::sync_engine::{SyncEngine, Transfer};
use super::{IoReq, Op};

/// pread/pwrite on one file.
pub struct Pio(Arc<File>);

pub type PsyncEngine = SyncEngine<Pio>;

impl PsyncEngine {
    pub fn open(file: Arc<File>) -> Self {
        SyncEngine::new(Pio(file))
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

impl Transfer for Pio {
    const DISKLESS: bool = false;

    fn transfer(&self, req: &mut IoReq) -> io::Result<()> {
        transfer(&self.0, req)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}
