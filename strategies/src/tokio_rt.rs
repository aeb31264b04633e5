//! `tokio`: a multi-thread tokio runtime owned by the strategy; dispatch spawns an async
//! task that runs the (blocking, CPU-bound) work on a worker thread. [`TokioRt`] also
//! serves `tokio-blocking`, which hands each item to the runtime's blocking pool instead.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::runtime::{Builder, Runtime};

use crate::registry::{threads_knob, Descriptor};
use crate::tracker::Tracker;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "tokio",
    summary:
        "a multi-thread tokio runtime; dispatch = runtime.spawn of an async task running the work",
    knobs: &[threads_knob("tokio worker_threads (default: online CPUs)")],
    build: |knobs| Ok(Arc::new(TokioRt::new(knobs.count("threads", 1, 1024)?))),
};

/// A tokio runtime owned by the strategy. Counts the threads the runtime starts; dropping it
/// waits for the work, then shuts the runtime down and joins its threads.
pub struct TokioRt {
    name: String,
    /// Taken in `drop`: shutting down consumes the runtime.
    runtime: Option<Runtime>,
    spawn: Spawn,
    threads_started: Arc<AtomicU64>,
    tracker: Arc<Tracker>,
}

/// Where in the runtime an item runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spawn {
    /// An async task on a worker thread (`spawn`).
    Task,
    /// The blocking pool (`spawn_blocking`).
    Blocking,
}

impl TokioRt {
    pub fn new(threads: usize) -> Self {
        let name = format!("{}:threads={threads}", DESCRIPTOR.name);
        let mut builder = Builder::new_multi_thread();
        Self::start(name, builder.worker_threads(threads), "csum-tokio", Spawn::Task)
    }

    pub(crate) fn start(name: String, builder: &mut Builder, thread: &str, spawn: Spawn) -> Self {
        let threads_started = Arc::new(AtomicU64::new(0));
        let counter = threads_started.clone();
        let runtime = builder
            .thread_name(thread)
            .on_thread_start(move || {
                counter.fetch_add(1, Relaxed);
            })
            .build()
            .expect("building a tokio runtime");
        TokioRt {
            name,
            runtime: Some(runtime),
            spawn,
            threads_started,
            tracker: Arc::default(),
        }
    }
}

impl Strategy for TokioRt {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let task = Tracker::task(&self.tracker, work);
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        // Dropping the JoinHandle detaches the task.
        match self.spawn {
            Spawn::Task => drop(runtime.spawn(async move { task() })),
            Spawn::Blocking => drop(runtime.spawn_blocking(task)),
        }
    }

    fn quiesce(&self) {
        self.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        self.tracker.stats(self.threads_started.load(Relaxed))
    }
}

impl Drop for TokioRt {
    fn drop(&mut self) {
        let runtime = self.runtime.take();
        Tracker::shut_down(&self.tracker, move || {
            // Outside async context, dropping a runtime shuts it down and joins its threads.
            drop(runtime);
            Vec::new()
        });
    }
}
