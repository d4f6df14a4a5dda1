"""The significance tests behind `wrm compare`, checked against formulas and scipy on raw data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analytics import significance as sig


def _pooled_z_p(x1: int, n1: int, x2: int, n2: int) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    phi = 0.5 * (1 + math.erf(abs(z) / math.sqrt(2)))
    return 2 * (1 - phi)


def test_proportions_large_difference_is_significant_and_matches_formula() -> None:
    result = sig.proportions(0.6, 500, 0.8, 500)
    assert result.test == "two-proportion z"
    assert result.verdict == "significant"
    assert result.p_value is not None
    assert result.p_value < 1e-10
    assert result.p_value == pytest.approx(_pooled_z_p(300, 500, 400, 500), rel=1e-6, abs=1e-15)
    assert result.note == ""


def test_proportions_matches_formula_in_the_ordinary_range() -> None:
    result = sig.proportions(0.50, 200, 0.58, 250)
    assert result.p_value == pytest.approx(_pooled_z_p(100, 200, 145, 250), rel=1e-9)


def test_proportions_small_n_is_too_few() -> None:
    result = sig.proportions(0.6, 10, 0.8, 10)
    assert result.verdict == "too few samples"
    assert result.p_value is None
    assert "10" in result.note


def test_proportions_small_difference_is_not_significant() -> None:
    result = sig.proportions(0.50, 1000, 0.51, 1000)
    assert result.verdict == "not significant"
    assert result.p_value is not None
    assert result.p_value > 0.05


def test_proportions_too_few_failures_is_too_few() -> None:
    result = sig.proportions(0.90, 100, 0.98, 100)  # only 2 failures on the candidate side
    assert result.verdict == "too few samples"
    assert result.note


def test_proportions_identical_extreme_rates_have_no_variance() -> None:
    assert sig.proportions(1.0, 100, 1.0, 200) == sig.TestResult("two-proportion z", 1.0, "not significant")
    assert sig.proportions(0.0, 10, 0.0, 10).verdict == "too few samples"


def test_proportions_missing_rate_is_no_test() -> None:
    result = sig.proportions(None, 500, 0.8, 500)
    assert result == sig.TestResult("", None, "no test", result.note)
    assert result.note


def test_means_match_welch_on_raw_samples() -> None:
    rng = np.random.default_rng(20240501)
    a = rng.normal(10.0, 2.0, 80)
    b = rng.normal(10.6, 3.5, 120)
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    result = sig.means(
        float(a.mean()), float(a.std(ddof=1)), len(a), float(b.mean()), float(b.std(ddof=1)), len(b)
    )
    assert result.test == "welch t"
    assert result.p_value == pytest.approx(expected, abs=1e-9)
    assert result.verdict == ("significant" if expected < 0.05 else "not significant")


def test_means_small_n_is_too_few() -> None:
    result = sig.means(1.0, 0.5, 10, 2.0, 0.5, 100)
    assert result.verdict == "too few samples"
    assert result.p_value is None
    assert "10" in result.note and "100" in result.note


def test_means_missing_sd_is_no_test() -> None:
    assert sig.means(1.0, None, 50, 2.0, 0.5, 50).verdict == "no test"


def test_means_zero_spread_is_deterministic() -> None:
    assert sig.means(1.0, 0.0, 50, 2.0, 0.0, 50) == sig.TestResult("welch t", 0.0, "significant")
    assert sig.means(1.0, 0.0, 50, 1.0, 0.0, 50) == sig.TestResult("welch t", 1.0, "not significant")


def test_distributions_shifted_by_one_sd_is_significant() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.0, 1.0, 200), rng.normal(1.0, 1.0, 200)
    result = sig.distributions(a.tolist(), b.tolist())
    assert result.test == "mann-whitney u"
    assert result.verdict == "significant"
    assert result.p_value == stats.mannwhitneyu(a, b, alternative="two-sided").pvalue


def test_distributions_same_distribution_is_not_significant() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(5.0, 1.0, 200), rng.normal(5.0, 1.0, 200)
    result = sig.distributions(a.tolist(), b.tolist())
    assert result.verdict == "not significant"
    assert result.p_value == stats.mannwhitneyu(a, b, alternative="two-sided").pvalue


def test_distributions_few_values_is_too_few() -> None:
    result = sig.distributions([float(i) for i in range(10)], [float(i) for i in range(50)])
    assert result.verdict == "too few samples"
    assert result.p_value is None
    assert "10" in result.note


def test_verdict_follows_alpha() -> None:
    p = sig.proportions(0.50, 200, 0.58, 250).p_value
    assert p is not None and 0.01 < p < 0.2
    assert sig.proportions(0.50, 200, 0.58, 250, alpha=p * 1.01).verdict == "significant"
    assert sig.proportions(0.50, 200, 0.58, 250, alpha=p).verdict == "not significant"
