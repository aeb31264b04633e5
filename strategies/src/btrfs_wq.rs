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

// The backlog count is a plain std atomic: it feeds only the max_active heuristic, takes no
// part in the sleep/wake protocol, and keeping it out of loom keeps the models small.
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

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
    /// Ordered parts wait in its tracker's line. Dropping it quiesces and joins the threads.
    wq: Workqueue,
    limit_active: usize,
    /// `None` when `thresh` is below DFT_THRESHOLD (NO_THRESHOLD).
    thresh: Option<Arc<Thresh>>,
}

/// What the items of an adapting queue share: the backlog and the max_active it decides.
struct Thresh {
    queue: Arc<Queue>,
    limit_active: usize,
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
        let adapts = thresh >= DFT_THRESHOLD;
        // An adapting queue starts small and grows on demand.
        let wq = Workqueue::unbound_ordered(if adapts { 1 } else { limit_active });
        let thresh = adapts.then(|| {
            Arc::new(Thresh {
                queue: Arc::clone(wq.inner()),
                limit_active,
                thresh,
                pending: AtomicUsize::new(0),
                adjust: Mutex::new(Adjust {
                    count: 0,
                    current_active: 1,
                }),
            })
        });
        BtrfsWorkqueue {
            name,
            wq,
            limit_active,
            thresh,
        }
    }

    /// The queue's max_active now (`current_active`).
    pub fn current_active(&self) -> usize {
        match &self.thresh {
            Some(t) => t.adjust.lock().unwrap().current_active,
            None => self.limit_active,
        }
    }
}

impl Thresh {
    fn exec_hook(&self) {
        self.pending.fetch_sub(1, Relaxed);
        let mut adjust = self.adjust.lock().unwrap();
        // As in the kernel, one call in thresh/4 changes nothing, to call
        // workqueue_set_max_active less often.
        adjust.count = (adjust.count + 1) % (self.thresh / 4);
        if adjust.count == 0 {
            return;
        }
        let pending = self.pending.load(Relaxed);
        let mut active = adjust.current_active;
        if pending > self.thresh {
            active += 1;
        }
        if pending < self.thresh / 2 {
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
        // Only items with an ordered part take a place in line (btrfs_queue_work): the
        // queue's tracker gives it them.
        let work = match &self.thresh {
            Some(thresh) => {
                thresh.pending.fetch_add(1, Relaxed);
                let thresh = Arc::clone(thresh);
                work.with_prologue(move || thresh.exec_hook())
            }
            None => work,
        };
        self.wq.dispatch(work);
    }

    fn ordered(&self) -> bool {
        self.wq.ordered()
    }

    fn quiesce(&self) {
        // An item counts as done once its ordered part has run, by whichever worker.
        self.wq.quiesce();
    }

    fn stats(&self) -> PoolStats {
        self.wq.stats()
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;

    crate::loom_models::pool_models! {
        /// Without thresholds, two threads: run parts finish in either order, ordered parts
        /// run once each, in submission order, before `quiesce` returns.
        two_threads(3) = BtrfsWorkqueue::new(2, 16) => [ordered_parts_run_in_turn(2)];
    }
}
