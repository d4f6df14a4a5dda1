"""A run told with no-code events (`POST /v1/events`) is the same run as the one traced with the
OpenTelemetry SDK: three runs of workflow `refund` go into two tenants, once as events (header
`X-WRM-Tenant`) and once as SDK spans with the same times to the millisecond (resource
`wrm.tenant.id`, auth off), and every run, step, stored row and indicator view agrees between
the tenants, except the fields listed in EXPECTED_DIFFERENT and ROW_DIFFERENT, which differ by
construction (ids, the sending service, the events' marker spans).

    order-retry   v1  a failed `classify` attempt and its retry (tokens, cost), a wait for a person
                      and her decision (`approval`, approved by ana), completed
    order-clean   v1  an agent step with a tool step inside, a validation, run-level usage that
                      the steps' own usage overrides (counted once), first-pass
    order-failed  v2  a failed `fetch` step, then the run fails with an error of its own
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from opentelemetry.trace import Span, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.util.types import Attributes, AttributeValue

from analytics import indicators
from tests.conftest import module_server, settle
from tests.otlp import flush, sdk_provider
from warehouse import Warehouse
from wrm.server import WrmServer

EVENTS = "events-side"  # tenant of the no-code version
OTEL = "otel-side"  # tenant of the SDK version
WORKFLOW = "refund"
SEC = 1_000_000_000
MS = 1_000_000
BASE_NS = (time.time_ns() // SEC - 3 * 3600) * SEC  # recent: older spans would fall to the TTL
STARTS = {"order-retry": BASE_NS, "order-clean": BASE_NS + 120 * SEC, "order-failed": BASE_NS + 240 * SEC}
LLM_USAGE = {"input_tokens": 812, "output_tokens": 64, "cost_usd": 0.002, "model": "gpt-4o-mini"}

# Fields of the run detail that differ by construction, each for the reason given.
EXPECTED_DIFFERENT = {
    "trace_id": "an events trace id is derived from the run id (events.ids); the SDK's is random",
    "trace_ids": "as trace_id",
    "parts": "as trace_id (each part names its trace; start and step count are compared)",
    "service_name": "events come from service `wrm-events`; the SDK from the app's service.name",
    "timeline": "compared without step_id (span ids differ by construction)",
}
# Columns of the runs / steps views that differ by construction, beyond the run detail's.
ROW_DIFFERENT = {
    "tenant_id": "the two versions are in two tenants on purpose",
    "run_span_id": "span ids differ by construction",
    "span_count": "the events version has a marker span per *.started event: checked on its own",
    "last_span_at": "when the spans were received, not a time they carry",
    "failed_step_id": "the failed step's span id, which differs by construction (failed_step agrees)",
    "step_id": "span ids differ by construction",
    "parent_step_id": "compared as the parent step's name and attempt",
    "parent_span_id": "span ids differ by construction",
    "span_name": "the SDK's spans are named by GenAI convention (`invoke_agent plan`); the step name agrees",
    "attributes": "as received: events add wrm.run.id, wrm.event.type, wrm.step.*; the SDK gen_ai.*",
}


def at(run: str, ms: int) -> str:
    """RFC 3339 text of `ms` after `run` starts."""
    moment = datetime.fromtimestamp((STARTS[run] + ms * MS) / SEC, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _events() -> list[list[dict[str, Any]]]:
    """The three runs as events, in two posts as a no-code tool might make them as they happen:
    most ends of `order-retry` come in a later post than their starts (so their starts are read
    from the stored *.started markers)."""
    r, c, f = "order-retry", "order-clean", "order-failed"
    run = {"workflow": WORKFLOW, "environment": "production"}
    return [
        [
            {"type": "run.started", "run_id": r, "time": at(r, 0), "version": "v1", **run},
            {"type": "step.started", "run_id": r, "time": at(r, 1000), "step_id": "classify"},
            {"type": "run.started", "run_id": c, "time": at(c, 0), "version": "v1", **run},
            # the type and the parent go with the step's end: step.started refuses them
            {"type": "step.started", "run_id": c, "time": at(c, 1000), "step_id": "plan"},
            {"type": "step.started", "run_id": c, "time": at(c, 2000), "step_id": "search"},
            {"type": "step.completed", "run_id": c, "time": at(c, 3000), "step_id": "search",
             "step_type": "tool", "parent_step_id": "plan",
             "usage": {"input_tokens": 50, "output_tokens": 5, "cost_usd": 0.0001}},
            {"type": "step.completed", "run_id": c, "time": at(c, 6000), "step_id": "plan",
             "step_type": "agent",
             "usage": {"input_tokens": 300, "output_tokens": 30, "cost_usd": 0.003, "model": "gpt-4o"}},
            {"type": "step.completed", "run_id": c, "time": at(c, 7000), "started_at": at(c, 6500),
             "step_id": "check", "step_type": "validation",
             "validation": {"name": "schema", "passed": True, "score": 0.9}},
            {"type": "run.completed", "run_id": c, "time": at(c, 8000), "version": "v1", **run,
             "usage": {"input_tokens": 9999, "output_tokens": 999}, "attributes": {"session.id": "sess-2"}},
        ],
        [
            {"type": "step.failed", "run_id": r, "time": at(r, 2250), "step_id": "classify",
             "step_type": "llm", "error": {"type": "TimeoutError", "message": "model timed out"},
             "usage": LLM_USAGE},
            {"type": "step.started", "run_id": r, "time": at(r, 3000), "step_id": "classify", "attempt": 2},
            {"type": "step.completed", "run_id": r, "time": at(r, 4000), "step_id": "classify", "attempt": 2,
             "step_type": "llm", "usage": LLM_USAGE},
            {"type": "run.waiting_human", "run_id": r, "time": at(r, 5000)},
            {"type": "run.started", "run_id": f, "time": at(f, 0), "version": "v2", **run},
            {"type": "step.started", "run_id": f, "time": at(f, 1000), "step_id": "fetch"},
            {"type": "step.failed", "run_id": f, "time": at(f, 1500), "step_id": "fetch", "step_type": "tool",
             "error": {"type": "UpstreamError", "message": "upstream 502"}},
            {"type": "run.failed", "run_id": f, "time": at(f, 2000),
             "error": {"type": "UpstreamError", "message": "fetch failed"}},
            {"type": "human.decided", "run_id": r, "time": at(r, 65_000), "started_at": at(r, 5000),
             "step_id": "approval", "decision": {"outcome": "approved", "actor": "ana"}},
            {"type": "run.completed", "run_id": r, "time": at(r, 70_000), "attributes": {"user.id": "u-1"}},
        ],
    ]  # fmt: skip


EVENT_POSTS = _events()
STARTED_EVENTS = {  # run id → its *.started events: a marker span each, which the SDK version has not
    run: sum(1 for post in EVENT_POSTS for e in post if e["run_id"] == run and e["type"].endswith(".started"))
    for run in STARTS
}


class _App:
    """The instrumented application's side: spans with explicit times (ms after the run's start)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def root(self, run: str, version: str, **attributes: AttributeValue) -> Span:
        base: dict[str, AttributeValue] = {
            "wrm.workflow.name": WORKFLOW, "wrm.workflow.version": version, "wrm.run.id": run
        }  # fmt: skip
        return self.tracer.start_span(WORKFLOW, start_time=STARTS[run], attributes={**base, **attributes})

    def span(
        self, name: str, run: str, parent: Span, start_ms: int, end_ms: int, attributes: Attributes,
        error: str = "",
    ) -> Span:  # fmt: skip
        span = self.tracer.start_span(
            name,
            context=set_span_in_context(parent),
            start_time=STARTS[run] + start_ms * MS,
            attributes=attributes,
        )
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        if end_ms >= 0:
            span.end(end_time=STARTS[run] + end_ms * MS)
        return span


