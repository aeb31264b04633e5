//! The pipeline being measured (DESIGN.md):
//!
//! ```text
//! write:  fill -> [csum stage] -> submit -> [endio stage: record csums, metadata I/O, wait]
//! read:   submit -> [endio stage: verify every sector against the store]
//! ```
//!
//! Each job has one submitter thread that owns its engine, as a fio job does. Its loop is
//! fio's: take home what the stages finished, issue bios while there is room (submitting
//! them `iodepth_batch_submit` at a time), reap when the queue is full (down to
//! `iodepth_low`, `iodepth_batch_complete_min/max` at a time) or the job is draining (a
//! synchronous engine's I/O completes as it is submitted), and when nothing moved, wait for
//! whatever comes first. Think times (`thinktime`) stall it between steps, once the
//! I/Os in flight are done; a `startdelay` comes before its first step.
//!
//! ```text
//!            issue                      submit               reap
//!   source ─────────────▶ [csum stage] ─────────────▶ engine ─────▶ [endio stage]
//!     ▲      (reads skip the csum stage)                                 │
//!     └──────────────────────── take_home / retire ◀─────────────────────┘
//! ```
//!
//! A job runs one measured pass and, for a write job with fio's `verify=`, a verify phase
//! after it (`Pass::Verify`): the same loop, reading back what the job wrote, verified
//! like any read and left out of the case's figures.
//!
//! With the `inline` strategy both stages run in the submitter, in place. Up to `iodepth`
//! bios are in the pipeline at once, from a pool of that many. Every bio carries its own
//! timestamps; the submitter turns them into stage latencies when the bio retires, into
//! histograms of its own that it hands to the collector at each interval's end
//! ([`crate::measure::HistHandover`]). A bio holds a lock on its sectors from issue to retirement
//! ([`ExtentLocks`]), so no I/O overlaps a write still in flight: what the store records is
//! always the sum of the data that landed.

mod bio;
mod extent;
mod flow;
mod pacer;
mod panic;
mod pools;
mod stages;
mod state;
mod submitter;
mod think;

pub use extent::ExtentLocks;
pub use panic::capture_panic_messages;
pub use pools::{Pools, Topology};
pub use state::{
    CaseState, CloneFile, JobInput, JobOutcome, JobProgress, Mismatch, MismatchKind, Verified,
    DEPTH_LEVELS,
};

use std::sync::Arc;
use std::time::Duration;

use submitter::{Pass, Submitter};

/// How long a stopping job waits for bios still in the pipeline before giving them up.
pub const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// How often blocked waits look at the abort flag.
const POLL: Duration = Duration::from_millis(50);

/// Runs one job to completion on the calling thread.
pub fn run_job(
    mut input: JobInput,
    pools: &Pools,
    case: &Arc<CaseState>,
    progress: &JobProgress,
) -> JobOutcome {
    capture_panic_messages();
    input.flow = case.flows.join(&input.job.timing);
    let exitall = input.job.timing.exitall;
    let verify = input.job.verify_phase().then(|| input.job.verify_pass());
    think::delay_start(&mut input, case, progress);
    let (mut outcome, mut input) =
        run_pass(Submitter::new(input, Pass::Measured, pools, case, progress));
    let stopped = case.aborted() || case.ended_early() || !case.errors().is_empty();
    if let (Some(job), false) = (verify, stopped) {
        (input.job, input.deadline, input.ramp_end) = (job, None, None);
        let (pass, _) = run_pass(Submitter::new(input, Pass::Verify, pools, case, progress));
        outcome.verified = Some(Verified {
            bytes: pass.bytes + outcome.read_back,
            seconds: (pass.end - pass.start).as_secs_f64(),
            during_writes: outcome.read_back,
        });
    }
    if exitall {
        // fio's exitall: this job's end ends its group's others, as a runtime would.
        case.end_early();
    }
    outcome
}

/// One pass of a job: fill, submit while there is room, reap when full or done.
fn run_pass(mut job: Submitter) -> (JobOutcome, JobInput) {
    loop {
        job.note_stop();
        let mut progressed = job.take_home();
        progressed |= job.issue();
        progressed |= job.reap_if_due();
        job.publish();
        progressed |= job.think();
        if job.drained() || (!progressed && !job.wait()) {
            break;
        }
    }
    job.finish()
}
