//! The `btrfs-wq` backend: ordered parts in submission order, and max_active following the
//! backlog as btrfs's thresh_exec_hook moves it. Correctness only: waits have generous
//! deadlines that only catch hangs.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use strategies::btrfs_wq::BtrfsWorkqueue;
use strategies::registry::online_cpus;
use strategies::{build, Strategy, Work};

const HANG: Duration = Duration::from_secs(30);

/// A short run part of pseudo-random length: mostly spinning, now and then a sleep.
fn busy(i: u64) {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x >> 29;
    if x & 511 == 0 {
        std::thread::sleep(Duration::from_micros(50));
    }
    for _ in 0..x % 2000 {
        x = std::hint::black_box(x ^ (x << 13));
    }
}

#[test]
fn ordered_parts_run_one_at_a_time_in_submission_order_under_load() {
    const N: u64 = 50_000;
    let wq = BtrfsWorkqueue::new(8, 32);
    let log = Arc::new(Mutex::new(Vec::with_capacity(N as usize)));
    let (inside, overlaps) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    for i in 0..N {
        // Every seventh item has no ordered part and takes no place in line.
        if i % 7 == 3 {
            wq.dispatch(Work::new(move || busy(i)));
            continue;
        }
        let (log, inside, overlaps) = (log.clone(), inside.clone(), overlaps.clone());
        wq.dispatch(Work::with_ordered(
            move || busy(i),
            move || {
                if inside.swap(true, SeqCst) {
                    overlaps.fetch_add(1, SeqCst);
                }
                log.lock().unwrap().push(i);
                inside.store(false, SeqCst);
            },
        ));
    }
    wq.quiesce();
    let expect: Vec<u64> = (0..N).filter(|i| i % 7 != 3).collect();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), expect.len());
    if let Some(at) = log.iter().zip(&expect).position(|(a, b)| a != b) {
        panic!("ordered part {} ran where {} was due", log[at], expect[at]);
    }
    assert_eq!(overlaps.load(SeqCst), 0, "ordered parts overlapped");
    let stats = wq.stats();
    assert_eq!((stats.dispatched, stats.completed), (N, N), "{stats:?}");
    assert_eq!(wq.stats().panics, 0);
}

/// Items that block until released, counting how many run at once.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, usize, bool)>, // running, peak, released
    cv: Condvar,
}

impl Gate {
    fn hold(&self) {
        let mut st = self.state.lock().unwrap();
        st.0 += 1;
        st.1 = st.1.max(st.0);
        self.cv.notify_all();
        while !st.2 {
            st = self.cv.wait(st).unwrap();
        }
        st.0 -= 1;
    }

    fn wait_running(&self, ready: impl Fn(usize) -> bool) -> usize {
        let deadline = Instant::now() + HANG;
        let mut st = self.state.lock().unwrap();
        while !ready(st.0) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "gave up waiting: {} running", st.0);
            st = self.cv.wait_timeout(st, left).unwrap().0;
        }
        st.0
    }

    fn release(&self) {
        self.state.lock().unwrap().2 = true;
        self.cv.notify_all();
    }

    fn peak(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

fn queue_held(wq: &BtrfsWorkqueue, gate: &Arc<Gate>, n: usize) {
    for _ in 0..n {
        let gate = gate.clone();
        wq.dispatch(Work::new(move || gate.hold()));
    }
}

/// thresh=32: max_active starts at 1, grows while the backlog is above 32 (one step per
/// starting item), and falls back to 1 as the queue drains.
#[test]
fn max_active_follows_the_backlog() {
    let wq = BtrfsWorkqueue::new(8, 32);
    assert_eq!(wq.current_active(), 1);
    // Only a starting item looks at the backlog, so a plug holds the one active slot until
    // the backlog is queued; were the first held item to start on an empty queue, the
    // queue would never grow (as in btrfs).
    let (plug, gate) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    let held = plug.clone();
    wq.dispatch(Work::new(move || held.hold()));
    plug.wait_running(|n| n == 1);
    queue_held(&wq, &gate, 200);
    plug.release();
    gate.wait_running(|n| n >= 2);
    // Let the growth settle: every started item holds, so it stops at some level.
    std::thread::sleep(Duration::from_millis(50));
    let grown = wq.current_active();
    assert!(grown > 1, "max_active never grew");
    assert!(
        grown <= 8 && wq.stats().workers_busy <= 8,
        "beyond limit_active: {grown}"
    );
    gate.release();
    wq.quiesce();
    assert!(gate.peak() > 1 && gate.peak() <= 8, "peak {}", gate.peak());
    assert_eq!(
        wq.current_active(),
        1,
        "max_active did not fall back as the queue drained"
    );
    assert_eq!(wq.stats().completed, 201);
}

/// thresh below 32 turns the adjustment off: max_active is limit_active throughout.
#[test]
fn a_low_thresh_keeps_max_active_at_the_limit() {
    let wq = BtrfsWorkqueue::new(8, 16);
    assert_eq!(wq.current_active(), 8);
    let gate = Arc::new(Gate::default());
    queue_held(&wq, &gate, 200);
    gate.wait_running(|n| n == 8);
    // Room for a ninth item to start, were the limit broken.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wq.current_active(), 8);
    assert_eq!(wq.stats().workers_busy, 8);
    gate.release();
    wq.quiesce();
    assert_eq!(gate.peak(), 8);
    assert_eq!(wq.current_active(), 8);
}

#[test]
fn a_panicking_run_part_drops_its_ordered_part_and_the_line_moves_on() {
    let wq = BtrfsWorkqueue::new(2, 32);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..10 {
        let log = log.clone();
        wq.dispatch(Work::with_ordered(
            move || assert_ne!(i, 4, "run part panics (expected by the test)"),
            move || log.lock().unwrap().push(i),
        ));
    }
    wq.quiesce();
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 5, 6, 7, 8, 9]);
    assert_eq!(wq.stats().panics, 1);
    assert_eq!(wq.stats().completed, 10);
}

#[test]
fn defaults_are_btrfs_thread_pool_size_and_dft_threshold() {
    let s = build("btrfs-wq").unwrap();
    let limit = (online_cpus() + 2).min(8);
    assert_eq!(s.name(), format!("btrfs-wq:limit_active={limit},thresh=32"));
    assert_eq!(
        BtrfsWorkqueue::new(3, 64).name(),
        "btrfs-wq:limit_active=3,thresh=64"
    );
}