def _send_otel(otlp_address: str) -> None:
    """The same three runs, instrumented by hand with the OpenTelemetry SDK."""
    provider = sdk_provider(
        otlp_address,
        service="refund-svc",
        **{"wrm.tenant.id": OTEL, "deployment.environment.name": "production"},
    )
    app = _App(provider.get_tracer("refund-app"))
    llm: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 64,
        "wrm.cost.usd": 0.002,
    }
    r = "order-retry"
    run = app.root(r, "v1", **{"user.id": "u-1"})
    app.span("classify", r, run, 1000, 2250, {**llm, "wrm.step.attempt": 1, "error.type": "TimeoutError"},
             error="model timed out")  # fmt: skip
    app.span("classify", r, run, 3000, 4000, {**llm, "wrm.step.attempt": 2})
    app.span("approval-requested", r, run, 5000, 5000, {"wrm.hitl.state": "requested"})
    human = {"wrm.step.type": "human", "wrm.hitl.decision": "approved", "wrm.hitl.actor": "ana"}
    app.span("approval", r, run, 5000, 65_000, human)
    run.end(end_time=STARTS[r] + 70_000 * MS)

    c = "order-clean"
    totals: dict[str, AttributeValue] = {"gen_ai.usage.input_tokens": 9999, "gen_ai.usage.output_tokens": 999}
    run = app.root(c, "v1", **{"session.id": "sess-2", **totals})
    agent: Attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "plan",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 300,
        "gen_ai.usage.output_tokens": 30,
        "wrm.cost.usd": 0.003,
    }
    plan = app.span("invoke_agent plan", c, run, 1000, -1, agent)
    tool: Attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 5,
        "wrm.cost.usd": 0.0001,
    }
    app.span("execute_tool search", c, plan, 2000, 3000, tool)
    plan.end(end_time=STARTS[c] + 6000 * MS)
    check: Attributes = {
        "wrm.step.type": "validation",
        "wrm.validation.name": "schema",
        "wrm.validation.passed": True,
        "wrm.quality.score": 0.9,
    }
    app.span("check", c, run, 6500, 7000, check)
    run.end(end_time=STARTS[c] + 8000 * MS)

    f = "order-failed"
    run = app.root(f, "v2", **{"error.type": "UpstreamError"})
    app.span("fetch", f, run, 1000, 1500, {"wrm.step.type": "tool", "error.type": "UpstreamError"},
             error="upstream 502")  # fmt: skip
    run.set_status(Status(StatusCode.ERROR, "fetch failed"))
    run.end(end_time=STARTS[f] + 2000 * MS)

    assert flush(provider) == 11
    provider.shutdown()


