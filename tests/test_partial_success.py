"""Bad spans are refused one by one and reported in partial_success; the rest are stored."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

from tests.conftest import module_server
from tests.otlp import make_span, request_of, send_raw
from warehouse import Warehouse
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module: each test counts only the spans it sent (by service or name)."""
    with module_server(engine_dir) as srv:
        yield srv


def _count(server: WrmServer, where: str = "1", **params: object) -> int:
    assert server.warehouse is not None
    return int(server.warehouse.rows(f"SELECT count() FROM spans FINAL WHERE {where}", params)[0][0])


def test_mixed_request_stores_valid_and_counts_invalid(server: WrmServer) -> None:
    good = [make_span(f"good-{i}") for i in range(5)]
    bad = [
        make_span("short-trace", trace=b"\x01" * 8),
        make_span("short-trace-2", trace=b"\x02" * 3),
        make_span("zero-trace", trace=bytes(16)),
        make_span("zero-span", span=bytes(8)),
        make_span("backwards", start_time_unix_nano=2_000_000_000_000_000_000, end_time_unix_nano=1),
    ]
    mixed = request_of([good[0], *bad[:2], *good[1:], *bad[2:]], service="mixed")
    response = send_raw(server.otlp_address, mixed)
    assert response.partial_success.rejected_spans == 5
    message = response.partial_success.error_message
    assert "span 'short-trace': trace_id is 8 bytes, expected 16" in message
    assert "2 spans had this problem" in message and "3 more rejected for other reasons" in message
    assert _count(server, "service_name = 'mixed'") == 5
    assert _count(server, "service_name = 'mixed' AND name LIKE 'good-%'") == 5


def test_all_valid_request_has_no_partial_success(server: WrmServer) -> None:
    response = send_raw(server.otlp_address, request_of([make_span("a"), make_span("b")], service="valid"))
    assert not response.HasField("partial_success")
    assert _count(server, "service_name = 'valid'") == 2


def test_malformed_protobuf_is_invalid_argument_and_stores_nothing(server: WrmServer) -> None:
    before = _count(server)
    with pytest.raises(grpc.RpcError) as err:
        send_raw(server.otlp_address, b"\x0a\xff\xff\xff\x0f garbage")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ExportTraceServiceRequest" in (err.value.details() or "")
    assert _count(server) == before


def test_oversized_request_is_refused_by_size(warehouse: Warehouse) -> None:
    from tests.conftest import start_server

    srv = start_server(warehouse, max_request_bytes=64 * 1024)
    try:
        big = make_span("big")
        big.attributes.append(KeyValue(key="blob", value=AnyValue(string_value="x" * 100_000)))
        with pytest.raises(grpc.RpcError) as err:
            send_raw(srv.otlp_address, request_of([big]))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _count(srv) == 0
    finally:
        srv.stop()


def test_huge_binary_nested_and_invalid_utf8_values_are_kept(server: WrmServer) -> None:
    span = make_span("odd-values")
    nested = AnyValue()
    level = nested
    for _ in range(40):  # deeper than the JSON rendering goes
        level = level.array_value.values.add()
    level.string_value = "bottom"
    kvlist = AnyValue()
    entry = kvlist.kvlist_value.values.add()
    entry.key, entry.value.bytes_value = "raw", b"\x00\xff"
    span.attributes.extend(
        [
            KeyValue(key="huge", value=AnyValue(string_value="é" * 70_000)),
            KeyValue(key="binary", value=AnyValue(bytes_value=b"\x00\x01\xfe\xff")),
            KeyValue(key="nested", value=nested),
            KeyValue(key="kv", value=kvlist),
            KeyValue(key="bad_utf8", value=AnyValue(string_value="PLACEHOLDER")),
        ]
    )
    data = request_of([span]).SerializeToString().replace(b"PLACEHOLDER", b"ok\xff\xfeok!!!!!")  # same length
    response = send_raw(server.otlp_address, data)
    assert response.partial_success.rejected_spans == 0
    assert "invalid UTF-8" in response.partial_success.error_message
    assert server.warehouse is not None
    attrs, truncated = server.warehouse.rows(
        "SELECT attributes, truncated FROM spans WHERE name = 'odd-values'"
    )[0]
    assert attrs["huge"].endswith("…[truncated by wrm]") and len(attrs["huge"].encode()) <= 65536
    assert attrs["huge"].startswith("éé")
    assert truncated == ["span:huge"]
    assert base64.b64decode(attrs["binary"]) == b"\x00\x01\xfe\xff"
    assert json.loads(attrs["kv"]) == {"raw": base64.b64encode(b"\x00\xff").decode()}
    # one level of nesting is rendered as JSON; deeper values are kept whole as protobuf
    outer = json.loads(attrs["nested"])
    assert len(outer) == 1 and outer[0].startswith("pb64:")
    inner = ArrayValue.FromString(base64.b64decode(outer[0][5:]))
    assert inner.values[0].array_value.values[0].HasField("array_value")
    assert attrs["bad_utf8"] == "ok\\xff\\xfeok!!!!!"


def test_span_starting_too_late_for_retention_is_refused_not_silently_dropped(server: WrmServer) -> None:
    """Retention is computed as a DateTime (ends 2106) plus days: a later start would be
    acknowledged and then dropped by its TTL as it is written. It is refused instead."""
    year_2095, year_2100 = 3_944_678_400 * 10**9, 4_102_444_800 * 10**9
    late = make_span("late", start_time_unix_nano=year_2100, end_time_unix_nano=year_2100 + 1)
    edge = make_span("edge", start_time_unix_nano=year_2095, end_time_unix_nano=year_2095 + 1)
    response = send_raw(server.otlp_address, request_of([late, edge]))
    assert response.partial_success.rejected_spans == 1
    assert "span 'late': start_time_unix_nano is after 2096-01-01" in response.partial_success.error_message
    assert _count(server, "name = 'edge'") == 1 and _count(server, "name = 'late'") == 0
