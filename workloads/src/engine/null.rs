//! `null`: no I/O at all, as fio's null engine. Tests the harness itself and shows the
//! pipeline's own cost. Reads leave the buffer as it was.

use std::io;

use super::descriptor::accept_any;
use super::sync_engine::{caps, SyncEngine, Transfer};
use super::{EngineDescriptor, Op};

pub static DESCRIPTOR: EngineDescriptor = EngineDescriptor {
    name: "null",
    aliases: &[],
    summary: "no I/O: every I/O completes at once and moves nothing (the pipeline's own cost)",
    caps: caps(true),
    options: &[],
    check: accept_any,
    open: |_| Ok(Box::new(NullEngine::default())),
};

pub struct NoIo;

impl Transfer for NoIo {
    const DISKLESS: bool = true;

    fn step(&mut self, _op: Op, _file: usize, _offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn sync(&self, _file: usize) -> io::Result<()> {
        Ok(())
    }
}

pub type NullEngine = SyncEngine<NoIo>;

impl Default for NullEngine {
    fn default() -> Self {
        SyncEngine::new(NoIo)
    }
}
