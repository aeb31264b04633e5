//! `inline`: the work runs in the caller, before `dispatch` returns. This is `--sync-crc`,
//! and since btrfs 2023 the default for fast checksums.
//!
//! A panicking part is caught here, as the pools catch theirs: it is counted, and
//! `dispatch` returns normally (see [`Strategy`]'s contract).

use std::sync::Arc;

use crate::registry::Descriptor;
use crate::tracker::Tracker;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "inline",
    summary: "run the work in the submitting thread (--sync-crc; btrfs's default since 2023)",
    knobs: &[],
    build: |_| Ok(Arc::new(Inline::default())),
};

#[derive(Default)]
pub struct Inline {
    tracker: Tracker,
}

impl Strategy for Inline {
    fn name(&self) -> &str {
        "inline"
    }

    fn dispatch(&self, work: Work) {
        self.tracker.run_here(work);
    }

    /// Every item ran before its `dispatch` returned; an item may even quiesce its own pool.
    fn quiesce(&self) {}

    fn stats(&self) -> PoolStats {
        // No threads of its own.
        self.tracker.stats(0)
    }
}
