//! The I/Os a job issues, in order: [`IoPattern`] follows fio's own offset, size and
//! direction logic (`io_u.c`: `get_next_offset`, `get_next_buflen`; `backend.c`:
//! `keep_running`), option by option:
//!
//! - a *pass* covers the job's region once: sequential I/O from the region's start (one
//!   position per direction, so a mixed job's reads and writes each go on from their own),
//!   `rw=read:8k` skipping after each I/O (negative: backwards), wrapping as fio wraps;
//!   random I/O visits each block once per pass (fio's random map) unless `norandommap` or
//!   a non-uniform `random_distribution` (zipf, pareto, normal, zoned, zoned_abs), whose
//!   offsets repeat; `percentage_random` mixes in sequential I/O, `rw=randread:N` keeps N
//!   I/Os per random offset (`rw_sequencer`);
//! - block sizes per direction: `bs`, `bsrange` and `bssplit` drawn as fio draws them,
//!   `blockalign` for random offsets; a random I/O that would overlap used blocks is cut
//!   short, as fio cuts it;
//! - passes: `loops` of them, or as many as `io_size` needs, each stopped by `io_size` /
//!   `size` times `loops` and `number_ios` times `loops`; endless when `time_based`; with
//!   `randrepeat` (or a `randseed`) every pass repeats the same sequence, as in fio.
//!
//! What is not fio's: the random numbers (csumbench draws its own, so a random pass covers
//! the same blocks in another order), and an I/O never runs past the region's end (fio lets
//! a fixed-size one run into a larger file).

mod files;
mod limits;
mod random;

use crate::engine::Op;
use crate::job::{mix64, BlockSize, Distribution, JobSpec, Sequencer, Split, Zone};
use limits::Limits;
use random::{Coverage, Hot, Permutation, Rng};

pub use files::{ClonePattern, FileSet};

/// One I/O: where, how long, which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Io {
    pub offset: u64,
    pub len: u64,
    pub op: Op,
}

/// The I/Os of one clone of a job, in the order it issues them.
pub struct IoPattern {
    plan: Plan,
    rng: Streams,
    seed: u64,
    pass: Pass,
    /// Between two passes (and before the first).
    between: bool,
    limits: Limits,
    /// The last pass ended at the end of the region (not at a limit).
    region_done: bool,
    finished: bool,
}

/// What the job asks, worked out once.
struct Plan {
    /// The region: `start..start + len` of a file of `file_size` bytes.
    start: u64,
    len: u64,
    file_size: u64,
    dirs: [Dir; 2],
    random: bool,
    read_percent: u64,
    time_based: bool,
    /// Every pass repeats the same random sequence.
    repeatable: bool,
    seq_skip: i64,
    rand_run: u32,
    sequencer: Sequencer,
    pick: Pick,
    percentage: [u64; 2],
}

/// One direction: its block sizes, random alignment and number of random blocks.
struct Dir {
    min: u64,
    max: u64,
    split: Vec<Split>,
    align: u64,
    /// fio's `last_block`: how many aligned random offsets the region has.
    blocks: u64,
    /// The cumulative zones of `zoned`/`zoned_abs`, by access percentage.
    zones: Vec<ZoneIndex>,
}

/// A zone's bounds, for the accesses that fall in it: percentages of the region for
/// `zoned`, bytes for `zoned_abs`.
#[derive(Clone, Copy)]
struct ZoneIndex {
    from: u64,
    to: u64,
    absolute: bool,
}

/// How random offsets are picked.
enum Pick {
    /// Each unit of `unit` bytes once per pass, in a permuted order; `marks` when an I/O may
    /// cover several units (fio's random map) or `lfsr` (never the same unit twice).
    Permuted { unit: u64, units: u64, marks: bool },
    /// Uniform, with repeats (`norandommap`).
    Uniform,
    /// fio's zipf, pareto or normal.
    Skewed(Hot),
    /// fio's zoned and zoned_abs.
    Zoned,
}

/// The generators, one per use, as fio keeps them (so one use does not shift another).
struct Streams {
    offset: Rng,
    sizes: [Rng; 2],
    mix: Rng,
    sequential: [Rng; 2],
    zone: Rng,
}

