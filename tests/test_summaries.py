"""The summary tier keeps up on its own: an idle server still summarizes the last runs it got."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import module_server, settle
from tests.otlp import send_raw
from tests.workflows import request, span
from warehouse import Warehouse
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module, summarizing every second on its own and assembling every 50 ms,
    where tenant `brief` keeps spans one day: each test reads only its own workflow or tenant."""
    with module_server(
        engine_dir,
        summary_interval_ms=1000,
        assemble_interval_ms=50,
        tenant_retention={"brief": {"spans_ttl_days": 1}},
    ) as srv:
        yield srv


def _summarized(wh: Warehouse, workflow: str, runs: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    query = "SELECT sum(runs) FROM runs_daily_store FINAL WHERE workflow_name = {w:String}"
    while time.monotonic() < deadline:
        if wh.rows(query, {"w": workflow})[0][0] == runs:
            return True
        time.sleep(0.1)
    return False


def test_an_idle_server_summarizes_its_last_runs(server: WrmServer) -> None:
    """No settle: the server's own loop assembles and summarizes."""
    assert server.warehouse is not None
    send_raw(server.otlp_address, request([span("first", "run", start=0, end=2, wrm__workflow__name="w")]))
    assert _summarized(server.warehouse, "w", 1, within_s=10)
    # the next run arrives right after a refresh; no further spans come
    send_raw(server.otlp_address, request([span("second", "run", start=0, end=2, wrm__workflow__name="w")]))
    assert _summarized(server.warehouse, "w", 2, within_s=10)


def test_a_recent_run_keeps_assembling_under_one_day_span_retention(server: WrmServer) -> None:
    """Only runs whose spans may already be expiring are frozen, not every run older than now."""
    assert server.warehouse is not None
    warehouse = server.warehouse
    tenant = {"wrm.tenant.id": "brief"}
    send_raw(server.otlp_address, request([span("r", "step", parent="run", start=1, end=2)], **tenant))
    settle(server)
    assert warehouse.rows("SELECT status FROM runs WHERE tenant_id = 'brief'") == [("running",)]
    send_raw(server.otlp_address, request([span("r", "run", start=0, end=3)], **tenant))
    settle(server)
    assert warehouse.rows("SELECT status FROM runs WHERE tenant_id = 'brief'") == [("completed",)]


def test_a_run_that_changes_version_leaves_its_old_group(server: WrmServer) -> None:
    assert server.warehouse is not None
    warehouse = server.warehouse
    send_raw(server.otlp_address, request([span("m", "run", start=0, end=3, wrm__workflow__name="mover")]))
    settle(server)
    groups = "SELECT workflow_version, runs FROM runs_daily_store FINAL WHERE workflow_name = 'mover'"
    assert warehouse.rows(groups) == [("", 1)]
    # a late step names the version: the run moves to group v9, and the '' group is gone
    late = span("m", "step", parent="run", start=1, end=2, wrm__workflow__version="v9")
    send_raw(server.otlp_address, request([late]))
    settle(server)
    assert warehouse.rows(groups) == [("v9", 1)]
    assert warehouse.rows(
        "SELECT workflow_version, runs FROM effectiveness WHERE workflow_name = 'mover'"
    ) == [("v9", 1)]
