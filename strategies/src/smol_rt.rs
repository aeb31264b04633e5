//! `smol`: an `async_executor::Executor` (smol's) driven by `threads` threads of our own,
//! each running `block_on(executor.run(..))`; dispatch = `executor.spawn(..).detach()`.

use std::sync::Arc;
use std::thread::JoinHandle;

use smol::channel::{Receiver, Sender};
use smol::Executor;

use crate::registry::{threads_knob, Descriptor};
use crate::tracker::Tracker;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "smol",
    summary: "a smol Executor driven by N threads; dispatch = executor.spawn(..).detach()",
    knobs: &[threads_knob("threads running the executor (default: online CPUs)")],
    build: |knobs| Ok(Arc::new(SmolRt::new(knobs.count("threads", 1, 1024)?))),
};

pub struct SmolRt {
    name: String,
    executor: Arc<Executor<'static>>,
    /// Closed on drop: each thread's `run` returns when its `recv` fails.
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
    tracker: Arc<Tracker>,
}

impl SmolRt {
    pub fn new(threads: usize) -> Self {
        let executor = Arc::new(Executor::new());
        let (stop, stopped): (Sender<()>, Receiver<()>) = smol::channel::bounded(1);
        let threads = (0..threads)
            .map(|i| {
                let (executor, stopped) = (executor.clone(), stopped.clone());
                std::thread::Builder::new()
                    .name(format!("csum-smol-{i}"))
                    .spawn(move || {
                        // Err once `stop` closes; nothing is ever sent.
                        let _ = smol::future::block_on(executor.run(stopped.recv()));
                    })
                    .expect("spawning a smol thread")
            })
            .collect::<Vec<_>>();
        SmolRt {
            name: format!("{}:threads={}", DESCRIPTOR.name, threads.len()),
            executor,
            stop,
            threads,
            tracker: Arc::default(),
        }
    }
}

impl Strategy for SmolRt {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let task = Tracker::task(&self.tracker, work);
        self.executor.spawn(async move { task() }).detach();
    }

    fn quiesce(&self) {
        self.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        self.tracker.stats(self.threads.len() as u64)
    }
}

impl Drop for SmolRt {
    fn drop(&mut self) {
        let (stop, threads) = (self.stop.clone(), std::mem::take(&mut self.threads));
        Tracker::shut_down(&self.tracker, move || {
            stop.close();
            threads
        });
    }
}
