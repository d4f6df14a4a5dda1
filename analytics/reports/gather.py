"""build(client, request) -> ReportData: every figure of a report, read from the SQL views.

The snapshot is one window_comparison query (the view `wrm compare` reads, with the same
significance tests), the trends are workflow_days, the rest time_to_benefit, failure_reasons,
step_retries and unpriced_models. Nothing is computed here that a reader could not get by
running those views with the same parameters, which is what keeps a report equal to SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from clickhouse_connect.driver.client import Client

from analytics import indicators
from analytics.figures import Unit, missing
from analytics.reports.content import (
    DayPoint,
    FailureReason,
    Indicator,
    PriceGap,
    ReportData,
    StepRetries,
    VersionBenefit,
)
from analytics.reports.request import ReportRequest

# The snapshot's rows, in reading order: the indicator's label and the unit it reads in.
LABELS: dict[str, tuple[str, Unit]] = {
    "runs": ("Runs", "count"),
    "runs_per_day": ("Throughput (runs per day)", "per_day"),
    "success_rate": ("Success", "rate"),
    "first_pass_rate": ("First-pass success", "rate"),
    "validation_pass_rate": ("Validations passed", "rate"),
    "quality_mean": ("Quality (mean score)", "score"),
    "p50_duration_s": ("Median duration", "duration"),
    "p95_duration_s": ("p95 duration", "duration"),
    "tokens_per_run": ("Tokens per run", "tokens"),
    "cost_per_run_usd": ("Cost per run", "money"),
    "human_share": ("Runs needing a person", "rate"),
    "human_decisions_per_run": ("Human decisions per run", "per_run"),
    "human_wait_s_per_run": ("Human wait per run", "duration"),
    "cx_score_mean": ("CX score", "score"),
}
# Shown only when some run of either side carries them (validations, scores, CX).
WHERE_PRESENT = frozenset({"validation_pass_rate", "quality_mean", "cx_score_mean"})
MAX_FAILURES = 10
MAX_STEPS = 15
MAX_VERSIONS = 20
MAX_GAPS = 10
RAW_TIER_DAYS = 30  # the shortest default raw retention: older periods get a note

_WHERE = {
    "tenant_id": "String",
    "workflow": "String",
    "environment": "String",
    "since": "Date",
    "until": "Date",
}
_ARGS = ", ".join(f"{k} = {{{k}:{t}}}" for k, t in _WHERE.items())
_DAYS = f"SELECT * FROM workflow_days({_ARGS})"
_FAILURES = f"SELECT * FROM failure_reasons({_ARGS}) LIMIT {MAX_FAILURES}"
_RETRIES = (
    f"SELECT * FROM step_retries({_ARGS}) WHERE retries > 0 OR failed_attempts > 0 "
    f"ORDER BY retries DESC, failed_attempts DESC, step LIMIT {MAX_STEPS}"
)
_UNPRICED = (
    f"SELECT model, steps, runs, unpriced_runs FROM unpriced_models({_ARGS}) "
    f"ORDER BY runs DESC, model LIMIT {MAX_GAPS}"
)
_UNPRICED_RUNS = f"SELECT any(unpriced_runs) FROM unpriced_models({_ARGS})"
_BENEFITS = (
    "SELECT * FROM time_to_benefit "
    # '' through a tenant key's SQL port, whose time_to_benefit holds that tenant's rows only
    "WHERE ({tenant_id:String} = '' OR tenant_id = {tenant_id:String}) AND workflow_name = {workflow:String} "
    "AND ({environment:String} = '' OR environment = {environment:String}) "
    f"ORDER BY first_run_in_env DESC, environment LIMIT {MAX_VERSIONS}"
)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def build(
    client: Client,
    request: ReportRequest,
    *,
    source: str = "",
    now: datetime | None = None,
    progress: Progress = _quiet,
    steps: bool = True,
) -> ReportData:
    """Read every figure of `request`'s report through `client` (any clickhouse-connect client:
    the warehouse's reader, or the SQL port of a running server, whose tenant keys see their
    own tenant only). `progress` hears each stage, for a command's progress line. `steps=False`
    leaves out what reads the steps tier (retries by step, the cost caveat): seconds at 10M
    steps, too slow for a page that is read on every view."""
    params: dict[str, Any] = {
        "tenant_id": request.tenant,
        "workflow": request.workflow,
        "environment": request.environment,
        "since": request.since,
        "until": request.until,
    }
    progress("effectiveness snapshot")
    sides = _sides(request)
    frame = indicators.compare(client, request.tenant, request.workflow, sides, allow_empty=True)
    snapshot = _snapshot(frame, request.compare.kind != "none")
    progress("trends by day")
    trend = _trend(client.query_df(_DAYS, parameters=params), request)
    progress("time to benefit")
    benefits = _benefits(client.query_df(_BENEFITS, parameters=params))
    progress("failure reasons and retries")
    failures = tuple(
        FailureReason(
            str(r.failure_reason), str(r.failed_step), int(r.runs), tuple(map(str, r.example_run_ids))
        )
        for r in _records(client.query_df(_FAILURES, parameters=params))
    )
    retries = tuple(
        StepRetries(str(r.step), int(r.runs), int(r.attempts), int(r.retries), int(r.failed_attempts))
        for r in (_records(client.query_df(_RETRIES, parameters=params)) if steps else [])
    )
    progress("prices")
    unpriced = _records(client.query_df(_UNPRICED, parameters=params)) if steps else []
    gaps = tuple(PriceGap(str(r.model), int(r.steps), int(r.runs)) for r in unpriced)
    # the view repeats the distinct count of runs with an unpriced step on every row
    unpriced_runs = int(unpriced[0].unpriced_runs) if unpriced else 0
    before_unpriced_runs = 0
    if steps and request.compare.kind == "previous":
        before_since, before_until = request.previous_window()
        before = client.query(
            _UNPRICED_RUNS, parameters={**params, "since": before_since, "until": before_until}
        ).result_rows
        before_unpriced_runs = int(before[0][0] or 0) if before else 0  # NULL: no unpriced step
    current_label, before_label = _labels(request)
    return ReportData(
        request=request,
        generated_at=now or datetime.now(UTC),
        source=source,
        current_label=current_label,
        before_label=before_label,
        snapshot=snapshot,
        trend=trend,
        benefits=benefits,
        failures=failures,
        retries=retries,
        unpriced_runs=unpriced_runs,
        price_gaps=gaps,
        before_unpriced_runs=before_unpriced_runs,
        notes=_notes(request, snapshot, now or datetime.now(UTC)),
    )


def _sides(request: ReportRequest) -> indicators.Sides:
    period = (request.since, request.until)
    env = request.environment
    cmp_ = request.compare
    if cmp_.kind == "previous":
        return indicators.Sides.bounded(request.previous_window(), period, environment=env)
    if cmp_.kind == "versions":
        return indicators.Sides.bounded(
            period,
            period,
            baseline_version=cmp_.baseline_version,
            candidate_version=cmp_.candidate_version,
            environment=env,
        )
    # no comparison: a baseline side no day can be on (from the last day, before the first)
    return indicators.Sides(
        baseline_since=indicators.LAST_DAY,
        baseline_until=indicators.FIRST_DAY,
        candidate_since=request.since,
        candidate_until=request.until,
        environment=env,
    )


def _labels(request: ReportRequest) -> tuple[str, str]:
    period = f"{request.since} – {request.until}"
    cmp_ = request.compare
    if cmp_.kind == "versions":
        return f"version {cmp_.candidate_version}", f"version {cmp_.baseline_version}"
    if cmp_.kind == "previous":
        before_since, before_until = request.previous_window()
        days = "day" if request.days == 1 else f"{request.days} days"
        return period, f"{before_since} – {before_until} (the {days} before)"
    return period, ""


class _Row(dict[str, Any]):
    """A result row read by name: `row.runs`."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def _records(frame: pd.DataFrame) -> list[_Row]:
    return [_Row({str(k): v for k, v in r.items()}) for r in frame.to_dict("records")]


