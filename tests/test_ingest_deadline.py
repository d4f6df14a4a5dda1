"""Isolating spans the engine refuses stops before the exporter's deadline: the exporter gets an
answer it will not retry (OK with partial_success) instead of DEADLINE_EXCEEDED, which it would
retry, repeating all the work each time."""

from __future__ import annotations

import time

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.otlp import EXPORT_METHOD, make_span, request_of
from wrm.server import WrmServer


def test_isolation_answers_before_the_clients_deadline(server: WrmServer) -> None:
    assert server.warehouse is not None
    server.warehouse.command("ALTER TABLE spans ADD CONSTRAINT no_poison CHECK name NOT LIKE 'poison%'")
    spans = [make_span(f"poison-{i}" if i % 10 == 3 else f"good-{i}") for i in range(400)]
    timeout = 5.0
    with grpc.insecure_channel(server.otlp_address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )
        started = time.monotonic()
        response = call(request_of(spans).SerializeToString(), timeout=timeout)  # no DEADLINE_EXCEEDED
        took = time.monotonic() - started
    assert took < timeout
    rejected = response.partial_success.rejected_spans
    stored = int(server.warehouse.rows("SELECT count() FROM spans FINAL")[0][0])
    assert 40 <= rejected < 400 and stored == 400 - rejected  # every span stored or reported
    assert int(server.warehouse.rows("SELECT countIf(name LIKE 'poison%') FROM spans")[0][0]) == 0
    assert "not isolated before the exporter's deadline" in response.partial_success.error_message
