//! `kthread:ordered=1` under load: run parts finish in whatever order they like, ordered
//! parts still come out in exact submission order, one at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use strategies::kthread::{KthreadConfig, KthreadPool};
use strategies::{Strategy, Work};

/// Spins for a pseudo-random short while (0 to ~20 µs), different per item.
fn spin(seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x >> 29;
    for _ in 0..x % 4096 {
        std::hint::black_box(&mut x);
    }
}

#[test]
fn ordered_parts_come_out_in_submission_order_under_load() {
    const N: usize = 50_000;
    let pool = KthreadPool::new(KthreadConfig {
        max_workers: 4,
        idle_thresh: 2,
        ordered: true,
    });
    let ran: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let order = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let in_ordered = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicU64::new(0));
    let early = Arc::new(AtomicU64::new(0));
    // Item 0 holds the head of the order list (and its worker) until 1000 items are queued:
    // finished items pile up behind it, and the pool has to grow past one worker.
    let gate = Arc::new(RwLock::new(()));
    let mut closed = Some(gate.write().unwrap());
    for i in 0..N {
        if i == 1000 {
            closed.take();
        }
        let (ran_w, gate) = (ran.clone(), gate.clone());
        let (ran, order, in_ordered) = (ran.clone(), order.clone(), in_ordered.clone());
        let (overlaps, early) = (overlaps.clone(), early.clone());
        pool.dispatch(Work::with_ordered(
            move || {
                if i == 0 {
                    drop(gate.read().unwrap());
                }
                spin(i as u64);
                ran_w[i].store(true, Ordering::SeqCst);
            },
            // Failures are counted, not asserted: the pool catches panics in items.
            move || {
                if in_ordered.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                if !ran[i].load(Ordering::SeqCst) {
                    early.fetch_add(1, Ordering::SeqCst);
                }
                order.lock().unwrap().push(i);
                in_ordered.store(false, Ordering::SeqCst);
            },
        ));
    }
    pool.quiesce();
    let order = order.lock().unwrap();
    assert_eq!(order.len(), N);
    if let Some(at) = (0..N).find(|&k| order[k] != k) {
        panic!(
            "ordered part {at} out of place: {:?}",
            &order[at..(at + 8).min(N)]
        );
    }
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "ordered parts overlapped"
    );
    assert_eq!(
        early.load(Ordering::SeqCst),
        0,
        "ordered part before its run part"
    );
    assert_eq!(pool.stats().panics, 0);
    let st = pool.stats();
    assert_eq!(
        (st.dispatched, st.completed),
        (N as u64, N as u64),
        "{st:?}"
    );
    assert!(st.workers_started >= 2, "{st:?}");
}
