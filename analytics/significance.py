"""Whether a baseline-vs-candidate difference in one indicator is more than noise.

`wrm compare` shows a before/after delta for each indicator; a delta alone invites reading
meaning into run-to-run jitter. These pure functions pick the test that fits the data we
have (a rate, a mean with its spread, or the raw values) and refuse to give a verdict when
the sample is too small for that test's approximation to hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05

MIN_RUNS = 30  # per side, for the z- and t-tests' large-sample approximations
MIN_OUTCOMES = 5  # successes and failures per side, for the normal approximation to a binomial
MIN_VALUES = 20  # per side, for Mann-Whitney U
ASYMPTOTIC_ABOVE = 8000  # exact Mann-Whitney gets slow past this size


@dataclass(frozen=True)
class TestResult:
    """The outcome of one significance test; `test` is "" and `p_value` None when none ran."""

    __test__ = False  # not a pytest test class

    test: str
    p_value: float | None
    verdict: str  # "significant", "not significant", "too few samples" or "no test"
    note: str = ""


def _decide(test: str, p_value: float, alpha: float) -> TestResult:
    if math.isnan(p_value):
        return TestResult("", None, "no test", "the test is undefined for these values")
    verdict = "significant" if p_value < alpha else "not significant"
    return TestResult(test, p_value, verdict)


def _too_few(test: str, baseline_n: int, candidate_n: int, minimum: int, unit: str) -> TestResult:
    note = f"needs ≥ {minimum} {unit} per side ({baseline_n} and {candidate_n})"
    return TestResult(test, None, "too few samples", note)


def proportions(
    baseline_rate: float | None,
    baseline_n: int,
    candidate_rate: float | None,
    candidate_n: int,
    *,
    alpha: float = ALPHA,
) -> TestResult:
    """Pooled two-proportion z-test, two-sided, on rates in [0, 1] over n runs each."""
    test = "two-proportion z"
    if baseline_rate is None or candidate_rate is None:
        return TestResult("", None, "no test", "a rate is missing on one side")
    if math.isnan(baseline_rate) or math.isnan(candidate_rate):
        return TestResult("", None, "no test", "a rate is not a number on one side")
    if min(baseline_n, candidate_n) < MIN_RUNS:
        return _too_few(test, baseline_n, candidate_n, MIN_RUNS, "runs")
    x1, x2 = round(baseline_rate * baseline_n), round(candidate_rate * candidate_n)
    if baseline_rate != candidate_rate:
        fewest = min(x1, baseline_n - x1, x2, candidate_n - x2)
        if fewest < MIN_OUTCOMES:
            note = (
                f"needs ≥ {MIN_OUTCOMES} successes and failures per side "
                f"({x1}/{baseline_n} and {x2}/{candidate_n})"
            )
            return TestResult(test, None, "too few samples", note)
    pooled = (x1 + x2) / (baseline_n + candidate_n)
    if pooled in (0.0, 1.0):
        return TestResult(test, 1.0, "not significant")
    se = math.sqrt(pooled * (1 - pooled) * (1 / baseline_n + 1 / candidate_n))
    z = (x2 / candidate_n - x1 / baseline_n) / se
    from scipy import stats  # here, not at import: scipy.stats costs every `wrm` command ~1.3 s

    return _decide(test, float(2 * stats.norm.sf(abs(z))), alpha)


def means(
    baseline_mean: float | None,
    baseline_sd: float | None,
    baseline_n: int,
    candidate_mean: float | None,
    candidate_sd: float | None,
    candidate_n: int,
    *,
    alpha: float = ALPHA,
) -> TestResult:
    """Welch's t-test, two-sided, from each side's mean, sample sd (ddof=1) and count."""
    test = "welch t"
    if baseline_mean is None or candidate_mean is None:
        return TestResult("", None, "no test", "a mean is missing on one side")
    if baseline_sd is None or candidate_sd is None:
        return TestResult("", None, "no test", "a standard deviation is missing on one side")
    if min(baseline_n, candidate_n) < MIN_RUNS:
        return _too_few(test, baseline_n, candidate_n, MIN_RUNS, "runs")
    if baseline_sd == 0 and candidate_sd == 0:
        # No spread on either side: any difference is deterministic, none is certain.
        return _decide(test, 1.0 if baseline_mean == candidate_mean else 0.0, alpha)
    from scipy import stats

    result = stats.ttest_ind_from_stats(
        baseline_mean,
        baseline_sd,
        baseline_n,
        candidate_mean,
        candidate_sd,
        candidate_n,
        equal_var=False,
    )
    return _decide(test, float(result.pvalue), alpha)


def distributions(
    baseline: Sequence[float], candidate: Sequence[float], *, alpha: float = ALPHA
) -> TestResult:
    """Mann-Whitney U, two-sided, on the raw per-run values of each side."""
    test = "mann-whitney u"
    if min(len(baseline), len(candidate)) < MIN_VALUES:
        return _too_few(test, len(baseline), len(candidate), MIN_VALUES, "values")
    large = min(len(baseline), len(candidate)) > ASYMPTOTIC_ABOVE
    from scipy import stats

    result = stats.mannwhitneyu(
        baseline, candidate, alternative="two-sided", method="asymptotic" if large else "auto"
    )
    return _decide(test, float(result.pvalue), alpha)
