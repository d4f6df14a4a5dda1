"""The summary tier keeps up on its own: an idle server still summarizes the last runs it got."""

from __future__ import annotations

import time

from tests.conftest import settle, start_server
from tests.otlp import send_raw
from tests.workflows import request, span
from warehouse import Warehouse


def _summarized(wh: Warehouse, runs: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if wh.rows("SELECT sum(runs) FROM runs_daily_store FINAL")[0][0] == runs:
            return True
        time.sleep(0.1)
    return False


def test_an_idle_server_summarizes_its_last_runs(warehouse: Warehouse) -> None:
    server = start_server(warehouse, summary_interval_ms=1000, assemble_interval_ms=50)
    try:
        send_raw(
            server.otlp_address, request([span("first", "run", start=0, end=2, wrm__workflow__name="w")])
        )
        assert _summarized(warehouse, 1, within_s=10)
        # the next run arrives right after a refresh; no further spans come
        send_raw(
            server.otlp_address,
            request([span("second", "run", start=0, end=2, wrm__workflow__name="w")]),
        )
        assert _summarized(warehouse, 2, within_s=10)
    finally:
        server.stop()


def test_a_recent_run_keeps_assembling_under_one_day_span_retention(warehouse: Warehouse) -> None:
    """Only runs whose spans may already be expiring are frozen, not every run older than now."""
    server = start_server(warehouse, tenant_retention={"brief": {"spans_ttl_days": 1}})
    tenant = {"wrm.tenant.id": "brief"}
    try:
        send_raw(server.otlp_address, request([span("r", "step", parent="run", start=1, end=2)], **tenant))
        settle(server)
        assert warehouse.rows("SELECT status FROM runs WHERE tenant_id = 'brief'") == [("running",)]
        send_raw(server.otlp_address, request([span("r", "run", start=0, end=3)], **tenant))
        settle(server)
        assert warehouse.rows("SELECT status FROM runs WHERE tenant_id = 'brief'") == [("completed",)]
    finally:
        server.stop()


def test_a_run_that_changes_version_leaves_its_old_group(warehouse: Warehouse) -> None:
    server = start_server(warehouse)
    try:
        send_raw(
            server.otlp_address, request([span("m", "run", start=0, end=3, wrm__workflow__name="mover")])
        )
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
    finally:
        server.stop()
