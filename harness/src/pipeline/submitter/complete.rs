//! What happens once the engine has a bio back: reaping when fio would, endio (in place for
//! the `inline` strategy, else on the endio pool), and retirement.

use workloads::{IoDone, JobSpec, Op};

use super::super::bio::{Bio, FileLock};
use super::{Pass, Submitter};
use crate::measure::clock::Stamp;
use crate::measure::op_index;

/// fio's batching options, settled against the job's depth as fio's init.c settles them.
pub(super) struct Batching {
    /// Commit once this many I/Os are queued (`iodepth_batch_submit`).
    pub submit: usize,
    /// Fewest completions to wait for (`iodepth_batch_complete_min`); 0: poll, never block.
    pub complete_min: usize,
    /// Most completions to handle at once (`iodepth_batch_complete_max`).
    pub complete_max: usize,
    /// A full pipeline drains to this depth before it is filled again (`iodepth_low`).
    pub low: usize,
    /// Reap at every step, full or not (fio's `io_in_polling`: both complete options 0).
    pub polling: bool,
}

impl Batching {
    pub fn of(job: &JobSpec) -> Batching {
        let (b, depth) = (&job.batch, job.iodepth.max(1));
        Batching {
            submit: b.submit_at(depth).max(1) as usize,
            complete_min: b.complete_min as usize,
            complete_max: b.complete_max().max(1) as usize,
            low: b.low_at(depth) as usize,
            polling: b.complete_min == 0 && b.complete_max == 0,
        }
    }

    /// What a wait for completions asks for: one, or none when polling.
    pub fn least_to_wait_for(&self) -> usize {
        usize::from(self.complete_min > 0)
    }
}

