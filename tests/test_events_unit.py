"""No-code events without a server: what events.schema accepts and refuses (each refusal names
the field), the spans events.spans builds from events (parents, starts, status, attributes under
the `wrm.*` conventions) and the deterministic ids of events.ids, pinned so that re-posting after
an upgrade still lands on the same spans."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from events import ids
from events.schema import MAX_ATTRIBUTES, Event, EventInvalid, parse_event
from events.spans import SERVICE_NAME, ns, timed, to_request

RUN = "order-1042"
T0 = "2026-12-02T10:00:00Z"
T0_NS = 1_796_205_600 * 10**9  # 2026-12-02T10:00:00Z


def at(ms: int) -> str:
    """T0 + ms, as RFC 3339 text."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"2026-12-02T10:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attrs(span: Span) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in span.attributes}


def spans_of(raw: list[dict[str, Any]], starts: dict[bytes, int] | None = None) -> list[Span]:
    """The spans one post of `raw` events becomes (every event valid)."""
    request, placed = to_request(timed([parse_event(r) for r in raw], now_ns=0), starts or {})
    [rs] = request.resource_spans
    [scope] = rs.scope_spans
    spans = list(scope.spans)
    assert [(p.trace_id, p.span_id) for p in placed] == [(s.trace_id.hex(), s.span_id.hex()) for s in spans]
    return spans


# ---------------------------------------------------------------- ids


def test_ids_are_pinned_so_a_repost_after_an_upgrade_lands_on_the_same_spans() -> None:
    """Changing how ids are derived would make every re-posted event a second copy of its run."""
    assert ids.trace_id(RUN).hex() == "af403238bece7266b6918b0383732bac"
    assert ids.run_span_id(RUN).hex() == "7387135c80d3d590"
    assert ids.anchor_span_id(RUN).hex() == "c90807b57fca1af4"
    assert ids.run_started_id(RUN).hex() == "030603fceaeff2a8"
    assert ids.step_span_id(RUN, "classify", 2).hex() == "7f217f9ecdd12967"
    assert ids.step_started_id(RUN, "classify", 2).hex() == "3d45f8b6e9948281"
    assert ids.once_id(RUN, "run.waiting_human", "ev-7", 0).hex() == "f6a54b238eb04a70"
    assert ids.once_id(RUN, "run.waiting_human", None, 5).hex() == "2042e8688ea0368f"


def test_ids_have_otlp_sizes_and_every_part_counts() -> None:
    assert len(ids.trace_id(RUN)) == 16
    span_ids = [
        ids.run_span_id(RUN),
        ids.anchor_span_id(RUN),
        ids.run_started_id(RUN),
        ids.step_span_id(RUN, "classify", 1),
        ids.step_span_id(RUN, "classify", 2),
        ids.step_span_id(RUN, "review", 1),
        ids.step_span_id("order-1043", "classify", 1),
        ids.step_started_id(RUN, "classify", 1),
        ids.once_id(RUN, "run.waiting_human", None, 1),
        ids.once_id(RUN, "run.waiting_human", None, 2),
        ids.once_id(RUN, "human.decided", None, 1),
    ]
    assert all(len(s) == 8 for s in span_ids)
    assert len(set(span_ids)) == len(span_ids)
    assert ids.trace_id(RUN) != ids.trace_id("order-1043")
    # with an event id, the time does not matter (the same wait re-sent with another clock)
    assert ids.once_id(RUN, "run.waiting_human", "w1", 1) == ids.once_id(RUN, "run.waiting_human", "w1", 2)
    # "a" + "b\x00c" must not collide with "a\x00b" + "c": parts are separated
    assert ids.step_span_id("a", "b", 1) != ids.step_span_id("a\x00b", "", 1)


# ---------------------------------------------------------------- schema: what is accepted


