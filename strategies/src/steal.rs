//! `steal`: our own work-stealing pool on crossbeam-deque. Outside dispatches go to a global
//! injector; an item dispatched from a worker goes to that worker's own deque. A worker pops
//! its deque, then takes a batch from the injector, then steals a batch from the others.
//!
//! Sleep and wake-up: `state` packs an event counter of dispatched jobs (high bits) with the
//! number of sleeping workers (low bits), so a dispatcher and a would-be sleeper each do one
//! read-modify-write on the same word and those are totally ordered:
//! - a dispatcher queues the item, then adds a job and, if its RMW saw a sleeper, wakes one;
//! - a worker reads the job count *before* its last scan of every queue; finding nothing, it
//!   takes the lock, adds itself as a sleeper and compares the job count its RMW saw.
//!
//! If the dispatcher's RMW comes first, the sleeper sees a different job count and rescans
//! (acquire/release on the word makes the queued item visible to that scan). If the
//! sleeper's comes first, the dispatcher sees a sleeper and takes the lock before notifying;
//! the sleeper held that lock from its RMW until `wait` released it, so it is waiting and gets
//! the notification (or one already woken but not yet unregistered rescans after the item
//! was queued). Either way no item is left queued while every worker sleeps.
//!
//! A worker that finds nothing rescans a few times (spinning, then yielding) before it
//! registers as a sleeper, since waking it costs the next dispatcher a futex syscall. Under
//! loom the deque is a mutex-protected stand-in (`loom_deque` below) and the spin is skipped.

use std::cell::RefCell;
use std::rc::Rc;

use crossbeam_deque::Steal as Stolen;
#[cfg(not(loom))]
use crossbeam_deque::{Injector, Stealer, Worker};
use crossbeam_utils::Backoff;
#[cfg(loom)]
use loom_deque::{Injector, Stealer, Worker};

use crate::registry::{threads_knob, Descriptor};
use crate::sync::{
    thread, Arc, AtomicU64, Condvar, Mutex,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use crate::tracker::{Job, Tracker};
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "steal",
    summary: "our own work-stealing pool on crossbeam-deque: global injector, per-worker deques, \
              idle workers steal batches",
    knobs: &[threads_knob("worker threads, all started up front (default: online CPUs)")],
    build: |knobs| {
        let threads = knobs.count("threads", 1, MAX_THREADS)?;
        Ok(std::sync::Arc::new(Steal::new(threads)))
    },
};

/// The sleeper count lives in the low bits of `state`; this bounds it.
const MAX_THREADS: usize = 1024;
const JOB_SHIFT: u32 = 16;
const SLEEPERS: u64 = (1 << JOB_SHIFT) - 1;

pub struct Steal {
    name: String,
    threads: Vec<thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

struct Shared {
    injector: Injector<Job>,
    stealers: Vec<Stealer<Job>>,
    /// Jobs announced (`<< JOB_SHIFT`) plus sleeping workers; see the module comment.
    state: AtomicU64,
    /// True once the pool shuts down; sleepers register and wait under this lock.
    sleep: Mutex<bool>,
    wake: Condvar,
    steals: AtomicU64,
    tracker: Arc<Tracker>,
}

/// A worker's own deque, reachable from the items it runs so their dispatches stay local.
struct Local {
    pool: usize,
    deque: Rc<Worker<Job>>,
}

// Loom needs its own thread locals, and its macro takes no `const` initialiser.
#[cfg(not(loom))]
std::thread_local!(static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) });
#[cfg(loom)]
loom::thread_local!(static LOCAL: RefCell<Option<Local>> = RefCell::new(None));

