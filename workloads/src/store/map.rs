//! The store's bitmap and checksums, mapped into memory: what is resident follows the
//! sectors a job touches, not the size of the data (a 1 TiB device's crc32c store is 1 GiB
//! of checksums and 32 MiB of bitmap).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::format::{Layout, ALIGN};
use super::Mode;

/// How a region is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    /// The file's pages, read-only: what the page cache holds, `pwrite`s included.
    ReadOnly,
    /// A private copy of each page written. Nothing reaches the file until written back
    /// by `pwrite`, so a full disk is an error there, never a SIGBUS here.
    CopyOnWrite,
}

/// One mapped region of a file.
struct Mapping {
    /// Page-aligned start of the mapping; None for an empty region (nothing mapped).
    base: Option<NonNull<libc::c_void>>,
    map_len: usize,
    /// From `base` to the region's first byte (regions start on 4 KiB boundaries, pages
    /// may be larger).
    skip: usize,
}

// SAFETY: the mapping is memory this value owns until drop; the bitmap is only touched
// through atomics and the checksums only read (see `Regions`), so sharing it between
// threads is sound.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

impl Mapping {
    fn new(file: &File, at: u64, len: u64, share: Share) -> io::Result<Mapping> {
        if len == 0 {
            return Ok(Mapping {
                base: None,
                map_len: 0,
                skip: 0,
            });
        }
        let start = at - at % page_size();
        let skip = (at - start) as usize;
        let map_len = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(skip))
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let (prot, flags) = match share {
            Share::ReadOnly => (libc::PROT_READ, libc::MAP_SHARED),
            // No swap reserved for copies of pages that are never written.
            Share::CopyOnWrite => (
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_NORESERVE,
            ),
        };
        let offset = libc::off_t::try_from(start)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a new mapping, at an address the kernel picks, of a file held open.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                prot,
                flags,
                file.as_raw_fd(),
                offset,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The store is touched where the job goes: no readahead around each fault, so
        // what becomes resident is what was touched. (Advice only: failure is harmless.)
        // SAFETY: advises on the mapping just made.
        unsafe { libc::madvise(base, map_len, libc::MADV_RANDOM) };
        Ok(Mapping {
            base: NonNull::new(base),
            map_len,
            skip,
        })
    }

    /// The region's first byte; for an empty region, a pointer never dereferenced.
    fn start(&self) -> *mut u8 {
        match self.base {
            // SAFETY: `skip` is inside the mapping.
            Some(base) => unsafe { base.as_ptr().cast::<u8>().add(self.skip) },
            None => NonNull::<u64>::dangling().as_ptr().cast(),
        }
    }

    /// Kilobytes of this mapping resident in this process (its `Rss` in /proc/self/smaps).
    #[cfg(test)]
    fn resident_kib(&self) -> u64 {
        let Some(base) = self.base else { return 0 };
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let head = format!("{:x}-", base.as_ptr() as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|kb| kb.trim().trim_end_matches(" kB").parse().ok())
            .expect("the mapping's Rss line")
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(base) = self.base {
            // SAFETY: unmaps exactly what `new` mapped; nothing borrows it past `self`.
            unsafe { libc::munmap(base.as_ptr(), self.map_len) };
        }
    }
}

/// The words of the bitmap covering sectors `[first, end)`, each with the mask of those
/// sectors' bits: word at a time, for bitmaps of millions of bits.
fn spans(first: u64, end: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut s = first;
    std::iter::from_fn(move || {
        if s >= end {
            return None;
        }
        let bit = s % 64;
        let n = (64 - bit).min(end - s);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << bit
        };
        let word = s / 64;
        s += n;
        Some((word, mask))
    })
}

/// Bitmap words per 4 KiB block, the unit written back.
const BLOCK_WORDS: u64 = ALIGN / 8;

/// The bitmap (one bit per sector: it has a checksum) and the checksums of a store, mapped.
/// No lock: bits are set and read with atomic operations, checksums are read here and
/// written by `pwrite` before their bits are set.
pub(super) struct Regions {
    bitmap: Mapping,
    sums: Mapping,
    csum_len: usize,
    /// One bit per 4 KiB block of the bitmap with bits set since the store was opened:
    /// the blocks `persist` writes back.
    dirty: Box<[AtomicU64]>,
}

