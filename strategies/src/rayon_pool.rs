//! `rayon`: a dedicated rayon thread pool (not the global one); dispatch is `pool.spawn`.
//! Rayon's own deques and sleep logic decide where items run; an item dispatched from a
//! worker lands on that worker's deque.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::registry::{threads_knob, Descriptor};
use crate::tracker::Tracker;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "rayon",
    summary: "a dedicated rayon::ThreadPool, dispatch = pool.spawn (rayon's work stealing)",
    knobs: &[threads_knob("rayon worker threads (default: online CPUs)")],
    build: |knobs| Ok(Arc::new(RayonPool::new(knobs.count("threads", 1, 1024)?))),
};

pub struct RayonPool {
    name: String,
    /// Taken in `drop`, to be dropped before joining.
    pool: Option<rayon::ThreadPool>,
    /// Rayon never joins its threads; we spawn them ourselves to be able to.
    threads: Vec<JoinHandle<()>>,
    tracker: Arc<Tracker>,
}

impl RayonPool {
    pub fn new(threads: usize) -> Self {
        let mut handles = Vec::new();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("csum-rayon-{i}"))
            .spawn_handler(|thread| {
                let mut builder = std::thread::Builder::new();
                if let Some(name) = thread.name() {
                    builder = builder.name(name.to_string());
                }
                let handle = builder.spawn(|| thread.run())?;
                handles.push(handle);
                Ok(())
            })
            .build()
            .expect("building the rayon pool");
        RayonPool {
            name: format!("{}:threads={threads}", DESCRIPTOR.name),
            pool: Some(pool),
            threads: handles,
            tracker: Arc::default(),
        }
    }
}

impl Strategy for RayonPool {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let pool = self.pool.as_ref().expect("pool lives until drop");
        pool.spawn(Tracker::task(&self.tracker, work));
    }

    fn quiesce(&self) {
        self.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        self.tracker.stats(self.threads.len() as u64)
    }
}

impl Drop for RayonPool {
    fn drop(&mut self) {
        let pool = self.pool.take();
        let threads = std::mem::take(&mut self.threads);
        Tracker::shut_down(&self.tracker, move || {
            // Dropping the pool is what tells rayon's workers to exit.
            drop(pool);
            threads
        });
    }
}
