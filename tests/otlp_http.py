"""Test helpers for OTLP/HTTP (`POST /v1/traces`): raw requests with httpx in protobuf or OTLP
JSON, plain or gzip; answers and refusals decoded as a client reads them; the SDK's own
OTLP/HTTP exporter.

The OTLP JSON here is built from protobuf's JSON mapping on its own, not with
receiver.otlp_json, so a mistake there cannot hide in both ends: lowerCamelCase keys, 64-bit
integers as strings, enums as integers, bytes values base64, and trace and span ids hex (the
one place OTLP JSON differs from the plain mapping)."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.otlp import Counting

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """`request` in the OTLP JSON encoding."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _ids_to_hex(span, ("traceId", "spanId", "parentSpanId"))
                for link in span.get("links", []):
                    _ids_to_hex(link, ("traceId", "spanId"))
    return json.dumps(document).encode()


def _ids_to_hex(obj: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name in obj:
            obj[name] = base64.b64decode(obj[name]).hex()


def encode(request: ExportTraceServiceRequest, media: str) -> bytes:
    return request.SerializeToString() if media == PROTOBUF else otlp_json(request)


def post(
    address: str,
    body: bytes | Iterable[bytes],
    content_type: str = PROTOBUF,
    content_encoding: str | None = None,
    key: str = "",
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST `body` to /v1/traces as is (it may be deliberately wrong for its headers); an
    iterable body is sent chunked, without a Content-Length."""
    sent = {"content-type": content_type, **(headers or {})}
    if content_encoding is not None:
        sent["content-encoding"] = content_encoding
    if key:
        sent["authorization"] = f"Bearer {key}"
    url = f"http://{address}/v1/traces"
    if client is not None:
        return client.post(url, content=body, headers=sent)
    return httpx.post(url, content=body, headers=sent, timeout=30)


def send(
    address: str,
    request: ExportTraceServiceRequest,
    media: str = PROTOBUF,
    gzipped: bool = False,
    key: str = "",
    client: httpx.Client | None = None,
) -> httpx.Response:
    """Send a request as an OTLP/HTTP exporter would, in `media`, gzipped or not."""
    body = encode(request, media)
    if gzipped:
        body = gzip.compress(body)
    return post(address, body, media, "gzip" if gzipped else None, key=key, client=client)


def answer(response: httpx.Response, media: str) -> ExportTraceServiceResponse:
    """The 200 answer, checked to be in the request's encoding `media`."""
    assert response.status_code == 200, (response.status_code, response.content[:500])
    assert response.headers["content-type"] == media
    if media == PROTOBUF:
        return ExportTraceServiceResponse.FromString(response.content)
    return json_format.Parse(response.content, ExportTraceServiceResponse())


def refusal(response: httpx.Response, media: str) -> Status:
    """The google.rpc.Status of a refusal, checked to be in `media`."""
    assert response.headers["content-type"] == media, response.headers
    if media == PROTOBUF:
        return Status.FromString(response.content)
    document = response.json()
    assert set(document) <= {"code", "message", "details"}, document
    return json_format.ParseDict(document, Status())


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A small gzip body that inflates to `inflated_bytes` zeros."""
    return gzip.compress(bytes(inflated_bytes), compresslevel=9)


class CheckedHttpExporter(Counting, OTLPSpanExporter):
    """The SDK's OTLP/HTTP exporter (protobuf), counting spans of exports that failed after its
    own retries."""

    def __init__(self, address: str, key: str = "", timeout: float = 30, gzipped: bool = False) -> None:
        super().__init__(
            endpoint=f"http://{address}/v1/traces",
            headers={"authorization": f"Bearer {key}"} if key else None,
            timeout=timeout,
            compression=Compression.Gzip if gzipped else Compression.NoCompression,
        )

    def shutdown(self) -> None:
        super().shutdown()  # type: ignore[no-untyped-call]  # unannotated in the SDK
