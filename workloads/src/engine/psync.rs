//! `psync`: pread/pwrite, one I/O at a time, done in `queue` (fio's default engine).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::descriptor::accept_any;
use super::sync_engine::{caps, SyncEngine, Transfer};
use super::{EngineDescriptor, Op};

pub static DESCRIPTOR: EngineDescriptor = EngineDescriptor {
    name: "psync",
    aliases: &[],
    summary: "pread(2)/pwrite(2), one I/O at a time",
    caps: caps(false),
    options: &[],
    check: accept_any,
    open: |setup| {
        let files = setup.files(DESCRIPTOR.name)?;
        Ok(Box::new(SyncEngine::new(Pio(files))))
    },
};

/// pread/pwrite on the clone's files.
struct Pio(Vec<Arc<File>>);

impl Transfer for Pio {
    const DISKLESS: bool = false;

    fn step(&mut self, op: Op, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match op {
            Op::Read => self.0[file].read_at(buf, offset),
            Op::Write => self.0[file].write_at(buf, offset),
        }
    }

    fn sync(&self, file: usize) -> io::Result<()> {
        self.0[file].sync_all()
    }
}
