//! `tokio`: a multi-thread tokio runtime owned by the strategy; dispatch spawns an async
//! task that runs the (blocking, CPU-bound) work on a worker thread. Also home of
//! `OwnedRuntime`, shared with `tokio-blocking`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::runtime::{Builder, Runtime};

use crate::registry::{online_cpus, Descriptor, Knob};
use crate::tracker::Tracker;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "tokio",
    summary:
        "a multi-thread tokio runtime; dispatch = runtime.spawn of an async task running the work",
    knobs: &[Knob {
        name: "threads",
        default: || online_cpus().to_string(),
        help: "tokio worker_threads (default: online CPUs)",
    }],
    build: |knobs| {
        let pool = TokioRt::new(knobs.count("threads", 1, 1024)?);
        debug_assert_eq!(pool.name, knobs.spec_string());
        Ok(Arc::new(pool))
    },
};

pub struct TokioRt {
    name: String,
    rt: OwnedRuntime,
}

impl TokioRt {
    pub fn new(threads: usize) -> Self {
        TokioRt {
            name: format!("{}:threads={threads}", DESCRIPTOR.name),
            rt: OwnedRuntime::new(
                Builder::new_multi_thread().worker_threads(threads),
                "csum-tokio",
            ),
        }
    }
}

impl Strategy for TokioRt {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let job = self.rt.tracker.begin(work);
        let tracker = self.rt.tracker.clone();
        // Dropping the JoinHandle detaches the task. `Tracker::run` catches a panicking item
        // first: the runtime would only report it to that handle, and `quiesce` would wait
        // for the item forever.
        drop(self.rt.runtime().spawn(async move { tracker.run(job) }));
    }

    fn quiesce(&self) {
        self.rt.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        self.rt.stats()
    }
}

/// A tokio runtime owned by a strategy, with its tracker. Counts the threads the runtime
/// starts; dropping it waits for the work, then shuts the runtime down and joins its threads.
pub(crate) struct OwnedRuntime {
    /// Taken in `drop`: shutting down consumes the runtime.
    runtime: Option<Runtime>,
    threads_started: Arc<AtomicU64>,
    pub(crate) tracker: Arc<Tracker>,
}

impl OwnedRuntime {
    pub(crate) fn new(builder: &mut Builder, thread_name: &str) -> Self {
        let threads_started = Arc::new(AtomicU64::new(0));
        let counter = threads_started.clone();
        let runtime = builder
            .thread_name(thread_name)
            .on_thread_start(move || {
                counter.fetch_add(1, Relaxed);
            })
            .build()
            .expect("building a tokio runtime");
        OwnedRuntime {
            runtime: Some(runtime),
            threads_started,
            tracker: Arc::default(),
        }
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.tracker.stats(self.threads_started.load(Relaxed))
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        let runtime = self.runtime.take();
        Tracker::shut_down(&self.tracker, move || {
            // Outside async context, dropping a runtime shuts it down and joins its threads.
            drop(runtime);
            Vec::new()
        });
    }
}
