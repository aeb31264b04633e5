//! Locks on a file's sectors, held by each bio from issue to retirement (btrfs's extent
//! locks; fio's `serialize_overlap`, and more): a write excludes every other I/O to its
//! sectors, reads share. Without them, a read that overlaps a write still in flight, or two
//! writes to one sector whose endios finish out of order on a reordering pool, leave the
//! store with the sum of data that did not land, and verification reports corruption that
//! is not there.
//!
//! One `ExtentLocks` per file per case, shared by every job on that file. Nothing blocks
//! here: a job whose next bio is refused keeps reaping and retiring its own bios, and is
//! woken (a [`Homecoming::Wake`] on its channel) when a lock it waited for is released, so
//! two jobs each waiting for the other's bios still drain them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crossbeam_channel::Sender;
use workloads::Op;

use super::bio::Homecoming;

/// A lock a bio holds: the key of its extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ExtentLock {
    start: u64,
    id: u64,
}

struct Extent {
    end: u64,
    op: Op,
}

#[derive(Default)]
struct Held {
    extents: BTreeMap<ExtentLock, Extent>,
    next_id: u64,
    /// Jobs refused a lock since the last release, to wake at the next.
    waiters: Vec<Sender<Homecoming>>,
}

pub struct ExtentLocks {
    held: Mutex<Held>,
    /// No extent is longer: an extent overlapping `[start, end)` starts after
    /// `start - longest`, which bounds the search.
    longest: u64,
}

impl ExtentLocks {
    /// Locks for extents of at most `longest` bytes.
    pub fn new(longest: u64) -> ExtentLocks {
        ExtentLocks {
            held: Mutex::default(),
            longest: longest.max(1),
        }
    }

    /// Locks `[start, start + len)` for `op`, or, when a conflicting lock is held, registers
    /// `waiter` to be woken at the next release and returns `None`.
    pub(super) fn try_lock(
        &self,
        start: u64,
        len: u64,
        op: Op,
        waiter: &Sender<Homecoming>,
    ) -> Option<ExtentLock> {
        let end = start + len;
        let from = ExtentLock {
            start: start.saturating_sub(self.longest - 1),
            id: 0,
        };
        let to = ExtentLock { start: end, id: 0 };
        let mut held = self.held.lock().unwrap();
        let conflict = held
            .extents
            .range(from..to)
            .any(|(_, e)| e.end > start && (op == Op::Write || e.op == Op::Write));
        if conflict {
            if !held.waiters.iter().any(|w| w.same_channel(waiter)) {
                held.waiters.push(waiter.clone());
            }
            return None;
        }
        let key = ExtentLock {
            start,
            id: held.next_id,
        };
        held.next_id += 1;
        held.extents.insert(key, Extent { end, op });
        Some(key)
    }

    /// Releases a lock and wakes every job that was refused one since the last release.
    pub(super) fn unlock(&self, lock: ExtentLock) {
        let waiters = {
            let mut held = self.held.lock().unwrap();
            held.extents.remove(&lock);
            std::mem::take(&mut held.waiters)
        };
        for w in waiters {
            let _ = w.send(Homecoming::Wake);
        }
    }

    /// Extents locked now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.lock().unwrap().extents.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 4096;

    #[test]
    fn writes_exclude_everything_and_reads_share() {
        let locks = ExtentLocks::new(256 * K);
        let (tx, rx) = crossbeam_channel::unbounded();
        let w = locks.try_lock(8 * K, 8 * K, Op::Write, &tx).unwrap();
        // Overlapping at either end, or inside: refused, whichever the direction.
        for (at, len) in [(0, 9 * K), (15 * K, K), (10 * K, K), (0, 64 * K)] {
            for op in [Op::Read, Op::Write] {
                assert!(locks.try_lock(at, len, op, &tx).is_none(), "{at} {len}");
            }
        }
        // Touching is not overlapping.
        let before = locks.try_lock(0, 8 * K, Op::Write, &tx).unwrap();
        let after = locks.try_lock(16 * K, K, Op::Read, &tx).unwrap();
        assert!(rx.try_recv().is_err(), "no release yet");
        locks.unlock(w);
        assert!(matches!(rx.try_recv(), Ok(Homecoming::Wake)), "woken once");
        assert!(rx.try_recv().is_err(), "one wake per waiting job");
        let r1 = locks.try_lock(8 * K, 8 * K, Op::Read, &tx).unwrap();
        let r2 = locks.try_lock(12 * K, 8 * K, Op::Read, &tx).unwrap();
        assert!(locks.try_lock(12 * K, K, Op::Write, &tx).is_none());
        for l in [before, after, r1, r2] {
            locks.unlock(l);
        }
        assert_eq!(locks.held(), 0);
        assert!(locks.try_lock(0, 256 * K, Op::Write, &tx).is_some());
    }

    #[test]
    fn the_longest_extent_bounds_the_search_but_never_hides_an_overlap() {
        let locks = ExtentLocks::new(256 * K);
        let (tx, _rx) = crossbeam_channel::unbounded();
        let long = locks.try_lock(0, 256 * K, Op::Write, &tx).unwrap();
        assert!(locks.try_lock(255 * K, K, Op::Read, &tx).is_none());
        assert!(locks.try_lock(256 * K, K, Op::Read, &tx).is_some());
        locks.unlock(long);
        // Many small extents: an overlap with any one of them is found.
        let held: Vec<_> = (0..64)
            .map(|i| locks.try_lock(i * 2 * K, K, Op::Write, &tx).unwrap())
            .collect();
        assert!(locks.try_lock(101 * K, 2 * K, Op::Read, &tx).is_none());
        assert!(locks.try_lock(129 * K, K, Op::Read, &tx).is_some());
        drop(held);
    }
}
