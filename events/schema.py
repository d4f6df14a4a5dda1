"""What a no-code event is (`POST /v1/events`), checked field by field.

An event says that something happened to a run or one of its steps, at `time`. Each is checked
on its own, so one bad event in an array never stops the others; a refusal names the field.
Unknown fields are refused too: a misspelt `stepname` would otherwise be lost without a word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
)

EventType = Literal[
    "run.started",
    "run.completed",
    "run.failed",
    "run.canceled",
    "run.waiting_human",
    "step.started",
    "step.completed",
    "step.failed",
    "human.decided",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
StepType = Literal["llm", "tool", "retrieval", "agent", "validation", "human", "other"]
STEP_TYPES: tuple[str, ...] = get_args(StepType)
Outcome = Literal["approved", "rejected", "edited", "timed_out"]

# printable text, no control characters: ids end up in URLs, headers of exports and log lines
Id = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, StringConstraints(max_length=16_384)]
Scalar = (
    StrictBool
    | Annotated[int, Field(ge=-(2**63), le=2**63 - 1, strict=True)]
    | Annotated[float, Field(allow_inf_nan=False, strict=True)]
    | Annotated[str, StringConstraints(max_length=65_536)]
)
MAX_ARRAY = 1000  # values in one array attribute

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2096, 1, 1, tzinfo=UTC)  # as the receiver's screen: later starts cannot be kept
MAX_ATTRIBUTES = 128


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorInfo(_Part):
    type: Annotated[str, StringConstraints(max_length=256)] | None = None
    message: Text | None = None


class Usage(_Part):
    input_tokens: Annotated[int, Field(ge=0, le=10**12, strict=True)] | None = None
    output_tokens: Annotated[int, Field(ge=0, le=10**12, strict=True)] | None = None
    cost_usd: Annotated[float, Field(ge=0, le=10**9, allow_inf_nan=False)] | None = None
    model: Name | None = None


class Validation(_Part):
    name: Name
    passed: StrictBool | None = None
    score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


class Decision(_Part):
    outcome: Outcome
    actor: Name | None = None
    comment: Text | None = None


class Event(_Part):
    type: EventType
    run_id: Id
    event_id: Id | None = None
    time: datetime | None = Field(None, description="RFC 3339 with an offset; default: when received")
    started_at: datetime | None = Field(
        None, description="for a run or step that ends: when it started, if no *.started event said so"
    )
    workflow: Name | None = None
    version: Name | None = None
    environment: Name | None = None
    step_id: Id | None = None
    step_name: Name | None = None
    step_type: StepType | None = None
    attempt: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 1
    parent_step_id: Id | None = None
    parent_attempt: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 1
    error: ErrorInfo | None = None
    usage: Usage | None = None
    validation: Validation | None = None
    decision: Decision | None = None
    attributes: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=256)], Scalar | list[Scalar]
    ] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)
    cx_score: Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        None, description="a customer-experience measure of the run or step (wrm.cx.score)"
    )
    rerun_of: Id | None = Field(None, description="the run id this run repeats (wrm.rerun.of)")

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_values(cls, value: Any) -> Any:
        """Name the attribute whose value no span can hold (pydantic would list one error per
        member of the union, under its internal type names)."""
        if isinstance(value, dict):
            for key, item in value.items():
                items = item if isinstance(item, list) else [item]
                if len(items) > MAX_ARRAY:
                    raise ValueError(f"attribute {str(key)[:80]!r}: at most {MAX_ARRAY} values in an array")
                if not all(_scalar(x) for x in items):
                    raise ValueError(
                        f"attribute {str(key)[:80]!r}: a value is a string, number, boolean or an array "
                        "of them (not null, not an object)"
                    )
        return value

    @field_validator("time", "started_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        """Text with a UTC offset only: pydantic would also read numbers (seconds or ms?) and
        times without an offset (local to whom?), each a guess."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be an RFC 3339 timestamp string, e.g. 2026-12-02T10:00:00Z")
        if not _RFC3339.match(value):
            if _NO_OFFSET.match(value):
                raise ValueError(f"{value[:60]!r} has no UTC offset: add Z or +HH:MM")
            raise ValueError(f"{value[:60]!r} is not an RFC 3339 timestamp, e.g. 2026-12-02T10:00:00.250Z")
        try:  # fromisoformat keeps microseconds of longer fractions; RFC 3339 allows lowercase t, z
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:
            raise ValueError(f"{value[:60]!r} is not a valid date and time") from None
        if not EARLIEST < parsed < LATEST:  # a span cannot start at 0 (receiver.screen)
            raise ValueError(f"{value[:60]!r} is outside 1970-01-01 .. 2095-12-31")
        return parsed

    @property
    def step_key(self) -> str:
        """What names the step across events (its attempts share it): step_id, else step_name."""
        return self.step_id or self.step_name or ""


