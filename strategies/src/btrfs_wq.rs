//! `btrfs-wq`: btrfs's `btrfs_workqueue` (fs/btrfs/async-thread.c, 2014 to today): an
//! unbound [`Workqueue`] whose max_active follows the backlog, with ordered parts run in
//! submission order.
//!
//! With `thresh` at 32 (DFT_THRESHOLD) or more, the queue starts at max_active 1, and every
//! item that starts looks at the backlog, the items queued but not started: above `thresh`
//! max_active goes up by one, below `thresh / 2` down by one, within 1..=`limit_active`
//! (thresh_exec_hook). Only a starting item looks, so a queue whose one active item blocks
//! never grows. A `thresh` below 32 turns this off and keeps max_active at `limit_active`
//! (NO_THRESHOLD), as btrfs does for its small thresholds.
//!
//! Run parts run concurrently; ordered parts run one at a time in submission order, on the
//! worker that finishes the run part at the head of the line (run_ordered_work).

use std::panic::{catch_unwind, AssertUnwindSafe};
// Counters that only feed `stats()` and the max_active heuristic are plain std atomics:
// they take no part in the sleep/wake protocol, and keeping them out of loom keeps the
// models small.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::ordered::{Ordered, Sequencer, Ticket};
use crate::registry::{online_cpus, Descriptor, Knob};
use crate::sync::{Arc, Mutex};
use crate::workqueue::{Inner as Queue, Workqueue, MAX_ACTIVE};
use crate::{PoolStats, Strategy, Work};

/// The kernel's DFT_THRESHOLD: the default, and the least `thresh` that adapts max_active.
const DFT_THRESHOLD: usize = 32;

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "btrfs-wq",
    summary: "btrfs_workqueue (2014-today): unbound workqueue whose max_active follows the \
              backlog; ordered parts in submission order",
    knobs: &[
        Knob {
            name: "limit_active",
            default: || (online_cpus() + 2).min(8).to_string(),
            help: "most items running at once (btrfs's thread_pool_size: min(CPUs + 2, 8))",
        },
        Knob {
            name: "thresh",
            default: || DFT_THRESHOLD.to_string(),
            help: "backlog above which each starting item raises max_active by one (below \
                   half of it: lowers); under 32 max_active stays at limit_active",
        },
    ],
    build: |knobs| {
        let wq = BtrfsWorkqueue::new(
            knobs.count("limit_active", 1, MAX_ACTIVE)?,
            knobs.count("thresh", 1, 1 << 20)?,
        );
        Ok(std::sync::Arc::new(BtrfsWorkqueue {
            name: knobs.spec_string(),
            ..wq
        }))
    },
};

pub struct BtrfsWorkqueue {
    name: String,
    /// Dropping it quiesces and joins the threads.
    wq: Workqueue,
    core: Arc<Core>,
}

/// What the queued items share.
struct Core {
    queue: Arc<Queue>,
    limit_active: usize,
    thresh: Option<Thresh>,
    order: Sequencer,
    completed: AtomicU64,
    panics: AtomicU64,
}

struct Thresh {
    thresh: usize,
    /// Items queued and not yet started (the kernel's `pending`).
    pending: AtomicUsize,
    adjust: Mutex<Adjust>,
}

struct Adjust {
    /// Calls since the last skipped one.
    count: usize,
    current_active: usize,
}

impl BtrfsWorkqueue {
    pub fn new(limit_active: usize, thresh: usize) -> Self {
        assert!((1..=MAX_ACTIVE).contains(&limit_active) && thresh >= 1);
        let name = format!("btrfs-wq:limit_active={limit_active},thresh={thresh}");
        let thresh = (thresh >= DFT_THRESHOLD).then(|| Thresh {
            thresh,
            pending: AtomicUsize::new(0),
            adjust: Mutex::new(Adjust {
                count: 0,
                current_active: 1,
            }),
        });
        // An adapting queue starts small and grows on demand.
        let wq = Workqueue::unbound(if thresh.is_some() { 1 } else { limit_active });
        let core = Arc::new(Core {
            queue: Arc::clone(wq.inner()),
            limit_active,
            thresh,
            order: Sequencer::default(),
            completed: AtomicU64::new(0),
            panics: AtomicU64::new(0),
        });
        BtrfsWorkqueue { name, wq, core }
    }

    /// The queue's max_active now (`current_active`).
    pub fn current_active(&self) -> usize {
        match &self.core.thresh {
            Some(t) => t.adjust.lock().unwrap().current_active,
            None => self.core.limit_active,
        }
    }
}

impl Core {
    fn execute(&self, run: Box<dyn FnOnce() + Send>, ordered: Option<(Ticket, Ordered)>) {
        self.thresh_exec_hook();
        let ran = catch_unwind(AssertUnwindSafe(run)).is_ok();
        if !ran {
            self.panics.fetch_add(1, Relaxed);
        }
        let finished = match ordered {
            Some((ticket, part)) => self.order.complete(ticket, Some(part).filter(|_| ran)),
            None => 1,
        };
        self.completed.fetch_add(finished, Relaxed);
    }

    fn thresh_exec_hook(&self) {
        let Some(t) = &self.thresh else { return };
        t.pending.fetch_sub(1, Relaxed);
        let mut adjust = t.adjust.lock().unwrap();
        // As in the kernel, one call in thresh/4 changes nothing, to call
        // workqueue_set_max_active less often.
        adjust.count = (adjust.count + 1) % (t.thresh / 4);
        if adjust.count == 0 {
            return;
        }
        let pending = t.pending.load(Relaxed);
        let mut active = adjust.current_active;
        if pending > t.thresh {
            active += 1;
        }
        if pending < t.thresh / 2 {
            active -= 1;
        }
        let active = active.clamp(1, self.limit_active);
        if active != adjust.current_active {
            adjust.current_active = active;
            // Under the lock, so the queue always ends up with the last value decided.
            Queue::set_max_active(&self.queue, active);
        }
    }
}

impl Strategy for BtrfsWorkqueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        let (run, ordered) = work.into_parts();
        // Only items with an ordered part take a place in line (btrfs_queue_work).
        let ordered = ordered.map(|part| (self.core.order.ticket(), part));
        if let Some(t) = &self.core.thresh {
            t.pending.fetch_add(1, Relaxed);
        }
        let core = Arc::clone(&self.core);
        Queue::queue(
            &self.core.queue,
            Work::new(move || core.execute(run, ordered)),
        );
    }

    fn ordered(&self) -> bool {
        true
    }

    fn quiesce(&self) {
        // Every ordered part has run once every queued item has: the last to finish its
        // run part, or the worker draining the line for it, ran them.
        self.wq.quiesce();
    }

    fn stats(&self) -> PoolStats {
        let wq = self.wq.stats();
        PoolStats {
            completed: self.core.completed.load(Relaxed),
            // Run parts, ordered parts, and (a bug, if ever) the wrapper item itself. A
            // panicked run part's ordered part is dropped unrun, and the line moves on.
            panics: self.core.panics.load(Relaxed) + self.core.order.panics() + wq.panics,
            ..wq
        }
    }
}