impl Streams {
    fn new(seed: u64) -> Streams {
        let rng = |n: u64| Rng::new(seed ^ mix64(n));
        Streams {
            offset: rng(1),
            sizes: [rng(2), rng(3)],
            mix: rng(4),
            sequential: [rng(5), rng(6)],
            zone: rng(7),
        }
    }
}

/// Where a pass stands: each direction's position (fio's `last_pos`, `last_start`), the
/// random order and what it has used.
struct Pass {
    last_pos: [u64; 2],
    last_start: [Option<u64>; 2],
    order: Option<Permutation>,
    next: u64,
    used: Option<Coverage>,
    /// fio's `ddir_seq_nr` countdown: 1 at first, so the first I/O draws its offset.
    run_left: u32,
    ios: u64,
}

impl IoPattern {
    /// The I/Os of clone `jobnum` of `job` on a file of `file_size` bytes (percentages are of
    /// it; a fresh file is as long as the region), drawn from `seed`.
    pub fn new(job: &JobSpec, jobnum: u32, file_size: u64, seed: u64) -> IoPattern {
        let mut rng = Streams::new(seed);
        let plan = Plan::new(job, jobnum, file_size, &mut rng.offset);
        IoPattern {
            pass: Pass::empty(),
            between: true,
            limits: Limits::new(job, plan.len),
            region_done: false,
            finished: false,
            plan,
            rng,
            seed,
        }
    }

    /// Makes a pattern that has ended good for one more pass (fio's `fio_file_reset`, for
    /// one file of several), counting afresh; the random sequence goes on from where it was
    /// unless the job repeats it.
    fn rewind(&mut self) {
        (self.between, self.finished, self.region_done) = (true, false, false);
        self.limits.restart();
    }

    fn start_pass(&mut self) {
        // fio re-seeds at each new loop when the sequence is repeatable; a time-based job
        // wraps within its run and goes on drawing.
        if self.plan.repeatable && !self.plan.time_based {
            self.rng = Streams::new(self.seed);
        }
        // fio counts I/Os per random offset across loops (`td->ddir_seq_nr`).
        let run_left = self.pass.run_left;
        self.pass = self.plan.new_pass(&mut self.rng.offset);
        self.pass.run_left = run_left;
    }
}

impl Iterator for IoPattern {
    type Item = Io;

    fn next(&mut self) -> Option<Io> {
        while !self.finished {
            if self.between {
                if !self.limits.keep_running(self.region_done) {
                    break;
                }
                self.start_pass();
                self.between = false;
            }
            if self.limits.reached() {
                break;
            }
            let op = self.plan.direction(&mut self.rng.mix);
            match self.plan.next_io(&mut self.pass, &mut self.rng, op) {
                Some(io) => {
                    self.limits.count(io.len);
                    self.pass.ios += 1;
                    return Some(io);
                }
                // A pass that issued nothing would be followed by another like it.
                None if self.pass.ios == 0 => break,
                None => (self.between, self.region_done) = (true, true),
            }
        }
        self.finished = true;
        None
    }
}

impl Pass {
    fn empty() -> Pass {
        Pass {
            last_pos: [0; 2],
            last_start: [None; 2],
            order: None,
            next: 0,
            used: None,
            run_left: 1,
            ios: 0,
        }
    }
}

impl Plan {
    fn new(job: &JobSpec, jobnum: u32, file_size: u64, rng: &mut Rng) -> Plan {
        let region = job.region(jobnum, file_size);
        let file_size = file_size.max(region.start + region.len);
        let reach = region.len.min(file_size - region.start);
        let dirs = [Op::Read, Op::Write].map(|op| Dir::new(job, op, reach));
        let random = job.rw.is_random();
        let pick = Pick::new(job, &dirs, reach, rng);
        Plan {
            start: region.start,
            len: region.len,
            file_size,
            random,
            read_percent: u64::from(job.read_percent().min(100)),
            time_based: job.time_based,
            repeatable: job.randrepeat || job.randseed.is_some(),
            seq_skip: job.seq_skip,
            rand_run: job.rand_run.max(1),
            sequencer: job.sequencer,
            pick,
            percentage: [job.random.percentage.read, job.random.percentage.write].map(u64::from),
            dirs,
        }
    }

