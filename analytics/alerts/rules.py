"""What an alert rule is: the metrics it may watch, its fields, their defaults, and the checks
that span several fields (the API reports each problem under the field it is about).

A rule measures the runs of its scope (workflow, version, environment; '' is all) that started
in the last `window_s` seconds, and compares the value with `threshold`: `below` fires when the
value is under it, `above` when it is over it. A firing rule resolves only once the value is back
past `recover_threshold` (at or above it for `below`, at or below it for `above`; by default the
threshold itself), so a value wavering between the two keeps it firing (hysteresis).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast, get_args

Metric = Literal[
    "first_pass_rate", "success_rate", "failure_count", "failure_rate", "p95_duration_s", "cost_per_run",
    "tokens_per_run", "waiting_human", "no_runs",
]  # fmt: skip
Comparison = Literal["below", "above"]
METRIC_NAMES: Final[tuple[Metric, ...]] = get_args(Metric)

MAX_WINDOW_S = 366 * 86_400
MAX_INTERVAL_S = 86_400
MAX_MIN_SAMPLES = 1_000_000
MAX_VALUE = 1e15  # thresholds: far beyond any count, duration, cost or token figure
DEFAULTS: Final[Mapping[str, Any]] = {
    "window_s": 3600,
    "min_samples": 10,
    "interval_s": 60,
    "enabled": True,
    "workflow": "",
    "version": "",
    "environment": "",
}
DEFAULT_WAIT_S = 3600  # waiting_human: runs waiting for a person longer than an hour


@dataclass(frozen=True)
class MetricInfo:
    meaning: str
    comparison: Comparison  # the default
    rate: bool = False  # a share of finished runs: thresholds between 0 and 1
    sampled: bool = True  # a verdict needs min_samples runs; counts need none
    threshold: float | None = None  # the default, when there is a natural one


METRICS: Final[Mapping[Metric, MetricInfo]] = {
    "first_pass_rate": MetricInfo("share of finished runs completed with no retry, failure or correction",
                                  "below", rate=True),
    "success_rate": MetricInfo("share of finished runs that completed", "below", rate=True),
    "failure_count": MetricInfo("runs that failed", "above", sampled=False),
    "failure_rate": MetricInfo("share of finished runs that failed", "above", rate=True),
    "p95_duration_s": MetricInfo("95th percentile of finished runs' durations, in seconds", "above"),
    "cost_per_run": MetricInfo("mean cost of finished runs, USD", "above"),
    "tokens_per_run": MetricInfo("mean input + output tokens of finished runs", "above"),
    "waiting_human": MetricInfo("runs waiting for a person for longer than wait_s (of any start time)",
                                "above", sampled=False, threshold=0),
    "no_runs": MetricInfo("runs started (fires below the threshold: none, by default)", "below",
                          sampled=False, threshold=1),
}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    tenant_id: str
    rule_id: str
    name: str
    metric: Metric
    comparison: Comparison
    threshold: float
    recover_threshold: float | None  # None: the threshold
    window_s: int
    wait_s: int  # waiting_human only; 0 for every other metric
    min_samples: int
    interval_s: int
    workflow: str
    version: str
    environment: str
    enabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def info(self) -> MetricInfo:
        return METRICS[self.metric]

    @property
    def recover(self) -> float:
        return self.threshold if self.recover_threshold is None else self.recover_threshold


# the fields a rule's author sets (the rest are the store's)
FIELDS: Final[tuple[str, ...]] = (
    "name", "metric", "comparison", "threshold", "recover_threshold", "window_s", "wait_s", "min_samples",
    "interval_s", "workflow", "version", "environment", "enabled",
)  # fmt: skip
# what changing the metric re-derives, unless the change names it too
METRIC_SPECIFIC: Final[frozenset[str]] = frozenset({"comparison", "threshold", "recover_threshold", "wait_s"})

Problem = tuple[str, str]  # (field, what is wrong)


def complete(given: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The rule's fields with the defaults of its metric filled in, and the problems found with
    them together (each field alone is checked by the API's schema). `given` holds the fields
    set, None for one left to its default."""
    values = {**DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    values.setdefault("recover_threshold", None)
    metric = values.get("metric")
    if metric not in METRICS:
        return values, [("metric", f"unknown metric; one of {', '.join(METRIC_NAMES)}")]
    info = METRICS[cast("Metric", metric)]
    values.setdefault("comparison", info.comparison)
    if info.threshold is not None:
        values.setdefault("threshold", info.threshold)
    problems: list[Problem] = []
    threshold, recover = values.get("threshold"), values["recover_threshold"]
    if threshold is None:
        problems.append(("threshold", f"required for metric {metric}"))
    if metric == "waiting_human":
        values.setdefault("wait_s", DEFAULT_WAIT_S)
    elif values.get("wait_s"):
        problems.append(("wait_s", "applies only to metric waiting_human"))
    else:
        values["wait_s"] = 0
    if metric == "no_runs" and values["comparison"] != "below":
        problems.append(("comparison", "no_runs fires when fewer runs than the threshold started: 'below'"))
    for name, value in (("threshold", threshold), ("recover_threshold", recover)):
        if value is not None and info.rate and not 0 <= value <= 1:
            problems.append((name, f"{metric} is a share of finished runs: between 0 and 1"))
    if threshold is not None and recover is not None:
        if values["comparison"] == "below" and recover < threshold:
            problems.append(
                (
                    "recover_threshold",
                    "must be at or above the threshold: a rule firing below it resolves above",
                )
            )
        if values["comparison"] == "above" and recover > threshold:
            problems.append(
                (
                    "recover_threshold",
                    "must be at or below the threshold: a rule firing above it resolves below",
                )
            )
    return values, problems
