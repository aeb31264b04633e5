//! The checksum store: every sector's checksum, on disk beside the data, so a read job
//! verifies what an earlier write job wrote.
//!
//! Layout: a 64-byte header, a bitmap of sectors that have a checksum, then `csum_len`
//! bytes per sector, then (format 2) the [`Identity`] of the data the checksums are of.
//! Checksums reach the file as they are recorded (the "metadata I/O" of an ordered
//! extent); the header says "clean" only after [`CsumStore::persist`], so a run that dies
//! midway leaves a store that later runs refuse to trust.
//!
//! Header (little-endian): magic `CSUMBCH1` (0..8), format (8..12), clean (12..16),
//! `csum_len` (16..20), sector size (20..24), data size (24..32), algorithm name, NUL
//! padded (32..48), and in format 2 the identity's length in bytes (48..52).
//!
//! Format 2 adds the identity at the end of the file and its length in a header field
//! that format 1 left zero, so the bitmap and checksums sit where they did: a format-1
//! reader (which never checked the format) still reads a format-2 store. This code reads
//! both, but trusts a format-1 store for no data: it does not say which file or device
//! it was written for ([`Stale::Unrecorded`]); a read lays the data out again, and a
//! write starts a new store.
//!
//! Why an identity: the store of a block device is found by the device's name alone,
//! and a name is not a device: `/dev/loop0` detached and attached to another file, or
//! another disk enumerated as `nvme0n1`, would have its data verified against the old
//! device's checksums and be reported as thousands of corrupt sectors. A store whose
//! identity is not the data's is treated as absent, with a reason that names both.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::SECTOR_SIZE;

const MAGIC: &[u8; 8] = b"CSUMBCH1";
const HEADER: u64 = 64;
const ALGO_FIELD: usize = 16;
/// The format this code writes: 2, with an identity.
const FORMAT: u32 = 2;
/// No identity is longer (a loop device's is mostly its backing file's path).
const MAX_IDENTITY: u32 = 64 << 10;

/// Why a sector failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The data's checksum differs from the recorded one.
    Mismatch,
    /// No checksum was ever recorded for the sector.
    Missing,
}

/// Which file or device a store's checksums are of.
///
/// A block device: what sysfs says identifies it ([`crate::device::block_identity`]:
/// a loop device's backing file, a disk's wwid or serial, else its device number; always
/// its size).
///
/// A regular file: its inode number and, where the filesystem keeps one, its creation
/// time. The store sits beside the file (same directory, same filesystem), so a file
/// replaced by another (`mv other data`, or deleted and made again, even where the inode
/// number is reused) is told apart, and its old checksums are not used to call its
/// sectors corrupt. The device number is left out: btrfs's and a renumbered disk's change
/// across mounts and reboots while the file stays the same. Not caught: new contents
/// written into the same file (`cp other data` truncates and rewrites in place) — that
/// is what verification reports as mismatches. Copying a file and its store elsewhere
/// (`cp -a`) makes a new file: it is laid out again, not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    device: bool,
    text: String,
}

impl Identity {
    /// The identity of the file or block device at `data` (symlinks followed).
    pub fn of(data: &Path) -> io::Result<Identity> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(data)?;
        if meta.file_type().is_block_device() {
            return Ok(Identity {
                device: true,
                text: crate::device::block_identity(data, meta.rdev()),
            });
        }
        let mut text = format!("inode={}", meta.ino());
        if let Ok(born) = meta.created() {
            if let Ok(t) = born.duration_since(std::time::UNIX_EPOCH) {
                text += &format!(" created={}.{:09}", t.as_secs(), t.subsec_nanos());
            }
        }
        Ok(Identity {
            device: false,
            text,
        })
    }

    /// "device" or "file", for messages.
    pub fn what(&self) -> &'static str {
        if self.device {
            "device"
        } else {
            "file"
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a clean store's checksums are not for the data at hand. It reaches callers as an
/// [`io::Error`] of kind `InvalidData` whose message is this one's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the checksum store was written for a different {what} (was: {was}, now: {now})")]
    Different {
        what: &'static str,
        was: String,
        now: String,
    },
    #[error(
        "the checksum store does not record which {what} it was written for{}",
        if *.old_format { " (an older csumbench wrote it)" } else { "" }
    )]
    Unrecorded {
        what: &'static str,
        old_format: bool,
    },
    #[error("cannot tell which file or device {} is: {error}", .data.display())]
    Unknown { data: PathBuf, error: String },
}

