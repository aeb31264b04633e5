//! The `workqueue` backend: bound work runs on the CPU that queued it, `max_active` holds per
//! CPU (whole queue when unbound), and a sleeping item does not hold up its CPU's other work
//! below `max_active`. Correctness only: waits have generous deadlines that only catch hangs.
#![cfg(not(loom))]

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use strategies::workqueue::Workqueue;
use strategies::{build, Strategy, Work};

const HANG: Duration = Duration::from_secs(30);

/// CPUs the calling thread may run on.
fn cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .expect("affinity mask")
        .into_iter()
        .map(|c| c.id)
        .collect()
}

fn current_cpu() -> usize {
    // SAFETY: no arguments, no memory.
    let cpu = unsafe { libc::sched_getcpu() };
    assert!(cpu >= 0, "sched_getcpu failed");
    cpu as usize
}

/// Runs `f` on a thread pinned to `cpu`.
fn on_cpu<R: Send>(cpu: usize, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(
                core_affinity::set_for_current(CoreId { id: cpu }),
                "pin to CPU {cpu}"
            );
            f()
        })
        .join()
        .unwrap()
    })
}

/// Where an item was queued and ran, and where its thread was allowed to run.
struct Ran {
    queued: usize,
    ran: usize,
    allowed: Vec<usize>,
}

/// Queues `n` items from `cpu`, each recording where it ran.
fn record_from(wq: &Workqueue, cpu: usize, n: usize) -> Arc<Mutex<Vec<Ran>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    on_cpu(cpu, || {
        for _ in 0..n {
            let log = log.clone();
            wq.dispatch(Work::new(move || {
                let (ran, allowed) = (current_cpu(), cpus());
                log.lock().unwrap().push(Ran {
                    queued: cpu,
                    ran,
                    allowed,
                });
            }));
        }
    });
    log
}

#[test]
fn bound_work_runs_on_the_cpu_that_queued_it() {
    let cpus = cpus();
    let wq = Workqueue::per_cpu(1024);
    let first = record_from(&wq, cpus[0], 500);
    wq.quiesce();
    for r in first.lock().unwrap().iter() {
        assert_eq!(
            r.queued, r.ran,
            "work queued on CPU {} ran on CPU {}",
            r.queued, r.ran
        );
        assert_eq!(r.allowed, [r.queued], "worker not pinned to its CPU");
    }
    // A submitter pinned to one CPU leaves the other CPUs' pools idle.
    for (cpu, stats) in wq.pool_stats() {
        let expect = if cpu == Some(cpus[0]) { 500 } else { 0 };
        assert_eq!(stats.completed, expect, "pool of CPU {cpu:?}: {stats:?}");
    }
    if cpus.len() < 2 {
        eprintln!("skipping the second CPU: this machine lets the test use only one");
        return;
    }
    let second = record_from(&wq, cpus[1], 500);
    wq.quiesce();
    for r in second.lock().unwrap().iter() {
        assert_eq!((r.queued, r.ran), (cpus[1], cpus[1]));
    }
}

#[test]
fn unbound_workers_may_run_anywhere() {
    let cpus = cpus();
    let wq = Workqueue::unbound(1024);
    // The submitter is pinned; the workers it starts must not inherit that.
    let log = record_from(&wq, cpus[0], 200);
    wq.quiesce();
    for r in log.lock().unwrap().iter() {
        assert!(
            r.allowed.len() >= cpus.len(),
            "unbound worker pinned to {:?}",
            r.allowed
        );
        assert!(cpus.contains(&r.ran));
    }
    assert_eq!(wq.pool_stats().len(), 1);
}

/// Items that block until released, counting how many of each group run at once.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    running: Vec<usize>,
    peak: Vec<usize>,
    released: bool,
}

impl Gate {
    fn new(groups: usize) -> Arc<Gate> {
        let gate = Gate::default();
        {
            let mut st = gate.state.lock().unwrap();
            st.running = vec![0; groups];
            st.peak = vec![0; groups];
        }
        Arc::new(gate)
    }

    /// The item's body: enters `group`, waits for the release, leaves.
    fn hold(&self, group: usize) {
        let mut st = self.state.lock().unwrap();
        st.running[group] += 1;
        st.peak[group] = st.peak[group].max(st.running[group]);
        self.cv.notify_all();
        while !st.released {
            st = self.cv.wait(st).unwrap();
        }
        st.running[group] -= 1;
    }

    /// Waits until `running` satisfies `ready`; panics after `HANG`.
    fn wait_for(&self, what: &str, ready: impl Fn(&[usize]) -> bool) {
        let deadline = Instant::now() + HANG;
        let mut st = self.state.lock().unwrap();
        while !ready(&st.running) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "gave up waiting for {what}: running {:?}",
                st.running
            );
            st = self.cv.wait_timeout(st, left).unwrap().0;
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().released = true;
        self.cv.notify_all();
    }

    fn peak(&self) -> Vec<usize> {
        self.state.lock().unwrap().peak.clone()
    }
}

