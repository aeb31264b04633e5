//! fio's flow control (`flow`, `flow_id`, `flow_sleep`; fio's `flow.c`): the running jobs
//! of one `flow_id` share a count of the I/Os they issued, and each holds back while its
//! own share of that count is above its share of the flow's weights, so their I/Os keep
//! the ratio of their weights. A job joins when it starts and leaves when it ends, taking
//! its I/Os and weight with it, so one left alone is never held back.
//!
//! Unlike fio, a held-back job does not spin: it retries after `flow_sleep` (fio sleeps
//! that long only when it is given), [`DEFAULT_PAUSE`] without it, meanwhile reaping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workloads::job::Timing;

/// How long a held-back job waits before it asks again, unless `flow_sleep` says.
pub const DEFAULT_PAUSE: Duration = Duration::from_micros(100);

/// The flows of a case, by `flow_id`.
#[derive(Default)]
pub struct Flows(Mutex<HashMap<u32, Arc<Flow>>>);

/// One flow's shared counts.
pub struct Flow {
    /// I/Os its jobs issued, plus one (fio's start, so the ratio never divides by 0).
    issued: AtomicU64,
    weight: AtomicU64,
}

/// A job in its flow: its weight and what it issued.
pub struct FlowMember {
    flow: Arc<Flow>,
    weight: u64,
    issued: u64,
    pause: Duration,
}

impl Flows {
    /// The job's place in its flow, once it starts; `None` for a job without a weight.
    pub fn join(&self, timing: &Timing) -> Option<FlowMember> {
        if timing.flow == 0 {
            return None;
        }
        let flow = self
            .0
            .lock()
            .unwrap()
            .entry(timing.flow_id)
            .or_insert_with(|| {
                Arc::new(Flow {
                    issued: AtomicU64::new(1),
                    weight: AtomicU64::new(0),
                })
            })
            .clone();
        let weight = u64::from(timing.flow);
        flow.weight.fetch_add(weight, Ordering::Relaxed);
        Some(FlowMember {
            flow,
            weight,
            issued: 0,
            pause: timing.flow_sleep.unwrap_or(DEFAULT_PAUSE),
        })
    }
}

impl FlowMember {
    /// fio's `flow_threshold_exceeded`: whether the job is ahead of its weight's share of
    /// the flow's I/Os, and must hold back.
    pub fn ahead(&self) -> bool {
        let issued = self.flow.issued.load(Ordering::Relaxed) as f64;
        let weight = self.flow.weight.load(Ordering::Relaxed) as f64;
        self.issued as f64 / issued > self.weight as f64 / weight
    }

    /// Counts one I/O the job issued.
    pub fn issued(&mut self) {
        self.issued += 1;
        self.flow.issued.fetch_add(1, Ordering::Relaxed);
    }

    /// How long to hold back before asking again.
    pub fn pause(&self) -> Duration {
        self.pause
    }
}

impl Drop for FlowMember {
    /// fio's `flow_exit_job`: the job's I/Os and weight leave the flow with it.
    fn drop(&mut self) {
        self.flow.issued.fetch_sub(self.issued, Ordering::Relaxed);
        self.flow.weight.fetch_sub(self.weight, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(flow: u32, id: u32) -> Timing {
        Timing {
            flow,
            flow_id: id,
            ..Timing::default()
        }
    }

    /// Two jobs asking in turn, each issuing whenever it is not ahead: the I/Os keep the
    /// ratio of their weights.
    #[test]
    fn the_jobs_of_a_flow_issue_in_the_ratio_of_their_weights() {
        let flows = Flows::default();
        let mut a = flows.join(&timing(1, 7)).unwrap();
        let mut b = flows.join(&timing(3, 7)).unwrap();
        for _ in 0..4000 {
            for job in [&mut a, &mut b] {
                if !job.ahead() {
                    job.issued();
                }
            }
        }
        let ratio = b.issued as f64 / a.issued as f64;
        assert!((2.9..3.1).contains(&ratio), "{} : {}", a.issued, b.issued);
    }

    #[test]
    fn a_job_left_alone_in_its_flow_is_never_held_back() {
        let flows = Flows::default();
        let mut a = flows.join(&timing(1, 0)).unwrap();
        let mut b = flows.join(&timing(9, 0)).unwrap();
        for _ in 0..100 {
            b.issued();
        }
        drop(b);
        for _ in 0..1000 {
            assert!(!a.ahead());
            a.issued();
        }
        assert!(flows.join(&timing(0, 0)).is_none(), "no weight, no flow");
        // Another flow id counts apart.
        let c = flows.join(&timing(1, 1)).unwrap();
        assert!(!c.ahead());
    }
}
