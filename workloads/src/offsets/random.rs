//! The randomness of an [`IoPattern`](super::IoPattern): a seeded generator, a bijection
//! for "each block once per pass" in constant memory, a map of the blocks a pass has used
//! (only where I/Os may span several), and fio's non-uniform distributions with fio's own
//! formulas (`lib/zipf.c`, `lib/gauss.c`).

use crate::job::mix64;

/// A seeded stream of 32-bit numbers (splitmix64's outputs, top half), the width fio's
/// default generator draws.
#[derive(Clone)]
pub(super) struct Rng(u64);

/// fio's `FRAND32_MAX`: the largest number [`Rng::next`] returns.
pub(super) const RAND_MAX: u64 = u32::MAX as u64;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix64(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0) >> 32
    }

    /// A block in `0..n`, as fio scales a draw: `n * (r / (RAND_MAX + 1))`.
    pub fn below(&mut self, n: u64) -> u64 {
        (n as f64 * (self.next() as f64 / (RAND_MAX as f64 + 1.0))) as u64
    }

    /// fio's `rand_between(1, 100)`-style draw: `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// In `[0, 1]`, as fio's distributions draw (`r / FRAND32_MAX`).
    pub fn unit(&mut self) -> f64 {
        self.next() as f64 / RAND_MAX as f64
    }
}

/// A bijection on `0..n`: a 4-round Feistel network on the next power of two, cycle-walked
/// back into range. Constant memory, whatever the device size.
pub(super) struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let half_bits = bits.div_ceil(2);
        let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        let mut key = || (rng.next() << 32) | rng.next();
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

    /// The `i`th element, `i < n`.
    pub fn at(&self, i: u64) -> u64 {
        let mut x = self.round(i);
        while x >= self.n {
            x = self.round(x);
        }
        x
    }
}

/// Which units of the region a pass has used: fio's random map, needed where one I/O may
/// cover several units.
pub(super) struct Coverage {
    words: Vec<u64>,
    units: u64,
}

impl Coverage {
    pub fn new(units: u64) -> Coverage {
        Coverage {
            words: vec![0; units.div_ceil(64) as usize],
            units,
        }
    }

    pub fn is_used(&self, unit: u64) -> bool {
        self.words[(unit / 64) as usize] & (1 << (unit % 64)) != 0
    }

    /// Marks up to `count` units from `first`, stopping at the first used one (fio's
    /// `axmap_set_nr`); how many it marked.
    pub fn mark(&mut self, first: u64, count: u64) -> u64 {
        let mut marked = 0;
        while marked < count && first + marked < self.units && !self.is_used(first + marked) {
            let u = first + marked;
            self.words[(u / 64) as usize] |= 1 << (u % 64);
            marked += 1;
        }
        marked
    }
}

/// fio's `__hash_u64`: spreads a distribution's hot values over the region.
fn hash(v: u64) -> u64 {
    v.wrapping_mul(0x61C8_8646_80B5_83EB)
}

/// fio caps the zeta sum of a zipf distribution here (`ZIPF_MAX_GEN`).
const ZIPF_MAX_GEN: u64 = 10_000_000;

/// A zipf, pareto or normal distribution over `n` ranges, with fio's formulas.
pub(super) enum Skewed {
    Zipf {
        theta: f64,
        zeta2: f64,
        zetan: f64,
    },
    Pareto {
        power: f64,
    },
    /// `stddev` in ranges; 0: fio's plain sum of uniforms.
    Normal {
        stddev: u64,
    },
}

/// A skewed distribution and where its hot spot is.
pub(super) struct Hot {
    pub skew: Skewed,
    pub n: u64,
    offset: u64,
    /// Ranks are scattered by fio's hash (all but file service, which keeps them in order).
    hashed: bool,
}

impl Hot {
    pub fn zipf(n: u64, theta: f64, center: Option<f64>, rng: &mut Rng) -> Hot {
        let zetan = (1..=n.min(ZIPF_MAX_GEN))
            .map(|i| (1.0 / i as f64).powf(theta))
            .sum();
        let skew = Skewed::Zipf {
            theta,
            zeta2: 1.0 + 0.5f64.powf(theta),
            zetan,
        };
        Hot::centered(skew, n, center, rng)
    }

    pub fn pareto(n: u64, h: f64, center: Option<f64>, rng: &mut Rng) -> Hot {
        let power = h.ln() / (1.0 - h).ln();
        Hot::centered(Skewed::Pareto { power }, n, center, rng)
    }

    pub fn normal(n: u64, sigma: f64, center: Option<f64>) -> Hot {
        let stddev = match sigma {
            0.0 => 0,
            s => ((n as f64 * s / 100.0).ceil() as u64).min(n / 2),
        };
        // fio's gauss_init: the sum is centred already; a center moves it by center - 1/2.
        let offset = center.map_or(0, |c| (n as f64 * (c - 0.5)) as i64 as u64);
        Hot {
            skew: Skewed::Normal { stddev },
            n,
            offset,
            hashed: true,
        }
    }

    /// fio's `shared_rand_init`: the hot spot at `center`, else at a random range.
    fn centered(skew: Skewed, n: u64, center: Option<f64>, rng: &mut Rng) -> Hot {
        let offset = match center {
            Some(c) => (n as f64 * c) as u64,
            None => rng.next(),
        };
        Hot {
            skew,
            n,
            offset,
            hashed: true,
        }
    }

    /// The same without fio's hash: neighbouring ranks stay neighbours (fio's
    /// `zipf_disable_hash`).
    pub fn unhashed(self) -> Hot {
        Hot {
            hashed: false,
            ..self
        }
    }

