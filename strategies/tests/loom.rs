//! loom models of the hand-written pools' sleep/wake protocols: every interleaving (up to
//! the preemption bound) of the real code, run through `crate::sync`'s loom primitives.
//! One independent `#[test]` per model; keep each under ~30 s in release.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p strategies --no-default-features --release --test loom --target-dir target/loom`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use strategies::kthread::{KthreadConfig, KthreadPool};
use strategies::{Strategy, Work};

/// Explores `f` with at most `preemptions` forced thread switches per execution, and
/// prints how many executions that took (`--nocapture`), to size new models by.
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{} executions",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn kthread(max_workers: usize, idle_thresh: usize, ordered: bool) -> KthreadPool {
    KthreadPool::new(KthreadConfig {
        max_workers,
        idle_thresh,
        ordered,
    })
}

/// Dispatches `n` items that count their runs. Assertions live in the model's main thread:
/// the pool would catch a panic raised inside an item.
fn dispatch_counted(pool: &KthreadPool, n: usize) -> Arc<Vec<AtomicUsize>> {
    let hits: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..n {
        let hits = hits.clone();
        pool.dispatch(Work::new(move || {
            hits[i].fetch_add(1, Ordering::Relaxed);
        }));
    }
    hits
}

fn assert_each_ran_once(hits: &[AtomicUsize]) {
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(h.load(Ordering::Relaxed), 1, "item {i}");
    }
}

/// One worker racing the dispatcher on its `working` flag: quiesce returns (no lost
/// wake-up, else loom reports the deadlock) and every item ran exactly once.
#[test]
fn kthread_one_worker_no_lost_wakeup() {
    model(3, || {
        let pool = kthread(1, 64, false);
        let hits = dispatch_counted(&pool, 3);
        pool.quiesce();
        assert_each_ran_once(&hits);
        assert_eq!(pool.stats().completed, 3);
    });
}

/// idle_thresh=1 makes the second dispatch start a second worker while the first may be
/// running, going to sleep, or not yet started; the third goes to a busy one at the cap.
#[test]
fn kthread_two_workers_no_lost_wakeup() {
    model(3, || {
        let pool = kthread(2, 1, false);
        let hits = dispatch_counted(&pool, 3);
        pool.quiesce();
        assert_each_ran_once(&hits);
    });
}

/// Dropping without quiesce: the workers must drain their lists before they stop.
#[test]
fn kthread_drop_runs_everything_queued() {
    model(3, || {
        let pool = kthread(1, 64, false);
        let hits = dispatch_counted(&pool, 2);
        drop(pool);
        assert_each_ran_once(&hits);
    });
}