@dataclass(frozen=True)
class Both:
    server: WrmServer
    client: httpx.Client

    @property
    def warehouse(self) -> Warehouse:
        assert self.server.warehouse is not None
        return self.server.warehouse

    def get(self, tenant: str, path: str, **params: Any) -> Any:
        resp = self.client.get(path, params=params, headers={"X-WRM-Tenant": tenant})
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def sides(engine_dir: Path) -> Iterator[Both]:
    with (
        module_server(engine_dir) as server,
        httpx.Client(base_url=f"http://{server.http_address}", timeout=60) as client,
    ):
        with ThreadPoolExecutor(1) as pool:  # both versions at once: they go to different tenants
            otel = pool.submit(_send_otel, server.otlp_address)
            for post in EVENT_POSTS:
                resp = client.post("/v1/events", json=post, headers={"X-WRM-Tenant": EVENTS})
                assert resp.status_code == 200, resp.text
                assert resp.json()["accepted"] == len(post) and resp.json()["note"] == ""
            otel.result()
        settle(server)
        yield Both(server, client)


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


@pytest.mark.parametrize("run_id", list(STARTS))
def test_the_run_detail_is_the_same(sides: Both, run_id: str) -> None:
    events, otel = sides.get(EVENTS, f"/v1/runs/{run_id}"), sides.get(OTEL, f"/v1/runs/{run_id}")
    differing = {k for k in events if events[k] != otel[k]}
    assert differing <= set(EXPECTED_DIFFERENT), {k: (events[k], otel[k]) for k in differing}
    compared = _without(events, *EXPECTED_DIFFERENT)
    assert compared == _without(otel, *EXPECTED_DIFFERENT)
    must = {"status", "start_time", "end_time", "duration_ms", "retries", "first_pass", "input_tokens",
            "cost_usd", "human_decisions", "human_wait_ms", "failure_reason", "failed_step"}  # fmt: skip
    assert must <= set(compared)
    # what differs, does so as described
    assert events["service_name"] == "wrm-events" and otel["service_name"] == "refund-svc"
    assert events["trace_ids"] == [events["trace_id"]] and otel["trace_ids"] == [otel["trace_id"]]
    assert [_without(p, "trace_id") for p in events["parts"]] == [
        _without(p, "trace_id") for p in otel["parts"]
    ]
    assert [_without(e, "step_id") for e in events["timeline"]] == [
        _without(e, "step_id") for e in otel["timeline"]
    ]


