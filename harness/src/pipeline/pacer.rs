//! Rate limiting (fio's `rate`, `rate_iops`): when the next bio of each direction is due.
//! A paced bio's latency counts from its due time, not from when it was issued, so a job
//! that falls behind shows it as latency (no coordinated omission).

use std::time::Duration;

use workloads::{JobSpec, Op};

use crate::measure::clock::Stamp;

pub(super) struct Pacer {
    /// Bytes per second, per direction (`Op as usize`); `None`: unlimited.
    limits: [Option<u64>; 2],
    due: [Option<Stamp>; 2],
    bio_size: u64,
    start: Stamp,
}

/// When a bio may be issued.
pub(super) enum Due {
    /// Now; with its intended issue time when the direction is paced.
    Now(Option<Stamp>),
    /// Not before this instant.
    At(Stamp),
}

impl Pacer {
    pub fn new(job: &JobSpec, start: Stamp) -> Pacer {
        Pacer {
            limits: [Op::Read, Op::Write].map(|op| job.rate_limit(op)),
            due: [None; 2],
            bio_size: job.bio_size(),
            start,
        }
    }

    /// Whether any direction is paced.
    pub fn paced(&self) -> bool {
        self.limits.iter().any(Option::is_some)
    }

    pub fn check(&self, op: Op, now: Stamp) -> Due {
        let slot = op as usize;
        match self.limits[slot] {
            None => Due::Now(None),
            Some(_) => {
                let due = self.due[slot].unwrap_or(self.start);
                if due > now {
                    Due::At(due)
                } else {
                    Due::Now(Some(due))
                }
            }
        }
    }

    /// A bio of `op` due at `intended` was issued: the next is due one bio's worth of the
    /// rate later.
    pub fn issued(&mut self, op: Op, intended: Option<Stamp>) {
        let slot = op as usize;
        if let (Some(t), Some(rate)) = (intended, self.limits[slot]) {
            self.due[slot] =
                Some(t.after(Duration::from_secs_f64(self.bio_size as f64 / rate as f64)));
        }
    }
}