def test_a_full_event_is_read_field_by_field() -> None:
    event = parse_event(
        {
            "type": "step.completed",
            "run_id": RUN,
            "event_id": "e-1",
            "time": "2026-12-02T12:00:05.250+02:00",
            "started_at": "2026-12-02T10:00:01Z",
            "workflow": "refund",
            "version": "2.1",
            "environment": "production",
            "step_id": "classify",
            "step_name": "Classify",
            "step_type": "llm",
            "attempt": 2,
            "parent_step_id": "plan",
            "parent_attempt": 1,
            "usage": {"input_tokens": 812, "output_tokens": 64, "cost_usd": 0.0012, "model": "gpt-4o-mini"},
            "validation": {"name": "schema", "passed": True, "score": 0.75},
            "attributes": {"user.id": "u-1", "n": 3, "ratio": 0.5, "ok": False, "tags": ["a", "b"]},
        }
    )
    assert event.time is not None and ns(event.time) == T0_NS + 5_250_000_000  # +02:00 read as such
    assert event.started_at is not None and ns(event.started_at) == T0_NS + 1_000_000_000
    assert (event.step_key, event.attempt, event.parent_step_id) == ("classify", 2, "plan")
    assert event.usage is not None and event.usage.input_tokens == 812
    assert event.attributes == {"user.id": "u-1", "n": 3, "ratio": 0.5, "ok": False, "tags": ["a", "b"]}
    assert (
        parse_event({"type": "step.started", "run_id": RUN, "step_name": "Classify"}).step_key == "Classify"
    )


@pytest.mark.parametrize(
    ("text", "offset_ns"),
    [
        ("2026-12-02T10:00:00Z", 0),
        ("2026-12-02T10:00:00+00:00", 0),
        ("2026-12-02T11:30:00+01:30", 0),
        ("2026-12-02T05:00:00-05:00", 0),
        ("2026-12-02T10:00:00.000001Z", 1_000),
        ("2026-12-02T10:00:00.25Z", 250_000_000),
    ],
)
def test_times_with_an_offset_are_exact_to_the_microsecond(text: str, offset_ns: int) -> None:
    event = parse_event({"type": "run.started", "run_id": RUN, "time": text})
    assert event.time is not None and ns(event.time) == T0_NS + offset_ns


def test_lowercase_t_and_z_are_rfc_3339_too() -> None:
    event = parse_event({"type": "run.started", "run_id": RUN, "time": "2026-12-02t10:00:00z"})
    assert event.time is not None and ns(event.time) == T0_NS


# ---------------------------------------------------------------- schema: what is refused

