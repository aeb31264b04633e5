//! Where checksum work runs.
//!
//! A [`Strategy`] takes units of [`Work`] and runs each exactly once, somewhere: in the
//! caller (`inline`), on a btrfs-2008-style kthread pool (`kthread`), and so on. Backends
//! are one file each and are built from a spec string (`NAME[:key=value,...]`) through the
//! [`registry`]. This crate knows nothing about files or I/O; the checksum algorithms that
//! the work computes live in [`csum`].

pub mod csum;
#[cfg(all(test, loom))]
mod loom_models;
mod ordered;
pub mod registry;
pub mod spec;
mod sync;
mod tracker;
mod work;

registry::backends! {
    // In the order `harness list` prints them. Adding a backend is its file and a line here.
    inline,
    kthread,
    steal,
    workqueue,
    btrfs_wq,
    #[cfg(feature = "runtimes")]
    rayon_pool,
    #[cfg(feature = "runtimes")]
    tokio_rt,
    #[cfg(feature = "runtimes")]
    tokio_blocking,
    #[cfg(feature = "runtimes")]
    async_std_rt,
    #[cfg(feature = "runtimes")]
    smol_rt,
    overlap,
}

pub use registry::{build, descriptors, Descriptor, Knob};
pub use spec::{Knobs, Spec, SpecError};
pub use work::Work;

use serde::Serialize;

/// Where a unit of work runs. Every backend implements this; nothing else knows which it is.
///
/// Contract, shared by every backend and checked by the conformance tests:
/// - `dispatch` runs the work's `run` part exactly once, on some thread, and then its
///   `ordered` part exactly once. Backends whose [`Strategy::ordered`] is true
///   (`kthread:ordered=1`, `btrfs-wq`) run the ordered parts in dispatch order; the others
///   run it right after `run`.
/// - `dispatch` may block (back-pressure) but never waits for the work itself, except
///   `inline`, which runs it in the caller.
/// - `quiesce` returns once everything dispatched before the call has fully run.
/// - Dropping a strategy quiesces it and joins its threads.
/// - A panicking `run` or `ordered` part never reaches the dispatcher and never kills a
///   worker: the backend catches it, counts it in [`PoolStats::panics`], counts the item
///   completed, and drops, unrun, the `ordered` part of an item whose `run` part panicked.
///   Later items, their ordered parts included (an ordered line moves on), still run,
///   `quiesce` still returns and dropping still joins. `inline` catches it in the caller.
pub trait Strategy: Send + Sync {
    /// The spec the strategy was built from, with defaults filled in.
    fn name(&self) -> &str;
    fn dispatch(&self, work: Work);
    fn quiesce(&self);
    fn stats(&self) -> PoolStats;

    /// True for strategies that checksum a write *while* its I/O is in flight (btrfs's
    /// experimental async_csum, 2025): the pipeline submits the write without waiting for
    /// the csum work, and endio waits for both. Safe because the buffer does not change
    /// while either runs.
    fn overlaps_io(&self) -> bool {
        false
    }

    /// True when ordered parts run one at a time in dispatch order (btrfs's ordered pools),
    /// false when each runs right after its own run part.
    fn ordered(&self) -> bool {
        false
    }

    /// The `inline` strategy itself, for a caller that runs the work in place without
    /// boxing it into a [`Work`] ([`inline::Inline::run`]); `None` for every pool.
    fn as_inline(&self) -> Option<&inline::Inline> {
        None
    }
}

/// A snapshot of a pool's counters. Backends fill what they know; zero means "not tracked".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Work items handed to `dispatch`.
    pub dispatched: u64,
    /// Work items whose `run` and `ordered` parts have both finished.
    pub completed: u64,
    /// Items queued but not yet started, now.
    pub queued: u64,
    /// Highest `queued` ever seen.
    pub queued_high_water: u64,
    /// Threads started over the pool's life (on-demand pools grow).
    pub workers_started: u64,
    /// Threads currently running a work item (a blocked item counts as running).
    pub workers_busy: u64,
    /// Work items (run or ordered parts) that panicked; caught by the pool, which carries on.
    pub panics: u64,
}
