"""Insert failures at ingest, in two classes, produced with the real engine (no mocks):

- a request the Python parser accepts but the engine's Protobuf reader refuses is re-encoded
  and stored;
- a span the engine still refuses is reported in partial_success, its neighbours stored;
- a permanent warehouse failure answers INTERNAL (exporters stop), counted in /metrics;
- a transient one answers UNAVAILABLE (exporters retry), and the retry is stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import module_server
from tests.otlp import make_span, request_of, send_raw
from wrm.server import WrmServer

DAY_NS = 86_400 * 10**9


@pytest.fixture(scope="module")
def shared(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the tests that change no table or setting and make no insert fail: each
    reads only the spans it named."""
    with module_server(engine_dir) as srv:
        yield srv


def _count(server: WrmServer, where: str = "1") -> int:
    assert server.warehouse is not None
    return int(server.warehouse.rows(f"SELECT count() FROM spans FINAL WHERE {where}")[0][0])


def _metric(server: WrmServer, name: str, **labels: str) -> float:
    assert server.receiver is not None
    return server.receiver.stats.registry.get_sample_value(name, labels) or 0.0


# The attribute `flag` = true as it is encoded: key, then value (AnyValue, bool_value = varint 1).
# Matched whole: the bytes 10 01 alone also turn up in a random trace id after its length byte.
FLAG_TRUE = b"\x0a\x04flag\x12\x02\x10\x01"


def _flagged_span(name: str) -> bytes:
    """A request whose one span carries a bool attribute `flag` = true, encoded as varint 1."""
    span = make_span(name)
    span.attributes.append(KeyValue(key="flag", value=AnyValue(bool_value=True)))
    data = request_of([span]).SerializeToString()
    assert data.count(FLAG_TRUE) == 1  # AnyValue.bool_value (field 2, varint) = 1
    return data


def test_bool_sent_as_varint_106_is_stored(shared: WrmServer) -> None:
    data = _flagged_span("bool-106").replace(
        FLAG_TRUE, FLAG_TRUE[:-1] + b"\x6a"
    )  # protobuf: true; engine: 436
    response = send_raw(shared.otlp_address, data)
    assert not response.HasField("partial_success")
    assert shared.warehouse is not None
    flag = shared.warehouse.rows("SELECT attributes['flag'] FROM spans WHERE name = 'bool-106'")
    assert flag == [("true",)]
    # the engine only ever read the canonical encoding: nothing was refused, nothing recovered
    assert _metric(shared, "wrm_insert_failures_total", **{"class": "permanent"}) == 0
    assert _metric(shared, "wrm_otlp_recoveries_total", how="isolated") == 0


def test_known_field_with_another_wire_type_is_stored(shared: WrmServer) -> None:
    """Span.flags (16, fixed32) sent as a varint: protobuf keeps it as an unknown field, the
    engine refused it (UNKNOWN_PROTOBUF_FORMAT, 444); the canonical encoding drops it."""
    span_bytes = make_span("flags-as-varint").SerializeToString() + b"\x80\x01\x05"
    request = request_of([]).SerializeToString()
    # resource_spans(1) > scope_spans(2) > spans(2), built by hand around the tampered span
    scope = b"\x12" + _len(span_bytes) + span_bytes
    resource_spans = request[2:] + b"\x12" + _len(scope) + scope
    data = b"\x0a" + _len(resource_spans) + resource_spans
    response = send_raw(shared.otlp_address, data)
    assert not response.HasField("partial_success")
    assert _count(shared, "name = 'flags-as-varint'") == 1
    assert _metric(shared, "wrm_insert_failures_total", **{"class": "permanent"}) == 0


def test_a_duplicated_field_is_stored_as_the_receiver_read_it(shared: WrmServer) -> None:
    """Protobuf lets a singular field appear twice (the last one wins). Sent as is, the engine
    stored such a span_id and name as empty strings: a span with no id, which validation never
    saw. The warehouse gets the canonical encoding of what was read and validated."""
    second_id = b"\x07" * 8
    span_bytes = (
        make_span("first-name").SerializeToString()
        + b"\x12\x08" + second_id  # span_id (2) again
        + b"\x2a\x0bsecond-name"  # name (5) again
    )  # fmt: skip
    scope = b"\x12" + _len(span_bytes) + span_bytes
    resource_spans = b"\x12" + _len(scope) + scope
    response = send_raw(shared.otlp_address, b"\x0a" + _len(resource_spans) + resource_spans)
    assert not response.HasField("partial_success")
    assert shared.warehouse is not None
    stored = shared.warehouse.rows("SELECT span_id, name FROM spans WHERE name LIKE '%-name'")
    assert stored == [(second_id.hex(), "second-name")]


