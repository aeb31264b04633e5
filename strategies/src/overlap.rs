//! `overlap`: beyond every anchor. The checksum runs on a pool *while* the write is already
//! in flight, and endio waits for both — btrfs's experimental async_csum (2025). Safe
//! because the buffer does not change while the write carries it. The pool is a kthread
//! pool; what differs is only when the pipeline submits (see [`Strategy::overlaps_io`]).

use std::sync::Arc;

use crate::registry::{online_cpus, Descriptor, Knob};
use crate::{PoolStats, Strategy, Work};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "overlap",
    summary: "checksum on a kthread pool while the write is in flight; endio waits for both \
              (btrfs async_csum, 2025)",
    knobs: &[Knob {
        name: "max_workers",
        default: || (2 * online_cpus()).to_string(),
        help: "most worker threads of the underlying kthread pool",
    }],
    build: |knobs| {
        let workers = knobs.count("max_workers", 1, 1024)?;
        let inner = crate::registry::build(&format!("kthread:max_workers={workers}"))?;
        Ok(Arc::new(Overlap {
            name: knobs.spec_string(),
            inner,
        }))
    },
};

pub struct Overlap {
    name: String,
    inner: Arc<dyn Strategy>,
}

impl Strategy for Overlap {
    fn name(&self) -> &str {
        &self.name
    }

    fn dispatch(&self, work: Work) {
        self.inner.dispatch(work)
    }

    fn quiesce(&self) {
        self.inner.quiesce()
    }

    fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    fn overlaps_io(&self) -> bool {
        true
    }

    fn ordered(&self) -> bool {
        self.inner.ordered()
    }
}
