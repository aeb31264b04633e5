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

impl Inline {
    /// Runs `f` here as one work item, as `dispatch` runs a [`Work`] but without boxing it:
    /// counted, and a panic caught and counted; `None` if it panicked.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.tracker.run_in_place(f)
    }
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

    fn as_inline(&self) -> Option<&Inline> {
        Some(self)
    }

    fn stats(&self) -> PoolStats {
        // No threads of its own.
        self.tracker.stats(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_counts_each_item_and_catches_its_panic() {
        let inline = Inline::default();
        assert_eq!(inline.run(|| 7), Some(7));
        assert_eq!(inline.run(|| -> u32 { panic!("in place") }), None);
        inline.dispatch(Work::new(|| ()));
        let stats = inline.stats();
        assert_eq!((stats.dispatched, stats.completed, stats.panics), (3, 3, 1));
        assert!(inline.as_inline().is_some());
    }
}
