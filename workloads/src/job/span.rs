//! Where a job's I/O goes and how much of it there is: each clone's region (fio's
//! `file_offset` and `io_size`), how far into the file the job reaches, the largest I/O and
//! the bytes it issues.

use super::{Blocks, Files, JobSpec, Random, RwMode, Sequencer};
use crate::engine::Op;
use crate::steady::SteadyOptions;
use crate::MAX_BIO;

/// The part of a file one clone's I/O covers: `start..start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
}

impl JobSpec {
    /// The directions the job issues.
    pub fn directions(&self) -> impl Iterator<Item = Op> {
        let read = self.rw.is_read().then_some(Op::Read);
        let write = self.rw.is_write().then_some(Op::Write);
        read.into_iter().chain(write)
    }

    /// The smallest I/O of any direction the job issues.
    pub fn min_bs(&self) -> u64 {
        self.directions()
            .map(|op| self.blocks.of(op).min)
            .min()
            .unwrap_or_default()
    }

    /// The largest I/O of any direction the job issues.
    pub fn max_bs(&self) -> u64 {
        self.directions()
            .map(|op| self.blocks.of(op).max)
            .max()
            .unwrap_or_default()
    }

    /// Bios per I/O: btrfs splits I/Os larger than 1 MiB; a job's buffers are as large as
    /// its largest bio.
    pub fn bio_size(&self) -> u64 {
        self.max_bs().min(MAX_BIO)
    }

    /// Clone `jobnum`'s region in a file of `file_size` bytes, as fio's `setup_files` and
    /// `get_start_offset` work it out: `offset + jobnum x offset_increment`, `size` long;
    /// a percentage is of the file's size, and an offset from one is aligned up to the
    /// smallest block.
    pub fn region(&self, jobnum: u32, file_size: u64) -> Region {
        let percent_of = |p: u32| (u128::from(file_size) * u128::from(p) / 100) as u64;
        let increment = self
            .offset_increment_percent
            .map_or(self.offset_increment, percent_of);
        let base = self.offset_percent.map_or(self.offset, percent_of);
        let mut start = base.saturating_add(u64::from(jobnum).saturating_mul(increment));
        let align = self.min_bs().max(1);
        if self.offset_percent.is_some() || self.offset_increment_percent.is_some() {
            start = start.div_ceil(align).saturating_mul(align);
        }
        let len = match self.size_percent {
            Some(p) => {
                let len = percent_of(p).min(file_size.saturating_sub(start));
                len - len % align
            }
            None => self.size,
        };
        Region { start, len }
    }

    /// The bytes of a region the job's I/O can reach: whole blocks of a fixed size, of the
    /// smallest size when sizes vary (every I/O is a multiple of it), all of it when random
    /// offsets are aligned otherwise or sequential ones skip.
    pub fn reach(&self) -> u64 {
        let aligned_otherwise = self.rw.is_random()
            && self
                .directions()
                .any(|op| self.blocks.align(op) != self.blocks.of(op).min);
        if aligned_otherwise || self.seq_skip != 0 {
            return self.size;
        }
        self.directions()
            .map(|op| {
                let min = self.blocks.of(op).min.max(1);
                self.size - self.size % min
            })
            .max()
            .unwrap_or_default()
    }

    /// The end of the last clone's region, when it is not beyond 2^64.
    pub(super) fn last_region_end(&self) -> Option<u64> {
        let clones = u64::from(self.numjobs.saturating_sub(1));
        self.offset
            .checked_add(clones.checked_mul(self.offset_increment)?)?
            .checked_add(self.size)
    }

    /// One past the last byte the job touches, over all its clones: the file and the
    /// checksum store must reach this far.
    pub fn io_end(&self) -> u64 {
        let clones = u64::from(self.numjobs.saturating_sub(1));
        self.offset
            .saturating_add(clones.saturating_mul(self.offset_increment))
            .saturating_add(self.reach())
    }

    /// The bytes one clone issues when it is not time based (for progress; a random job's
    /// I/Os cut short by used blocks make it a little less): a pass over what it reaches
    /// per loop, more passes for a larger `io_size`, fewer bytes for a smaller one or for
    /// `number_ios`.
    pub fn io_bytes(&self) -> u64 {
        let loops = u64::from(self.loops.max(1));
        let per_pass = match self.has_file_set() {
            true => self.pass_size(0),
            false => self.reach(),
        };
        let bytes = match self.io_size {
            None => per_pass.saturating_mul(loops),
            Some(limit) => limit
                .saturating_mul(loops)
                .min(per_pass.saturating_mul(loops).max(limit)),
        };
        match self.number_ios {
            0 => bytes,
            n => bytes.min(n.saturating_mul(loops).saturating_mul(self.max_bs())),
        }
    }

