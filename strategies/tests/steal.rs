//! `steal`: work actually moves between workers, and the sleep/wake protocol loses nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use strategies::steal::Steal;
use strategies::{Strategy, Work};

/// Long enough that it only runs out if the pool is broken; tests never assert on timing.
const PATIENCE: Duration = Duration::from_secs(30);

/// The threads items ran on; items can wait until enough distinct threads showed up.
#[derive(Default)]
struct Threads {
    seen: Mutex<HashSet<ThreadId>>,
    changed: Condvar,
}

impl Threads {
    fn record(&self) {
        self.seen.lock().unwrap().insert(thread::current().id());
        self.changed.notify_all();
    }

    /// Waits until at least `n` distinct threads ran items; false if that never happens.
    fn wait_for(&self, n: usize) -> bool {
        let seen = self.seen.lock().unwrap();
        let (seen, _) = self
            .changed
            .wait_timeout_while(seen, PATIENCE, |s| s.len() < n)
            .unwrap();
        seen.len() >= n
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// An item dispatched from a worker goes to that worker's own deque. Its parent then blocks
/// that worker, so the children can only run if other workers steal them.
#[test]
fn children_queued_on_a_blocked_worker_are_stolen() {
    const CHILDREN: usize = 64;
    let pool = Arc::new(Steal::new(4));
    let threads = Arc::new(Threads::default());
    let ran = Arc::new(AtomicU64::new(0));
    let parent_saw_thief = Arc::new(Mutex::new(None));
    {
        let (inner, threads, ran, saw) = (
            pool.clone(),
            threads.clone(),
            ran.clone(),
            parent_saw_thief.clone(),
        );
        pool.dispatch(Work::new(move || {
            threads.record();
            for _ in 0..CHILDREN {
                let (threads, ran) = (threads.clone(), ran.clone());
                inner.dispatch(Work::new(move || {
                    threads.record();
                    ran.fetch_add(1, Ordering::SeqCst);
                }));
            }
            *saw.lock().unwrap() = Some(threads.wait_for(2));
        }));
    }
    pool.quiesce();
    assert_eq!(
        *parent_saw_thief.lock().unwrap(),
        Some(true),
        "no other worker ran a child while the parent's worker was blocked"
    );
    assert_eq!(ran.load(Ordering::SeqCst), CHILDREN as u64);
    assert!(pool.steals() > 0, "children left the deque without a steal");
    assert_eq!(pool.stats().panics, 0);
}

/// A burst from one outside thread spreads over the workers: every item waits until a
/// second worker has run one, which only happens if the others pick up queued work.
#[test]
fn a_burst_from_one_thread_runs_on_several_workers() {
    const ITEMS: usize = 256;
    let pool = Steal::new(4);
    let threads = Arc::new(Threads::default());
    let spread = Arc::new(AtomicU64::new(0));
    for _ in 0..ITEMS {
        let (threads, spread) = (threads.clone(), spread.clone());
        pool.dispatch(Work::new(move || {
            threads.record();
            if threads.wait_for(2) {
                spread.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    pool.quiesce();
    assert_eq!(spread.load(Ordering::SeqCst), ITEMS as u64);
    assert!(threads.count() >= 2);
    let st = pool.stats();
    assert_eq!((st.dispatched, st.completed), (ITEMS as u64, ITEMS as u64));
}

/// Many rounds of one item into an idle pool. Half the rounds wait until every worker is
/// asleep; the other half dispatch right after quiesce, while workers are on their way to
/// sleep. A lost wake-up would hang quiesce, so it runs against a deadline.
#[test]
fn sleep_wake_stress_loses_nothing() {
    for threads in [1, 3] {
        const ROUNDS: u64 = 5_000;
        let pool = Arc::new(Steal::new(threads));
        let ran = Arc::new(AtomicU64::new(0));
        for round in 0..ROUNDS {
            if round % 2 == 0 {
                let start = Instant::now();
                while pool.sleeping() < threads {
                    assert!(start.elapsed() < PATIENCE, "workers never went to sleep");
                    thread::yield_now();
                }
            }
            let ran_here = ran.clone();
            pool.dispatch(Work::new(move || {
                ran_here.fetch_add(1, Ordering::SeqCst);
            }));
            quiesce_within(&pool, PATIENCE, round);
            assert_eq!(ran.load(Ordering::SeqCst), round + 1, "round {round}");
        }
        let st = pool.stats();
        assert_eq!((st.dispatched, st.completed), (ROUNDS, ROUNDS));
    }
}

/// Quiesce on a helper thread, so a hang fails the test instead of stalling it.
fn quiesce_within(pool: &Arc<Steal>, limit: Duration, round: u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    let pool = pool.clone();
    thread::spawn(move || {
        pool.quiesce();
        let _ = tx.send(());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("round {round}: quiesce did not return (lost wake-up?)"));
}
