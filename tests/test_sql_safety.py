"""The SQL port reads only the warehouse: every table or scalar function that reaches outside it is
refused, however read-only mode is asked to be lifted (query SETTINGS, URL parameter, SET,
multipart field); a SET never reaches the next query; users cannot raise the limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from analytics.sql import SqlLimits
from tests.conftest import module_server, start_server
from tests.sql_http import Answer, post, post_form
from warehouse import Warehouse
from wrm.server import WrmServer

OUTSIDE = {
    "file": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "url": "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "s3": "SELECT * FROM s3('http://127.0.0.1:9/bucket/key.csv', 'CSV', 'a String')",
    "remote": "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "mysql": "SELECT * FROM mysql('127.0.0.1:9', 'db', 't', 'user', 'pw')",
    "postgresql": "SELECT * FROM postgresql('127.0.0.1:9', 'db', 't', 'user', 'pw')",
    "executable": "SELECT * FROM executable('cat', 'LineAsString', 'line String', (SELECT 'x'))",
    "hdfs": "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'TSV', 'a String')",
    "scalar file": "SELECT file('/etc/passwd')",
    "quoted file": "SELECT \"file\"('/etc/passwd')",
    "describe file": "DESCRIBE TABLE file('/etc/passwd', 'CSVWithNames')",
    "file in a view": "SELECT * FROM view(SELECT file('/etc/passwd'))",
}


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module: its tests send only statements that must be refused."""
    with module_server(engine_dir) as srv:
        yield srv


def _refused(answer: Answer, what: str, code: str = "164") -> None:
    assert answer.code == code, f"{what}: {answer}"
    assert answer.status == (403 if code == "164" else 400), f"{what}: {answer}"
    assert "root:" not in answer.body, f"{what} leaked /etc/passwd"


def test_outside_functions_are_refused(server: WrmServer) -> None:
    for name, sql in OUTSIDE.items():
        _refused(post(server, sql), name)
    assert post(server, "SELECT 'file(' AS file, count() FROM numbers(3)").body == "file(\t3\n"


def test_outside_functions_are_refused_with_query_settings(server: WrmServer) -> None:
    for name, sql in OUTSIDE.items():
        _refused(post(server, f"{sql} SETTINGS readonly = 0"), name)
        _refused(post(server, f"{sql} SETTINGS readonly = 2, allow_ddl = 1"), name)


def test_outside_functions_are_refused_with_url_settings(server: WrmServer) -> None:
    for name, sql in OUTSIDE.items():
        for readonly in ("0", "2"):
            _refused(post(server, sql, readonly=readonly), f"{name} readonly={readonly}")
    # lifting read-only mode from the URL is refused even for a harmless statement
    _refused(post(server, "SELECT 1", readonly="0"), "readonly=0")
    assert post(server, "SELECT 1", readonly="1").body == "1\n"  # asking for what it is changes nothing


def test_outside_functions_are_refused_with_multipart_settings(server: WrmServer) -> None:
    for name, sql in OUTSIDE.items():
        _refused(post_form(server, {"query": sql, "readonly": "0"}), name)
    assert post_form(server, {"query": "SELECT 2"}).body == "2\n"


def test_outside_functions_are_refused_after_set(server: WrmServer) -> None:
    for statement in ("SET readonly = 0", "SET readonly = 2", "SET allow_ddl = 1"):
        _refused(post(server, statement), statement)
    for name, sql in OUTSIDE.items():
        _refused(post(server, sql), f"{name} after SET")
        _refused(post(server, f"SET readonly = 0; {sql}"), f"SET; {name}", code="62")  # one statement only


def test_a_set_does_not_reach_the_next_query(warehouse: Warehouse) -> None:
    srv = start_server(warehouse, sql_max_concurrent=1, sql_max_result_rows=1000)  # one handle for all
    try:
        for sql in ("SET max_result_rows = 1", "USE system", "SET max_result_rows = 1; SELECT 1"):
            assert post(srv, sql).code == ("62" if ";" in sql else "164"), sql
        assert post(srv, "SELECT getSetting('max_result_rows'), currentDatabase()").body == (
            f"1000\t{warehouse.database}\n"
        )
        assert post(srv, "SELECT number FROM numbers(5) FORMAT CSV").body == "0\n1\n2\n3\n4\n"
    finally:
        srv.stop()


def test_statements_that_write_or_disturb_are_refused(server: WrmServer, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    _refused(post(server, f"SELECT 1 INTO OUTFILE '{out}'"), "INTO OUTFILE")
    assert not out.exists()
    _refused(post(server, "KILL QUERY WHERE 1"), "KILL QUERY")
    _refused(post(server, "SYSTEM STOP MERGES"), "SYSTEM STOP MERGES")
    _refused(post(server, "SELECT 1; SELECT file('/etc/passwd')"), "two statements", code="62")
    assert post(server, "SHOW TABLES LIKE 'runs'").body == "runs\n"
    assert post(server, "DESCRIBE TABLE system.one").body.startswith("dummy\tUInt8")
    assert post(server, "EXISTS TABLE spans").body == "1\n"


def test_users_cannot_raise_the_limits(warehouse: Warehouse) -> None:
    srv = start_server(warehouse, sql_max_execution_s=2)
    try:
        _refused(post(srv, "SELECT 1 SETTINGS max_execution_time = 1000"), "SETTINGS")
        _refused(post(srv, "SELECT 1", max_execution_time="1000"), "URL")
        _refused(post(srv, "SELECT 1", max_memory_usage="0"), "URL memory")
        _refused(post_form(srv, {"query": "SELECT 1", "max_result_rows": "0"}), "multipart")
        _refused(post(srv, "SELECT 1", max_execution_time="2", no_such_setting="1"), "unknown", code="115")
        assert post(srv, "SELECT 1", max_execution_time="2").body == "1\n"  # the same value is no change
        got = post(srv, "SELECT getSetting('max_execution_time'), getSetting('readonly')").body
        assert got == "2\t1\n"
    finally:
        srv.stop()


def test_user_handles_refuse_outside_reads_without_the_gate(warehouse: Warehouse) -> None:
    """The engine layer on its own: the handles user SQL runs on refuse what the gate refuses."""
    client = warehouse.sandboxed_reader(SqlLimits(max_execution_s=7).engine_settings())
    try:
        for name in ("file", "url", "s3", "remote", "mysql", "postgresql", "executable", "hdfs"):
            with pytest.raises(DatabaseError, match="164"):
                client.raw_query(OUTSIDE[name])
        for sql in ("SET readonly = 0", "SET max_execution_time = 1000", "SELECT 1 SETTINGS readonly = 2"):
            with pytest.raises(DatabaseError, match="164"):
                client.raw_query(sql)
        assert (
            client.raw_query("SELECT getSetting('max_execution_time'), getSetting('readonly')") == b"7\t1\n"
        )
    finally:
        client.close()
