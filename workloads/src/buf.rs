//! Page-aligned I/O buffers (O_DIRECT needs the memory aligned to the logical block size;
//! 4 KiB covers every device we target).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

pub const ALIGN: usize = 4096;

pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes allocated: `len` may shrink below it and grow back (bios of varying sizes).
    capacity: usize,
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
        }
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

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
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
pub struct Filler {
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
            base,
            generation: 0,
        }
    }

    /// Fills `buf` with the data for a write at `offset`.
    pub fn fill(&mut self, buf: &mut [u8], offset: u64) {
        self.generation += 1;
        let n = buf.len().min(self.base.len());
        buf[..n].copy_from_slice(&self.base[..n]);
        let sector = crate::SECTOR_SIZE as usize;
        for (i, chunk) in buf.chunks_mut(sector).enumerate() {
            if chunk.len() >= 16 {
                let at = offset + (i * sector) as u64;
                chunk[..8].copy_from_slice(&at.to_le_bytes());
                chunk[8..16].copy_from_slice(&self.generation.to_le_bytes());
            }
        }
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
        let mut a = vec![0u8; 8192];
        let mut b = vec![0u8; 8192];
        f.fill(&mut a, 0);
        f.fill(&mut b, 0);
        assert_ne!(a, b);
        assert_ne!(a[..4096], a[4096..]);
        assert_eq!(u64::from_le_bytes(a[4096..4104].try_into().unwrap()), 4096);
    }
}