impl Steal {
    pub fn new(threads: usize) -> Self {
        assert!(
            (1..=MAX_THREADS).contains(&threads),
            "steal: {threads} threads"
        );
        // FIFO deques: items run roughly in dispatch order, and thieves take the oldest.
        let deques: Vec<Worker<Job>> = (0..threads).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            state: AtomicU64::new(0),
            sleep: Mutex::new(false),
            wake: Condvar::new(),
            steals: AtomicU64::new(0),
            tracker: Arc::default(),
        });
        let threads = deques
            .into_iter()
            .enumerate()
            .map(|(i, deque)| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("csum-steal-{i}"))
                    .spawn(move || shared.work(i, deque))
                    .expect("spawning a steal worker")
            })
            .collect::<Vec<_>>();
        Steal {
            name: format!("{}:threads={}", DESCRIPTOR.name, threads.len()),
            threads,
            shared,
        }
    }

    /// Successful steals from another worker's deque (each takes a batch).
    pub fn steals(&self) -> u64 {
        self.shared.steals.load(Relaxed)
    }

    /// Workers registered as asleep right now.
    pub fn sleeping(&self) -> usize {
        (self.shared.state.load(Relaxed) & SLEEPERS) as usize
    }
}

impl Shared {
    fn id(&self) -> usize {
        self as *const Shared as usize
    }

    fn work(&self, me: usize, deque: Worker<Job>) {
        let deque = Rc::new(deque);
        LOCAL.with(|l| {
            *l.borrow_mut() = Some(Local {
                pool: self.id(),
                deque: deque.clone(),
            })
        });
        while let Some(job) = self.next(me, &deque) {
            self.tracker.run(job);
        }
        LOCAL.with(|l| l.borrow_mut().take());
    }

    /// The next item for worker `me`, sleeping while there is none; `None` at shutdown.
    fn next(&self, me: usize, deque: &Worker<Job>) -> Option<Job> {
        if let Some(job) = deque.pop() {
            return Some(job);
        }
        let backoff = Backoff::new();
        loop {
            // Read before the scan: a job announced after this makes `sleep` rescan.
            let seen = self.state.load(Acquire) >> JOB_SHIFT;
            if let Some(job) = self.find(me, deque) {
                return Some(job);
            }
            if !cfg!(loom) && !backoff.is_completed() {
                backoff.snooze();
            } else if !self.sleep(seen) {
                return None;
            }
        }
    }