def _len(b: bytes) -> bytes:
    n, out = len(b), bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def test_span_the_engine_refuses_is_reported_and_neighbours_stored(server: WrmServer) -> None:
    assert server.warehouse is not None
    server.warehouse.command("ALTER TABLE spans ADD CONSTRAINT no_poison CHECK name != 'poison'")
    spans = [make_span(f"good-{i}") for i in range(6)]
    spans.insert(4, make_span("poison"))
    spans.insert(1, make_span("zero-trace", trace=bytes(16)))  # refused by validation, not the engine
    response = send_raw(server.otlp_address, request_of(spans))
    assert response.partial_success.rejected_spans == 2
    message = response.partial_success.error_message
    assert "span 'zero-trace': trace_id is all zeros" in message
    assert "span 'poison': the warehouse refuses it (ClickHouse code 469)" in message
    assert _count(server) == 6 and _count(server, "name LIKE 'good-%'") == 6
    assert _metric(server, "wrm_otlp_recoveries_total", how="isolated") == 1
    assert _metric(server, "wrm_spans_rejected_total") == 2


def test_spans_starting_on_many_days_are_stored(shared: WrmServer) -> None:
    """More than 100 daily partitions in one insert used to be TOO_MANY_PARTS (252), which is
    transient: the request would have been retried forever."""
    now = time.time_ns()
    spans = [
        make_span(f"day-{i}", start_time_unix_nano=now + i * DAY_NS, end_time_unix_nano=now + i * DAY_NS + 1)
        for i in range(120)
    ]
    response = send_raw(shared.otlp_address, request_of(spans))
    assert not response.HasField("partial_success")
    assert _count(shared, "name LIKE 'day-%'") == 120


def test_permanent_insert_failure_answers_internal_once(server: WrmServer) -> None:
    assert server.warehouse is not None
    server.warehouse.command("DROP TABLE spans SYNC")  # the landing view now writes nowhere
    with pytest.raises(grpc.RpcError) as err:
        send_raw(server.otlp_address, request_of([make_span("lost")]))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "a retry would fail the same way" in (err.value.details() or "")
    assert _metric(server, "wrm_otlp_requests_total", outcome="store_permanent") == 1
    assert _metric(server, "wrm_insert_failures_total", **{"class": "permanent"}) >= 1
    assert _metric(server, "wrm_insert_failures_total", **{"class": "transient"}) == 0

    # The SDK's own exporter does not retry INTERNAL: one more request reaches the server.
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://{server.otlp_address}", insecure=True))
    )
    started = time.monotonic()
    with provider.get_tracer("t").start_as_current_span("sdk-lost"):
        pass
    provider.shutdown()
    assert time.monotonic() - started < 5  # no back-off between retries
    assert _metric(server, "wrm_otlp_requests_total", outcome="store_permanent") == 2
    metrics = httpx.get(f"http://{server.http_address}/metrics").text
    assert 'wrm_insert_failures_total{class="permanent"}' in metrics
    health = httpx.get(f"http://{server.http_address}/healthz")  # nothing can be stored: not healthy
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert health.json()["error"] == f"database {server.warehouse.database} has no spans table"


def test_transient_insert_failure_answers_unavailable_and_the_retry_is_stored(server: WrmServer) -> None:
    assert server.warehouse is not None
    send_raw(server.otlp_address, request_of([make_span("first")]))  # one part in today's partition
    server.warehouse.command("ALTER TABLE spans MODIFY SETTING parts_to_throw_insert = 1")
    request = request_of([make_span("retried")])
    with pytest.raises(grpc.RpcError) as err:
        send_raw(server.otlp_address, request)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry" in (err.value.details() or "")
    assert _metric(server, "wrm_otlp_requests_total", outcome="store_transient") == 1
    assert _metric(server, "wrm_insert_failures_total", **{"class": "transient"}) >= 1
    assert _metric(server, "wrm_insert_failures_total", **{"class": "permanent"}) == 0
    assert _metric(server, "wrm_otlp_recoveries_total", how="isolated") == 0
    server.warehouse.command("ALTER TABLE spans MODIFY SETTING parts_to_throw_insert = 3000")
    send_raw(server.otlp_address, request)  # what the exporter's retry does
    assert _count(server, "name = 'retried'") == 1
