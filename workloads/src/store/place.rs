//! Where a store lives: beside a regular file, and in a directory private to the user for
//! a block device (whose directory, /dev, is no place for our files).
//!
//! Device stores go in `$XDG_STATE_HOME/csumbench/` (by default
//! `~/.local/state/csumbench/`), not in the temp dir: a path there is predictable and the
//! directory world-writable, so anyone could plant a symlink or a store of their own, and
//! a device's contents outlive a reboot that empties /tmp (then all of it would be laid
//! out again). The directory is made 0700 and, every time, checked to be a real directory
//! of this user's that no one else can write or read.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The store beside a regular file: `FILE.csum`, beside the file itself, whatever path
/// (a symbolic link, `..`) led to it.
pub(super) fn beside(data: &Path) -> PathBuf {
    let mut p = resolved(data).into_os_string();
    p.push(".csum");
    PathBuf::from(p)
}

/// The store of the block device `data`, named after the device itself (not a link such
/// as /dev/disk/by-id/...), in the private directory.
pub(super) fn for_device(data: &Path) -> Result<PathBuf, StoreError> {
    let dir = state_home()?.join("csumbench");
    private_dir(&dir)?;
    let name = resolved(data)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "device".into());
    Ok(dir.join(format!("{name}.csum")))
}

/// `data` with symbolic links and `..` resolved (its folder's, for a file not made yet):
/// every path to one file finds its one store, and so the one lock on it. A store beside
/// the link instead would let a write through the link leave the file's own store
/// "clean" over data it no longer matches, and a second process in past the lock.
fn resolved(data: &Path) -> PathBuf {
    resolved_within(data, 40)
}

/// [`resolved`], following at most `links` more links (the kernel's limit is 40): a link
/// to a file not made yet leads to where that file will be.
fn resolved_within(data: &Path, links: u32) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(data) {
        return real;
    }
    if let (Ok(target), true) = (std::fs::read_link(data), links > 0) {
        let target = data
            .parent()
            .map_or(target.clone(), |dir| dir.join(&target));
        return resolved_within(&target, links - 1);
    }
    let (Some(dir), Some(name)) = (data.parent(), data.file_name()) else {
        return data.to_path_buf();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).map_or_else(|_| data.to_path_buf(), |d| d.join(name))
}

/// `$XDG_STATE_HOME`, or `$HOME/.local/state` where it is unset, empty or relative (as the
/// XDG base directory specification says).
fn state_home() -> Result<PathBuf, StoreError> {
    let absolute = |var| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(dir) = absolute("XDG_STATE_HOME") {
        return Ok(dir);
    }
    match absolute("HOME") {
        Some(home) => Ok(home.join(".local/state")),
        None => Err(StoreError::PrivateDir {
            dir: "$XDG_STATE_HOME/csumbench".into(),
            why: "neither XDG_STATE_HOME nor HOME is set to an absolute path".into(),
        }),
    }
}

/// Makes `dir` (0700, with any missing parents) unless it exists, then checks that it is a
/// directory (not a symlink to one) of this user's, closed to everyone else.
pub(super) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    let refuse = |why: String| StoreError::PrivateDir {
        dir: dir.to_path_buf(),
        why,
    };
    let lstat = || std::fs::symlink_metadata(dir);
    if lstat().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| refuse(format!("cannot create it: {e}")))?;
    }
    let meta = lstat().map_err(|e| refuse(format!("cannot stat it: {e}")))?;
    if meta.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refuse(format!(
            "it belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "other users have access to it (mode {mode:04o}); `chmod 700` it"
        )));
    }
    Ok(())
}
