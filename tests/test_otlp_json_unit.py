"""receiver.otlp_json and warehouse.bounded_body on their own: what a hostile or merely unusual
OTLP/HTTP body decodes to, without a server."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver import otlp_json
from receiver.parse import MalformedRequest
from warehouse.bounded_body import Undecodable, inflate_bounded

TRACE, SPAN = "00112233445566778899aabbccddeeff", "0011223344556677"


def _request(**span: Any) -> bytes:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": TRACE, "spanId": SPAN, **span}]}]}]}
    return json.dumps(body).encode()


def _span(data: bytes) -> Any:
    return ExportTraceServiceRequest.FromString(data).resource_spans[0].scope_spans[0].spans[0]


def test_a_lone_surrogate_is_stored_escaped_not_refused() -> None:
    """JS exporters cut strings by UTF-16 length and may write half a pair: the span is kept."""
    data, escaped = otlp_json.decode(_request(name="x\ud83dy"))
    assert escaped and _span(data).name == "x\\xed\\xa0\\xbdy"
    data, escaped = otlp_json.decode(_request(name="ok 🙂"))
    assert not escaped and _span(data).name == "ok 🙂"


def test_a_refusal_names_the_place_but_never_quotes_the_value() -> None:
    secret = "sk-live-0123456789abcdef0123456789"
    attribute = [{"key": "token", "value": {"stringValue": [secret]}}]
    for bad in (_request(attributes=attribute), _request(traceId=secret), _request(startTimeUnixNano=secret)):
        with pytest.raises(MalformedRequest) as caught:
            otlp_json.decode(bad)
        assert secret not in str(caught.value) and "resourceSpans[0].scopeSpans[0].spans[0]" in str(
            caught.value
        )


def test_numbers_as_strings_are_read_as_proto3_json_allows() -> None:
    value = {"key": "d", "value": {"doubleValue": "1.5e2"}}
    data, _ = otlp_json.decode(_request(startTimeUnixNano="12", attributes=[value]))
    span = _span(data)
    assert span.start_time_unix_nano == 12 and span.attributes[0].value.double_value == 150.0
    for bad in ("--5", "²", "1_000", "0x10"):
        with pytest.raises(MalformedRequest, match="startTimeUnixNano"):
            otlp_json.decode(_request(startTimeUnixNano=bad))


def test_every_gzip_member_is_read_and_trailing_garbage_refused() -> None:
    """`cat a.gz b.gz` is valid gzip: stopping after a would acknowledge b and never store it."""
    too_large = ValueError("too large")
    assert inflate_bounded(gzip.compress(b"ab") + gzip.compress(b"cd"), 10, too_large, 31) == b"abcd"
    with pytest.raises(ValueError, match="too large"):  # the limit counts every member
        inflate_bounded(gzip.compress(b"x" * 6) + gzip.compress(b"y" * 6), 10, too_large, 31)
    with pytest.raises(Undecodable):
        inflate_bounded(gzip.compress(b"ab") + b"not gzip", 10, too_large, 31)
    with pytest.raises(Undecodable):
        inflate_bounded(gzip.compress(b"abcdef")[:-3], 10, too_large, 31)
    assert inflate_bounded(zlib.compress(b"deflate"), 10, too_large, 47) == b"deflate"