    fn new_pass(&self, rng: &mut Rng) -> Pass {
        let mut pass = Pass::empty();
        pass.last_pos = [self.start; 2];
        if let Pick::Permuted { units, marks, .. } = self.pick {
            pass.order = Some(Permutation::new(units, (rng.next() << 32) | rng.next()));
            pass.used = marks.then(|| Coverage::new(units));
        }
        pass
    }

    /// Each I/O's direction: `Read` for `read_percent` of them, each drawn on its own (fio
    /// alternates runs of one direction instead; the proportion is the same).
    fn direction(&self, rng: &mut Rng) -> Op {
        match self.read_percent {
            100 => Op::Read,
            0 => Op::Write,
            p if rng.between(1, 100) <= p => Op::Read,
            _ => Op::Write,
        }
    }

    /// fio's `fill_io_u` for one I/O of `op`: its offset, size and mark in the map; `None`
    /// once the pass has nowhere left to go.
    fn next_io(&self, pass: &mut Pass, rng: &mut Streams, op: Op) -> Option<Io> {
        let (relative, random) = self.next_offset(pass, rng, op)?;
        if relative >= self.len {
            return None;
        }
        let offset = self.start + relative;
        if offset >= self.file_size {
            return None;
        }
        let mut len = self.next_len(&mut rng.sizes[op as usize], op, offset)?;
        if let (true, Some(used), Pick::Permuted { unit, .. }) =
            (random, &mut pass.used, &self.pick)
        {
            let marked = used.mark(relative / unit, len.div_ceil(*unit));
            len = len.min(marked * unit);
        }
        let d = op as usize;
        pass.last_start[d] = Some(offset);
        pass.last_pos[d] = offset + len;
        Some(Io { offset, len, op })
    }

    /// fio's `get_next_offset` / `get_next_block`: where the next I/O goes, relative to the
    /// region, and whether it was drawn at random (only those are marked used).
    fn next_offset(&self, pass: &mut Pass, rng: &mut Streams, op: Op) -> Option<(u64, bool)> {
        let d = op as usize;
        pass.run_left -= 1;
        let fresh = pass.run_left == 0;
        if fresh {
            pass.run_left = self.rand_run;
        }
        if !self.random {
            return self.sequential(pass, op).map(|o| (o, false));
        }
        if !fresh {
            return match self.sequencer {
                Sequencer::Sequential => self
                    .sequential(pass, op)
                    .or_else(|| self.random_block(pass, rng, op))
                    .map(|o| (o, false)),
                Sequencer::Identical => {
                    Some((pass.last_start[d].map_or(0, |s| s - self.start), false))
                }
            };
        }
        let percent = self.percentage[d];
        if percent == 100 || rng.sequential[d].between(1, 100) <= percent {
            return self.random_block(pass, rng, op).map(|o| (o, true));
        }
        self.sequential(pass, op)
            .map(|o| (o, false))
            .or_else(|| self.random_block(pass, rng, op).map(|o| (o, true)))
    }

    /// fio's `get_next_seq_offset`, wrap-arounds and all, relative to the region.
    fn sequential(&self, pass: &mut Pass, op: Op) -> Option<u64> {
        let d = op as usize;
        let (start, len, size, skip) = (self.start, self.len, self.file_size, self.seq_skip);
        if self.time_based && pass.last_pos[d] >= len + start {
            pass.last_pos[d] = start;
        }
        if pass.last_pos[d] >= size {
            return None;
        }
        let end = if size > len { len } else { size };
        // fio rewinds a backwards job that is back at the region's start to its end.
        if pass.last_pos[d] == start && start != 0 && skip < 0 {
            pass.last_pos[d] = end;
        }
        let mut pos = pass.last_pos[d] - start;
        if pos != 0 && skip != 0 {
            pos = pos.wrapping_add_signed(skip);
            if pos >= size {
                pos = match skip > 0 {
                    true => start,
                    false => end.wrapping_add_signed(skip),
                };
            }
        }
        Some(pos)
    }

