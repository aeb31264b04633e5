//! `workqueue`: a Linux workqueue (Documentation/core-api/workqueue.rst), in user space.
//!
//! Bound (the default): one worker pool per online CPU, its threads pinned to that CPU, and
//! work runs on the CPU that queued it. That is why btrfs left workqueues in 2008: it "only
//! schedules work on the same CPU that queued the work", so a submitter pinned to one CPU
//! leaves the others idle. `max_active` caps the items of the queue executing at once per
//! CPU; the rest wait in that CPU's pending list.
//!
//! A bound pool is concurrency-managed like the kernel's: one item runs at a time, and
//! another starts only when the running ones stop counting. The kernel stops counting a
//! worker that sleeps; user space cannot see a sleep, so a pool stops counting its running
//! items once nothing has started or finished for [`STALL`] while work waits (the kernel's
//! CPU-intensive rule, `wq_cpu_intensive_thresh_us`, applied to sleepers too). One idle
//! "watcher" thread per pool polls for that, and only while work waits behind running items.
//!
//! `unbound=1`: one pool for the whole queue, threads not pinned, and, as in the kernel, not
//! concurrency-managed: up to `max_active` items run at once, each on its own thread.
//!
//! Threads start on demand, one at a time, keeping an idle spare ready (the kernel's
//! manager), at most `max_active` per pool. Idle threads park until the queue is dropped:
//! the kernel retires idle workers only after five minutes.

use std::collections::VecDeque;
use std::time::Duration;

use core_affinity::CoreId;

use crate::registry::{online_cpus, Descriptor, Knob};
use crate::sync::{thread, Arc, Condvar, Mutex, MutexGuard};
use crate::tracker::{Job, Order, Tracker};
use crate::{PoolStats, Strategy, Work};

/// The kernel's WQ_MAX_ACTIVE.
pub(crate) const MAX_ACTIVE: usize = 2048;

/// How long the running items may hold a bound pool, starting or finishing nothing, before
/// the pool stops counting them and starts more of its pending work.
pub const STALL: Duration = Duration::from_millis(1);

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "workqueue",
    summary: "Linux workqueue: a worker pool per CPU, work runs on the CPU that queued it \
              (btrfs before 2008); unbound=1: any CPU",
    knobs: &[
        Knob {
            name: "max_active",
            default: || "1024".to_string(),
            help: "items of the queue executing at once per CPU (whole queue if unbound); \
                   the rest wait. The kernel's default is 1024",
        },
        Knob {
            name: "unbound",
            default: || "0".to_string(),
            help: "1: one pool for all CPUs, threads not pinned, not concurrency-managed \
                   (WQ_UNBOUND)",
        },
    ],
    build: |knobs| {
        let max_active = knobs.count("max_active", 1, MAX_ACTIVE)?;
        let wq = if knobs.flag("unbound")? {
            Workqueue::unbound(max_active)
        } else {
            Workqueue::per_cpu(max_active)
        };
        Ok(std::sync::Arc::new(wq.named(knobs.spec_string())))
    },
};

pub struct Workqueue {
    name: String,
    inner: Arc<Inner>,
}

/// The queue itself, shared with its threads (and with `btrfs-wq`, which drives it).
pub(crate) struct Inner {
    pools: Vec<Pool>,
    /// Pool index by CPU id (bound queues).
    by_cpu: Vec<Option<usize>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    /// The whole queue's counts, panics, idle wait and (btrfs-wq) ordered line.
    tracker: Arc<Tracker>,
}

struct Pool {
    /// The CPU its threads are pinned to; `None` for the unbound pool.
    cpu: Option<usize>,
    state: Mutex<PoolState>,
    /// Idle threads wait here for work, the watcher for its tick too.
    wake: Condvar,
}

#[derive(Default)]
struct PoolState {
    pending: VecDeque<Job>,
    max_active: usize,
    /// Items executing.
    active: usize,
    /// Executing items that still count for concurrency management (the kernel's
    /// nr_running): a bound pool starts an item only while this is zero.
    running: usize,
    /// Bumped when the watcher stops counting the running items; an item started in an
    /// older epoch no longer counts in `running`.
    epoch: u64,
    /// Starts plus finishes: the watcher's evidence that the running items move.
    progress: u64,
    threads: usize,
    idle: usize,
    /// A thread is being started; the next one waits for it (one at a time, like the
    /// kernel's manager).
    spawning: bool,
    watching: bool,
    shutdown: bool,
    /// Where the work ran: items this pool finished, and its longest backlog.
    completed: u64,
    high_water: u64,
    workers_started: u64,
}

