//! Rate limiting (fio's `rate`, `rate_iops`): when the next bio of each direction is due.
//! A paced bio's latency counts from its due time, not from when it was issued, so a job
//! that falls behind shows it as latency (no coordinated omission). A think time is not
//! falling behind: the bios it held back count from its end, though the job catches up
//! on the rate after it, as fio's does (fio's `rate_ignore_thinktime=0`).

use std::time::Duration;

use workloads::{JobSpec, Op};

use crate::measure::clock::Stamp;

pub(super) struct Pacer {
    /// Bytes per second, per direction (`Op as usize`); `None`: unlimited.
    limits: [Option<u64>; 2],
    due: [Option<Stamp>; 2],
    bio_size: u64,
    start: Stamp,
    /// When the job last ended a think time: no latency counts from before it.
    resumed: Stamp,
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
            resumed: start,
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

    /// The job ended a think time at `at`.
    pub fn resumed(&mut self, at: Stamp) {
        self.resumed = at;
    }

    /// Where the latency of a bio issued `now` counts from: its due time (`intended`, when
    /// paced), but not before the last think time ended.
    pub fn counts_from(&self, intended: Option<Stamp>, now: Stamp) -> Stamp {
        intended.map_or(now, |t| t.max(self.resumed))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_think_time_is_not_latency_but_the_rate_catches_up() {
        let mut job = JobSpec::default();
        job.set("rate", "4k").unwrap();
        job.set("bs", "4k").unwrap();
        let start = Stamp::now();
        let mut p = Pacer::new(&job, start);
        let Due::Now(first) = p.check(Op::Read, start) else {
            panic!("the first bio is due at once");
        };
        p.issued(Op::Read, first);
        // A 5 s think: the next bio was due 1 s in, and is due at once after it.
        let after = start.after(Duration::from_secs(5));
        p.resumed(after);
        let Due::Now(due) = p.check(Op::Read, after) else {
            panic!("behind the rate: due now");
        };
        assert_eq!(due, Some(start.after(Duration::from_secs(1))));
        assert_eq!(
            p.counts_from(due, after),
            after,
            "not from before the think"
        );
        assert_eq!(p.counts_from(None, after), after);
    }
}
