"""What /v1/alerts takes and shows. Each field is checked here; checks across fields (a rate's
threshold within 0..1, the recover threshold on the right side, wait_s for waiting_human only)
are rules.complete's, reported under the field they are about."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from analytics.alerts.rules import (
    MAX_INTERVAL_S,
    MAX_MIN_SAMPLES,
    MAX_VALUE,
    MAX_WINDOW_S,
    METRIC_NAMES,
    Comparison,
    Metric,
)
from analytics.alerts.states import State, Transition
from analytics.runs.schemas import Utc

_METRICS = ", ".join(METRIC_NAMES)
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
_NAMED = "what the alert is called in lists and events"
_SCOPE = "only runs of this {} ('' or absent: all)"


class AlertCreate(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200, description=_NAMED)
    metric: Metric = Field(description=f"one of {_METRICS}")
    comparison: Comparison | None = Field(
        None, description="`below`: fires under the threshold; `above`: over it (default: the metric's)"
    )
    threshold: float | None = Field(
        None,
        ge=0,
        le=MAX_VALUE,
        description="rates are 0..1; required but for waiting_human (0), no_runs (1)",
    )
    recover_threshold: float | None = Field(
        None,
        ge=0,
        le=MAX_VALUE,
        description="a firing rule resolves once back past this (default: threshold)",
    )
    window_s: int | None = Field(None, ge=1, le=MAX_WINDOW_S, description="runs started this long ago (3600)")
    wait_s: int | None = Field(
        None, ge=1, le=MAX_WINDOW_S, description="waiting_human only: waiting longer than this (3600)"
    )
    min_samples: int | None = Field(
        None, ge=1, le=MAX_MIN_SAMPLES, description="finished runs a rate, percentile or mean needs (10)"
    )
    interval_s: int | None = Field(None, ge=1, le=MAX_INTERVAL_S, description="evaluated this often (60)")
    workflow: str = Field("", max_length=200, description=_SCOPE.format("workflow"))
    version: str = Field("", max_length=200, description=_SCOPE.format("workflow version"))
    environment: str = Field("", max_length=200, description=_SCOPE.format("environment"))
    enabled: bool = True


class AlertUpdate(BaseModel):
    """The fields to change. Changing `metric` re-derives comparison, threshold,
    recover_threshold and wait_s from the new metric unless the change names them too; null for
    recover_threshold or wait_s puts back the default."""

    model_config = _STRICT

    name: str | None = Field(None, min_length=1, max_length=200, description=_NAMED)
    metric: Metric | None = None
    comparison: Comparison | None = None
    threshold: float | None = Field(None, ge=0, le=MAX_VALUE)
    recover_threshold: float | None = Field(None, ge=0, le=MAX_VALUE)
    window_s: int | None = Field(None, ge=1, le=MAX_WINDOW_S)
    wait_s: int | None = Field(None, ge=1, le=MAX_WINDOW_S)
    min_samples: int | None = Field(None, ge=1, le=MAX_MIN_SAMPLES)
    interval_s: int | None = Field(None, ge=1, le=MAX_INTERVAL_S)
    workflow: str | None = Field(None, max_length=200)
    version: str | None = Field(None, max_length=200)
    environment: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class Alert(BaseModel):
    """A rule, its state and its last evaluation."""

    rule_id: str
    name: str
    metric: Metric
    comparison: Comparison
    threshold: float
    recover_threshold: float
    window_s: int
    wait_s: int = Field(description="waiting_human's wait; 0 for other metrics")
    min_samples: int
    interval_s: int
    workflow: str
    version: str
    environment: str
    enabled: bool
    created_at: Utc
    created_by: str
    updated_at: Utc
    state: State
    since: Utc | None = Field(description="when the rule entered its state; null: it never fired")
    transitions: int = Field(description="how many times its state changed")
    value: float | None = Field(description="the last value measured (null: none yet, or nothing to measure)")
    samples: int = Field(description="the runs the last value is over")
    evaluated_at: Utc | None = Field(description="the last evaluation (null: none since the server started)")
    note: str = Field(
        description="e.g. `insufficient samples: 3 of 10 runs`, or why the last evaluation failed"
    )


class AlertList(BaseModel):
    alerts: list[Alert]


class AlertTransition(BaseModel):
    transition: int = Field(description="1 for the first, then 2, …")
    at: Utc
    state: Transition
    value: float | None
    samples: int
    threshold: float = Field(description="the bound crossed: the threshold, or the recover threshold")
    event_id: str = Field(description="the id of the alert.firing or alert.resolved event it went out as")


class AlertHistory(BaseModel):
    rule_id: str
    transitions: list[AlertTransition] = Field(description="newest first")


class AlertEvaluation(BaseModel):
    rule_id: str
    evaluated_at: Utc
    previous_state: State
    state: State
    transition: Transition | None = Field(description="`firing` or `resolved` when the state changed")
    value: float | None
    samples: int
    note: str
    event_id: str | None
