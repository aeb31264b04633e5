//! Opening the file a job runs on — safely. Never truncates or overwrites a file csumbench
//! did not create unless told to, and never writes to a block device unless told to.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::store::{CsumStore, StoreError};
use crate::units::{format_size, format_size_approx};

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
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// Writing a device a filesystem or another device sits on would corrupt it.
    #[error("refusing to write to block device {path}: it is in use ({})", .users.join("; "))]
    DeviceInUse { path: PathBuf, users: Vec<String> },
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
    #[error(
        "{0} is a directory: filename names the file or block device to use \
         (directory names a folder for the job's files)"
    )]
    IsDirectory(PathBuf),
    #[error("{path} is a {kind}, not a regular file or a block device")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "{path}: the job needs {} but the device holds {}",
        format_size(*.need),
        format_size_approx(*.size)
    )]
    DeviceTooSmall { path: PathBuf, need: u64, size: u64 },
    /// Free space, checked before any I/O; `others` is what this run's other files on the
    /// same filesystem still need.
    #[error(
        "not enough free space for {path}: the job needs {} more{}, but the filesystem \
         holding {dir} has {} free",
        format_size_approx(*.need),
        others_note(*.others),
        format_size_approx(*.free)
    )]
    NoSpace {
        path: PathBuf,
        dir: PathBuf,
        need: u64,
        others: u64,
        free: u64,
    },
    /// The checksum store beside the file cannot be read.
    #[error(transparent)]
    Store(StoreError),
    /// The message includes the OS error (not a `source`, so a chain prints it once).
    #[error("{path}: {what}: {error}")]
    Io {
        path: PathBuf,
        what: &'static str,
        error: io::Error,
    },
}

fn others_note(others: u64) -> String {
    match others {
        0 => String::new(),
        n => format!(" (and this run's other files {})", format_size_approx(n)),
    }
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> TargetError + 'a {
    move |error| TargetError::Io {
        path: path.to_path_buf(),
        what,
        error,
    }
}

/// What a path is, for a message, when it is neither a regular file nor a block device.
fn odd_kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() || t.is_block_device() || t.is_dir() {
        None
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_fifo() {
        Some("FIFO (named pipe)")
    } else if t.is_socket() {
        Some("socket")
    } else {
        Some("special file")
    }
}

/// Regular files this process has opened for writing, with the size each must reach: they
/// are sparse until written, so their blocks count against the free space together.
/// By (filesystem, inode), so two spellings of one path are one file.
static PROMISED: Mutex<Vec<Promise>> = Mutex::new(Vec::new());

struct Promise {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
}

impl Promise {
    /// Bytes the file still lacks; 0 once it is gone or replaced.
    fn shortfall(&self) -> u64 {
        match std::fs::metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                self.size.saturating_sub(allocated(&m))
            }
            _ => 0,
        }
    }
}

/// Bytes the file has on disk (holes take none).
fn allocated(meta: &Metadata) -> u64 {
    meta.blocks().saturating_mul(512)
}