def test_the_runs_hold_what_was_sent(sides: Both) -> None:
    """The agreeing values are the right ones (not both wrong alike)."""
    retry = sides.get(EVENTS, "/v1/runs/order-retry")
    assert (retry["workflow"], retry["version"], retry["environment"], retry["status"]) == (
        WORKFLOW, "v1", "production", "completed"
    )  # fmt: skip
    assert retry["start_time"] == at("order-retry", 0).replace(".000Z", "Z")
    assert retry["end_time"] == at("order-retry", 70_000).replace(".000Z", "Z")
    assert (retry["duration_ms"], retry["step_count"], retry["retries"], retry["first_pass"]) == (
        70_000, 3, 1, False
    )  # fmt: skip
    assert (retry["input_tokens"], retry["output_tokens"]) == (2 * 812, 2 * 64)
    assert retry["cost_usd"] == pytest.approx(0.004)
    assert (retry["human_decisions"], retry["human_wait_ms"], retry["user_id"]) == (1, 60_000, "u-1")
    assert (retry["failure_reason"], retry["failed_step"], retry["failure_kind"]) == ("", "", "")
    kinds = [e["kind"] for e in retry["timeline"]]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    assert {"step.failed", "step.retried", "human.waiting", "human.decided"} <= set(kinds)
    decided = next(e for e in retry["timeline"] if e["kind"] == "human.decided")
    assert (decided["actor"], decided["detail"], decided["wait_ms"]) == ("ana", "approved", 60_000)

    clean = sides.get(EVENTS, "/v1/runs/order-clean")
    assert (clean["status"], clean["first_pass"], clean["retries"], clean["step_count"]) == (
        "completed", True, 0, 3
    )  # fmt: skip
    # usage counted once: the run span's 9999/999 tokens and the agent's 300/30 tokens and $0.003
    # are taken for totals of what is under them, which reports its own (docs/conventions.md)
    assert (clean["input_tokens"], clean["output_tokens"]) == (50, 5)
    assert clean["cost_usd"] == pytest.approx(0.0001)
    assert (clean["validations_passed"], clean["validations_failed"], clean["quality_mean"]) == (1, 0, 0.9)
    assert (clean["duration_ms"], clean["session_id"]) == (8000, "sess-2")

    failed = sides.get(EVENTS, "/v1/runs/order-failed")
    assert (failed["status"], failed["version"], failed["duration_ms"]) == ("failed", "v2", 2000)
    assert (failed["failure_kind"], failed["failed_step"]) == ("error", "fetch")
    assert failed["failure_reason"] == "fetch: UpstreamError: upstream 502"
    assert failed["first_pass"] is False
    assert [e["kind"] for e in failed["timeline"]][-2:] == ["step.failed", "run.failed"]


