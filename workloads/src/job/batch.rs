//! fio's batching options, `iodepth_batch_submit`, `iodepth_batch_complete_min/max` and
//! `iodepth_low`, with fio's defaults and the way fio settles them against `iodepth`
//! (init.c, `fixup_options`). Deciding the batches is the pipeline's job; engines take any
//! number of queued I/Os at one `commit` and hand back everything completed at `reap`.

use serde::Serialize;

/// The batching options as given (0 where fio reads 0 as "the default").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Batch {
    /// I/Os submitted at once; 0: `iodepth`.
    pub submit: u32,
    /// Fewest completions to wait for at once; 0: poll, never wait.
    pub complete_min: u32,
    /// Most completions to take at once; 0 (or below `complete_min`): `complete_min`.
    pub complete_max: u32,
    /// Depth to drain to before filling the queue again; 0: `iodepth`.
    pub low: u32,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            submit: 1,
            complete_min: 1,
            complete_max: 0,
            low: 0,
        }
    }
}

impl Batch {
    /// I/Os to submit at once at this depth: 0 or more than the depth is the depth.
    pub fn submit_at(&self, iodepth: u32) -> u32 {
        match self.submit {
            0 => iodepth,
            n => n.min(iodepth),
        }
    }

    /// The most completions to take at once.
    pub fn complete_max(&self) -> u32 {
        self.complete_max.max(self.complete_min)
    }

    /// The low-water mark at this depth: 0 or more than the depth is the depth.
    pub fn low_at(&self, iodepth: u32) -> u32 {
        match self.low {
            0 => iodepth,
            n => n.min(iodepth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fios_defaults_and_fixups() {
        let b = Batch::default();
        assert_eq!(
            (b.submit_at(32), b.complete_min, b.complete_max()),
            (1, 1, 1)
        );
        assert_eq!(b.low_at(32), 32, "keep the queue full");
        let b = Batch {
            submit: 0,
            complete_min: 4,
            complete_max: 2,
            low: 64,
        };
        assert_eq!(b.submit_at(16), 16, "0 is iodepth");
        assert_eq!(b.complete_max(), 4, "max below min is min");
        assert_eq!(b.low_at(16), 16, "above iodepth is iodepth");
        let b = Batch {
            submit: 64,
            complete_min: 0,
            complete_max: 16,
            low: 4,
        };
        assert_eq!(
            (b.submit_at(16), b.complete_max(), b.low_at(16)),
            (16, 16, 4)
        );
    }
}
