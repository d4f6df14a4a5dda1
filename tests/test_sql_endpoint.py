"""The HTTP port speaks enough of ClickHouse's HTTP protocol for clickhouse-connect, read-only."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from tests.conftest import module_server
from tests.otlp import make_span, request_of, send_raw
from warehouse import Warehouse
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def shared(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the tests that read no counter: each reads only the spans it sent."""
    with module_server(engine_dir) as srv:
        yield srv


def _client(server: WrmServer) -> Client:
    host, port = server.http_address.rsplit(":", 1)
    assert server.warehouse is not None
    return clickhouse_connect.get_client(host=host, port=int(port), database=server.warehouse.database)


def test_clickhouse_connect_queries_through_the_endpoint(shared: WrmServer) -> None:
    send_raw(shared.otlp_address, request_of([make_span("alpha"), make_span("beta"), make_span("beta")]))
    client = _client(shared)
    rows = client.query(
        "SELECT name, count() AS n FROM spans WHERE name IN {names:Array(String)}"
        " GROUP BY name ORDER BY name",
        parameters={"names": ["alpha", "beta", "it's\ttricky"]},
    ).result_rows
    assert rows == [("alpha", 1), ("beta", 2)]
    assert client.query("SELECT {s:String}", parameters={"s": "tab\there 'quoted' \\ back"}).result_rows == [
        ("tab\there 'quoted' \\ back",)
    ]
    # the client reads readonly=1 from system.settings, so it sends no setting and refuses to
    assert client.get_client_setting("date_time_input_format") is None
    with pytest.raises(ProgrammingError, match="readonly"):
        client.query("SELECT 1", settings={"max_execution_time": 1000})
    frame = client.query_df(
        "SELECT name, duration_ns FROM spans WHERE name IN ('alpha', 'beta') ORDER BY name"
    )
    assert list(frame["name"]) == ["alpha", "beta", "beta"]
    assert list(frame["duration_ns"]) == [1_000_000_000] * 3
    # the client's database setting picks the default database of each query
    host, port = shared.http_address.rsplit(":", 1)
    system = clickhouse_connect.get_client(host=host, port=int(port), database="system")
    assert shared.warehouse is not None
    assert (
        system.command(
            "SELECT count() FROM tables WHERE database = {d:String} AND name = 'spans'",
            parameters={"d": shared.warehouse.database},
        )
        == 1
    )


def test_writes_and_ddl_are_refused(shared: WrmServer) -> None:
    client = _client(shared)
    with pytest.raises(DatabaseError, match="164"):
        client.command("CREATE TABLE x (a Int8) ENGINE = Memory")
    with pytest.raises(DatabaseError, match="164"):
        client.command("DROP TABLE spans")
    with pytest.raises(DatabaseError, match="164"):
        client.insert("spans", [["t"]], column_names=["tenant_id"])
    # clickhouse-connect itself refuses to send readonly=0, so ask over plain HTTP: lifting
    # readonly from the URL must not let a write through
    url = f"http://{shared.http_address}/?readonly=0&query=" + urllib.parse.quote("DROP TABLE spans")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 403 and err.value.headers["X-ClickHouse-Exception-Code"] == "164"
    assert client.command("SELECT count() FROM spans WHERE tenant_id = 't'") == 0  # and it is there


def test_errors_carry_clickhouse_codes(shared: WrmServer) -> None:
    url = f"http://{shared.http_address}/"
    for sql, status, code in [
        ("SELECT nope FROM", 400, "62"),
        ("SELECT * FROM no_such_table", 404, "60"),
    ]:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(url, data=sql.encode()))
        assert err.value.code == status
        assert err.value.headers["X-ClickHouse-Exception-Code"] == code
        assert err.value.read().decode().startswith(f"Code: {code}.")


def test_get_query_default_format_and_headers(shared: WrmServer) -> None:
    params = urllib.parse.urlencode({"query": "SELECT 1 AS one, 'x' AS s", "default_format": "JSONEachRow"})
    with urllib.request.urlopen(f"http://{shared.http_address}/?{params}") as resp:
        assert json.loads(resp.read()) == {"one": 1, "s": "x"}
        assert resp.headers["X-ClickHouse-Format"] == "JSONEachRow"
    with urllib.request.urlopen(f"http://{shared.http_address}/?query=SELECT%202%20FORMAT%20CSV") as resp:
        assert resp.read() == b"2\n"
    with urllib.request.urlopen(f"http://{shared.http_address}/") as resp:
        assert resp.read() == b"Ok.\n"


def test_health_and_metrics(server: WrmServer) -> None:
    send_raw(server.otlp_address, request_of([make_span("m"), make_span("bad", trace=b"x")]))
    with urllib.request.urlopen(f"http://{server.http_address}/healthz") as resp:
        health = json.load(resp)
    assert health["status"] == "ok" and health["otlp_grpc"] == server.otlp_address
    with urllib.request.urlopen(f"http://{server.http_address}/metrics") as resp:
        text = resp.read().decode()
    assert "wrm_spans_accepted_total 1.0" in text
    assert "wrm_spans_rejected_total 1.0" in text
    # one request, one insert; the names alone would be there at 0
    assert re.search(r"^wrm_flushes_total 1\.0$", text, re.MULTILINE), text
    assert re.search(r"^wrm_queue_spans 0\.0$", text, re.MULTILINE), text
    assert re.search(r'^wrm_otlp_requests_total\{outcome="partial"\} 1\.0$', text, re.MULTILINE), text


def test_counters_are_logged_periodically(warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import time

    from tests.conftest import start_server

    srv = start_server(warehouse, stats_log_interval_s=0.2)
    try:
        with caplog.at_level(logging.INFO, logger="wrm"):
            send_raw(srv.otlp_address, request_of([make_span("logged")]))
            deadline = time.monotonic() + 5
            while "accepted=1" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        assert "wrm stats: accepted=1 rejected=0 flushes=1 flush_failures=0 queue=0" in caplog.text
    finally:
        srv.stop()
