//! Synchronisation primitives for the hand-written pools: std normally, loom's under
//! `--cfg loom` so the loom tests explore every interleaving of the real code.
//!
//! The models sit next to what they model (`mod models` in `tracker.rs`, `ordered.rs` and
//! each hand-written pool; shared pieces in `loom_models.rs`). Run them with:
//! `RUSTFLAGS="--cfg loom" cargo test -p strategies --no-default-features --release --lib --target-dir target/loom`

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
};

#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
};
