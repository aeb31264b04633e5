//! The checksum store: every sector's checksum, on disk beside the data, so a read job
//! verifies what an earlier write job wrote. A store checks itself before it is believed,
//! is held under a lock while in use, never replaces what is not a store, and maps its
//! contents so that memory follows the sectors a job touches, not the size of the data.
//!
//! # Format 3 (little-endian)
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `CSUMBCH1` |
//! | 8..12 | format: 3 |
//! | 12..16 | state: 2 being updated, 3 clean (format 1's "clean" was 1, so its readers refuse) |
//! | 16..20 | `csum_len`: bytes per sector's checksum, the algorithm's (0 for `none`) |
//! | 20..24 | sector size: 4096 |
//! | 24..32 | data size in bytes, whole sectors |
//! | 32..48 | algorithm name, NUL padded |
//! | 48..52 | identity length, 1 to 65536 |
//! | 52..56 | `bitmap_crc`: crc32c of the bitmap, as of the last clean close |
//! | 56..60 | `header_crc`: crc32c of bytes 0..64 (this field as zeros) and the identity |
//! | 60..64 | zero |
//! | 64.. | the [`Identity`] of the data, UTF-8 |
//! | `bitmap_at` | the identity's end rounded up to 4 KiB: one bit per sector (bit `s % 64` of u64 word `s / 64`), set when its checksum is recorded |
//! | `sums_at` | the bitmap's end rounded up to 4 KiB: `csum_len` bytes per sector |
//!
//! The file ends with the last checksum. On open every field is checked, in this order,
//! against the file and the algorithm the caller verifies with: magic, format, identity
//! length (bounded, inside the file), header checksum, identity (UTF-8), the identity
//! against the data's, state, sector size, algorithm name, `csum_len` (the algorithm's),
//! data size (whole sectors), the file's length (exactly what the header describes),
//! and, for a clean store, the bitmap checksum. Each failure is its own [`StoreError`]
//! naming the field and its value; nothing is allocated from a field before it is
//! bounded. The identity comes first so that every refusal after it is known to be about
//! a store of the data: [`StoreError::whose`] tells the caller whether the data is
//! csumbench's (a store of it, unusable: lay it out again) or not (a store of another
//! file or device: the data is someone else's). Stores of formats 1 and 2 carry no
//! checksums of their own: they are refused as [`StoreError::OldFormat`]; format 2's
//! identity, unprotected, still says whose the store is.
//!
//! # Updates, durability, locking
//!
//! A writer marks the store "being updated" (durably) before any data is written, records
//! each sector's checksum after the sector's data was written (the pipeline's endio),
//! writing the checksum with `pwrite` before setting its bit, and marks the store clean in
//! [`CsumStore::persist`] only after `fdatasync` of the data itself, then of the store:
//! a clean store never vouches for data that a crash could still lose. A store left
//! "being updated" is [`StoreError::Dirty`]. A writer holds an exclusive `flock` on the
//! store, a reader a shared one ([`lock`] says why flock), for the store's lifetime; a
//! conflict is [`StoreError::Locked`] with the holder's pid.
//!
//! # Memory
//!
//! The bitmap and the checksums are mapped ([`map`]); the bitmap's words are set and read
//! with atomic operations, so recording and verifying take no lock. Checksums are written
//! with `pwrite` (the ordered extent's metadata I/O, a real write whose failure is an
//! error, not a SIGBUS) and read through the mapping. A writer's bitmap is a private copy
//! of the pages it touches, written back block by block in `persist`.

mod error;
mod format;
mod identity;
mod lock;
mod map;
mod place;
#[cfg(test)]
mod tests;

pub use error::{Field, Foreign, Stale, StoreError, Whose};
pub use identity::Identity;

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use format::{Header, Layout, State, MAGIC, MAX_CSUM_LEN, MAX_HEAD, MAX_IDENTITY};
use map::Regions;

use crate::SECTOR_SIZE;

/// Why a sector failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The data's checksum differs from the recorded one.
    Mismatch,
    /// No checksum was ever recorded for the sector.
    Missing,
}

