//! `tokio-blocking`: tokio's blocking pool; dispatch = `spawn_blocking`. The pool starts a
//! thread whenever an item finds no idle one, up to `max_blocking`, and lets idle threads
//! go after 10 s: under a burst it grows to hundreds of threads.

use std::sync::Arc;

use tokio::runtime::Builder;

use crate::registry::{Descriptor, Knob};
use crate::tokio_rt::{Spawn, TokioRt};

pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "tokio-blocking",
    summary:
        "tokio's blocking pool: dispatch = spawn_blocking, one thread per queued item up to a cap",
    knobs: &[Knob {
        name: "max_blocking",
        default: || "512".to_string(),
        help: "max_blocking_threads; tokio's default 512, so under a burst the pool grows to \
               ~512 threads",
    }],
    build: |knobs| {
        let max_blocking = knobs.count("max_blocking", 1, 4096)?;
        Ok(Arc::new(TokioRt::blocking(max_blocking)))
    },
};

impl TokioRt {
    /// A runtime used only for its blocking pool.
    pub fn blocking(max_blocking: usize) -> Self {
        let name = format!("{}:max_blocking={max_blocking}", DESCRIPTOR.name);
        // A current-thread runtime starts no threads of its own, so every thread counted in
        // `workers_started` is a blocking-pool thread.
        let mut builder = Builder::new_current_thread();
        let builder = builder.max_blocking_threads(max_blocking);
        Self::start(name, builder, "csum-tokio-blocking", Spawn::Blocking)
    }
}
