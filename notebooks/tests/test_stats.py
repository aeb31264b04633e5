"""csumbench_stats against known answers, as harness/src/stats.rs is tested."""

import math

import numpy as np
import pytest

import csumbench_stats as stats


@pytest.mark.parametrize("df, t", [(1, 12.706205), (2, 4.302653), (4, 2.776445),
                                   (9, 2.262157), (14, 2.144787), (30, 2.042272)])
def test_t_quantiles_match_the_tables(df, t):
    assert stats.t_quantile(0.975, df) == pytest.approx(t, abs=1e-5)
    assert stats.t_cdf(-t, df) == pytest.approx(0.025, abs=1e-6)


def test_the_interval_at_three_pairs_is_students_t_on_the_log_ratios():
    pairs = [(100.0, 100.0 * math.exp(d)) for d in (0.1, 0.2, 0.3)]
    c = stats.compare(pairs, stats.HIGHER_IS_FASTER)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert c["ratio"] == pytest.approx(math.exp(0.2))
    assert c["ci95_lo"] == pytest.approx(math.exp(0.2 - half), rel=1e-6)
    assert c["ci95_hi"] == pytest.approx(math.exp(0.2 + half), rel=1e-6)
    assert (c["pairs"], c["verdict"]) == (3, "same")
    # The same seed, the same interval.
    assert stats.compare(pairs, stats.COST) == {**c, "verdict": "same"}


def test_verdicts_need_the_whole_interval_outside_the_noise_band():
    v = stats.verdict
    assert v(1.03, 1.10, stats.HIGHER_IS_FASTER) == "faster"
    assert v(1.01, 1.10, stats.HIGHER_IS_FASTER) == "same"
    assert v(0.90, 0.97, stats.LOWER_IS_FASTER) == "faster"
    assert v(1.29, 1.37, stats.COST) == "more"
    assert v(0.50, 0.60, stats.COST) == "less"
    assert v(0.97, 0.981, stats.HIGHER_IS_FASTER) == "same"
    assert v(0.97, 0.980, stats.HIGHER_IS_FASTER) == "slower"


def test_few_zero_and_missing_pairs():
    c = stats.compare([(100, 110), (100, 120)], stats.COST)
    assert (c["pairs"], c["verdict"]) == (2, "unknown") and math.isnan(c["ci95_lo"])
    assert c["ratio"] == pytest.approx(math.sqrt(1.1 * 1.2))
    c = stats.compare([(0, 0)] * 3 + [(0, 5), (math.nan, 1)], stats.COST)
    assert (c["ratio"], c["ci95_lo"], c["ci95_hi"], c["pairs"]) == (1.0, 1.0, 1.0, 3)
    assert math.isnan(stats.compare([], stats.COST)["ratio"])


def test_coverage_on_log_normal_experiments():
    """As the harness's coverage test: true ratio 1.10, shared drift ±20 %, noise ±10 %."""
    rng = np.random.default_rng(7)
    for n in (3, 10):
        covered = 0
        for experiment in range(200):
            drift = 0.2 * rng.standard_normal(n)
            base = 1000 * np.exp(drift + 0.1 * rng.standard_normal(n))
            cand = 1100 * np.exp(drift + 0.1 * rng.standard_normal(n))
            c = stats.compare(list(zip(base, cand)), stats.HIGHER_IS_FASTER, seed=experiment)
            covered += c["ci95_lo"] <= 1.1 <= c["ci95_hi"]
        assert covered / 200 >= 0.9, n


def test_tukey_fences():
    assert stats.tukey_outliers([10, 11, 14.5, 10, 11, 12]) == [2]
    assert stats.tukey_outliers([1, 2, 1000]) == []
    assert stats.tukey_outliers([]) == []
