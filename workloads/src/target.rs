//! Opening the file a job runs on — safely. Never truncates or overwrites a file csumbench
//! did not create unless told to, and never writes to a block device unless told to.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::CsumStore;

/// What the caller intends, and what it allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    pub write: bool,
    pub direct: bool,
    /// Write over a regular file that has no checksum store of ours.
    pub overwrite: bool,
    /// Write to a block device.
    pub allow_device_write: bool,
}

pub struct Target {
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Bytes available: the device's size, or the file's length after preparation.
    pub size: u64,
    pub is_device: bool,
    /// The file did not exist before this run (so it is ours to remove).
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("directory {0} does not exist")]
    NoDirectory(PathBuf),
    #[error(
        "refusing to write to block device {0}: it would destroy its contents; \
         pass --allow-device-write if that is what you want"
    )]
    DeviceWrite(PathBuf),
    #[error(
        "refusing to overwrite {0}: it exists and csumbench did not create it \
         (no checksum store beside it); pass --overwrite to use it anyway"
    )]
    NotOurs(PathBuf),
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> TargetError + 'a {
    move |source| TargetError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// The size of a block device, from the kernel.
fn device_size(file: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

impl Target {
    /// Drops the file's clean cached pages (fio's `invalidate=1`), so that reads start from
    /// the device. Dirty pages stay cached: sync first if they must go too.
    pub fn invalidate_cache(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: fadvise only advises; any descriptor and range may be passed.
        let r =
            unsafe { libc::posix_fadvise(self.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        match r {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Opens (creating if needed) the job's file. A regular file is made at least `size` long.
pub fn open(path: &Path, size: u64, access: Access) -> Result<Target, TargetError> {
    let meta = std::fs::metadata(path).ok();
    let is_device = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    let exists = meta.is_some();
    if is_device && access.write && !access.allow_device_write {
        return Err(TargetError::DeviceWrite(path.to_path_buf()));
    }
    if exists
        && !is_device
        && access.write
        && !access.overwrite
        && !CsumStore::exists(&CsumStore::path_for(path, false))
    {
        return Err(TargetError::NotOurs(path.to_path_buf()));
    }
    if !exists {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent.filter(|d| !d.is_dir()) {
            return Err(TargetError::NoDirectory(dir.to_path_buf()));
        }
    }
    let mut opts = OpenOptions::new();
    opts.read(true).write(access.write);
    if !is_device {
        opts.create(access.write);
    }
    if access.direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    let file = opts.open(path).map_err(|e| {
        let what = if access.direct && e.raw_os_error() == Some(libc::EINVAL) {
            "O_DIRECT is not supported on this filesystem"
        } else {
            "cannot open"
        };
        io_err(path, what)(e)
    })?;
    let size = if is_device {
        device_size(&file).map_err(io_err(path, "cannot read the device size"))?
    } else {
        let len = file.metadata().map_err(io_err(path, "cannot stat"))?.len();
        if access.write && len < size {
            file.set_len(size)
                .map_err(io_err(path, "cannot extend the file"))?;
        }
        len.max(if access.write { size } else { len })
    };
    Ok(Target {
        path: path.to_path_buf(),
        file: Arc::new(file),
        size,
        is_device,
        created: !exists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write() -> Access {
        Access {
            write: true,
            ..Access::default()
        }
    }

    #[test]
    fn creates_and_sizes_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let t = open(&p, 1 << 20, write()).unwrap();
        assert!(t.created && !t.is_device);
        assert_eq!(t.size, 1 << 20);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 20);
        t.invalidate_cache().unwrap();
    }

    #[test]
    fn refuses_foreign_files_and_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("precious");
        std::fs::write(&p, b"keep me").unwrap();
        let e = open(&p, 4096, write()).err().unwrap().to_string();
        assert!(
            e.contains("refusing to overwrite") && e.contains("--overwrite"),
            "{e}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
        let ok = open(
            &p,
            4096,
            Access {
                overwrite: true,
                ..write()
            },
        );
        assert!(ok.is_ok());
        let e = open(&dir.path().join("nope/f"), 4096, write())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