def _number(v: Any) -> float | None:
    return None if missing(v) else float(v)


def verdict(row: Any) -> str:
    """A comparison row's verdict in a reader's words: a direction only for a significant difference."""
    if row.verdict == "significant":
        return str(row.direction) or "no significant change"
    if row.verdict == "not significant":
        return "no significant change"
    if row.verdict == "too few samples":
        return "not enough runs"
    return "no test"


def _snapshot(frame: pd.DataFrame, compared: bool) -> tuple[Indicator, ...]:
    rows = {str(r.indicator): r for r in _records(frame)}
    out = []
    for key, (label, unit) in LABELS.items():
        r = rows.get(key)
        if r is None:
            continue
        if key in WHERE_PRESENT and int(r.baseline_n) == 0 and int(r.candidate_n) == 0:
            continue
        out.append(
            Indicator(
                key=key,
                label=label,
                unit=unit,
                current=_number(r.candidate),
                current_n=int(r.candidate_n),
                before=_number(r.baseline) if compared else None,
                before_n=int(r.baseline_n) if compared else 0,
                delta=_number(r.delta) if compared else None,
                relative_delta=_number(r.relative_delta) if compared else None,
                higher_is_better=bool(r.higher_is_better),
                verdict=verdict(r) if compared else "",
                test=str(r.test) if compared else "",
                p_value=_number(r.p_value) if compared else None,
                note=str(r.note) if compared else "",
            )
        )
    return tuple(out)


