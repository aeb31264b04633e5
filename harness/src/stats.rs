//! How sure a comparison is: the ratio of a candidate strategy to the baseline for one
//! metric, with a 95 % confidence interval over the interleaved repeats, and a verdict.
//!
//! **Pairs.** Repeats run A B A B, so repeat *i* of the candidate and repeat *i* of the
//! baseline were measured under the same machine state (page cache, neighbours, thermal
//! state): they form a pair, and only pairs where both cases ended `ok` count. A pair is
//! one log ratio `d = ln(candidate / baseline)`; working on logs makes "1.33× more" and
//! "0.75×" mirror images and turns multiplicative run-to-run noise (±20 % on a shared VM)
//! into additive noise. The point estimate is the geometric mean of the paired ratios,
//! `exp(mean d)`.
//!
//! **Interval.** Here n (3–15 repeats) is small, and that decides the method. A plain
//! percentile bootstrap never reaches beyond the data it resamples: at n = 3 it has ten
//! distinct resamples, its interval is at most [min d, max d], and it covers the true
//! ratio about 70 % of the time (69 % in the test below). So the interval is the union
//! of two:
//! - Student's t on the mean log ratio, `mean ± t(0.975, n−1) · s / √n`: exact when the
//!   log ratios are normal (log-normal noise, the usual model for throughput) and the
//!   width that small samples need;
//! - Hesterberg's *expanded percentile* bootstrap (Hesterberg 2015, "What teachers should
//!   know about the bootstrap", §5): the percentiles of the resampled means taken at
//!   α′/2 = Φ(−√(n/(n−1)) · t(α/2, n−1)) instead of α/2, which corrects the bootstrap's
//!   narrowness at small n and follows skewed data where t cannot.
//!
//! Taking the wider of the two at each end never covers less than either; at n = 3 the t
//! side always decides (it always contains [min d, max d]), from n ≈ 10 the two nearly
//! agree. On synthetic log-normal experiments (true ratio 1.10, ±20 % drift shared by a
//! pair, ±10 % noise per case) it covers 93 / 96 / 95 % at n = 3 / 5 / 10 in the 200-run
//! test below, 95.4 / 95.1 / 94.8 / 95.3 % at n = 3 / 5 / 10 / 15 over 2000 runs. Under
//! heavily skewed noise (one strategy hit by occasional exponential slowdowns) every
//! method tried, this one included, falls to 86–90 %: that is what the outlier flag is
//! for.
//!
//! **Blocks.** The resampling draws whole rounds (repeat indices), and every metric and
//! strategy restarts the generator from the same seed, so with equal n they resample the
//! very same rounds: the intervals of one run are mutually consistent and reproducible.
//!
//! **Verdicts.** With a noise threshold θ (default 2 %), a ratio counts as different only
//! when its whole interval lies outside the band [1/(1+θ), 1+θ] (symmetric in log terms,
//! like everything here); otherwise `same`. Fewer than [`MIN_PAIRS`] pairs: `unknown`.

use serde::{Deserialize, Serialize};

/// Pairs needed for an interval and a verdict; with fewer the verdict is `unknown`.
pub const MIN_PAIRS: usize = 3;
/// Two-sided confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;
/// Bootstrap resamples per interval: enough to resolve the expanded tail (α′/2 ≈ 0.1 %
/// at n = 5) and cheap (n ≤ 15 values each).
pub const RESAMPLES: usize = 10_000;
/// The default noise threshold (`--noise-threshold`): differences within ±2 % are `same`.
pub const DEFAULT_NOISE_THRESHOLD: f64 = 0.02;
/// The bootstrap seed when none is given: any fixed value makes runs reproducible.
pub const DEFAULT_SEED: u64 = 0x6373_756d_6265_6e63; // "csumbenc"

