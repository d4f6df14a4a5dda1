"""runs_by_time, the time-ordered run list, shows every run once at its current start time."""

from __future__ import annotations

import httpx

from tests.conftest import settle, start_server
from tests.otlp import send_raw
from tests.workflows import BASE_NS, request, span, tid
from warehouse import Warehouse


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


def test_the_api_lists_the_current_version_only(warehouse: Warehouse) -> None:
    """The list reads candidates without FINAL: old versions and hidden rows must not leak."""
    server = start_server(warehouse)
    try:
        send_raw(server.otlp_address, request([span("moved", "step", parent="run", start=5, end=6)]))
        send_raw(server.otlp_address, request([span("stays", "step", parent="run", start=2, end=3)]))
        settle(server)
        send_raw(server.otlp_address, request([span("moved", "run", start=0, end=9)]))
        send_raw(
            server.otlp_address, request([span("stays", "run", start=2, end=9)])
        )  # same start, new status
        settle(server)
        with httpx.Client(base_url=f"http://{server.http_address}") as client:

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
    finally:
        server.stop()


def test_steps_endpoint_drops_a_span_that_stopped_being_a_step(warehouse: Warehouse) -> None:
    """Steps are read without FINAL: the newest version of a step wins, even when it says the
    span is no longer a step."""
    server = start_server(warehouse)
    try:
        first = [span("t", "agent", start=1, end=8), span("t", "helper", parent="agent", start=2, end=3)]
        send_raw(server.otlp_address, request(first))
        settle(server)
        with httpx.Client(base_url=f"http://{server.http_address}") as client:
            run_id = tid("t").hex()

            def names() -> list[str]:
                flat = client.get(f"/v1/runs/{run_id}/steps", params={"view": "flat"}).json()["steps"]
                return [s["name"] for s in flat]

            assert names() == ["helper"]  # a direct child of the run span (agent)
            # a run span arrives above: agent becomes the step, helper is only inside it
            send_raw(server.otlp_address, request([span("t", "workflow", start=0, end=9, wrm__run=True)]))
            agent = request([span("t", "agent", parent="workflow", start=1, end=8)])
            send_raw(server.otlp_address, agent)
            settle(server)
            assert names() == ["agent"]
    finally:
        server.stop()
