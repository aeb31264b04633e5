//! `async-std`: `async_std::task::spawn` on async-std's process-wide executor.
//!
//! That executor has no per-instance configuration: it starts ASYNC_STD_THREAD_COUNT threads
//! (default: online CPUs) on first use, and they live as long as the process. So this
//! backend has no knobs and, unlike the others, leaves threads behind when dropped (it still
//! waits for its own items).

use std::sync::Arc;

use crate::registry::Descriptor;
use crate::tracker::Tracker;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "async-std",
    summary: "async_std::task::spawn on its global executor (ASYNC_STD_THREAD_COUNT threads, \
              process-wide, so --endio separate still shares one pool and can deadlock); \
              deprecated upstream, RUSTSEC-2025-0052; kept because users asked",
    knobs: &[],
    build: |_| Ok(Arc::new(AsyncStd::default())),
};

#[derive(Default)]
pub struct AsyncStd {
    tracker: Arc<Tracker>,
}

impl Strategy for AsyncStd {
    fn name(&self) -> &str {
        DESCRIPTOR.name
    }

    fn dispatch(&self, work: Work) {
        let task = Tracker::task(&self.tracker, work);
        // Dropping the JoinHandle detaches the task.
        drop(async_std::task::spawn(async move { task() }));
    }

    fn quiesce(&self) {
        self.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        // The executor's threads are not ours to count.
        self.tracker.stats(0)
    }
}

impl Drop for AsyncStd {
    fn drop(&mut self) {
        // The executor is global: there is nothing to stop or join, only items to await.
        Tracker::shut_down(&self.tracker, Vec::new);
    }
}