/// xoshiro256++ seeded through splitmix64: small, fast, and the same stream everywhere
/// for a given seed (no thread_rng, so every figure can be reproduced).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-58 for n ≤ 64).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Which way a metric is good, and so which words its verdict uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// Throughput, worst-interval bandwidth: a higher ratio is `faster`.
    HigherIsFaster,
    /// Latencies: a lower ratio is `faster`.
    LowerIsFaster,
    /// CPU time, context switches: a higher ratio is `more`, a lower one `less`.
    Cost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Faster,
    Slower,
    More,
    Less,
    /// The interval does not clear the noise band: no difference that this run can show.
    Same,
    /// Fewer than [`MIN_PAIRS`] pairs: no interval, no guess.
    Unknown,
    /// The row is the baseline itself.
    Baseline,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::More => "more",
            Verdict::Less => "less",
            Verdict::Same => "same",
            Verdict::Unknown => "unknown",
            Verdict::Baseline => "baseline",
        }
    }

    /// A real difference, as opposed to `same`, `unknown` or the baseline.
    pub fn differs(self) -> bool {
        matches!(
            self,
            Verdict::Faster | Verdict::Slower | Verdict::More | Verdict::Less
        )
    }
}

/// One metric of one strategy against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Geometric mean of the paired ratios (NaN without a pair).
    pub ratio: f64,
    /// The 95 % interval of the ratio (NaN with fewer than [`MIN_PAIRS`] pairs).
    pub ci95_lo: f64,
    pub ci95_hi: f64,
    /// Pairs (baseline repeat i, candidate repeat i, both ok) that had this metric.
    pub pairs: usize,
    pub verdict: Verdict,
    /// The θ the verdict was decided with (NaN where none was), so that a bound can be
    /// shown with the digits that tell which side of the band it is on.
    #[serde(skip)]
    pub noise_threshold: f64,
}

impl Comparison {
    /// The baseline's row: ratio 1 by definition, no interval.
    pub fn baseline(pairs: usize) -> Comparison {
        Comparison {
            ratio: 1.0,
            ci95_lo: f64::NAN,
            ci95_hi: f64::NAN,
            pairs,
            verdict: Verdict::Baseline,
            noise_threshold: f64::NAN,
        }
    }

    /// Half the interval's width relative to the ratio (0.03 = "±3 %"); NaN without one.
    pub fn relative_half_width(&self) -> f64 {
        (self.ci95_hi - self.ci95_lo) / (2.0 * self.ratio)
    }

    /// The stop rule of `--repeat auto`: whether this interval is within ±`precision`.
    pub fn precise_enough(&self, precision: f64) -> bool {
        self.relative_half_width() <= precision
    }
}

/// `--repeat auto`: how many interleaved rounds to run. After `min_rounds`, rounds go on
/// until every strategy's throughput interval is within ±`precision`, `max_rounds` have
/// run, or another round would end past `max_time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoRepeat {
    pub min_rounds: u32,
    pub max_rounds: u32,
    pub max_time: Option<std::time::Duration>,
    pub precision: f64,
}

impl Default for AutoRepeat {
    fn default() -> Self {
        AutoRepeat {
            min_rounds: MIN_PAIRS as u32,
            max_rounds: 15,
            max_time: None,
            precision: 0.03,
        }
    }
}

/// Why `--repeat auto` stopped adding rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every throughput interval was within ±precision.
    Precise,
    /// `--max-repeat` rounds ran.
    MaxRepeat,
    /// Another round would have ended past `--max-time`.
    MaxTime,
}

impl StopReason {
    pub fn describe(self, rule: &AutoRepeat) -> String {
        match self {
            StopReason::Precise => format!(
                "every throughput interval within ±{}%",
                100.0 * rule.precision
            ),
            StopReason::MaxRepeat => format!("--max-repeat {} reached", rule.max_rounds),
            StopReason::MaxTime => match rule.max_time {
                Some(t) => format!("--max-time {}s reached", t.as_secs_f64()),
                None => "--max-time reached".into(),
            },
        }
    }
}