impl PoolState {
    /// Whether a thread may start the first pending item now (kernel: keep_working /
    /// need_more_worker). A managed pool runs one counted item at a time.
    fn may_start(&self, managed: bool) -> bool {
        !self.pending.is_empty() && self.active < self.max_active && (!managed || self.running == 0)
    }

    /// Work waits only because the running items hold the pool: they need watching.
    fn needs_watch(&self) -> bool {
        !self.pending.is_empty() && self.active < self.max_active && self.running > 0
    }

    /// Claims the start of a thread when none is idle and none is starting: the worker
    /// number, or `None`.
    fn claim_spare(&mut self) -> Option<u64> {
        if self.idle > 0 || self.spawning || self.shutdown || self.threads >= self.max_active {
            return None;
        }
        self.spawning = true;
        self.threads += 1;
        self.workers_started += 1;
        Some(self.workers_started)
    }

    /// This pool's share of the queue's figures; panics are counted for the whole queue.
    fn stats(&self) -> PoolStats {
        let (queued, busy) = (self.pending.len() as u64, self.active as u64);
        PoolStats {
            dispatched: self.completed + busy + queued,
            completed: self.completed,
            queued,
            queued_high_water: self.high_water,
            workers_started: self.workers_started,
            workers_busy: busy,
            panics: 0,
        }
    }
}

/// What a queueing thread does after it has let go of the pool lock.
enum Kick {
    Nothing,
    Wake,
    Start(u64),
}

impl Workqueue {
    /// A bound queue: a pool per online CPU.
    pub fn per_cpu(max_active: usize) -> Self {
        Self::on_cpus(&online_cpu_ids(), max_active)
    }

    /// A bound queue with pools on these CPUs only. Work queued on another CPU goes to
    /// pool `cpu % cpus.len()` (CPUs that came online later, or models with one pool).
    pub fn on_cpus(cpus: &[usize], max_active: usize) -> Self {
        let mut by_cpu = vec![None; cpus.iter().max().map_or(0, |&c| c + 1)];
        for (pool, &cpu) in cpus.iter().enumerate() {
            by_cpu[cpu] = Some(pool);
        }
        let pools = cpus.iter().map(|&cpu| Some(cpu)).collect();
        Self::with_pools(pools, by_cpu, max_active, Order::Unordered)
    }

    /// An unbound queue: one pool, any CPU, `max_active` for the whole queue.
    pub fn unbound(max_active: usize) -> Self {
        Self::with_pools(vec![None], Vec::new(), max_active, Order::Unordered)
    }

    /// An unbound queue whose items with an ordered part run it in submission order
    /// (btrfs-wq).
    pub(crate) fn unbound_ordered(max_active: usize) -> Self {
        Self::with_pools(vec![None], Vec::new(), max_active, Order::OrderedPartsOnly)
    }

    fn with_pools(
        cpus: Vec<Option<usize>>,
        by_cpu: Vec<Option<usize>>,
        max_active: usize,
        order: Order,
    ) -> Self {
        let unbound = cpus == [None];
        assert!(!cpus.is_empty() && (1..=MAX_ACTIVE).contains(&max_active));
        let pools = cpus
            .into_iter()
            .map(|cpu| Pool {
                cpu,
                state: Mutex::new(PoolState {
                    max_active,
                    ..PoolState::default()
                }),
                wake: Condvar::new(),
            })
            .collect();
        Workqueue {
            name: format!(
                "workqueue:max_active={max_active},unbound={}",
                unbound as u8
            ),
            inner: Arc::new(Inner {
                pools,
                by_cpu,
                threads: Mutex::new(Vec::new()),
                tracker: Arc::new(Tracker::new(order)),
            }),
        }
    }

    fn named(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Each pool's counters with its CPU (`None`: the unbound pool): where the work ran.
    /// Panics are counted for the queue as a whole ([`Strategy::stats`]), not here.
    pub fn pool_stats(&self) -> Vec<(Option<usize>, PoolStats)> {
        self.inner
            .pools
            .iter()
            .map(|p| (p.cpu, p.state.lock().unwrap().stats()))
            .collect()
    }
}

impl Inner {
    /// The pool of the CPU this thread runs on (read at queueing time, as queue_work does).
    fn pool_here(&self) -> usize {
        if self.pools.len() == 1 {
            return 0;
        }
        // SAFETY: no arguments, no memory; -1 on failure, which folds onto a pool below.
        let cpu = unsafe { libc::sched_getcpu() }.max(0) as usize;
        self.by_cpu
            .get(cpu)
            .copied()
            .flatten()
            .unwrap_or(cpu % self.pools.len())
    }