/// The filesystem a path is (or would be) on: the path if it exists, else its directory.
/// Relative directories are made absolute, for messages.
fn fs_dir(path: &Path, exists: bool) -> PathBuf {
    let dir = if exists {
        path
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    match dir.is_relative() {
        true => std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
        false => dir.to_path_buf(),
    }
}

/// Refuses, before anything is written, a regular file of `size` bytes that its filesystem
/// cannot hold (with this run's other files there), or that is on a read-only filesystem.
fn check_space(path: &Path, meta: Option<&Metadata>, size: u64) -> Result<(), TargetError> {
    let dir = fs_dir(path, meta.is_some());
    let vfs = statvfs(&dir).map_err(io_err(&dir, "cannot read the filesystem's free space"))?;
    if vfs.f_flag & libc::ST_RDONLY != 0 {
        return Err(io_err(path, "cannot write")(io::Error::from_raw_os_error(
            libc::EROFS,
        )));
    }
    let free = available(&vfs);
    let dev = std::fs::metadata(&dir)
        .map_err(io_err(&dir, "cannot stat"))?
        .dev();
    let me = meta.map(|m| (m.dev(), m.ino()));
    let need = size.saturating_sub(meta.map_or(0, allocated));
    let promised = PROMISED.lock().unwrap_or_else(|e| e.into_inner());
    let others = promised
        .iter()
        .filter(|p| p.dev == dev && Some((p.dev, p.ino)) != me);
    // What the others could lack at most (their sizes) settles most checks without a stat
    // of each: a clone's thousands of files would take one per file per file.
    let most = others.clone().map(|p| p.size).fold(0, u64::saturating_add);
    if need == 0 || need.saturating_add(most) <= free {
        return Ok(());
    }
    let others: u64 = others.map(Promise::shortfall).fold(0, u64::saturating_add);
    drop(promised);
    if need.saturating_add(others) > free {
        return Err(TargetError::NoSpace {
            path: path.to_path_buf(),
            dir,
            need,
            others,
            free,
        });
    }
    Ok(())
}

/// Checks, before any of them is created, that the regular files of a run fit: each is
/// to reach its size, together on their filesystem, with what this process promised to
/// files opened before. `files`: path, size, and whether the job writes it. A file only
/// read needs no room when it has a checksum store (else it is laid out: written). Paths
/// that are not (or will not be) regular files are left to [`open`], which says what is
/// wrong with them.
pub fn check_room(
    files: impl IntoIterator<Item = (PathBuf, u64, bool)>,
) -> Result<(), TargetError> {
    /// A file to be, with what it lacks; `id` (device, inode) if it exists.
    struct Planned {
        path: PathBuf,
        id: Option<(u64, u64)>,
        lacks: u64,
    }
    /// The planned files on one filesystem, and a directory on it to ask about.
    struct Fs {
        dev: u64,
        dir: PathBuf,
        files: Vec<Planned>,
    }
    let mut by_fs: Vec<Fs> = Vec::new();
    for (path, size, write) in files {
        let meta = std::fs::metadata(&path).ok();
        if meta.as_ref().is_some_and(|m| !m.is_file()) {
            continue;
        }
        let ours = || matches!(CsumStore::exists(&CsumStore::beside(&path)), Ok(true));
        if !write && meta.is_some() && ours() {
            continue;
        }
        let dir = fs_dir(&path, meta.is_some());
        let Ok(dev) = std::fs::metadata(&dir).map(|m| m.dev()) else {
            continue;
        };
        let id = meta.as_ref().map(|m| (m.dev(), m.ino()));
        let lacks = size.saturating_sub(meta.as_ref().map_or(0, allocated));
        let fs = match by_fs.iter().position(|fs| fs.dev == dev) {
            Some(i) => &mut by_fs[i],
            None => {
                by_fs.push(Fs {
                    dev,
                    dir,
                    files: Vec::new(),
                });
                by_fs.last_mut().expect("just pushed")
            }
        };
        match fs
            .files
            .iter_mut()
            .find(|f| f.path == path || (id.is_some() && f.id == id))
        {
            Some(f) => f.lacks = f.lacks.max(lacks),
            None => fs.files.push(Planned { path, id, lacks }),
        }
    }
    let promised = PROMISED.lock().unwrap_or_else(|e| e.into_inner());
    for Fs { dev, dir, files } in by_fs {
        let Some(first) = files.iter().find(|f| f.lacks > 0) else {
            continue;
        };
        let earlier: u64 = promised
            .iter()
            .filter(|p| p.dev == dev && !files.iter().any(|f| f.id == Some((p.dev, p.ino))))
            .map(Promise::shortfall)
            .fold(0, u64::saturating_add);
        let total = files
            .iter()
            .map(|f| f.lacks)
            .fold(earlier, u64::saturating_add);
        let vfs = statvfs(&dir).map_err(io_err(&dir, "cannot read the filesystem's free space"))?;
        let free = available(&vfs);
        if total > free {
            return Err(TargetError::NoSpace {
                path: first.path.clone(),
                dir,
                need: first.lacks,
                others: total - first.lacks,
                free,
            });
        }
    }
    Ok(())
}

/// Remembers a regular file opened for writing, for [`check_space`] of the next one.
fn promise(path: &Path, file: &File, size: u64) {
    let Ok(m) = file.metadata() else { return };
    let mut promised = PROMISED.lock().unwrap_or_else(|e| e.into_inner());
    promised.retain(|p| (p.dev, p.ino) != (m.dev(), m.ino()));
    promised.push(Promise {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
        size,
    });
}

/// Bytes free for this run's files on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> io::Result<u64> {
    statvfs(dir).map(|vfs| available(&vfs))
}