STEP = {"type": "step.completed", "run_id": RUN, "step_id": "classify"}
REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"type": "run.begun", "run_id": RUN}, "type", "'run.started'"),
    ({"run_id": RUN}, "type", "required"),
    ({"type": "run.started"}, "run_id", "required"),
    ({"type": "run.started", "run_id": ""}, "run_id", "at least 1"),
    ({"type": "run.started", "run_id": "a\nb"}, "run_id", "pattern"),
    ({"type": "run.started", "run_id": 42}, "run_id", "string"),
    ({"type": "run.started", "run_id": "r" * 257}, "run_id", "at most 256"),
    ({"type": "step.completed", "run_id": RUN}, "step_id", "step_id or step_name"),
    ({"type": "step.started", "run_id": RUN}, "step_id", "step_id or step_name"),
    ({"type": "step.failed", "run_id": RUN, "step_type": "llm"}, "step_id", "step_id or step_name"),
    ({"type": "run.started", "run_id": RUN, "time": "2026-12-02T10:00:00"}, "time", "no UTC offset"),
    ({"type": "run.started", "run_id": RUN, "time": "2026-12-02"}, "time", "not an RFC 3339 timestamp"),
    ({"type": "run.started", "run_id": RUN, "time": "yesterday"}, "time", "not an RFC 3339"),
    ({"type": "run.started", "run_id": RUN, "time": 1_796_205_600}, "time", "RFC 3339 timestamp string"),
    ({"type": "run.started", "run_id": RUN, "time": 1_796_205_600.5}, "time", "RFC 3339 timestamp string"),
    ({"type": "run.started", "run_id": RUN, "time": "2096-01-01T00:00:00Z"}, "time", "outside"),
    ({**STEP, "started_at": "10:00"}, "started_at", "RFC 3339"),
    ({"type": "run.started", "run_id": RUN, "stepname": "x"}, "stepname", "Extra inputs"),
    ({**STEP, "usage": {"tokens": 5}}, "usage.tokens", "Extra inputs"),
    ({**STEP, "usage": {"input_tokens": -1}}, "usage.input_tokens", "greater than or equal to 0"),
    ({**STEP, "usage": {"cost_usd": "cheap"}}, "usage.cost_usd", "number"),
    ({**STEP, "validation": {"name": "v", "score": 1.5}}, "validation.score", "less than or equal to 1"),
    ({**STEP, "validation": {"passed": True}}, "validation.name", "required"),
    ({**STEP, "step_type": "robot"}, "step_type", "'llm'"),
    ({**STEP, "attempt": 0}, "attempt", "greater than or equal to 1"),
    ({**STEP, "attributes": {"wrm.run.id": "other"}}, "attributes.wrm.run.id", "wrm.* attributes"),
    ({**STEP, "attributes": {"wrm.step.type": "tool"}}, "attributes.wrm.step.type", "wrm.* attributes"),
    (
        {"type": "run.started", "run_id": RUN, "attributes": {"gen_ai.operation.name": "chat"}},
        "attributes.gen_ai.operation.name",
        "cannot carry step attributes",
    ),
    (
        {"type": "step.started", "run_id": RUN, "step_id": "s", "attributes": {"gen_ai.tool.name": "x"}},
        "attributes.gen_ai.tool.name",
        "cannot carry step attributes",
    ),
    ({**STEP, "attributes": {"nested": {"a": 1}}}, "attributes", "attribute 'nested'"),
    (
        {**STEP, "attributes": {f"k{i}": i for i in range(MAX_ATTRIBUTES + 1)}},
        "attributes",
        f"at most {MAX_ATTRIBUTES}",
    ),
    ({"type": "run.started", "run_id": RUN, "usage": {"input_tokens": 1}}, "usage", "does not take usage"),
    ({"type": "run.started", "run_id": RUN, "step_id": "s"}, "step_id", "does not take step_id"),
    ({"type": "run.completed", "run_id": RUN, "error": {"message": "x"}}, "error", "does not take error"),
    ({"type": "run.waiting_human", "run_id": RUN, "started_at": T0}, "started_at", "does not take"),
    ({"type": "step.started", "run_id": RUN, "step_id": "s", "usage": {}}, "usage", "does not take usage"),
    ({**STEP, "decision": {"outcome": "approved"}}, "decision", "does not take decision"),
    ({"type": "human.decided", "run_id": RUN}, "decision", "needs decision"),
    (
        {"type": "human.decided", "run_id": RUN, "decision": {"outcome": "maybe"}},
        "decision.outcome",
        "'approved'",
    ),
    (
        {"type": "human.decided", "run_id": RUN, "decision": {"outcome": "approved"}, "error": {"type": "x"}},
        "error",
        "does not take error",
    ),
]


@pytest.mark.parametrize(
    ("raw", "where", "words"), REFUSED, ids=[f"{w}-{i}" for i, (_, w, _) in enumerate(REFUSED)]
)
def test_a_refusal_names_the_field(raw: dict[str, Any], where: str, words: str) -> None:
    with pytest.raises(EventInvalid) as caught:
        parse_event(raw)
    problems = caught.value.problems
    assert any(p.where == where or p.where.startswith(f"{where}.") for p in problems), problems
    assert any(words in p.problem for p in problems), problems


def test_every_problem_of_an_event_is_named_at_once() -> None:
    """A caller fixes all at once, not one per round trip."""
    with pytest.raises(EventInvalid) as caught:
        parse_event(
            {"type": "run.started", "run_id": RUN, "usage": {}, "step_id": "s",
             "decision": {"outcome": "approved"}, "attributes": {"wrm.x": 1, "gen_ai.request.model": "m"}}
        )  # fmt: skip
    assert [p.where for p in caught.value.problems] == [
        "decision", "step_id", "usage", "attributes.wrm.x", "attributes.gen_ai.request.model"
    ]  # fmt: skip
    with pytest.raises(EventInvalid) as caught:
        parse_event({"type": "step.done", "time": "noon", "extra": 1})
    assert {p.where for p in caught.value.problems} == {"type", "run_id", "time", "extra"}


