"""The OTLP JSON encoding (OTLP/HTTP, `application/json`) ⇄ protobuf.

OTLP JSON is the proto3 JSON mapping with the OTLP spec's differences: trace and span ids are
hex strings, not base64; enum values may be integers; keys are lowerCamelCase (the original
snake_case names are read too); 64-bit integers may be strings or numbers; unknown fields are
ignored. A request decoded here is encoded to protobuf and stored as any other (receiver.core).

Why not protobuf's `json_format.ParseDict`: it walks every field through Python reflection,
≈ 0.6 ms a span (a 16 MiB body would hold the interpreter for ~7 s). Here the JSON document is
rewritten, driven by the message descriptors (so a field added to OTLP is read without a change
here), into the keyword arguments protobuf's C constructor takes, which builds the message in
one call: ≈ 0.11 ms a span, 5× faster (docs/benchmarks.md, "OTLP/HTTP").
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.parse import MalformedRequest

_HEX_IDS = frozenset({"trace_id", "span_id", "parent_span_id"})  # OTLP: hex, not base64
_INTS = frozenset(
    {
        FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SINT32,
    }
)  # fmt: skip
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_DECIMAL = re.compile(r"-?[0-9]+")  # ASCII only: int() would also read "٣" or "1_000"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


Where = tuple[Any, ...]  # the path to a value, nested (parent, key): made into text only for an error


@dataclass(frozen=True)
class _Field:
    name: str  # the proto (snake_case) name: what the constructor takes
    repeated: bool
    convert: Callable[[Any, Where], Any]
    message: Descriptor | None  # a message field: converted by _message (called directly: hot)
    string: bool  # a string field: taken as it is when it is one (the commonest value)


def decode(body: bytes) -> tuple[bytes, bool]:
    """An OTLP JSON ExportTraceServiceRequest as protobuf bytes, and whether text had to be
    escaped; raises MalformedRequest with where the body is wrong (never quoting a value: it
    may be a secret the tenant's redaction would have taken out)."""
    try:
        document = json.loads(body)
        kwargs = _message(document, ExportTraceServiceRequest.DESCRIPTOR, ())
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the JSON body is not UTF-8: {exc}") from None
    except RecursionError:
        raise MalformedRequest("the JSON body is nested too deeply to be an OTLP request") from None
    except ValueError as exc:  # json.JSONDecodeError; MalformedRequest passes through as it is
        if isinstance(exc, MalformedRequest):
            raise
        raise MalformedRequest(f"the body is not JSON: {exc}") from None
    try:
        return ExportTraceServiceRequest(**kwargs).SerializeToString(), False
    except UnicodeEncodeError:  # a lone UTF-16 surrogate (`"\ud83d"`): JS exporters cut strings so
        pass  # then stored escaped, as protobuf's invalid UTF-8 is (receiver.parse), not refused
    except (TypeError, ValueError, RecursionError) as exc:  # a value out of range, nesting too deep
        raise MalformedRequest(f"not an OTLP JSON ExportTraceServiceRequest: {exc}") from None
    kwargs = _message(_escape_surrogates(document), ExportTraceServiceRequest.DESCRIPTOR, ())
    try:
        return ExportTraceServiceRequest(**kwargs).SerializeToString(), True
    except (TypeError, ValueError, RecursionError) as exc:
        raise MalformedRequest(f"not an OTLP JSON ExportTraceServiceRequest: {exc}") from None


def encode(message: Message) -> bytes:
    """A response (or google.rpc.Status) in the JSON mapping; ids never occur in either."""
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()


@cache
def _fields(descriptor: Descriptor) -> dict[str, _Field]:
    """JSON name and proto name → field, for one message type."""
    out: dict[str, _Field] = {}
    for f in descriptor.fields:
        string = f.type == FieldDescriptor.TYPE_STRING
        field = _Field(f.name, f.is_repeated, _converter(f), f.message_type, string)
        out[f.json_name] = out[f.name] = field
    return out


def _converter(f: FieldDescriptor) -> Callable[[Any, Where], Any]:
    kind = f.type
    if f.message_type is not None:
        descriptor = f.message_type
        return lambda value, where: _message(value, descriptor, where)
    if kind == FieldDescriptor.TYPE_STRING:
        return _string
    if kind == FieldDescriptor.TYPE_BYTES:
        return _hex if f.name in _HEX_IDS else _base64
    if kind in _INTS:
        return _int
    if kind == FieldDescriptor.TYPE_BOOL:
        return _bool
    if kind in _FLOATS:
        return _float
    if f.enum_type is None:  # a type OTLP traces do not use (groups)
        raise TypeError(f"no JSON reading for field {f.full_name} (type {kind})")
    names = {v.name: v.number for v in f.enum_type.values}
    return lambda value, where: _enum(value, names, where)


def _message(obj: Any, descriptor: Descriptor, where: Where) -> dict[str, Any]:
    if type(obj) is not dict:
        raise _wrong(obj, f"a JSON object ({descriptor.name})", where)
    fields = _fields(descriptor)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = fields.get(key)
        if field is None or value is None:  # unknown fields are ignored, null is the default
            continue
        if field.string and type(value) is str:
            out[field.name] = value
        elif field.repeated:
            if type(value) is not list:
                raise _wrong(value, "a JSON array", (where, key))
            inner = field.message
            if inner is not None:
                out[field.name] = [_message(v, inner, (where, key, i)) for i, v in enumerate(value)]
            else:
                convert = field.convert
                out[field.name] = [convert(v, (where, key, i)) for i, v in enumerate(value)]
        elif field.message is not None:
            out[field.name] = _message(value, field.message, (where, key))
        else:
            out[field.name] = field.convert(value, (where, key))
    return out


def _string(value: Any, where: Where) -> str:
    if type(value) is str:
        return value
    raise _wrong(value, "a string", where)


def _int(value: Any, where: Where) -> int:
    if type(value) is int:
        return value
    if type(value) is str and _DECIMAL.fullmatch(value):
        return int(value)
    if type(value) is float and value.is_integer():
        return int(value)
    raise _wrong(value, "an integer (a number or a decimal string)", where)


def _bool(value: Any, where: Where) -> bool:
    if type(value) is bool:
        return value
    raise _wrong(value, "true or false", where)


def _float(value: Any, where: Where) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str and value in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[value]
    if type(value) is str and _NUMBER.fullmatch(value):  # proto3 JSON allows numbers as strings
        return float(value)
    raise _wrong(value, "a number", where)


def _enum(value: Any, names: dict[str, int], where: Where) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value in names:
        return names[value]
    raise _wrong(value, "an enum value (its number or name)", where)


def _hex(value: Any, where: Where) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise _wrong(value, "a hex string", where) from None


def _base64(value: Any, where: Where) -> bytes:
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.b64decode(padded, altchars=b"-_" if "-" in value or "_" in value else None)
    except (TypeError, binascii.Error, ValueError):
        raise _wrong(value, "a base64 string", where) from None


def _wrong(value: Any, expected: str, where: Where) -> MalformedRequest:
    parts: list[str] = []
    node: Any = where
    while node:  # (parent, key) or (parent, key, index)
        parts.append(f"[{node[2]}]" if len(node) == 3 else f".{node[1]}")
        if len(node) == 3:
            parts.append(f".{node[1]}")
        node = node[0]
    path = "".join(reversed(parts)).lstrip(".") or "the body"
    return MalformedRequest(f"{path}: {_JSON_TYPES.get(type(value), 'a value')} is not {expected}")


_JSON_TYPES = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _escape_surrogates(obj: Any) -> Any:
    """`obj` with every lone surrogate in its strings written as the `\\xNN` escapes of its
    bytes, as invalid UTF-8 is stored (receiver.parse)."""
    if type(obj) is str:
        try:
            obj.encode()
            return obj
        except UnicodeEncodeError:
            return obj.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")
    if type(obj) is list:
        return [_escape_surrogates(v) for v in obj]
    if type(obj) is dict:
        return {k: _escape_surrogates(v) for k, v in obj.items()}
    return obj