    /// The job that writes `start..end` of this one's file once, sequentially, in the
    /// largest power of two up to a bio that divides it (so every sector is written, as
    /// `start..end` is whole sectors): every option of the I/O pattern at its default, one
    /// clone, the rest of this job's options kept.
    pub fn plain_pass(&self, start: u64, end: u64) -> JobSpec {
        let span = end.saturating_sub(start);
        let bs = (0..=MAX_BIO.trailing_zeros())
            .rev()
            .map(|shift| 1u64 << shift)
            .find(|bs| span.is_multiple_of(*bs))
            .unwrap_or(1);
        JobSpec {
            rw: RwMode::Write,
            seq_skip: 0,
            rand_run: 1,
            sequencer: Sequencer::default(),
            blocks: Blocks::new(bs),
            offset: start,
            size: span,
            size_percent: None,
            io_size: None,
            number_ios: 0,
            loops: 1,
            random: Random::default(),
            offset_percent: None,
            offset_increment: 0,
            offset_increment_percent: None,
            numjobs: 1,
            time_based: false,
            runtime: None,
            steady: SteadyOptions::default(),
            files: Files::default(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(options: &[(&str, &str)]) -> JobSpec {
        JobSpec::with(options).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn regions_follow_fios_offsets_increments_and_percentages() {
        let j = job(&[
            ("size", "1m"),
            ("offset", "64k"),
            ("offset_increment", "2m"),
        ]);
        assert_eq!(
            j.region(0, 0),
            Region {
                start: 64 << 10,
                len: 1 << 20
            }
        );
        assert_eq!(j.region(3, 0).start, (64 << 10) + (6 << 20));
        let mut j = job(&[("bs", "8k")]);
        j.size_percent = Some(50);
        j.offset_percent = Some(10);
        // 10% of 1000k is 100k, aligned up to the 8k block: 104k; 50% is 500k, at most
        // what is left, down to whole blocks: 496k.
        assert_eq!(
            j.region(0, 1000 << 10),
            Region {
                start: 104 << 10,
                len: 496 << 10
            }
        );
        j.offset_percent = Some(90);
        assert_eq!(
            j.region(0, 1000 << 10).len,
            96 << 10,
            "only what is left of the file"
        );
    }

    #[test]
    fn the_reach_is_whole_blocks_unless_offsets_are_finer() {
        assert_eq!(job(&[("size", "100k"), ("bs", "64k")]).reach(), 64 << 10);
        assert_eq!(
            job(&[("size", "100k"), ("bsrange", "8k-64k")]).reach(),
            96 << 10
        );
        let j = job(&[
            ("size", "20k"),
            ("bs", "8k"),
            ("rw", "randread"),
            ("ba", "4k"),
        ]);
        assert_eq!(j.reach(), 20 << 10);
        assert_eq!(
            job(&[("size", "20k"), ("bs", "8k"), ("rw", "read:4k")]).reach(),
            20 << 10
        );
        let j = job(&[("size", "1m"), ("numjobs", "4"), ("offset_increment", "1m")]);
        assert_eq!(j.io_end(), 4 << 20, "every clone's region");
    }

    #[test]
    fn bytes_per_clone_follow_loops_io_size_and_number_ios() {
        let base = [("size", "1m"), ("bs", "4k")];
        let bytes = |extra: &[(&str, &str)]| {
            let mut o = base.to_vec();
            o.extend_from_slice(extra);
            job(&o).io_bytes()
        };
        assert_eq!(bytes(&[]), 1 << 20);
        assert_eq!(bytes(&[("loops", "3")]), 3 << 20);
        assert_eq!(bytes(&[("io_size", "3m")]), 3 << 20);
        assert_eq!(bytes(&[("io_size", "512k")]), 512 << 10);
        assert_eq!(bytes(&[("io_size", "2m"), ("loops", "2")]), 2 << 20);
        assert_eq!(bytes(&[("number_ios", "10")]), 40 << 10);
        assert_eq!(
            job(&[("bs", "4k,2m"), ("rw", "read")]).bio_size(),
            4096,
            "reads only"
        );
        assert_eq!(
            job(&[("bs", "4k,2m"), ("rw", "rw")]).bio_size(),
            1 << 20,
            "1 MiB bios"
        );
    }

    #[test]
    fn a_plain_pass_writes_every_sector_the_job_reaches() {
        let j = job(&[
            ("rw", "randread:4"),
            ("bssplit", "4k/50:64k/50"),
            ("size", "100k"),
            ("offset", "1m"),
            ("numjobs", "2"),
            ("offset_increment", "200k"),
            ("io_size", "10m"),
            ("norandommap", "1"),
        ]);
        let plain = j.plain_pass(j.offset, j.io_end());
        assert_eq!((plain.offset, plain.io_end()), (j.offset, j.io_end()));
        assert_eq!(
            (plain.rw, plain.numjobs, plain.io_size),
            (RwMode::Write, 1, None)
        );
        assert_eq!(
            plain.blocks,
            Blocks::new(4096),
            "300k is whole 4k blocks, not 8k"
        );
        assert!(plain.random.map);
        plain.validate().unwrap();
        let plain = j.plain_pass(1 << 20, 3 << 20);
        assert_eq!((plain.offset, plain.size), (1 << 20, 2 << 20));
        assert_eq!(
            plain.blocks,
            Blocks::new(1 << 20),
            "whole bios where they fit"
        );
    }
}
