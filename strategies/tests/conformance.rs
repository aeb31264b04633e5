//! The Strategy contract, checked on every registered backend (and the interesting knob
//! variants). A backend added to the registry is covered without touching this file.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strategies::csum::{Algo, SECTOR_SIZE};
use strategies::{build, descriptors, Strategy, Work};

/// Every backend with default knobs, plus variants whose code paths differ.
fn every_spec() -> Vec<String> {
    let mut specs: Vec<String> = descriptors().iter().map(|d| d.name.to_string()).collect();
    let variants = [
        "kthread:ordered=1",
        "kthread:max_workers=1",
        "kthread:idle_thresh=2,max_workers=3",
        "workqueue:unbound=1",
        "workqueue:max_active=1",
        "btrfs-wq:thresh=32",
    ];
    for v in variants {
        let name = v.split(':').next().unwrap();
        if descriptors().iter().any(|d| d.name == name) {
            specs.push(v.to_string());
        }
    }
    specs
}

/// Runs `$body` with a freshly built strategy for every spec; the failure names the spec.
macro_rules! conformance {
    ($(#[$meta:meta])* $test:ident, |$s:ident| $body:block) => {
        #[test]
        $(#[$meta])*
        fn $test() {
            for spec in every_spec() {
                let $s: Arc<dyn Strategy> =
                    build(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body));
                if let Err(e) = outcome {
                    let why = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panic!("strategy {spec}: {why}");
                }
            }
        }
    };
}

conformance!(a_million_small_items_each_run_exactly_once, |s| {
    const N: usize = 1_000_000;
    let hits: Arc<Vec<AtomicU64>> = Arc::new((0..N).map(|_| AtomicU64::new(0)).collect());
    for i in 0..N {
        let hits = hits.clone();
        s.dispatch(Work::new(move || {
            hits[i].fetch_add(1, Ordering::Relaxed);
        }));
    }
    s.quiesce();
    let wrong: Vec<usize> = (0..N)
        .filter(|&i| hits[i].load(Ordering::Relaxed) != 1)
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "items not run exactly once: {wrong:?}");
});

conformance!(ordered_parts_run_once_after_their_run_part, |s| {
    const N: usize = 20_000;
    let state: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..N {
        let (a, b) = (state.clone(), state.clone());
        s.dispatch(Work::with_ordered(
            move || assert_eq!(a[i].fetch_add(1, Ordering::SeqCst), 0),
            move || assert_eq!(b[i].fetch_add(1, Ordering::SeqCst), 1),
        ));
    }
    s.quiesce();
    assert!(state.iter().all(|x| x.load(Ordering::SeqCst) == 2));
});

conformance!(per_sector_checksums_equal_inline, |s| {
    // 64 buffers of 64 KiB with distinct contents, every algorithm.
    for algo in Algo::ALL {
        let buffers: Vec<Arc<Vec<u8>>> = (0..64u32)
            .map(|b| {
                Arc::new(
                    (0..16 * SECTOR_SIZE)
                        .map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(b) as u8)
                        .collect(),
                )
            })
            .collect();
        let results: Arc<Mutex<Vec<Option<Vec<u8>>>>> =
            Arc::new(Mutex::new(vec![None; buffers.len()]));
        for (i, buf) in buffers.iter().enumerate() {
            let (buf, results) = (buf.clone(), results.clone());
            s.dispatch(Work::new(move || {
                let mut out = vec![0u8; buf.len() / SECTOR_SIZE * algo.len()];
                algo.sectors(&buf, &mut out);
                results.lock().unwrap()[i] = Some(out);
            }));
        }
        s.quiesce();
        let results = results.lock().unwrap();
        for (i, buf) in buffers.iter().enumerate() {
            let mut expect = vec![0u8; buf.len() / SECTOR_SIZE * algo.len()];
            algo.sectors(buf, &mut expect);
            assert_eq!(results[i].as_ref(), Some(&expect), "{algo} buffer {i}");
        }
    }
});

