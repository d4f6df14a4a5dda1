"""Warehouse failures inside /v1 routes become problem+json, produced with the real engine under
a running server: 503 with Retry-After for a transient one, 500 for a permanent one, each with
a request id in the body, the `X-Request-Id` header and the log; never a plain-text 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import clickhouse_connect
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from analytics.api import create_app, problems
from tests.conftest import settle, start_server
from tests.indicator_data import start_running_run
from warehouse import Warehouse
from warehouse.dsn import parse_dsn
from wrm.server import WrmServer


@pytest.fixture
def client(server: WrmServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{server.http_address}", timeout=30) as c:
        yield c


def _run_id(server: WrmServer, client: httpx.Client) -> str:
    start_running_run(server.otlp_address, "errors-1")
    settle(server)
    runs = client.get("/v1/runs").json()["runs"]
    assert len(runs) == 1
    return str(runs[0]["run_id"])


def _assert_problem(resp: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == f"https://wrm.dev/problems/{slug}" and body["status"] == status
    assert body["request_id"] == resp.headers["x-request-id"]
    assert body["request_id"] in str(body["detail"])
    return dict(body)


def test_permanent_warehouse_error_is_a_500_problem_with_request_id(
    server: WrmServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert server.warehouse is not None
    server.warehouse.command("DROP TABLE runs_by_time SYNC")
    with caplog.at_level(logging.ERROR, logger="analytics.api.problems"):
        resp = client.get("/v1/runs", headers={"X-Request-Id": "trace-me-42"})
    body = _assert_problem(resp, 500, "warehouse-error")
    assert body["request_id"] == "trace-me-42" and body["instance"] == "/v1/runs"
    assert "ClickHouse code 60" in str(body["detail"])  # UNKNOWN_TABLE
    assert "Retry-After" not in resp.headers
    assert "request trace-me-42: GET /v1/runs: warehouse refused the query (code 60)" in caplog.text


def test_transient_warehouse_error_is_a_503_problem_with_retry_after(
    server: WrmServer, client: httpx.Client
) -> None:
    assert server.warehouse is not None
    run_id = _run_id(server, client)
    note = {"text": "first", "author": "ops@example.com"}
    assert client.post(f"/v1/runs/{run_id}/annotations", json=note).status_code == 201
    server.warehouse.command("ALTER TABLE run_annotations MODIFY SETTING parts_to_throw_insert = 1")
    resp = client.post(f"/v1/runs/{run_id}/annotations", json={**note, "text": "second"})
    body = _assert_problem(resp, 503, "warehouse-unavailable")
    assert resp.headers["retry-after"] == "1"
    assert "ClickHouse code 252" in str(body["detail"])  # TOO_MANY_PARTS
    assert len(str(body["request_id"])) == 32  # none given: a new one
    server.warehouse.command("ALTER TABLE run_annotations MODIFY SETTING parts_to_throw_insert = 3000")
    assert client.post(f"/v1/runs/{run_id}/annotations", json={**note, "text": "second"}).status_code == 201


def test_every_answer_carries_a_request_id_and_insane_ones_are_replaced(client: httpx.Client) -> None:
    ok = client.get("/v1/runs", headers={"X-Request-Id": "abc-123"})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "abc-123"
    for bad in ("x" * 200, "has space", "new\\nline"):
        resp = client.get("/v1/runs/zz", headers={"X-Request-Id": bad})
        assert resp.headers["x-request-id"] != bad and len(resp.headers["x-request-id"]) == 32
    assert client.get("/healthz").headers["x-request-id"]


def test_unexpected_exception_is_a_500_problem_not_plain_text() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as tc:
        resp = tc.get("/boom", headers={"X-Request-Id": "bug-1"})
    assert resp.status_code == 500 and resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["x-request-id"] == "bug-1"
    assert resp.json()["type"] == "https://wrm.dev/problems/internal-error"
    assert "a bug" not in resp.text


def test_healthz_is_503_unavailable_when_the_warehouse_does_not_answer(warehouse: Warehouse) -> None:
    """Spec 9: 503 `unavailable` with the error when the warehouse does not answer. The warehouse
    here is a ClickHouse-over-HTTP endpoint reached with clickhouse-connect: a running WRM's own
    SQL port, which then stops (a real client against a server that goes away)."""
    upstream = start_server(warehouse)
    stopped = False
    try:
        host, port = upstream.http_address.rsplit(":", 1)
        client = clickhouse_connect.get_client(host=host, port=int(port), database=warehouse.database)
        remote = Warehouse(parse_dsn(f"http://{upstream.http_address}"), warehouse.database, client, client)
        app = create_app(remote, describe=lambda: {"otlp_grpc": "elsewhere"})
        with TestClient(app, raise_server_exceptions=False) as tc:
            healthy = tc.get("/healthz")
            assert healthy.status_code == 200 and healthy.json()["status"] == "ok", healthy.text
            upstream.stop()
            stopped = True
            resp = tc.get("/healthz")
        assert resp.status_code == 503, resp.text
        body = resp.json()
        assert body["status"] == "unavailable" and body["error"], body
        assert "degraded" not in body and body["otlp_grpc"] == "elsewhere"
        assert body["warehouse"] == remote.dsn.describe()
    finally:
        if not stopped:
            upstream.stop()