def test_problems_of_different_kinds_are_named_at_once() -> None:
    with pytest.raises(EventInvalid) as caught:
        parse_event({"type": "step.completed", "run_id": RUN, "usage": {"input_tokens": -1}, "decision": {}})
    assert {p.where for p in caught.value.problems} >= {"usage.input_tokens", "decision", "step_id"}


@pytest.mark.parametrize("raw", [[], "run.started", 7, None, [{"type": "run.started", "run_id": RUN}]])
def test_an_event_is_a_json_object(raw: Any) -> None:
    with pytest.raises(EventInvalid) as caught:
        parse_event(raw)
    assert [(p.where, p.problem) for p in caught.value.problems] == [("", "an event must be a JSON object")]


# ---------------------------------------------------------------- spans

RUN_EVENTS: list[dict[str, Any]] = [
    {"type": "run.started", "run_id": RUN, "time": at(0), "workflow": "refund", "version": "2.1"},
    {"type": "step.started", "run_id": RUN, "time": at(1000), "step_id": "classify"},
    {
        "type": "step.failed",
        "run_id": RUN,
        "time": at(2000),
        "step_id": "classify",
        "step_type": "llm",
        "error": {"type": "TimeoutError", "message": "model timed out"},
        "usage": {"input_tokens": 812, "output_tokens": 64, "cost_usd": 0.002, "model": "gpt-4o-mini"},
    },
    {"type": "step.started", "run_id": RUN, "time": at(3000), "step_id": "classify", "attempt": 2},
    {"type": "step.completed", "run_id": RUN, "time": at(4000), "step_id": "classify", "attempt": 2},
    {"type": "step.completed", "run_id": RUN, "time": at(4500), "step_id": "lookup", "step_type": "tool",
     "parent_step_id": "classify", "parent_attempt": 2, "started_at": at(3500)},
    {"type": "run.waiting_human", "run_id": RUN, "time": at(5000), "event_id": "w-1"},
    {"type": "human.decided", "run_id": RUN, "time": at(65_000), "step_id": "approval",
     "decision": {"outcome": "approved", "actor": "ana", "comment": "fine"}},
    {"type": "run.completed", "run_id": RUN, "time": at(70_000), "workflow": "refund", "version": "2.1",
     "environment": "production", "attributes": {"user.id": "u-1"}},
]  # fmt: skip


