"""Indicators as pandas DataFrames, read from the SQL views of sql/006_indicators.sql.

The views are the contract; this module only binds parameters, shapes frames and adds what
SQL does poorly: a significance test per indicator of a comparison, so a small sample is not
read as a win. `client` is any clickhouse-connect client: the warehouse's own reader, or one
connected to a running `wrm serve` through its SQL endpoint. A `tenant` of "" reads every
tenant the client may read: through the SQL port with a tenant's key, that tenant's rows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd
from clickhouse_connect.driver.client import Client

from analytics import significance
from analytics.figures import Unit

# How a person reads each indicator (a view column or a comparison row), for analytics.figures.
UNITS: dict[str, Unit] = {
    "runs": "count", "in_progress": "count", "finished": "count", "completed": "count", "failed": "count",
    "canceled": "count", "validations": "count", "quality_runs": "count", "cx_runs": "count",
    "peak_hour_runs": "count", "active_hours": "count", "days_to_benefit": "count",
    "days_from_production_to_benefit": "count",
    "first_pass_rate": "rate", "success_rate": "rate", "validation_pass_rate": "rate", "human_share": "rate",
    "baseline_first_pass_rate": "rate", "rolling_first_pass_rate_at_benefit": "rate",
    "p50_duration_s": "duration", "p95_duration_s": "duration", "mean_duration_s": "duration",
    "human_wait_s_per_run": "duration",
    "input_tokens_per_run": "tokens", "output_tokens_per_run": "tokens", "tokens_per_run": "tokens",
    "cost_per_run_usd": "money",
    "retries_per_run": "per_run", "human_decisions_per_run": "per_run", "runs_per_day": "per_day",
    "runs_per_hour": "per_day",  # an average count per period, read as runs_per_day is
    "quality_mean": "score", "cx_score_mean": "score",
}  # fmt: skip

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2149, 6, 6)  # the largest ClickHouse Date


class NoData(LookupError):
    """The summary tier has no runs for what was asked."""


@dataclass(frozen=True)
class Sides:
    """The two sides of a comparison: two versions, or before and after a day (UTC)."""

    baseline_version: str = ""
    candidate_version: str = ""
    baseline_until: date = LAST_DAY  # baseline takes days before this one
    candidate_since: date = FIRST_DAY  # candidate takes days from this one on
    environment: str = ""  # "" is every environment
    baseline_since: date = FIRST_DAY  # baseline takes days from this one on
    candidate_until: date = LAST_DAY  # candidate takes days up to and including this one

    @classmethod
    def versions(cls, baseline: str, candidate: str, environment: str = "") -> Sides:
        if not baseline or not candidate:
            raise ValueError("a version comparison needs both a baseline and a candidate version")
        return cls(baseline, candidate, environment=environment)

    @classmethod
    def windows(cls, before: date, after: date | None = None, environment: str = "") -> Sides:
        """Baseline: days before `before`; candidate: days from `after` (default `before`) on."""
        after = after or before
        if after < before:
            raise ValueError(f"the candidate window ({after}) starts before the baseline's end ({before})")
        return cls(baseline_until=before, candidate_since=after, environment=environment)

    @classmethod
    def bounded(
        cls,
        baseline: tuple[date, date],
        candidate: tuple[date, date],
        *,
        baseline_version: str = "",
        candidate_version: str = "",
        environment: str = "",
    ) -> Sides:
        """Days `baseline[0]`..`baseline[1]` against `candidate[0]`..`candidate[1]` (all included)."""
        if baseline[1] < baseline[0] or candidate[1] < candidate[0]:
            raise ValueError("a side of the comparison ends before it starts")
        return cls(
            baseline_version,
            candidate_version,
            baseline_until=baseline[1] + timedelta(days=1),
            candidate_since=candidate[0],
            environment=environment,
            baseline_since=baseline[0],
            candidate_until=candidate[1],
        )

    def describe(self) -> tuple[str, str]:
        if self.baseline_version or self.candidate_version:
            return f"version {self.baseline_version}", f"version {self.candidate_version}"
        return f"before {self.baseline_until}", f"from {self.candidate_since}"

    def params(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "baseline_version": self.baseline_version,
            "candidate_version": self.candidate_version,
            "baseline_until": self.baseline_until,
            "candidate_since": self.candidate_since,
            "baseline_since": self.baseline_since,
            "candidate_until": self.candidate_until,
        }


_SIDES_ARGS = (
    "tenant_id = {tenant_id:String}, workflow = {workflow:String}, environment = {environment:String}, "
    "baseline_version = {baseline_version:String}, candidate_version = {candidate_version:String}, "
    "baseline_until = {baseline_until:Date}, candidate_since = {candidate_since:Date}, "
    "baseline_since = {baseline_since:Date}, candidate_until = {candidate_until:Date}"
)
_COMPARISON = f"SELECT * FROM window_comparison({_SIDES_ARGS})"
_DURATIONS = (
    f"SELECT groupArrayArrayIf(durations_ns, b), groupArrayArrayIf(durations_ns, c) "
    f"FROM comparison_window_sides({_SIDES_ARGS})"
)
_EFFECTIVENESS = (
    "SELECT * FROM effectiveness_window(since = {since:Date}, until = {until:Date}, by_day = {by_day:UInt8}) "
    "WHERE ({tenant_id:String} = '' OR tenant_id = {tenant_id:String}) "
    "AND ({workflow:String} = '' OR workflow_name = {workflow:String}) "
    "ORDER BY workflow_name, workflow_version, environment, day"
)
_TIME_TO_BENEFIT = (
    "SELECT * FROM time_to_benefit WHERE ({tenant_id:String} = '' OR tenant_id = {tenant_id:String}) "
    "AND ({workflow:String} = '' OR workflow_name = {workflow:String}) "
    "ORDER BY workflow_name, environment, first_run_in_env"
)
_THROUGHPUT = {
    "day": "SELECT * FROM throughput WHERE ({tenant_id:String} = '' OR tenant_id = {tenant_id:String}) "
    "AND ({workflow:String} = '' OR workflow_name = {workflow:String}) AND day >= {since:Date} "
    "ORDER BY workflow_name, workflow_version, environment, day",
    "hour": "SELECT * FROM throughput_hourly "
    "WHERE ({tenant_id:String} = '' OR tenant_id = {tenant_id:String}) "
    "AND ({workflow:String} = '' OR workflow_name = {workflow:String}) AND hour >= {since:Date} "
    "ORDER BY workflow_name, workflow_version, environment, hour",
}


def effectiveness(
    client: Client,
    tenant: str,
    workflow: str = "",
    *,
    by: Literal["version", "day"] = "version",
    since: date = FIRST_DAY,
    until: date = LAST_DAY,
) -> pd.DataFrame:
    """One row per workflow/version/environment (by="version", over the whole window) or per
    day as well (by="day")."""
    if by not in ("version", "day"):
        raise ValueError(f"by must be 'version' or 'day', not {by!r}")
    params = {
        "tenant_id": tenant,
        "workflow": workflow,
        "since": since,
        "until": until,
        "by_day": int(by == "day"),
    }
    frame = client.query_df(_EFFECTIVENESS, parameters=params)
    if by == "version":
        frame = frame.drop(columns=["day"], errors="ignore")  # an empty result has no columns
    return frame


def compare(
    client: Client,
    tenant: str,
    workflow: str,
    sides: Sides,
    *,
    alpha: float = significance.ALPHA,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Each indicator's baseline, candidate, deltas and sample sizes (the window_comparison
    view), with the test that fits it, its p-value and a verdict. A side without runs raises
    NoData, unless `allow_empty` (a report still shows the side that has runs)."""
    params = {"tenant_id": tenant, "workflow": workflow, **sides.params()}
    frame = client.query_df(_COMPARISON, parameters=params)
    base_label, cand_label = sides.describe()
    if not allow_empty and (frame.empty or frame["baseline_n"].max() == 0):
        raise NoData(f"no finished runs of {workflow!r} (tenant {tenant!r}) for the baseline, {base_label}")
    if not allow_empty and frame["candidate_n"].max() == 0:
        raise NoData(f"no finished runs of {workflow!r} (tenant {tenant!r}) for the candidate, {cand_label}")
    durations = client.query(_DURATIONS, parameters=params).result_rows[0]
    results = [_test(row, durations, alpha) for row in frame.itertuples(index=False)]
    frame["test"] = [r.test for r in results]
    frame["p_value"] = [r.p_value for r in results]
    frame["verdict"] = [r.verdict for r in results]
    frame["note"] = [r.note for r in results]
    frame["direction"] = [
        _direction(row.delta, bool(row.higher_is_better)) if r.verdict == "significant" else ""
        for row, r in zip(frame.itertuples(index=False), results, strict=True)
    ]
    return frame