def _steps(sides: Both, tenant: str, run_id: str) -> list[dict[str, Any]]:
    """Flat steps, each parent named by its name and attempt instead of its span id."""
    steps = sides.get(tenant, f"/v1/runs/{run_id}/steps", view="flat")["steps"]
    by_id = {s["step_id"]: s for s in steps}
    out = []
    for s in steps:
        parent = by_id.get(s["parent_step_id"])
        assert s["parent_step_id"] == "" or parent is not None, s
        out.append({**_without(s, "step_id", "trace_id", "parent_step_id"),
                    "parent": (parent["name"], parent["attempt"]) if parent else None})  # fmt: skip
    return sorted(out, key=lambda s: (s["start_time"], s["name"], s["attempt"]))


def _tree(nodes: list[dict[str, Any]]) -> list[tuple[str, int, Any]]:
    return sorted((n["name"], n["attempt"], _tree(n["children"])) for n in nodes)


@pytest.mark.parametrize("run_id", list(STARTS))
def test_the_steps_are_the_same(sides: Both, run_id: str) -> None:
    events, otel = _steps(sides, EVENTS, run_id), _steps(sides, OTEL, run_id)
    assert events == otel
    tree = {t: _tree(sides.get(t, f"/v1/runs/{run_id}/steps")["steps"]) for t in (EVENTS, OTEL)}
    assert tree[EVENTS] == tree[OTEL]


def test_the_steps_hold_what_was_sent(sides: Both) -> None:
    retry = _steps(sides, EVENTS, "order-retry")
    fields = ("name", "type", "attempt", "status", "duration_ms", "model", "input_tokens", "output_tokens",
              "human_decision", "human_actor", "human_wait_ms", "last_error")  # fmt: skip
    assert [tuple(s[f] for f in fields) for s in retry] == [
        (
            "classify",
            "llm",
            1,
            "failed",
            1250,
            "gpt-4o-mini",
            812,
            64,
            "",
            "",
            0,
            "TimeoutError: model timed out",
        ),
        ("classify", "llm", 2, "completed", 1000, "gpt-4o-mini", 812, 64, "", "", 0, ""),
        ("approval", "human", 1, "completed", 60_000, "", 0, 0, "approved", "ana", 60_000, ""),
    ]
    assert [s["cost_usd"] for s in retry] == pytest.approx([0.002, 0.002, 0])
    clean = {s["name"]: s for s in _steps(sides, EVENTS, "order-clean")}
    assert (clean["plan"]["type"], clean["plan"]["parent"], clean["plan"]["model"]) == (
        "agent",
        None,
        "gpt-4o",
    )
    assert (clean["plan"]["input_tokens"], clean["search"]["input_tokens"]) == (0, 50)  # counted once
    assert (clean["search"]["type"], clean["search"]["parent"]) == ("tool", ("plan", 1))
    assert (clean["check"]["validation_name"], clean["check"]["validation_passed"]) == ("schema", True)
    assert (clean["check"]["quality_score"], clean["check"]["duration_ms"]) == (0.9, 500)
    [fetch] = _steps(sides, EVENTS, "order-failed")
    assert (fetch["status"], fetch["last_error"], fetch["duration_ms"]) == (
        "failed", "UpstreamError: upstream 502", 500
    )  # fmt: skip