conformance!(quiesce_waits_for_slow_items, |s| {
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..8 {
        let done = done.clone();
        s.dispatch(Work::new(move || {
            std::thread::sleep(Duration::from_millis(20));
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    s.quiesce();
    assert_eq!(done.load(Ordering::SeqCst), 8);
});

conformance!(stats_account_for_every_item, |s| {
    for _ in 0..1000 {
        s.dispatch(Work::new(|| {}));
    }
    s.quiesce();
    let st = s.stats();
    assert_eq!(st.dispatched, 1000, "{st:?}");
    assert_eq!(st.completed, 1000, "{st:?}");
    assert_eq!(st.queued, 0, "{st:?}");
    assert_eq!(st.workers_busy, 0, "{st:?}");
    assert!(st.queued_high_water <= 1000, "{st:?}");
});

conformance!(dispatch_from_many_threads, |s| {
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (s, count) = (&s, count.clone());
            scope.spawn(move || {
                for _ in 0..10_000 {
                    let count = count.clone();
                    s.dispatch(Work::new(move || {
                        count.fetch_add(1, Ordering::Relaxed);
                    }));
                }
            });
        }
    });
    s.quiesce();
    assert_eq!(count.load(Ordering::Relaxed), 40_000);
});

conformance!(work_may_dispatch_more_work, |s| {
    // Endio work dispatches follow-up work (the metadata I/O's completion) on the same pool.
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let (count, pool) = (count.clone(), s.clone());
        s.dispatch(Work::new(move || {
            let count = count.clone();
            pool.dispatch(Work::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
            }));
        }));
    }
    // Quiesce covers items dispatched by items that ran before it returned.
    s.quiesce();
    s.quiesce();
    assert_eq!(count.load(Ordering::SeqCst), 100);
});

conformance!(dropping_joins_cleanly, |s| {
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let count = count.clone();
        s.dispatch(Work::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
        }));
    }
    drop(s);
    assert_eq!(count.load(Ordering::SeqCst), 100);
});

/// How long a `quiesce` or a drop may take before a test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `f` on a thread of its own and returns what it returns, passing a panic on; fails
/// the test if `f` has not returned within `PATIENCE` (its thread is then left behind).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not return within {PATIENCE:?}"),
        Err(RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().expect_err("f panicked"))
        }
    }
}

/// `quiesce`, failing the test instead of hanging. A quiesce that hangs keeps its handle, so
/// the strategy's drop, which would wait too, never runs.
fn quiesce_within(s: &Arc<dyn Strategy>) {
    let s = s.clone();
    bounded("quiesce", move || s.quiesce());
}

/// Drops the last handle (the strategy quiesces and joins its threads), failing the test
/// instead of hanging.
fn drop_within(s: Arc<dyn Strategy>) {
    assert_eq!(Arc::strong_count(&s), 1, "not the last handle");
    bounded("drop", move || drop(s));
}

/// How a test item ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Fine,
    /// Its run part panics: its ordered part must be dropped unrun.
    RunPanics,
    /// Its ordered part panics (after recording that it ran).
    OrderedPanics,
    /// An item without an ordered part whose run part panics.
    PlainPanics,
}

impl Fate {
    fn panics(self) -> bool {
        self != Fate::Fine
    }
}

/// What the parts of a batch of test items did.
struct Log {
    fates: Vec<Fate>,
    runs: Vec<AtomicU64>,
    ordered: Vec<AtomicU64>,
    /// Ordered parts that ran before their run part.
    early: AtomicU64,
    /// Ordered parts, in the order they ran.
    sequence: Mutex<Vec<usize>>,
    /// Held by every ordered part until it runs or is dropped.
    unfinished: Arc<()>,
}

/// Dispatches one item per fate and returns their log.
fn dispatch_items(s: &Arc<dyn Strategy>, fates: &[Fate]) -> Arc<Log> {
    let log = Arc::new(Log {
        fates: fates.to_vec(),
        runs: fates.iter().map(|_| AtomicU64::new(0)).collect(),
        ordered: fates.iter().map(|_| AtomicU64::new(0)).collect(),
        early: AtomicU64::new(0),
        sequence: Mutex::new(Vec::new()),
        unfinished: Arc::new(()),
    });
    for (i, &fate) in fates.iter().enumerate() {
        let (a, b, held) = (log.clone(), log.clone(), log.unfinished.clone());
        let run = move || {
            a.runs[i].fetch_add(1, Ordering::SeqCst);
            let fails = matches!(fate, Fate::RunPanics | Fate::PlainPanics);
            assert!(!fails, "run part {i} panics (expected by the test)");
        };
        let ordered = move || {
            let _held = held;
            if b.runs[i].load(Ordering::SeqCst) == 0 {
                b.early.fetch_add(1, Ordering::SeqCst);
            }
            b.ordered[i].fetch_add(1, Ordering::SeqCst);
            b.sequence.lock().unwrap().push(i);
            assert!(
                fate != Fate::OrderedPanics,
                "ordered part {i} panics (expected by the test)"
            );
        };
        s.dispatch(match fate {
            Fate::PlainPanics => Work::new(run),
            _ => Work::with_ordered(run, ordered),
        });
    }
    log
}

