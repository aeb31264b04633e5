//! `kthread`: the btrfs worker pool of 2008 (fs/btrfs/async-thread.c), in user space.
//!
//! Every worker thread has its own pending list. `dispatch` keeps feeding the worker it fed
//! last until that one has `idle_thresh` items pending, then looks for a less busy worker,
//! and starts a new thread when everyone is busy and the pool is below `max_workers`; at the
//! limit it moves on to the next worker (`next_worker`/`find_worker`). The pool starts with
//! one thread. A dispatcher only wakes a worker that has cleared its `working` flag, which
//! saves a wake-up per item while the worker is busy (`btrfs_queue_worker`/`worker_loop`).
//!
//! With `ordered=1` the run parts still run anywhere, concurrently, but the ordered parts
//! run one at a time in dispatch order, like btrfs's ordered pools (`run_ordered_completions`):
//! every item takes a place in the tracker's line, and whichever worker finishes the run part
//! at its head runs every finished ordered part from the head on.
//!
//! Long items can give their worker up with [`KthreadPool::requeue_current`]
//! (`btrfs_requeue_work`).

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::registry::{online_cpus, Descriptor, Knob};
use crate::sync::{thread, Arc, AtomicUsize, Condvar, Mutex, Ordering};
use crate::tracker::{Job, Order, Tracker};
use crate::work::Part;
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "kthread",
    summary:
        "btrfs 2008 async-thread pool: per-worker lists, stick to the last worker, grow on demand",
    knobs: &[
        Knob {
            name: "max_workers",
            default: || (2 * online_cpus()).to_string(),
            help: "most worker threads; the pool starts with one and adds them on demand \
                   (btrfs: 2 x online CPUs)",
        },
        Knob {
            name: "idle_thresh",
            default: || "64".to_string(),
            help: "keep queueing to the last-used worker while it has fewer pending items than \
                   this (btrfs: 64; later 2 for delalloc, 16 for checksums)",
        },
        Knob {
            name: "ordered",
            default: || "0".to_string(),
            help: "1: run parts run concurrently, ordered parts one at a time in dispatch order \
                   (btrfs ordered pools)",
        },
    ],
    build: |knobs| {
        let config = KthreadConfig {
            max_workers: knobs.count("max_workers", 1, 1024)?,
            idle_thresh: knobs.count("idle_thresh", 1, 1 << 20)?,
            ordered: knobs.flag("ordered")?,
        };
        Ok(std::sync::Arc::new(KthreadPool::start(
            config,
            knobs.spec_string(),
        )))
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KthreadConfig {
    pub max_workers: usize,
    pub idle_thresh: usize,
    pub ordered: bool,
}

impl Default for KthreadConfig {
    fn default() -> Self {
        KthreadConfig {
            max_workers: 2 * online_cpus(),
            idle_thresh: 64,
            ordered: false,
        }
    }
}

/// `Some` while this thread runs a kthread item's run part; the inner `Some` is the
/// continuation the item asked to requeue.
type Requeue = RefCell<Option<Option<Part>>>;

#[cfg(not(loom))]
thread_local! {
    static REQUEUE: Requeue = const { RefCell::new(None) };
}

// loom's threads share one OS thread, so they need its thread-locals; its macro takes no
// `const { }` initialiser.
#[cfg(loom)]
loom::thread_local! {
    static REQUEUE: Requeue = RefCell::new(None);
}

pub struct KthreadPool {
    shared: Arc<Shared>,
    name: String,
}

struct Shared {
    config: KthreadConfig,
    /// One slot per possible worker, so `dispatch` can index without reference counting;
    /// only the first `Pool::started` have a thread.
    workers: Box<[Worker]>,
    pool: Mutex<Pool>,
    /// Counts, catches, orders (`ordered=1`: every item takes a place in line) and waits.
    tracker: Arc<Tracker>,
}

/// `struct btrfs_workers`: which threads exist and which one was fed last.
struct Pool {
    started: usize,
    last: usize,
    handles: Vec<thread::JoinHandle<()>>,
}

/// `struct btrfs_worker_thread`.
struct Worker {
    list: Mutex<List>,
    wake: Condvar,
    /// Items on the list plus the one running, read without the lock to pick a worker.
    num_pending: AtomicUsize,
}

struct List {
    pending: VecDeque<Job>,
    /// Set by a dispatcher when it wakes the worker, cleared by the worker, under the list
    /// lock, right before it sleeps: while set, the worker will look at its list again.
    working: bool,
    stop: bool,
}

impl KthreadPool {
    pub fn new(config: KthreadConfig) -> Self {
        let name = format!(
            "kthread:idle_thresh={},max_workers={},ordered={}",
            config.idle_thresh, config.max_workers, config.ordered as u8
        );
        Self::start(config, name)
    }

    fn start(config: KthreadConfig, name: String) -> Self {
        assert!(config.max_workers >= 1, "a kthread pool needs a worker");
        let workers = (0..config.max_workers)
            .map(|_| Worker {
                list: Mutex::new(List {
                    pending: VecDeque::new(),
                    working: false,
                    stop: false,
                }),
                wake: Condvar::new(),
                num_pending: AtomicUsize::new(0),
            })
            .collect();
        let order = if config.ordered {
            Order::EveryItem
        } else {
            Order::Unordered
        };
        let shared = Arc::new(Shared {
            config,
            workers,
            pool: Mutex::new(Pool {
                started: 0,
                last: 0,
                handles: Vec::new(),
            }),
            tracker: Arc::new(Tracker::new(order)),
        });
        Shared::start_worker(&shared, &mut shared.pool.lock().unwrap());
        KthreadPool { shared, name }
    }

    /// Called from inside a running item's run part: instead of completing, the item goes
    /// back on the tail of its worker's list and `run` runs in its place later, followed by
    /// the item's ordered part (and in an ordered pool it keeps its place in the order).
    /// This is `btrfs_requeue_work`, for long items that want to let others run.
    ///
    /// # Panics
    /// Outside a kthread item's run part, or when one run part requeues twice.
    pub fn requeue_current(run: impl FnOnce() + Send + 'static) {
        REQUEUE.with(|slot| {
            let mut slot = slot.borrow_mut();
            let requeued = slot
                .as_mut()
                .expect("requeue_current called outside a kthread work item");
            assert!(requeued.is_none(), "a kthread work item requeued twice");
            *requeued = Some(Box::new(run));
        });
    }
}

impl Strategy for KthreadPool {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let shared = &self.shared;
        let job = shared.tracker.begin(work);
        let worker = Shared::find_worker(shared);
        shared.queue(worker, job);
    }

    fn quiesce(&self) {
        self.shared.tracker.wait_idle();
    }

    fn ordered(&self) -> bool {
        self.shared.tracker.ordered()
    }

    fn stats(&self) -> PoolStats {
        let started = self.shared.pool.lock().unwrap().started;
        self.shared.tracker.stats(started as u64)
    }
}