impl Regions {
    /// Maps the bitmap (a private copy for a writer, the file's for a reader) and the
    /// checksums (read-only for both: a writer writes them with `pwrite`).
    pub fn map(file: &File, layout: &Layout, csum_len: usize, mode: Mode) -> io::Result<Self> {
        let share = match mode {
            Mode::Read => Share::ReadOnly,
            Mode::Update => Share::CopyOnWrite,
        };
        let blocks = layout.bitmap_words.div_ceil(BLOCK_WORDS);
        Ok(Regions {
            bitmap: Mapping::new(file, layout.bitmap_at, layout.bitmap_len(), share)?,
            sums: Mapping::new(file, layout.sums_at, layout.sums_len, Share::ReadOnly)?,
            csum_len,
            dirty: (0..blocks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        })
    }

    /// Word `i` of the bitmap; the caller keeps `i` below the number of words.
    fn word(&self, i: u64) -> &AtomicU64 {
        // SAFETY: the region is 8-byte aligned (it starts on a 4 KiB boundary) and holds
        // the bitmap's words; every access to it is atomic.
        unsafe { &*self.bitmap.start().cast::<AtomicU64>().add(i as usize) }
    }

    /// Whether sector `s` (below the store's sectors) has a checksum. Acquire: a set bit
    /// brings the checksum written before it.
    pub fn has(&self, s: u64) -> bool {
        let word = u64::from_le(self.word(s / 64).load(Ordering::Acquire));
        word & (1 << (s % 64)) != 0
    }

    /// Whether all of sectors `[first, end)` (inside the store) have checksums.
    pub fn all(&self, first: u64, end: u64) -> bool {
        spans(first, end)
            .all(|(w, mask)| u64::from_le(self.word(w).load(Ordering::Acquire)) & mask == mask)
    }

    /// Marks sectors `[first, end)` (inside the store) as having checksums. Only for a
    /// store mapped for update. Release: after their checksums reached the file.
    pub fn set(&self, first: u64, end: u64) {
        for (w, mask) in spans(first, end) {
            self.word(w).fetch_or(mask.to_le(), Ordering::Release);
            let block = w / BLOCK_WORDS;
            let (flags, bit) = (&self.dirty[(block / 64) as usize], 1 << (block % 64));
            // Load first: most records land in blocks already marked.
            if flags.load(Ordering::Relaxed) & bit == 0 {
                flags.fetch_or(bit, Ordering::Relaxed);
            }
        }
    }

    /// The blocks of the bitmap changed since it was mapped: each one's byte offset in the
    /// bitmap and its contents, to write back.
    pub fn dirty_blocks(&self, words: u64) -> impl Iterator<Item = (u64, Vec<u8>)> + '_ {
        let blocks = words.div_ceil(BLOCK_WORDS);
        (0..blocks)
            .filter(|b| {
                self.dirty[(b / 64) as usize].load(Ordering::Relaxed) & (1 << (b % 64)) != 0
            })
            .map(move |b| {
                let end = ((b + 1) * BLOCK_WORDS).min(words);
                let bytes = (b * BLOCK_WORDS..end)
                    .flat_map(|w| self.word(w).load(Ordering::Acquire).to_ne_bytes())
                    .collect();
                (b * ALIGN, bytes)
            })
    }

    /// Whether the checksums recorded for consecutive sectors from `first` (inside the
    /// store) are `want`, whole checksums.
    pub fn sums_are(&self, first: u64, want: &[u8]) -> bool {
        let mut recorded = [0u8; 512];
        let start = first as usize * self.csum_len;
        want.chunks(recorded.len()).enumerate().all(|(i, want)| {
            // SAFETY: these checksums lie inside the region. Copied out rather than
            // borrowed: a record of the same sectors may rewrite the bytes meanwhile.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.sums.start().add(start + i * recorded.len()),
                    recorded.as_mut_ptr(),
                    want.len(),
                )
            };
            recorded[..want.len()] == *want
        })
    }

    /// Kilobytes of the bitmap and checksums resident in this process.
    #[cfg(test)]
    pub fn resident_kib(&self) -> u64 {
        self.bitmap.resident_kib() + self.sums.resident_kib()
    }
}