    /// The next range, `0..n`: a rank by the distribution, scattered by fio's hash and
    /// moved to the hot spot.
    pub fn next(&self, rng: &mut Rng) -> u64 {
        let rank = self.rank(rng);
        let rank = if self.hashed { hash(rank) } else { rank };
        rank.wrapping_add(self.offset) % self.n
    }

    /// A rank by the distribution: 0 is the hottest.
    fn rank(&self, rng: &mut Rng) -> u64 {
        let n = self.n;
        match self.skew {
            Skewed::Zipf {
                theta,
                zeta2,
                zetan,
            } => {
                let alpha = 1.0 / (1.0 - theta);
                let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
                let u = rng.unit();
                let z = u * zetan;
                let v = if z < 1.0 {
                    1
                } else if z < 1.0 + 0.5f64.powf(theta) {
                    2
                } else {
                    1 + (n as f64 * (eta * u - eta + 1.0).powf(alpha)) as u64
                };
                v - 1
            }
            Skewed::Pareto { power } => ((n - 1) as f64 * rng.unit().powf(power)) as u64,
            Skewed::Normal { stddev } => gauss(n, stddev, rng),
        }
    }
}

/// fio's `gauss_next` before the hash: a mean of 12 uniform draws, moved by a deviation.
fn gauss(n: u64, stddev: u64, rng: &mut Rng) -> u64 {
    const ITERS: u64 = 12;
    let sum: u64 = (0..ITERS).map(|_| rng.next() % (n + 1)).sum();
    let mut sum = sum.div_ceil(ITERS);
    if stddev > 0 {
        let r = rng.next() as f64 / (RAND_MAX as f64 + 1.0);
        let mut dev = (stddev as f64 * r) as i64 - (stddev / 2) as i64;
        while (dev + sum as i64) as u64 >= n {
            dev /= 2;
        }
        sum = (sum as i64 + dev) as u64;
    }
    sum
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
        let (p, q) = (Permutation::new(1000, 1), Permutation::new(1000, 2));
        let a: Vec<u64> = (0..1000).map(|i| p.at(i)).collect();
        let b: Vec<u64> = (0..1000).map(|i| q.at(i)).collect();
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, b);
    }

    #[test]
    fn coverage_marks_runs_up_to_a_used_unit() {
        let mut c = Coverage::new(100);
        assert_eq!(c.mark(10, 4), 4);
        assert_eq!(c.mark(8, 4), 2, "stops at the used unit 10");
        assert!(c.is_used(9) && !c.is_used(14));
        assert_eq!(c.mark(99, 5), 1, "stops at the end");
    }

    /// The share of `count` ranks drawn from `hot` that are below `top`.
    fn share_below(hot: &Hot, top: u64, count: u64) -> f64 {
        let mut rng = Rng::new(7);
        let hits = (0..count).filter(|_| hot.rank(&mut rng) < top).count();
        hits as f64 / count as f64
    }

    #[test]
    fn zipf_draws_its_first_ranks_with_the_zeta_probabilities() {
        // fio's zipf (Gray et al.'s method) is exact for ranks 1 and 2: P(1) = 1 / zeta_n,
        // P(2) = 2^-theta / zeta_n; the rest it approximates.
        let n = 10_000;
        let mut rng = Rng::new(1);
        let hot = Hot::zipf(n, 1.2, Some(0.0), &mut rng);
        let zetan: f64 = (1..=n).map(|i| (i as f64).powf(-1.2)).sum();
        let (p1, p2) = (1.0 / zetan, 2f64.powf(-1.2) / zetan);
        let count = 200_000;
        assert!(
            (share_below(&hot, 1, count) - p1).abs() < 0.005,
            "P(rank 1)"
        );
        assert!(
            (share_below(&hot, 2, count) - (p1 + p2)).abs() < 0.005,
            "P(rank <= 2)"
        );
        let mut rng = Rng::new(2);
        assert!((0..1000).all(|_| hot.next(&mut rng) < n));
    }

    #[test]
    fn pareto_puts_its_share_on_its_share_of_ranges() {
        // fio's pareto:h draws (n - 1) u^(ln h / ln(1 - h)): exactly 1 - h of the draws fall
        // below h of the ranges (h = 0.2: 80% on 20%).
        let n = 10_000;
        let mut rng = Rng::new(1);
        let hot = Hot::pareto(n, 0.2, Some(0.0), &mut rng);
        let share = share_below(&hot, (n - 1) / 5 + 1, 200_000);
        assert!(
            (share - 0.8).abs() < 0.005,
            "below 20% of the ranges: {share}"
        );
    }

    #[test]
    fn normal_concentrates_around_its_mean() {
        // A mean of 12 uniform draws over 0..n has deviation n / sqrt(144): about 95.4% of
        // draws lie within two of it, before fio's hash scatters them.
        let n: u64 = 12_000;
        let mut rng = Rng::new(3);
        let near = (0..100_000)
            .filter(|_| gauss(n, 0, &mut rng).abs_diff(n / 2) <= 2 * n / 12)
            .count();
        assert!(
            (94_000..=97_000).contains(&near),
            "{near} of 100000 within 2 sigma"
        );
        let hot = Hot::normal(n, 5.0, None);
        let Skewed::Normal { stddev } = hot.skew else {
            panic!()
        };
        assert_eq!(stddev, 600, "5% of the ranges, as fio's gauss_init");
        assert!((0..1000).all(|_| hot.next(&mut rng) < n));
    }

    #[test]
    fn rng_scales_like_fio() {
        let mut rng = Rng::new(5);
        assert!((0..10_000).all(|_| rng.below(10) < 10));
        let ones = (0..100_000).filter(|_| rng.between(1, 100) == 1).count();
        assert!((800..=1200).contains(&ones), "{ones}");
        assert!((0..1000)
            .map(|_| rng.unit())
            .all(|u| (0.0..=1.0).contains(&u)));
    }
}