def test_a_run_becomes_one_trace_under_the_wrm_conventions() -> None:
    (run_started, started1, failed, started2, completed, lookup, waiting, decided, run_span) = spans_of(
        RUN_EVENTS
    )
    every = [run_started, started1, failed, started2, completed, lookup, waiting, decided, run_span]
    assert {s.trace_id for s in every} == {ids.trace_id(RUN)}
    assert len({s.span_id for s in every}) == len(every)
    assert all(attrs(s)["wrm.run.id"] == RUN for s in every)
    assert [attrs(s)["wrm.event.type"] for s in every] == [e["type"] for e in RUN_EVENTS]

    # the run span: the root, from run.started's time to its own
    assert (run_span.span_id, run_span.parent_span_id) == (ids.run_span_id(RUN), b"")
    assert (run_span.start_time_unix_nano, run_span.end_time_unix_nano) == (T0_NS, T0_NS + 70 * 10**9)
    assert run_span.name == "refund"
    a = attrs(run_span)
    assert (a["wrm.run"], a["wrm.run.status"], a["wrm.workflow.name"], a["wrm.workflow.version"]) == (
        True, "completed", "refund", "2.1"
    )  # fmt: skip
    assert (a["deployment.environment.name"], a["user.id"]) == ("production", "u-1")
    assert run_span.status.code == Status.StatusCode.STATUS_CODE_UNSET

    # markers: under the anchor (never written), so neither the run's root nor a step
    for marker in (run_started, started1, started2):
        assert marker.parent_span_id == ids.anchor_span_id(RUN)
        assert marker.start_time_unix_nano == marker.end_time_unix_nano
        assert not any(k.startswith(("wrm.step.", "gen_ai.")) for k in attrs(marker))
    assert ids.anchor_span_id(RUN) not in {s.span_id for s in every}
    assert run_started.span_id == ids.run_started_id(RUN)
    assert started2.span_id == ids.step_started_id(RUN, "classify", 2)

    # steps: one span per attempt, under the run span, from their step.started to their end
    assert failed.span_id == ids.step_span_id(RUN, "classify", 1)
    assert completed.span_id == ids.step_span_id(RUN, "classify", 2)
    assert failed.parent_span_id == completed.parent_span_id == ids.run_span_id(RUN)
    assert (failed.start_time_unix_nano, failed.end_time_unix_nano) == (T0_NS + 10**9, T0_NS + 2 * 10**9)
    assert (completed.start_time_unix_nano, completed.end_time_unix_nano) == (
        T0_NS + 3 * 10**9,
        T0_NS + 4 * 10**9,
    )
    assert failed.status.code == Status.StatusCode.STATUS_CODE_ERROR
    assert failed.status.message == "model timed out"
    assert completed.status.code == Status.StatusCode.STATUS_CODE_UNSET
    assert attrs(failed) == {
        "wrm.run.id": RUN, "wrm.event.type": "step.failed", "wrm.step.name": "classify",
        "wrm.step.id": "classify", "wrm.step.type": "llm", "wrm.step.attempt": 1,
        "error.type": "TimeoutError", "gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 64,
        "wrm.cost.usd": 0.002, "gen_ai.request.model": "gpt-4o-mini",
    }  # fmt: skip
    assert attrs(completed)["wrm.step.attempt"] == 2

    # a child step under the attempt its parent_step_id/parent_attempt name; started_at is its start
    assert lookup.parent_span_id == ids.step_span_id(RUN, "classify", 2)
    assert lookup.start_time_unix_nano == T0_NS + 3_500_000_000

    # a wait for a person: a requested marker under the run span, at its time
    assert waiting.parent_span_id == ids.run_span_id(RUN)
    assert waiting.span_id == ids.once_id(RUN, "run.waiting_human", "w-1", T0_NS + 5 * 10**9)
    assert attrs(waiting)["wrm.hitl.state"] == "requested"
    assert waiting.start_time_unix_nano == waiting.end_time_unix_nano == T0_NS + 5 * 10**9

    # the decision: a human step
    assert decided.span_id == ids.step_span_id(RUN, "approval", 1)
    assert decided.parent_span_id == ids.run_span_id(RUN)
    d = attrs(decided)
    assert (d["wrm.step.type"], d["wrm.hitl.decision"], d["wrm.hitl.actor"], d["wrm.hitl.comment"]) == (
        "human", "approved", "ana", "fine"
    )  # fmt: skip


def test_one_resource_names_the_events_service() -> None:
    request, _ = to_request(timed([parse_event(RUN_EVENTS[0])], 0), {})
    [rs] = request.resource_spans
    assert {kv.key: kv.value.string_value for kv in rs.resource.attributes} == {"service.name": SERVICE_NAME}
    assert "wrm.tenant.id" not in {kv.key for kv in rs.resource.attributes}  # the API decides the tenant


