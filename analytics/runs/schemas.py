"""The shapes the /v1 API returns and takes, shared by the queries that fill them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from warehouse.statuses import RunStatus


def _utc(value: datetime) -> datetime:
    """The warehouse returns UTC times without a zone; say so, so every time reads the same."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Utc = Annotated[datetime, AfterValidator(_utc)]

ActionKind = Literal["rerun", "cancel"]
ActionState = Literal["pending", "done", "failed", "rejected"]


class RunSummary(BaseModel):
    run_id: str
    trace_id: str
    workflow: str
    version: str
    environment: str
    status: RunStatus
    start_time: Utc
    end_time: Utc | None
    duration_ms: float | None
    step_count: int
    retries: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    first_pass: bool
    tags: list[str] = Field(default_factory=list)


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class Action(BaseModel):
    action_id: str
    run_id: str
    kind: ActionKind
    state: ActionState
    reason: str
    context: dict[str, Any]
    requested_by: str
    requested_at: Utc
    outcome_message: str = ""
    new_run_id: str = ""
    acked_by: str = ""
    acked_at: Utc | None = None


class Annotation(BaseModel):
    annotation_id: str
    run_id: str
    text: str
    label: str
    score: float | None
    author: str
    created_at: Utc


TimelineKind = Literal[
    "run.started",
    "step.started",
    "step.completed",
    "step.failed",
    "step.retried",
    "human.waiting",
    "human.decided",
    "run.completed",
    "run.failed",
    "run.canceled",
    "action.requested",
    "action.acknowledged",
    "annotation",
]


class TimelineEvent(BaseModel):
    at: Utc
    kind: TimelineKind
    step_id: str = ""
    name: str = ""
    attempt: int = 0
    detail: str = ""
    actor: str = ""
    wait_ms: int | None = None
    action_id: str = ""


class Lineage(BaseModel):
    rerun_of: str = Field("", description="the run this one re-runs")
    reruns: list[str] = Field(default_factory=list, description="runs that re-run this one")


class RunPart(BaseModel):
    """One trace of a run (spec 4.3): a run that paused and resumed has one part per trace."""

    trace_id: str
    start_time: Utc
    step_count: int


class RunDetail(RunSummary):
    trace_ids: list[str] = Field(description="the run's parts, one trace each, in start order")
    parts: list[RunPart]
    failure_kind: str = Field(
        description="for a failed run: error, timeout, validation, rejected_by_human, abandoned"
    )
    failure_reason: str
    failed_step: str
    human_decisions: int
    human_wait_ms: int
    validations_passed: int
    validations_failed: int
    quality_mean: float | None
    user_id: str
    session_id: str
    service_name: str
    timeline: list[TimelineEvent]
    annotations: list[Annotation]
    actions: list[Action]
    lineage: Lineage
    redactions: dict[str, int] = Field(
        default_factory=dict,
        description="rule or detector name → values redacted at ingest, over all the run's spans",
    )


class Step(BaseModel):
    step_id: str
    trace_id: str = Field(description="the trace (run part) the step's span belongs to")
    parent_step_id: str
    name: str
    type: str
    attempt: int
    status: str
    start_time: Utc
    end_time: Utc
    duration_ms: float
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    validation_name: str
    validation_passed: bool | None
    quality_score: float | None
    human_decision: str
    human_actor: str
    human_wait_ms: int
    last_error: str = Field("", description="error type and message when the step failed")
    redactions: dict[str, int] = Field(
        default_factory=dict, description="rule or detector name → values redacted at ingest from its span"
    )
    children: list[Step] = Field(default_factory=list)


class StepList(BaseModel):
    run_id: str
    view: Literal["tree", "flat"]
    steps: list[Step]


class RerunRequest(BaseModel):
    context: dict[str, Any] = Field(default_factory=dict, description="what the engine should run it with")
    reason: str = Field("", max_length=2000)


class CancelRequest(BaseModel):
    reason: str = Field("", max_length=2000)


class AckRequest(BaseModel):
    outcome: Literal["done", "failed", "rejected"]
    message: str = Field("", max_length=2000)
    new_run_id: str = Field("", max_length=128, description="the run a re-run started, when known")


class AnnotationRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    label: str = Field("", max_length=200)
    score: float | None = None
    author: str = Field(
        "", max_length=200, description="who writes it, only without a key (auth off); with a key, the key"
    )


class TagsRequest(BaseModel):
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


class Tags(BaseModel):
    run_id: str
    tags: list[str]
