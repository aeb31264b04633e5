//! The checksum store: every sector's checksum, on disk beside the data, so a read job
//! verifies what an earlier write job wrote.
//!
//! Layout: a 64-byte header, a bitmap of sectors that have a checksum, then `csum_len`
//! bytes per sector. Checksums reach the file as they are recorded (the "metadata I/O" of
//! an ordered extent); the header says "clean" only after [`CsumStore::persist`], so a run
//! that dies midway leaves a store that later runs refuse to trust.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::SECTOR_SIZE;

const MAGIC: &[u8; 8] = b"CSUMBCH1";
const HEADER: u64 = 64;
const ALGO_FIELD: usize = 16;

/// Why a sector failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The data's checksum differs from the recorded one.
    Mismatch,
    /// No checksum was ever recorded for the sector.
    Missing,
}

pub struct CsumStore {
    path: PathBuf,
    file: File,
    algo: String,
    csum_len: usize,
    sectors: u64,
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

    /// A new, empty store for `data_size` bytes of data, marked dirty until persisted.
    pub fn create(path: &Path, algo: &str, csum_len: usize, data_size: u64) -> io::Result<Self> {
        if algo.len() > ALGO_FIELD {
            return Err(bad_store(path, "algorithm name too long"));
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
            inner: Mutex::new(Inner {
                sums: vec![0; sectors as usize * csum_len],
                valid: vec![0; bitmap_words(sectors)],
            }),
        };
        store.write_header(false)?;
        store
            .file
            .set_len(store.data_offset() + sectors * csum_len as u64)?;
        Ok(store)
    }

    /// Opens a clean store. A dirty or foreign file is an error that says so.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(&mut h, 0)
            .map_err(|_| bad_store(path, "too short to be a checksum store"))?;
        if &h[0..8] != MAGIC {
            return Err(bad_store(path, "not a csumbench checksum store"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
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
        Ok(CsumStore {
            path: path.to_path_buf(),
            file,
            algo,
            csum_len,
            sectors,
            inner: Mutex::new(Inner { sums, valid }),
        })
    }

    fn write_header(&self, clean: bool) -> io::Result<()> {
        let mut h = [0u8; HEADER as usize];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
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

    /// True when every sector in `[0, bytes)` has a checksum.
    pub fn covers(&self, bytes: u64) -> bool {
        let sectors = bytes.div_ceil(SECTOR_SIZE);
        if sectors > self.sectors {
            return false;
        }
        let inner = self.inner.lock().unwrap();
        (0..sectors).all(|s| inner.valid[(s / 64) as usize] & (1 << (s % 64)) != 0)
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
        assert!(!s.covers(10 * SECTOR_SIZE));
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
}
