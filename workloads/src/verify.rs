//! fio's verify phase: once a write job's writes end, it reads back what it wrote and
//! each sector is checked against its sum. fio replays its own history of the writes;
//! csumbench's store already knows every sector that has a sum, so the phase reads the
//! job's region in order, in runs of recorded sectors, and skips what was never written.

use std::sync::Arc;

use crate::engine::Op;
use crate::job::Region;
use crate::offsets::Io;
use crate::store::CsumStore;
use crate::SECTOR_SIZE;

/// The reads of a verify phase: every run of recorded sectors of a region, in order, cut
/// into I/Os of at most `most` bytes.
pub struct VerifyPass {
    store: Arc<CsumStore>,
    /// The next sector to look at, and the sector the region ends before.
    next: u64,
    end: u64,
    most_sectors: u64,
}

impl VerifyPass {
    /// The reads over `region` (whole sectors inside it), `most` bytes at a time (at least
    /// one sector).
    pub fn new(store: Arc<CsumStore>, region: Region, most: u64) -> VerifyPass {
        VerifyPass {
            next: region.start.div_ceil(SECTOR_SIZE),
            end: region.start.saturating_add(region.len) / SECTOR_SIZE,
            most_sectors: (most / SECTOR_SIZE).max(1),
            store,
        }
    }
}

impl Iterator for VerifyPass {
    type Item = Io;

    fn next(&mut self) -> Option<Io> {
        while self.next < self.end && !self.store.recorded(self.next) {
            self.next += 1;
        }
        if self.next >= self.end {
            return None;
        }
        let first = self.next;
        let last = self.end.min(first + self.most_sectors);
        while self.next < last && self.store.recorded(self.next) {
            self.next += 1;
        }
        Some(Io {
            offset: first * SECTOR_SIZE,
            len: (self.next - first) * SECTOR_SIZE,
            op: Op::Read,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Algorithm, Identity, Overwrite};

    fn store(dir: &std::path::Path, sectors: u64) -> Arc<CsumStore> {
        let data = dir.join("data");
        std::fs::write(&data, b"").unwrap();
        let algo = Algorithm {
            name: "crc32c",
            csum_len: 4,
        };
        let store = CsumStore::create(
            &CsumStore::beside(&data),
            algo,
            sectors * SECTOR_SIZE,
            &Identity::of(&data).unwrap(),
            Overwrite::StoresOnly,
        )
        .unwrap();
        Arc::new(store)
    }

    fn ios(store: &Arc<CsumStore>, start: u64, len: u64, most: u64) -> Vec<(u64, u64)> {
        VerifyPass::new(store.clone(), Region { start, len }, most)
            .map(|io| (io.offset / SECTOR_SIZE, io.len / SECTOR_SIZE))
            .collect()
    }

    #[test]
    fn reads_only_runs_of_recorded_sectors_cut_to_the_most() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path(), 64);
        store.record(2, &[0; 4 * 5]).unwrap(); // sectors 2..7
        store.record(10, &[0; 4]).unwrap(); // sector 10
        store.record(20, &[0; 4 * 3]).unwrap(); // 20..23
        let s = SECTOR_SIZE;
        assert_eq!(
            ios(&store, 0, 64 * s, 2 * s),
            [(2, 2), (4, 2), (6, 1), (10, 1), (20, 2), (22, 1)]
        );
        assert_eq!(ios(&store, 0, 64 * s, 1 << 20), [(2, 5), (10, 1), (20, 3)]);
        // Only inside the region, whole sectors.
        assert_eq!(
            ios(&store, 3 * s, 18 * s, 1 << 20),
            [(3, 4), (10, 1), (20, 1)]
        );
        assert_eq!(ios(&store, 30 * s, 10 * s, 1 << 20), []);
    }
}