    /// fio's `get_next_rand_offset`: a random offset by the job's distribution, relative to
    /// the region; `None` when a pass of the random map has used every block.
    fn random_block(&self, pass: &mut Pass, rng: &mut Streams, op: Op) -> Option<u64> {
        let dir = &self.dirs[op as usize];
        match &self.pick {
            Pick::Permuted { unit, units, .. } => {
                let order = pass.order.as_ref()?;
                while pass.next < *units {
                    let at = order.at(pass.next) * unit;
                    pass.next += 1;
                    let aligned = at.is_multiple_of(dir.align);
                    let free = pass.used.as_ref().is_none_or(|u| !u.is_used(at / unit));
                    if aligned && free {
                        return Some(at);
                    }
                }
                None
            }
            Pick::Uniform => Some(rng.offset.below(dir.blocks) * dir.align),
            Pick::Skewed(hot) => Some(hot.next(&mut rng.offset) * dir.align),
            Pick::Zoned => self.zoned(dir, rng),
        }
    }

    /// fio's zoned distributions: a zone by its share of accesses, then a uniform block in
    /// it.
    fn zoned(&self, dir: &Dir, rng: &mut Streams) -> Option<u64> {
        let zone = dir.zones[rng.zone.between(1, 100) as usize - 1];
        let (first, count) = match zone.absolute {
            true => (zone.from / dir.align, (zone.to - zone.from) / dir.align),
            false => (
                zone.from * dir.blocks / 100,
                dir.blocks * (zone.to - zone.from) / 100,
            ),
        };
        Some((first + rng.offset.below(count)) * dir.align)
    }

    /// fio's `get_next_buflen`: the I/O's size, drawn from the direction's sizes so that it
    /// fits in the region; `None` when not even the smallest fits.
    fn next_len(&self, rng: &mut Rng, op: Op, offset: u64) -> Option<u64> {
        let dir = &self.dirs[op as usize];
        let fits = |len: u64| offset + len <= self.start + self.len;
        if !fits(dir.min) {
            return None;
        }
        if dir.min == dir.max {
            return Some(dir.min);
        }
        // fio draws until one fits; give up on the drawing after many tries, with the
        // smallest size, which does.
        for _ in 0..1000 {
            let len = dir.draw(rng, fits);
            if fits(len) {
                return Some(len);
            }
        }
        Some(dir.min)
    }
}

impl Dir {
    fn new(job: &JobSpec, op: Op, reach: u64) -> Dir {
        let BlockSize { min, max, split } = job.blocks.of(op);
        // fio keeps blockalign for random jobs only (fixup_options).
        let align = match job.rw.is_random() {
            true => job.blocks.align(op),
            false => min,
        };
        let blocks = reach.saturating_sub(min.saturating_sub(align)) / align.max(1);
        let zones = match job.random.distribution.zones(op) {
            Some((zones, absolute)) => zone_index(zones, absolute),
            None => Vec::new(),
        };
        Dir {
            min,
            max,
            split: split.to_vec(),
            align: align.max(1),
            blocks,
            zones,
        }
    }

    /// A size between `min` and `max`, as fio draws it: from the split when there is one
    /// (the first, in ascending share, whose cumulative share reaches the draw and which
    /// fits), else
    /// `min + max * r` clamped to `max`; rounded down to a multiple of `min`.
    fn draw(&self, rng: &mut Rng, fits: impl Fn(u64) -> bool) -> u64 {
        let r = rng.next();
        let len = match self.split.is_empty() {
            true => {
                self.min + (self.max as f64 * (r as f64 / (random::RAND_MAX as f64 + 1.0))) as u64
            }
            false => {
                let mut cumulative = 0u64;
                let mut len = self.min;
                for s in self.split.iter().filter(|s| s.percent > 0) {
                    len = s.bs;
                    cumulative += u64::from(s.percent);
                    if r / cumulative <= random::RAND_MAX / 100 && fits(len) {
                        break;
                    }
                }
                len
            }
        };
        (len - len % self.min).min(self.max)
    }
}

