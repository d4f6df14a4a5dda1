"""receiver.parse without a warehouse: valid requests, invalid UTF-8 repaired and flagged (spec
2.1.2), and bytes that are no OTLP request at all (2.1.1)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from receiver.parse import MalformedRequest, parse_request
from tests.otlp import make_span, request_of


def test_a_valid_request_parses_unflagged() -> None:
    req = request_of([make_span("a"), make_span("b")], service="svc")
    parsed, escaped = parse_request(req.SerializeToString())
    assert parsed == req and escaped is False


def test_an_empty_request_is_valid() -> None:
    parsed, escaped = parse_request(b"")
    assert parsed == ExportTraceServiceRequest() and escaped is False


def test_invalid_utf8_is_escaped_everywhere_and_flagged() -> None:
    """Same-length placeholders swapped for invalid bytes in a span name, a span attribute, a
    nested array value, an event name and a resource attribute: every one is escaped as \\xNN and
    everything else in the request is kept."""
    span = make_span("NAME1")
    span.attributes.append(KeyValue(key="k", value=AnyValue(string_value="VALUE")))
    nested = AnyValue()
    nested.array_value.values.add().string_value = "DEEP1"
    span.attributes.append(KeyValue(key="arr", value=nested))
    span.events.add(name="EVNT1", time_unix_nano=span.start_time_unix_nano)
    good = make_span("fine")
    req = request_of([span, good], service="SERV1")
    data = req.SerializeToString()
    for placeholder, bad in (
        (b"NAME1", b"n\xffame"),
        (b"VALUE", b"v\xc3(\xa0!"),
        (b"DEEP1", b"\xed\xa0\x80ok"),  # a UTF-16 surrogate: invalid in UTF-8
        (b"EVNT1", b"ev\xfe\xfe!"),
        (b"SERV1", b"s\x80rv1"),
    ):
        assert data.count(placeholder) == 1 and len(bad) == len(placeholder)
        data = data.replace(placeholder, bad)
    with pytest.raises(Exception):  # noqa: B017 - what the strict parser does is the point
        ExportTraceServiceRequest.FromString(data)

    parsed, escaped = parse_request(data)
    assert escaped is True
    first, second = parsed.resource_spans[0].scope_spans[0].spans
    assert first.name == "n\\xffame"
    assert first.attributes[0].value.string_value == "v\\xc3(\\xa0!"
    assert first.attributes[1].value.array_value.values[0].string_value == "\\xed\\xa0\\x80ok"
    assert first.events[0].name == "ev\\xfe\\xfe!"
    assert parsed.resource_spans[0].resource.attributes[0].value.string_value == "s\\x80rv1"
    assert (first.trace_id, first.span_id, first.start_time_unix_nano) == (
        span.trace_id,
        span.span_id,
        span.start_time_unix_nano,
    )
    assert second == good


def test_bytes_fields_keep_their_bytes() -> None:
    """Only string fields are repaired: ids and bytes values are binary and stay as sent."""
    span = make_span("x", trace=b"\xff" * 16, span=b"\xfe" * 8)
    span.attributes.append(KeyValue(key="b", value=AnyValue(bytes_value=b"\xff\x00")))
    span.attributes.append(KeyValue(key="s", value=AnyValue(string_value="BAD")))
    data = request_of([span]).SerializeToString().replace(b"BAD", b"\xff\xff\xff")
    parsed, escaped = parse_request(data)
    got = parsed.resource_spans[0].scope_spans[0].spans[0]
    assert escaped and got.trace_id == b"\xff" * 16 and got.span_id == b"\xfe" * 8
    assert got.attributes[0].value.bytes_value == b"\xff\x00"
    assert got.attributes[1].value.string_value == "\\xff\\xff\\xff"


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\xff\xff\xff\x0f garbage",  # a length past the end
        b"\xff\xff\xff\xff",  # not a tag
        b"\x0a\x05\x0a\x03\x0a",  # a truncated nested message
        b"\x0b",  # field 1 as a start-group with no end
        b"GET / HTTP/1.1\r\n\r\n",
    ],
)
def test_garbage_is_a_malformed_request(data: bytes) -> None:
    with pytest.raises(MalformedRequest, match="not a valid ExportTraceServiceRequest"):
        parse_request(data)
