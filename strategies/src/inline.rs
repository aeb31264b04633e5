//! `inline`: the work runs in the caller, before `dispatch` returns. This is `--sync-crc`,
//! and since btrfs 2023 the default for fast checksums.

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
}

impl Strategy for Inline {
    fn name(&self) -> &str {
        "inline"
    }

    fn dispatch(&self, work: Work) {
        work.execute();
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn quiesce(&self) {}

    fn stats(&self) -> PoolStats {
        let done = self.done.load(Ordering::Relaxed);
        PoolStats {
            dispatched: done,
            completed: done,
            ..PoolStats::default()
        }
    }
}
