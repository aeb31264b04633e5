//! `tokio-blocking`: tokio's blocking pool; dispatch = `spawn_blocking`. The pool starts a
//! thread whenever an item finds no idle one, up to `max_blocking`, and lets idle threads
//! go after 10 s: under a burst it grows to hundreds of threads.

use std::sync::Arc;

use tokio::runtime::Builder;

use crate::registry::{Descriptor, Knob};
use crate::tokio_rt::OwnedRuntime;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "tokio-blocking",
    summary:
        "tokio's blocking pool: dispatch = spawn_blocking, one thread per queued item up to a cap",
    knobs: &[Knob {
        name: "max_blocking",
        default: || "512".to_string(),
        help: "max_blocking_threads; tokio's default 512, so under a burst the pool grows to \
               ~512 threads",
    }],
    build: |knobs| {
        let pool = TokioBlocking::new(knobs.count("max_blocking", 1, 4096)?);
        debug_assert_eq!(pool.name, knobs.spec_string());
        Ok(Arc::new(pool))
    },
};

pub struct TokioBlocking {
    name: String,
    rt: OwnedRuntime,
}

impl TokioBlocking {
    pub fn new(max_blocking: usize) -> Self {
        TokioBlocking {
            name: format!("{}:max_blocking={max_blocking}", DESCRIPTOR.name),
            // A current-thread runtime starts no threads of its own, so every thread counted
            // in `workers_started` is a blocking-pool thread.
            rt: OwnedRuntime::new(
                Builder::new_current_thread().max_blocking_threads(max_blocking),
                "csum-tokio-blocking",
            ),
        }
    }
}

impl Strategy for TokioBlocking {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let job = self.rt.tracker.begin(work);
        let tracker = self.rt.tracker.clone();
        // Dropping the JoinHandle detaches the task. `Tracker::run` catches a panicking item
        // first: the runtime would only report it to that handle, and `quiesce` would wait
        // for the item forever.
        drop(self.rt.runtime().spawn_blocking(move || tracker.run(job)));
    }

    fn quiesce(&self) {
        self.rt.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        self.rt.stats()
    }
}
