"""`param_*` values reach the engine only as bound parameters: a value is never spliced into the
SQL text after the gate has checked it (the driver would do that, with Python's `%`, for text
without `{name:Type}` placeholders)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import module_server
from tests.sql_http import post
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module: its tests read no table and write none."""
    with module_server(engine_dir) as srv:
        yield srv


def test_a_param_value_is_never_spliced_into_the_text(server: WrmServer, tmp_path: Path) -> None:
    read = post(server, "SELECT '%(x)s'", param_x="' || file('/etc/passwd') || '")
    assert "root:" not in read.body
    assert read.status == 200 and read.body == "%(x)s\n"  # the text ran as written, unbound
    target = tmp_path / "pwned.txt"
    post(server, "SELECT '%(x)s'", param_x=f"x' INTO OUTFILE '{target}' --")
    assert not target.exists()


def test_bound_parameters_still_work_next_to_percent_signs(server: WrmServer) -> None:
    answer = post(server, "SELECT {s:String} || ' 100%', '%(s)s' LIKE '%s%'", param_s="all of it")
    assert (answer.status, answer.body) == (200, "all of it 100%\t1\n")
    unused = post(server, "SELECT '50%'", param_s="unused")
    assert (unused.status, unused.body) == (200, "50%\n")


def test_a_query_id_that_would_break_the_header_is_replaced(server: WrmServer) -> None:
    host, port = server.http_address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/?query_id=a%0D%0AX-Injected:%201", body=b"SELECT 1")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b"1\n"
    assert response.getheader("X-Injected") is None
    assert "\n" not in (response.getheader("X-ClickHouse-Query-Id") or "\n")
    conn.close()