/// What a store is opened for: reading needs only read access to it and shares it with
/// other readers; updating excludes everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Update,
}

/// The checksum algorithm a caller verifies with: a store of another is not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithm<'a> {
    pub name: &'a str,
    /// Bytes of checksum per sector.
    pub csum_len: usize,
}

impl std::fmt::Display for Algorithm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} bytes)", self.name, self.csum_len)
    }
}

/// What [`CsumStore::create`] may replace at the store's path. Never a symlink, a
/// directory or a special file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Only a csumbench store (any format, clean or not, not in use).
    StoresOnly,
    /// Any regular file: the caller has the user's explicit permission.
    AnyFile,
}

pub struct CsumStore {
    path: PathBuf,
    file: File,
    mode: Mode,
    header: Header,
    layout: Layout,
    regions: Regions,
    /// Set when `persist` begins: from then on the store takes no checksums.
    closed: AtomicBool,
    /// Whether `persist` has marked the store clean (a failed one may be retried).
    persisted: Mutex<bool>,
}

/// What a file's type is, for a message, if it is not a regular file.
fn foreign(meta: &Metadata) -> Option<Foreign> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return None;
    } else if t.is_symlink() {
        return Some(Foreign::Symlink);
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else {
        "special file"
    };
    Some(Foreign::NotAFile(kind))
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io {
        path: path.to_path_buf(),
        what,
        error,
    }
}

/// Opens what is at `path` if it is a regular file, never through a symlink and never
/// waiting (a FIFO planted there would block an open).
fn open_existing(path: &Path, mode: Mode) -> Result<File, StoreError> {
    let failed = |error: io::Error| match error.raw_os_error() {
        Some(libc::ENOENT) => StoreError::NotFound {
            path: path.to_path_buf(),
        },
        Some(libc::ELOOP) => StoreError::NotAStore {
            path: path.to_path_buf(),
            why: Foreign::Symlink,
        },
        _ => StoreError::Unreadable {
            path: path.to_path_buf(),
            mode,
            error,
        },
    };
    let not_a_file = |meta: &Metadata| match foreign(meta) {
        Some(why) => Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            why,
        }),
        None => Ok(()),
    };
    not_a_file(&std::fs::symlink_metadata(path).map_err(failed)?)?;
    let file = OpenOptions::new()
        .read(true)
        .write(mode == Mode::Update)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(failed)?;
    // Again on what was opened: the path may name something else by now.
    not_a_file(&file.metadata().map_err(failed)?)?;
    Ok(file)
}

/// Whether `file` begins with csumbench's magic number.
fn has_magic(file: &File) -> bool {
    let mut magic = [0u8; MAGIC.len()];
    file.read_exact_at(&mut magic, 0).is_ok() && &magic == MAGIC
}

/// crc32c of the bitmap, read from the file in chunks (not through the mapping, so that
/// checking a large store's bitmap leaves none of it resident).
fn bitmap_crc(file: &File, layout: &Layout) -> io::Result<u32> {
    const CHUNK: u64 = 256 << 10;
    let len = layout.bitmap_len();
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let (mut crc, mut at) = (0, 0);
    while at < len {
        let n = CHUNK.min(len - at) as usize;
        file.read_exact_at(&mut buf[..n], layout.bitmap_at + at)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        at += n as u64;
    }
    Ok(crc)
}

fn check_identity(was: &str, data: &Path) -> Result<(), StoreError> {
    let now = Identity::of(data).map_err(|e| {
        StoreError::Stale(Stale::Unknown {
            data: data.to_path_buf(),
            error: e.to_string(),
        })
    })?;
    if was == now.as_str() {
        return Ok(());
    }
    Err(StoreError::Stale(Stale::Different {
        what: now.what(),
        was: printable(was),
        now: now.to_string(),
    }))
}

