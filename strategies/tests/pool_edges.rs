//! Edges the conformance suite leaves alone, on every registered backend: a panicking item
//! is caught and counted without losing the pool's only worker (the conformance suite checks
//! panics at default sizes), a pool whose last handle is dropped by one of its own items
//! still runs everything, and dropping a pool leaves none of its threads behind.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use strategies::{build, descriptors, Strategy, Work};

const PATIENCE: Duration = Duration::from_secs(30);

/// Every backend with every knob at 1: one worker (or one active item) wherever a knob
/// counts them, the ordered or unbound variant where a knob is a flag.
fn smallest_specs() -> Vec<String> {
    descriptors()
        .iter()
        .map(|d| {
            let knobs: Vec<String> = d.knobs.iter().map(|k| format!("{}=1", k.name)).collect();
            match knobs.is_empty() {
                true => d.name.to_string(),
                false => format!("{}:{}", d.name, knobs.join(",")),
            }
        })
        .collect()
}

/// Every backend with its defaults.
fn default_pools() -> impl Iterator<Item = (&'static str, Arc<dyn Strategy>)> {
    descriptors()
        .iter()
        .map(|d| (d.name, build(d.name).expect("default spec builds")))
}

/// The thread an item of `pool` runs on.
fn item_thread(pool: &dyn Strategy) -> ThreadId {
    let (tx, rx) = mpsc::channel();
    pool.dispatch(Work::new(move || {
        tx.send(std::thread::current().id()).unwrap()
    }));
    rx.recv_timeout(PATIENCE).expect("the item ran")
}

/// Dispatches `n` items of which every fourth panics, quiesces, and returns how many of
/// the others ran.
fn run_some_panicking(spec: &str, pool: &dyn Strategy, n: u64) -> u64 {
    let ran = Arc::new(AtomicU64::new(0));
    for i in 0..n {
        let ran = ran.clone();
        pool.dispatch(Work::with_ordered(
            move || assert!(i % 4 != 0, "item {i} panics on purpose"),
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
            },
        ));
    }
    pool.quiesce();
    let st = pool.stats();
    assert_eq!(st.completed, st.dispatched, "{spec}: {st:?}");
    assert_eq!((st.queued, st.workers_busy), (0, 0), "{spec}: {st:?}");
    ran.load(Ordering::SeqCst)
}

/// The smallest pool of every backend: a worker lost to a panic would hang what follows.
#[test]
fn panics_are_caught_by_the_smallest_pools() {
    for spec in smallest_specs() {
        let pool = build(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(run_some_panicking(&spec, &*pool, 40), 30, "{spec}");
        assert_eq!(pool.stats().panics, 10, "{spec}");
        // The pool still works afterwards.
        assert_eq!(run_some_panicking(&spec, &*pool, 4), 3, "{spec}");
        assert_eq!(pool.stats().panics, 11, "{spec}");
        assert_eq!(pool.stats().completed, 44, "{spec}");
    }
}

/// The last handle to the pool is dropped inside one of its items, after that item queued
/// more work: the drop must neither deadlock (waiting for or joining its own thread) nor
/// lose the queued items. A backend that runs items in the caller (`inline`) is left out:
/// the caller holds a handle until its item has run.
#[test]
fn dropped_by_its_own_item() {
    const CHILDREN: usize = 20;
    let here = std::thread::current().id();
    for (spec, pool) in default_pools().filter(|(_, p)| item_thread(&**p) != here) {
        let (tx, rx) = mpsc::channel();
        let handed_over = Arc::new(Barrier::new(2));
        let (inner, gate) = (pool.clone(), handed_over.clone());
        pool.dispatch(Work::new(move || {
            gate.wait();
            for _ in 0..CHILDREN {
                let tx = tx.clone();
                inner.dispatch(Work::new(move || tx.send(()).unwrap()));
            }
            // The last handle: the pool's Drop runs here, on one of its own threads.
            drop(inner);
        }));
        drop(pool);
        handed_over.wait();
        for i in 0..CHILDREN {
            rx.recv_timeout(PATIENCE)
                .unwrap_or_else(|e| panic!("{spec}: child {i} never ran: {e}"));
        }
    }
}

/// Every thread that ran an item exits once the pool is dropped. Backends that count no
/// threads of their own are left out: `inline` runs items in the caller, `async-std` on a
/// process-wide executor. The kernel removes a thread's /proc entry a moment after `join`
/// returns, hence the polling: this catches threads left running, not a missing join.
#[test]
fn drop_leaves_no_thread_that_ran_an_item() {
    for (spec, pool) in default_pools() {
        let tids = Arc::new(Mutex::new(HashSet::new()));
        for _ in 0..64 {
            let tids = tids.clone();
            pool.dispatch(Work::new(move || {
                // SAFETY: gettid has no preconditions.
                tids.lock().unwrap().insert(unsafe { libc::gettid() });
                std::thread::sleep(Duration::from_millis(1));
            }));
        }
        pool.quiesce();
        if pool.stats().workers_started == 0 {
            continue;
        }
        drop(pool);
        let start = Instant::now();
        for tid in tids.lock().unwrap().iter() {
            let task = format!("/proc/self/task/{tid}");
            while std::path::Path::new(&task).exists() {
                assert!(
                    start.elapsed() < PATIENCE,
                    "{spec}: thread {tid} outlived the pool"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
