"""Bytes → ExportTraceServiceRequest, tolerating invalid UTF-8 in string fields.

proto3 parsers refuse a whole message when any string field holds invalid UTF-8, which would
lose every good span next to one bad attribute. So a refused request is parsed a second time
with a twin schema whose string fields are `bytes` (same wire format), every such field is
re-encoded with invalid bytes escaped as `\\xNN`, and the repaired bytes are parsed normally.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_PREFIX = "wrm_lenient"


class MalformedRequest(ValueError):
    """The bytes are not an OTLP trace request at all."""


def parse_request(data: bytes) -> tuple[ExportTraceServiceRequest, bool]:
    """Parse a request; the flag says whether invalid UTF-8 had to be escaped."""
    try:
        return ExportTraceServiceRequest.FromString(data), False
    except DecodeError as exc:
        strict_error = exc
    lenient_cls = _lenient_class()
    try:
        twin = lenient_cls.FromString(data)
    except DecodeError:
        raise MalformedRequest(f"not a valid ExportTraceServiceRequest: {strict_error}") from None
    _repair(twin, _string_fields())
    try:
        return ExportTraceServiceRequest.FromString(twin.SerializeToString()), True
    except DecodeError as exc:  # pragma: no cover - the repair leaves only valid UTF-8
        raise MalformedRequest(f"not a valid ExportTraceServiceRequest: {exc}") from None


def _repair(msg: Message, strings: frozenset[tuple[str, str]]) -> None:
    full = msg.DESCRIPTOR.full_name
    for field, value in msg.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                for item in value:
                    _repair(item, strings)
            else:
                _repair(value, strings)
        elif (full, field.name) in strings:
            if field.is_repeated:
                value[:] = [_escape(v) for v in value]
            else:
                setattr(msg, field.name, _escape(value))


def _escape(raw: bytes) -> bytes:
    return raw.decode("utf-8", "backslashreplace").encode("utf-8")


def _otlp_files() -> list[Any]:
    """The .proto files of the trace request, dependencies first."""
    seen: dict[str, Any] = {}

    def visit(fd: Any) -> None:
        for dep in fd.dependencies:
            visit(dep)
        if fd.name.startswith("opentelemetry/") and fd.name not in seen:
            seen[fd.name] = fd

    visit(trace_service_pb2.DESCRIPTOR)
    return list(seen.values())


@cache
def _string_fields() -> frozenset[tuple[str, str]]:
    """(lenient message full name, field name) of every field that is a string in OTLP."""
    out: set[tuple[str, str]] = set()
    for fd in _otlp_files():
        for msg in _walk(fd.message_types_by_name.values()):
            for field in msg.fields:
                if field.type == FieldDescriptor.TYPE_STRING:
                    out.add((f"{_PREFIX}.{msg.full_name}", field.name))
    return frozenset(out)


def _walk(messages: Any) -> Any:
    for m in messages:
        yield m
        yield from _walk(m.nested_types)


@cache
def _lenient_class() -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    for fd in _otlp_files():
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        proto.name = f"{_PREFIX}/{proto.name}"
        proto.package = f"{_PREFIX}.{proto.package}"
        proto.dependency[:] = [f"{_PREFIX}/{d}" for d in proto.dependency if d.startswith("opentelemetry/")]
        proto.ClearField("service")
        _loosen(proto.message_type)
        pool.Add(proto)
    desc = pool.FindMessageTypeByName(f"{_PREFIX}.{ExportTraceServiceRequest.DESCRIPTOR.full_name}")
    return message_factory.GetMessageClass(desc)


def _loosen(messages: Any) -> None:
    for m in messages:
        for f in m.field:
            if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            if f.type_name.startswith(".opentelemetry."):
                f.type_name = f".{_PREFIX}{f.type_name}"
        _loosen(m.nested_type)