/// Text read from a store, for a message: control characters escaped, never printed raw.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// The store at `path` beginning with `head`, of an older `format`, refused: saying whose
/// data it is of where that format recorded an identity (format 2).
fn old_format(path: &Path, format: u32, file: &File, head: &[u8], data: &Path) -> StoreError {
    let recorded = file.metadata().ok().and_then(|m| {
        let at = format::format2_identity(head, m.len())?;
        let mut raw = vec![0u8; (at.end - at.start) as usize];
        file.read_exact_at(&mut raw, at.start).ok()?;
        String::from_utf8(raw).ok()
    });
    let whose = match recorded.map(|was| check_identity(&was, data)) {
        Some(Ok(())) => Whose::TheData,
        Some(Err(StoreError::Stale(Stale::Different { .. }))) => Whose::OtherData,
        _ => Whose::Unknown,
    };
    StoreError::OldFormat {
        path: path.to_path_buf(),
        format,
        whose,
    }
}

/// Writes `header` (and the identity) at the start of the store, durably.
fn seal(file: &File, path: &Path, header: &Header) -> Result<(), StoreError> {
    file.write_all_at(&header.encode(), 0)
        .and_then(|()| file.sync_data())
        .map_err(io_err(path, "cannot write its header"))
}

/// Makes a store's directory entry durable: a store created or renamed into place, then
/// lost in a crash, would leave data without its store (or with the replaced one).
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path, "cannot sync its directory"))
}

impl CsumStore {
    /// Where the store of `data` lives: beside a regular file ([`CsumStore::beside`]), in
    /// a directory private to the user for a block device (see [`place`]), which this
    /// makes if needed and checks.
    pub fn path_for(data: &Path, is_device: bool) -> Result<PathBuf, StoreError> {
        if is_device {
            place::for_device(data)
        } else {
            Ok(place::beside(data))
        }
    }

    /// The store of a regular file: `FILE.csum`.
    pub fn beside(data: &Path) -> PathBuf {
        place::beside(data)
    }