_STEP_FIELDS = frozenset({"step_id", "step_name", "step_type", "attempt", "parent_step_id", "parent_attempt"})
_ENDING = frozenset({"usage", "validation", "error", "started_at", "cx_score"})
_MARKED = frozenset({"step_type", "parent_step_id", "parent_attempt"})  # written by the step's end only
# fields an event of each type does not take: refused rather than dropped without a word
_NOT_FOR: dict[str, frozenset[str]] = {
    "run.started": _STEP_FIELDS | _ENDING | {"decision"},
    "run.waiting_human": _STEP_FIELDS | _ENDING | {"decision", "rerun_of"},
    "run.completed": _STEP_FIELDS | {"decision", "error"},
    "run.failed": _STEP_FIELDS | {"decision"},
    "run.canceled": _STEP_FIELDS | {"decision"},
    "step.started": _ENDING | _MARKED | {"decision", "rerun_of"},
    "step.completed": frozenset({"decision", "error", "rerun_of"}),
    "step.failed": frozenset({"decision", "rerun_of"}),
    "human.decided": frozenset({"error", "rerun_of"}),
}
# attribute keys that give a span step meaning (docs/conventions.md, "Steps"): a marker span that
# carried one would be taken for a step
STEP_MEANING_PREFIXES = ("wrm.step.", "cicd.pipeline.task.", "gen_ai.tool.")
STEP_MEANING_KEYS = frozenset(
    {
        "gen_ai.operation.name", "openinference.span.kind", "traceloop.span.kind",
        "langfuse.observation.type", "llm.request.type", "gen_ai.request.model", "gen_ai.response.model",
    }
)  # fmt: skip


def _attribute_problem(key: str, event_type: str) -> str:
    if key.startswith("wrm."):
        return "wrm.* attributes are set from the event's own fields"
    marker = event_type in ("run.started", "step.started", "run.waiting_human")
    if marker and (key.startswith(STEP_MEANING_PREFIXES) or key in STEP_MEANING_KEYS):
        return f"a {event_type} event cannot carry step attributes: send them with the step's end"
    return ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an event: where (a field path, e.g. `usage.input_tokens`) and what."""

    where: str
    problem: str


class EventInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.where}: {p.problem}" for p in problems))
        self.problems = problems


def _scalar(value: Any) -> bool:
    """A value a span attribute holds: an int within int64 (a larger one is refused, not made a
    double), a finite float, a string or a boolean."""
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return isinstance(value, (str, bool, float))


def parse_event(raw: Any) -> Event:
    """One event from its JSON value; raises EventInvalid naming every field to fix (the field
    checks and the checks of what a type takes and needs, together)."""
    if not isinstance(raw, dict):
        raise EventInvalid([Problem("", "an event must be a JSON object")])
    problems = _type_problems(raw)
    try:
        event = Event.model_validate(raw)
    except ValidationError as exc:
        found = [
            Problem(".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        named = {p.where for p in found}
        raise EventInvalid(found + [p for p in problems if p.where not in named]) from None
    if problems:
        raise EventInvalid(problems)
    return event


def _type_problems(raw: dict[str, Any]) -> list[Problem]:
    """What the event's type does not take or needs, read from the raw fields (so they are
    reported with the field errors, not after them are fixed)."""
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _NOT_FOR:
        return []
    problems = [
        Problem(name, f"a {kind} event does not take {name}")
        for name in sorted(set(raw) & _NOT_FOR[kind])
        if raw[name] is not None
    ]
    attributes = raw.get("attributes")
    if isinstance(attributes, dict):
        problems += [
            Problem(f"attributes.{key}", why)
            for key in attributes
            if isinstance(key, str) and (why := _attribute_problem(key, kind))
        ]
    if kind.startswith("step.") and raw.get("step_id") is None and raw.get("step_name") is None:
        problems.append(Problem("step_id", f"a {kind} event needs step_id or step_name"))
    if kind == "human.decided" and raw.get("step_type") not in (None, "human"):
        problems.append(Problem("step_type", "a human.decided event is a human step: leave step_type out"))
    if kind == "human.decided" and raw.get("decision") is None:
        problems.append(Problem("decision", "a human.decided event needs decision {outcome, actor, comment}"))
    return problems
