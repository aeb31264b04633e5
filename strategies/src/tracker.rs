//! The bookkeeping every strategy does, written once: counters for [`PoolStats`], the one
//! place where a work item's parts run (catching a panic), the line that ordered pools run
//! ordered parts in ([`Sequencer`]), an idle wait for `quiesce`, and the shutdown of a pool,
//! also when one of its own items drops it.
//!
//! Protocol, per item: the dispatching thread calls [`Tracker::begin`] *before* handing the
//! item to its pool; the thread that executes it calls [`Tracker::run`] (or a variant).
//! [`Tracker::wait_idle`] returns once every begun item has finished. An item that
//! dispatches more work begins the child before it finishes itself, so the pool never looks
//! idle in between and `wait_idle` covers work spawned by work.
//!
//! Runtimes differ on a panicking task (rayon aborts the process, tokio reports it to a
//! `JoinHandle` nobody holds, a plain thread pool loses a worker); the tracker catches the
//! panic instead, counts it in [`PoolStats::panics`], still counts the item completed, and
//! drops, unrun, the ordered part of an item whose run part panicked (an ordered line moves
//! on).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
// Counters that only feed `stats()` are plain std atomics: they take no part in the idle
// wait, and keeping them out of loom keeps the models small.
use std::sync::atomic::AtomicU64 as StatU64;

use crossbeam_utils::CachePadded;

use crate::ordered::{Sequencer, Ticket};
use crate::sync::{
    thread, Arc, AtomicU64, Condvar, Mutex,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use crate::work::Part;
use crate::{PoolStats, Work};

// The tracker whose item this thread is running (its address), or 0. Loom needs its own
// thread locals, and its macro takes no `const` initialiser.
#[cfg(not(loom))]
std::thread_local!(static RUNNING: Cell<usize> = const { Cell::new(0) });
#[cfg(loom)]
loom::thread_local!(static RUNNING: Cell<usize> = Cell::new(0));

/// Low bit of `completed`: someone is (about to be) asleep in `wait_idle`.
const WAITING: u64 = 1;
const ONE_DONE: u64 = 2;

/// Which items wait in line for their ordered part's turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Order {
    /// None: each ordered part runs right after its own run part.
    #[default]
    Unordered,
    /// Every item, with an ordered part or without (the 2008 kthread pools put every work
    /// on their order list).
    EveryItem,
    /// Items that have an ordered part (`btrfs_queue_work`: works with an `ordered_func`).
    OrderedPartsOnly,
}

/// A begun item on its way to a worker: its parts, and its place in line if it has one.
pub(crate) struct Job {
    run: Part,
    ordered: Option<Part>,
    ticket: Option<Ticket>,
}

/// The dispatch-side and worker-side counters sit on separate cache lines.
#[derive(Default)]
pub(crate) struct Tracker {
    dispatched: CachePadded<AtomicU64>,
    started: CachePadded<StatU64>,
    /// Completed items (`<< 1`) and the `WAITING` bit. A completion and a waiter each do one
    /// read-modify-write on this word, so one of them always sees the other (no lost wake-up).
    completed: CachePadded<AtomicU64>,
    queued_high_water: StatU64,
    panics: StatU64,
    /// Threads in `wait_idle`; the last one out clears `WAITING`.
    waiters: Mutex<usize>,
    idle: Condvar,
    order: Order,
    /// The line of an ordered pool; an unordered one leaves it empty.
    line: Sequencer,
}

impl Tracker {
    pub(crate) fn new(order: Order) -> Self {
        Tracker {
            order,
            ..Tracker::default()
        }
    }

    /// Whether ordered parts run in dispatch order ([`crate::Strategy::ordered`]).
    pub(crate) fn ordered(&self) -> bool {
        self.order != Order::Unordered
    }

    /// Counts one item as dispatched and, in an ordered pool, gives it its place in line.
    /// Call before the item can possibly run.
    pub(crate) fn begin(&self, work: Work) -> Job {
        let job = self.line_up(work);
        let dispatched = self.dispatched.fetch_add(1, AcqRel) + 1;
        self.note_queued(dispatched);
        job
    }

