//! Which block each I/O touches, and in mixed jobs which direction. Sequential wraps
//! around; random visits every block once per pass in a seeded pseudo-random order (fio's
//! random map, without its memory cost). Offsets start at the job's `offset`.
//!
//! Mixed jobs draw one offset stream for reads and writes together, so each block is read
//! or written once per pass (fio keeps a sequential position per direction instead).

use crate::engine::Op;
use crate::job::{mix64, JobSpec};

pub struct Offsets {
    start: u64,
    bs: u64,
    blocks: u64,
    random: Option<Permutation>,
    issued: u64,
    limit: Option<u64>,
}

impl Offsets {
    /// `passes_limit`: stop after one pass over the blocks unless the job is time based.
    pub fn new(job: &JobSpec, seed: u64) -> Self {
        let blocks = job.blocks();
        Offsets {
            start: job.offset,
            bs: job.bs,
            blocks,
            random: job.rw.is_random().then(|| Permutation::new(blocks, seed)),
            issued: 0,
            limit: (!job.time_based).then_some(blocks),
        }
    }
}

impl Iterator for Offsets {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.limit.is_some_and(|l| self.issued >= l) {
            return None;
        }
        let i = self.issued % self.blocks;
        self.issued += 1;
        let block = match &self.random {
            Some(p) => p.at(i),
            None => i,
        };
        Some(self.start + block * self.bs)
    }
}

/// Each I/O's direction: `Read` for `read_percent` of them, in a seeded order. Pure read or
/// write jobs get theirs every time, so callers can use one for every job. Each choice is
/// independent (fio instead alternates runs of one direction); the proportion is the same.
pub struct MixChooser {
    read_percent: u64,
    state: u64,
}

impl MixChooser {
    pub fn new(job: &JobSpec, seed: u64) -> Self {
        MixChooser {
            read_percent: u64::from(job.read_percent().min(100)),
            // A different stream from the offsets' (same seed), so direction and block are
            // not correlated.
            state: mix64(seed ^ 0x6D69_7863_686F_6F73),
        }
    }
}

impl Iterator for MixChooser {
    type Item = Op;
    fn next(&mut self) -> Option<Op> {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        // Multiply-shift maps the top 32 bits onto 0..100 (bias under 1e-7, no modulo).
        let roll = ((mix64(self.state) >> 32) * 100) >> 32;
        Some(if roll < self.read_percent {
            Op::Read
        } else {
            Op::Write
        })
    }
}

/// A bijection on `0..n`: a 4-round Feistel network on the next power of two, cycle-walked
/// back into range. Constant memory, whatever the device size.
struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    fn new(n: u64, seed: u64) -> Self {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let half_bits = bits.div_ceil(2);
        let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut key = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Permutation {
            n,
            half_bits,
            keys: [key(), key(), key(), key()],
        }
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for k in self.keys {
            let f = (r ^ k).wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    fn at(&self, i: u64) -> u64 {
        let mut x = self.round(i);
        while x >= self.n {
            x = self.round(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn permutation_visits_every_block_once() {
        for n in [1u64, 2, 3, 7, 100, 1000, 4097] {
            let p = Permutation::new(n, 42);
            let seen: HashSet<u64> = (0..n).map(|i| p.at(i)).collect();
            assert_eq!(seen.len() as u64, n, "n={n}");
            assert!(seen.iter().all(|&x| x < n));
        }
    }

    #[test]
    fn random_is_not_sequential_and_seeded() {
        let p = Permutation::new(1000, 1);
        let q = Permutation::new(1000, 2);
        let a: Vec<u64> = (0..1000).map(|i| p.at(i)).collect();
        let b: Vec<u64> = (0..1000).map(|i| q.at(i)).collect();
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, b);
    }

    #[test]
    fn sequential_covers_the_file_once_unless_time_based() {
        let mut job = JobSpec::default();
        job.set("size", "64k").unwrap();
        job.set("bs", "16k").unwrap();
        job.set("rw", "write").unwrap();
        assert_eq!(
            Offsets::new(&job, 0).collect::<Vec<_>>(),
            vec![0, 16384, 32768, 49152]
        );
        job.set("time_based", "1").unwrap();
        assert_eq!(Offsets::new(&job, 0).take(6).last(), Some(16384));
    }

    #[test]
    fn offsets_start_at_the_jobs_offset() {
        let mut job = JobSpec::default();
        job.set("size", "64k").unwrap();
        job.set("bs", "16k").unwrap();
        job.set("offset", "1m").unwrap();
        let base = 1 << 20;
        assert_eq!(
            Offsets::new(&job, 0).collect::<Vec<_>>(),
            vec![base, base + 16384, base + 32768, base + 49152]
        );
        job.set("rw", "randrw").unwrap();
        let mut seen: Vec<u64> = Offsets::new(&job, 9).collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![base, base + 16384, base + 32768, base + 49152]);
    }

    #[test]
    fn mix_chooser_keeps_the_proportion_and_repeats_by_seed() {
        let mut job = JobSpec::default();
        job.set("rw", "randrw").unwrap();
        job.set("rwmixread", "70").unwrap();
        let reads = MixChooser::new(&job, 5)
            .take(10_000)
            .filter(|&op| op == Op::Read)
            .count();
        assert!((6_700..=7_300).contains(&reads), "{reads} reads of 10000");
        let a: Vec<Op> = MixChooser::new(&job, 5).take(100).collect();
        assert_eq!(a, MixChooser::new(&job, 5).take(100).collect::<Vec<_>>());
        assert_ne!(a, MixChooser::new(&job, 6).take(100).collect::<Vec<_>>());
        for (rw, op) in [("read", Op::Read), ("randwrite", Op::Write)] {
            job.set("rw", rw).unwrap();
            assert!(MixChooser::new(&job, 1).take(1000).all(|o| o == op), "{rw}");
        }
        job.set("rw", "rw").unwrap();
        job.set("rwmixread", "0").unwrap();
        assert!(MixChooser::new(&job, 1).take(1000).all(|o| o == Op::Write));
    }
}
