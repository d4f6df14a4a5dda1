"""Runs and steps depend only on the set of spans: not on order, batching or re-delivery."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import module_server, settle
from tests.otlp import send_raw
from tests.workflows import request, span
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module: each test reads only its own tenants' runs, steps and spans. It
    assembles when a test settles, not on its own every second as well: the schedules of assembly
    between arrivals are the tests' own."""
    with module_server(engine_dir, assemble_interval_ms=60_000) as srv:
        yield srv


def corpus() -> list[Span]:
    """Several workflows touching every rule: retries, failure, human wait, nesting, roll-up."""
    out: list[Span] = []
    t = "inv-retry"
    out += [
        span(t, "wf", start=0, end=10, wrm__workflow__name="refund", wrm__workflow__version="3"),
        span(t, "llm#1", "wf", 1, 2, error=("TimeoutError", "slow"), gen_ai__operation__name="chat"),
        span(t, "llm#2", "wf", 3, 4, gen_ai__operation__name="chat", gen_ai__usage__input_tokens=7),
        span(t, "db", "llm#2", 3.1, 3.2, gen_ai__usage__output_tokens=3),
    ]
    t = "inv-fail"
    out += [
        span(t, "wf", start=0, end=6, error=("Boom", "bad")),
        span(t, "check", "wf", 1, 2, error=("ValueError", "nope"), wrm__step__type="validation"),
        span(t, "other", "wf", 2, 3),
    ]
    t = "inv-hitl"
    out += [
        span(t, "a", "wf", 1, 2, wrm__step__name="draft"),
        span(t, "m", "wf", 2, 2.1, wrm__hitl__state="requested"),
    ]
    t = "inv-nested"
    out += [
        span(t, "wf", start=0, end=20, wrm__run="true"),
        span(t, "agent", "wf", 1, 19, gen_ai__operation__name="invoke_agent", gen_ai__agent__name="a"),
        span(t, "hop", "agent", 2, 18),
        span(t, "tool#1", "hop", 3, 4, gen_ai__tool__name="t", wrm__cost__usd=0.5),
        span(t, "tool#2", "hop", 5, 6, gen_ai__tool__name="t"),
        span(t, "tool#3", "hop", 7, 8, gen_ai__tool__name="t", wrm__step__attempt=5),
    ]
    return out


def _rows(server: WrmServer, view: str, tenant: str) -> list[tuple[Any, ...]]:
    assert server.warehouse is not None
    order = "trace_id" if view == "runs" else "trace_id, step_id"
    hidden = "tenant_id, last_span_at" if view == "runs" else "tenant_id"
    sql = f"SELECT * EXCEPT ({hidden}) FROM {view} WHERE tenant_id = {{t:String}} ORDER BY {order}"
    return server.warehouse.rows(sql, {"t": tenant})


def _send(server: WrmServer, tenant: str, spans: list[Span]) -> None:
    send_raw(server.otlp_address, request(spans, wrm__tenant__id=tenant))


def test_order_batching_and_redelivery_give_identical_runs_and_steps(server: WrmServer) -> None:
    spans = corpus()
    rng = random.Random(7)
    assemble_after = [rng.random() < 0.3 for _ in spans]
    shuffled = spans[:]
    rng.shuffle(shuffled)
    chunks = [shuffled[:4], shuffled[4:9], shuffled[9:]]
    _send(server, "one-batch", spans)
    # One span per request, newest first, assembling in between; the shuffled tenant's chunks,
    # each re-delivered in part, ride along those assembly cycles, one chunk per cycle.
    for s, assemble in zip(reversed(spans), assemble_after, strict=True):
        _send(server, "reversed", [s])
        if assemble:
            if chunks:
                chunk = chunks.pop(0)
                _send(server, "shuffled", chunk)
                _send(server, "shuffled", chunk[:2])  # re-delivered
            settle(server)
    for chunk in chunks:
        _send(server, "shuffled", chunk)
        _send(server, "shuffled", chunk[:2])
        settle(server)
    settle(server)
    runs = {t: _rows(server, "runs", t) for t in ("one-batch", "reversed", "shuffled")}
    steps = {t: _rows(server, "steps", t) for t in ("one-batch", "reversed", "shuffled")}
    assert len(runs["one-batch"]) == 4 and len(steps["one-batch"]) == 9
    assert runs["reversed"] == runs["one-batch"] and runs["shuffled"] == runs["one-batch"]
    assert steps["reversed"] == steps["one-batch"] and steps["shuffled"] == steps["one-batch"]


def test_resending_any_subset_changes_nothing(server: WrmServer) -> None:
    spans = corpus()
    _send(server, "idem", spans)
    settle(server)
    assert server.warehouse is not None
    before = (_rows(server, "runs", "idem"), _rows(server, "steps", "idem"))
    totals = (
        "SELECT count(), sum(input_tokens), sum(cost_usd), sum(retries) FROM runs WHERE tenant_id = 'idem'"
    )
    before_totals = server.warehouse.rows(totals)
    rng = random.Random(11)
    for _ in range(3):
        _send(server, "idem", rng.sample(spans, k=rng.randint(1, len(spans))))
        settle(server)
    assert (_rows(server, "runs", "idem"), _rows(server, "steps", "idem")) == before
    assert server.warehouse.rows(totals) == before_totals
    assert server.warehouse.rows("SELECT count() FROM spans FINAL WHERE tenant_id = 'idem'") == [
        (len(spans),)
    ]
