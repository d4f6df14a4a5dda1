"""What a rule measures: one query per metric over the runs of its scope, with bound parameters
only (the scope adds fixed conditions, never text from the rule).

Windowed metrics read runs_by_time (sorted by tenant and start time) for the runs that started
in the last window_s seconds (or later, from a skewed clock): rates, percentiles and means over
those that finished (the samples), as the indicators count them
(sql/views/effectiveness_window.sql); `no_runs` counts every run started. `waiting_human` reads
runs_store for runs of any start time that are waiting for a person and have sent no span for
longer than wait_s (a cancel requested or done takes a run out, as the run list shows it); its
window is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from analytics.alerts.rules import Metric, Rule
from warehouse import Warehouse

_FINISHED = "status IN ('completed', 'failed', 'canceled')"
_WINDOW = (
    " FROM runs_by_time FINAL WHERE <scope> AND is_deleted = 0 AND start_time >= {since:DateTime64(6, 'UTC')}"
)
_PER_FINISHED = f"countIf({_FINISHED})"  # the samples of a rate or mean
_CANCELED = (
    "(SELECT run_id FROM run_actions FINAL WHERE tenant_id = {tenant:String} AND kind = 'cancel' "
    "AND state IN ('pending', 'done'))"
)

# value, samples
SQL: Final[dict[Metric, str]] = {
    "first_pass_rate": f"SELECT sum(first_pass) / nullIf({_PER_FINISHED}, 0), {_PER_FINISHED}{_WINDOW}",
    "success_rate": (
        f"SELECT countIf(status = 'completed') / nullIf({_PER_FINISHED}, 0), {_PER_FINISHED}{_WINDOW}"
    ),
    "failure_count": f"SELECT countIf(status = 'failed'), {_PER_FINISHED}{_WINDOW}",
    "failure_rate": (
        f"SELECT countIf(status = 'failed') / nullIf({_PER_FINISHED}, 0), {_PER_FINISHED}{_WINDOW}"
    ),
    "p95_duration_s": (
        f"SELECT quantileExactInclusiveIf(0.95)(duration_ns, {_FINISHED} AND isNotNull(duration_ns)) / 1e9, "
        f"countIf({_FINISHED} AND isNotNull(duration_ns)){_WINDOW}"
    ),
    "cost_per_run": (
        f"SELECT sumIf(cost_usd, {_FINISHED}) / nullIf({_PER_FINISHED}, 0), {_PER_FINISHED}{_WINDOW}"
    ),
    "tokens_per_run": (
        f"SELECT sumIf(input_tokens + output_tokens, {_FINISHED}) / nullIf({_PER_FINISHED}, 0), "
        f"{_PER_FINISHED}{_WINDOW}"
    ),
    "no_runs": f"SELECT count(), count(){_WINDOW}",
    "waiting_human": (
        "SELECT count(), count() FROM runs_store FINAL WHERE <scope> AND status = 'waiting_human' "
        "AND last_active_at < {waited_before:DateTime64(6, 'UTC')} "
        f"AND run_id NOT IN {_CANCELED}"
    ),
}
_SCOPE = (("workflow", "workflow_name"), ("version", "workflow_version"), ("environment", "environment"))


@dataclass(frozen=True)
class Measurement:
    value: float | None  # None: nothing to measure (no finished run for a rate or a mean)
    samples: int  # the runs the value is over (finished ones, for rates, percentiles and means)


def scope(rule: Rule) -> tuple[str, dict[str, Any]]:
    """The conditions for the rule's tenant and scope, and their parameters."""
    parts, params = ["tenant_id = {tenant:String}"], {"tenant": rule.tenant_id}
    for name, column in _SCOPE:
        value = getattr(rule, name)
        if value:
            parts.append(f"{column} = {{{name}:String}}")
            params[name] = value
    return " AND ".join(parts), params


def measure(wh: Warehouse, rule: Rule, now: datetime) -> Measurement:
    """The rule's metric at `now` (UTC)."""
    where, params = scope(rule)
    at = now.astimezone(UTC).replace(tzinfo=None)
    params.update(
        since=at - timedelta(seconds=rule.window_s),
        waited_before=at - timedelta(seconds=rule.wait_s),
    )
    sql = SQL[rule.metric].replace("<scope>", where)
    rows = wh.rows(sql, {k: v for k, v in params.items() if "{" + k + ":" in sql})
    value, samples = rows[0] if rows else (None, 0)
    if value is not None and not math.isfinite(float(value)):
        value = None  # a percentile of nothing
    return Measurement(None if value is None else float(value), int(samples))