/// Bytes available to unprivileged users. Root may get the reserved blocks too, or may not
/// (ext4's resuid): counting only these refuses a little early rather than failing midway.
fn available(vfs: &libc::statvfs) -> u64 {
    vfs.f_bavail.saturating_mul(vfs.f_frsize)
}

fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs fills the struct it is given; a zeroed one is a valid start.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated path, vfs a valid place to write.
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(vfs)
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

/// A block device may be written only when allowed, and never while a filesystem or
/// another device uses it (or any of its partitions).
fn check_device_write(path: &Path, rdev: u64, access: Access) -> Result<(), TargetError> {
    if !access.allow_device_write {
        return Err(TargetError::DeviceWrite(path.to_path_buf()));
    }
    let users = crate::device::users(rdev);
    if !users.is_empty() {
        return Err(TargetError::DeviceInUse {
            path: path.to_path_buf(),
            users,
        });
    }
    Ok(())
}

/// Opens (creating if needed) the job's file. A regular file is made at least `size` long,
/// once its filesystem is known to have room for it; a block device must hold `size`.
/// Nothing is created or written when it fails, and a file it created is removed again.
pub fn open(path: &Path, size: u64, access: Access) -> Result<Target, TargetError> {
    let meta = std::fs::metadata(path).ok();
    check_before_open(path, meta.as_ref(), size, access)?;
    let is_device = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    let exists = meta.is_some();
    let file = open_file(path, exists, is_device, access)?;
    let held = match held_size(path, &file, is_device, size, access) {
        Ok(held) => held,
        Err(e) => {
            if !exists {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    if access.write && !is_device {
        promise(path, &file, size);
    }
    Ok(Target {
        path: path.to_path_buf(),
        file: Arc::new(file),
        size: held,
        is_device,
        created: !exists,
    })
}

/// Everything that refuses the job's file before it is opened (and so before anything is
/// created): not a file, a device not to be written, a file that is not ours, no directory
/// to make it in, no room for it.
fn check_before_open(
    path: &Path,
    meta: Option<&Metadata>,
    size: u64,
    access: Access,
) -> Result<(), TargetError> {
    if meta.is_some_and(Metadata::is_dir) {
        return Err(TargetError::IsDirectory(path.to_path_buf()));
    }
    if let Some(kind) = meta.and_then(odd_kind) {
        return Err(TargetError::NotAFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    let is_device = meta.is_some_and(|m| m.file_type().is_block_device());
    let exists = meta.is_some();
    if is_device && access.write {
        check_device_write(path, meta.map_or(0, |m| m.rdev()), access)?;
    }
    if exists
        && !is_device
        && access.write
        && !access.overwrite
        && !CsumStore::exists(&CsumStore::beside(path)).map_err(TargetError::Store)?
    {
        return Err(TargetError::NotOurs(path.to_path_buf()));
    }
    if !exists {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent.filter(|d| !d.is_dir()) {
            return Err(match dir.exists() {
                true => TargetError::NotADirectory(dir.to_path_buf()),
                false => TargetError::NoDirectory(dir.to_path_buf()),
            });
        }
    }
    if access.write && !is_device {
        check_space(path, meta, size)?;
    }
    Ok(())
}

/// Opens the file as the job asks; a file the failed open created is removed.
fn open_file(
    path: &Path,
    exists: bool,
    is_device: bool,
    access: Access,
) -> Result<File, TargetError> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(access.write);
    if !is_device {
        opts.create(access.write);
    }
    // A block device opened to be written is claimed exclusively: the kernel refuses that
    // while it is mounted or claimed by anyone else (another csumbench included).
    let exclusive = is_device && access.write;
    let flags =
        if access.direct { libc::O_DIRECT } else { 0 } | if exclusive { libc::O_EXCL } else { 0 };
    opts.custom_flags(flags);
    opts.open(path).map_err(|e| {
        // O_CREAT can make the file before O_DIRECT is refused: leave nothing behind.
        if !exists && path.exists() {
            let _ = std::fs::remove_file(path);
        }
        if exclusive && e.raw_os_error() == Some(libc::EBUSY) {
            return TargetError::DeviceInUse {
                path: path.to_path_buf(),
                users: vec![
                    "the kernel refused to open it exclusively: it is mounted, or \
                             another program (another csumbench) has it open exclusively"
                        .into(),
                ],
            };
        }
        let what = if access.direct && e.raw_os_error() == Some(libc::EINVAL) {
            "O_DIRECT is not supported on this filesystem"
        } else {
            "cannot open"
        };
        io_err(path, what)(e)
    })
}

/// The bytes the opened file holds for the job: a device's size, which must reach `size`;
/// a file's length, extended to `size` for a job that writes.
fn held_size(
    path: &Path,
    file: &File,
    is_device: bool,
    size: u64,
    access: Access,
) -> Result<u64, TargetError> {
    if is_device {
        let held = device_size(file).map_err(io_err(path, "cannot read the device size"))?;
        if size > held {
            return Err(TargetError::DeviceTooSmall {
                path: path.to_path_buf(),
                need: size,
                size: held,
            });
        }
        return Ok(held);
    }
    let len = file.metadata().map_err(io_err(path, "cannot stat"))?.len();
    if access.write && len < size {
        file.set_len(size)
            .map_err(io_err(path, "cannot extend the file"))?;
    }
    Ok(len.max(if access.write { size } else { len }))
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
        let e = open(&p.join("f"), 4096, write()).err().unwrap().to_string();
        assert_eq!(e, format!("{} is not a directory", p.display()));
    }

    #[test]
    fn refuses_directories_and_special_files_even_with_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let all = Access {
            overwrite: true,
            allow_device_write: true,
            ..write()
        };
        for access in [Access::default(), all] {
            let e = open(dir.path(), 4096, access).err().unwrap().to_string();
            assert!(
                e.ends_with(
                    "is a directory: filename names the file or block device \
                                 to use (directory names a folder for the job's files)"
                ),
                "{e}"
            );
        }
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening a FIFO to read would wait for a writer: refused before any open.
        let e = open(&fifo, 4096, Access::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.ends_with("fifo is a FIFO (named pipe), not a regular file or a block device"),
            "{e}"
        );
        let e = open(Path::new("/dev/null"), 4096, all)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "/dev/null is a character device, not a regular file or a block device"
        );
    }

    #[test]
    fn refuses_more_than_the_free_space_before_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge");
        let e = open(&p, 100 << 40, write()).err().unwrap();
        let TargetError::NoSpace { need, free, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(need, 100 << 40);
        assert!(free < need);
        let msg = e.to_string();
        // (Other tests' files may be promised too: "(and this run's other files ...)".)
        let head = format!(
            "not enough free space for {}: the job needs 100TiB more",
            p.display()
        );
        let tail = format!(", but the filesystem holding {} has ", dir.path().display());
        assert!(
            msg.starts_with(&head) && msg.contains(&tail) && msg.ends_with(" free"),
            "{msg}"
        );
        assert!(!p.exists(), "nothing created");
        // A read opens what is there; only writes need room.
        assert!(open(&p, 100 << 40, Access::default()).is_err());
        assert!(!p.exists());
    }

    /// The tests that promise most of the free space run one at a time.
    static BIG: Mutex<()> = Mutex::new(());

    #[test]
    fn files_of_one_run_share_the_free_space() {
        let _big = BIG.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let free = available(&statvfs(dir.path()).unwrap());
        // Sparse: each alone fits, both together do not. (Skip where files cannot be that
        // large, e.g. a tiny or a huge filesystem.)
        let each = (free / 5 * 3).next_multiple_of(4096);
        let a = dir.path().join("a");
        let Ok(t) = open(&a, each, write()) else {
            eprintln!("skipping: cannot make a {each}-byte sparse file");
            return;
        };
        let e = open(&dir.path().join("b"), each, write()).err().unwrap();
        let msg = e.to_string();
        assert!(msg.contains("(and this run's other files "), "{msg}");
        assert!(!dir.path().join("b").exists());
        // Reopening the same file promises nothing new.
        drop(t);
        let again = Access {
            overwrite: true,
            ..write()
        };
        open(&a, each, again).unwrap();
        std::fs::remove_file(&a).unwrap();
        // Once a file is gone its promise is too.
        open(&dir.path().join("b"), each, write()).unwrap();
    }

    #[test]
    fn a_run_that_cannot_hold_all_its_files_creates_none() {
        let _big = BIG.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let free = available(&statvfs(dir.path()).unwrap());
        let each = (free / 3).next_multiple_of(4096);
        let files: Vec<PathBuf> = (0..4)
            .map(|i| dir.path().join(format!("job.{i}.0")))
            .collect();
        let e = check_room(files.iter().map(|p| (p.clone(), each, true)))
            .err()
            .unwrap();
        let TargetError::NoSpace {
            path, need, others, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((path, *need), (&files[0], each));
        assert!(*others >= 3 * each, "{e}");
        assert!(files.iter().all(|p| !p.exists()));
        // One file named four times (numjobs with a filename) is one file.
        check_room(files.iter().map(|_| (files[0].clone(), each, true))).unwrap();
        // Devices, directories and missing directories are open's to refuse.
        let odd = [
            (PathBuf::from("/dev/null"), u64::MAX, true),
            (dir.path().to_path_buf(), u64::MAX, true),
            (dir.path().join("nope/f"), u64::MAX, true),
        ];
        check_room(odd).unwrap();
        // A file of ours that is only read is not written: it needs no room. Without its
        // store it would be laid out, and does.
        let ours = dir.path().join("ours");
        std::fs::write(&ours, b"").unwrap();
        let read = || check_room([(ours.clone(), u64::MAX, false)]);
        assert!(read().is_err());
        let crc32c = crate::store::Algorithm {
            name: "crc32c",
            csum_len: 4,
        };
        let id = crate::store::Identity::of(&ours).unwrap();
        let stores_only = crate::store::Overwrite::StoresOnly;
        CsumStore::create(&CsumStore::beside(&ours), crc32c, 4096, &id, stores_only).unwrap();
        read().unwrap();
        assert!(check_room([(ours.clone(), u64::MAX, true)]).is_err());
    }

    #[test]
    fn os_errors_appear_once_in_a_chain() {
        let e = io_err(Path::new("/x"), "cannot open")(io::Error::from_raw_os_error(libc::EROFS));
        assert_eq!(
            e.to_string(),
            "/x: cannot open: Read-only file system (os error 30)"
        );
        assert!(std::error::Error::source(&e).is_none());
    }
}
