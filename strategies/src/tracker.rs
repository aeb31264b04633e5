//! The bookkeeping every pool-backed strategy needs, written once: counters for
//! [`PoolStats`], a panic-catching wrapper around each item, an idle wait for `quiesce`, and
//! the shutdown path for a pool dropped by one of its own items.
//!
//! Protocol, per item: the dispatching thread calls [`Tracker::begin`] *before* handing the
//! item to its pool; the thread that executes it calls [`Tracker::run`]. [`Tracker::wait_idle`]
//! returns once every begun item has finished running. An item that dispatches more work
//! begins the child before it finishes itself, so the pool never looks idle in between and
//! `wait_idle` covers work spawned by work.
//!
//! Runtimes differ on a panicking task (rayon aborts the process, tokio reports it to a
//! `JoinHandle` nobody holds, a plain thread pool loses a worker); `run` catches the panic
//! instead, counts it in [`PoolStats::panics`], and still counts the item completed.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crossbeam_utils::CachePadded;

use crate::sync::{
    thread, AtomicU64, Condvar, Mutex,
    Ordering::{AcqRel, Acquire, Relaxed},
};
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

/// The dispatch-side and worker-side counters sit on separate cache lines.
#[derive(Default)]
pub(crate) struct Tracker {
    dispatched: CachePadded<AtomicU64>,
    started: CachePadded<AtomicU64>,
    /// Completed items (`<< 1`) and the `WAITING` bit. A completion and a waiter each do one
    /// read-modify-write on this word, so one of them always sees the other (no lost wake-up).
    completed: CachePadded<AtomicU64>,
    queued_high_water: AtomicU64,
    panics: AtomicU64,
    /// Threads in `wait_idle`; the last one out clears `WAITING`.
    waiters: Mutex<usize>,
    idle: Condvar,
}

impl Tracker {
    /// Counts one item as dispatched. Call before the item can possibly run.
    pub(crate) fn begin(&self) {
        let dispatched = self.dispatched.fetch_add(1, AcqRel) + 1;
        // Other items may start between the two loads, hence saturating.
        let queued = dispatched.saturating_sub(self.started.load(Relaxed));
        if queued > self.queued_high_water.load(Relaxed) {
            self.queued_high_water.fetch_max(queued, Relaxed);
        }
    }

    /// Runs one begun item on this thread, catching a panic, then counts it completed and
    /// wakes `wait_idle` if it was the last one outstanding.
    pub(crate) fn run(&self, work: Work) {
        self.started.fetch_add(1, Relaxed);
        let outer = RUNNING.with(|r| r.replace(self as *const Tracker as usize));
        // The work owns everything it touches; a panic leaves nothing of ours half-updated.
        let panicked = catch_unwind(AssertUnwindSafe(|| work.execute())).is_err();
        RUNNING.with(|r| r.set(outer));
        if panicked {
            self.panics.fetch_add(1, Relaxed);
        }
        let before = self.completed.fetch_add(ONE_DONE, AcqRel);
        // The RMW chain on `completed` orders every finished item's `begin` before this load,
        // so it cannot read fewer dispatches than completions.
        if before & WAITING != 0 && (before >> 1) + 1 == self.dispatched.load(Acquire) {
            // The waiter holds the lock from setting `WAITING` until it sleeps in `wait`, so
            // once we get the lock it is asleep and gets the notify.
            drop(self.waiters.lock().unwrap());
            self.idle.notify_all();
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
        RUNNING.with(|r| r.get()) == self as *const Tracker as usize
    }

    /// Runs a pool's `shutdown` (wait idle, stop the pool, join its threads) here or, when the
    /// pool is dropped by one of its own items (which held the last handle), on a thread of
    /// its own: here it would wait for the caller and join the caller's thread.
    pub(crate) fn shut_down(&self, shutdown: impl FnOnce() + Send + 'static) {
        if self.running_here() {
            thread::spawn(shutdown);
        } else {
            shutdown();
        }
    }

    /// The counters as [`PoolStats`]; the pool supplies the thread count it knows.
    pub(crate) fn stats(&self, workers_started: u64) -> PoolStats {
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
            workers_busy: started - completed,
            panics: self.panics.load(Relaxed),
        }
    }
}