    /// Whether `path` holds a store of ours (any format, clean or not), so the data
    /// beside it is csumbench's; an error if what is there cannot be read. Takes no lock.
    pub fn exists(path: &Path) -> Result<bool, StoreError> {
        match open_existing(path, Mode::Read) {
            Ok(file) => Ok(has_magic(&file)),
            Err(StoreError::NotFound { .. } | StoreError::NotAStore { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Opens the store at `path` of the checksums of `data` made with `algorithm`, locked
    /// for `mode`. Every header field is checked first (see the module documentation);
    /// a store of other data is [`StoreError::Stale`].
    pub fn open_for(
        path: &Path,
        data: &Path,
        algorithm: Algorithm,
        mode: Mode,
    ) -> Result<Self, StoreError> {
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let file = open_existing(path, mode)?;
            lock::lock(&file, path, mode)?;
            if lock::still_at(path, &file)? {
                return Self::load(path, file, data, algorithm, mode);
            }
        }
        Err(io_err(
            path,
            "it was replaced while being opened, again and again",
        )(io::ErrorKind::Interrupted.into()))
    }

    fn load(
        path: &Path,
        file: File,
        data: &Path,
        algorithm: Algorithm,
        mode: Mode,
    ) -> Result<Self, StoreError> {
        let unreadable = |error| StoreError::Unreadable {
            path: path.to_path_buf(),
            mode,
            error,
        };
        let file_len = file.metadata().map_err(unreadable)?.len();
        let mut head = vec![0u8; file_len.min(MAX_HEAD as u64) as usize];
        file.read_exact_at(&mut head, 0).map_err(unreadable)?;
        // Whose the store is, first: every refusal after this is about a store of the data.
        match Header::identity(path, &head, file_len) {
            Ok(recorded) => check_identity(recorded, data)?,
            Err(StoreError::OldFormat { format, .. }) => {
                return Err(old_format(path, format, &file, &head, data))
            }
            Err(e) => return Err(e),
        }
        let (header, layout) =
            Header::decode(path, &head, file_len, algorithm).map_err(StoreError::of_the_data)?;
        if header.state == State::Updating {
            return Err(StoreError::Dirty {
                path: path.to_path_buf(),
            });
        }
        let crc = bitmap_crc(&file, &layout).map_err(unreadable)?;
        if crc != header.bitmap_crc {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                field: Field::BitmapCrc,
                value: format!("{:#010x}", header.bitmap_crc),
                why: format!("does not match the bitmap ({crc:#010x}): it is damaged"),
                whose: Whose::TheData,
            });
        }
        Self::assemble(path, file, header, layout, mode)
    }

    /// A new, empty store for `data_size` bytes (rounded up to whole sectors) of the data
    /// `identity` names, open for update. Made under a temporary name and renamed over a
    /// store being replaced, so a crash leaves one or the other. What may be replaced:
    /// see [`Overwrite`]; a store in use is [`StoreError::Locked`].
    pub fn create(
        path: &Path,
        algorithm: Algorithm,
        data_size: u64,
        identity: &Identity,
        overwrite: Overwrite,
    ) -> Result<Self, StoreError> {
        let (header, layout) = Self::new_header(path, algorithm, data_size, identity)?;
        let file = match Self::replaceable(path, overwrite)? {
            None => Self::write_new(path, &header, &layout)?,
            Some(_replaced) => {
                let (temp, file) = Self::write_temp(path, &header, &layout)?;
                std::fs::rename(&temp, path).map_err(|e| {
                    let _ = std::fs::remove_file(&temp);
                    io_err(path, "cannot rename the new store into place")(e)
                })?;
                file
            }
        };
        sync_dir(path)?;
        Self::assemble(path, file, header, layout, Mode::Update)
    }

    fn new_header(
        path: &Path,
        algorithm: Algorithm,
        data_size: u64,
        identity: &Identity,
    ) -> Result<(Header, Layout), StoreError> {
        let invalid = |field, value: String, why: &str| StoreError::Invalid {
            path: path.to_path_buf(),
            field,
            value,
            why: why.into(),
            whose: Whose::Unknown,
        };
        if !format::algo_name_fits(algorithm.name) {
            let why = "is not a name of 1 to 16 printable ASCII characters";
            return Err(invalid(Field::Algorithm, algorithm.name.into(), why));
        }
        if algorithm.csum_len > MAX_CSUM_LEN {
            let why = "is more than a checksum store keeps per sector";
            return Err(invalid(Field::CsumLen, algorithm.csum_len.to_string(), why));
        }
        let id = identity.as_str();
        if id.is_empty() || id.len() > MAX_IDENTITY {
            let why = "is not between 1 and 65536 bytes";
            return Err(invalid(Field::IdentityLen, id.len().to_string(), why));
        }
        let sectors = data_size.div_ceil(SECTOR_SIZE);
        let layout = Layout::of(id.len(), sectors, algorithm.csum_len)
            .ok_or_else(|| invalid(Field::DataSize, data_size.to_string(), "is too large"))?;
        let header = Header {
            state: State::Updating,
            algo: algorithm.name.to_string(),
            csum_len: algorithm.csum_len,
            sectors,
            identity: id.to_string(),
            bitmap_crc: 0,
        };
        Ok((header, layout))
    }

    /// What is at `path` now, if it may be replaced: held under an exclusive lock until
    /// the new store is renamed over it, so no csumbench uses it meanwhile.
    /// Whether a store may be made at `path` under `overwrite`: the error making one would
    /// give, found before anything else (a new data file) is made for it. Takes no lock.
    pub fn check_replaceable(path: &Path, overwrite: Overwrite) -> Result<(), StoreError> {
        Self::existing_replaceable(path, overwrite).map(|_| ())
    }

    /// What is at `path`, where it may be replaced by a new store, locked.
    fn replaceable(path: &Path, overwrite: Overwrite) -> Result<Option<File>, StoreError> {
        let file = Self::existing_replaceable(path, overwrite)?;
        if let Some(file) = &file {
            lock::lock(file, path, Mode::Update)?;
        }
        Ok(file)
    }

    fn existing_replaceable(path: &Path, overwrite: Overwrite) -> Result<Option<File>, StoreError> {
        let refuse = |why| StoreError::WontOverwrite {
            path: path.to_path_buf(),
            why,
        };
        let file = match open_existing(path, Mode::Read) {
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(StoreError::NotAStore { why, .. }) => return Err(refuse(why)),
            Err(e) => return Err(e),
            Ok(file) => file,
        };
        if overwrite == Overwrite::StoresOnly && !has_magic(&file) {
            return Err(refuse(Foreign::NoMagic));
        }
        Ok(Some(file))
    }

    /// Creates the store file at `at`, which must not exist (never through a symlink).
    fn create_file(at: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(at)
    }

    /// Locks the new store file `file` at `at`, sizes it and writes its header ("being
    /// updated"), durably. The caller removes the file if this fails.
    fn lay_out(file: &File, at: &Path, header: &Header, layout: &Layout) -> Result<(), StoreError> {
        lock::lock(file, at, Mode::Update)?;
        file.set_len(layout.file_len())
            .map_err(io_err(at, "cannot size it"))?;
        seal(file, at, header)
    }

    /// A new store file at `at`, which must not exist, laid out; nothing is left at `at`
    /// if that fails.
    fn write_new(at: &Path, header: &Header, layout: &Layout) -> Result<File, StoreError> {
        let file = Self::create_file(at).map_err(io_err(at, "cannot create it"))?;
        match Self::lay_out(&file, at, header, layout) {
            Ok(()) => Ok(file),
            Err(e) => {
                let _ = std::fs::remove_file(at);
                Err(e)
            }
        }
    }

    /// [`Self::write_new`] under a fresh temporary name beside `path`.
    fn write_temp(
        path: &Path,
        header: &Header,
        layout: &Layout,
    ) -> Result<(PathBuf, File), StoreError> {
        const ATTEMPTS: usize = 100;
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        for _ in 0..ATTEMPTS {
            let n = SERIAL.fetch_add(1, Ordering::Relaxed);
            let temp = path.with_file_name(format!(".{name}.{}-{n}.new", std::process::id()));
            // Taken by a process of the same pid that died: take the next name.
            if std::fs::symlink_metadata(&temp).is_ok() {
                continue;
            }
            return Self::write_new(&temp, header, layout).map(|file| (temp, file));
        }
        let taken = io::Error::from(io::ErrorKind::AlreadyExists);
        Err(io_err(path, "cannot find a free temporary name beside it")(
            taken,
        ))
    }

    /// The store, mapped, from a file whose header was written or checked; a writer's is
    /// marked "being updated" before anything else happens to the data.
    fn assemble(
        path: &Path,
        file: File,
        mut header: Header,
        layout: Layout,
        mode: Mode,
    ) -> Result<Self, StoreError> {
        if mode == Mode::Update && header.state != State::Updating {
            header.state = State::Updating;
            seal(&file, path, &header)?;
        }
        let regions = Regions::map(&file, &layout, header.csum_len, mode)
            .map_err(io_err(path, "cannot map it into memory"))?;
        Ok(CsumStore {
            path: path.to_path_buf(),
            file,
            mode,
            header,
            layout,
            regions,
            closed: AtomicBool::new(false),
            persisted: Mutex::new(false),
        })
    }

    /// The identity of the data the store is for, as recorded.
    pub fn identity(&self) -> &str {
        &self.header.identity
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn algo(&self) -> &str {
        &self.header.algo
    }

    pub fn csum_len(&self) -> usize {
        self.header.csum_len
    }

    /// Bytes of data the store covers.
    pub fn data_size(&self) -> u64 {
        self.header.sectors * SECTOR_SIZE
    }

    /// Whether sectors `[first, first + count)` may be recorded now.
    fn writable(&self, first: u64, count: u64) -> io::Result<()> {
        if self.mode == Mode::Read {
            return Err(io::Error::other("the store is open for reading only"));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(io::Error::other(
                "the store was persisted: it takes no more checksums",
            ));
        }
        let sectors = self.header.sectors;
        match first.checked_add(count) {
            Some(end) if end <= sectors => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("sectors {first}+{count} are beyond the store's {sectors}"),
            )),
        }
    }

