"""runs_by_time, the time-ordered run list, shows every run once at its current start time."""

from __future__ import annotations

from analytics.warehouse import Warehouse
from tests.conftest import settle, start_server
from tests.otlp import send_raw
from tests.workflows import BASE_NS, request, span


def test_a_run_whose_start_moves_is_listed_once(warehouse: Warehouse) -> None:
    server = start_server(warehouse)
    try:
        send_raw(server.otlp_address, request([span("moving", "step", parent="run", start=5, end=6)]))
        settle(server)
        listed = "SELECT status, toUnixTimestamp64Nano(start_time) FROM runs_by_time FINAL"
        assert warehouse.rows(listed) == [("running", BASE_NS + 5 * 10**9)]
        send_raw(server.otlp_address, request([span("moving", "run", start=0, end=9)]))
        settle(server)
        assert warehouse.rows(listed) == [("completed", BASE_NS)]
        assert warehouse.rows("SELECT count() FROM runs_by_time") == [(3,)]  # old, its hiding row, new
    finally:
        server.stop()