    /// Begins `work` and returns the task that runs it, for a runtime that takes closures.
    /// The task catches a panicking item: one escaping into the runtime would abort the
    /// process (rayon) or reach only a `JoinHandle` nobody holds, and `quiesce` would wait
    /// for the item forever.
    #[cfg(feature = "runtimes")]
    pub(crate) fn task(this: &Arc<Self>, work: Work) -> impl FnOnce() + Send + 'static {
        let job = this.begin(work);
        let tracker = Arc::clone(this);
        move || tracker.run(job)
    }

    /// Runs `work` in the calling thread (`inline`): counted, caught and completed like a
    /// pool's item, but never queued.
    pub(crate) fn run_here(&self, work: Work) {
        let job = self.line_up(work);
        self.dispatched.fetch_add(1, AcqRel);
        self.run(job);
    }

    /// Runs `f` in the calling thread as one item, as [`Tracker::run_here`] runs a [`Work`]
    /// but without boxing it (the pipeline's inline stages): counted, caught and completed
    /// alike; `None` if it panicked.
    pub(crate) fn run_in_place<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.dispatched.fetch_add(1, AcqRel);
        self.started.fetch_add(1, Relaxed);
        let outer = RUNNING.with(|r| r.replace(self.id()));
        // What `f` touches it owns or borrows mutably from the caller, who is told of the
        // panic and gives up what `f` was working on.
        let result = catch_unwind(AssertUnwindSafe(f)).ok();
        RUNNING.with(|r| r.set(outer));
        if result.is_none() {
            self.panics.fetch_add(1, Relaxed);
        }
        self.count_completed(1);
        result
    }

    /// Runs a begun job on this thread: its run part, then its ordered part, right away or,
    /// in an ordered pool, in its turn (maybe on another thread, while this one may run
    /// other items' ordered parts that are due).
    pub(crate) fn run(&self, job: Job) {
        self.run_with(job, || None, |_| ());
    }

    /// [`Tracker::run`] with two hooks. `requeued` is asked right after the run part: a run
    /// part it returns replaces the job's (kthread's requeue), and the job, unfinished, keeps
    /// its ordered part and its place in line. `then` gets that job, to queue again, or
    /// `None`, and runs before the item counts as completed: the pool's own accounting for
    /// the item, so that its figures agree once `quiesce` returns.
    pub(crate) fn run_with<R>(
        &self,
        job: Job,
        requeued: impl FnOnce() -> Option<Part>,
        then: impl FnOnce(Option<Job>) -> R,
    ) -> R {
        match self.execute(job, requeued) {
            Ok(finished) => {
                let result = then(None);
                self.count_completed(finished);
                result
            }
            Err(again) => then(Some(again)),
        }
    }

    /// Blocks until every item begun before the call (and everything those items begin
    /// before they finish) has completed. Concurrent dispatchers can keep it waiting.
    pub(crate) fn wait_idle(&self) {
        assert!(
            !self.running_here(),
            "quiesce called from one of the pool's own items would wait for itself"
        );
        // Completed first: every completed item was dispatched earlier, so if the later read
        // of `dispatched` matches, nothing was outstanding at the first read.
        if self.completed.load(Acquire) >> 1 == self.dispatched.load(Acquire) {
            return;
        }
        let mut waiters = self.waiters.lock().unwrap();
        *waiters += 1;
        // A completion ordered before our RMW is in the count it returns; one ordered after
        // it sees `WAITING` and notifies.
        while self.completed.fetch_or(WAITING, AcqRel) >> 1 != self.dispatched.load(Acquire) {
            waiters = self.idle.wait(waiters).unwrap();
        }
        *waiters -= 1;
        if *waiters == 0 {
            self.completed.fetch_and(!WAITING, Relaxed);
        }
    }

    /// Whether this thread is inside one of this tracker's items.
    pub(crate) fn running_here(&self) -> bool {
        RUNNING.with(|r| r.get()) == self.id()
    }

    /// Shuts a pool down: waits for its items, then calls `stop`, which tells the pool's
    /// threads to exit and hands back those to join. Done here or, when the pool is dropped
    /// by one of its own items (which held the last handle), on a thread of its own: here it
    /// would wait for the caller and join the caller's thread.
    pub(crate) fn shut_down(
        this: &Arc<Self>,
        stop: impl FnOnce() -> Vec<thread::JoinHandle<()>> + Send + 'static,
    ) {
        let tracker = Arc::clone(this);
        let shutdown = move || {
            tracker.wait_idle();
            for handle in stop() {
                let joined = handle.join();
                // Items run under `call`; only a bug in the pool itself lands here.
                assert!(
                    joined.is_ok() || std::thread::panicking(),
                    "a pool thread panicked outside a work item"
                );
            }
        };
        if this.running_here() {
            thread::spawn(shutdown);
        } else {
            shutdown();
        }
    }

    /// The counters as [`PoolStats`]; the pool supplies the thread count it knows.
    pub(crate) fn stats(&self, workers_started: u64) -> PoolStats {
        let waiting = if self.ordered() {
            self.line.waiting()
        } else {
            0
        };
        // Read against the item lifecycle so the differences never underflow.
        let completed = self.completed.load(Acquire) >> 1;
        let started = self.started.load(Acquire).max(completed);
        let dispatched = self.dispatched.load(Acquire).max(started);
        PoolStats {
            dispatched,
            completed,
            queued: dispatched - started,
            queued_high_water: self.queued_high_water.load(Relaxed),
            workers_started,
            // Items waiting in line have no thread.
            workers_busy: (started - completed).saturating_sub(waiting),
            panics: self.panics.load(Relaxed),
        }
    }

    fn id(&self) -> usize {
        self as *const Tracker as usize
    }

    /// Splits the item into a job, with a ticket if it waits in line.
    fn line_up(&self, work: Work) -> Job {
        let (run, ordered) = work.into_parts();
        let in_line = match self.order {
            Order::Unordered => false,
            Order::EveryItem => true,
            Order::OrderedPartsOnly => ordered.is_some(),
        };
        Job {
            run,
            ordered,
            ticket: in_line.then(|| self.line.ticket()),
        }
    }

    /// Raises the high-water mark to the items queued now, `dispatched` being the count of
    /// dispatches.
    fn note_queued(&self, dispatched: u64) {
        // Other items may start between the two loads, hence saturating.
        let queued = dispatched.saturating_sub(self.started.load(Relaxed));
        if queued > self.queued_high_water.load(Relaxed) {
            self.queued_high_water.fetch_max(queued, Relaxed);
        }
    }

    /// Runs a job's parts here, marked as this tracker's item. Returns how many items this
    /// call finished but did not count (the job itself, unless it waits in line), or the job
    /// to queue again when its run part asked to.
    fn execute(&self, job: Job, requeued: impl FnOnce() -> Option<Part>) -> Result<u64, Job> {
        self.started.fetch_add(1, Relaxed);
        let outer = RUNNING.with(|r| r.replace(self.id()));
        let Job {
            run,
            ordered,
            ticket,
        } = job;
        let ran = self.call(run);
        let outcome = match requeued() {
            Some(run) if ran => Err(Job {
                run,
                ordered,
                ticket,
            }),
            continuation => {
                // Everything the item holds goes before it counts as done: a captured pool
                // handle must not outlive the `quiesce` that waits for this item.
                drop(continuation);
                Ok(self.finish(ordered.filter(|_| ran), ticket))
            }
        };
        RUNNING.with(|r| r.set(outer));
        if outcome.is_err() {
            // Queued again: no longer started.
            self.started.fetch_sub(1, Relaxed);
            self.note_queued(self.dispatched.load(Relaxed));
        }
        outcome
    }

    /// Runs the ordered part of an item whose run part is done, now or in its turn, and
    /// returns how many items that finished here but left uncounted.
    fn finish(&self, ordered: Option<Part>, ticket: Option<Ticket>) -> u64 {
        let Some(ticket) = ticket else {
            if let Some(part) = ordered {
                self.call(part);
            }
            return 1;
        };
        // Counted one by one: a long drain of the line keeps the stats current.
        self.line.complete(ticket, ordered, |due| {
            if let Some(part) = due {
                self.call(part);
            }
            self.count_completed(1);
        });
        0
    }

    /// Runs one part of an item, catching a panic: counted, never passed on. Whether the
    /// part returned.
    fn call(&self, part: Part) -> bool {
        // The part owns everything it touches; a panic leaves nothing of ours half-updated.
        let returned = catch_unwind(AssertUnwindSafe(part)).is_ok();
        if !returned {
            self.panics.fetch_add(1, Relaxed);
        }
        returned
    }

    /// Counts `items` completed and wakes `wait_idle` if that was the last outstanding.
    fn count_completed(&self, items: u64) {
        if items == 0 {
            return;
        }
        let before = self.completed.fetch_add(items * ONE_DONE, AcqRel);
        // The RMW chain on `completed` orders every finished item's `begin` before this load,
        // so it cannot read fewer dispatches than completions.
        if before & WAITING != 0 && (before >> 1) + items == self.dispatched.load(Acquire) {
            // The waiter holds the lock from setting `WAITING` until it sleeps in `wait`, so
            // once we get the lock it is asleep and gets the notify.
            drop(self.waiters.lock().unwrap());
            self.idle.notify_all();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn counts(tracker: &Tracker) -> (u64, u64, u64, u64, u64) {
        let s = tracker.stats(0);
        let (queued, busy, high) = (s.queued, s.workers_busy, s.queued_high_water);
        (s.dispatched, s.completed, queued, busy, high)
    }

    #[test]
    fn stats_follow_each_item_from_dispatch_to_completion() {
        let tracker = Tracker::default();
        let jobs: Vec<Job> = (0..3).map(|_| tracker.begin(Work::new(|| {}))).collect();
        // (dispatched, completed, queued, busy, high water)
        assert_eq!(counts(&tracker), (3, 0, 3, 0, 3));
        let mut jobs = jobs.into_iter();
        let first = jobs.next().unwrap();
        let busy_inside = tracker.run_with(first, || None, |_| counts(&tracker));
        assert_eq!(
            busy_inside,
            (3, 0, 2, 1, 3),
            "between its parts and its count"
        );
        assert_eq!(counts(&tracker), (3, 1, 2, 0, 3));
        jobs.for_each(|job| tracker.run(job));
        assert_eq!(counts(&tracker), (3, 3, 0, 0, 3));
        tracker.wait_idle();
    }

    #[test]
    fn items_run_in_the_caller_are_never_queued() {
        let tracker = Tracker::default();
        tracker.run_here(Work::new(|| {}));
        tracker.run_here(Work::with_ordered(|| panic!("run part (expected)"), || {}));
        assert_eq!(counts(&tracker), (2, 2, 0, 0, 0));
        assert_eq!(tracker.stats(0).panics, 1);
    }

    #[test]
    fn a_requeued_job_is_queued_again_and_keeps_its_ordered_part() {
        let tracker = Tracker::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (first, second, after) = (log.clone(), log.clone(), log.clone());
        let job = tracker.begin(Work::with_ordered(
            move || first.lock().unwrap().push("first"),
            move || after.lock().unwrap().push("ordered"),
        ));
        let continuation: Part = Box::new(move || second.lock().unwrap().push("second"));
        let again = tracker.run_with(job, || Some(continuation), |again| again);
        let again = again.expect("handed back to be queued again");
        assert_eq!(counts(&tracker), (1, 0, 1, 0, 1));
        assert!(tracker.run_with(again, || None, |again| again.is_none()));
        assert_eq!(*log.lock().unwrap(), ["first", "second", "ordered"]);
        assert_eq!(counts(&tracker), (1, 1, 0, 0, 1));
    }

    #[test]
    fn items_waiting_in_line_count_neither_busy_nor_completed() {
        let tracker = Tracker::new(Order::EveryItem);
        let log = Arc::new(Mutex::new(Vec::new()));
        let jobs: Vec<Job> = (0..2)
            .map(|i| {
                let log = log.clone();
                tracker.begin(Work::with_ordered(
                    || {},
                    move || log.lock().unwrap().push(i),
                ))
            })
            .collect();
        let [first, second] = <[Job; 2]>::try_from(jobs).ok().unwrap();
        tracker.run(second);
        assert_eq!(
            counts(&tracker),
            (2, 0, 1, 0, 2),
            "the second waits for the first"
        );
        assert!(log.lock().unwrap().is_empty());
        tracker.run(first);
        assert_eq!(counts(&tracker), (2, 2, 0, 0, 2));
        assert_eq!(*log.lock().unwrap(), [0, 1]);
    }

    #[test]
    fn only_items_with_an_ordered_part_wait_in_a_btrfs_line() {
        let tracker = Tracker::new(Order::OrderedPartsOnly);
        let ordered = tracker.begin(Work::with_ordered(|| {}, || {}));
        let plain = tracker.begin(Work::new(|| {}));
        tracker.run(plain);
        assert_eq!(tracker.stats(0).completed, 1, "nothing to wait for");
        tracker.run(ordered);
        assert_eq!(tracker.stats(0).completed, 2);
    }

    #[test]
    fn a_panicking_run_part_drops_its_ordered_part_and_both_parts_count() {
        let tracker = Tracker::default();
        let dropped = Arc::new(());
        let held = dropped.clone();
        tracker.run(tracker.begin(Work::with_ordered(
            || panic!("run part (expected)"),
            move || drop(held),
        )));
        tracker.run(tracker.begin(Work::with_ordered(|| {}, || panic!("ordered (expected)"))));
        assert_eq!(Arc::strong_count(&dropped), 1, "dropped, unrun");
        let stats = tracker.stats(0);
        assert_eq!((stats.panics, stats.completed), (2, 2));
    }

    #[test]
    fn quiesce_from_an_item_is_refused_not_a_hang() {
        let tracker = Arc::new(Tracker::default());
        let (inner, said) = (tracker.clone(), Arc::new(Mutex::new(String::new())));
        let heard = said.clone();
        tracker.run(tracker.begin(Work::new(move || {
            let refusal = catch_unwind(AssertUnwindSafe(|| inner.wait_idle())).unwrap_err();
            *heard.lock().unwrap() = refusal.downcast_ref::<&str>().unwrap().to_string();
        })));
        assert!(said.lock().unwrap().contains("would wait for itself"));
        // Uncaught, the refusal is a panicking item like any other.
        let inner = tracker.clone();
        tracker.run(tracker.begin(Work::new(move || inner.wait_idle())));
        let stats = tracker.stats(0);
        assert_eq!((stats.panics, stats.completed), (1, 2));
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::loom_models::model;
    use crate::sync::AtomicUsize;

    fn counted(hits: &Arc<AtomicUsize>) -> Work {
        let hits = hits.clone();
        Work::new(move || {
            hits.fetch_add(1, Relaxed);
        })
    }

    /// Runs `job` on a thread of its own.
    fn run_on_a_thread(tracker: &Arc<Tracker>, job: Job) -> thread::JoinHandle<()> {
        let tracker = tracker.clone();
        thread::spawn(move || tracker.run(job))
    }

    /// A completion races a waiter on `completed`'s `WAITING` bit: `wait_idle` returns (a
    /// lost wake-up is a loom deadlock) and sees the item's effects and its count.
    #[test]
    fn a_completion_wakes_the_waiter() {
        model(3, || {
            let tracker = Arc::new(Tracker::default());
            let hits = Arc::new(AtomicUsize::new(0));
            let worker = run_on_a_thread(&tracker, tracker.begin(counted(&hits)));
            tracker.wait_idle();
            assert_eq!(hits.load(Relaxed), 1);
            let stats = tracker.stats(1);
            assert_eq!((stats.dispatched, stats.completed), (1, 1));
            worker.join().unwrap();
        });
    }

    /// Two waiters: both return, whichever goes to sleep first, and the last one out
    /// clears `WAITING`.
    #[test]
    fn two_waiters_both_return() {
        model(3, || {
            let tracker = Arc::new(Tracker::default());
            let hits = Arc::new(AtomicUsize::new(0));
            let worker = run_on_a_thread(&tracker, tracker.begin(counted(&hits)));
            let other = tracker.clone();
            let waiter = thread::spawn(move || other.wait_idle());
            tracker.wait_idle();
            waiter.join().unwrap();
            worker.join().unwrap();
            assert_eq!(hits.load(Relaxed), 1);
            assert_eq!(tracker.completed.load(Relaxed) & WAITING, 0);
        });
    }

    /// An item begins a child and hands it to another thread before it finishes itself:
    /// a waiter never sees the pool idle in between.
    #[test]
    fn work_begun_by_work_is_waited_for() {
        model(3, || {
            let tracker = Arc::new(Tracker::default());
            let hits = Arc::new(AtomicUsize::new(0));
            let (inner, h) = (tracker.clone(), hits.clone());
            let parent = tracker.begin(Work::new(move || {
                let child = inner.begin(counted(&h));
                drop(run_on_a_thread(&inner, child));
            }));
            let worker = run_on_a_thread(&tracker, parent);
            tracker.wait_idle();
            assert_eq!(hits.load(Relaxed), 1);
            worker.join().unwrap();
        });
    }

    /// An ordered tracker: two run parts on two threads, in either order; the ordered parts
    /// run once each, in dispatch order, before `wait_idle` returns, and nothing is left
    /// counted busy.
    #[test]
    fn ordered_parts_run_in_turn() {
        model(3, || {
            let tracker = Arc::new(Tracker::new(Order::EveryItem));
            let log = Arc::new(Mutex::new(Vec::new()));
            let workers: Vec<_> = (0..2)
                .map(|i| {
                    let log = log.clone();
                    let work = Work::with_ordered(|| {}, move || log.lock().unwrap().push(i));
                    run_on_a_thread(&tracker, tracker.begin(work))
                })
                .collect();
            tracker.wait_idle();
            assert_eq!(*log.lock().unwrap(), [0, 1]);
            let stats = tracker.stats(2);
            assert_eq!((stats.completed, stats.workers_busy), (2, 0));
            workers.into_iter().for_each(|w| w.join().unwrap());
        });
    }
}
