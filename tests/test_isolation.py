"""A heavy SQL-port query stalls nothing else: /healthz, /metrics, the run API and ingest keep
answering while it runs; user SQL has its own bounded capacity (the next query over it waits in a
bounded queue, then gets 429 with Retry-After), and a query whose client goes away is cancelled."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import start_server
from tests.otlp import make_span, request_of, send_raw
from tests.sql_http import Answer, post
from warehouse import Warehouse
from wrm.server import WrmServer

HEAVY = "SELECT count() FROM numbers(4e11) WHERE number % 7 = 3"
RUNNING = "SELECT count() FROM system.processes WHERE startsWith(query, '/* wrm-sql')"


def _in_background(server: WrmServer, sql: str) -> tuple[threading.Thread, list[Answer]]:
    answers: list[Answer] = []
    thread = threading.Thread(target=lambda: answers.append(post(server, sql)), daemon=True)
    thread.start()
    return thread, answers


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _running(warehouse: Warehouse) -> int:
    return int(warehouse.rows(RUNNING)[0][0])  # the test process shares the engine with the server


def _timed_get(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as resp:
        resp.read()
        assert resp.status == 200
    return time.monotonic() - started


def _ingest_seconds(server: WrmServer, times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.monotonic()
        send_raw(server.otlp_address, request_of([make_span("during-heavy-query")]))
        seconds.append(time.monotonic() - started)
        time.sleep(0.2)
    return seconds


@pytest.fixture
def long_statements(warehouse: Warehouse) -> Iterator[WrmServer]:
    """Started and stopped outside the test's call, which alone runs apart (tests/conftest.py ALONE)."""
    srv = start_server(warehouse, sql_max_execution_s=10)
    yield srv
    srv.stop()


@pytest.fixture
def one_slot(warehouse: Warehouse) -> Iterator[WrmServer]:
    """As `long_statements`: one SQL slot, no queue, statements end at 3 s."""
    srv = start_server(warehouse, sql_max_concurrent=1, sql_max_queued=0, sql_max_execution_s=3)
    yield srv
    srv.stop()


def test_health_api_and_ingest_answer_while_a_long_query_runs(
    long_statements: WrmServer, warehouse: Warehouse
) -> None:
    srv = long_statements
    base = f"http://{srv.http_address}"
    idle_ingest = statistics.median(_ingest_seconds(srv, 5))  # an acknowledged insert, at rest
    thread, answers = _in_background(srv, HEAVY)
    assert _wait_until(lambda: _running(warehouse) == 1, 5)
    worst: dict[str, float] = {}
    busy_ingest: list[float] = []
    for _ in range(5):
        for name, path in (
            ("healthz", "/healthz"),
            ("metrics", "/metrics"),
            ("runs", "/v1/runs?limit=20"),
        ):
            worst[name] = max(worst.get(name, 0.0), _timed_get(base + path))
        busy_ingest += _ingest_seconds(srv, 1)
    assert thread.is_alive(), "the heavy query must still run while the others are measured"
    assert all(seconds < 1.0 for seconds in worst.values()), worst
    # ingest waits for its insert, which shares the machine's cores: held to its own pace at rest
    assert statistics.median(busy_ingest) < max(1.0, 2 * idle_ingest), (idle_ingest, busy_ingest)
    thread.join(30)
    assert answers[0].code == "159"  # and it still ends at its time limit


def test_a_query_over_capacity_gets_429_with_retry_after(one_slot: WrmServer, warehouse: Warehouse) -> None:
    srv = one_slot
    thread, _ = _in_background(srv, HEAVY)
    assert _wait_until(lambda: _running(warehouse) == 1, 5)
    over = post(srv, "SELECT 1")
    assert over.status == 429 and over.code == "202" and over.retry_after == "1", over
    assert "Too many simultaneous queries" in over.body
    thread.join(30)
    assert post(srv, "SELECT 1").body == "1\n"  # a slot again once the heavy query ended


def test_a_queued_query_waits_for_a_slot_then_runs_or_gives_up(warehouse: Warehouse) -> None:
    srv = start_server(
        warehouse, sql_max_concurrent=1, sql_max_queued=1, sql_queue_timeout_s=0.5, sql_max_execution_s=3
    )
    try:
        thread, _ = _in_background(srv, HEAVY)
        assert _wait_until(lambda: _running(warehouse) == 1, 5)
        started = time.monotonic()
        gave_up = post(srv, "SELECT 1")  # waits in the queue for its timeout, then 429
        assert gave_up.status == 429 and time.monotonic() - started >= 0.45, gave_up
        thread.join(30)
    finally:
        srv.stop()
    srv = start_server(
        warehouse, sql_max_concurrent=1, sql_max_queued=1, sql_queue_timeout_s=20, sql_max_execution_s=2
    )
    try:
        thread, _ = _in_background(srv, HEAVY)
        assert _wait_until(lambda: _running(warehouse) == 1, 5)
        queued, answers = _in_background(srv, "SELECT 42")
        time.sleep(0.3)
        assert post(srv, "SELECT 1").code == "202"  # the queue holds one: the third gets 429 at once
        queued.join(30)
        assert answers[0].body == "42\n"  # the queued query ran once the heavy one hit its limit
        thread.join(30)
    finally:
        srv.stop()


def test_a_query_whose_client_goes_away_is_cancelled(warehouse: Warehouse) -> None:
    srv = start_server(warehouse, sql_max_concurrent=1, sql_max_queued=0, sql_max_execution_s=60)
    try:
        host, port = srv.http_address.rsplit(":", 1)
        body = HEAVY.encode()
        conn = socket.create_connection((host, int(port)))
        conn.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        assert _wait_until(lambda: _running(warehouse) == 1, 5)
        conn.close()
        started = time.monotonic()
        assert _wait_until(lambda: _running(warehouse) == 0, 5), "the query still runs after its client left"
        assert _wait_until(lambda: post(srv, "SELECT 7").body == "7\n", 5)  # and its slot is free again
        assert time.monotonic() - started < 10  # far from the 60 s time limit
    finally:
        srv.stop()
