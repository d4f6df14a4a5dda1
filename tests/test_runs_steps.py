"""Runs and steps derived from spans: statuses, retries, failures, human waits, usage, ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import module_server, settle
from tests.first_spans import FirstSpans
from tests.otlp import send_raw
from tests.workflows import request, span, tid
from wrm.server import WrmServer

FIRST = FirstSpans()  # what each test starts from (tests.first_spans)


def _post(server: WrmServer, spans: tuple[Span, ...], resource: dict[str, str]) -> None:
    response = send_raw(server.otlp_address, request(spans, **resource))
    assert response.partial_success.rejected_spans == 0


def _send(server: WrmServer, *spans: Span, **resource: str) -> None:
    _post(server, spans, resource)
    settle(server)


def run(server: WrmServer, trace: str) -> dict[str, Any]:
    assert server.warehouse is not None
    result = server.warehouse.client.query(
        "SELECT * FROM runs WHERE trace_id = {t:String}", {"t": tid(trace).hex()}
    )
    rows = list(result.named_results())
    assert len(rows) == 1, rows
    return rows[0]


def steps(server: WrmServer, trace: str) -> list[dict[str, Any]]:
    assert server.warehouse is not None
    result = server.warehouse.client.query(
        "SELECT * FROM steps WHERE trace_id = {t:String} ORDER BY start_time, name", {"t": tid(trace).hex()}
    )
    return list(result.named_results())


PRICES = {"m-priced": {"input_usd_per_mtok": 2.0, "output_usd_per_mtok": 8.0}}


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module, fed with every test's `first` spans: each test's spans are a
    trace of their own, read by trace id. Its price table prices model m-priced, which only the
    price table's test names."""
    with module_server(engine_dir, prices=PRICES) as srv:
        FIRST.send(srv)
        yield srv


@FIRST(
    span("retry", "refund", start=0, end=10, wrm__workflow__name="refund", wrm__workflow__version="2.1"),
    span(
        "retry",
        "llm#1",
        "refund",
        1,
        2,
        error=("TimeoutError", "model timed out"),
        gen_ai__operation__name="chat",
    ),
    span("retry", "llm#2", "refund", 3, 4, gen_ai__operation__name="chat", gen_ai__usage__input_tokens=100),
    span("retry", "lookup", "refund", 5, 6, gen_ai__tool__name="crm.lookup"),
    deployment__environment__name="prod",
)
def test_failed_step_then_successful_retry(server: WrmServer) -> None:
    t = "retry"
    r = run(server, t)
    assert r["status"] == "completed" and r["retries"] == 1 and r["first_pass"] == 0
    assert (r["workflow_name"], r["workflow_version"], r["environment"]) == ("refund", "2.1", "prod")
    assert r["run_id"] == tid(t).hex() and r["step_count"] == 3 and r["duration_ns"] == 10 * 10**9
    s = steps(server, t)
    assert [(x["name"], x["attempt"], x["status"], x["type"]) for x in s] == [
        ("llm", 1, "failed", "llm"),
        ("llm", 2, "completed", "llm"),
        ("crm.lookup", 1, "completed", "tool"),
    ]
    assert s[0]["failure_kind"] == "timeout" and s[0]["error_type"] == "TimeoutError"
    assert s[0]["error_message"] == "model timed out"


@FIRST(span("clean", "wf", start=0, end=3), span("clean", "a", "wf", 1, 2), span("clean", "b", "wf", 2, 3))
def test_clean_run_is_first_pass(server: WrmServer) -> None:
    t = "clean"
    r = run(server, t)
    assert (r["status"], r["first_pass"], r["retries"], r["step_count"]) == ("completed", 1, 0, 2)
    assert r["workflow_name"] == "wf"  # the run span's name when nothing names the workflow


@FIRST(
    span("fails", "wf", start=0, end=5, error=("WorkflowError", "step failed")),
    span("fails", "fetch", "wf", 1, 2),
    span(
        "fails",
        "validate",
        "wf",
        2,
        3,
        error=("ValueError", "amount exceeds limit"),
        wrm__step__type="validation",
    ),
)
def test_run_span_error_names_failing_step_and_exception(server: WrmServer) -> None:
    t = "fails"
    r = run(server, t)
    assert r["status"] == "failed" and r["first_pass"] == 0
    assert r["failed_step"] == "validate"
    assert r["failure_reason"] == "validate: ValueError: amount exceeds limit"
    assert [x["failure_kind"] for x in steps(server, t)] == ["", "validation"]


@FIRST(
    span("late-root", "a", "wf", 1, 2, wrm__step__name="plan"),
    span("late-root", "b", "wf", 2, 3, wrm__step__name="act"),
)
def test_run_without_run_span_is_running_until_it_arrives(server: WrmServer) -> None:
    t = "late-root"
    r = run(server, t)
    assert r["status"] == "running" and r["end_time"] is None and r["step_count"] == 2
    _send(server, span(t, "wf", start=0, end=4, wrm__workflow__name="late"))
    r = run(server, t)
    assert r["status"] == "completed" and r["workflow_name"] == "late" and r["duration_ns"] == 4 * 10**9