/// fio's `__td_zone_gen_index`: for each access percentage 1 to 100, its zone's bounds.
fn zone_index(zones: &[Zone], absolute: bool) -> Vec<ZoneIndex> {
    let mut index = Vec::with_capacity(100);
    let mut from = 0;
    for zone in zones {
        let to = from + zone.size;
        index.extend((0..zone.access).map(|_| ZoneIndex { from, to, absolute }));
        from = to;
    }
    index.resize(
        100,
        ZoneIndex {
            from: 0,
            to: 0,
            absolute,
        },
    );
    index
}

impl Pick {
    fn new(job: &JobSpec, dirs: &[Dir; 2], reach: u64, rng: &mut Rng) -> Pick {
        let used: Vec<&Dir> = job.directions().map(|op| &dirs[op as usize]).collect();
        let unit = used.iter().map(|d| d.min).min().unwrap_or(1).max(1);
        let random = &job.random;
        // fio turns the map off for any blockalign other than the block size.
        let map = random.uses_map() && used.iter().all(|d| d.align == d.min);
        match &random.distribution {
            Distribution::Uniform if map || random.generator.is_lfsr() => {
                let marks = map && used.iter().any(|d| d.max > unit || d.align > unit);
                Pick::Permuted {
                    unit,
                    units: reach / unit,
                    marks,
                }
            }
            Distribution::Uniform => Pick::Uniform,
            Distribution::Zoned(_) | Distribution::ZonedAbs(_) => Pick::Zoned,
            skewed => {
                // fio's ranges are the smaller of the read and write block sizes.
                let unit = dirs[0].min.min(dirs[1].min).max(1);
                let n = reach.div_ceil(unit).max(1);
                let hot = match *skewed {
                    Distribution::Zipf { theta, center } => Hot::zipf(n, theta, center, rng),
                    Distribution::Pareto { h, center } => Hot::pareto(n, h, center, rng),
                    Distribution::Normal { sigma, center } => Hot::normal(n, sigma, center),
                    _ => unreachable!("the other distributions are matched above"),
                };
                Pick::Skewed(hot)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn job(options: &[(&str, &str)]) -> JobSpec {
        let j = JobSpec::with(options).unwrap_or_else(|e| panic!("{e}"));
        j.validate().unwrap();
        j
    }

    /// The I/Os of clone 0 on a file as long as its region.
    fn ios(options: &[(&str, &str)]) -> Vec<Io> {
        let j = job(options);
        IoPattern::new(&j, 0, 0, 9).collect()
    }

    fn offsets(ios: &[Io]) -> Vec<u64> {
        ios.iter().map(|io| io.offset >> 10).collect()
    }

    #[test]
    fn sequential_covers_the_region_once_unless_time_based() {
        let base = [("size", "64k"), ("bs", "16k"), ("rw", "write")];
        assert_eq!(offsets(&ios(&base)), vec![0, 16, 32, 48]);
        let j = job(&[base.as_slice(), &[("time_based", "1"), ("runtime", "1")]].concat());
        let wrapped: Vec<u64> = IoPattern::new(&j, 0, 0, 1)
            .take(6)
            .map(|io| io.offset >> 10)
            .collect();
        assert_eq!(wrapped, vec![0, 16, 32, 48, 0, 16]);
        let at = ios(&[base.as_slice(), &[("offset", "1m")]].concat());
        assert_eq!(offsets(&at), vec![1024, 1040, 1056, 1072]);
        assert!(at.iter().all(|io| io.len == 16 << 10 && io.op == Op::Write));
    }

    #[test]
    fn random_covers_each_block_once_per_pass() {
        for rw in ["randread", "randrw"] {
            let got = ios(&[("size", "1m"), ("bs", "4k"), ("rw", rw)]);
            let set: BTreeSet<u64> = got.iter().map(|io| io.offset).collect();
            assert_eq!(set, (0..256).map(|b| b << 12).collect(), "{rw}");
            assert_eq!(got.len(), 256);
            assert_ne!(
                offsets(&got),
                (0..1024).step_by(4).collect::<Vec<_>>(),
                "shuffled"
            );
        }
    }

    #[test]
    fn mixed_sequential_jobs_keep_a_position_per_direction() {
        let got = ios(&[("size", "1m"), ("bs", "4k"), ("rw", "rw")]);
        assert_eq!(
            got.iter().map(|io| io.len).sum::<u64>(),
            1 << 20,
            "size bytes in all"
        );
        for op in [Op::Read, Op::Write] {
            let mine: Vec<u64> = got
                .iter()
                .filter(|io| io.op == op)
                .map(|io| io.offset)
                .collect();
            let want: Vec<u64> = (0..mine.len() as u64).map(|i| i << 12).collect();
            assert_eq!(mine, want, "{op:?} goes on from its own last I/O");
            assert!(
                (100..156).contains(&mine.len()),
                "about half: {}",
                mine.len()
            );
        }
    }

    #[test]
    fn skips_wrap_and_go_backwards_as_in_fio() {
        // Both sequences are fio 3.33's (write_iolog) for a fresh 64k file.
        let fwd = ios(&[("size", "64k"), ("bs", "4k"), ("rw", "write:4k")]);
        let pass: Vec<u64> = (0..8).map(|i| i * 8).collect();
        assert_eq!(offsets(&fwd), [pass.clone(), pass].concat());
        let back = ios(&[("size", "64k"), ("bs", "4k"), ("rw", "read:-8k")]);
        let mut want = vec![0];
        want.extend((0..15).map(|i| 56 - 4 * i));
        assert_eq!(offsets(&back), want);
    }

    #[test]
    fn block_sizes_are_drawn_per_direction() {
        let split = [
            ("size", "16m"),
            ("rw", "randwrite"),
            ("bssplit", "4k/20:64k/80"),
        ];
        let drawn = ios(&[split.as_slice(), &[("norandommap", "1"), ("size", "256m")]].concat());
        let mut count: HashMap<u64, u64> = HashMap::new();
        for io in &drawn {
            *count.entry(io.len).or_default() += 1;
        }
        let small = count[&4096] as f64 / drawn.len() as f64;
        assert!((0.18..0.22).contains(&small), "4k share {small}: {count:?}");
        assert_eq!(count.len(), 2, "only the split's sizes");
        // With the random map (fio's default), an I/O that would cover used blocks is cut
        // short: no byte twice, every byte once.
        let got = ios(&split);
        assert!(got
            .iter()
            .all(|io| io.len.is_multiple_of(4096) && io.len <= 65536));
        let mut units = BTreeSet::new();
        for io in &got {
            for u in (io.offset..io.offset + io.len).step_by(4096) {
                assert!(units.insert(u), "unit {u} used twice");
            }
        }
        assert_eq!(units.len(), 4096, "every 4k unit of 16m");
        let got = ios(&[("size", "4m"), ("rw", "read"), ("bsrange", "8k-64k")]);
        assert!(got
            .iter()
            .all(|io| (8192..=65536).contains(&io.len) && io.len % 8192 == 0));
        assert_eq!(got.iter().map(|io| io.len).sum::<u64>(), 4 << 20);
        let got = ios(&[("size", "1m"), ("rw", "rw"), ("bs", "4k,64k")]);
        assert!(got
            .iter()
            .all(|io| io.len == if io.op == Op::Read { 4096 } else { 65536 }));
    }

    #[test]
    fn passes_follow_loops_io_size_and_number_ios() {
        let base = [("size", "256k"), ("bs", "4k"), ("rw", "randread")];
        let with = |extra: &[(&str, &str)]| ios(&[base.as_slice(), extra].concat());
        let three = with(&[("loops", "3")]);
        assert_eq!(three.len(), 192);
        assert_eq!(
            three[..64],
            three[64..128],
            "randrepeat: each loop the same order"
        );
        let fresh = with(&[("loops", "2"), ("randrepeat", "0")]);
        assert_ne!(
            fresh[..64],
            fresh[64..],
            "without randrepeat, another order"
        );
        assert_eq!(
            with(&[("io_size", "640k")]).len(),
            160,
            "two passes and a half"
        );
        assert_eq!(with(&[("io_size", "100k")]).len(), 25);
        assert_eq!(with(&[("number_ios", "10")]).len(), 10);
        assert_eq!(with(&[("number_ios", "10"), ("loops", "2")]).len(), 20);
        let no_map = with(&[("norandommap", "1")]);
        assert_eq!(no_map.len(), 64, "size bytes, offsets repeating");
        assert!(no_map
            .iter()
            .all(|io| io.offset < 256 << 10 && io.offset % 4096 == 0));
    }

    #[test]
    fn sequential_shares_and_runs_in_random_jobs() {
        let base = [("size", "1m"), ("bs", "4k"), ("rw", "randread")];
        let seq = ios(&[base.as_slice(), &[("percentage_random", "0")]].concat());
        assert_eq!(offsets(&seq), (0..1024).step_by(4).collect::<Vec<_>>());
        let runs = ios(&[base.as_slice(), &[("rw", "randread:4")]].concat());
        // As fio 3.33: a random offset, then three I/Os going on from it, and so on.
        for run in runs.chunks(4).filter(|c| c.len() == 4) {
            let o = offsets(run);
            assert!(
                o[1] == o[0] + 4 && o[2] == o[1] + 4 && o[3] == o[2] + 4,
                "{o:?}"
            );
        }
        let same = ios(&[
            base.as_slice(),
            &[("rw", "randread:3"), ("rw_sequencer", "identical")],
        ]
        .concat());
        for run in same.chunks(3).filter(|c| c.len() == 3) {
            assert!(run[1].offset == run[0].offset && run[2].offset == run[0].offset);
        }
    }

    #[test]
    fn distributions_shape_where_offsets_land() {
        let zoned = ios(&[
            ("size", "40m"),
            ("bs", "4k"),
            ("rw", "randread"),
            ("random_distribution", "zoned:60/10:40/90"),
        ]);
        let first = zoned.iter().filter(|io| io.offset < 4 << 20).count() as f64;
        let share = first / zoned.len() as f64;
        assert!(
            (0.57..0.63).contains(&share),
            "{share} of the I/Os in the first 10%"
        );
        let abs = ios(&[
            ("size", "40m"),
            ("rw", "randread"),
            ("random_distribution", "zoned_abs:100/1m"),
        ]);
        assert!(abs.iter().all(|io| io.offset < 1 << 20));
        for dist in ["zipf:1.2", "pareto:0.2", "normal:10"] {
            let got = ios(&[
                ("size", "8m"),
                ("bs", "8k"),
                ("rw", "randwrite"),
                ("random_distribution", dist),
            ]);
            assert_eq!(got.len(), 1024, "{dist}: size bytes");
            assert!(got
                .iter()
                .all(|io| io.offset % 8192 == 0 && io.offset + io.len <= 8 << 20));
            let distinct: BTreeSet<u64> = got.iter().map(|io| io.offset).collect();
            assert!(
                distinct.len() < 900,
                "{dist}: hot blocks repeat ({})",
                distinct.len()
            );
        }
    }

    #[test]
    fn clones_and_alignment_place_offsets() {
        let j = job(&[
            ("size", "64k"),
            ("bs", "16k"),
            ("offset_increment", "1m"),
            ("numjobs", "3"),
        ]);
        let third: Vec<u64> = IoPattern::new(&j, 2, 0, 1)
            .map(|io| io.offset >> 10)
            .collect();
        assert_eq!(third, vec![2048, 2064, 2080, 2096]);
        let aligned = ios(&[
            ("size", "1m"),
            ("bs", "8k"),
            ("rw", "randread"),
            ("ba", "4k"),
        ]);
        assert!(aligned
            .iter()
            .all(|io| io.offset % 4096 == 0 && io.offset + 8192 <= 1 << 20));
        assert!(
            aligned.iter().any(|io| io.offset % 8192 != 0),
            "4k-aligned, not only 8k"
        );
        assert_eq!(
            aligned.len(),
            128,
            "blockalign turns the map off: size bytes"
        );
    }
}
