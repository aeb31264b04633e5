//! `inline`: the work runs in the caller, before `dispatch` returns. This is `--sync-crc`,
//! and since btrfs 2023 the default for fast checksums.
//!
//! A panicking part is caught here, as the pools catch theirs: it is counted, and
//! `dispatch` returns normally (see [`Strategy`]'s contract).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::registry::Descriptor;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "inline",
    summary: "run the work in the submitting thread (--sync-crc; btrfs's default since 2023)",
    knobs: &[],
    build: |_| Ok(Arc::new(Inline::default())),
};

#[derive(Default)]
pub struct Inline {
    done: AtomicU64,
    panics: AtomicU64,
}

impl Strategy for Inline {
    fn name(&self) -> &str {
        "inline"
    }

    fn dispatch(&self, work: Work) {
        // The work owns everything it touches; a panic leaves nothing of ours half-updated.
        // A panicking run part's ordered part is dropped, unrun, as the unwind leaves
        // `execute`.
        if catch_unwind(AssertUnwindSafe(|| work.execute())).is_err() {
            self.panics.fetch_add(1, Ordering::Relaxed);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn quiesce(&self) {}

    fn stats(&self) -> PoolStats {
        let done = self.done.load(Ordering::Relaxed);
        PoolStats {
            dispatched: done,
            completed: done,
            panics: self.panics.load(Ordering::Relaxed),
            ..PoolStats::default()
        }
    }
}
