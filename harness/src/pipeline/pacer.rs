//! Rate limiting (fio's `rate`, `rate_iops`, `rate_process`): when the next bio of each
//! direction is due: evenly, or with exponential gaps of the rate's mean (poisson).
//! A paced bio's latency counts from its due time, not from when it was issued, so a job
//! that falls behind shows it as latency (no coordinated omission). A think time is not
//! falling behind: the bios it held back count from its end, though the job catches up
//! on the rate after it, as fio's does (fio's `rate_ignore_thinktime=0`).

use std::time::Duration;

use workloads::job::RateProcess;
use workloads::{JobSpec, Op};

use crate::measure::clock::Stamp;
use crate::stats::Rng;

pub(super) struct Pacer {
    /// Bytes per second, per direction (`Op as usize`); `None`: unlimited.
    limits: [Option<u64>; 2],
    due: [Option<Stamp>; 2],
    bio_size: u64,
    process: RateProcess,
    /// Draws poisson gaps: seeded by the job, so a run repeats its spacing.
    rng: Rng,
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
    pub fn new(job: &JobSpec, start: Stamp, seed: u64) -> Pacer {
        Pacer {
            limits: [Op::Read, Op::Write].map(|op| job.rate_limit(op)),
            due: [None; 2],
            bio_size: job.bio_size(),
            process: job.timing.rate_process,
            rng: Rng::new(seed),
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
    /// rate later (linear), or after an exponential gap of that mean (poisson, fio's
    /// `-ln(U)` times the mean).
    pub fn issued(&mut self, op: Op, intended: Option<Stamp>) {
        let slot = op as usize;
        if let (Some(t), Some(rate)) = (intended, self.limits[slot]) {
            let mean = self.bio_size as f64 / rate as f64;
            let gap = match self.process {
                RateProcess::Linear => mean,
                RateProcess::Poisson => mean * -self.unit_open_below().ln(),
            };
            self.due[slot] = Some(t.after(Duration::from_secs_f64(gap)));
        }
    }

    /// Uniform in (0, 1]: its log is finite.
    fn unit_open_below(&mut self) -> f64 {
        1.0 - (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// fio's `rate_min`: once the job has settled (2 s, as fio allows), each direction with a
/// floor must move at least that many bytes a second over every rate cycle (fio's
/// `ratecycle`, 1 s), or the job fails.
pub(super) struct MinRate {
    floors: [Option<u64>; 2],
    start: Stamp,
    /// The end of the settle, where the first cycle starts.
    settled: Stamp,
    cycle_start: Stamp,
    bytes_at_start: [u64; 2],
}

const SETTLE: Duration = Duration::from_secs(2);
const RATE_CYCLE: Duration = Duration::from_secs(1);

impl MinRate {
    /// The floors of `job`, measured from `start` (after any ramp); `None` without one.
    pub fn of(job: &JobSpec, start: Stamp) -> Option<MinRate> {
        let floors = [Op::Read, Op::Write].map(|op| Some(job.timing.rate_min.get(op)));
        let floors = floors.map(|f| f.filter(|&b| b > 0));
        floors.iter().any(Option::is_some).then(|| MinRate {
            floors,
            start,
            settled: start.after(SETTLE),
            cycle_start: start.after(SETTLE),
            bytes_at_start: [0; 2],
        })
    }

    /// Checks at `now`, with `moved` bytes (read, write) so far: the direction that fell
    /// below its floor over the cycle just ended, and what it moved.
    pub fn check(&mut self, now: Stamp, moved: [u64; 2]) -> Result<(), String> {
        if now < self.settled {
            // The first cycle starts at the settle's end, from what had moved by then.
            self.bytes_at_start = moved;
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.cycle_start);
        if elapsed < RATE_CYCLE {
            return Ok(());
        }
        let cycle = (self.cycle_start, self.bytes_at_start);
        (self.cycle_start, self.bytes_at_start) = (now, moved);
        for (i, (op, floor)) in [Op::Read, Op::Write].iter().zip(self.floors).enumerate() {
            let Some(floor) = floor else { continue };
            let got = (moved[i] - cycle.1[i]) as f64 / elapsed.as_secs_f64();
            if got < floor as f64 {
                return Err(format!(
                    "rate_min: the {} rate fell below {}/s: {}/s over the {:.1}s from {:.1}s",
                    if *op == Op::Read { "read" } else { "write" },
                    workloads::units::format_size_approx(floor),
                    workloads::units::format_size_approx(got as u64),
                    elapsed.as_secs_f64(),
                    cycle.0.saturating_duration_since(self.start).as_secs_f64(),
                ));
            }
        }
        Ok(())
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
        let mut p = Pacer::new(&job, start, 1);
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

    #[test]
    fn poisson_gaps_average_the_rate_and_vary() {
        let mut job = JobSpec::default();
        for (k, v) in [("rate", "4m"), ("bs", "4k"), ("rate_process", "poisson")] {
            job.set(k, v).unwrap();
        }
        let start = Stamp::now();
        let mut p = Pacer::new(&job, start, 7);
        let mut at = start;
        let mut gaps = Vec::new();
        for _ in 0..20_000 {
            p.issued(Op::Write, Some(at));
            let Due::At(next) = p.check(Op::Write, at) else {
                continue;
            };
            gaps.push(next.nanos_since(at) as f64 / 1e9);
            at = next;
        }
        // 4 KiB at 4 MiB/s: a mean gap of 1/1024 s; exponential: as spread as it is long.
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((mean * 1024.0 - 1.0).abs() < 0.05, "mean gap {mean}");
        assert!((sd / mean - 1.0).abs() < 0.1, "cv {}", sd / mean);
    }

    #[test]
    fn a_direction_below_its_floor_after_the_settle_fails_the_job() {
        let mut job = JobSpec::default();
        job.set("rw", "randrw").unwrap();
        job.set("rate_min", "1m,0").unwrap();
        let start = Stamp::now();
        let mut m = MinRate::of(&job, start).unwrap();
        let at = |s: f64| start.after(Duration::from_secs_f64(s));
        // Nothing moves in the settle: no verdict yet.
        assert_eq!(m.check(at(1.0), [0, 0]), Ok(()));
        assert_eq!(m.check(at(2.0), [0, 0]), Ok(()));
        // 2 MiB of reads in the first cycle: above; writes have no floor.
        assert_eq!(m.check(at(3.0), [2 << 20, 0]), Ok(()));
        // 512 KiB in the next: below 1 MiB/s.
        let e = m.check(at(4.0), [(2 << 20) + (512 << 10), 0]).unwrap_err();
        assert!(e.contains("read rate fell below 1MiB/s: 512KiB/s"), "{e}");
        assert!(MinRate::of(&JobSpec::default(), start).is_none());
    }
}