def _trend(frame: pd.DataFrame, request: ReportRequest) -> tuple[DayPoint, ...]:
    """One point per day of the period: a day without runs reads 0 runs and no rates."""
    by_day = {_day(r.day): r for r in _records(frame)}
    points = []
    for i in range(request.days):
        day = request.since + timedelta(days=i)
        r = by_day.get(day)
        if r is None:
            points.append(DayPoint(day, 0, 0, None, None, None, None))
            continue
        points.append(
            DayPoint(
                day,
                int(r.runs),
                int(r.finished),
                _number(r.first_pass_rate),
                _number(r.success_rate),
                _number(r.p95_duration_s),
                _number(r.cost_per_run_usd),
            )
        )
    return tuple(points)


def _day(v: Any) -> date:
    return v.date() if isinstance(v, datetime | pd.Timestamp) else v


def _benefits(frame: pd.DataFrame) -> tuple[VersionBenefit, ...]:
    out = []
    for r in _records(frame):
        out.append(
            VersionBenefit(
                version=str(r.workflow_version),
                environment=str(r.environment),
                previous_version=str(r.previous_version),
                first_run_in_env=None if missing(r.first_run_in_env) else pd.Timestamp(r.first_run_in_env),
                baseline_first_pass_rate=_number(r.baseline_first_pass_rate),
                benefit_day=None
                if missing(r.benefit_day) or r.benefit_day is pd.NaT
                else _day(r.benefit_day),
                days_to_benefit=None if missing(r.days_to_benefit) else int(r.days_to_benefit),
                rolling_first_pass_rate_at_benefit=_number(r.rolling_first_pass_rate_at_benefit),
            )
        )
    return tuple(out)


def _notes(request: ReportRequest, snapshot: tuple[Indicator, ...], now: datetime) -> tuple[str, ...]:
    notes = []
    by_key = {i.key: i for i in snapshot}
    runs, finished = by_key.get("runs"), by_key.get("success_rate")
    if runs is not None and finished is not None and (runs.current or 0) > finished.current_n:
        still = int(runs.current or 0) - finished.current_n
        notes.append(
            f"{still:,} run{'s' if still != 1 else ''} of these days had not finished when the report was "
            "made: they count in Runs and throughput only; every other figure is over finished runs."
        )
    if request.since < now.date() - timedelta(days=RAW_TIER_DAYS):
        notes.append(
            "Failure reasons and retries by step read the runs and steps the raw tiers still keep "
            "(90 days by default, per tenant in the retention settings); the other figures read the "
            "daily summaries, kept 400 days by default."
        )
    return tuple(notes)