def test_an_ending_event_starts_at_started_at_then_its_started_event_then_its_own_time() -> None:
    end = {**STEP, "time": at(9000)}
    marker = ids.step_started_id(RUN, "classify", 1)
    # nothing known: it starts when it ends
    [alone] = spans_of([end])
    assert alone.start_time_unix_nano == alone.end_time_unix_nano == T0_NS + 9 * 10**9
    # a stored step.started (events.starts)
    [stored] = spans_of([end], {marker: T0_NS + 2 * 10**9})
    assert stored.start_time_unix_nano == T0_NS + 2 * 10**9
    # one in the same post wins over a stored one, whatever the order in the post
    started = {"type": "step.started", "run_id": RUN, "step_id": "classify", "time": at(4000)}
    same, _ = spans_of([end, started], {marker: T0_NS + 2 * 10**9})
    assert same.start_time_unix_nano == T0_NS + 4 * 10**9
    # started_at wins over both
    [given] = spans_of([{**end, "started_at": at(1000)}], {marker: T0_NS + 2 * 10**9})
    assert given.start_time_unix_nano == T0_NS + 10**9
    # a start after the end is the end: never a negative duration
    [late] = spans_of([{**end, "started_at": at(9500)}])
    assert late.start_time_unix_nano == late.end_time_unix_nano
    # another attempt's start is not this one's
    [other] = spans_of([{**end, "attempt": 2}], {marker: T0_NS})
    assert other.start_time_unix_nano == other.end_time_unix_nano


def test_a_run_that_fails_or_is_canceled() -> None:
    [failed] = spans_of(
        [
            {
                "type": "run.failed",
                "run_id": RUN,
                "time": at(1000),
                "error": {"type": "Boom", "message": "crashed"},
            }
        ]
    )
    assert failed.status.code == Status.StatusCode.STATUS_CODE_ERROR and failed.status.message == "crashed"
    assert (attrs(failed)["wrm.run.status"], attrs(failed)["error.type"]) == ("failed", "Boom")
    assert failed.name == "run"  # no workflow given
    [canceled] = spans_of([{"type": "run.canceled", "run_id": RUN, "time": at(1000)}])
    assert attrs(canceled)["wrm.run.status"] == "canceled"
    assert canceled.status.code == Status.StatusCode.STATUS_CODE_UNSET


def test_a_decision_without_a_step_and_an_event_without_a_time() -> None:
    decision = {"type": "human.decided", "run_id": RUN, "decision": {"outcome": "rejected"}}
    [one] = spans_of([{**decision, "time": at(1000)}])
    assert one.name == attrs(one)["wrm.step.name"] == "human decision"
    assert one.span_id == ids.once_id(RUN, "human.decided", None, T0_NS + 10**9)
    assert "wrm.hitl.actor" not in attrs(one)  # not given: absent, not ""
    # no time: when it was received
    request, _ = to_request(timed([parse_event(decision)], now_ns=T0_NS + 7), {})
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.end_time_unix_nano == T0_NS + 7


def test_attributes_the_event_fields_do_not_set_are_kept() -> None:
    [span] = spans_of(
        [
            {
                **STEP,
                "usage": {"input_tokens": 10},
                "attributes": {"gen_ai.request.model": "gpt-4o", "deployment.environment.name": "prod"},
            }
        ]
    )
    a = attrs(span)
    assert (a.get("gen_ai.request.model"), a.get("deployment.environment.name")) == ("gpt-4o", "prod")


def test_event_attribute_values_keep_their_types() -> None:
    [span] = spans_of([{**STEP, "attributes": {"s": "x", "i": 7, "f": 0.5, "b": True, "l": ["a", "b"]}}])
    a = attrs(span)
    assert (a["s"], a["i"], a["f"], a["b"], a["l"]) == ("x", 7, 0.5, True, ["a", "b"])
    value = {kv.key: kv.value for kv in span.attributes}
    assert [value[k].WhichOneof("value") for k in "sifbl"] == [
        "string_value", "int_value", "double_value", "bool_value", "array_value"
    ]  # fmt: skip


def test_the_event_model_lists_every_type() -> None:
    """The OpenAPI document is built from Event: every type a caller may send is in it."""
    schema = Event.model_json_schema()
    assert set(schema["properties"]["type"]["enum"]) == {
        "run.started", "run.completed", "run.failed", "run.canceled", "run.waiting_human",
        "step.started", "step.completed", "step.failed", "human.decided",
    }  # fmt: skip
    assert schema["additionalProperties"] is False