    pub(crate) fn queue(this: &Arc<Self>, work: Work) {
        let job = this.tracker.begin(work);
        let index = this.pool_here();
        let pool = &this.pools[index];
        let managed = pool.cpu.is_some();
        let mut st = pool.state.lock().unwrap();
        st.pending.push_back(job);
        st.high_water = st.high_water.max(st.pending.len() as u64);
        let startable = st.may_start(managed);
        let kick = if st.idle > 0 && (startable || !st.watching && st.needs_watch()) {
            Kick::Wake
        } else if let Some(n) = startable.then(|| st.claim_spare()).flatten() {
            Kick::Start(n)
        } else {
            Kick::Nothing
        };
        drop(st);
        match kick {
            Kick::Wake => pool.wake.notify_one(),
            Kick::Start(n) => Inner::start_thread(this, index, n),
            Kick::Nothing => {}
        }
    }

    /// Changes every pool's `max_active` (workqueue_set_max_active); pending work that may
    /// start now starts.
    pub(crate) fn set_max_active(this: &Arc<Self>, max_active: usize) {
        assert!((1..=MAX_ACTIVE).contains(&max_active));
        for (index, pool) in this.pools.iter().enumerate() {
            let mut st = pool.state.lock().unwrap();
            st.max_active = max_active;
            let startable = st.may_start(pool.cpu.is_some());
            let wake = startable && st.idle > 0;
            let start = if startable { st.claim_spare() } else { None };
            drop(st);
            if wake {
                pool.wake.notify_all();
            }
            if let Some(n) = start {
                Inner::start_thread(this, index, n);
            }
        }
    }

    fn start_thread(this: &Arc<Self>, index: usize, n: u64) {
        let pool = &this.pools[index];
        let name = match pool.cpu {
            Some(cpu) => format!("kworker/{cpu}:{n}"),
            None => format!("kworker/u:{n}"),
        };
        let inner = Arc::clone(this);
        match thread::Builder::new()
            .name(name)
            .spawn(move || Inner::worker(&inner, index))
        {
            Ok(handle) => this.threads.lock().unwrap().push(handle),
            Err(e) => {
                let mut st = pool.state.lock().unwrap();
                st.spawning = false;
                st.threads -= 1;
                // With other threads the pool carries on, without a spare.
                assert!(
                    st.threads > 0,
                    "workqueue: cannot start a worker thread: {e}"
                );
            }
        }
    }

    fn worker(this: &Arc<Self>, index: usize) {
        let pool = &this.pools[index];
        let managed = pool.cpu.is_some();
        match pool.cpu {
            // Fails for a CPU outside this process's cpuset; the thread then runs anywhere.
            Some(cpu) => {
                core_affinity::set_for_current(CoreId { id: cpu });
            }
            // A thread inherits the affinity of the one that started it, maybe a pinned
            // submitter or a bound worker.
            None => allow_cpus(&online_cpu_ids()),
        }
        let mut st = pool.state.lock().unwrap();
        st.spawning = false;
        loop {
            if st.may_start(managed) {
                st = Inner::run_one(this, index, st);
            } else if st.shutdown && st.pending.is_empty() {
                st.threads -= 1;
                return;
            } else {
                st = pool.idle(st, managed);
            }
        }
    }

    /// Runs the first pending item without the lock; returns with the lock held again.
    fn run_one<'a>(
        this: &'a Arc<Self>,
        index: usize,
        mut st: MutexGuard<'a, PoolState>,
    ) -> MutexGuard<'a, PoolState> {
        let pool = &this.pools[index];
        let job = st.pending.pop_front().expect("may_start saw pending work");
        st.active += 1;
        st.running += 1;
        st.progress += 1;
        let epoch = st.epoch;
        let spare = st.claim_spare();
        drop(st);
        if let Some(n) = spare {
            Inner::start_thread(this, index, n);
        }
        // The pool's own accounting happens before the item counts as completed, so that
        // `pool_stats` agrees once `quiesce` returns.
        this.tracker.run_with(job, || None, |_| {
            let mut st = pool.state.lock().unwrap();
            st.active -= 1;
            if st.epoch == epoch {
                st.running -= 1;
            }
            st.progress += 1;
            st.completed += 1;
            st
        })
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let pools = self.pools.iter();
        let threads_started = pools.map(|p| p.state.lock().unwrap().workers_started);
        self.tracker.stats(threads_started.sum())
    }

    /// Once the queue is idle: every thread, idle or watching, exits.
    fn stop_threads(&self) -> Vec<thread::JoinHandle<()>> {
        for pool in &self.pools {
            pool.state.lock().unwrap().shutdown = true;
            pool.wake.notify_all();
        }
        std::mem::take(&mut *self.threads.lock().unwrap())
    }
}

