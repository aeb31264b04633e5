//! The advisory lock a store is held under: `flock`, shared for a reader, exclusive for a
//! writer, taken without waiting.
//!
//! Why flock: its lock belongs to the open file, so it lasts as long as the store's own
//! descriptor, whatever else the process opens and closes (a POSIX `fcntl` lock drops
//! when *any* descriptor of the file in the process is closed, e.g. by
//! [`super::CsumStore::exists`]); two stores of one file in one process conflict as two
//! processes do (POSIX locks of one process never do); and the kernel drops it when the
//! process dies, however it dies. The holder's pid, which `F_GETLK` would give only for
//! POSIX locks (and `F_OFD_GETLK` never), comes from `/proc/locks`, which lists flock
//! locks with the pid that took them.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Mode, StoreError};

/// Takes the lock `mode` needs on `file`, the store at `path`, or says who holds it.
pub(super) fn lock(file: &File, path: &Path, mode: Mode) -> Result<(), StoreError> {
    let kind = match mode {
        Mode::Read => libc::LOCK_SH,
        Mode::Update => libc::LOCK_EX,
    };
    // SAFETY: flock only reads the descriptor number, which `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            what: "cannot lock it",
            error,
        });
    }
    let pid = file.metadata().ok().and_then(|m| {
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        holder(&locks, m.dev(), m.ino(), mode)
    });
    Err(StoreError::Locked {
        path: path.to_path_buf(),
        pid,
    })
}

/// The pid of a process whose flock on the file `(dev, ino)` conflicts with `mode`, from
/// the text of `/proc/locks`. Lines read `1: FLOCK  ADVISORY  WRITE 1234 fe:00:5571983 0
/// EOF` (waiters have `->` after the number; a pid outside our namespace is 0 or -1).
/// The device is matched when it can be: btrfs reports one number to stat and another to
/// /proc/locks, so an inode-only match is the fallback.
pub(super) fn holder(locks: &str, dev: u64, ino: u64, mode: Mode) -> Option<u32> {
    let dev = format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev));
    let mut same_inode = None;
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, kind, pid, file, ..] = fields[..] else {
            continue;
        };
        // Readers share: only a writer stops one.
        if mode == Mode::Read && kind != "WRITE" {
            continue;
        }
        let Some((file_dev, file_ino)) = file.rsplit_once(':') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if file_ino.parse() != Ok(ino) || pid == 0 {
            continue;
        }
        if file_dev == dev {
            return Some(pid);
        }
        same_inode.get_or_insert(pid);
    }
    same_inode
}

/// Whether `path` still names `file`: a store replaced (renamed over) between opening and
/// locking is locked in vain, and opened again.
pub(super) fn still_at(path: &Path, file: &File) -> Result<bool, StoreError> {
    let io = |error| StoreError::Io {
        path: path.to_path_buf(),
        what: "cannot stat it",
        error,
    };
    let held = file.metadata().map_err(io)?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok((now.dev(), now.ino()) == (held.dev(), held.ino())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(e)),
    }
}
