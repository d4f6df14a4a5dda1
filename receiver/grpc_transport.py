"""OTLP/gRPC transport: TraceService/Export on a grpcio server.

The only place that knows gRPC status codes. Mapping, as the OTLP spec asks:
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

import logging
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future
from typing import Any, NoReturn

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from access import Authenticator, Forbidden, Role, Unauthenticated
from access.credentials import bearer
from receiver.config import ReceiverConfig
from receiver.envelope import EnvelopeFields
from receiver.parse import MalformedRequest, parse_request
from receiver.recover import recover
from receiver.redact import IngestRedaction
from receiver.screen import Rejection, screen_request
from receiver.stats import ReceiverStats
from receiver.tenancy import Part, split_by_retention
from receiver.writer import Backpressure, GroupWriter, WriterClosed
from redaction.policy import PolicyError
from warehouse.errors import WarehouseRejected, classify

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
ANSWER_MARGIN_S = 1.0  # isolating refused spans stops this long before the client's deadline


class TraceReceiver:
    """Owns the gRPC server and the group-commit writer behind it."""

    def __init__(
        self,
        config: ReceiverConfig,
        sinks: Sequence[Callable[[bytes], None]],
        on_commit: Callable[[int], None] = lambda stamp: None,
        stamps_after: int = 0,
        authenticator: Authenticator | None = None,
        redaction: IngestRedaction | None = None,
    ) -> None:
        """`sinks`: one per writer thread, each storing framed requests (receiver.store);
        `stamps_after`: the greatest `ingested_at` stamp already stored (see GroupWriter);
        `authenticator`: who may send spans, and for which tenant (None: anyone, as sent);
        `redaction`: the tenants' redaction rules (None: spans are stored as sent)."""
        self.config = config
        self.authenticator = authenticator
        self.redaction = redaction
        self.stats = ReceiverStats()
        self._writer = GroupWriter(
            sinks,
            self.stats,
            EnvelopeFields(
                retention_days=config.retention_days,
                default_tenant=config.default_tenant,
                max_attribute_bytes=config.max_attribute_bytes,
            ),
            max_pending_spans=config.queue_max_spans,
            flush_max_spans=config.flush_max_spans,
            flush_interval_s=config.flush_interval_s,
            on_commit=on_commit,
            stamps_after=stamps_after,
        )
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
        address = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        self.port = self._server.add_insecure_port(f"{address}:{self.config.port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port} for OTLP/gRPC")
        self._server.start()
        return self.port

    def stop(self, grace: float = 10.0) -> None:
        """Refuse new requests, let in-flight ones finish, then store everything accepted."""
        self._server.stop(grace).wait()
        self._writer.close()

    def _export(self, data: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        key_tenant = self._key_tenant(context)
        try:
            request, escaped = parse_request(data)
        except MalformedRequest as exc:
            self._refuse(context, "malformed", grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        redaction = self.redaction
        cleaner = redaction.cleaner(key_tenant) if redaction is not None else None
        try:
            screened = screen_request(request, tenant_fixed=bool(key_tenant), cleaner=cleaner)
            if redaction is not None:
                screened = redaction.apply(request, screened, key_tenant)
        except PolicyError as exc:  # never store what the tenant's rules could not see
            self._refuse(context, "policy", grpc.StatusCode.UNAVAILABLE, f"{exc}; retry later")
        refused = Rejection()
        if screened.spans:
            parts = split_by_retention(
                request,
                screened.payload,
                screened.spans,
                default_tenant=self.config.default_tenant,
                default_days=self.config.retention_days,
                days_by_tenant=self.config.tenant_retention_days,
                key_tenant=key_tenant,
            )
            refused = self._store(parts, context)
        rejected = screened.rejected
        count = rejected.count + refused.count
        if count:
            self.stats.spans_rejected.inc(count)
        self.stats.requests.labels("partial" if count else "ok").inc()
        notes = [r.message() for r in (rejected, refused) if r.count]
        if escaped:
            notes.append("invalid UTF-8 in string fields was stored escaped as \\xNN")
        response = ExportTraceServiceResponse()
        if notes:
            response.partial_success.rejected_spans = count
            response.partial_success.error_message = "; ".join(notes)
        return response

    def _key_tenant(self, context: grpc.ServicerContext) -> str:
        """The tenant the caller's key fixes for every span it sends; "" when none does (no key
        while auth is off, or the platform admin's key). Aborts a call the key does not allow."""
        if self.authenticator is None:
            return ""
        sent = next((v for k, v in context.invocation_metadata() if k == "authorization"), None)
        key = bearer(sent) if isinstance(sent, str) else None
        try:
            principal = self.authenticator.authorize(key, Role.INGEST)
        except Unauthenticated as exc:
            self._refuse(context, "unauthenticated", grpc.StatusCode.UNAUTHENTICATED, str(exc))
        except Forbidden as exc:
            self._refuse(context, "forbidden", grpc.StatusCode.PERMISSION_DENIED, str(exc))
        return principal.tenant or "" if principal is not None else ""

    def _store(self, parts: Sequence[Part], context: grpc.ServicerContext) -> Rejection:
        """Queue every part (one, unless tenants with different retention share the request),
        then answer once all are stored. If back-pressure refuses a later part, the earlier ones
        still land and the exporter's retry sends them again: duplicates that collapse. Returns
        the spans the engine refused to read (receiver.recover)."""
        futures_: list[Future[None]] = []
        try:
            for part in parts:
                futures_.append(
                    self._writer.submit(part.payload, part.spans, part.retention_days, part.key_tenant)
                )
            refused = Rejection()
            for part, future in zip(parts, futures_, strict=True):
                try:
                    future.result()
                except WarehouseRejected as refusal:
                    refused = refused.plus(self._recover(part, refusal, context))
            return refused
        except Backpressure as exc:
            self._refuse(context, "backpressure", grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except WriterClosed as exc:
            self._refuse(context, "closing", grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:
            error = classify(exc)
            if isinstance(error, WarehouseRejected):
                log.error("spans refused for good by the warehouse (code %s): %s", error.code, _short(error))
                self._refuse(
                    context,
                    "store_permanent",
                    grpc.StatusCode.INTERNAL,
                    f"spans were not stored and a retry would fail the same way: {_short(error)}",
                )
            self._refuse(
                context,
                "store_transient",
                grpc.StatusCode.UNAVAILABLE,
                f"spans were not stored, retry: {_short(error)}",
            )
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    def _refuse(
        self, context: grpc.ServicerContext, outcome: str, code: grpc.StatusCode, message: str
    ) -> NoReturn:
        """Count the request under `outcome` and end the call with `code`."""
        self.stats.requests.labels(outcome).inc()
        context.abort(code, message)
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    def _recover(self, part: Part, refusal: WarehouseRejected, context: grpc.ServicerContext) -> Rejection:
        def store(payload: bytes, spans: int) -> None:
            self._writer.submit(payload, spans, part.retention_days, part.key_tenant).result()

        # None when the client set no deadline (grpc's documented answer; types-grpcio says float)
        remaining: float | None = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining - ANSWER_MARGIN_S
        outcome = recover(store, part.message, refusal, deadline)
        self.stats.recoveries.labels(outcome.how).inc()
        return outcome.refused


def _short(exc: Any) -> str:
    text = str(exc)
    return text if len(text) < 500 else text[:500] + "…"
