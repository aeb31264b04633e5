//! Edges the conformance suite leaves alone, for the tracker-based pools (`steal` and the
//! runtime backends): a panicking item is caught and counted without losing the pool's only
//! worker (the conformance suite checks panics at default sizes), a pool whose last handle
//! is dropped by one of its own items still runs everything, and dropping a pool leaves none
//! of its threads behind.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use strategies::steal::Steal;
use strategies::{build, Strategy, Work};

const PATIENCE: Duration = Duration::from_secs(30);

/// Dispatches `n` items of which every fourth panics, quiesces, and returns how many of
/// the others ran. One worker where the backend has a knob: a lost worker would hang.
fn run_some_panicking(pool: &dyn Strategy, n: u64) -> u64 {
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
    assert_eq!(st.completed, st.dispatched, "{st:?}");
    assert_eq!((st.queued, st.workers_busy), (0, 0), "{st:?}");
    ran.load(Ordering::SeqCst)
}

macro_rules! panics_are_caught {
    ($test:ident, $pool:expr) => {
        #[test]
        fn $test() {
            let pool = $pool;
            assert_eq!(run_some_panicking(&pool, 40), 30);
            assert_eq!(pool.stats().panics, 10);
            // The pool still works afterwards.
            assert_eq!(run_some_panicking(&pool, 4), 3);
            assert_eq!(pool.stats().panics, 11);
            assert_eq!(pool.stats().completed, 44);
        }
    };
}

panics_are_caught!(steal_catches_panics, Steal::new(1));
#[cfg(feature = "runtimes")]
panics_are_caught!(
    rayon_catches_panics,
    strategies::rayon_pool::RayonPool::new(1)
);
#[cfg(feature = "runtimes")]
panics_are_caught!(tokio_catches_panics, strategies::tokio_rt::TokioRt::new(1));
#[cfg(feature = "runtimes")]
panics_are_caught!(
    tokio_blocking_catches_panics,
    strategies::tokio_blocking::TokioBlocking::new(1)
);
#[cfg(feature = "runtimes")]
panics_are_caught!(
    async_std_catches_panics,
    strategies::async_std_rt::AsyncStd::default()
);
#[cfg(feature = "runtimes")]
panics_are_caught!(smol_catches_panics, strategies::smol_rt::SmolRt::new(1));

/// The last handle to the pool is dropped inside one of its items, after that item queued
/// more work: the drop must neither deadlock (waiting for or joining its own thread) nor
/// lose the queued items.
#[test]
fn dropped_by_its_own_item() {
    const CHILDREN: usize = 20;
    let specs = [
        "steal",
        "rayon",
        "tokio",
        "tokio-blocking",
        "async-std",
        "smol",
    ];
    for spec in specs
        .iter()
        .filter(|s| strategies::registry::descriptor(s).is_ok())
    {
        let pool = build(spec).unwrap();
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

/// Every thread that ran an item exits once the pool is dropped (async-std's executor is
/// global, so it is left out). The kernel removes a thread's /proc entry a moment after
/// `join` returns, hence the polling: this catches threads left running, not a missing join.
#[test]
fn drop_leaves_no_thread_that_ran_an_item() {
    for spec in ["steal", "rayon", "tokio", "tokio-blocking", "smol"]
        .iter()
        .filter(|s| strategies::registry::descriptor(s).is_ok())
    {
        let pool = build(spec).unwrap();
        let tids = Arc::new(Mutex::new(HashSet::new()));
        for _ in 0..64 {
            let tids = tids.clone();
            pool.dispatch(Work::new(move || {
                // SAFETY: gettid has no preconditions.
                tids.lock().unwrap().insert(unsafe { libc::gettid() });
                std::thread::sleep(Duration::from_millis(1));
            }));
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
