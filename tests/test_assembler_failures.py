"""The assembler's two failure classes, on the real engine: a transient error (TOO_MANY_PARTS)
is retried with back-off until it clears, and nothing is lost; a permanent one (a view it
needs is gone) stops assembly and says so in /healthz and /metrics instead of failing the same
way every cycle."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import start_server
from tests.otlp import make_span, request_of, send_raw
from warehouse import Warehouse
from wrm.server import WrmServer


@pytest.fixture
def fast_server(warehouse: Warehouse) -> Iterator[WrmServer]:
    srv = start_server(warehouse, assemble_interval_ms=100)
    yield srv
    srv.stop()


def _health(server: WrmServer) -> dict[str, object]:
    body = httpx.get(f"http://{server.http_address}/healthz", timeout=10).json()
    assembler = body["assembler"]
    assert isinstance(assembler, dict)
    return assembler


def _failures(server: WrmServer, error_class: str) -> float:
    text = httpx.get(f"http://{server.http_address}/metrics", timeout=10).text
    m = re.search(rf'^wrm_assembly_failures_total{{error_class="{error_class}"}} (\S+)$', text, re.M)
    assert m, "wrm_assembly_failures_total is not in /metrics"
    return float(m.group(1))


def _runs(warehouse: Warehouse) -> int:
    return int(warehouse.rows("SELECT count() FROM runs")[0][0])


def _wait(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _send_run(server: WrmServer) -> None:
    send_raw(server.otlp_address, request_of([make_span("workflow")]))


def test_transient_failure_is_retried_until_it_clears(fast_server: WrmServer, warehouse: Warehouse) -> None:
    _send_run(fast_server)
    _wait(lambda: _runs(warehouse) == 1)
    assert _health(fast_server)["state"] == "ok"
    warehouse.command("ALTER TABLE runs_store MODIFY SETTING parts_to_throw_insert = 1")  # Code 252
    try:
        _send_run(fast_server)  # acknowledged: ingest does not depend on assembly
        _wait(lambda: _failures(fast_server, "transient") >= 2)
        health = _health(fast_server)
        assert health["state"] == "retrying"
        assert httpx.get(f"http://{fast_server.http_address}/healthz", timeout=10).json()["status"] == "ok"
        assert health["last_error"] == "WarehouseUnavailable: ClickHouse code 252 (TOO_MANY_PARTS)"
        assert _runs(warehouse) == 1
    finally:
        warehouse.command("ALTER TABLE runs_store MODIFY SETTING parts_to_throw_insert = 3000")
    _wait(lambda: _runs(warehouse) == 2, seconds=40)  # back-off is at most 30 s
    _wait(lambda: _health(fast_server)["state"] == "ok")
    assert _failures(fast_server, "permanent") == 0


def test_permanent_failure_stops_assembly_and_is_reported(
    fast_server: WrmServer, warehouse: Warehouse
) -> None:
    _send_run(fast_server)
    _wait(lambda: _runs(warehouse) == 1)
    warehouse.command("DROP VIEW assemble_runs")
    _send_run(fast_server)
    _wait(lambda: _health(fast_server)["state"] == "failed")
    health = _health(fast_server)
    assert str(health["last_error"]).startswith("WarehouseRejected: ClickHouse code ")
    assert "assemble_runs" not in str(health["last_error"])  # engine text stays in the log
    answer = httpx.get(f"http://{fast_server.http_address}/healthz", timeout=10)
    assert answer.status_code == 200  # ingest still works: a load balancer keeps the server
    assert answer.json()["status"] == "degraded"
    assert "permanent error" in answer.json()["degraded"]
    assert _failures(fast_server, "permanent") == 1
    time.sleep(1.0)  # ten assembly intervals: a looping assembler would have failed again
    assert _failures(fast_server, "permanent") == 1
    assert _failures(fast_server, "transient") == 0
    assert _runs(warehouse) == 1
    # ingest goes on: the span is stored, and waits for assembly after the fix and a restart
    assert int(warehouse.rows("SELECT count() FROM spans")[0][0]) == 2
