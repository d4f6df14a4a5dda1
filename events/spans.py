"""No-code events → one OTLP span each, under the `wrm.*` conventions, so that a run told by
events is the same run, with the same steps and indicators, as one traced with OpenTelemetry.

    run.started            a marker (no step meaning, under an anchor that is never written)
    step.started           a marker likewise: its time is the step's start
    run.waiting_human      a `wrm.hitl.state=requested` marker under the run span
    step.completed/failed  the step's span (one per attempt), from its start to `time`
    human.decided          a human step: `wrm.hitl.decision`, actor, comment
    run.completed/failed/  the run span (the trace's root, `wrm.run=true`, `wrm.run.status`),
    run.canceled           from the run's start to `time`

A span that ends starts at `started_at` when given, else at its `*.started` event's time (from
the same post, or as stored: `starts`), else at its own time. Every span carries `wrm.run.id`
(the caller's run id, which `GET /v1/runs/{run_id}` takes), `wrm.event.type` and, when given,
`wrm.event.id`, the workflow, version and environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from events import ids
from events.schema import Event

SERVICE_NAME = "wrm-events"
SCOPE_NAME = "wrm.events"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RUN_ENDS = {"run.completed": "completed", "run.failed": "failed", "run.canceled": "canceled"}


@dataclass(frozen=True)
class Timed:
    """An event and its time in ns since the epoch (its own, or when it was received)."""

    event: Event
    time_ns: int


@dataclass(frozen=True)
class Placed:
    """Where an event is stored: its span (lowercase hex ids, as the warehouse keeps them), and
    its run's span, under which an instrumented service may hang its own spans."""

    trace_id: str
    span_id: str
    run_span_id: str

    @property
    def traceparent(self) -> str:
        """W3C Trace Context for the run span: passed to a service that continues the trace
        (OpenTelemetry's propagators read it), its spans join this run as steps under it."""
        return f"00-{self.trace_id}-{self.run_span_id}-01"


def start_marker(event: Event) -> bytes | None:
    """The marker span whose start is this ending event's start (None: the event does not end
    anything)."""
    if event.type in RUN_ENDS:
        return ids.run_started_id(event.run_id)
    if event.type in ("step.completed", "step.failed") or (event.type == "human.decided" and event.step_key):
        return ids.step_started_id(event.run_id, event.step_key, event.attempt)
    return None


def markers_of(timed: Sequence[Timed]) -> dict[bytes, int]:
    """Start times the `*.started` events of one post give, by their marker span id."""
    out: dict[bytes, int] = {}
    for t in timed:
        e = t.event
        if e.type == "run.started":
            out[ids.run_started_id(e.run_id)] = t.time_ns
        elif e.type == "step.started":
            out[ids.step_started_id(e.run_id, e.step_key, e.attempt)] = t.time_ns
    return out


def to_request(
    timed: Sequence[Timed], starts: Mapping[bytes, int]
) -> tuple[ExportTraceServiceRequest, list[Placed]]:
    """One request holding a span per event, and where each went. `starts`: marker span id →
    start (ns) of what the post itself does not start (see events.starts)."""
    known = {**starts, **markers_of(timed)}
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    _set(rs.resource.attributes.add(), "service.name", SERVICE_NAME)
    scope_spans = rs.scope_spans.add()
    scope_spans.scope.name = SCOPE_NAME
    placed = []
    for t in timed:
        span = scope_spans.spans.add()
        _fill(span, t, known)
        run_span = ids.run_span_id(t.event.run_id).hex()
        placed.append(Placed(span.trace_id.hex(), span.span_id.hex(), run_span))
    return request, placed


def timed(events: Sequence[Event], now_ns: int) -> list[Timed]:
    """Each event with its time; `now_ns` for those that give none."""
    return [Timed(e, ns(e.time) if e.time is not None else now_ns) for e in events]


def ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond a datetime holds."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _fill(span: Span, t: Timed, starts: Mapping[bytes, int]) -> None:
    e = t.event
    span.trace_id = ids.trace_id(e.run_id)
    span.kind = Span.SpanKind.SPAN_KIND_INTERNAL
    span.end_time_unix_nano = t.time_ns
    span.start_time_unix_nano = _start(e, t.time_ns, starts)
    attrs = _Attributes(e.attributes)  # the event's own fields win over these, where given
    attrs.update(
        {
            "wrm.run.id": e.run_id,
            "wrm.event.type": e.type,
            "wrm.event.id": e.event_id,
            "wrm.workflow.name": e.workflow,
            "wrm.workflow.version": e.version,
            "deployment.environment.name": e.environment,
            "wrm.rerun.of": e.rerun_of,
            "wrm.cx.score": e.cx_score,
        }
    )
    run_span = ids.run_span_id(e.run_id)
    if e.type == "run.started":
        span.span_id, span.parent_span_id = ids.run_started_id(e.run_id), ids.anchor_span_id(e.run_id)
        span.name = e.type
    elif e.type == "step.started":
        span.span_id = ids.step_started_id(e.run_id, e.step_key, e.attempt)
        span.parent_span_id, span.name = ids.anchor_span_id(e.run_id), e.type
    elif e.type == "run.waiting_human":
        span.span_id = ids.once_id(e.run_id, e.type, e.event_id, t.time_ns)
        span.parent_span_id, span.name = run_span, e.type
        attrs["wrm.hitl.state"] = "requested"
    elif e.type in RUN_ENDS:
        span.span_id, span.name = run_span, e.workflow or "run"
        attrs["wrm.run"] = True
        attrs["wrm.run.status"] = RUN_ENDS[e.type]
        _outcome(span, e, attrs)
    else:  # step.completed, step.failed, human.decided
        _step(span, t, attrs)
        _outcome(span, e, attrs)
    for key, value in attrs.items():
        _set(span.attributes.add(), key, value)


def _start(e: Event, end_ns: int, starts: Mapping[bytes, int]) -> int:
    if e.started_at is not None:
        return min(ns(e.started_at), end_ns)
    marker = start_marker(e)
    return min(starts.get(marker, end_ns), end_ns) if marker is not None else end_ns


def _step(span: Span, t: Timed, attrs: _Attributes) -> None:
    e = t.event
    if e.step_key:
        span.span_id = ids.step_span_id(e.run_id, e.step_key, e.attempt)
    else:  # a decision that names no step
        span.span_id = ids.once_id(e.run_id, e.type, e.event_id, t.time_ns)
    span.parent_span_id = (
        ids.step_span_id(e.run_id, e.parent_step_id, e.parent_attempt)
        if e.parent_step_id
        else ids.run_span_id(e.run_id)
    )
    span.name = e.step_name or e.step_id or "human decision"
    attrs["wrm.step.name"] = span.name
    attrs["wrm.step.id"] = e.step_id
    attrs["wrm.step.type"] = "human" if e.type == "human.decided" else e.step_type
    attrs["wrm.step.attempt"] = e.attempt
    if e.decision is not None:
        attrs["wrm.hitl.decision"] = e.decision.outcome
        attrs["wrm.hitl.actor"] = e.decision.actor
        attrs["wrm.hitl.comment"] = e.decision.comment
    if e.type == "step.failed":
        span.status.code = Status.StatusCode.STATUS_CODE_ERROR


def _outcome(span: Span, e: Event, attrs: _Attributes) -> None:
    """Failure, usage and validation, on a step's or the run's span."""
    if e.type == "run.failed":
        span.status.code = Status.StatusCode.STATUS_CODE_ERROR
    if e.error is not None:
        attrs["error.type"] = e.error.type
        if e.error.message:
            span.status.message = e.error.message
    if e.usage is not None:
        attrs["gen_ai.usage.input_tokens"] = e.usage.input_tokens
        attrs["gen_ai.usage.output_tokens"] = e.usage.output_tokens
        attrs["wrm.cost.usd"] = e.usage.cost_usd
        attrs["gen_ai.request.model"] = e.usage.model
    if e.validation is not None:
        attrs["wrm.validation.name"] = e.validation.name
        attrs["wrm.validation.passed"] = e.validation.passed
        attrs["wrm.quality.score"] = e.validation.score


Value = str | bool | int | float | list[str | bool | int | float] | None


class _Attributes(dict[str, Value]):
    """A span's attributes as they are built: a field the event leaves out (None) sets nothing,
    so it never removes an attribute of the same name the event's `attributes` gave."""

    def __setitem__(self, key: str, value: Value) -> None:
        if value is not None:
            super().__setitem__(key, value)

    def update(self, other: Any = (), /, **kwargs: Value) -> None:
        for key, value in dict(other, **kwargs).items():
            self[key] = value


def _set(kv: KeyValue, key: str, value: Value) -> None:
    kv.key = key
    _value(kv.value, value)


def _value(target: AnyValue, value: Value) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, list):
        for item in value:
            _value(target.array_value.values.add(), item)
