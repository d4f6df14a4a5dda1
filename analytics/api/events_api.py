"""`POST /v1/events`: no-code events (events.schema) from tools that cannot emit OTLP.

One event (a JSON object) or an array of up to 1,000; bodies up to 4 MiB. Each event is checked
on its own: the valid ones are stored (as spans, through the ingest core) even when others are
refused, and the answer lists both:
    every event stored                  → 200 {accepted, rejected: 0,
                                          events: [{index, trace_id, span_id, traceparent}]}
    some (or all) events invalid        → 422 problem, with the same fields and
                                          errors: [{index, where, problem}], `where` naming the field
    the body is not an event or array   → 422 (FastAPI's own check) / 400 (empty, too many)
    too much waiting to be stored, or   → 429 + Retry-After, nothing stored
    more than 64 posts in flight
    stopping, the warehouse unavailable → 503 + Retry-After, nothing stored (problems.install)
Senders only (ingest and admin keys; anyone while auth is off), in the caller's tenant.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from analytics.api.bounded_route import bounded_route
from analytics.api.caller import Sender
from analytics.api.problems import MEDIA_TYPE, RETRY_AFTER_S
from analytics.runs.errors import Busy, InvalidInput
from events import MAX_EVENTS, Event, NotStored, Outcome, SpanSink, post_events
from redaction.policy import PolicyError
from warehouse import Warehouse, WarehouseRejected, WarehouseUnavailable

MAX_EVENTS_BYTES = 4 << 20
MAX_POSTING = 8  # posts storing at once (each waits for a group commit)
MAX_WAITING = 64  # posts in flight before 429
PATH = "/v1/events"


class StoredEvent(BaseModel):
    index: int
    trace_id: str
    span_id: str
    traceparent: str = Field(
        description="W3C traceparent of the run span: hand it to an instrumented service (HTTP header "
        "`traceparent`) and its spans join this run, under the run span, as steps"
    )


class EventError(BaseModel):
    index: int
    where: str
    problem: str


class EventsResult(BaseModel):
    accepted: int
    rejected: int
    events: list[StoredEvent]
    errors: list[EventError] = []
    note: str = ""  # what the receiver refused of the stored spans, if anything


_EXAMPLE = {
    "type": "step.completed",
    "run_id": "order-1042",
    "time": "2026-12-02T10:00:05Z",
    "workflow": "refund",
    "step_id": "classify",
    "usage": {"input_tokens": 812, "output_tokens": 64, "model": "gpt-4o-mini"},
}
_EVENT_SCHEMA = {"$ref": "#/components/schemas/Event"}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA}]},
                "example": _EXAMPLE,
            }
        },
    }
}


def build_router(reader: Warehouse, sink: SpanSink) -> APIRouter:
    """`reader`: where the starts of runs and steps are looked up; `sink`: the ingest core."""
    router = APIRouter(prefix="/v1", tags=["events"])

    # Posts wait for their group commit on threads of their own, so a burst of them never takes
    # the threads the rest of the API (and /healthz) runs on; past the waiting room, 429.
    workers = anyio.CapacityLimiter(MAX_POSTING)
    waiting = [0]

    async def post(who: Sender, request: Request) -> JSONResponse:
        """Store run and step events as spans (types: see the Event schema). Posting the same
        event again (with its `time`) changes nothing. `GET /v1/runs/{run_id}` then shows the run
        by your run id; each stored event's `traceparent` lets an instrumented service join it."""
        body = _json_body(await request.body())  # read here: the schema is Event's (`document`)
        single = isinstance(body, dict)
        items: list[Any] = [body] if isinstance(body, dict) else body
        if not items:
            raise InvalidInput("no events: send one event object or an array of them")
        if len(items) > MAX_EVENTS:
            raise InvalidInput(f"{len(items)} events in one post: at most {MAX_EVENTS}")
        if waiting[0] >= MAX_WAITING:
            raise Busy(f"{waiting[0]} event posts are waiting to be stored; retry shortly")
        waiting[0] += 1
        try:
            outcome = await anyio.to_thread.run_sync(
                post_events, items, who.tenant, reader, sink, limiter=workers
            )
        except NotStored as exc:
            raise _refusal(exc) from None
        finally:
            waiting[0] -= 1
        return _answer(outcome, single)

    router.add_api_route(
        PATH.removeprefix("/v1"),
        post,
        methods=["POST"],
        response_model=EventsResult,
        responses={
            400: {"description": "no events, or more than 1,000"},
            413: {"description": "a body over 4 MiB"},
            422: {"description": "some events were refused (the others stored): `errors` names each field"},
            429: {"description": "too much waiting to be stored; nothing stored, retry after Retry-After"},
            503: {"description": "stopping or the warehouse unavailable; nothing stored, retry"},
        },
        openapi_extra=_OPENAPI,
        route_class_override=bounded_route(MAX_EVENTS_BYTES),
    )
    return router


def _answer(outcome: Outcome, single: bool) -> JSONResponse:
    prefix = "body" if single else "body.{i}"
    errors = [
        EventError(index=r.index, where=_join(prefix.format(i=r.index), p.where), problem=p.problem)
        for r in outcome.refused
        for p in r.problems
    ]
    result = EventsResult(
        accepted=len(outcome.stored),
        rejected=len(outcome.refused),
        events=[
            StoredEvent(index=i, trace_id=p.trace_id, span_id=p.span_id, traceparent=p.traceparent)
            for i, p in outcome.stored
        ],
        errors=errors,
        note=outcome.receiver.message,
    )
    body = result.model_dump(mode="json", exclude_defaults=False)
    if not errors:
        return JSONResponse(body)
    detail = "; ".join(f"{e.where}: {e.problem}" for e in errors[:20])
    refused, total = len(outcome.refused), len(outcome.refused) + len(outcome.stored)
    stored = f"the other {total - refused} stored" if outcome.stored else "none stored"
    problem = {
        "type": "https://wrm.dev/problems/invalid-request",
        "title": "Invalid request",
        "status": 422,
        "detail": f"{refused} of {total} events refused ({stored}): {detail}",
        "instance": PATH,
        **body,
    }
    return JSONResponse(problem, status_code=422, media_type=MEDIA_TYPE)


def _json_body(raw: bytes) -> list[Any] | dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _invalid("the body is not JSON") from None
    if not isinstance(body, (list, dict)):
        raise _invalid("send one event (a JSON object) or an array of them")
    return body


def _invalid(problem: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": problem, "type": "value_error"}])


def _refusal(exc: NotStored) -> Exception:
    """Nothing was stored: as problems.install renders each kind (never the engine's text)."""
    if exc.kind == "busy":
        return Busy(f"events were not stored: {exc}")
    if exc.kind == "closing":
        return HTTPException(
            503, "the server is stopping; retry", headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    if exc.kind == "policy":
        return PolicyError(str(exc))
    if exc.kind == "unavailable":
        return WarehouseUnavailable(str(exc))
    return WarehouseRejected(str(exc))


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def document(openapi: dict[str, Any]) -> None:
    """Put the Event schema (and the parts it uses) into the OpenAPI components: the route reads
    its body itself, event by event, so FastAPI does not list it."""
    schema = Event.model_json_schema(ref_template="#/components/schemas/{model}")
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["Event"] = schema
