"""The harness's comparison of a strategy with the baseline, in Python, so that every
results folder can be read with intervals, including older ones without summary.csv.

The method is harness/src/stats.rs's (its module docs say why): pairs are (baseline
repeat i, candidate repeat i), both ok; each is a log ratio; the ratio is the geometric
mean of the paired ratios; the 95 % interval is the union of Student's t on the mean log
ratio and Hesterberg's expanded-percentile bootstrap; a verdict needs the whole interval
outside the noise band [1/(1+θ), 1+θ], and at least 3 pairs.

The bootstrap here draws from numpy's generator, not the harness's xoshiro256++, so at
n >= 5 an interval end can differ from summary.csv in the last digit; at n = 3 the t side
decides and both agree exactly.
"""

import math
from statistics import NormalDist

import numpy as np

MIN_PAIRS = 3
CONFIDENCE = 0.95
RESAMPLES = 10_000
NOISE_THRESHOLD = 0.02
SEED = 0x6373756D62656E63  # the harness's default, "csumbenc"

# Which way each metric is good (harness: summary::Metric::polarity).
HIGHER_IS_FASTER, LOWER_IS_FASTER, COST = "higher_is_faster", "lower_is_faster", "cost"


def t_cdf(t, df):
    """Student's t CDF for a whole number of degrees of freedom (Abramowitz & Stegun
    26.7.3-4: finite sums of powers of cos θ, θ = atan(t/√df))."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(3, df, 2):
            term *= c2 * (k - 1) / k
            total += term
        a = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:
        term, total = 1.0, 1.0
        for k in range(2, df, 2):
            term *= c2 * (k - 1) / k
            total += term
        a = math.sin(theta) * total
    return 0.5 * (1 + a)


def t_quantile(p, df):
    """The p quantile (p > 0.5) of Student's t, by bisection on the CDF."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def expanded_tail(n):
    """α'/2 = Φ(−√(n/(n−1)) · t(1 − α/2, n − 1)): where the expanded percentile bootstrap
    reads its percentiles."""
    t = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1)
    return NormalDist().cdf(-math.sqrt(n / (n - 1)) * t)


def log_ratios(pairs):
    """ln(candidate / baseline) of each usable pair: both 0 is equal (0); one 0, a
    negative or a missing value has no ratio and is left out."""
    out = []
    for base, cand in pairs:
        if not (np.isfinite(base) and np.isfinite(cand)) or base < 0 or cand < 0:
            continue
        if base == 0 and cand == 0:
            out.append(0.0)
        elif base > 0 and cand > 0:
            out.append(math.log(cand / base))
    return np.array(out)


def verdict(lo, hi, polarity, noise_threshold=NOISE_THRESHOLD):
    band = 1 + noise_threshold
    higher, lower = {HIGHER_IS_FASTER: ("faster", "slower"),
                     LOWER_IS_FASTER: ("slower", "faster"),
                     COST: ("more", "less")}[polarity]
    if lo > band:
        return higher
    if hi < 1 / band:
        return lower
    return "same"


def compare(pairs, polarity, noise_threshold=NOISE_THRESHOLD, seed=SEED):
    """{ratio, ci95_lo, ci95_hi, pairs, verdict} of a candidate against the baseline over
    (baseline, candidate) value pairs of one metric."""
    d = log_ratios(pairs)
    n = len(d)
    ratio = math.exp(d.mean()) if n else math.nan
    if n < MIN_PAIRS:
        return {"ratio": ratio, "ci95_lo": math.nan, "ci95_hi": math.nan, "pairs": n,
                "verdict": "unknown"}
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(RESAMPLES, n))].mean(axis=1)
    tail = expanded_tail(n)
    boot_lo, boot_hi = np.quantile(means, [tail, 1 - tail])
    lo = math.exp(min(d.mean() - half, boot_lo))
    hi = math.exp(max(d.mean() + half, boot_hi))
    return {"ratio": ratio, "ci95_lo": lo, "ci95_hi": hi, "pairs": n,
            "verdict": verdict(lo, hi, polarity, noise_threshold)}


def tukey_outliers(values):
    """Positions of the values outside [Q1 − 1.5 IQR, Q3 + 1.5 IQR] (type-7 quartiles,
    numpy's default); with three values none can be."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return []
    q1, q3 = np.quantile(finite, [0.25, 0.75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    return [i for i, v in enumerate(values) if v < lo or v > hi]