/// Work dispatched by a running item is covered by a quiesce that was already waiting.
#[test]
fn kthread_quiesce_covers_work_dispatched_by_work() {
    model(3, || {
        let pool = std::sync::Arc::new(kthread(1, 64, false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (inner, h) = (pool.clone(), hits.clone());
        pool.dispatch(Work::new(move || {
            inner.dispatch(Work::new(move || {
                h.fetch_add(1, Ordering::Relaxed);
            }));
        }));
        pool.quiesce();
        assert_eq!(hits.load(Ordering::Relaxed), 1);
    });
}

/// Ordered pool with two workers: run parts may finish in either order, the ordered parts
/// run once each, in dispatch order, and quiesce waits for them.
#[test]
fn kthread_ordered_two_workers() {
    model(3, || {
        let pool = kthread(2, 1, true);
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let order = order.clone();
            pool.dispatch(Work::with_ordered(
                || {},
                move || order.lock().unwrap().push(i),
            ));
        }
        pool.quiesce();
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    });
}

// steal: the job-counter/sleeper word, the lock, the condvar, the tracker and the shutdown
// are the real code under loom. crossbeam-deque is not loom-instrumented (it keys on
// `crossbeam_loom`, not `loom`), so under loom steal.rs swaps in a mutex-protected deque with
// the same interface: these models check our sleep/wake protocol, not crossbeam's deque.

fn steal_dispatch_counted(pool: &strategies::steal::Steal, n: usize) -> Arc<Vec<AtomicUsize>> {
    let hits: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..n {
        let hits = hits.clone();
        pool.dispatch(Work::new(move || {
            hits[i].fetch_add(1, Ordering::Relaxed);
        }));
    }
    hits
}

/// One worker racing to sleep while two items arrive: the plainest lost wake-up, with nobody
/// else to pick the item up.
#[test]
fn steal_one_worker_no_lost_wakeup() {
    model(3, || {
        let pool = strategies::steal::Steal::new(1);
        let hits = steal_dispatch_counted(&pool, 2);
        pool.quiesce();
        assert_each_ran_once(&hits);
    });
}

/// Two workers racing to sleep while two items arrive from outside: quiesce returns (a lost
/// wake-up would leave an item queued and loom would report the deadlock), each item ran
/// exactly once, and drop joins both workers.
#[test]
fn steal_two_workers_two_items_no_lost_wakeup() {
    model(2, || {
        let pool = strategies::steal::Steal::new(2);
        let hits = steal_dispatch_counted(&pool, 2);
        pool.quiesce();
        assert_each_ran_once(&hits);
        assert_eq!(pool.stats().completed, 2);
    });
}

/// Drop without quiesce: shutdown must not strand an item a worker has not taken yet.
#[test]
fn steal_drop_runs_everything_queued() {
    model(2, || {
        let pool = strategies::steal::Steal::new(2);
        let hits = steal_dispatch_counted(&pool, 2);
        drop(pool);
        assert_each_ran_once(&hits);
    });
}

/// An item dispatched from a worker lands in that worker's deque; the other worker may be
/// asleep, and the notify must reach it or the owner must run the item itself.
#[test]
fn steal_item_dispatched_by_an_item() {
    model(2, || {
        let pool = std::sync::Arc::new(strategies::steal::Steal::new(2));
        let hits = Arc::new(AtomicUsize::new(0));
        let (inner, h) = (pool.clone(), hits.clone());
        pool.dispatch(Work::new(move || {
            inner.dispatch(Work::new(move || {
                h.fetch_add(1, Ordering::Relaxed);
            }));
        }));
        pool.quiesce();
        assert_eq!(hits.load(Ordering::Relaxed), 1);
    });
}

// workqueue / btrfs-wq: one bound pool (its threads pinned to the first allowed CPU; under
// loom that only pins the model's host thread). loom's `wait_timeout` never times out, so
// these models show the queue needs no watcher tick to make progress when nothing blocks.

fn wq_cpu() -> usize {
    core_affinity::get_core_ids().expect("affinity mask")[0].id
}

fn wq_dispatch_counted(pool: &impl Strategy, n: usize) -> Arc<Vec<AtomicUsize>> {
    let hits: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..n {
        let hits = hits.clone();
        pool.dispatch(Work::new(move || {
            hits[i].fetch_add(1, Ordering::Relaxed);
        }));
    }
    hits
}

/// max_active=1 caps the pool at one thread: the dispatcher races it going idle.
#[test]
fn workqueue_one_thread_no_lost_wakeup() {
    let cpu = wq_cpu();
    model(3, move || {
        let wq = strategies::workqueue::Workqueue::on_cpus(&[cpu], 1);
        let hits = wq_dispatch_counted(&wq, 2);
        wq.quiesce();
        assert_each_ran_once(&hits);
        assert_eq!(wq.stats().completed, 2);
    });
}

/// max_active=2: taking the first item starts a spare thread, which the second dispatch
/// may wake to watch, while the first thread finishes and takes the second item itself.
#[test]
fn workqueue_two_threads_no_lost_wakeup() {
    let cpu = wq_cpu();
    model(3, move || {
        let wq = strategies::workqueue::Workqueue::on_cpus(&[cpu], 2);
        let hits = wq_dispatch_counted(&wq, 2);
        wq.quiesce();
        assert_each_ran_once(&hits);
    });
}

/// Drop without quiesce: Drop drains, then stops the idle and watching threads.
#[test]
fn workqueue_drop_runs_everything_queued() {
    let cpu = wq_cpu();
    model(3, move || {
        let wq = strategies::workqueue::Workqueue::on_cpus(&[cpu], 2);
        let hits = wq_dispatch_counted(&wq, 2);
        drop(wq);
        assert_each_ran_once(&hits);
    });
}

/// Unbound (not concurrency-managed): both items may start at once on two threads.
#[test]
fn workqueue_unbound_two_threads_no_lost_wakeup() {
    model(3, || {
        let wq = strategies::workqueue::Workqueue::unbound(2);
        let hits = wq_dispatch_counted(&wq, 2);
        wq.quiesce();
        assert_each_ran_once(&hits);
    });
}

/// btrfs-wq without thresholds (two threads): run parts finish in either order, ordered
/// parts run once each, in submission order, before quiesce returns.
#[test]
fn btrfs_wq_ordered_two_threads() {
    model(3, || {
        let wq = strategies::btrfs_wq::BtrfsWorkqueue::new(2, 16);
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..2 {
            let order = order.clone();
            wq.dispatch(Work::with_ordered(
                || {},
                move || order.lock().unwrap().push(i),
            ));
        }
        wq.quiesce();
        assert_eq!(*order.lock().unwrap(), [0, 1]);
    });
}

/// An item queues another from its worker (same CPU, same pool); the quiesce already
/// waiting covers it, and the spare thread may be idle, watching or not started yet.
#[test]
fn workqueue_item_dispatched_by_an_item() {
    let cpu = wq_cpu();
    model(3, move || {
        let wq = std::sync::Arc::new(strategies::workqueue::Workqueue::on_cpus(&[cpu], 2));
        let hits = Arc::new(AtomicUsize::new(0));
        let (inner, h) = (wq.clone(), hits.clone());
        wq.dispatch(Work::new(move || {
            inner.dispatch(Work::new(move || {
                h.fetch_add(1, Ordering::Relaxed);
            }));
        }));
        wq.quiesce();
        assert_eq!(hits.load(Ordering::Relaxed), 1);
    });
}

/// Two submitters on the one CPU race each other and the pool's two threads.
#[test]
fn workqueue_two_submitters() {
    let cpu = wq_cpu();
    model(3, move || {
        let wq = std::sync::Arc::new(strategies::workqueue::Workqueue::on_cpus(&[cpu], 2));
        let other = wq.clone();
        let submitter = loom::thread::spawn(move || wq_dispatch_counted(&*other, 1));
        let mine = wq_dispatch_counted(&*wq, 1);
        let theirs = submitter.join().unwrap();
        wq.quiesce();
        assert_each_ran_once(&mine);
        assert_each_ran_once(&theirs);
    });
}
