"""A report's content as typed data: what the HTML, Markdown and PDF renderers all read.

Gathering (gather.py) fills it from the indicator views; renderers only lay it out, so the three
formats cannot disagree on a figure. Values are raw numbers in the units `analytics.figures`
formats (rates in [0, 1], seconds, USD); None is "no value" (no runs to compute it from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from analytics.figures import Unit
from analytics.reports.request import ReportRequest

# What a snapshot row says about its change. Only "better" and "worse" claim a difference, and
# only after a significance test passed on enough runs.
VERDICTS = ("better", "worse", "no significant change", "not enough runs", "no test", "")


@dataclass(frozen=True)
class Indicator:
    """One row of the effectiveness snapshot: the report's side against the comparison's."""

    key: str  # the version_comparison indicator, e.g. first_pass_rate
    label: str  # for a reader, e.g. "First-pass success"
    unit: Unit
    current: float | None
    current_n: int
    before: float | None = None  # None without a comparison, or with no runs before
    before_n: int = 0
    delta: float | None = None
    relative_delta: float | None = None
    higher_is_better: bool = True
    verdict: str = ""  # one of VERDICTS
    test: str = ""
    p_value: float | None = None
    note: str = ""  # why there is no verdict, e.g. "needs ≥ 30 runs per side (12 and 40)"


@dataclass(frozen=True)
class DayPoint:
    """One UTC day of the trend charts (all versions of the workflow together)."""

    day: date
    runs: int
    finished: int
    first_pass_rate: float | None
    success_rate: float | None
    p95_duration_s: float | None
    cost_per_run_usd: float | None


@dataclass(frozen=True)
class VersionBenefit:
    """A version's time to benefit in one environment (the time_to_benefit view)."""

    version: str
    environment: str
    previous_version: str
    first_run_in_env: datetime | None
    baseline_first_pass_rate: float | None
    benefit_day: date | None
    days_to_benefit: int | None
    rolling_first_pass_rate_at_benefit: float | None


@dataclass(frozen=True)
class FailureReason:
    reason: str  # "" when the run failed with no reason recorded
    failed_step: str
    runs: int
    example_run_ids: tuple[str, ...]


@dataclass(frozen=True)
class StepRetries:
    step: str
    runs: int  # runs that ran the step
    attempts: int
    retries: int  # attempts after the first
    failed_attempts: int


@dataclass(frozen=True)
class PriceGap:
    """A model that ran with tokens but no cost attribute and no price when its run was stored:
    its cost counted as 0. `model` '' is steps that named no model."""

    model: str
    steps: int
    runs: int


@dataclass(frozen=True)
class ReportData:
    request: ReportRequest
    generated_at: datetime
    source: str  # where the figures were read, e.g. "the running server at 127.0.0.1:8080"
    current_label: str  # e.g. "2026-11-25 – 2026-12-01" or "version 2"
    before_label: str  # "" without a comparison
    snapshot: tuple[Indicator, ...]
    trend: tuple[DayPoint, ...]
    benefits: tuple[VersionBenefit, ...]
    failures: tuple[FailureReason, ...]
    retries: tuple[StepRetries, ...]
    unpriced_runs: int = 0  # runs of the report's days (every version) whose cost is partial
    price_gaps: tuple[PriceGap, ...] = ()
    before_unpriced_runs: int = 0  # the same for the days before (compared with `previous`)
    notes: tuple[str, ...] = field(default_factory=tuple)  # caveats a reader must see

    @property
    def title(self) -> str:
        return f"{self.request.workflow}: indicator report"

    @property
    def has_runs(self) -> bool:
        """Runs on either side: comparing versions, the baseline may have run and the candidate not."""
        return any(i.key == "runs" and ((i.current or 0) > 0 or (i.before or 0) > 0) for i in self.snapshot)
