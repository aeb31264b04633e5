//! The I/Os an asynchronous engine has handed to the kernel, each in a slot whose index
//! travels with the I/O (io_uring's `user_data`, an iocb's `aio_data`) and comes back in its
//! completion. A slot's contents do not move while it is busy: what the kernel points at
//! (buffers, iovecs, iocbs) lives on the heap, owned by the slot.

pub struct Slots<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
    busy: usize,
}

impl<T> Slots<T> {
    pub fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
            busy: 0,
        }
    }

    /// Puts `item` in a free slot; its index.
    pub fn insert(&mut self, item: T) -> usize {
        self.busy += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(item);
                i
            }
            None => {
                self.slots.push(Some(item));
                self.slots.len() - 1
            }
        }
    }

    /// The busy slot `idx`, which a completion names.
    pub fn get_mut(&mut self, idx: usize) -> &mut T {
        self.slots
            .get_mut(idx)
            .and_then(Option::as_mut)
            .expect("a completion for an idle slot")
    }

    /// Empties the busy slot `idx`.
    pub fn remove(&mut self, idx: usize) -> T {
        let item = self
            .slots
            .get_mut(idx)
            .and_then(Option::take)
            .expect("a slot emptied twice");
        self.free.push(idx);
        self.busy -= 1;
        item
    }

    /// Slots in use.
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// Gives up every slot without freeing what it holds: for when the kernel may still
    /// use it and cannot be waited for.
    pub fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.slots));
        self.free.clear();
        self.busy = 0;
    }
}

/// The one iovec of a vectored I/O, on the heap so that the kernel's pointer to it stays
/// valid while its slot moves.
pub struct IoVec(Box<libc::iovec>);

// SAFETY: it points into the buffer of the I/O that owns it and moves between threads only
// with that I/O.
unsafe impl Send for IoVec {}

impl IoVec {
    pub fn new(base: *mut u8, len: usize) -> IoVec {
        IoVec(Box::new(libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        }))
    }

    pub fn as_ptr(&self) -> *const libc::iovec {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_counted() {
        let mut s = Slots::new();
        let (a, b) = (s.insert("a"), s.insert("b"));
        assert_eq!((a, b, s.busy()), (0, 1, 2));
        assert_eq!(s.remove(a), "a");
        assert_eq!(s.insert("c"), a, "a freed slot is used again");
        *s.get_mut(b) = "B";
        assert_eq!(s.remove(b), "B");
        assert_eq!(s.busy(), 1);
        s.leak();
        assert_eq!(s.busy(), 0);
    }
}