impl Drop for KthreadPool {
    fn drop(&mut self) {
        let shared = Arc::clone(&self.shared);
        Tracker::shut_down(&self.shared.tracker, move || shared.stop_workers());
    }
}

impl Shared {
    /// `find_worker`, done under the pool lock so that the pool never grows past
    /// `max_workers` (btrfs starts the thread unlocked and may overshoot).
    fn find_worker(this: &Arc<Shared>) -> usize {
        let mut pool = this.pool.lock().unwrap();
        match this.next_worker(&mut pool) {
            Some(w) => w,
            None => Self::start_worker(this, &mut pool),
        }
    }

    /// `next_worker`: the last worker while it has fewer than `idle_thresh` pending, else the
    /// next one round the list that does; below `max_workers`, `None` asks for a new thread.
    /// At the limit the scan takes the next worker whatever its load (`|| !enforce_min`), so
    /// a saturated pool deals items round the workers.
    fn next_worker(&self, pool: &mut Pool) -> Option<usize> {
        let thresh = self.config.idle_thresh;
        let bored = |w: usize| self.workers[w].num_pending.load(Ordering::Relaxed) < thresh;
        let enforce_min = pool.started < self.config.max_workers;
        if bored(pool.last) {
            return Some(pool.last);
        }
        let found = (1..pool.started)
            .map(|i| (pool.last + i) % pool.started)
            .find(|&w| bored(w) || !enforce_min);
        if let Some(w) = found {
            pool.last = w;
            return found;
        }
        // Nobody was bored (or there is only one worker): at the limit use the last one.
        (!enforce_min || bored(pool.last)).then_some(pool.last)
    }

