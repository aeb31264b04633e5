//! Page-aligned I/O buffers (O_DIRECT needs the memory aligned to the logical block size;
//! 4 KiB covers every device we target).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ALIGN: usize = 4096;

/// Numbers every buffer and every [`Filler`] of the process, so that neither can be
/// mistaken for another that once had the same address.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes allocated: `len` may shrink below it and grow back (bios of varying sizes).
    capacity: usize,
    id: u64,
    /// The filler whose base pattern the first `.1` bytes still hold, stamps aside: set by
    /// [`Filler::fill`], forgotten at any other mutable access.
    pattern: Option<(u64, usize)>,
}

// The buffer owns its memory exclusively; moving it between threads is fine.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes (rounded up to the alignment for the allocation).
    pub fn new(len: usize) -> Self {
        let layout = Self::layout(len);
        // SAFETY: the layout has non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf {
            ptr,
            len,
            capacity: len,
            id: next_id(),
            pattern: None,
        }
    }

    /// This allocation's number, unique in the process (an engine that registers buffers
    /// with the kernel knows them by it: an address can come back for another buffer).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Bytes allocated, which `len` may grow back to.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes the buffer `len` bytes long, within what was allocated (the bytes a shorter
    /// buffer leaves out stay allocated, and come back, unchanged, when it grows again).
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.capacity,
            "{len} bytes in a {}-byte buffer",
            self.capacity
        );
        self.len = len;
    }

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len.max(1).next_multiple_of(ALIGN), ALIGN)
            .expect("buffer size overflows")
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The bytes from `from` on, for a write's I/O, which only reads them (system calls take
    /// the same mutable slice both ways): unlike `&mut buf[..]`, what the buffer holds stays
    /// known to its [`Filler`].
    pub fn for_write(&mut self, from: usize) -> &mut [u8] {
        assert!(from <= self.len, "{from} past a {}-byte buffer", self.len);
        // SAFETY: within the buffer's length, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(from), self.len - from) }
    }

    /// For writing into the buffer (a read's I/O): what it held is forgotten.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.pattern = None;
        self.ptr.as_ptr()
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for len bytes for the buffer's lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.pattern = None;
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) }
    }
}

/// Write data as fio makes it: a random base pattern per job, with every 4 KiB sector
/// stamped with its file offset and a generation count so each write is distinct (fio's
/// scramble_buffers does the same job) without paying for fresh random bytes each time.
///
/// A buffer that comes back still holding the pattern (a write's, not a read's) gets only
/// its stamps rewritten: 16 bytes a sector instead of a copy of the whole pattern.
pub struct Filler {
    id: u64,
    base: Vec<u8>,
    generation: u64,
}

impl Filler {
    pub fn new(seed: u64, len: usize) -> Self {
        let mut state = seed | 1;
        let base = (0..len.div_ceil(8))
            .flat_map(|_| {
                // xorshift64*: plenty for test data.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
            })
            .take(len)
            .collect();
        Filler {
            id: next_id(),
            base,
            generation: 0,
        }
    }

    /// Fills `buf` with the data for a write at `offset`.
    pub fn fill(&mut self, buf: &mut AlignedBuf, offset: u64) {
        self.generation += 1;
        let n = buf.len().min(self.base.len());
        let held = match buf.pattern {
            Some((id, held)) if id == self.id => held,
            _ => 0,
        };
        let kept = held.min(n);
        let generation = self.generation;
        // SAFETY: `buf` is valid for `len` bytes and borrowed mutably; going around DerefMut
        // keeps the pattern's record, which the copy below brings up to date.
        let bytes = unsafe { std::slice::from_raw_parts_mut(buf.ptr.as_ptr(), buf.len) };
        bytes[kept..n].copy_from_slice(&self.base[kept..n]);
        let sector = crate::SECTOR_SIZE as usize;
        for (i, chunk) in bytes.chunks_mut(sector).enumerate() {
            if chunk.len() >= 16 {
                let at = offset + (i * sector) as u64;
                chunk[..8].copy_from_slice(&at.to_le_bytes());
                chunk[8..16].copy_from_slice(&generation.to_le_bytes());
            }
        }
        buf.pattern = Some((self.id, n.max(held)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_zeroed() {
        for len in [1, 4096, 4097, 1 << 20] {
            let b = AlignedBuf::new(len);
            assert_eq!(b.as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn every_fill_is_distinct_per_sector_and_write() {
        let mut f = Filler::new(7, 8192);
        let mut a = AlignedBuf::new(8192);
        let mut b = AlignedBuf::new(8192);
        f.fill(&mut a, 0);
        f.fill(&mut b, 0);
        assert_ne!(a[..], b[..]);
        assert_ne!(a[..4096], a[4096..]);
        assert_eq!(u64::from_le_bytes(a[4096..4104].try_into().unwrap()), 4096);
    }

    /// What a fresh buffer gets from a filler in the same state.
    fn fresh(f: &mut Filler, len: usize, offset: u64) -> Vec<u8> {
        let mut b = AlignedBuf::new(len);
        f.fill(&mut b, offset);
        b.to_vec()
    }

    #[test]
    fn a_reused_buffer_gets_exactly_what_a_fresh_one_would() {
        let (mut reusing, mut reference) = (Filler::new(3, 16384), Filler::new(3, 16384));
        let mut buf = AlignedBuf::new(16384);
        // Full, shorter (the tail keeps stale stamps, outside the buffer's length), full
        // again, then after a read scribbled over it.
        for (len, offset, scribble) in [
            (16384, 0, false),
            (8192, 40960, false),
            (16384, 8192, false),
            (16384, 4096, true),
            (12288, 0, false),
        ] {
            buf.set_len(len);
            if scribble {
                buf[100..200].fill(0xEE);
            }
            reusing.fill(&mut buf, offset);
            assert_eq!(
                buf[..],
                fresh(&mut reference, len, offset)[..],
                "{len} at {offset}"
            );
        }
        // Another filler's pattern is not this one's.
        let mut other = Filler::new(4, 16384);
        other.fill(&mut buf, 0);
        reusing.fill(&mut buf, 0);
        assert_eq!(buf[..], fresh(&mut reference, 12288, 0)[..]);
    }
}
