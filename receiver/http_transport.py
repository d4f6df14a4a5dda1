"""OTLP/HTTP transport: `POST /v1/traces` (OTLP spec, "OTLP/HTTP"), over the ingest core.

Bodies are `application/x-protobuf` or `application/json` (receiver.otlp_json), plain or
`Content-Encoding: gzip` (or `deflate`); the answer is in the request's encoding. The only place that knows
these HTTP status codes; mapping (receiver.errors.Why), as the spec asks:
  stored (some spans may be refused one by one)   → 200 ExportTraceServiceResponse, partial_success
  no key / a bad key (auth)                        → 401 + WWW-Authenticate: Bearer
  a key whose role may not send spans              → 403
  not OTLP in the stated encoding, a broken gzip   → 400
  or deflate stream
  over `max_request_bytes`, plain or inflated      → 413 (refused by Content-Length before reading)
  another content type or content encoding         → 415
  too many spans waiting to be stored              → 429 + Retry-After   (retryable)
  stopping, a transient warehouse failure, a       → 503 + Retry-After   (retryable)
  tenant's redaction policy that cannot be applied
  the warehouse refused the rows for good          → 500                 (not retryable)
Every refusal carries a google.rpc.Status (code and message) in the request's encoding (JSON
when the content type was not one we read). The key is checked before the body is read, as on
gRPC; a body is read, inflated and decoded only as far as the limit.

Requests are stored on worker threads (at most `workers` at once, like the gRPC pool), so the
event loop keeps reading other requests while the group commit batches them. More than
`workers × 4` requests in flight (gRPC's bound too) are answered 429 before their body is read.
JSON bodies are decoded one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from access.credentials import bearer
from receiver import otlp_json
from receiver.core import Accepted, IngestCore
from receiver.errors import Refused, Why
from receiver.parse import MalformedRequest
from warehouse.bounded_body import Undecodable, inflate_bounded, read_bounded

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
# zlib wbits per Content-Encoding: gzip (the OTLP spec's), and deflate, which the OTel SDK
# exporters also offer (zlib-wrapped, RFC 9110; a gzip header is read too)
_WBITS = {"gzip": 31, "deflate": 47}
RETRY_AFTER_S = 1  # what a refused exporter waits before trying again (the SDKs honour it)
ANSWER_WITHIN_S = 10.0  # the OTel SDK exporters' default timeout: isolating refused spans stops before it
CORS_HEADERS = ("content-type", "content-encoding", "authorization")

STATUS = {
    Why.UNAUTHENTICATED: (401, 16),  # HTTP status, google.rpc.Code
    Why.FORBIDDEN: (403, 7),
    Why.MALFORMED: (400, 3),
    Why.TOO_LARGE: (413, 8),
    Why.UNSUPPORTED: (415, 3),
    Why.STORE_PERMANENT: (500, 13),
    Why.BACKPRESSURE: (429, 8),
    Why.CLOSING: (503, 14),
    Why.POLICY: (503, 14),
    Why.STORE_TRANSIENT: (503, 14),
}


class HttpTransport:
    """The OTLP/HTTP app (Starlette). The composition root serves it (wrm.listen)."""

    def __init__(
        self, core: IngestCore, cors_origins: Sequence[str] = (), cors_headers: Sequence[str] = ()
    ) -> None:
        """`cors_origins`: browser origins allowed to send spans (`*` for any; none: no CORS);
        `cors_headers`: request headers they may send beyond CORS_HEADERS."""
        self.core = core
        self.stopping = False
        self._limit = core.config.max_request_bytes
        self._workers = anyio.CapacityLimiter(core.config.workers)
        self._json_decoder = anyio.CapacityLimiter(1)
        self._in_flight = 0
        self._max_in_flight = core.config.workers * 4  # as grpc's maximum_concurrent_rpcs
        middleware = []
        if cors_origins:
            middleware.append(
                Middleware(
                    CORSMiddleware,
                    allow_origins=list(cors_origins),
                    allow_methods=["POST"],
                    allow_headers=[*CORS_HEADERS, *cors_headers],
                    expose_headers=["Retry-After"],  # so a browser exporter can honour it
                    max_age=7200,
                )
            )
        self.app = Starlette(
            routes=[Route("/v1/traces", self._traces, methods=["POST"])], middleware=middleware
        )

    async def _traces(self, request: Request) -> Response:
        media = _MEDIA.get(request.headers.get("content-type", "").split(";")[0].strip().lower(), "")
        if self._in_flight >= self._max_in_flight:  # before a body is read, as gRPC bounds its calls
            busy = Refused(Why.BACKPRESSURE, f"{self._in_flight} requests are in flight; retry later")
            self.core.stats.requests.labels(busy.why.value).inc()
            return _refusal(busy, media or JSON)
        self._in_flight += 1  # the event loop's own thread: no lock needed
        try:
            return await self._handle(request, media)
        finally:
            self._in_flight -= 1

    async def _handle(self, request: Request, media: str) -> Response:
        arrived = time.monotonic()
        try:
            if self.stopping:
                self.core.refuse(Why.CLOSING, "the server is stopping; retry")
            key = bearer(request.headers.get("authorization"))
            key_tenant = await anyio.to_thread.run_sync(self.core.key_tenant, key)
            if not media:
                self.core.refuse(
                    Why.UNSUPPORTED,
                    f"unsupported Content-Type {request.headers.get('content-type', '(none)')[:100]!r}: "
                    f"send {PROTOBUF} or {JSON}",
                )
            encoding = request.headers.get("content-encoding", "").strip().lower() or "identity"
            encoding = "gzip" if encoding == "x-gzip" else encoding  # RFC 9110 8.4.1.3
            if encoding not in _WBITS and encoding != "identity":
                self.core.refuse(
                    Why.UNSUPPORTED,
                    f"unsupported Content-Encoding {encoding[:40]!r}: send gzip, deflate or none",
                )
            too_large = self._too_large(encoding)
            try:
                body = await read_bounded(request, self._limit, too_large)
            except Refused as refused:
                self.core.refuse(refused.why, refused.message)
            # JSON decoding holds the interpreter: one at a time loses no throughput, and bounds
            # the memory a hostile body (millions of tiny objects) can take
            limiter = self._json_decoder if media == JSON else self._workers
            data, escaped = await anyio.to_thread.run_sync(
                self._decode, body, encoding, media, too_large, limiter=limiter
            )
            deadline = arrived + ANSWER_WITHIN_S
            accepted = await anyio.to_thread.run_sync(
                self.core.export, data, key_tenant, deadline, escaped, limiter=self._workers
            )
        except Refused as refused:
            return _refusal(refused, media or JSON)
        return _answer(accepted, media)

    def _too_large(self, encoding: str) -> Refused:
        inflated = " once inflated" if encoding in _WBITS else ""
        return Refused(Why.TOO_LARGE, f"the request body is larger than {self._limit} bytes{inflated}")

    def _decode(self, body: bytes, encoding: str, media: str, too_large: Refused) -> tuple[bytes, bool]:
        """Protobuf bytes of the request (still to be parsed by the core), and whether text in
        it had to be escaped (lone UTF-16 surrogates in JSON)."""
        try:
            if encoding in _WBITS:
                body = inflate_bounded(body, self._limit, too_large, wbits=_WBITS[encoding])
            return (body, False) if media == PROTOBUF else otlp_json.decode(body)
        except Refused as refused:
            self.core.refuse(refused.why, refused.message)
        except Undecodable as exc:
            self.core.refuse(Why.MALFORMED, f"the {encoding} body cannot be inflated: {exc}")
        except MalformedRequest as exc:
            self.core.refuse(Why.MALFORMED, str(exc))


def _answer(accepted: Accepted, media: str) -> Response:
    response = ExportTraceServiceResponse()
    if accepted.error_message:
        response.partial_success.rejected_spans = accepted.rejected_spans
        response.partial_success.error_message = accepted.error_message
    return Response(_encode(response, media), media_type=media)


def _refusal(refused: Refused, media: str) -> Response:
    http_status, code = STATUS[refused.why]
    headers = {}
    if refused.why.retryable:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if refused.why is Why.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="wrm"'
    body = _encode(Status(code=code, message=refused.message), media)
    return Response(body, status_code=http_status, media_type=media, headers=headers)


def _encode(message: ExportTraceServiceResponse | Status, media: str) -> bytes:
    return message.SerializeToString() if media == PROTOBUF else otlp_json.encode(message)
