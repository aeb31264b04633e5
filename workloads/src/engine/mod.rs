//! I/O engines behind one ops table, as fio's `engines/`: queue, commit, reap.
//! Synchronous engines do the I/O in `queue` and hand the completion back at `reap`.
//!
//! Each engine is one file with one `DESCRIPTOR` (an [`EngineDescriptor`]: name, fio's
//! aliases, capabilities, its own options, how to open it), named once below.

mod descriptor;
pub mod fault;
pub mod registry;
mod slots;
mod sync_engine;

use std::io;

use crate::buf::AlignedBuf;

pub use descriptor::{Caps, EngineDescriptor, EngineKind, EngineOptions, EngineSetup};
pub use fault::{FaultPlan, FaultyEngine, IoFault};
pub use null::NullEngine;

/// Declares each engine's module and lists its `DESCRIPTOR` in the registry, in the order
/// given (the order `harness list` shows).
macro_rules! engines {
    ($($module:ident),+ $(,)?) => {
        $(mod $module;)+
        static ENGINES: &[&EngineDescriptor] = &[$(&$module::DESCRIPTOR),+];
    };
}

// Adding an engine: its file, and its name here.
engines!(sync, psync, pvsync, libaio, uring, null);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
        }
    }
}

/// One I/O: the engine owns the buffer while the I/O is in flight.
pub struct IoReq {
    pub op: Op,
    /// Which of the engine's files (the order it was opened with, from 0); beside `op`,
    /// it takes no room of its own.
    pub file: u32,
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

pub trait Engine: Send {
    fn caps(&self) -> Caps;
    /// Queue one I/O. Sync engines perform it here.
    fn queue(&mut self, req: IoReq) -> io::Result<()>;
    /// Submit what was queued, all of it at once where the engine can.
    fn commit(&mut self) -> io::Result<()>;
    /// Append at least `min` completions to `out` (fewer only if fewer are in flight), and
    /// every other completion already there.
    fn reap(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<()>;
    /// I/Os queued or in flight and not yet reaped.
    fn in_flight(&self) -> usize;
    /// fsync one of the engine's files, once every I/O queued before has completed.
    fn sync(&mut self, file: usize) -> io::Result<()>;
    /// Pre-registers the caller's I/O buffers with the kernel where the engine can use that
    /// (io_uring's `fixedbufs`), from the thread that will do the I/O. I/Os on other buffers
    /// still work, unregistered. Nothing to do for the other engines.
    fn register_buffers(&mut self, _bufs: &[&AlignedBuf]) -> io::Result<()> {
        Ok(())
    }
}

/// The error of an I/O that moved nothing more before its end: for a read, the end of the
/// file. `offset` is where the I/O started, which is how callers name it.
pub(crate) fn ended_short(op: Op, offset: u64) -> io::Error {
    match op {
        Op::Read => io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("short read at offset {offset}: the file ends before it"),
        ),
        Op::Write => io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write at offset {offset}: nothing more was written"),
        ),
    }
}

/// Whether the file was opened with O_DIRECT.
pub(crate) fn is_direct(file: &std::fs::File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::O_DIRECT != 0)
}
