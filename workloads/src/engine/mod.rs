//! I/O engines behind one ops table, as fio's `engines/`: queue, commit, reap.
//! Synchronous engines do the I/O in `queue` and hand the completion back at `reap`.

pub mod fault;
mod null;
mod psync;
mod sync_engine;
mod uring;

use std::fs::File;
use std::io;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

use crate::buf::AlignedBuf;

pub use fault::{FaultPlan, FaultyEngine, IoFault};
pub use null::NullEngine;
pub use psync::PsyncEngine;
pub use uring::UringEngine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

/// One I/O: the engine owns the buffer while the I/O is in flight.
pub struct IoReq {
    pub op: Op,
    pub offset: u64,
    pub buf: AlignedBuf,
    /// Caller's tag, handed back unchanged in the completion.
    pub tag: u64,
}

pub struct IoDone {
    pub req: IoReq,
    /// Bytes moved, or the error. A short transfer is an error, never a silent success.
    pub result: io::Result<()>,
}

/// What an engine can do, as fio's engine flags.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Caps {
    /// I/O completes inside `queue`.
    pub sync: bool,
    /// No device: nothing reaches a file.
    pub diskless: bool,
}

pub trait Engine: Send {
    fn caps(&self) -> Caps;
    /// Queue one I/O. Sync engines perform it here.
    fn queue(&mut self, req: IoReq) -> io::Result<()>;
    /// Submit what was queued.
    fn commit(&mut self) -> io::Result<()>;
    /// Append at least `min` completions to `out` (fewer only if fewer are in flight).
    fn reap(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<()>;
    /// I/Os queued or in flight and not yet reaped.
    fn in_flight(&self) -> usize;
    /// fsync the file.
    fn sync(&mut self) -> io::Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Psync,
    #[serde(rename = "io_uring")]
    IoUring,
    Null,
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "psync" | "sync" | "pvsync" => Ok(EngineKind::Psync),
            "io_uring" => Ok(EngineKind::IoUring),
            "null" => Ok(EngineKind::Null),
            "libaio" => Err(
                "ioengine=libaio: not supported; use ioengine=io_uring for asynchronous I/O \
                 with a real queue depth"
                    .into(),
            ),
            other => Err(format!(
                "ioengine={other}: expected psync, sync, pvsync, io_uring or null"
            )),
        }
    }
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Psync => "psync",
            EngineKind::IoUring => "io_uring",
            EngineKind::Null => "null",
        }
    }

    /// Opens an engine over an already opened file (`None` only for `null`). `depth` is
    /// the most I/Os the caller keeps in flight (io_uring sizes its ring from it).
    pub fn open(self, file: Option<Arc<File>>, depth: u32) -> io::Result<Box<dyn Engine>> {
        let file = || {
            file.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} needs a file", self.name()),
                )
            })
        };
        Ok(match self {
            EngineKind::Psync => Box::new(PsyncEngine::open(file()?)),
            EngineKind::IoUring => Box::new(UringEngine::new(file()?, depth)?),
            EngineKind::Null => Box::new(NullEngine::default()),
        })
    }
}
