//! Synchronisation primitives for the hand-written pools: std normally, loom's under
//! `--cfg loom` so the loom tests explore every interleaving of the real code.
//!
//! Run the models with:
//! `RUSTFLAGS="--cfg loom" cargo test -p strategies --no-default-features --release --test loom`

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
