//! `null`: no I/O at all, as fio's null engine. Tests the harness itself and shows the
//! pipeline's own cost. Reads leave the buffer as it was.

use std::io;

use super::sync_engine::{SyncEngine, Transfer};
use super::IoReq;

pub struct NoIo;

impl Transfer for NoIo {
    const DISKLESS: bool = true;

    fn transfer(&self, _req: &mut IoReq) -> io::Result<()> {
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

pub type NullEngine = SyncEngine<NoIo>;

impl Default for NullEngine {
    fn default() -> Self {
        SyncEngine::new(NoIo)
    }
}