def _rows(wh: Warehouse, view: str, tenant: str, order: str) -> list[dict[str, Any]]:
    frame = wh.reader.query_df(
        f"SELECT * FROM {view} WHERE tenant_id = {{t:String}} ORDER BY {order}", parameters={"t": tenant}
    )
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def test_the_stored_run_and_step_rows_are_the_same(sides: Both) -> None:
    """Every column of the runs and steps views (what SQL users read), with the span count
    difference the events' markers make stated exactly."""
    wh = sides.warehouse
    skip = set(EXPECTED_DIFFERENT) | set(ROW_DIFFERENT)
    runs = {t: _rows(wh, "runs", t, "run_id") for t in (EVENTS, OTEL)}
    assert [r["run_id"] for r in runs[EVENTS]] == sorted(STARTS) == [r["run_id"] for r in runs[OTEL]]
    assert {"duration_ns", "first_pass", "human_corrections", "failure_kind", "cost_usd"} <= set(
        runs[EVENTS][0]
    ) - skip
    for ev, ot in zip(runs[EVENTS], runs[OTEL], strict=True):
        differing = {k for k in ev if k not in skip and not _same(ev[k], ot[k])}
        assert not differing, {k: (ev[k], ot[k]) for k in differing}
        # reported, not hidden: the events version stores one marker span per *.started event
        assert ev["span_count"] == ot["span_count"] + STARTED_EVENTS[ev["run_id"]], (ev["run_id"], ev, ot)
    steps = {t: _rows(wh, "steps", t, "run_id, start_time, name, attempt") for t in (EVENTS, OTEL)}
    assert len(steps[EVENTS]) == len(steps[OTEL]) == 7
    assert {"source_status", "error_type", "error_message", "duration_ns", "human_wait_ms"} <= set(
        steps[EVENTS][0]
    ) - skip
    for ev, ot in zip(steps[EVENTS], steps[OTEL], strict=True):
        differing = {k for k in ev if k not in skip and not _same(ev[k], ot[k])}
        assert not differing, {k: (ev[k], ot[k]) for k in differing}


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN and None equal to themselves, floats to 12 digits (sums may differ in order)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)
    return bool(a == b) or (a is None and b is None)


def _frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["tenant_id"], errors="ignore").reset_index(drop=True)


def test_the_indicator_views_are_the_same_per_tenant(sides: Both) -> None:
    reader = sides.warehouse.reader
    views: dict[str, Callable[[str], pd.DataFrame]] = {
        "effectiveness": lambda t: indicators.effectiveness(reader, t, WORKFLOW),
        "effectiveness by day": lambda t: indicators.effectiveness(reader, t, WORKFLOW, by="day"),
        "throughput": lambda t: indicators.throughput(reader, t, WORKFLOW),
        "throughput by hour": lambda t: indicators.throughput(reader, t, WORKFLOW, by="hour"),
        "time to benefit": lambda t: indicators.time_to_benefit(reader, t, WORKFLOW),
        "comparison": lambda t: indicators.compare(
            reader, t, WORKFLOW, indicators.Sides.versions("v1", "v2")
        ),
    }
    for name, view in views.items():
        events, otel = _frame(view(EVENTS)), _frame(view(OTEL))
        assert not events.empty, name
        pd.testing.assert_frame_equal(events, otel, obj=name)
    by_version = indicators.effectiveness(reader, EVENTS, WORKFLOW).set_index("workflow_version")
    v1, v2 = by_version.loc["v1"], by_version.loc["v2"]
    assert (v1["runs"], v1["completed"], v1["first_pass_rate"], v1["retries_per_run"]) == (2, 2, 0.5, 0.5)
    assert (v1["human_decisions_per_run"], v1["human_wait_s_per_run"]) == (0.5, 30.0)
    assert (v1["input_tokens_per_run"], v1["validation_pass_rate"]) == ((2 * 812 + 50) / 2, 1.0)
    assert (v2["runs"], v2["failed"], v2["success_rate"]) == (1, 1, 0.0)
    comparison = indicators.compare(
        reader, EVENTS, WORKFLOW, indicators.Sides.versions("v1", "v2")
    ).set_index("indicator")
    assert (
        comparison.loc["first_pass_rate", "baseline"],
        comparison.loc["first_pass_rate", "candidate"],
    ) == (0.5, 0)
    assert sum(indicators.throughput(reader, EVENTS, WORKFLOW)["runs"]) == 3


def test_the_run_lists_are_the_same(sides: Both) -> None:
    listed = {t: sides.get(t, "/v1/runs", workflow=WORKFLOW)["runs"] for t in (EVENTS, OTEL)}
    assert [r["run_id"] for r in listed[EVENTS]] == ["order-failed", "order-clean", "order-retry"]
    assert [_without(r, "trace_id") for r in listed[EVENTS]] == [
        _without(r, "trace_id") for r in listed[OTEL]
    ]
