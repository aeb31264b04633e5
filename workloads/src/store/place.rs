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

/// The store beside a regular file: `FILE.csum`.
pub(super) fn beside(data: &Path) -> PathBuf {
    let mut p = data.as_os_str().to_owned();
    p.push(".csum");
    PathBuf::from(p)
}

/// The store of the block device `data`, named after it, in the private directory.
pub(super) fn for_device(data: &Path) -> Result<PathBuf, StoreError> {
    let dir = state_home()?.join("csumbench");
    private_dir(&dir)?;
    let name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "device".into());
    Ok(dir.join(format!("{name}.csum")))
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
