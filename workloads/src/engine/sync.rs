//! `sync`: read(2)/write(2) at the file position, moved with lseek(2) when the position is
//! not already where the I/O starts (fio's sync engine). The position belongs to an open
//! file description, which clones of a job on one file share: so the engine reopens the
//! file for a description (and a position) of its own, as each fio job opens its files.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use super::descriptor::accept_any;
use super::sync_engine::{caps, SyncEngine, Transfer};
use super::{EngineDescriptor, Op};

pub static DESCRIPTOR: EngineDescriptor = EngineDescriptor {
    name: "sync",
    aliases: &[],
    summary: "lseek(2) then read(2)/write(2) at the file position, one I/O at a time",
    caps: caps(false),
    options: &[],
    check: accept_any,
    open: |setup| {
        let files = setup.files(DESCRIPTOR.name)?;
        let files = files
            .iter()
            .map(|f| Ok((reopen(f)?, None)))
            .collect::<io::Result<_>>()?;
        Ok(Box::new(SyncEngine::new(Positioned(files))))
    },
};

/// The same file with the same access and O_DIRECT, as a new open file description.
fn reopen(file: &File) -> io::Result<File> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let access = flags & libc::O_ACCMODE;
    OpenOptions::new()
        .read(access != libc::O_WRONLY)
        .write(access != libc::O_RDONLY)
        .custom_flags(flags & libc::O_DIRECT)
        .open(format!("/proc/self/fd/{fd}"))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("sync: cannot reopen the file for a position of its own: {e}"),
            )
        })
}

/// Each file, reopened, with where its position is when known.
struct Positioned(Vec<(File, Option<u64>)>);

impl Transfer for Positioned {
    const DISKLESS: bool = false;

    fn step(&mut self, op: Op, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let (file, position) = &mut self.0[file];
        // Unknown until this call succeeds.
        if position.take() != Some(offset) {
            file.seek(SeekFrom::Start(offset))?;
        }
        let moved = match op {
            Op::Read => file.read(buf)?,
            Op::Write => file.write(buf)?,
        };
        *position = Some(offset + moved as u64);
        Ok(moved)
    }

    fn sync(&self, file: usize) -> io::Result<()> {
        self.0[file].0.sync_all()
    }
}
