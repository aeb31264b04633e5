//! fio's deliberate idle time: `startdelay` before a job starts, and `thinktime` between
//! its I/Os (fio's `handle_thinktime`: after every `thinktime_blocks` I/Os, let the I/Os
//! in flight complete, then stall, spinning `thinktime_spin` of it and sleeping the rest).
//! While a job pauses it tells the watchdog so: a long think time is no stall.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use workloads::{JobSpec, ThinkBlocks};

use super::state::{CaseState, JobInput, JobProgress};
use super::POLL;

/// When a job's think times fall due.
pub(super) struct Think {
    every: u32,
    counts: ThinkBlocks,
    time: Duration,
    spin: Duration,
    /// I/Os counted since the last stall.
    count: u32,
}

impl Think {
    /// `None` for a job without a think time: its loop pays nothing for the option.
    pub fn of(job: &JobSpec) -> Option<Think> {
        let t = &job.timing;
        (!t.thinktime.is_zero()).then(|| Think {
            every: t.thinktime_blocks.max(1),
            counts: t.thinktime_blocks_type,
            time: t.thinktime,
            spin: t.spin(),
            count: 0,
        })
    }

    /// A bio was issued (`issued`) or completed.
    pub fn counted(&mut self, issued: bool) {
        if issued == (self.counts == ThinkBlocks::Issue) {
            self.count += 1;
        }
    }

    /// A stall is due: issue nothing more until it is over.
    pub fn due(&self) -> bool {
        self.count >= self.every
    }

    /// Stalls, once the I/Os in flight have completed (`in_pipeline` is 0), for the think
    /// time or until `deadline`, whichever comes first (fio cuts a think time short at the
    /// end of the runtime). Whether it stalled.
    pub fn stall_if_due(
        &mut self,
        in_pipeline: usize,
        deadline: Option<Instant>,
        case: &CaseState,
        progress: &JobProgress,
    ) -> bool {
        if !self.due() || in_pipeline > 0 {
            return false;
        }
        self.count = 0;
        let left = deadline.map_or(self.time, |d| d.saturating_duration_since(Instant::now()));
        pause(self.time.min(left), self.spin, case, progress);
        true
    }
}

/// fio's `startdelay`: the job waits before it starts, and its ramp and runtime count from
/// then, as fio's do.
pub(super) fn delay_start(input: &mut JobInput, case: &CaseState, progress: &JobProgress) {
    let delay = input.job.timing.start_delay(input.seed);
    if delay.is_zero() {
        return;
    }
    pause(delay, Duration::ZERO, case, progress);
    let later = |t: &mut Option<Instant>| *t = t.map(|t| t + delay);
    later(&mut input.deadline);
    later(&mut input.ramp_end);
}

/// Idles for `length`: spins the first `spin` of it, sleeps the rest, in slices short
/// enough to notice an abort. The watchdog sees the job pausing meanwhile.
fn pause(length: Duration, spin: Duration, case: &CaseState, progress: &JobProgress) {
    progress.pausing.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let (spin_end, end) = (start + spin.min(length), start + length);
    while Instant::now() < spin_end && !case.aborted() {
        std::hint::spin_loop();
    }
    loop {
        let now = Instant::now();
        if now >= end || case.aborted() {
            break;
        }
        std::thread::sleep((end - now).min(POLL));
    }
    progress.pausing.store(false, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn think(options: &[(&str, &str)]) -> Option<Think> {
        let mut job = JobSpec::default();
        for (k, v) in options {
            job.set(k, v).unwrap();
        }
        Think::of(&job)
    }

    #[test]
    fn no_think_time_no_thinker() {
        assert!(think(&[("thinktime_blocks", "4")]).is_none());
    }

    #[test]
    fn a_stall_falls_due_after_thinktime_blocks_of_what_is_counted() {
        let mut t = think(&[("thinktime", "1ms"), ("thinktime_blocks", "2")]).unwrap();
        t.counted(true);
        t.counted(true);
        assert!(!t.due(), "completions count by default, as in fio");
        t.counted(false);
        assert!(!t.due());
        t.counted(false);
        assert!(t.due());
        let (case, progress) = (CaseState::default(), JobProgress::default());
        assert!(!t.stall_if_due(1, None, &case, &progress), "I/O in flight");
        let before = Instant::now();
        assert!(t.stall_if_due(0, None, &case, &progress));
        assert!(before.elapsed() >= Duration::from_millis(1));
        assert!(!t.due() && !progress.pausing.load(Ordering::Relaxed));

        let mut t = think(&[("thinktime", "1ms"), ("thinktime_blocks_type", "issue")]).unwrap();
        t.counted(true);
        assert!(t.due());
    }

    #[test]
    fn a_stall_ends_at_the_deadline() {
        let mut t = think(&[("thinktime", "1h")]).unwrap();
        t.counted(false);
        let (case, progress) = (CaseState::default(), JobProgress::default());
        assert!(t.stall_if_due(0, Some(Instant::now()), &case, &progress));
    }
}