    /// `btrfs_start_workers(workers, 1)`: the new worker becomes the last one.
    fn start_worker(this: &Arc<Shared>, pool: &mut Pool) -> usize {
        let index = pool.started;
        let shared = Arc::clone(this);
        let handle = thread::Builder::new()
            .name(format!("kthread-{index}"))
            .spawn(move || shared.worker_loop(index))
            .expect("kthread: cannot start a worker thread");
        pool.handles.push(handle);
        pool.started += 1;
        pool.last = index;
        index
    }

    /// The tail of `btrfs_queue_worker`: append, and wake the worker unless it is already
    /// `working` (it then looks at its list again before it sleeps).
    fn queue(&self, w: usize, job: Job) {
        let worker = &self.workers[w];
        let wake = {
            let mut list = worker.list.lock().unwrap();
            worker.num_pending.fetch_add(1, Ordering::Relaxed);
            list.pending.push_back(job);
            !std::mem::replace(&mut list.working, true)
        };
        if wake {
            worker.wake.notify_one();
        }
    }

    /// `worker_loop`. The list is only found empty, and `working` only cleared, with the
    /// list lock held, and the condvar wait releases that lock atomically: a dispatcher that
    /// queues after the check sees `working` clear and notifies a thread that is already
    /// waiting. So the worker never sleeps with a non-empty list (no lost wake-up).
    fn worker_loop(&self, me: usize) {
        let worker = &self.workers[me];
        let mut list = worker.list.lock().unwrap();
        loop {
            if let Some(job) = list.pending.pop_front() {
                drop(list);
                self.run_job(me, job);
                list = worker.list.lock().unwrap();
            } else if list.stop {
                return;
            } else {
                list.working = false;
                list = worker.wake.wait(list).unwrap();
            }
        }
    }