impl Pool {
    /// Waits for work. While work waits behind running items, one idle thread watches
    /// them: if a whole tick passes without a start or finish, they stop counting, and
    /// this thread goes on to start the next item.
    fn idle<'a>(
        &self,
        mut st: MutexGuard<'a, PoolState>,
        managed: bool,
    ) -> MutexGuard<'a, PoolState> {
        let watch = managed && !st.watching && st.needs_watch();
        st.idle += 1;
        if watch {
            st.watching = true;
            let seen = st.progress;
            let (guard, tick) = self.wake.wait_timeout(st, STALL).unwrap();
            st = guard;
            st.watching = false;
            if tick.timed_out() && st.progress == seen && st.needs_watch() {
                st.epoch += 1;
                st.running = 0;
            }
        } else {
            st = self.wake.wait(st).unwrap();
        }
        st.idle -= 1;
        st
    }
}

impl Strategy for Workqueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        Inner::queue(&self.inner, work);
    }

    fn quiesce(&self) {
        self.inner.tracker.wait_idle();
    }

    fn ordered(&self) -> bool {
        self.inner.tracker.ordered()
    }

    fn stats(&self) -> PoolStats {
        self.inner.stats()
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        let inner = Arc::clone(&self.inner);
        Tracker::shut_down(&self.inner.tracker, move || inner.stop_threads());
    }
}

/// The CPUs the kernel lists as online (`0-3,6`); 0..available_parallelism if unreadable.
fn online_cpu_ids() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| parse_cpu_list(list.trim()))
        .unwrap_or_else(|| (0..online_cpus()).collect())
}

/// Lets this thread run on any of `cpus` (within its cpuset).
fn allow_cpus(cpus: &[usize]) {
    // SAFETY: cpu_set_t is plain data, CPU_SET is only given CPUs below CPU_SETSIZE, and
    // sched_setaffinity reads the set it is given the size of. A failure leaves the mask.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus.iter().filter(|&&cpu| cpu < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_sysfs_writes_them() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(vec![0, 1, 2, 3, 6, 8, 9]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("0-x"), None);
    }

    #[test]
    fn the_name_is_the_canonical_spec() {
        let built = crate::build("workqueue").unwrap();
        assert_eq!(built.name(), "workqueue:max_active=1024,unbound=0");
        assert_eq!(
            Workqueue::unbound(3).name(),
            "workqueue:max_active=3,unbound=1"
        );
    }
}

// One bound pool, its threads pinned to the first allowed CPU (under loom that only pins
// the model's host thread). loom's `wait_timeout` never times out, so these models show the
// queue needs no watcher tick to make progress when nothing blocks.
#[cfg(all(test, loom))]
mod models {
    use super::*;

    fn bound(max_active: usize) -> Workqueue {
        let cpu = core_affinity::get_core_ids().expect("affinity mask")[0].id;
        Workqueue::on_cpus(&[cpu], max_active)
    }

    crate::loom_models::pool_models! {
        /// max_active=1 caps the pool at one thread: the dispatcher races it going idle.
        bound_one_thread(3) = bound(1) => [quiesce_sees_every_item(2)];
        /// max_active=2: taking the first item starts a spare thread, which the second
        /// dispatch may wake to watch, while the first thread finishes and takes the second
        /// item itself.
        bound_two_threads(3) = bound(2) => [
            quiesce_sees_every_item(2),
            drop_runs_everything_queued(2),
            quiesce_covers_work_dispatched_by_work(),
            two_submitters(),
        ];
        /// Unbound (not concurrency-managed): both items may start at once on two threads.
        unbound_two_threads(3) = Workqueue::unbound(2) => [quiesce_sees_every_item(2)];
    }
}
