"""The OTLP JSON encoding (OTLP/HTTP, `application/json`) ⇄ protobuf.

OTLP JSON is the proto3 JSON mapping with the OTLP spec's differences: trace and span ids are
hex strings, not base64; enum values may be integers; keys are lowerCamelCase (the original
snake_case names are accepted too); 64-bit integers may be strings or numbers; unknown fields
are ignored. So the ids are turned into base64 and protobuf's own JSON parser does the rest.
A request decoded here is encoded to protobuf and stored as any other (receiver.core).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.parse import MalformedRequest

_SPAN_IDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_LINK_IDS = ("traceId", "trace_id", "spanId", "span_id")


def decode(body: bytes) -> bytes:
    """An OTLP JSON ExportTraceServiceRequest as protobuf bytes; raises MalformedRequest with
    where the body is wrong."""
    try:
        document = json.loads(body)
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the JSON body is not UTF-8: {exc}") from None
    except ValueError as exc:
        raise MalformedRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedRequest("the JSON body must be an object (ExportTraceServiceRequest)")
    for r, rs in enumerate(_items(document, ("resourceSpans", "resource_spans"))):
        for s, ss in enumerate(_items(rs, ("scopeSpans", "scope_spans"))):
            for i, span in enumerate(_items(ss, ("spans",))):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                _hex_to_base64(span, _SPAN_IDS, where)
                for k, link in enumerate(_items(span, ("links",))):
                    _hex_to_base64(link, _LINK_IDS, f"{where}.links[{k}]")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise MalformedRequest(f"not an OTLP JSON ExportTraceServiceRequest: {exc}") from None
    return request.SerializeToString()


def encode(message: Message) -> bytes:
    """A response (or google.rpc.Status) in the JSON mapping; ids never occur in either."""
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()


def _items(parent: Any, names: tuple[str, ...]) -> list[Any]:
    """The list under the first of `names` present; the parser reports a wrong type later."""
    if not isinstance(parent, dict):
        return []
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return value
    return []


def _hex_to_base64(obj: Any, names: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        return
    for name in names:
        value = obj.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise MalformedRequest(f"{where}.{name} must be a hex string, got {type(value).__name__}")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise MalformedRequest(f"{where}.{name} is not hex: {value[:40]!r}") from None
        obj[name] = base64.b64encode(raw).decode()
