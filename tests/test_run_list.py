"""runs_by_time, the time-ordered run list, shows every run once at its current start time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import module_server, settle
from tests.first_spans import FirstSpans
from tests.otlp import send_raw
from tests.workflows import BASE_NS, request, span, tid
from wrm.server import WrmServer

FIRST = FirstSpans()  # what each test starts from (tests.first_spans)


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module: each test sends and reads a tenant of its own."""
    with module_server(engine_dir) as srv:
        FIRST.send(srv)
        yield srv


def _send(server: WrmServer, tenant: str, spans: list[Span]) -> None:
    send_raw(server.otlp_address, request(spans, wrm__tenant__id=tenant))


@FIRST.of_tenants(("moves", [span("moving", "step", parent="run", start=5, end=6)]))
def test_a_run_whose_start_moves_is_listed_once(server: WrmServer) -> None:
    assert server.warehouse is not None
    warehouse = server.warehouse
    listed = (
        "SELECT status, toUnixTimestamp64Nano(start_time) FROM runs_by_time FINAL WHERE tenant_id = 'moves'"
    )
    assert warehouse.rows(listed) == [("running", BASE_NS + 5 * 10**9)]
    _send(server, "moves", [span("moving", "run", start=0, end=9)])
    settle(server)
    assert warehouse.rows(listed) == [("completed", BASE_NS)]
    # old, its hiding row, new
    assert warehouse.rows("SELECT count() FROM runs_by_time WHERE tenant_id = 'moves'") == [(3,)]


@FIRST.of_tenants(
    ("versions", [span("moved", "step", parent="run", start=5, end=6)]),
    ("versions", [span("stays", "step", parent="run", start=2, end=3)]),
)
def test_the_api_lists_the_current_version_only(server: WrmServer) -> None:
    """The list reads candidates without FINAL: old versions and hidden rows must not leak."""
    tenant = "versions"
    _send(server, tenant, [span("moved", "run", start=0, end=9)])
    _send(server, tenant, [span("stays", "run", start=2, end=9)])  # same start, new status
    settle(server)
    with httpx.Client(base_url=f"http://{server.http_address}", headers={"X-WRM-Tenant": tenant}) as client:

        def listed(**params: str) -> list[tuple[str, str]]:
            runs = client.get("/v1/runs", params={"limit": 1, **params}).json()
            out = [(r["trace_id"], r["status"]) for r in runs["runs"]]
            while runs["next_cursor"]:
                runs = client.get(
                    "/v1/runs", params={"limit": 1, "cursor": runs["next_cursor"], **params}
                ).json()
                out += [(r["trace_id"], r["status"]) for r in runs["runs"]]
            return out

        moved, stays = tid("moved").hex(), tid("stays").hex()
        assert listed() == [(stays, "completed"), (moved, "completed")]
        assert listed(status="running") == []
        assert listed(status="completed") == [(stays, "completed"), (moved, "completed")]


@FIRST.of_tenants(
    ("steps", [span("t", "agent", start=1, end=8), span("t", "helper", parent="agent", start=2, end=3)])
)
def test_steps_endpoint_drops_a_span_that_stopped_being_a_step(server: WrmServer) -> None:
    """Steps are read without FINAL: the newest version of a step wins, even when it says the
    span is no longer a step."""
    tenant = "steps"
    with httpx.Client(base_url=f"http://{server.http_address}", headers={"X-WRM-Tenant": tenant}) as client:
        run_id = tid("t").hex()

        def names() -> list[str]:
            flat = client.get(f"/v1/runs/{run_id}/steps", params={"view": "flat"}).json()["steps"]
            return [s["name"] for s in flat]

        assert names() == ["helper"]  # a direct child of the run span (agent)
        # a run span arrives above: agent becomes the step, helper is only inside it
        _send(server, tenant, [span("t", "workflow", start=0, end=9, wrm__run=True)])
        _send(server, tenant, [span("t", "agent", parent="workflow", start=1, end=8)])
        settle(server)
        assert names() == ["agent"]
