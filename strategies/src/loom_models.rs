//! What the loom models share: [`model`], the checks every pool's models are made of, and
//! [`pool_models!`], which generates a pool's models from a list of configurations and
//! checks. The models themselves sit next to what they model (`tracker.rs`, `ordered.rs`,
//! and each hand-written pool), in `#[cfg(all(test, loom))] mod models`, as tokio keeps
//! one loom file per component. How to run them: see `crate::sync`.
//!
//! Each check takes a freshly built pool and explores every interleaving (up to the
//! preemption bound) of the real code, through `crate::sync`'s loom primitives. Assertions
//! live in the model's own thread: a pool would catch a panic raised inside an item. The
//! pool handle is a std `Arc`: its count is not part of any protocol under test.

use std::sync::Arc as Handle;

use crate::sync::{thread, Arc, AtomicUsize, Mutex, Ordering::Relaxed};
use crate::{Strategy, Work};

/// Explores `f` with at most `preemptions` forced thread switches per execution, and
/// prints how many executions that took (`--nocapture`), to size new models by.
pub(crate) fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let runs = Handle::new(std::sync::atomic::AtomicUsize::new(0));
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

/// Dispatches `n` items that count their runs.
fn dispatch_counted(pool: &dyn Strategy, n: usize) -> Arc<Vec<AtomicUsize>> {
    let hits: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..n {
        let hits = hits.clone();
        pool.dispatch(Work::new(move || {
            hits[i].fetch_add(1, Relaxed);
        }));
    }
    hits
}

fn assert_each_ran_once(hits: &[AtomicUsize]) {
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(h.load(Relaxed), 1, "item {i}");
    }
}

/// `items` items from outside, then `quiesce`: it returns (a lost wake-up leaves an item
/// queued and loom reports the deadlock), every item ran once, and the stats agree.
pub(crate) fn quiesce_sees_every_item(pool: Handle<dyn Strategy>, items: usize) {
    let hits = dispatch_counted(&*pool, items);
    pool.quiesce();
    assert_each_ran_once(&hits);
    assert_eq!(pool.stats().completed, items as u64);
}

/// Dropping without `quiesce`: shutdown strands no item a worker has not taken yet.
pub(crate) fn drop_runs_everything_queued(pool: Handle<dyn Strategy>, items: usize) {
    let hits = dispatch_counted(&*pool, items);
    drop(pool);
    assert_each_ran_once(&hits);
}

/// Work dispatched by a running item is covered by a `quiesce` that was already waiting.
pub(crate) fn quiesce_covers_work_dispatched_by_work(pool: Handle<dyn Strategy>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (inner, h) = (pool.clone(), hits.clone());
    pool.dispatch(Work::new(move || {
        inner.dispatch(Work::new(move || {
            h.fetch_add(1, Relaxed);
        }));
    }));
    pool.quiesce();
    assert_eq!(hits.load(Relaxed), 1);
}

/// Run parts may finish in any order: every ordered part runs once, after its run part, in
/// dispatch order when the pool says it is [`Strategy::ordered`], before `quiesce` returns.
pub(crate) fn ordered_parts_run_in_turn(pool: Handle<dyn Strategy>, items: usize) {
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..items).map(|_| AtomicUsize::new(0)).collect());
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..items {
        let (run, after) = (ran.clone(), ran.clone());
        let order = order.clone();
        pool.dispatch(Work::with_ordered(
            move || {
                run[i].fetch_add(1, Relaxed);
            },
            move || {
                // 0 here would be an ordered part before its run part.
                let runs = after[i].load(Relaxed);
                order.lock().unwrap().push((i, runs));
            },
        ));
    }
    pool.quiesce();
    let mut order = order.lock().unwrap().clone();
    if !pool.ordered() {
        order.sort_unstable();
    }
    let expect: Vec<(usize, usize)> = (0..items).map(|i| (i, 1)).collect();
    assert_eq!(order, expect);
}

/// Two submitters race each other and the pool's threads.
pub(crate) fn two_submitters(pool: Handle<dyn Strategy>) {
    let other = pool.clone();
    let submitter = thread::spawn(move || dispatch_counted(&*other, 1));
    let mine = dispatch_counted(&*pool, 1);
    let theirs = submitter.join().unwrap();
    pool.quiesce();
    assert_each_ran_once(&mine);
    assert_each_ran_once(&theirs);
}

/// The last handle may go with one of the pool's own items, after it queued another: the
/// pool then shuts down on a thread of its own (here it would wait for and join itself),
/// and the item it queued still runs. Loom reports a shutdown that hangs as a deadlock.
pub(crate) fn dropped_by_its_own_item(pool: Handle<dyn Strategy>) {
    let ran = Arc::new((Mutex::new(false), crate::sync::Condvar::new()));
    let (inner, done) = (pool.clone(), ran.clone());
    pool.dispatch(Work::new(move || {
        inner.dispatch(Work::new(move || {
            *done.0.lock().unwrap() = true;
            done.1.notify_one();
        }));
        drop(inner);
    }));
    drop(pool);
    let mut child_ran = ran.0.lock().unwrap();
    while !*child_ran {
        child_ran = ran.1.wait(child_ran).unwrap();
    }
}

/// Generates a pool's loom models: per configuration, a module of one `#[test]` per check,
/// each on a fresh pool built by the configuration's expression in every execution.
///
/// ```text
/// pool_models! {
///     /// What this configuration races.
///     one_worker(PREEMPTIONS) = EXPRESSION => [check(args...), ...];
/// }
/// ```
macro_rules! pool_models {
    ($(
        $(#[$meta:meta])*
        $config:ident($preemptions:literal) = $pool:expr => [$($check:ident($($arg:expr),*)),+ $(,)?];
    )+) => {
        $(
            $(#[$meta])*
            mod $config {
                use super::*;
                $(
                    #[test]
                    fn $check() {
                        $crate::loom_models::model($preemptions, || {
                            $crate::loom_models::$check(std::sync::Arc::new($pool), $($arg),*)
                        });
                    }
                )+
            }
        )+
    };
}
pub(crate) use pool_models;
