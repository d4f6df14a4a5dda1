"""OTLP/gRPC transport: TraceService/Export on a grpcio server, over the ingest core
(receiver.core). The only place that knows gRPC status codes. Mapping (receiver.errors.Why),
as the OTLP spec asks:
  no API key while auth is         → UNAUTHENTICATED    (not retryable; checked before the
  required; an unknown, malformed                         request is read; the message never
  or revoked key, auth on or off                          holds the key)
  a key whose role may not ingest  → PERMISSION_DENIED  (not retryable: only `ingest` and
  (viewer, operator)                                      `admin` keys write spans)
  malformed request                → INVALID_ARGUMENT   (permanent: do not retry)
  queue full                       → RESOURCE_EXHAUSTED (retryable; no RetryInfo, so exporters
                                     use their own exponential back-off, which spreads them out)
  transient warehouse failure,     → UNAVAILABLE        (retryable: the same request may be
  shutting down, a tenant whose                           stored later; nothing is stored
  stored redaction policy cannot                          unredacted meanwhile)
  be applied (redaction.book)
  permanent warehouse failure      → INTERNAL           (not retryable)
  some spans invalid, or refused   → OK with partial_success.rejected_spans and error_message
  by the engine (receiver.recover)

Why INTERNAL for a permanent failure: the OTLP spec and the SDK exporter retry only CANCELLED,
DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS, so any
other code stops the retries that would repeat the failure forever. Among those, INTERNAL says
the server broke (a missing table, a broken view), not the request: INVALID_ARGUMENT would blame
the client, FAILED_PRECONDITION suggests the client can fix the state. A request whose own data
the engine cannot read is not a failure of the server: its spans are stored where they can be
and the rest reported in partial_success.

The key travels in the `authorization` metadata as `Bearer <key>`. A tenant's key decides the
tenant of every span it sends, whatever the resource's `wrm.tenant.id` claims; that attribute
counts only without a key (auth off) or with the platform admin's key, which has no tenant.
"""

from __future__ import annotations

import time
from concurrent import futures
from typing import NoReturn

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from access.credentials import bearer
from receiver.core import IngestCore
from receiver.errors import Refused, Why

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"

CODES = {
    Why.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Why.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    Why.MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
    Why.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,  # grpcio refuses these itself
    Why.UNSUPPORTED: grpc.StatusCode.INVALID_ARGUMENT,
    Why.STORE_PERMANENT: grpc.StatusCode.INTERNAL,
    Why.BACKPRESSURE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Why.CLOSING: grpc.StatusCode.UNAVAILABLE,
    Why.POLICY: grpc.StatusCode.UNAVAILABLE,
    Why.STORE_TRANSIENT: grpc.StatusCode.UNAVAILABLE,
}


class GrpcTransport:
    """Owns the gRPC server; the core behind it stores what it accepts."""

    def __init__(self, core: IngestCore, host: str, port: int) -> None:
        self.core = core
        self.host = host
        self._port = port
        config = core.config
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="wrm-otlp"),
            options=[
                ("grpc.max_receive_message_length", config.max_request_bytes),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=config.workers * 4,
        )
        handler: grpc.RpcMethodHandler[bytes, ExportTraceServiceResponse] = (
            grpc.unary_unary_rpc_method_handler(
                self._export,
                request_deserializer=None,  # raw bytes: parse errors are ours to report
                response_serializer=ExportTraceServiceResponse.SerializeToString,
            )
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
        )
        self.port = 0

    def start(self) -> int:
        """Bind and serve; returns the port (useful when the configured port is 0)."""
        address = f"[{self.host}]" if ":" in self.host else self.host
        self.port = self._server.add_insecure_port(f"{address}:{self._port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {self.host}:{self._port} for OTLP/gRPC")
        self._server.start()
        return self.port

    def stop(self, grace: float = 10.0) -> None:
        """Refuse new requests and let in-flight ones finish (the core then stores the rest)."""
        self._server.stop(grace).wait()

    def _export(self, data: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        try:
            sent = next((v for k, v in context.invocation_metadata() if k == "authorization"), None)
            key_tenant = self.core.key_tenant(bearer(sent) if isinstance(sent, str) else None)
            # None when the client set no deadline (grpc's documented answer; types-grpcio says float)
            remaining: float | None = context.time_remaining()
            deadline = None if remaining is None else time.monotonic() + remaining
            accepted = self.core.export(data, key_tenant, deadline)
        except Refused as refused:
            _abort(context, refused)
        response = ExportTraceServiceResponse()
        if accepted.error_message:
            response.partial_success.rejected_spans = accepted.rejected_spans
            response.partial_success.error_message = accepted.error_message
        return response


def _abort(context: grpc.ServicerContext, refused: Refused) -> NoReturn:
    context.abort(CODES[refused.why], refused.message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