impl AutoRepeat {
    /// Refuses rules that cannot work, naming the option at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_rounds == 0 || self.max_rounds < self.min_rounds {
            return Err(format!(
                "--max-repeat {} is below the minimum of {} rounds",
                self.max_rounds, self.min_rounds
            ));
        }
        if !(self.precision > 0.0 && self.precision < 1.0) {
            return Err(format!(
                "--precision {}: must be above 0 and below 100%",
                self.precision
            ));
        }
        Ok(())
    }

    /// Called after each complete round with the rounds run so far, the time they took
    /// and every row's throughput comparison (the baseline's is skipped): `None` to run
    /// another round, or why to stop. The minimum always runs: a verdict needs it.
    pub fn decide<'a>(
        &self,
        rounds: u32,
        elapsed: std::time::Duration,
        throughput: impl IntoIterator<Item = &'a Comparison>,
    ) -> Option<StopReason> {
        if rounds < self.min_rounds {
            return None;
        }
        let mut candidates = throughput
            .into_iter()
            .filter(|c| c.verdict != Verdict::Baseline)
            .peekable();
        let any = candidates.peek().is_some();
        if any && candidates.all(|c| c.precise_enough(self.precision)) {
            return Some(StopReason::Precise);
        }
        if rounds >= self.max_rounds {
            return Some(StopReason::MaxRepeat);
        }
        let next_round_ends = elapsed + elapsed / rounds;
        match self.max_time {
            Some(limit) if next_round_ends > limit => Some(StopReason::MaxTime),
            _ => None,
        }
    }
}

/// Compares a candidate to the baseline over `pairs` of (baseline, candidate) values of
/// one metric. A pair where both are 0 counts as equal; one where only one is 0, or
/// either is not a finite non-negative number, has no ratio and is left out (`pairs`
/// says how many were used).
pub fn compare(
    pairs: &[(f64, f64)],
    polarity: Polarity,
    noise_threshold: f64,
    seed: u64,
) -> Comparison {
    let logs: Vec<f64> = pairs
        .iter()
        .filter_map(|&(base, cand)| log_ratio(base, cand))
        .collect();
    let n = logs.len();
    let ratio = if n == 0 { f64::NAN } else { mean(&logs).exp() };
    if n < MIN_PAIRS {
        return Comparison {
            ratio,
            ci95_lo: f64::NAN,
            ci95_hi: f64::NAN,
            pairs: n,
            verdict: Verdict::Unknown,
            noise_threshold,
        };
    }
    let (t_lo, t_hi) = t_interval(&logs);
    let (b_lo, b_hi) = bootstrap_interval(&logs, expanded_tail(n), &mut Rng::new(seed));
    let (lo, hi) = (t_lo.min(b_lo).exp(), t_hi.max(b_hi).exp());
    Comparison {
        ratio,
        ci95_lo: lo,
        ci95_hi: hi,
        pairs: n,
        verdict: verdict(lo, hi, polarity, noise_threshold),
        noise_threshold,
    }
}

fn log_ratio(base: f64, cand: f64) -> Option<f64> {
    let usable = |x: f64| x.is_finite() && x >= 0.0;
    match (base, cand) {
        _ if !usable(base) || !usable(cand) => None,
        (b, c) if b == 0.0 && c == 0.0 => Some(0.0),
        (b, c) if b == 0.0 || c == 0.0 => None,
        (b, c) => Some((c / b).ln()),
    }
}

