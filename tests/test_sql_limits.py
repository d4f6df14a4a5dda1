"""Every SQL-port query has a time, memory and result-size limit from the settings; going over one
is a ClickHouse error response (Code 159, 241, 396) with its X-ClickHouse-Exception-Code."""

from __future__ import annotations

import time

from tests.conftest import start_server
from tests.sql_http import post
from warehouse import Warehouse

HEAVY = "SELECT count() FROM numbers(4e11) WHERE number % 7 = 3"


def test_a_query_past_its_time_limit_ends_with_code_159(warehouse: Warehouse) -> None:
    srv = start_server(warehouse, sql_max_execution_s=1)
    try:
        started = time.monotonic()
        answer = post(srv, HEAVY)
        elapsed = time.monotonic() - started
        assert answer.status == 500 and answer.code == "159", answer
        assert answer.body.startswith("Code: 159. DB::Exception: Timeout exceeded")
        assert elapsed < 5
    finally:
        srv.stop()


def test_memory_and_result_limits_give_their_clickhouse_errors(warehouse: Warehouse) -> None:
    srv = start_server(
        warehouse, sql_max_memory_bytes=32 * 1024**2, sql_max_result_rows=100, sql_max_result_bytes=20_000
    )
    try:
        memory = post(srv, "SELECT groupArray(number) FROM numbers(20000000)")
        assert memory.code == "241" and memory.body.startswith("Code: 241."), memory
        rows = post(srv, "SELECT number FROM numbers(1000)")
        assert rows.code == "396" and "max rows: 100" in rows.body, rows
        size = post(srv, "SELECT repeat(toString(number), 1000) FROM numbers(50)")
        assert size.code == "396" and "max bytes" in size.body, size
        assert post(srv, "SELECT sum(number) FROM numbers(50)").body == "1225\n"  # under every limit
    finally:
        srv.stop()


def test_limits_come_from_the_settings(warehouse: Warehouse) -> None:
    srv = start_server(
        warehouse,
        sql_max_execution_s=12.5,
        sql_max_memory_bytes=64 * 1024**2,
        sql_max_result_rows=777,
        sql_max_result_bytes=88_888,
        sql_max_threads=1,
    )
    try:
        names = (
            "max_execution_time",
            "max_memory_usage",
            "max_result_rows",
            "max_result_bytes",
            "max_threads",
        )
        sql = "SELECT " + ", ".join(f"getSetting('{n}')" for n in names)
        assert post(srv, sql).body == f"12.5\t{64 * 1024**2}\t777\t88888\t1\n"
    finally:
        srv.stop()
