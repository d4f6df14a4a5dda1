"""Hand-built workflow traces for run/step tests: exact ids, times, attributes and events."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

BASE_NS = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000  # an hour ago, whole second
SEC = 1_000_000_000


def tid(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:16]


def sid(label: str) -> bytes:
    return hashlib.sha256(b"span:" + label.encode()).digest()[:8]


def value(v: object) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def span(
    trace: str,
    name: str,
    parent: str | None = None,
    start: float = 0,
    end: float = 1,
    error: tuple[str, str] | None = None,
    **attrs: object,
) -> Span:
    """A span of trace `trace` whose id derives from `trace/name`; times in seconds from BASE_NS.

    `error=(type, message)` sets ERROR status and adds an `exception` event.
    """
    s = Span(
        trace_id=tid(trace),
        span_id=sid(f"{trace}/{name}"),
        parent_span_id=sid(f"{trace}/{parent}") if parent else b"",
        name=name.split("#")[0],
        start_time_unix_nano=BASE_NS + int(start * SEC),
        end_time_unix_nano=BASE_NS + int(end * SEC),
    )
    s.attributes.extend(KeyValue(key=k.replace("__", "."), value=value(v)) for k, v in attrs.items())
    if error:
        s.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error[1]))
        ev = s.events.add(name="exception", time_unix_nano=s.end_time_unix_nano)
        ev.attributes.extend(
            [
                KeyValue(key="exception.type", value=value(error[0])),
                KeyValue(key="exception.message", value=value(error[1])),
            ]
        )
    return s


def request(spans: Iterable[Span], service: str = "agent-svc", **resource: str) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        KeyValue(key=k.replace("__", "."), value=value(v))
        for k, v in {"service.name": service, **resource}.items()
    )
    rs.scope_spans.add().spans.extend(spans)
    return req


def hexid(label: str) -> str:
    return sid(label).hex()