/// With max_active=2 and items that block, each CPU runs exactly two at once: the second
/// starts although the first sleeps (concurrency management), a third never does.
#[test]
fn max_active_holds_per_cpu() {
    let cpus: Vec<usize> = cpus().into_iter().take(2).collect();
    if cpus.len() < 2 {
        eprintln!("one CPU only: checking max_active on it alone");
    }
    let wq = build("workqueue:max_active=2").unwrap();
    let gate = Gate::new(cpus.len());
    for (group, &cpu) in cpus.iter().enumerate() {
        on_cpu(cpu, || {
            for _ in 0..6 {
                let gate = gate.clone();
                wq.dispatch(Work::new(move || gate.hold(group)));
            }
        });
    }
    gate.wait_for("two items running on every CPU", |r| {
        r.iter().all(|&n| n == 2)
    });
    // Room for a third item to start, were the limit broken.
    std::thread::sleep(Duration::from_millis(50));
    let stats = wq.stats();
    assert_eq!(stats.workers_busy, 2 * cpus.len() as u64, "{stats:?}");
    assert_eq!(stats.queued, 4 * cpus.len() as u64, "{stats:?}");
    gate.release();
    wq.quiesce();
    assert_eq!(gate.peak(), vec![2; cpus.len()]);
    assert_eq!(wq.stats().completed, 6 * cpus.len() as u64);
}

#[test]
fn unbound_max_active_holds_for_the_whole_queue() {
    let wq = build("workqueue:max_active=2,unbound=1").unwrap();
    let gate = Gate::new(1);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..4 {
                    let gate = gate.clone();
                    wq.dispatch(Work::new(move || gate.hold(0)));
                }
            });
        }
    });
    gate.wait_for("two items running", |r| r[0] == 2);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wq.stats().workers_busy, 2);
    gate.release();
    wq.quiesce();
    assert_eq!(gate.peak(), [2]);
}

/// A flag an item sets and another waits for, with a deadline.
#[derive(Default)]
struct Flag {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Flag {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Whether the flag got set within `within`.
    fn wait(&self, within: Duration) -> bool {
        let guard = self.set.lock().unwrap();
        *self
            .cv
            .wait_timeout_while(guard, within, |set| !*set)
            .unwrap()
            .0
    }
}

/// Item A sleeps until item B, queued after it on the same CPU, has run.
fn a_waits_for_b(spec: &str, within: Duration) -> bool {
    let wq = build(spec).unwrap();
    let (b_ran, a_saw) = (Arc::new(Flag::default()), Arc::new(Mutex::new(None)));
    on_cpu(cpus()[0], || {
        let (flag, saw) = (b_ran.clone(), a_saw.clone());
        wq.dispatch(Work::new(move || {
            *saw.lock().unwrap() = Some(flag.wait(within))
        }));
        let flag = b_ran.clone();
        wq.dispatch(Work::new(move || flag.set()));
    });
    wq.quiesce();
    let saw = a_saw.lock().unwrap().expect("A ran");
    saw
}

#[test]
fn a_sleeping_item_does_not_hold_up_its_cpu() {
    assert!(
        a_waits_for_b("workqueue", HANG),
        "B never ran while A slept"
    );
}

/// The deadlock of the 2023 thread: with max_active=1 a sleeping item stalls its queue.
#[test]
fn with_max_active_1_a_sleeping_item_stalls_the_cpu() {
    assert!(!a_waits_for_b(
        "workqueue:max_active=1",
        Duration::from_millis(100)
    ));
}

#[test]
fn a_panicking_item_is_counted_and_the_pool_carries_on() {
    let wq = Workqueue::per_cpu(4);
    let done = Arc::new(Mutex::new(0));
    wq.dispatch(Work::new(|| {
        panic!("work item panics (expected by the test)")
    }));
    for _ in 0..10 {
        let done = done.clone();
        wq.dispatch(Work::new(move || *done.lock().unwrap() += 1));
    }
    wq.quiesce();
    assert_eq!(wq.stats().panics, 1);
    assert_eq!(*done.lock().unwrap(), 10);
    let stats = wq.stats();
    assert_eq!(
        (stats.dispatched, stats.completed, stats.workers_busy),
        (11, 11, 0)
    );
}

/// The last handle dropped inside one of the queue's own items: no self-join, no hang, and
/// the work queued behind it still runs.
#[test]
fn dropping_the_last_handle_inside_an_item() {
    let wq: Arc<dyn Strategy> = Arc::new(Workqueue::unbound(1));
    let weak: Weak<dyn Strategy> = Arc::downgrade(&wq);
    let (go, after) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
    let (handle, wait_go) = (wq.clone(), go.clone());
    wq.dispatch(Work::new(move || {
        assert!(wait_go.wait(HANG));
        drop(handle);
    }));
    let flag = after.clone();
    wq.dispatch(Work::new(move || flag.set()));
    drop(wq);
    go.set();
    assert!(
        after.wait(HANG),
        "work queued behind the dropping item never ran"
    );
    let deadline = Instant::now() + HANG;
    while weak.upgrade().is_some() {
        assert!(Instant::now() < deadline, "the queue was never dropped");
        std::thread::sleep(Duration::from_millis(1));
    }
}
