//! `pvsync`: preadv/pwritev with one iovec, one I/O at a time, done in `queue`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::descriptor::accept_any;
use super::sync_engine::{caps, SyncEngine, Transfer};
use super::{EngineDescriptor, Op};

pub static DESCRIPTOR: EngineDescriptor = EngineDescriptor {
    name: "pvsync",
    aliases: &[],
    summary: "preadv(2)/pwritev(2) of one iovec, one I/O at a time",
    caps: caps(false),
    options: &[],
    check: accept_any,
    open: |setup| {
        let files = setup.files(DESCRIPTOR.name)?;
        Ok(Box::new(SyncEngine::new(Vectored(files))))
    },
};

struct Vectored(Vec<Arc<File>>);

impl Transfer for Vectored {
    const DISKLESS: bool = false;

    fn step(&mut self, op: Op, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let fd = self.0[file].as_raw_fd();
        let at = offset as libc::off_t;
        // SAFETY: the iovec covers `buf`, which outlives the call; the kernel only reads it
        // for a write.
        let n = unsafe {
            match op {
                Op::Read => libc::preadv(fd, &iov, 1, at),
                Op::Write => libc::pwritev(fd, &iov, 1, at),
            }
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    fn sync(&self, file: usize) -> io::Result<()> {
        self.0[file].sync_all()
    }
}