impl Submitter<'_> {
    /// Reaps when fio would: when the pipeline is full (at least `iodepth_batch_complete_min`,
    /// and on until it has drained to `iodepth_low`), when nothing more can be issued, at
    /// every step when polling or paced (so that no completion waits behind the pacing).
    /// Completions already reaped are handled in any case, at most
    /// `iodepth_batch_complete_max` at a time. (A synchronous engine's completion is
    /// handled as it is submitted.)
    pub fn reap_if_due(&mut self) -> bool {
        let full = self.in_pipeline >= self.depth;
        let draining = self.source.exhausted || self.stopping_since.is_some();
        let mut progressed = false;
        if self.batch.polling || self.pacer.paced() {
            self.reap(0);
        } else if full || draining {
            let min = self.batch.complete_min.max(1);
            loop {
                self.reap(min.saturating_sub(self.completions.len()));
                let handled = self.complete_ready(self.batch.complete_max);
                progressed |= handled;
                let at_engine = self.input.engine.in_flight() > 0;
                if !(handled && full && at_engine && self.in_pipeline > self.batch.low) {
                    break;
                }
            }
        }
        progressed | self.complete_ready(self.batch.complete_max)
    }

    /// Reaps at least `min` completions (fewer if fewer are in flight; with
    /// `iodepth_batch_complete_min=0`, by polling) into `completions`. Errors stop the case.
    pub(super) fn reap(&mut self, min: usize) {
        if min > 0 {
            // It may block, for good with a lost I/O: the watchdog must see where we are.
            self.publish();
        }
        let (engine, reaped) = (self.input.engine.as_mut(), &mut self.reaped);
        let mut result = Ok(());
        if self.batch.complete_min == 0 && min > 0 {
            while result.is_ok() && reaped.len() < min && engine.in_flight() > 0 {
                result = engine.reap(0, reaped);
            }
        } else if min > 0 || engine.in_flight() > 0 {
            result = engine.reap(min, reaped);
        }
        if let Err(e) = result {
            let label = self.input.files_label();
            self.case
                .fail(format!("reaping I/O on {label} failed: {e}"));
        }
        // In order; a drain costs more than the move of the one there usually is.
        if self.reaped.len() == 1 {
            self.completions.extend(self.reaped.pop());
        } else {
            self.completions.extend(self.reaped.drain(..));
        }
    }

    /// Handles up to `most` reaped completions, all done at one clock reading; whether there
    /// were any.
    pub(super) fn complete_ready(&mut self, most: usize) -> bool {
        if self.completions.is_empty() {
            return false;
        }
        let at = self.clock();
        // Inline endio runs one completion after another: each starts when the one before
        // it ends.
        let mut endio_from = at;
        for _ in 0..most {
            let Some(done) = self.completions.pop_front() else {
                break;
            };
            endio_from = self.completed(done, at, endio_from);
        }
        true
    }

    /// One I/O came back from the engine at `at`: on to endio, or the case fails. Returns
    /// when the next inline endio may start.
    fn completed(&mut self, done: IoDone, at: Stamp, endio_from: Stamp) -> Stamp {
        let mut bio = self.at_engine.take(done.req.tag);
        bio.io_done = at;
        bio.buf = Some(done.req.buf);
        self.io_completions += 1;
        let end = bio.offset + bio.data().len() as u64;
        let data_end = self.input.files[bio.file].data_end;
        let result = match done.result {
            // A read that runs off the end of a truncated file: verification reports the
            // sectors that are not there.
            Err(e)
                if bio.op == Op::Read
                    && e.kind() == std::io::ErrorKind::UnexpectedEof
                    && end > data_end =>
            {
                bio.readable = data_end.saturating_sub(bio.offset);
                Ok(())
            }
            r => r,
        };
        match result {
            Ok(()) => {
                bio.endio_queued = at;
                return self.endio(bio, endio_from);
            }
            Err(e) => {
                if let Some(overlap) = bio.overlap.take() {
                    overlap.finish_into(&mut bio);
                }
                let what = if bio.op == Op::Write { "write" } else { "read" };
                self.case.fail(format!(
                    "{what} error on {} at offset {} (strategy {}): {e}",
                    self.input.files[bio.file].label, bio.offset, self.ctx.strategy
                ));
                let lock = bio.lock.take();
                self.give_up(lock, Some(bio));
            }
        }
        endio_from
    }

    /// Endio in place, starting at `from`, and the bio retires; or on the endio pool.
    fn endio(&mut self, mut bio: Box<Bio>, from: Stamp) -> Stamp {
        let Some(inline) = self.endio_here else {
            self.away += 1;
            self.pools.endio.dispatch(self.ctx.endio_work(bio));
            return from;
        };
        let (ctx, inject) = (&self.ctx, self.case.injects_panic());
        match inline.run(|| ctx.endio(&mut bio, from, inject)) {
            Some(()) => {
                let end = bio.endio_end;
                self.retire(bio);
                end
            }
            None => {
                self.ctx.panicked("endio");
                let lock = bio.lock.take();
                self.give_up(lock, Some(bio));
                self.clock()
            }
        }
    }

    /// A bio that went all the way: counted (after the ramp), back to the pool.
    pub(super) fn retire(&mut self, mut bio: Box<Bio>) {
        if bio.read_back {
            self.read_back += bio.data().len() as u64;
        } else if self.ramp_end.is_none_or(|r| bio.endio_end >= r) {
            if self.pass == Pass::Measured {
                bio.record_into(&mut self.hists);
            }
            if let Some(log) = &mut self.log {
                log.record(bio.log_sample());
            }
            let (bytes, bios) = &mut self.moved[op_index(bio.op)];
            *bytes += bio.data().len() as u64;
            *bios += 1;
        }
        if let Some(think) = &mut self.think {
            think.counted(false);
        }
        let (lock, op, file) = (bio.lock.take(), bio.op, bio.file);
        self.give_up(lock, Some(bio));
        if op == Op::Write {
            self.count_write(file);
        }
    }

    /// A bio leaves the pipeline, done or not: its lock is released and it goes back to the
    /// pool, with a new buffer if its own went elsewhere (or a new bio if it is lost).
    pub(super) fn give_up(&mut self, lock: Option<FileLock>, bio: Option<Box<Bio>>) {
        if let Some(FileLock { file, lock }) = lock {
            let extents = self.input.files[file].extents.as_ref();
            extents.expect("a lock from the file's locks").unlock(lock);
        }
        let bio = match bio {
            Some(mut bio) if bio.buf.is_none() => {
                bio.buf = Bio::new(self.bio_size).buf.take();
                bio
            }
            Some(bio) => bio,
            None => Bio::new(self.bio_size),
        };
        self.free.push(bio);
        self.in_pipeline -= 1;
    }

    /// fio's `fsync=N`: an fsync after every N writes, of the file the last one went to.
    fn count_write(&mut self, file: usize) {
        let every = self.input.job.fsync;
        if every == 0 {
            return;
        }
        self.writes_since_fsync += 1;
        if self.writes_since_fsync >= every {
            self.writes_since_fsync = 0;
            if let Err(e) = self.progress.sync(self.input.engine.as_mut(), file) {
                let label = &self.input.files[file].label;
                self.case.fail(format!("fsync of {label} failed: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batching(options: &[(&str, &str)]) -> Batching {
        let mut job = JobSpec::default();
        job.set("iodepth", "32").unwrap();
        for (k, v) in options {
            job.set(k, v).unwrap();
        }
        Batching::of(&job)
    }

    #[test]
    fn fios_defaults_one_at_a_time_and_a_full_queue() {
        let b = batching(&[]);
        assert_eq!(
            (b.submit, b.complete_min, b.complete_max, b.low),
            (1, 1, 1, 32)
        );
        assert!(!b.polling);
        assert_eq!(b.least_to_wait_for(), 1);
    }

    #[test]
    fn options_settle_against_the_depth_as_fios_init_does() {
        let b = batching(&[
            ("iodepth_batch_submit", "0"),
            ("iodepth_batch_complete_min", "8"),
            ("iodepth_batch_complete_max", "4"),
            ("iodepth_low", "40"),
        ]);
        assert_eq!(
            (b.submit, b.complete_min, b.complete_max, b.low),
            (32, 8, 8, 32)
        );
        let b = batching(&[
            ("iodepth_batch_complete_min", "0"),
            ("iodepth_batch_complete_max", "0"),
        ]);
        assert!(b.polling && b.least_to_wait_for() == 0);
        assert_eq!(b.complete_max, 1, "fio's getevents takes at least one");
        let b = batching(&[("iodepth_batch_complete_min", "0")]);
        assert!(b.polling, "max defaults to 0 as well");
        let b = batching(&[
            ("iodepth_batch_complete_min", "0"),
            ("iodepth_batch_complete_max", "4"),
        ]);
        assert!(
            !b.polling && b.least_to_wait_for() == 0,
            "reaps when full, never waits"
        );
    }
}