    /// The injector, then every other worker's deque; `Retry` means look again.
    fn find(&self, me: usize, deque: &Worker<Job>) -> Option<Job> {
        loop {
            let mut retry = false;
            match self.injector.steal_batch_and_pop(deque) {
                Stolen::Success(job) => return Some(self.share(deque, job)),
                Stolen::Retry => retry = true,
                Stolen::Empty => {}
            }
            let n = self.stealers.len();
            for other in (1..n).map(|i| (me + i) % n) {
                match self.stealers[other].steal_batch_and_pop(deque) {
                    Stolen::Success(job) => {
                        self.steals.fetch_add(1, Relaxed);
                        return Some(self.share(deque, job));
                    }
                    Stolen::Retry => retry = true,
                    Stolen::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// After taking a batch, wake a sleeper to steal part of it: the batch would otherwise
    /// run serially here. Only parallelism depends on this, not progress.
    fn share(&self, deque: &Worker<Job>, job: Job) -> Job {
        if !deque.is_empty() && self.state.load(Relaxed) & SLEEPERS != 0 {
            self.notify();
        }
        job
    }

    /// Announces queued work; wakes a sleeper if the RMW saw one. Call after queueing.
    fn notify(&self) {
        if self.state.fetch_add(1 << JOB_SHIFT, AcqRel) & SLEEPERS != 0 {
            // The sleeper we saw holds the lock until it waits: once we get it, it waits.
            drop(self.sleep.lock().unwrap());
            self.wake.notify_one();
        }
    }

    /// Sleeps after a fruitless scan that began when the job count was `seen`. Returns false
    /// when the pool is shutting down (checked only after a fruitless scan, so queues drain).
    fn sleep(&self, seen: u64) -> bool {
        let shutdown = self.sleep.lock().unwrap();
        if *shutdown {
            return false;
        }
        if self.state.fetch_add(1, AcqRel) >> JOB_SHIFT != seen {
            // Work was announced since the scan began; it may have missed it.
            self.state.fetch_sub(1, AcqRel);
            return true;
        }
        let _shutdown = self.wake.wait(shutdown).unwrap();
        self.state.fetch_sub(1, AcqRel);
        true
    }
}

impl Strategy for Steal {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let shared = &*self.shared;
        let job = shared.tracker.begin(work);
        let job = LOCAL.with(|l| match &*l.borrow() {
            Some(local) if local.pool == shared.id() => {
                local.deque.push(job);
                None
            }
            _ => Some(job),
        });
        if let Some(job) = job {
            shared.injector.push(job);
        }
        shared.notify();
    }

    fn quiesce(&self) {
        self.shared.tracker.wait_idle();
    }

    fn stats(&self) -> PoolStats {
        self.shared.tracker.stats(self.threads.len() as u64)
    }
}

impl Drop for Steal {
    fn drop(&mut self) {
        let (shared, threads) = (self.shared.clone(), std::mem::take(&mut self.threads));
        Tracker::shut_down(&self.shared.tracker, move || {
            *shared.sleep.lock().unwrap() = true;
            shared.wake.notify_all();
            threads
        });
    }
}

/// Under loom, a stand-in for crossbeam-deque: its handoffs use real atomics loom cannot see,
/// so loom would flag every item as a data race. This mutex-protected model has the same
/// interface and linearizable behaviour, and lets the models check the sleep/wake protocol.
#[cfg(loom)]
mod loom_deque {
    use std::collections::VecDeque;

    use crossbeam_deque::Steal;

    use crate::sync::{Arc, Mutex};

    type Queue<T> = Arc<Mutex<VecDeque<T>>>;

    /// Takes the front item and moves up to half of the rest into `dest`, like crossbeam.
    fn steal_batch_and_pop<T>(from: &Queue<T>, dest: &Worker<T>) -> Steal<T> {
        let mut from = from.lock().unwrap();
        let Some(first) = from.pop_front() else {
            return Steal::Empty;
        };
        let half = from.len() / 2;
        let batch: Vec<T> = from.drain(..half).collect();
        drop(from);
        dest.0.lock().unwrap().extend(batch);
        Steal::Success(first)
    }

    pub(super) struct Injector<T>(Queue<T>);

    impl<T> Injector<T> {
        pub(super) fn new() -> Self {
            Injector(Arc::new(Mutex::new(VecDeque::new())))
        }
        pub(super) fn push(&self, item: T) {
            self.0.lock().unwrap().push_back(item);
        }
        pub(super) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
            steal_batch_and_pop(&self.0, dest)
        }
    }

    pub(super) struct Worker<T>(Queue<T>);

    impl<T> Worker<T> {
        pub(super) fn new_fifo() -> Self {
            Worker(Arc::new(Mutex::new(VecDeque::new())))
        }
        pub(super) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
        pub(super) fn push(&self, item: T) {
            self.0.lock().unwrap().push_back(item);
        }
        pub(super) fn pop(&self) -> Option<T> {
            self.0.lock().unwrap().pop_front()
        }
        pub(super) fn is_empty(&self) -> bool {
            self.0.lock().unwrap().is_empty()
        }
    }

    pub(super) struct Stealer<T>(Queue<T>);

    impl<T> Stealer<T> {
        pub(super) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
            steal_batch_and_pop(&self.0, dest)
        }
    }
}

// The job-counter/sleeper word, the lock, the condvar, the tracker and the shutdown are the
// real code under loom. crossbeam-deque is not loom-instrumented (it keys on
// `crossbeam_loom`, not `loom`), so under loom the mutex-protected `loom_deque` stands in
// for it: these models check our sleep/wake protocol, not crossbeam's deque.
#[cfg(all(test, loom))]
mod models {
    use super::*;

    crate::loom_models::pool_models! {
        /// One worker racing to sleep while two items arrive: the plainest lost wake-up,
        /// with nobody else to pick the item up.
        one_worker(3) = Steal::new(1) => [quiesce_sees_every_item(2)];
        /// Two workers racing to sleep; an item dispatched from a worker lands in its own
        /// deque, and the notify must reach the other or the owner must run it.
        two_workers(2) = Steal::new(2) => [
            quiesce_sees_every_item(2),
            drop_runs_everything_queued(2),
            quiesce_covers_work_dispatched_by_work(),
        ];
    }
}