    /// Records the checksums of consecutive sectors from `first_sector`, whose data has
    /// been written: the ordered extent's metadata I/O. The checksums reach the file (by
    /// `pwrite`) before their sectors are marked, so a sector is never verified against a
    /// checksum not yet there.
    pub fn record(&self, first_sector: u64, sums: &[u8]) -> io::Result<()> {
        let n = self.header.csum_len;
        if n == 0 || !sums.len().is_multiple_of(n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes are not whole {n}-byte checksums", sums.len()),
            ));
        }
        let count = (sums.len() / n) as u64;
        self.writable(first_sector, count)?;
        let at = self.layout.sums_at + first_sector * n as u64;
        self.file.write_all_at(sums, at)?;
        self.regions.set(first_sector, first_sector + count);
        Ok(())
    }

    /// Marks sectors as written where the algorithm keeps no checksum (`none`: they
    /// verify trivially).
    pub fn record_unsummed(&self, first_sector: u64, count: u64) -> io::Result<()> {
        if self.header.csum_len != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the store keeps {} checksums: record them",
                    self.header.algo
                ),
            ));
        }
        self.writable(first_sector, count)?;
        self.regions.set(first_sector, first_sector + count);
        Ok(())
    }

    /// Compares `actual` (checksums of `count` consecutive sectors from `first_sector`)
    /// with the recorded ones. Returns the failing sectors, by sector index.
    pub fn verify(&self, first_sector: u64, actual: &[u8], count: u64) -> Vec<(u64, Bad)> {
        let n = self.header.csum_len;
        // A good bio, the common case, in one pass: bits word-at-a-time, sums together.
        let end = first_sector.saturating_add(count);
        let all = (count as usize)
            .checked_mul(n)
            .and_then(|len| actual.get(..len))
            .filter(|_| end <= self.header.sectors && self.regions.all(first_sector, end));
        if all.is_some_and(|sums| self.regions.sums_are(first_sector, sums)) {
            return Vec::new();
        }
        (0..count)
            .filter_map(|i| {
                let s = first_sector.saturating_add(i);
                if s >= self.header.sectors || !self.regions.has(s) {
                    return Some((s, Bad::Missing));
                }
                let i = i as usize;
                let good = actual
                    .get(i * n..(i + 1) * n)
                    .is_some_and(|got| self.regions.sums_are(s, got));
                (!good).then_some((s, Bad::Mismatch))
            })
            .collect()
    }

    /// True when sector `s` has a checksum.
    pub fn recorded(&self, s: u64) -> bool {
        s < self.header.sectors && self.regions.has(s)
    }

    /// True when every sector touching the bytes `[start, end)` has a checksum (a job at
    /// `offset` covers `offset..io_end()`). An empty range is covered.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let (first, last) = (start / SECTOR_SIZE, end.div_ceil(SECTOR_SIZE));
        last <= self.header.sectors && self.regions.all(first, last)
    }

    /// Marks the store clean, after every record has returned: syncs `data` (the file or
    /// device the checksums are of), writes the bitmap back and syncs the store, then
    /// marks it clean. If any step fails the store stays "being updated", never clean
    /// over data a crash could lose. Recording ends here; a store open for reading is
    /// left as it is.
    pub fn persist(&self, data: &File) -> Result<(), StoreError> {
        if self.mode == Mode::Read {
            return Ok(());
        }
        self.closed.store(true, Ordering::Release);
        let mut persisted = self.persisted.lock().unwrap_or_else(|e| e.into_inner());
        if *persisted {
            return Ok(());
        }
        let io = |what| io_err(&self.path, what);
        data.sync_data().map_err(io(
            "the data it is of could not be synced, so it stays unclean",
        ))?;
        for (at, block) in self.regions.dirty_blocks(self.layout.bitmap_words) {
            self.file
                .write_all_at(&block, self.layout.bitmap_at + at)
                .map_err(io("cannot write its bitmap"))?;
        }
        let crc = bitmap_crc(&self.file, &self.layout).map_err(io("cannot read its bitmap"))?;
        self.file.sync_data().map_err(io("cannot sync it"))?;
        let clean = Header {
            state: State::Clean,
            bitmap_crc: crc,
            ..self.header.clone()
        };
        seal(&self.file, &self.path, &clean)?;
        *persisted = true;
        Ok(())
    }
}
