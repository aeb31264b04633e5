//! The work the strategies place: checksumming a write (before its I/O, or while it is in
//! flight), and endio (record a write's sums and its metadata I/O, or verify a read).

use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::Sender;
use strategies::csum::Algo;
use strategies::{Strategy, Work};
use workloads::store::Bad;
use workloads::{CsumStore, Op, SECTOR_SIZE};

use super::bio::{Bio, Completion, Homecoming, OverlapCsum, SharedBuf};
use super::panic::{take_last_panic, OnUnwind};
use super::state::{CaseState, CloneFile, Mismatch, MismatchKind};
use crate::measure::clock::Stamp;

type BioCell = Mutex<Option<Box<Bio>>>;

/// The parts of a job the stage work needs: the submitter's, shared (one `Arc`) by the work
/// items it sends to pools.
pub(super) struct StageCtx {
    pub case: Arc<CaseState>,
    /// The clone's files, as a bio's `file` numbers them.
    pub files: Vec<CloneFile>,
    pub meta: Arc<dyn Strategy>,
    /// The strategy's name, for messages.
    pub strategy: Arc<str>,
    pub algo: Algo,
    pub home: Sender<Homecoming>,
    /// False for diskless engines (null): reads return no data, so there is nothing to
    /// verify; the checksums are still computed, so the CPU work is the same.
    pub verify: bool,
}

impl StageCtx {
    /// A work item of `stage` panicked: the case fails with the panic's message.
    pub fn panicked(&self, stage: &str) {
        self.case.fail(format!(
            "work item panicked in the {stage} stage on strategy {}: {}",
            self.strategy,
            take_last_panic()
        ));
    }

    /// A panicking csum item owned a bio: drop it out of `cell` (so that no ordered part can
    /// still send it) and tell the submitter it is gone.
    fn lost_in_csum(&self, cell: &BioCell) {
        self.panicked("csum");
        let bio = cell.lock().unwrap_or_else(PoisonError::into_inner).take();
        let _ = self.home.send(Homecoming::Lost(bio.and_then(|b| b.lock)));
    }

    /// The store of the bio's file.
    fn store(&self, bio: &Bio) -> &CsumStore {
        &self.files[bio.file].store
    }

    pub fn inject(at: Option<u64>) {
        if let Some(at) = at {
            panic!("injected by --inject panic@{at}");
        }
    }

    /// Checksums every sector of a write, the stage starting at `start`.
    pub fn checksum(&self, bio: &mut Bio, start: Stamp) {
        bio.csum_start = start;
        let mut sums = std::mem::take(&mut bio.sums);
        sums.resize(bio.sectors() as usize * self.algo.len(), 0);
        self.algo.sectors(bio.data(), &mut sums);
        bio.sums = sums;
        bio.csum_end = Stamp::now();
    }

    /// Endio, starting at `start`: a write's sums recorded (once its overlapping csum work
    /// has finished), a read verified. `inject`: where `--inject panic@N` strikes.
    pub fn endio(&self, bio: &mut Bio, start: Stamp, inject: Option<u64>) {
        bio.endio_start = start;
        // Before anything can panic: the buffer must outlive the overlapping csum work.
        let summed = match bio.overlap.take() {
            Some(overlap) => overlap.finish_into(bio),
            None => true,
        };
        Self::inject(inject);
        match bio.op {
            Op::Write if summed => self.finish_ordered_extent(bio),
            Op::Write => {}
            Op::Read => self.verify(bio),
        }
        bio.endio_end = Stamp::now();
        bio.finished = true;
    }

    /// The csum stage on a pool: checksum every sector of a write, then send the bio home
    /// for submission. The send is the ordered part: ordered pools submit in issue order.
    pub fn csum_work(self: &Arc<Self>, bio: Box<Bio>) -> Work {
        let cell: Arc<BioCell> = Arc::new(Mutex::new(Some(bio)));
        let inject = self.case.injects_panic();
        let (ctx, home) = (self.clone(), self.home.clone());
        let run_cell = cell.clone();
        Work::with_ordered(
            move || {
                let _unwind = OnUnwind(|| ctx.lost_in_csum(&run_cell));
                Self::inject(inject);
                let mut guard = run_cell.lock().unwrap();
                let bio = guard.as_mut().expect("bio in cell");
                ctx.checksum(bio, Stamp::now());
            },
            move || {
                let bio = cell.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(bio) = bio {
                    let _ = home.send(Homecoming::Bio(bio));
                }
            },
        )
    }

