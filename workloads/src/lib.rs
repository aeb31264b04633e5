//! fio-like workloads: job specs with fio's option names, fio job files, I/O engines behind
//! one ops table (fio's queue / commit / reap), aligned buffers, offset generators, the
//! on-disk checksum store, and facts about the device underneath. Knows nothing about
//! strategies: checksums arrive as bytes.

pub mod buf;
pub mod device;
pub mod engine;
pub mod job;
pub mod jobfile;
pub mod offsets;
pub mod plan;
pub mod steady;
pub mod store;
pub mod target;
pub mod units;
pub mod verify;

pub use buf::AlignedBuf;
pub use device::DeviceInfo;
pub use engine::{Engine, EngineKind, IoDone, IoReq, Op};
pub use job::{CsumName, JobSpec, LogKind, Logs, PerDir, RwMode, ThinkBlocks};
pub use jobfile::JobGroup;
pub use offsets::{Io, IoPattern};
pub use store::CsumStore;

/// Checksums cover 4 KiB sectors (btrfs's sectorsize on 4 KiB-page machines).
pub const SECTOR_SIZE: u64 = 4096;
/// The largest bio: btrfs splits larger I/Os into bios of at most 1 MiB.
pub const MAX_BIO: u64 = 1 << 20;
