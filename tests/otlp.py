"""Test helpers for sending spans: the real OpenTelemetry SDK exporter, and raw OTLP requests."""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterable, Sequence

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Counting:
    """Mixed into an SDK span exporter (before it): counts the spans of exports that succeeded
    and failed. The SDK's `force_flush()` says only that the queue was handed over, not that WRM
    took it."""

    exported = 0
    failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result: SpanExportResult = super().export(spans)  # type: ignore[misc]  # the exporter's
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result


class CheckedExporter(Counting, OTLPSpanExporter):
    """The SDK's OTLP/gRPC exporter, counting what WRM took and refused."""

    def __init__(self, otlp_address: str, timeout: float = 30, key: str = "") -> None:
        headers = {"authorization": f"Bearer {key}"} if key else None
        super().__init__(endpoint=f"http://{otlp_address}", insecure=True, timeout=timeout, headers=headers)


_EXPORTERS: weakref.WeakKeyDictionary[TracerProvider, CheckedExporter] = weakref.WeakKeyDictionary()


def sdk_provider(
    otlp_address: str, service: str = "checkout-agent", key: str = "", **resource: str
) -> TracerProvider:
    """A TracerProvider exporting to WRM with the SDK's own OTLP/gRPC exporter (sending `key`,
    an API key, as `authorization: Bearer` metadata when given).

    The processor queue is large so that the client never drops spans on its side.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}))
    exporter = _EXPORTERS[provider] = CheckedExporter(otlp_address, key=key)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter, max_queue_size=100_000, max_export_batch_size=512, schedule_delay_millis=50
        )
    )
    return provider


def flush(provider: TracerProvider, timeout_ms: int = 60_000) -> int:
    """Export everything ended so far and check WRM acknowledged every span; returns how many
    spans the provider's exporter has delivered in all."""
    assert provider.force_flush(timeout_ms), f"spans still queued after {timeout_ms} ms"
    exporter = _EXPORTERS[provider]
    assert exporter.failed == 0, f"{exporter.failed} spans were not acknowledged by WRM"
    return exporter.exported


def send_raw(
    otlp_address: str, request: ExportTraceServiceRequest | bytes, key: str = ""
) -> ExportTraceServiceResponse:
    """Send one request as is (bytes may be deliberately malformed), with `key` as
    `authorization: Bearer` metadata when given; raises grpc.RpcError."""
    data = request if isinstance(request, bytes) else request.SerializeToString()
    with grpc.insecure_channel(otlp_address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )
        return call(data, timeout=30, metadata=(("authorization", f"Bearer {key}"),) if key else None)


def make_span(
    name: str = "step", trace: bytes | None = None, span: bytes | None = None, **fields: object
) -> Span:
    now = time.time_ns()  # recent: older rows would fall to the spans TTL at insert
    s = Span(
        name=name,
        trace_id=trace if trace is not None else os.urandom(16),
        span_id=span if span is not None else os.urandom(8),
        start_time_unix_nano=now - 1_000_000_000,
        end_time_unix_nano=now,
    )
    for key, value in fields.items():
        setattr(s, key, value)
    return s


def request_of(spans: Iterable[Span], service: str = "raw-client") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    rs.scope_spans.add().spans.extend(spans)
    return req