    fn run_job(&self, me: usize, job: Job) {
        REQUEUE.with(|r| *r.borrow_mut() = Some(None));
        let requeued = || REQUEUE.with(|r| r.borrow_mut().take()).flatten();
        self.tracker.run_with(job, requeued, |again| {
            if let Some(job) = again {
                // btrfs_requeue_work: the same item, back on the tail of this worker's list.
                self.queue(me, job);
            }
            // Before the item counts as done, so that right after `quiesce` no worker looks
            // busy to `next_worker`.
            self.workers[me].num_pending.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Once the pool is idle: every worker drains its (empty) list and exits.
    fn stop_workers(&self) -> Vec<thread::JoinHandle<()>> {
        let (started, handles) = {
            let mut pool = self.pool.lock().unwrap();
            (pool.started, std::mem::take(&mut pool.handles))
        };
        for worker in &self.workers[..started] {
            worker.list.lock().unwrap().stop = true;
            worker.wake.notify_one();
        }
        handles
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex, RwLock};

    fn pool(max_workers: usize, idle_thresh: usize, ordered: bool) -> KthreadPool {
        KthreadPool::new(KthreadConfig {
            max_workers,
            idle_thresh,
            ordered,
        })
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or("?").to_string()
    }

    /// Items that record their thread's name and cannot finish until the gate opens (the
    /// test holds its write lock), so every worker they land on stays busy meanwhile.
    fn gated(gate: &Arc<RwLock<()>>, seen: &Arc<Mutex<HashSet<String>>>) -> Work {
        let (gate, seen) = (gate.clone(), seen.clone());
        Work::new(move || {
            seen.lock().unwrap().insert(thread_name());
            drop(gate.read().unwrap());
        })
    }

    #[test]
    fn grows_on_demand_up_to_max_workers() {
        let p = pool(3, 1, false);
        assert_eq!(p.stats().workers_started, 1);
        let gate = Arc::new(RwLock::new(()));
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let closed = gate.write().unwrap();
        for _ in 0..10 {
            p.dispatch(gated(&gate, &seen));
        }
        // Every worker holds a blocked item, so each busy pick started a thread until the cap.
        assert_eq!(p.stats().workers_started, 3);
        drop(closed);
        p.quiesce();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.iter().all(|n| n.starts_with("kthread-")), "{seen:?}");
        assert_eq!(p.stats().workers_started, 3);
    }

    #[test]
    fn stays_on_the_last_worker_below_idle_thresh() {
        let p = pool(4, 64, false);
        let gate = Arc::new(RwLock::new(()));
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let closed = gate.write().unwrap();
        // The first worker never has more than 63 pending when the 64th item is queued.
        for _ in 0..64 {
            p.dispatch(gated(&gate, &seen));
        }
        assert_eq!(p.stats().workers_started, 1);
        p.dispatch(gated(&gate, &seen));
        assert_eq!(p.stats().workers_started, 2);
        drop(closed);
        p.quiesce();
        assert_eq!(seen.lock().unwrap().len(), 2);
        let st = p.stats();
        assert_eq!((st.dispatched, st.completed), (65, 65), "{st:?}");
    }

    #[test]
    fn requeue_goes_to_the_tail_of_the_same_list() {
        let p = pool(1, 64, true);
        let log = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(RwLock::new(()));
        let closed = gate.write().unwrap();
        let (l, g) = (log.clone(), gate.clone());
        let (l2, l3) = (log.clone(), log.clone());
        p.dispatch(Work::with_ordered(
            move || {
                l.lock().unwrap().push(format!("a1 {}", thread_name()));
                drop(g.read().unwrap());
                KthreadPool::requeue_current(move || {
                    l2.lock().unwrap().push(format!("a2 {}", thread_name()))
                });
            },
            move || l3.lock().unwrap().push("a ordered".to_string()),
        ));
        let l = log.clone();
        p.dispatch(Work::new(move || l.lock().unwrap().push("b".to_string())));
        drop(closed);
        p.quiesce();
        // b was queued while a1 ran, so a2 comes after it; a keeps its place in the order.
        assert_eq!(
            *log.lock().unwrap(),
            ["a1 kthread-0", "b", "a2 kthread-0", "a ordered"]
        );
        let st = p.stats();
        assert_eq!((st.dispatched, st.completed), (2, 2), "{st:?}");
    }

    #[test]
    #[should_panic(expected = "outside a kthread work item")]
    fn requeue_outside_an_item_panics() {
        KthreadPool::requeue_current(|| {});
    }

    #[test]
    fn a_panicking_item_is_counted_and_the_pool_carries_on() {
        for ordered in [false, true] {
            let p = pool(2, 1, ordered);
            let ran = Arc::new(Mutex::new(Vec::new()));
            for i in 0..10 {
                let ran = ran.clone();
                p.dispatch(Work::with_ordered(
                    move || assert!(i != 3, "item 3 fails on purpose"),
                    move || ran.lock().unwrap().push(i),
                ));
            }
            p.quiesce();
            assert_eq!(p.stats().panics, 1);
            let mut ran = ran.lock().unwrap().clone();
            if !ordered {
                ran.sort();
            }
            assert_eq!(ran, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
            let st = p.stats();
            assert_eq!((st.dispatched, st.completed), (10, 10), "{st:?}");
        }
    }

    #[test]
    fn the_last_handle_may_be_dropped_by_an_item() {
        // The pool's Drop then runs on one of its workers: it must neither wait for nor join
        // that thread, and the items queued just before must still run.
        let p: Arc<dyn Strategy> = Arc::new(pool(2, 1, false));
        let (tx, rx) = std::sync::mpsc::channel();
        let gate = Arc::new(RwLock::new(()));
        let closed = gate.write().unwrap();
        let (g, inner) = (gate.clone(), p.clone());
        p.dispatch(Work::new(move || {
            drop(g.read().unwrap());
            for _ in 0..20 {
                let tx = tx.clone();
                inner.dispatch(Work::new(move || tx.send(()).unwrap()));
            }
            drop(inner);
            tx.send(()).unwrap();
        }));
        drop(p);
        drop(closed);
        for i in 0..21 {
            rx.recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
        }
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;

    fn kthread(max_workers: usize, idle_thresh: usize, ordered: bool) -> KthreadPool {
        KthreadPool::new(KthreadConfig {
            max_workers,
            idle_thresh,
            ordered,
        })
    }

    crate::loom_models::pool_models! {
        /// One worker racing the dispatcher on its `working` flag.
        one_worker(3) = kthread(1, 64, false) => [
            quiesce_sees_every_item(3),
            drop_runs_everything_queued(2),
            quiesce_covers_work_dispatched_by_work(),
            dropped_by_its_own_item(),
        ];
        /// idle_thresh=1 makes the second dispatch start a second worker while the first
        /// may be running, going to sleep, or not yet started; the third goes to a busy one
        /// at the cap.
        two_workers(3) = kthread(2, 1, false) => [quiesce_sees_every_item(3)];
        /// Ordered: run parts finish in either order on two workers.
        ordered_two_workers(3) = kthread(2, 1, true) => [ordered_parts_run_in_turn(3)];
    }
}