def _test(row: Any, durations: Sequence[Sequence[int]], alpha: float) -> significance.TestResult:
    base, cand = _value(row.baseline), _value(row.candidate)
    if row.kind == "rate":
        return significance.proportions(base, int(row.baseline_n), cand, int(row.candidate_n), alpha=alpha)
    if row.kind == "mean":
        return significance.means(
            base, _value(row.baseline_sd), int(row.baseline_n),
            cand, _value(row.candidate_sd), int(row.candidate_n), alpha=alpha,
        )  # fmt: skip
    if row.kind == "duration":
        return significance.distributions(durations[0], durations[1], alpha=alpha)
    if row.kind == "count":
        return significance.TestResult("", None, "no test", "a count, not a sample of runs")
    if row.kind == "ratio":
        return significance.TestResult("", None, "no test", "a ratio of totals: no per-run spread is kept")
    return significance.TestResult("", None, "no test", "a count per day, not a sample of runs")


def _value(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _direction(delta: Any, higher_is_better: bool) -> str:
    if delta is None or pd.isna(delta) or delta == 0:
        return ""
    return "better" if (delta > 0) == higher_is_better else "worse"


def time_to_benefit(client: Client, tenant: str, workflow: str = "") -> pd.DataFrame:
    return client.query_df(_TIME_TO_BENEFIT, parameters={"tenant_id": tenant, "workflow": workflow})


def throughput(
    client: Client,
    tenant: str,
    workflow: str = "",
    *,
    by: Literal["day", "hour"] = "day",
    since: date = FIRST_DAY,
) -> pd.DataFrame:
    if by not in _THROUGHPUT:
        raise ValueError(f"by must be 'day' or 'hour', not {by!r}")
    return client.query_df(
        _THROUGHPUT[by], parameters={"tenant_id": tenant, "workflow": workflow, "since": since}
    )
