"""One run across several traces (spec 4.3): a workflow that pauses for a person and resumes in a
new trace is one run, joined by its run id or by a span link; usage counted once (spec 4.4); runs
whose end never comes become abandoned (spec 4.5). Through the real server: OTLP in, SQL, /v1."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from analytics.indicators import effectiveness
from tests.conftest import module_server, settle
from tests.first_spans import FirstSpans
from tests.otlp import send_raw
from tests.workflows import BASE_NS, SEC, hexid, request, sid, span, tid
from warehouse import WarehouseUnavailable
from wrm.server import WrmServer

FIRST = FirstSpans()  # what each test starts from (tests.first_spans)

STALE_WORKFLOW = "nightly-sync"  # stale_run_after of 4 s for this workflow only
WAIT_WORKFLOW = "approvals"  # human_wait_limit of 4 s for this workflow only


@pytest.fixture(scope="module")
def api(engine_dir: Path) -> Iterator[tuple[WrmServer, httpx.Client]]:
    with (
        module_server(
            engine_dir,
            stale_run_after_by_workflow={STALE_WORKFLOW: 4},
            human_wait_limit_by_workflow={WAIT_WORKFLOW: 4},
            max_parts_per_run=3,
            stale_check_interval_s=3600,  # swept by the test, when it wants
        ) as srv,
        httpx.Client(base_url=f"http://{srv.http_address}", timeout=30) as client,
    ):
        FIRST.send(srv)
        yield srv, client


def _post(server: WrmServer, tenant: str, spans: list[Span]) -> None:
    response = send_raw(server.otlp_address, request(spans, wrm__tenant__id=tenant))
    assert response.partial_success.rejected_spans == 0


def _send(server: WrmServer, tenant: str, spans: list[Span]) -> None:
    _post(server, tenant, spans)
    settle(server)


def _runs(server: WrmServer, tenant: str) -> list[dict[str, Any]]:
    assert server.warehouse is not None
    result = server.warehouse.client.query(
        "SELECT * EXCEPT (tenant_id, last_span_at) FROM runs WHERE tenant_id = {t:String} ORDER BY run_id",
        {"t": tenant},
    )
    return list(result.named_results())


def _until_failed(server: WrmServer, failed: list[str]) -> None:
    """Assemble until the injected failure has struck, in this call or in the server's own
    assembly thread (which may reach the new spans first)."""
    assert server.assembler is not None
    deadline = time.monotonic() + 30
    while not failed:
        assert time.monotonic() < deadline, "the injected failure never struck"
        with contextlib.suppress(WarehouseUnavailable):  # struck here, or in the server's thread
            server.assembler.catch_up()
        time.sleep(0.05)


def _get(client: httpx.Client, tenant: str, path: str, **params: Any) -> Any:
    resp = client.get(path, params=params, headers={"X-WRM-Tenant": tenant})
    assert resp.status_code == 200, resp.text
    return resp.json()


def refund(label: str) -> tuple[list[Span], list[Span]]:
    """A refund that asks a person and ends its trace, then resumes in a second trace with the
    decision: both traces carry wrm.run.id."""
    run_id = f"order-{label}"
    a, b = f"{label}-paused", f"{label}-resumed"
    first = [
        span(a, "refund", start=0, end=5, wrm__run__id=run_id, wrm__workflow__name="refund"),
        span(a, "classify", "refund", 1, 2, gen_ai__operation__name="chat", gen_ai__request__model="m",
             gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=20, wrm__cost__usd=0.01),
        span(a, "approval-requested", "refund", 4, 4.01, wrm__hitl__state="requested"),
    ]  # fmt: skip
    second = [
        span(b, "refund", start=100, end=110, wrm__run__id=run_id, wrm__workflow__name="refund"),
        span(b, "approval", "refund", 100, 100.5, wrm__step__type="human", wrm__hitl__decision="approved",
             wrm__hitl__actor="alice@example.com"),
        span(b, "pay", "refund", 101, 103, gen_ai__tool__name="payments.refund",
             gen_ai__usage__input_tokens=50, gen_ai__usage__output_tokens=5, wrm__cost__usd=0.02),
    ]  # fmt: skip
    return first, second


@FIRST.of_tenants(("parts-a", refund("a")[0]))
def test_paused_and_resumed_refund_is_one_run(api: tuple[WrmServer, httpx.Client]) -> None:
    server, client = api
    _, second = refund("a")
    (waiting,) = _runs(server, "parts-a")
    assert (waiting["run_id"], waiting["status"], waiting["end_time"]) == ("order-a", "waiting_human", None)
    assert [r["status"] for r in _get(client, "parts-a", "/v1/runs")["runs"]] == ["waiting_human"]

    _send(server, "parts-a", second)
    (run,) = _runs(server, "parts-a")
    assert run["status"] == "completed" and run["first_pass"] == 1
    assert run["trace_ids"] == [tid("a-paused").hex(), tid("a-resumed").hex()]
    assert run["trace_id"] == tid("a-paused").hex()
    assert (run["input_tokens"], run["output_tokens"]) == (150, 25)
    assert run["cost_usd"] == pytest.approx(0.03)
    assert run["duration_ns"] == 110 * 10**9  # first start to last end
    assert (run["human_decisions"], run["human_wait_ms"]) == (
        1,
        96_500,
    )  # requested at 4 s, decided at 100.5 s
    assert (run["step_count"], run["retries"]) == (3, 0)

    listed = _get(client, "parts-a", "/v1/runs")["runs"]
    assert [(r["run_id"], r["status"]) for r in listed] == [("order-a", "completed")]
    detail = _get(client, "parts-a", "/v1/runs/order-a")
    assert detail["trace_ids"] == run["trace_ids"]
    assert [(p["trace_id"], p["step_count"]) for p in detail["parts"]] == [
        (tid("a-paused").hex(), 1),
        (tid("a-resumed").hex(), 2),
    ]
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.count("human.waiting") == 1 and kinds.count("human.decided") == 1
    steps = _get(client, "parts-a", "/v1/runs/order-a/steps", view="flat")["steps"]
    assert [(s["name"], s["trace_id"]) for s in steps] == [
        ("classify", tid("a-paused").hex()),
        ("approval", tid("a-resumed").hex()),
        ("payments.refund", tid("a-resumed").hex()),
    ]
    assert steps[1]["human_wait_ms"] == 96_500
    # either trace id finds the run, in its tenant only
    assert _get(client, "parts-a", f"/v1/runs/{tid('a-resumed').hex()}")["run_id"] == "order-a"
    for other in ("order-a", tid("a-resumed").hex()):
        assert client.get(f"/v1/runs/{other}", headers={"X-WRM-Tenant": "parts-b1"}).status_code == 404
    # counted once by the indicators and the export
    frame = effectiveness(server.warehouse.reader, "parts-a")  # type: ignore[union-attr]
    assert frame["runs"].tolist() == [1] and frame["input_tokens_per_run"].tolist() == [150]
    export = client.get("/v1/runs/export", params={"format": "jsonl", "steps": "true"},
                        headers={"X-WRM-Tenant": "parts-a"})  # fmt: skip
    lines = [json.loads(x) for x in export.text.splitlines()]
    assert [(x["run_id"], len(x["steps"])) for x in lines] == [("order-a", 3)]


@FIRST.of_tenants(
    ("parts-b1", refund("b")[0] + refund("b")[1]),
    ("parts-b2", refund("b")[1]),  # the resumed part first
    ("parts-b3", refund("b")[0]),
)
def test_arrival_order_and_redelivery_do_not_matter(api: tuple[WrmServer, httpx.Client]) -> None:
    """Three assembly cycles (the first before the tests), each tenant's parts arriving in its
    own order across them."""
    server, _ = api
    first, second = refund("b")
    _post(server, "parts-b2", first)
    _post(server, "parts-b3", second)
    settle(server)
    _send(server, "parts-b3", first[:2] + second[1:])  # re-sent
    runs = {t: _runs(server, t) for t in ("parts-b1", "parts-b2", "parts-b3")}
    assert len(runs["parts-b1"]) == 1 and runs["parts-b1"][0]["status"] == "completed"
    assert runs["parts-b2"] == runs["parts-b1"] and runs["parts-b3"] == runs["parts-b1"]


def _linked() -> list[Span]:
    resumed = span("link-2", "triage", start=50, end=60, wrm__workflow__name="triage")
    resumed.links.add(trace_id=tid("link-1"), span_id=sid("link-1/ask"))
    return [resumed, span("link-2", "review", "triage", 50, 51, wrm__hitl__decision="approved")]


@FIRST.of_tenants(("parts-link", _linked()))  # the resumed part arrives first
def test_resume_joined_by_a_span_link_alone(api: tuple[WrmServer, httpx.Client]) -> None:
    server, client = api
    paused = [
        span("link-1", "triage", start=0, end=3, wrm__workflow__name="triage"),
        span("link-1", "ask", "triage", 2, 2.5, wrm__hitl__state="requested"),
    ]
    _send(server, "parts-link", paused)
    (run,) = _runs(server, "parts-link")
    assert run["run_id"] == tid("link-1").hex()  # no run id attribute: the first part's trace id
    assert run["trace_ids"] == [tid("link-1").hex(), tid("link-2").hex()]
    assert run["status"] == "completed" and run["human_wait_ms"] == 49_000
    assert _get(client, "parts-link", f"/v1/runs/{tid('link-2').hex()}")["run_id"] == run["run_id"]


def _three_parts() -> list[Span]:
    spans = []
    for i in range(3):
        t = f"three-{i}"
        spans += [
            span(t, "etl", start=100 * i, end=100 * i + 10, wrm__run__id="batch-7",
                 wrm__workflow__name="etl"),
            span(t, f"load-{i}", "etl", 100 * i + 1, 100 * i + 2,
                 error=("IOError", "disk full") if i == 2 else None, wrm__step__type="tool"),
        ]  # fmt: skip
    spans[-2] = span(
        "three-2", "etl", start=200, end=210, error=("IOError", "disk full"), wrm__run__id="batch-7"
    )
    return spans


@FIRST.of_tenants(("parts-three", _three_parts()[4:]))
def test_three_parts_failing_in_the_last(api: tuple[WrmServer, httpx.Client]) -> None:
    server, _ = api
    _send(server, "parts-three", _three_parts()[:4])
    (run,) = _runs(server, "parts-three")
    assert run["status"] == "failed" and len(run["trace_ids"]) == 3
    assert run["failed_step"] == "load-2" and run["failure_reason"] == "load-2: IOError: disk full"
    assert run["failure_kind"] == "error" and run["step_count"] == 3


@FIRST.of_tenants(("usage", [
    span("totals", "wf", start=0, end=10, gen_ai__operation__name="invoke_workflow",
         gen_ai__usage__input_tokens=300, gen_ai__usage__output_tokens=60, wrm__cost__usd=0.3),
    span("totals", "agent", "wf", 1, 9, gen_ai__operation__name="invoke_agent", gen_ai__agent__name="a",
         gen_ai__usage__input_tokens=300, gen_ai__usage__output_tokens=60, wrm__cost__usd=0.3),
    span("totals", "llm#1", "agent", 2, 3, gen_ai__operation__name="chat",
         gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=20, wrm__cost__usd=0.1),
    span("totals", "llm#2", "agent", 4, 5, gen_ai__operation__name="chat",
         gen_ai__usage__input_tokens=200, gen_ai__usage__output_tokens=40, wrm__cost__usd=0.2),
    # a step whose aggregate covers calls no span reports: its own value counts
    span("totals", "tool", "wf", 9, 10, gen_ai__tool__name="search", gen_ai__usage__input_tokens=7),
]))  # fmt: skip
def test_aggregates_on_root_and_agent_are_not_counted_twice(api: tuple[WrmServer, httpx.Client]) -> None:
    server, client = api
    t = "totals"
    (run,) = _runs(server, "usage")
    assert (run["input_tokens"], run["output_tokens"]) == (307, 60)
    assert run["cost_usd"] == pytest.approx(0.3)
    steps = _get(client, "usage", f"/v1/runs/{tid(t).hex()}/steps", view="flat")["steps"]
    assert sorted((s["type"], s["input_tokens"]) for s in steps) == [
        ("agent", 0), ("llm", 100), ("llm", 200), ("tool", 7)
    ]  # fmt: skip
    assert sum(s["cost_usd"] for s in steps) == pytest.approx(0.3)
    server.assembler.catch_up()  # type: ignore[union-attr]
    frame = effectiveness(server.warehouse.reader, "usage")  # type: ignore[union-attr]
    assert frame["input_tokens_per_run"].tolist() == [307]
    assert frame["cost_per_run_usd"].tolist() == pytest.approx([0.3])


def test_run_without_root_is_abandoned_then_settled_by_its_root(api: tuple[WrmServer, httpx.Client]) -> None:
    server, client = api
    t = "stale"
    # Spans that end 2 s from now (by their own clocks): active runs, stale 6 s from now, a margin
    # for a slow machine's first assembly.
    now = (time.time_ns() - BASE_NS) / SEC
    fetch = span(t, "fetch", "sync", now, now + 1, wrm__workflow__name=STALE_WORKFLOW, wrm__step__type="tool")
    write = span(
        t, "write", "sync", now + 1, now + 2, wrm__workflow__name=STALE_WORKFLOW, wrm__step__type="tool"
    )
    # waiting for a person: refund, whose limits are the defaults, and approvals, waiting 4 s at most
    waiting = [
        span("wait", "approve", start=now, end=now + 2, wrm__workflow__name=WAIT_WORKFLOW),
        span("wait", "ask", "approve", now + 0.5, now + 0.6, wrm__hitl__state="requested"),
    ]
    _send(server, "stale", [fetch, write, *refund("s")[0], *waiting])
    statuses = {r["workflow_name"]: r["status"] for r in _runs(server, "stale")}
    assert statuses == {STALE_WORKFLOW: "running", "refund": "waiting_human", WAIT_WORKFLOW: "waiting_human"}
    time.sleep(max(0.0, now + 6.5 - (time.time_ns() - BASE_NS) / SEC))
    assert server.assembler is not None
    server.assembler.sweep_stale()
    runs = {r["workflow_name"]: r for r in _runs(server, "stale")}
    assert runs["refund"]["status"] == "waiting_human"  # its own wait limit, 7 days, not 4 s
    stale = runs[STALE_WORKFLOW]
    assert (stale["status"], stale["failure_kind"], stale["first_pass"]) == ("failed", "abandoned", 0)
    assert stale["failure_reason"].startswith(
        'abandoned: no span for 4 seconds; last seen: "write" completed at'
    )
    waited = runs[WAIT_WORKFLOW]
    assert (waited["status"], waited["failure_kind"]) == ("failed", "abandoned")
    assert waited["failure_reason"].startswith("abandoned: no span for 4 seconds while waiting for a person")
    listed = _get(client, "stale", "/v1/runs", failure_kind="abandoned")["runs"]
    assert sorted(r["run_id"] for r in listed) == sorted([tid(t).hex(), tid("wait").hex()])
    assert len(_get(client, "stale", "/v1/runs", status="failed")["runs"]) == 2

    _send(server, "stale", [write])  # re-sent: no sign of life
    assert {r["workflow_name"]: r["status"] for r in _runs(server, "stale")}[STALE_WORKFLOW] == "failed"
    later = (time.time_ns() - BASE_NS) / SEC
    _send(server, "stale", [span(t, "sync", start=now, end=later, wrm__workflow__name=STALE_WORKFLOW)])
    runs = {r["workflow_name"]: r for r in _runs(server, "stale")}
    assert (runs[STALE_WORKFLOW]["status"], runs[STALE_WORKFLOW]["failure_kind"]) == ("completed", "")
    assert runs[STALE_WORKFLOW]["duration_ns"] == pytest.approx((later - now) * 10**9, abs=2)
    assert [r["run_id"] for r in _get(client, "stale", "/v1/runs", failure_kind="abandoned")["runs"]] == [
        tid("wait").hex()
    ]
    assert hexid(f"{t}/sync") == runs[STALE_WORKFLOW]["run_span_id"]


def _died_resumed() -> list[Span]:
    resumed = span("died-2", "refund", start=50, end=60)
    resumed.links.add(trace_id=tid("died-1"), span_id=sid("died-1/refund"))
    return [resumed]


@FIRST.of_tenants(("parts-died", _died_resumed()))
def test_a_cycle_that_dies_after_moving_a_trace_leaves_no_stale_run(
    api: tuple[WrmServer, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resumed part arrives first and links to a paused part not yet seen, so it is a run of
    the paused part's trace id; when that part arrives with wrm.run.id, the resumed part moves to
    that run and the run it left must go. The cycle dies right after moving it (before any run is
    rebuilt): the next cycle still rebuilds both runs (run_queue), and only the joined run is left."""
    server, client = api
    assert [r["run_id"] for r in _runs(server, "parts-died")] == [tid("died-1").hex()]

    assert server.assembler is not None
    rebuild = server.assembler._rebuild
    command = rebuild._wh.command
    failures: list[str] = []

    def dies_once(sql: str, parameters: Any = None) -> Any:
        if "INSERT INTO assembly_parts" in sql and not failures:
            failures.append(sql)
            raise WarehouseUnavailable("killed between moving a trace and rebuilding its runs")
        return command(sql, parameters)

    monkeypatch.setattr(rebuild._wh, "command", dies_once)
    paused = span("died-1", "refund", start=0, end=5, wrm__run__id="order-died")
    send_raw(server.otlp_address, request([paused], wrm__tenant__id="parts-died"))
    _until_failed(server, failures)
    monkeypatch.setattr(rebuild._wh, "command", command)
    settle(server)
    runs = _runs(server, "parts-died")
    assert [(r["run_id"], r["trace_ids"]) for r in runs] == [
        ("order-died", [tid("died-1").hex(), tid("died-2").hex()])
    ]
    assert [r["run_id"] for r in _get(client, "parts-died", "/v1/runs")["runs"]] == ["order-died"]
    assert (
        client.get(f"/v1/runs/{tid('died-1').hex()}", headers={"X-WRM-Tenant": "parts-died"}).json()["run_id"]
        == "order-died"
    )