/// The verdict of an interval [lo, hi] of a ratio: a side only when the whole interval
/// clears the noise band [1/(1+θ), 1+θ].
pub fn verdict(lo: f64, hi: f64, polarity: Polarity, noise_threshold: f64) -> Verdict {
    let band = 1.0 + noise_threshold;
    let (higher, lower) = match polarity {
        Polarity::HigherIsFaster => (Verdict::Faster, Verdict::Slower),
        Polarity::LowerIsFaster => (Verdict::Slower, Verdict::Faster),
        Polarity::Cost => (Verdict::More, Verdict::Less),
    };
    if lo > band {
        higher
    } else if hi < 1.0 / band {
        lower
    } else {
        Verdict::Same
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (n − 1).
fn std_dev(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Student's t interval of the mean of `x` (n ≥ 2).
fn t_interval(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let half = t_quantile(1.0 - (1.0 - CONFIDENCE) / 2.0, n - 1.0) * std_dev(x) / n.sqrt();
    (mean(x) - half, mean(x) + half)
}

/// The tail probability α′/2 at which the expanded percentile bootstrap reads its
/// percentiles: Φ(−√(n/(n−1)) · t(1 − α/2, n − 1)).
fn expanded_tail(n: usize) -> f64 {
    let n = n as f64;
    let t = t_quantile(1.0 - (1.0 - CONFIDENCE) / 2.0, n - 1.0);
    normal_cdf(-(n / (n - 1.0)).sqrt() * t)
}

/// The `tail` and `1 − tail` percentiles of the means of [`RESAMPLES`] resamples of `x`.
fn bootstrap_interval(x: &[f64], tail: f64, rng: &mut Rng) -> (f64, f64) {
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..x.len()).map(|_| x[rng.below(x.len())]).sum::<f64>() / x.len() as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    (quantile(&means, tail), quantile(&means, 1.0 - tail))
}

/// The `p` quantile of sorted values, interpolating linearly between order statistics
/// (Hyndman & Fan type 7, numpy's and R's default). NaN when empty.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let (below, above) = (h.floor() as usize, h.ceil() as usize);
    sorted[below] + (h - below as f64) * (sorted[above] - sorted[below])
}

/// Indices of the values outside Tukey's fences [Q1 − 1.5 IQR, Q3 + 1.5 IQR], quartiles
/// of type 7. With three values nothing can lie outside them, so this flags from n = 4.
pub fn tukey_outliers(values: &[f64]) -> Vec<usize> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let (q1, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75));
    let (lo, hi) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    (0..values.len())
        .filter(|&i| values[i] < lo || values[i] > hi)
        .collect()
}