    /// The overlapping csum stage: checksums the buffer while the write carries it.
    pub fn overlap_csum_work(self: &Arc<Self>, bio: &mut Bio) -> Work {
        let overlap = Arc::new(OverlapCsum::default());
        bio.overlap = Some(overlap.clone());
        let shared = SharedBuf::of(bio.data());
        let inject = self.case.injects_panic();
        let ctx = self.clone();
        Work::new(move || {
            // The endio waiting for these sums goes on without them.
            let _unwind = OnUnwind(|| {
                ctx.panicked("csum");
                overlap.done.complete();
            });
            Self::inject(inject);
            let start = Stamp::now();
            // SAFETY: see SharedBuf; the bio's owner waits for `done` before reuse.
            let data = unsafe { shared.bytes() };
            let mut sums = vec![0u8; data.len() / SECTOR_SIZE as usize * ctx.algo.len()];
            ctx.algo.sectors(data, &mut sums);
            *overlap.result.lock().unwrap() = Some((sums, start, Stamp::now()));
            overlap.done.complete();
        })
    }

    /// The endio stage on a pool; the bio goes home when done.
    pub fn endio_work(self: &Arc<Self>, mut bio: Box<Bio>) -> Work {
        let inject = self.case.injects_panic();
        let ctx = self.clone();
        let lock = bio.lock;
        Work::new(move || {
            let _unwind = OnUnwind(|| {
                ctx.panicked("endio");
                let _ = ctx.home.send(Homecoming::Lost(lock));
            });
            ctx.endio(&mut bio, Stamp::now(), inject);
            let _ = ctx.home.send(Homecoming::Bio(bio));
        })
    }

    /// Finishing a write's ordered extent: record its checksums, write them as a metadata
    /// I/O, and wait for that I/O's own endio, which runs on the metadata endio pool. With
    /// one shared, bounded pool this wait can be for an item queued behind ourselves.
    fn finish_ordered_extent(&self, bio: &Bio) {
        let store = self.store(bio);
        let first = bio.first_sector();
        let unsummed = self.algo.len() == 0;
        let recorded = match unsummed {
            true => store.record_unsummed(first, bio.sectors()),
            false => store.record(first, &bio.sums),
        };
        if let Err(e) = recorded {
            self.case.fail(format!(
                "metadata write to {} for offset {} failed: {e}",
                store.path().display(),
                bio.offset
            ));
            return;
        }
        if unsummed {
            return;
        }
        // The metadata I/O's own endio: in place when it runs inline, nothing to wait for.
        if let Some(inline) = self.meta.as_inline() {
            inline.run(|| ());
            return;
        }
        let meta_done = Arc::new(Completion::default());
        let signal = meta_done.clone();
        self.meta.dispatch(Work::new(move || signal.complete()));
        meta_done.wait(&self.case);
    }

    /// Read endio: checksum what came back and compare every sector with the store. Sectors
    /// past the end of a truncated file are reported as such.
    fn verify(&self, bio: &mut Bio) {
        let sectors = bio.sectors();
        let whole = (bio.readable / SECTOR_SIZE).min(sectors);
        let mut sums = std::mem::take(&mut bio.sums);
        sums.resize(whole as usize * self.algo.len(), 0);
        if !sums.is_empty() {
            self.algo
                .sectors(&bio.data()[..(whole * SECTOR_SIZE) as usize], &mut sums);
        }
        if self.verify {
            let first = bio.first_sector();
            let bad = self.store(bio).verify(first, &sums, whole);
            let bad = bad.into_iter().map(|(sector, bad)| {
                let kind = match bad {
                    Bad::Mismatch => MismatchKind::Checksum,
                    Bad::Missing => MismatchKind::NotRecorded,
                };
                (sector, kind)
            });
            let truncated = (whole..sectors).map(|s| (first + s, MismatchKind::Truncated));
            for (sector, kind) in bad.chain(truncated) {
                self.case.mismatch(Mismatch {
                    file: self.files[bio.file].label.to_string(),
                    offset: sector * SECTOR_SIZE,
                    kind,
                });
            }
        }
        bio.sums = sums;
    }
}