def _chain() -> list[Span]:
    parts = []
    for i, name in enumerate(("chain-a", "chain-b", "chain-c")):
        root = span(name, "etl", start=100 * i, end=100 * i + 10)
        if i == 0:
            root = span(name, "etl", start=0, end=10, wrm__run__id="chain-9")
        if i:
            previous = ("chain-a", "chain-b")[i - 1]
            root.links.add(trace_id=tid(previous), span_id=sid(f"{previous}/etl"))
        parts.append(root)
    return parts


@FIRST.of_tenants(("parts-chain", _chain()[1:]))
def test_a_link_chain_is_followed_to_its_end_after_a_cycle_dies_between_hops(
    api: tuple[WrmServer, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """C links to B, B to A, and A, arriving last, carries the run id: B follows A in one hop and C
    follows B in the next. The cycle dies between the two hops; the next one still follows C."""
    server, _ = api
    parts = _chain()
    assert server.assembler is not None
    rebuild = server.assembler._rebuild
    command = rebuild._wh.command
    hops: list[str] = []
    struck: list[str] = []

    def dies_at_the_second_hop(sql: str, parameters: Any = None) -> Any:
        if sql.startswith("INSERT INTO trace_runs") and "relinked_traces" in sql:  # resolve_links.sql
            hops.append(sql)
            if len(hops) == 2:
                struck.append(sql)
                raise WarehouseUnavailable("killed between two hops")
        return command(sql, parameters)

    monkeypatch.setattr(rebuild._wh, "command", dies_at_the_second_hop)
    send_raw(server.otlp_address, request([parts[0]], wrm__tenant__id="parts-chain"))
    _until_failed(server, struck)
    monkeypatch.setattr(rebuild._wh, "command", command)
    settle(server)
    runs = _runs(server, "parts-chain")
    assert [(r["run_id"], r["trace_ids"]) for r in runs] == [
        ("chain-9", [tid("chain-a").hex(), tid("chain-b").hex(), tid("chain-c").hex()])
    ]


def test_frozen_runs_take_no_new_part_and_are_abandoned_as_they_stand(
    api: tuple[WrmServer, httpx.Client],
) -> None:
    """A run past its tenant's span retention (less an hour) is frozen: not rebuilt from what is
    left of its spans. A new trace with its run id becomes a run of its own; still unfinished past
    its limit, the frozen run's row is marked abandoned once."""
    server, _ = api
    assert server.warehouse is not None and server.assembler is not None
    wh = server.warehouse
    wh.command(
        "INSERT INTO runs_store (tenant_id, run_id, trace_id, trace_ids, workflow_name, status, start_time, "
        "last_active_at, retention_days, assembled_at) VALUES ('parts-frozen', 'order-fz', 'f0', ['f0'], "
        "'refund', 'running', now64(9) - INTERVAL 40 DAY, now64(9) - INTERVAL 40 DAY, 90, now64(6))"
    )
    _send(server, "parts-frozen", [span("fz-2", "refund", start=0, end=5, wrm__run__id="order-fz")])
    runs = {r["run_id"]: r for r in _runs(server, "parts-frozen")}
    assert runs["order-fz"]["trace_ids"] == ["f0"] and runs["order-fz"]["status"] == "running"
    assert runs[tid("fz-2").hex()]["status"] == "completed"  # the new part, a run of its own

    def queued() -> int:
        rows = wh.rows(
            "SELECT count() FROM run_queue WHERE tenant_id = 'parts-frozen' AND run_id = 'order-fz'"
        )
        return int(rows[0][0])

    before = queued()
    server.assembler.sweep_stale()
    frozen = {r["run_id"]: r for r in _runs(server, "parts-frozen")}["order-fz"]
    assert (frozen["status"], frozen["failure_kind"]) == ("failed", "abandoned")
    assert (
        frozen["failure_reason"]
        == "abandoned: no span for 1 day; past its span retention, the run was not rebuilt"
    )
    assert queued() == before + 1
    server.assembler.sweep_stale()
    assert queued() == before + 1  # abandoned now: not queued again


@FIRST.of_tenants(("parts-asks", [
    span("two-asks", "wf", start=0, end=200),
    span("two-asks", "ask-a", "wf", 3, 3.01, wrm__hitl__state="requested"),
    span("two-asks", "ask-b", "wf", 4, 4.01, wrm__hitl__state="requested"),
    span("two-asks", "dec-a", "wf", 100, 100.5, wrm__hitl__decision="approved"),
]))  # fmt: skip
def test_two_requests_are_answered_in_turn(api: tuple[WrmServer, httpx.Client]) -> None:
    """Two requests open at once: each decision answers the oldest one still open, and the run
    waits for a person while any is open."""
    server, _ = api
    t = "two-asks"
    (run,) = _runs(server, "parts-asks")
    assert run["status"] == "waiting_human" and run["human_wait_ms"] == 97_500
    _send(server, "parts-asks", [span(t, "dec-b", "wf", 101, 101.5, wrm__hitl__decision="rejected")])
    (run,) = _runs(server, "parts-asks")
    assert (run["status"], run["human_decisions"], run["human_wait_ms"]) == ("completed", 2, 97_500 + 97_500)


CONST = [f"const-{i}" for i in range(5)]


@FIRST.of_tenants(("parts-const", [span(t, "job", start=i, end=i + 0.5, wrm__run__id="undefined")
                        for i, t in enumerate(CONST[:3])]))  # fmt: skip
def test_a_run_takes_at_most_max_parts_per_run_traces(api: tuple[WrmServer, httpx.Client]) -> None:
    """A constant run id ("undefined") would make one run of every trace; past max_parts_per_run
    (3 here) a new trace is a run of its own."""
    server, _ = api
    traces = CONST
    _send(server, "parts-const", [span(t, "job", start=10 + i, end=10.5 + i, wrm__run__id="undefined")
                                  for i, t in enumerate(traces[3:])])  # fmt: skip
    runs = {r["run_id"]: r["trace_ids"] for r in _runs(server, "parts-const")}
    assert runs == {
        "undefined": [tid(t).hex() for t in traces[:3]],
        tid(traces[3]).hex(): [tid(traces[3]).hex()],
        tid(traces[4]).hex(): [tid(traces[4]).hex()],
    }