impl From<Stale> for io::Error {
    fn from(s: Stale) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, s)
    }
}

pub struct CsumStore {
    path: PathBuf,
    file: File,
    algo: String,
    csum_len: usize,
    sectors: u64,
    /// `None`: a format-1 store, which records none.
    identity: Option<String>,
    inner: Mutex<Inner>,
}

struct Inner {
    sums: Vec<u8>,
    valid: Vec<u64>,
}

fn bitmap_words(sectors: u64) -> usize {
    sectors.div_ceil(64) as usize
}

fn bad_store(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("checksum store {}: {why}", path.display()),
    )
}

impl CsumStore {
    /// Where the store for a data file lives: beside it for files; under the temp dir
    /// for block devices, whose directory (/dev) is no place for our files.
    pub fn path_for(data: &Path, is_device: bool) -> PathBuf {
        if is_device {
            let name = data
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "device".into());
            std::env::temp_dir().join(format!("csumbench-dev-{name}.csum"))
        } else {
            let mut p = data.as_os_str().to_owned();
            p.push(".csum");
            PathBuf::from(p)
        }
    }

    /// True if `path` holds a store of ours (clean or not): the data file beside it is ours.
    pub fn exists(path: &Path) -> bool {
        let mut magic = [0u8; 8];
        File::open(path)
            .and_then(|f| f.read_exact_at(&mut magic, 0))
            .is_ok_and(|_| &magic == MAGIC)
    }

    fn data_offset(&self) -> u64 {
        HEADER + bitmap_words(self.sectors) as u64 * 8
    }

    /// Where the identity starts: after the checksums.
    fn identity_offset(&self) -> u64 {
        self.data_offset() + self.sectors * self.csum_len as u64
    }

    /// A new, empty store for `data_size` bytes of data, marked dirty until persisted,
    /// recording no identity: [`CsumStore::open_for`] trusts it for no data. Stores for a
    /// job's data are made with [`CsumStore::create_for`].
    pub fn create(path: &Path, algo: &str, csum_len: usize, data_size: u64) -> io::Result<Self> {
        Self::create_with(path, algo, csum_len, data_size, "")
    }

    /// A new, empty store for `data_size` bytes of the data `identity` names, marked dirty
    /// until persisted.
    pub fn create_for(
        path: &Path,
        algo: &str,
        csum_len: usize,
        data_size: u64,
        identity: &Identity,
    ) -> io::Result<Self> {
        Self::create_with(path, algo, csum_len, data_size, identity.as_str())
    }

    fn create_with(
        path: &Path,
        algo: &str,
        csum_len: usize,
        data_size: u64,
        identity: &str,
    ) -> io::Result<Self> {
        if algo.len() > ALGO_FIELD {
            return Err(bad_store(path, "algorithm name too long"));
        }
        if identity.len() > MAX_IDENTITY as usize {
            return Err(bad_store(path, "identity too long"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let sectors = data_size.div_ceil(SECTOR_SIZE);
        let store = CsumStore {
            path: path.to_path_buf(),
            file,
            algo: algo.to_string(),
            csum_len,
            sectors,
            identity: Some(identity.to_string()),
            inner: Mutex::new(Inner {
                sums: vec![0; sectors as usize * csum_len],
                valid: vec![0; bitmap_words(sectors)],
            }),
        };
        store.write_header(false)?;
        let at = store.identity_offset();
        store.file.set_len(at + identity.len() as u64)?;
        store.file.write_all_at(identity.as_bytes(), at)?;
        Ok(store)
    }

    /// Opens a clean store of the checksums of `data`. A store written for other data
    /// (another device under the same name, a file replaced by another: see [`Identity`])
    /// is an error of kind `InvalidData` that says which was which ([`Stale`]), as are a
    /// dirty or foreign file; a missing store is `NotFound`.
    pub fn open_for(path: &Path, data: &Path) -> io::Result<Self> {
        let store = Self::open(path)?;
        store.check(data)?;
        Ok(store)
    }

    /// Whether this store's checksums are of `data`.
    pub fn check(&self, data: &Path) -> Result<(), Stale> {
        let now = Identity::of(data).map_err(|e| Stale::Unknown {
            data: data.to_path_buf(),
            error: e.to_string(),
        })?;
        match self.identity.as_deref() {
            Some(was) if was == now.as_str() => Ok(()),
            None | Some("") => Err(Stale::Unrecorded {
                what: now.what(),
                old_format: self.identity.is_none(),
            }),
            Some(was) => Err(Stale::Different {
                what: now.what(),
                was: was.to_string(),
                now: now.text,
            }),
        }
    }

    /// The identity of the data the store is for, as recorded (`None` in a format-1 store,
    /// empty when made by [`CsumStore::create`]).
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// Opens a clean store, whatever data it is for (see [`CsumStore::open_for`]). A
    /// dirty or foreign file is an error that says so.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(&mut h, 0)
            .map_err(|_| bad_store(path, "too short to be a checksum store"))?;
        if &h[0..8] != MAGIC {
            return Err(bad_store(path, "not a csumbench checksum store"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let format = u32_at(8);
        if format > FORMAT {
            return Err(bad_store(
                path,
                &format!("written by a newer csumbench (store format {format})"),
            ));
        }
        if u32_at(12) != 1 {
            return Err(bad_store(
                path,
                "not cleanly closed (a run was interrupted); its checksums cannot be trusted",
            ));
        }
        let csum_len = u32_at(16) as usize;
        if u32_at(20) as u64 != SECTOR_SIZE {
            return Err(bad_store(path, "written with another sector size"));
        }
        let data_size = u64::from_le_bytes(h[24..32].try_into().unwrap());
        let algo_raw = &h[32..32 + ALGO_FIELD];
        let algo = String::from_utf8_lossy(algo_raw)
            .trim_end_matches('\0')
            .to_string();
        let sectors = data_size.div_ceil(SECTOR_SIZE);
        let mut valid_bytes = vec![0u8; bitmap_words(sectors) * 8];
        file.read_exact_at(&mut valid_bytes, HEADER)
            .map_err(|_| bad_store(path, "truncated bitmap"))?;
        let mut sums = vec![0u8; sectors as usize * csum_len];
        file.read_exact_at(&mut sums, HEADER + valid_bytes.len() as u64)
            .map_err(|_| bad_store(path, "truncated checksums"))?;
        let valid = valid_bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let identity = if format < 2 {
            None
        } else {
            let len = u32_at(48);
            if len > MAX_IDENTITY {
                return Err(bad_store(path, "identity too long"));
            }
            let mut raw = vec![0u8; len as usize];
            let at = HEADER + valid_bytes.len() as u64 + sums.len() as u64;
            file.read_exact_at(&mut raw, at)
                .map_err(|_| bad_store(path, "truncated identity"))?;
            Some(String::from_utf8_lossy(&raw).into_owned())
        };
        Ok(CsumStore {
            path: path.to_path_buf(),
            file,
            algo,
            csum_len,
            sectors,
            identity,
            inner: Mutex::new(Inner { sums, valid }),
        })
    }

    fn write_header(&self, clean: bool) -> io::Result<()> {
        let mut h = [0u8; HEADER as usize];
        h[0..8].copy_from_slice(MAGIC);
        // A format-1 store stays one (its layout has no identity).
        let (format, id_len) = match &self.identity {
            Some(id) => (FORMAT, id.len() as u32),
            None => (1, 0),
        };
        h[8..12].copy_from_slice(&format.to_le_bytes());
        h[48..52].copy_from_slice(&id_len.to_le_bytes());
        h[12..16].copy_from_slice(&(clean as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(self.csum_len as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        h[24..32].copy_from_slice(&(self.sectors * SECTOR_SIZE).to_le_bytes());
        h[32..32 + self.algo.len()].copy_from_slice(self.algo.as_bytes());
        self.file.write_all_at(&h, 0)
    }

    /// Marks the store dirty before new checksums are recorded into it.
    pub fn begin_update(&self) -> io::Result<()> {
        self.write_header(false)?;
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn algo(&self) -> &str {
        &self.algo
    }

    pub fn csum_len(&self) -> usize {
        self.csum_len
    }

    /// Bytes of data the store covers.
    pub fn data_size(&self) -> u64 {
        self.sectors * SECTOR_SIZE
    }

    /// Records checksums for consecutive sectors starting at `first_sector` (memory only).
    pub fn record(&self, first_sector: u64, sums: &[u8]) {
        let n = (sums.len() / self.csum_len.max(1)) as u64;
        let n = if self.csum_len == 0 { 0 } else { n };
        assert!(first_sector + n <= self.sectors, "sectors beyond the store");
        let mut inner = self.inner.lock().unwrap();
        let at = first_sector as usize * self.csum_len;
        inner.sums[at..at + sums.len()].copy_from_slice(sums);
        for s in first_sector..first_sector + n {
            inner.valid[(s / 64) as usize] |= 1 << (s % 64);
        }
    }

    /// Marks sectors as written without checksums (csum=none: they verify trivially).
    pub fn record_unsummed(&self, first_sector: u64, count: u64) {
        let mut inner = self.inner.lock().unwrap();
        for s in first_sector..first_sector + count {
            inner.valid[(s / 64) as usize] |= 1 << (s % 64);
        }
    }

    /// The metadata I/O that makes checksums durable: writes them into the store file.
    pub fn write_meta(&self, first_sector: u64, sums: &[u8]) -> io::Result<()> {
        if sums.is_empty() {
            return Ok(());
        }
        let at = self.data_offset() + first_sector * self.csum_len as u64;
        self.file.write_all_at(sums, at)
    }

    /// Compares `actual` (checksums of consecutive sectors from `first_sector`) with the
    /// recorded ones. Returns the failing sectors, by sector index.
    pub fn verify(&self, first_sector: u64, actual: &[u8], count: u64) -> Vec<(u64, Bad)> {
        let inner = self.inner.lock().unwrap();
        let mut bad = Vec::new();
        for i in 0..count {
            let s = first_sector + i;
            if s >= self.sectors || inner.valid[(s / 64) as usize] & (1 << (s % 64)) == 0 {
                bad.push((s, Bad::Missing));
                continue;
            }
            let n = self.csum_len;
            let want = &inner.sums[s as usize * n..(s as usize + 1) * n];
            let got = &actual[i as usize * n..(i as usize + 1) * n];
            if want != got {
                bad.push((s, Bad::Mismatch));
            }
        }
        bad
    }

    /// True when every sector touching the bytes `[start, end)` has a checksum (a job at
    /// `offset` covers `offset..io_end()`). An empty range is covered.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let (first, last) = (start / SECTOR_SIZE, end.div_ceil(SECTOR_SIZE));
        if last > self.sectors {
            return false;
        }
        let inner = self.inner.lock().unwrap();
        // Word by word: a device's bitmap has millions of bits.
        let mut s = first;
        while s < last {
            let bit = s % 64;
            let n = (64 - bit).min(last - s);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            if inner.valid[(s / 64) as usize] & mask != mask {
                return false;
            }
            s += n;
        }
        true
    }

    /// Writes the bitmap and marks the store clean, durably.
    pub fn persist(&self) -> io::Result<()> {
        let bytes: Vec<u8> = {
            let inner = self.inner.lock().unwrap();
            inner.valid.iter().flat_map(|w| w.to_le_bytes()).collect()
        };
        self.file.write_all_at(&bytes, HEADER)?;
        self.file.sync_data()?;
        self.write_header(true)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_checksums_survive_a_reopen_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csum");
        let s = CsumStore::create(&path, "crc32c", 4, 10 * SECTOR_SIZE).unwrap();
        let sums: Vec<u8> = (0..12).collect();
        s.record(2, &sums);
        s.write_meta(2, &sums).unwrap();
        s.persist().unwrap();
        drop(s);
        let s = CsumStore::open(&path).unwrap();
        assert_eq!(s.algo(), "crc32c");
        assert_eq!(s.data_size(), 10 * SECTOR_SIZE);
        assert!(s.verify(2, &sums, 3).is_empty());
        let mut wrong = sums.clone();
        wrong[5] ^= 1;
        assert_eq!(s.verify(2, &wrong, 3), vec![(3, Bad::Mismatch)]);
        assert_eq!(
            s.verify(0, &[0; 8], 2),
            vec![(0, Bad::Missing), (1, Bad::Missing)]
        );
        assert!(!s.covers(0, 10 * SECTOR_SIZE));
        assert!(s.covers(2 * SECTOR_SIZE, 5 * SECTOR_SIZE));
        assert!(CsumStore::exists(&path));
    }

    #[test]
    fn a_store_that_was_not_persisted_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csum");
        CsumStore::create(&path, "sha256", 32, SECTOR_SIZE).unwrap();
        let e = CsumStore::open(&path).err().unwrap().to_string();
        assert!(e.contains("interrupted"), "{e}");
        std::fs::write(
            &path,
            b"hello world, not a store at all, definitely not 64 bytes long!!!",
        )
        .unwrap();
        let e = CsumStore::open(&path).err().unwrap().to_string();
        assert!(e.contains("not a csumbench"), "{e}");
        assert!(!CsumStore::exists(&path));
    }

    /// A persisted store of `data` (a file of `sectors` sectors) with every sector summed.
    fn summed(dir: &Path, data: &Path, sectors: u64) -> PathBuf {
        std::fs::write(data, vec![7u8; (sectors * SECTOR_SIZE) as usize]).unwrap();
        let path = dir.join("d.csum");
        let id = Identity::of(data).unwrap();
        let s = CsumStore::create_for(&path, "crc32c", 4, sectors * SECTOR_SIZE, &id).unwrap();
        let sums = vec![1u8; sectors as usize * 4];
        s.record(0, &sums);
        s.write_meta(0, &sums).unwrap();
        s.persist().unwrap();
        path
    }

    fn stale(path: &Path, data: &Path) -> String {
        let e = CsumStore::open_for(path, data).err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        e.to_string()
    }

    #[test]
    fn covers_is_about_the_range_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csum");
        let s = CsumStore::create(&path, "crc32c", 4, 300 * SECTOR_SIZE).unwrap();
        // Sectors 100..200: across the bitmap's words at 128 and 192.
        s.record(100, &vec![0u8; 100 * 4]);
        let covers = |a: u64, b: u64| s.covers(a * SECTOR_SIZE, b * SECTOR_SIZE);
        assert!(covers(100, 200));
        assert!(covers(128, 192) && covers(150, 151) && covers(199, 200));
        assert!(!covers(99, 200) && !covers(100, 201) && !covers(0, 200));
        assert!(!covers(0, 1) && !covers(200, 300));
        assert!(!covers(100, 301), "beyond the store");
        // Partial sectors count whole.
        assert!(s.covers(100 * SECTOR_SIZE + 1, 200 * SECTOR_SIZE - 1));
        assert!(!s.covers(100 * SECTOR_SIZE - 1, 150 * SECTOR_SIZE));
        assert!(!s.covers(150 * SECTOR_SIZE, 200 * SECTOR_SIZE + 1));
        assert!(s.covers(5, 5) && s.covers(u64::MAX, 0), "empty ranges");
        // Whole words, and a store that is all summed.
        s.record(0, &vec![0u8; 300 * 4]);
        assert!(covers(0, 300) && covers(64, 128) && covers(0, 64));
        assert!(!covers(0, 301));
    }

    #[test]
    fn a_store_is_trusted_only_for_the_file_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let path = summed(dir.path(), &data, 4);
        let s = CsumStore::open_for(&path, &data).unwrap();
        let id = Identity::of(&data).unwrap();
        assert_eq!(s.identity(), Some(id.as_str()));
        assert_eq!(id.what(), "file");
        assert!(id.as_str().starts_with("inode="), "{id}");
        // Updated and persisted again, it keeps its identity.
        s.begin_update().unwrap();
        s.persist().unwrap();
        drop(s);
        // New contents in the same file are the same file: verification judges them.
        std::fs::write(&data, vec![9u8; 4 * SECTOR_SIZE as usize]).unwrap();
        assert!(CsumStore::open_for(&path, &data)
            .unwrap()
            .covers(0, 4 * SECTOR_SIZE));

        // Another file moved over it is not.
        let other = dir.path().join("other");
        std::fs::write(&other, vec![7u8; 4 * SECTOR_SIZE as usize]).unwrap();
        let other_id = Identity::of(&other).unwrap();
        std::fs::rename(&other, &data).unwrap();
        assert_eq!(
            stale(&path, &data),
            format!(
                "the checksum store was written for a different file (was: {id}, now: {other_id})"
            )
        );
        // Nor is one made again under its name (the inode number may be reused).
        let path = summed(dir.path(), &data, 4);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::remove_file(&data).unwrap();
        std::fs::write(&data, vec![7u8; 4 * SECTOR_SIZE as usize]).unwrap();
        if std::fs::metadata(&data).unwrap().created().is_ok() {
            let e = stale(&path, &data);
            assert!(e.contains("a different file (was: inode="), "{e}");
        } else {
            eprintln!("skipping the re-created file: this filesystem keeps no creation time");
        }
        // Nor anything, once the file is gone.
        std::fs::remove_file(&data).unwrap();
        let e = stale(&path, &data);
        assert!(
            e.starts_with(&format!(
                "cannot tell which file or device {} is: ",
                data.display()
            )),
            "{e}"
        );
        // A store that records no identity is trusted for nothing.
        std::fs::write(&data, b"").unwrap();
        CsumStore::create(&path, "crc32c", 4, SECTOR_SIZE)
            .unwrap()
            .persist()
            .unwrap();
        assert_eq!(
            stale(&path, &data),
            "the checksum store does not record which file it was written for"
        );
        assert_eq!(CsumStore::open(&path).unwrap().identity(), Some(""));
    }

    #[test]
    fn format_1_stores_are_read_but_not_trusted_and_format_2_keeps_their_layout() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let path = summed(dir.path(), &data, 70);
        let id = Identity::of(&data).unwrap();
        let raw = std::fs::read(&path).unwrap();
        // Format 2: format-1 layout (header, bitmap, sums), then the identity, its length
        // in the header.
        let (bitmap, sums) = (2 * 8, 70 * 4);
        let ends = HEADER as usize + bitmap + sums;
        assert_eq!(raw.len(), ends + id.as_str().len());
        assert_eq!(&raw[8..12], &2u32.to_le_bytes());
        assert_eq!(&raw[48..52], &(id.as_str().len() as u32).to_le_bytes());
        assert_eq!(&raw[ends..], id.as_str().as_bytes());
        assert_eq!(
            &raw[HEADER as usize..HEADER as usize + 8],
            &u64::MAX.to_le_bytes()
        );
        assert_eq!(&raw[HEADER as usize + bitmap..ends], &vec![1u8; sums][..]);

        // The same store as format 1 wrote it: no identity, no length, format 1.
        let mut v1 = raw[..ends].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1[48..52].fill(0);
        std::fs::write(&path, &v1).unwrap();
        let s = CsumStore::open(&path).unwrap();
        assert_eq!(s.identity(), None);
        assert!(s.covers(0, 70 * SECTOR_SIZE));
        assert!(s.verify(0, &vec![1u8; sums], 70).is_empty());
        // Updated, it stays format 1 (its layout has no room for an identity).
        s.begin_update().unwrap();
        s.persist().unwrap();
        drop(s);
        assert_eq!(std::fs::read(&path).unwrap(), v1);
        assert_eq!(
            stale(&path, &data),
            "the checksum store does not record which file it was written for \
             (an older csumbench wrote it)"
        );

        // A later format is refused, not misread.
        let mut v3 = raw.clone();
        v3[8..12].copy_from_slice(&3u32.to_le_bytes());
        std::fs::write(&path, &v3).unwrap();
        let e = CsumStore::open(&path).err().unwrap().to_string();
        assert!(
            e.ends_with("written by a newer csumbench (store format 3)"),
            "{e}"
        );
        // A cut-off identity is a damaged store.
        std::fs::write(&path, &raw[..raw.len() - 1]).unwrap();
        let e = CsumStore::open(&path).err().unwrap().to_string();
        assert!(e.ends_with("truncated identity"), "{e}");
    }

    #[test]
    fn a_block_device_is_identified_by_what_sysfs_says_not_by_its_inode() {
        use std::os::unix::fs::FileTypeExt;
        let Some(dev) = std::fs::read_dir("/sys/block").ok().and_then(|d| {
            d.flatten()
                .map(|e| PathBuf::from("/dev").join(e.file_name()))
                .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device()))
        }) else {
            eprintln!("skipping: no block device visible under /dev");
            return;
        };
        let id = Identity::of(&dev).unwrap();
        assert_eq!(id.what(), "device");
        assert!(!id.as_str().contains("inode=") || id.as_str().contains("backing_inode="));
        assert!(
            id.as_str().contains(" size=") || id.as_str().starts_with("size="),
            "{id}"
        );
        assert!(!id.as_str().contains(','), "{id}");
        assert_eq!(Identity::of(&dev).unwrap(), id, "stable");
    }
}
