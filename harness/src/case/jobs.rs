//! A case's job threads: started, waited for, and left behind when they cannot stop.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::pipeline::{self, CaseState, JobInput, JobOutcome, JobProgress, Pools};

/// How long a stopped case waits for its job threads before leaving them behind: longer
/// than a job waits for its own bios to drain.
pub(super) const GIVE_UP: Duration = Duration::from_secs(pipeline::DRAIN_GRACE.as_secs() + 3);

pub(super) struct RunningJobs {
    pub pools: Arc<Pools>,
    pub progress: Arc<Vec<JobProgress>>,
    done: Receiver<(usize, Option<JobOutcome>)>,
    outcomes: Vec<Option<JobOutcome>>,
    finished: usize,
    start: Instant,
}

impl RunningJobs {
    /// One thread per job. They are not scoped: one blocked for good in an I/O that never
    /// returns must not keep the case, or the process, from ending. Each reports its outcome
    /// on a channel.
    pub fn start(inputs: Vec<JobInput>, pools: Pools, case: &Arc<CaseState>) -> RunningJobs {
        let jobs = inputs.len();
        let pools = Arc::new(pools);
        let progress: Arc<Vec<JobProgress>> =
            Arc::new((0..jobs).map(|_| JobProgress::default()).collect());
        let (done_tx, done) = crossbeam_channel::unbounded();
        for (i, input) in inputs.into_iter().enumerate() {
            let (pools, job_case, progress, done) = (
                pools.clone(),
                case.clone(),
                progress.clone(),
                done_tx.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("job{}", input.jobnum))
                .spawn(move || {
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        pipeline::run_job(input, &pools, &job_case, &progress[i])
                    }));
                    if outcome.is_err() {
                        job_case.fail("a job thread panicked (a csumbench bug; see stderr)".into());
                    }
                    let _ = done.send((i, outcome.ok()));
                });
            if let Err(e) = spawned {
                case.fail(format!("cannot start a job thread: {e}"));
                for unstarted in i..jobs {
                    let _ = done_tx.send((unstarted, None));
                }
                break;
            }
        }
        RunningJobs {
            pools,
            progress,
            done,
            outcomes: (0..jobs).map(|_| None).collect(),
            finished: 0,
            start: Instant::now(),
        }
    }

    /// Takes the outcomes of jobs that end before `deadline` (returning early once all have).
    pub fn wait_until(&mut self, deadline: Instant) {
        while !self.all_finished() {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(timeout) {
                Ok((i, outcome)) => {
                    self.outcomes[i] = outcome;
                    self.finished += 1;
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    self.finished = self.outcomes.len();
                    return;
                }
            }
        }
    }

    pub fn all_finished(&self) -> bool {
        self.finished == self.outcomes.len()
    }

    /// Jobs that have not reported.
    pub fn unfinished(&self) -> usize {
        self.outcomes.len() - self.finished
    }

    /// Bytes and bios counted so far, over every job.
    pub fn moved(&self) -> (u64, u64) {
        self.progress.iter().fold((0, 0), |(bytes, bios), p| {
            (
                bytes + p.bytes.load(Ordering::Relaxed),
                bios + p.bios.load(Ordering::Relaxed),
            )
        })
    }

    /// Every job's outcome; a job left behind ends now, with what it still held abandoned.
    pub fn outcomes(&mut self) -> Vec<JobOutcome> {
        let now = Instant::now();
        let start = self.start;
        self.outcomes
            .iter_mut()
            .zip(self.progress.iter())
            .map(|(o, p)| {
                o.take().unwrap_or_else(|| JobOutcome {
                    start,
                    end: now,
                    abandoned: p.in_pipeline.load(Ordering::Relaxed),
                    bytes: p.bytes.load(Ordering::Relaxed),
                    read_back: 0,
                    verified: None,
                    log: None,
                })
            })
            .collect()
    }

    /// Waits, at most [`GIVE_UP`], until every pool has finished what it was given, so that
    /// its counters are final when read (a panicking item is counted by the pool that
    /// catches it, after the item has already told its job it is gone). Not for pools that
    /// still hold work they cannot finish.
    pub fn settle(&self) {
        let pools = self.pools.clone();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new()
            .name("settle".into())
            .spawn(move || {
                for (_, pool) in pools.roles() {
                    pool.quiesce();
                }
                let _ = done_tx.send(());
            });
        if spawned.is_ok() {
            let _ = done_rx.recv_timeout(GIVE_UP);
        }
    }

    /// Shuts the pools down (each quiesces and joins its threads) on a thread of its own,
    /// so that a backend that cannot stop costs the run a grace period, not a hang. With
    /// work still held somewhere (`stuck`), joining would hang: the pools are left alone.
    pub fn shut_down(self, stuck: bool) -> Result<(), String> {
        if stuck {
            std::mem::forget(self.pools);
            return Ok(());
        }
        let name = self.pools.csum.name().to_string();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let pools = self.pools;
        let spawned = std::thread::Builder::new()
            .name("shutdown".into())
            .spawn(move || {
                drop_last(pools);
                let _ = done_tx.send(());
            });
        if spawned.is_err() {
            return Ok(()); // No thread to spare: leave the pools to the process's exit.
        }
        done_rx.recv_timeout(GIVE_UP * 2).map_err(|_| {
            format!(
                "the {name} pools did not shut down within {}s of the case's end \
                 (a backend bug); left behind",
                (GIVE_UP * 2).as_secs()
            )
        })
    }
}

/// Drops the pools once the job threads, which drop their handles as they exit just after
/// reporting, have let go; leaves them be if that takes longer than [`GIVE_UP`].
fn drop_last(mut pools: Arc<Pools>) {
    let since = Instant::now();
    loop {
        match Arc::try_unwrap(pools) {
            Ok(last) => return drop(last),
            Err(shared) if since.elapsed() < GIVE_UP => pools = shared,
            Err(shared) => return std::mem::forget(shared),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
