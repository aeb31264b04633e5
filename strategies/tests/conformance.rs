//! The Strategy contract, checked on every registered backend (and the interesting knob
//! variants). A backend added to the registry is covered without touching this file.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