/// The standard normal CDF, Φ(z) = erfc(−z/√2)/2; erfc by the Chebyshev fit of Numerical
/// Recipes (§6.2), relative error below 1.2e-7 everywhere.
fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    const C: [f64; 10] = [
        -1.26551223,
        1.00002368,
        0.37409196,
        0.09678418,
        -0.18628806,
        0.27886807,
        -1.13520398,
        1.48851587,
        -0.82215223,
        0.17087277,
    ];
    let poly = C.iter().rev().fold(0.0, |acc, c| acc * t + c);
    let erfc = t * (-a * a + poly).exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: ~15 digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + 1.0 + i as f64));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        for aa in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 / guard(1.0 + aa * d);
            c = guard(1.0 + aa / c);
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The CDF of Student's t with `df` degrees of freedom.
fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p` quantile of Student's t (0.5 < p < 1), by bisection on the CDF.
fn t_quantile(p: f64, df: f64) -> f64 {
    let mut hi = 1.0;
    while t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Parses `--noise-threshold` / `--precision`: a percentage (`2%`) or a fraction below
/// 1 (`0.02`).
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(pct) => (pct.trim(), 100.0),
        None => (t, 1.0),
    };
    let bad = || format!("'{text}': expected a percentage such as 2% or a fraction such as 0.02");
    let value = number.parse::<f64>().map_err(|_| bad())? / scale;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    if value >= 1.0 {
        return Err(format!("'{text}': must be below 100% (1.0)"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Uniform in [0, 1), 53 random bits.
    fn unit(rng: &mut Rng) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal variate (Box-Muller).
    fn normal(rng: &mut Rng) -> f64 {
        let u = 1.0 - unit(rng);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * unit(rng)).cos()
    }

    #[test]
    fn the_generator_is_reproducible_and_uniform() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[rng.below(5)] += 1;
        }
        // 10 000 expected per cell, sd 89: 5 sd either way.
        assert!(
            counts.iter().all(|&c| c.abs_diff(10_000) < 450),
            "{counts:?}"
        );
    }

    #[test]
    fn distribution_functions_match_tables() {
        // Student t 97.5 % points (any statistics table).
        for (df, t) in [
            (1.0, 12.706205),
            (2.0, 4.302653),
            (4.0, 2.776445),
            (9.0, 2.262157),
            (14.0, 2.144787),
            (1000.0, 1.962339),
        ] {
            assert!(close(t_quantile(0.975, df), t, 1e-5), "df {df}");
        }
        assert!(close(t_cdf(0.0, 3.0), 0.5, 1e-12));
        assert!(close(t_cdf(-2.776445, 4.0), 0.025, 1e-6));
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.959964), 0.975, 1e-7));
        assert!(close(normal_cdf(-3.090232), 0.001, 1e-8));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn quantiles_and_outliers_follow_type_7_and_tukey() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.25), 1.75);
        assert_eq!(quantile(&sorted, 0.5), 2.5);
        assert_eq!(quantile(&sorted, 1.0), 4.0);
        assert!(quantile(&[], 0.5).is_nan());
        // Q1 = 10.25, Q3 = 11.75, fences 8 and 14.
        assert_eq!(
            tukey_outliers(&[10.0, 11.0, 14.5, 10.0, 11.0, 12.0]),
            vec![2]
        );
        assert_eq!(
            tukey_outliers(&[10.0, 11.0, 14.0, 10.0, 11.0, 12.0]),
            vec![] as Vec<usize>
        );
        // With three values the fences always hold them.
        assert!(tukey_outliers(&[1.0, 2.0, 1000.0]).is_empty());
    }

    #[test]
    fn the_interval_at_three_pairs_is_students_t_on_the_log_ratios() {
        // Log ratios 0.1, 0.2, 0.3: mean 0.2, s = 0.1, half-width 4.302653 × 0.1 / √3.
        let pairs: Vec<(f64, f64)> = [0.1f64, 0.2, 0.3]
            .iter()
            .map(|d| (100.0, 100.0 * d.exp()))
            .collect();
        let c = compare(&pairs, Polarity::HigherIsFaster, 0.02, 1);
        let half = 4.302653 * 0.1 / 3f64.sqrt();
        assert!(close(c.ratio, 0.2f64.exp(), 1e-12));
        assert!(close(c.ci95_lo, (0.2 - half).exp(), 1e-6), "{c:?}");
        assert!(close(c.ci95_hi, (0.2 + half).exp(), 1e-6), "{c:?}");
        assert_eq!((c.pairs, c.verdict), (3, Verdict::Same));
        // At n = 3 the expanded bootstrap reads its extreme resamples: [min, max].
        let logs = [0.1, 0.2, 0.3];
        let (lo, hi) = bootstrap_interval(&logs, expanded_tail(3), &mut Rng::new(1));
        assert!(close(lo, 0.1, 1e-12) && close(hi, 0.3, 1e-12), "{lo} {hi}");
    }

    #[test]
    fn the_bootstrap_is_seeded_and_its_spread_is_the_plug_in_standard_error() {
        let logs = [0.05, -0.02, 0.11, 0.03, 0.0, 0.08, -0.04, 0.06, 0.02, 0.09];
        let run = |seed| bootstrap_interval(&logs, 0.025, &mut Rng::new(seed));
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        // The exact bootstrap distribution of the mean has sd sqrt(Σ(d − d̄)² / n) / √n;
        // the 2.5 %–97.5 % range of 10 000 resamples spans about ±1.96 of it.
        let m = mean(&logs);
        let n = logs.len() as f64;
        let se = (logs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / n).sqrt() / n.sqrt();
        let (lo, hi) = run(42);
        assert!(
            close((hi - lo) / 2.0, 1.96 * se, 0.05 * 1.96 * se),
            "{lo} {hi} {se}"
        );
        assert!(close((hi + lo) / 2.0, m, 0.1 * se));
    }

    /// 200 simulated experiments with n pairs each: a true ratio of 1.10, machine state per
    /// round shared by the pair (±20 %), independent noise per case (±10 %). Returns the
    /// share of experiments whose interval covers 1.10.
    fn coverage(n: usize, interval: impl Fn(&[(f64, f64)], u64) -> (f64, f64)) -> f64 {
        let truth = 1.10f64;
        let mut rng = Rng::new(2024 + n as u64);
        let covered = (0..200u64)
            .filter(|&experiment| {
                let pairs: Vec<(f64, f64)> = (0..n)
                    .map(|_| {
                        let machine = 0.2 * normal(&mut rng);
                        let base = 1000.0 * (machine + 0.1 * normal(&mut rng)).exp();
                        let cand = 1000.0 * truth * (machine + 0.1 * normal(&mut rng)).exp();
                        (base, cand)
                    })
                    .collect();
                let (lo, hi) = interval(&pairs, experiment);
                lo <= truth && truth <= hi
            })
            .count();
        covered as f64 / 200.0
    }

    #[test]
    fn intervals_cover_the_true_ratio_in_at_least_90_percent_of_experiments() {
        let ours = |pairs: &[(f64, f64)], seed| {
            let c = compare(pairs, Polarity::HigherIsFaster, 0.02, seed);
            (c.ci95_lo, c.ci95_hi)
        };
        for n in [3, 5, 10] {
            let share = coverage(n, ours);
            eprintln!("coverage at n = {n}: {:.1} %", 100.0 * share);
            assert!(share >= 0.90, "n = {n}: {share}");
        }
    }

    #[test]
    fn a_plain_percentile_bootstrap_would_under_cover_at_three_pairs() {
        // Why the interval is not the textbook one: at n = 3 it covers far less than 95 %.
        let plain = |pairs: &[(f64, f64)], seed| {
            let logs: Vec<f64> = pairs.iter().map(|(b, c)| (c / b).ln()).collect();
            let (lo, hi) = bootstrap_interval(&logs, 0.025, &mut Rng::new(seed));
            (lo.exp(), hi.exp())
        };
        let share = coverage(3, plain);
        eprintln!("plain percentile coverage at n = 3: {:.1} %", 100.0 * share);
        assert!(share < 0.85, "{share}");
    }

    #[test]
    fn verdicts_need_the_whole_interval_outside_the_noise_band() {
        use Polarity::*;
        assert_eq!(verdict(1.03, 1.10, HigherIsFaster, 0.02), Verdict::Faster);
        assert_eq!(verdict(1.01, 1.10, HigherIsFaster, 0.02), Verdict::Same);
        assert_eq!(verdict(0.90, 0.97, HigherIsFaster, 0.02), Verdict::Slower);
        assert_eq!(verdict(0.90, 0.97, LowerIsFaster, 0.02), Verdict::Faster);
        assert_eq!(verdict(1.03, 1.10, LowerIsFaster, 0.02), Verdict::Slower);
        assert_eq!(verdict(1.29, 1.37, Cost, 0.02), Verdict::More);
        assert_eq!(verdict(0.50, 0.60, Cost, 0.02), Verdict::Less);
        assert_eq!(verdict(0.99, 1.05, Cost, 0.02), Verdict::Same);
        // The band is symmetric in log terms: 1/1.02 = 0.98039...
        assert_eq!(verdict(0.97, 0.981, HigherIsFaster, 0.02), Verdict::Same);
        assert_eq!(verdict(0.97, 0.980, HigherIsFaster, 0.02), Verdict::Slower);
        assert_eq!(verdict(1.01, 1.05, HigherIsFaster, 0.0), Verdict::Faster);
    }

    #[test]
    fn comparisons_of_few_or_degenerate_pairs() {
        let c = compare(&[(100.0, 110.0), (100.0, 120.0)], Polarity::Cost, 0.02, 1);
        assert_eq!((c.pairs, c.verdict), (2, Verdict::Unknown));
        assert!(close(c.ratio, (1.1f64 * 1.2).sqrt(), 1e-12) && c.ci95_lo.is_nan());
        let c = compare(&[], Polarity::Cost, 0.02, 1);
        assert!(c.ratio.is_nan() && c.pairs == 0 && c.verdict == Verdict::Unknown);
        // Both zero: equal. One zero, NaN, negative: no ratio.
        let pairs = [
            (0.0, 0.0),
            (0.0, 0.0),
            (0.0, 0.0),
            (0.0, 5.0),
            (f64::NAN, 1.0),
        ];
        let c = compare(&pairs, Polarity::Cost, 0.02, 1);
        assert_eq!((c.ratio, c.ci95_lo, c.ci95_hi), (1.0, 1.0, 1.0));
        assert_eq!((c.pairs, c.verdict), (3, Verdict::Same));
        assert_eq!(log_ratio(-1.0, 1.0), None);
        // A clear difference: twice the CPU every time, give or take 1 %.
        let pairs = [(1.0, 2.0), (1.1, 2.2 * 1.01), (0.9, 1.8 * 0.99), (1.0, 2.0)];
        let c = compare(&pairs, Polarity::Cost, 0.02, 1);
        assert_eq!(c.verdict, Verdict::More);
        assert!(
            c.ci95_lo < 2.0 && 2.0 < c.ci95_hi && c.ci95_lo > 1.9,
            "{c:?}"
        );
    }

    #[test]
    fn the_stop_rule_reads_the_relative_half_width() {
        let c = Comparison {
            ratio: 1.0,
            ci95_lo: 0.97,
            ci95_hi: 1.03,
            pairs: 5,
            verdict: Verdict::Same,
            noise_threshold: 0.02,
        };
        assert!(close(c.relative_half_width(), 0.03, 1e-12));
        assert!(c.precise_enough(0.031) && !c.precise_enough(0.029));
        assert!(!compare(&[(1.0, 1.0)], Polarity::Cost, 0.02, 1).precise_enough(0.5));
        assert!(!Comparison::baseline(3).precise_enough(0.5));
    }

    #[test]
    fn auto_repeat_stops_when_precise_at_the_cap_or_before_the_time_runs_out() {
        use std::time::Duration;
        let rule = AutoRepeat {
            max_time: Some(Duration::from_secs(100)),
            ..AutoRepeat::default()
        };
        assert_eq!(rule.validate(), Ok(()));
        let with = |half: f64| Comparison {
            ratio: 1.0,
            ci95_lo: 1.0 - half,
            ci95_hi: 1.0 + half,
            pairs: 3,
            verdict: Verdict::Same,
            noise_threshold: 0.02,
        };
        let (base, tight, loose) = (Comparison::baseline(3), with(0.02), with(0.05));
        let secs = Duration::from_secs;
        // The minimum runs whatever the intervals say.
        assert_eq!(rule.decide(2, secs(10), [&base, &tight]), None);
        assert_eq!(
            rule.decide(3, secs(10), [&base, &tight]),
            Some(StopReason::Precise)
        );
        assert_eq!(rule.decide(3, secs(10), [&base, &tight, &loose]), None);
        // No candidate with an interval yet: keep going.
        assert_eq!(rule.decide(3, secs(10), [&base]), None);
        assert_eq!(
            rule.decide(15, secs(10), [&base, &loose]),
            Some(StopReason::MaxRepeat)
        );
        // 4 rounds in 80 s: a fifth would end at 100 s, within the limit; a sixth not.
        assert_eq!(rule.decide(4, secs(80), [&loose]), None);
        assert_eq!(
            rule.decide(5, secs(100), [&loose]),
            Some(StopReason::MaxTime)
        );
        assert_eq!(
            StopReason::Precise.describe(&rule),
            "every throughput interval within ±3%"
        );
        assert_eq!(
            StopReason::MaxTime.describe(&rule),
            "--max-time 100s reached"
        );
        let bad = AutoRepeat {
            max_rounds: 2,
            ..rule
        };
        assert!(bad.validate().unwrap_err().contains("--max-repeat 2"));
        let bad = AutoRepeat {
            precision: 0.0,
            ..rule
        };
        assert!(bad.validate().unwrap_err().contains("--precision"));
    }

    #[test]
    fn fractions_parse_as_percentages_or_fractions() {
        assert_eq!(parse_fraction("2%"), Ok(0.02));
        assert_eq!(parse_fraction(" 3 % "), Ok(0.03));
        assert_eq!(parse_fraction("0.05"), Ok(0.05));
        assert_eq!(parse_fraction("0"), Ok(0.0));
        for bad in ["", "two", "-1%", "nan", "%"] {
            let e = parse_fraction(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("2%"), "{e}");
        }
        let e = parse_fraction("100%").unwrap_err();
        assert!(e.contains("below 100%"), "{e}");
        assert!(parse_fraction("2").is_err());
    }
}