@FIRST(
    span("hitl", "draft", "wf", 1, 2, wrm__step__type="llm"),
    span("hitl", "approval-requested", "wf", 2, 2.01, wrm__hitl__state="requested"),
)
def test_human_wait_then_decision(server: WrmServer) -> None:
    t = "hitl"
    assert run(server, t)["status"] == "waiting_human"
    _send(
        server,
        span(
            t,
            "approval",
            "wf",
            2,
            32,
            wrm__step__type="human",
            wrm__hitl__decision="approved",
            wrm__hitl__actor="alice@example.com",
        ),
    )
    r = run(server, t)
    assert r["status"] == "running" and r["human_decisions"] == 1 and r["human_wait_ms"] == 30_000
    human = next(x for x in steps(server, t) if x["type"] == "human")
    assert (human["human_decision"], human["human_actor"], human["human_wait_ms"]) == (
        "approved",
        "alice@example.com",
        30_000,
    )
    _send(server, span(t, "wf", start=0, end=40))
    r = run(server, t)
    assert r["status"] == "completed" and r["first_pass"] == 1
    # the marker is not a step
    assert [x["name"] for x in steps(server, t)] == ["draft", "approval"]


@FIRST(
    span("hitl-rejected", "wf", start=0, end=9),
    span("hitl-rejected", "review", "wf", 1, 5, wrm__step__type="human", wrm__hitl__decision="rejected"),
    span("hitl-rejected", "redo", "wf", 5, 8),
)
def test_rejected_decision_is_a_human_correction(server: WrmServer) -> None:
    t = "hitl-rejected"
    r = run(server, t)
    assert r["status"] == "completed" and r["first_pass"] == 0 and r["human_corrections"] == 1


@FIRST(span("cancel", "wf", start=0, end=2, wrm__run__status="canceled"), span("cancel", "a", "wf", 0.5, 1))
def test_canceled_run(server: WrmServer) -> None:
    t = "cancel"
    assert run(server, t)["status"] == "canceled"


@FIRST(
    span(
        "override",
        "wf",
        start=0,
        end=9,
        wrm__run__id="order-42-run-2",
        wrm__rerun__of="order-42-run-1",
        user__id="u-7",
        session__id="s-1",
    ),
    span(
        "override", "agent", "wf", 1, 8, gen_ai__operation__name="invoke_agent", gen_ai__agent__name="planner"
    ),
    span("override", "http", "agent", 2, 7),  # no step meaning, not a child of the run span
    span(
        "override",
        "llm",
        "http",
        3,
        4,
        gen_ai__operation__name="chat",
        gen_ai__request__model="m-1",
        gen_ai__usage__input_tokens=1000,
        gen_ai__usage__output_tokens=500,
        wrm__cost__usd=0.25,
    ),
    span("override", "embed-call", "http", 4, 5, llm__token_count__prompt=40),  # not a step: rolls up
)
def test_run_id_override_rerun_and_usage(server: WrmServer) -> None:
    t = "override"
    r = run(server, t)
    assert r["run_id"] == "order-42-run-2" and r["rerun_of"] == "order-42-run-1" and r["first_pass"] == 0
    assert (r["user_id"], r["session_id"]) == ("u-7", "s-1")
    assert (r["input_tokens"], r["output_tokens"], r["cost_usd"]) == (1040, 500, 0.25)
    s = {x["name"]: x for x in steps(server, t)}
    assert set(s) == {"planner", "llm"}
    assert s["llm"]["parent_step_id"] == s["planner"]["step_id"]  # through the non-step http span
    assert s["planner"]["input_tokens"] == 40  # the non-step embed call rolled into its nearest step
    assert s["llm"]["model"] == "m-1" and s["llm"]["run_id"] == "order-42-run-2"


@FIRST(
    span("priced", "wf", start=0, end=3),
    span(
        "priced",
        "llm",
        "wf",
        1,
        2,
        gen_ai__operation__name="chat",
        gen_ai__response__model="m-priced",
        gen_ai__usage__input_tokens=1_000_000,
        gen_ai__usage__output_tokens=500_000,
    ),
    span(
        "priced",
        "llm-own-cost",
        "wf",
        2,
        3,
        gen_ai__operation__name="chat",
        gen_ai__response__model="m-priced",
        gen_ai__usage__input_tokens=10,
        llm__cost__total=0.5,
    ),
    span(
        "priced",
        "unpriced",
        "wf",
        2,
        3,
        gen_ai__operation__name="chat",
        gen_ai__response__model="other",
        gen_ai__usage__input_tokens=10,
    ),
)
def test_price_table_costs_tokens_without_a_cost_attribute(server: WrmServer) -> None:
    t = "priced"
    costs = {x["name"]: x["cost_usd"] for x in steps(server, t)}
    assert costs == {"llm": 6.0, "llm-own-cost": 0.5, "unpriced": 0.0}
    assert run(server, t)["cost_usd"] == 6.5