impl Log {
    /// Once the items are done: every run part ran exactly once, and every ordered part
    /// too, after its run part, except that of an item whose run part panicked, which was
    /// dropped unrun. On an ordered backend the ordered parts ran in dispatch order.
    fn check(&self, ordered_backend: bool) {
        for (i, fate) in self.fates.iter().enumerate() {
            let runs = self.runs[i].load(Ordering::SeqCst);
            let ordered = self.ordered[i].load(Ordering::SeqCst);
            let expect = u64::from(fate == &Fate::Fine || fate == &Fate::OrderedPanics);
            assert_eq!(
                (runs, ordered),
                (1, expect),
                "item {i} ({fate:?}): run part ran {runs} times, ordered part {ordered}"
            );
        }
        assert_eq!(self.early.load(Ordering::SeqCst), 0, "ordered before run");
        assert_eq!(
            Arc::strong_count(&self.unfinished),
            1,
            "an ordered part was neither run nor dropped"
        );
        if ordered_backend {
            let sequence = self.sequence.lock().unwrap();
            if let Some(w) = sequence.windows(2).find(|w| w[0] >= w[1]) {
                panic!("ordered part {} ran after {}", w[1], w[0]);
            }
        }
    }

    fn panics(&self) -> u64 {
        self.fates.iter().filter(|f| f.panics()).count() as u64
    }
}

/// Dispatches the items, waits for them (bounded), and checks both the items and the
/// stats: every panic counted, every item completed, nothing left running.
fn check_panicking_items(s: &Arc<dyn Strategy>, fates: &[Fate]) {
    let before = s.stats();
    let log = dispatch_items(s, fates);
    quiesce_within(s);
    log.check(s.ordered());
    let st = s.stats();
    assert_eq!(st.panics - before.panics, log.panics(), "{st:?}");
    assert_eq!(
        st.dispatched - before.dispatched,
        fates.len() as u64,
        "{st:?}"
    );
    assert_eq!(st.completed, st.dispatched, "{st:?}");
    assert_eq!((st.queued, st.workers_busy), (0, 0), "{st:?}");
}

/// `n` items, those listed failing as given, the rest fine.
fn fates(n: usize, failing: &[(usize, Fate)]) -> Vec<Fate> {
    let mut fates = vec![Fate::Fine; n];
    for &(i, fate) in failing {
        fates[i] = fate;
    }
    fates
}

conformance!(
    a_panicking_run_part_is_caught_and_its_ordered_part_dropped,
    |s| {
        check_panicking_items(&s, &fates(64, &[(17, Fate::RunPanics)]));
        assert_eq!(s.stats().panics, 1);
        drop_within(s);
    }
);

conformance!(
    a_panicking_ordered_part_is_caught_and_later_ones_still_run,
    |s| {
        check_panicking_items(&s, &fates(64, &[(17, Fate::OrderedPanics)]));
        assert_eq!(s.stats().panics, 1);
        drop_within(s);
    }
);

conformance!(a_panicking_item_without_ordered_part_is_caught, |s| {
    check_panicking_items(&s, &fates(64, &[(17, Fate::PlainPanics)]));
    assert_eq!(s.stats().panics, 1);
    drop_within(s);
});

conformance!(a_panic_in_the_first_item_stops_nothing, |s| {
    // The first item runs on the pool's first thread (a kthread pool's only one, then) and
    // heads the ordered line.
    check_panicking_items(&s, &fates(100, &[(0, Fate::RunPanics)]));
    check_panicking_items(&s, &fates(100, &[(0, Fate::OrderedPanics)]));
    assert_eq!(s.stats().panics, 2);
    // Straight into drop, which quiesces: the panicking first item must not stall it.
    let log = dispatch_items(&s, &fates(100, &[(0, Fate::RunPanics)]));
    let ordered = s.ordered();
    drop_within(s);
    log.check(ordered);
});

conformance!(half_the_items_panicking_loses_no_worker, |s| {
    // 100 panics, more than the pools here have threads (on machines of under 50 CPUs; the
    // one-worker variants anywhere): a pool that lost a worker to each would hang on the
    // items after them.
    let half: Vec<Fate> = (0..200)
        .map(|i| match i % 6 {
            0 => Fate::RunPanics,
            2 => Fate::OrderedPanics,
            4 => Fate::PlainPanics,
            _ => Fate::Fine,
        })
        .collect();
    assert_eq!(half.iter().filter(|f| f.panics()).count(), 100);
    check_panicking_items(&s, &half);
    // Every later item still runs, on however many threads the pool has left.
    check_panicking_items(&s, &fates(200, &[]));
    let st = s.stats();
    assert_eq!((st.panics, st.completed), (100, 400), "{st:?}");
    drop_within(s);
});
