"""OTLP/HTTP (`POST /v1/traces`) stores what OTLP/gRPC stores, against a real server:

- one request with every field OTLP has (every attribute value type, nested ones, events,
  links, status, kind, trace_state, flags, dropped counts, a value cut to the size limit), sent
  over gRPC and over HTTP as protobuf and as OTLP JSON, plain and gzip, lands as the same rows;
- the SDK's own OTLP/HTTP exporter delivers a workflow that assembles into a run with its steps;
- the answer is in the request's encoding, and a span refused alone is reported in
  partial_success (its neighbours stored);
- browsers of the configured origins may send spans (CORS), other origins may not.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace import Status as SdkStatus
from opentelemetry.trace import StatusCode as SdkStatusCode

from tests.conftest import module_server, settle
from tests.otlp import make_span, request_of, send_raw
from tests.otlp_http import JSON, PROTOBUF, CheckedHttpExporter, answer, send
from wrm.server import WrmServer

ORIGIN = "https://app.example"
SEC = 1_000_000_000
# Whole seconds plus odd nanoseconds, the same for every transport: times must survive to the ns.
BASE_NS = (time.time_ns() // SEC - 120) * SEC + 123_456_789
OTHER_TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")  # a link into another trace
ROOT, CHILD, LEAF, OTHER = (bytes([n]) * 8 for n in (0x11, 0x22, 0x33, 0x44))
NESTED_LIST = ArrayValue(values=[AnyValue(string_value="x"), AnyValue(int_value=2)])
NESTED_MAP = KeyValueList(values=[KeyValue(key="deep", value=AnyValue(string_value="y"))])


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """Each test's spans are traces of their own. Attribute values are cut at 256 bytes, so that
    the cut (and the `truncated` column) is compared too; CORS allows ORIGIN."""
    with module_server(
        engine_dir,
        max_attribute_bytes=256,
        otlp_http_cors_origins=[ORIGIN],
        otlp_http_cors_headers=["x-tenant"],
    ) as srv:
        yield srv


def _pb64(message: ArrayValue | KeyValueList) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _s(text: str) -> AnyValue:
    return AnyValue(string_value=text)


def _every_value() -> list[KeyValue]:
    """An attribute of each AnyValue type, and arrays and key-value lists nested in each other."""
    return [
        _kv("str", _s("héllo ✓")),
        _kv("bool", AnyValue(bool_value=True)),
        _kv("int", AnyValue(int_value=9_007_199_254_740_993)),  # 2**53 + 1: lost as a JSON number
        _kv("negative", AnyValue(int_value=-42)),
        _kv("double", AnyValue(double_value=0.1)),
        _kv("bytes", AnyValue(bytes_value=b"\x00\xffbin")),
        _kv(
            "array",
            AnyValue(
                array_value=ArrayValue(
                    values=[
                        _s("a"),
                        AnyValue(int_value=7),
                        AnyValue(bool_value=False),
                        AnyValue(double_value=2.5),
                    ]
                )
            ),
        ),
        _kv(
            "kvlist",
            AnyValue(kvlist_value=KeyValueList(values=[_kv("k", _s("v")), _kv("n", AnyValue(int_value=1))])),
        ),
        _kv(
            "nested",
            AnyValue(
                kvlist_value=KeyValueList(
                    values=[
                        _kv("list", AnyValue(array_value=NESTED_LIST)),
                        _kv("map", AnyValue(kvlist_value=NESTED_MAP)),
                    ]
                )
            ),
        ),
        _kv("empty", AnyValue()),
        _kv("long", _s("z" * 300)),  # over max_attribute_bytes: cut, and named in `truncated`
    ]


def every_field_request(trace: bytes) -> ExportTraceServiceRequest:
    """Two resources; a root span with every field set, an erroring child, a minimal leaf, and a
    span of another service. Only the trace id differs between calls."""
    root = Span(
        trace_id=trace,
        span_id=ROOT,
        trace_state="vendor=abc,other=1",
        flags=0x301,
        name="checkout",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=BASE_NS,
        end_time_unix_nano=BASE_NS + 5 * SEC + 7,
        dropped_attributes_count=3,
        dropped_events_count=1,
        dropped_links_count=2,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    root.attributes.extend(_every_value())
    miss = root.events.add(name="cache.miss", time_unix_nano=BASE_NS + 1, dropped_attributes_count=1)
    miss.attributes.extend([_kv("key", _s("user:1")), _kv("attempt", AnyValue(int_value=2))])
    root.events.add(name="bare", time_unix_nano=BASE_NS + 2 * SEC + 999)
    own = root.links.add(trace_id=trace, span_id=LEAF, trace_state="a=b", flags=1, dropped_attributes_count=1)
    own.attributes.append(_kv("why", _s("retry")))
    other = root.links.add(trace_id=OTHER_TRACE, span_id=OTHER)
    other.attributes.append(_kv("score", AnyValue(double_value=-1.5)))

    child = Span(
        trace_id=trace,
        span_id=CHILD,
        parent_span_id=ROOT,
        name="llm.chat",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=BASE_NS + SEC,
        end_time_unix_nano=BASE_NS + 2 * SEC,
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream 503"),
    )
    child.attributes.extend(
        [_kv("gen_ai.operation.name", _s("chat")), _kv("temperature", AnyValue(double_value=0.25))]
    )
    error = child.events.add(name="exception", time_unix_nano=BASE_NS + 2 * SEC - 1)
    error.attributes.extend([_kv("exception.type", _s("TimeoutError")), _kv("exception.message", _s("slow"))])
    leaf = Span(
        trace_id=trace,
        span_id=LEAF,
        parent_span_id=CHILD,
        name="leaf",
        start_time_unix_nano=BASE_NS + 3 * SEC,
        end_time_unix_nano=BASE_NS + 3 * SEC,
    )

    request = ExportTraceServiceRequest()
    first = request.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    first.resource.attributes.extend(
        [
            _kv("service.name", _s("http-fields")),
            _kv("service.version", _s("2.0")),
            _kv("pid", AnyValue(int_value=7)),
        ]
    )
    first.resource.dropped_attributes_count = 2
    scope = first.scope_spans.add(schema_url="https://opentelemetry.io/schemas/1.25.0")
    scope.scope.name, scope.scope.version, scope.scope.dropped_attributes_count = (
        "tests.otlp_http",
        "1.2.3",
        1,
    )
    scope.scope.attributes.append(_kv("scope.flag", AnyValue(bool_value=False)))
    scope.spans.extend([root, child])
    first.scope_spans.add().spans.append(leaf)  # a scope with no name
    second = request.resource_spans.add()
    second.resource.attributes.append(_kv("service.name", _s("http-fields-worker")))
    second.scope_spans.add().spans.append(
        Span(
            trace_id=trace,
            span_id=OTHER,
            parent_span_id=ROOT,
            name="enqueue",
            kind=Span.SPAN_KIND_PRODUCER,
            start_time_unix_nano=BASE_NS + 4 * SEC,
            end_time_unix_nano=BASE_NS + 4 * SEC + 1,
        )
    )
    return request


def stored(server: WrmServer, trace: bytes) -> dict[str, dict[str, Any]]:
    """Every column of the trace's rows but trace_id and ingested_at, by span name; times in
    nanoseconds, and a link into the trace itself as "<own trace>"."""
    wh = server.warehouse
    assert wh is not None
    columns = wh.rows(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'spans'"
        " AND name NOT IN ('trace_id', 'ingested_at') ORDER BY position"
    )
    selected = []
    for name, type_ in columns:
        if type_.startswith("DateTime64"):
            selected.append(f"toUnixTimestamp64Nano(`{name}`)")
        elif type_.startswith("Array(DateTime64"):
            selected.append(f"arrayMap(t -> toUnixTimestamp64Nano(t), `{name}`)")
        else:
            selected.append(f"`{name}`")
    rows = wh.rows(
        f"SELECT {', '.join(selected)} FROM spans FINAL WHERE trace_id = {{t:String}}", {"t": trace.hex()}
    )
    by_name = {}
    for row in rows:
        record = dict(zip((c[0] for c in columns), row, strict=True))
        record["links.trace_id"] = [
            "<own trace>" if t == trace.hex() else t for t in record["links.trace_id"]
        ]
        by_name[record["name"]] = record
    assert len(by_name) == len(rows), "span names are unique in the request"
    return by_name


@pytest.fixture(scope="module")
def grpc_rows(server: WrmServer) -> dict[str, dict[str, Any]]:
    trace = os.urandom(16)
    response = send_raw(server.otlp_address, every_field_request(trace))
    assert response == ExportTraceServiceResponse()
    return stored(server, trace)


@pytest.mark.parametrize(
    ("transport", "media", "gzipped"),
    [
        ("grpc", "", False),
        ("http", PROTOBUF, False),
        ("http", PROTOBUF, True),
        ("http", JSON, False),
        ("http", JSON, True),
    ],
    ids=["grpc", "http-protobuf", "http-protobuf-gzip", "http-json", "http-json-gzip"],
)
def test_every_field_lands_as_over_grpc(
    server: WrmServer, grpc_rows: dict[str, dict[str, Any]], transport: str, media: str, gzipped: bool
) -> None:
    trace = os.urandom(16)
    request = every_field_request(trace)
    if transport == "grpc":
        assert send_raw(server.otlp_address, request) == ExportTraceServiceResponse()
    else:
        response = send(server.otlp_http_address, request, media, gzipped)
        assert answer(response, media) == ExportTraceServiceResponse()  # nothing refused
        assert response.content == (b"{}" if media == JSON else b"")
    rows = stored(server, trace)
    assert sorted(rows) == ["checkout", "enqueue", "leaf", "llm.chat"]
    assert rows == grpc_rows
    # What was stored is what was sent (so the comparison above compares something).
    root = rows["checkout"]
    assert root["span_id"] == ROOT.hex() and root["parent_span_id"] == ""
    assert (root["kind"], root["status_code"], root["trace_state"], root["flags"]) == (
        "SERVER",
        "OK",
        "vendor=abc,other=1",
        0x301,
    )
    assert (root["start_time"], root["end_time"], root["duration_ns"]) == (
        BASE_NS,
        BASE_NS + 5 * SEC + 7,
        5 * SEC + 7,
    )
    attributes = root["attributes"]
    assert attributes["str"] == "héllo ✓" and attributes["bool"] == "true"
    assert attributes["int"] == "9007199254740993" and attributes["negative"] == "-42"
    assert attributes["double"] == "0.1" and attributes["bytes"] == "AP9iaW4="
    assert attributes["array"] == '["a",7,false,2.5]' and attributes["kvlist"] == '{"k":"v","n":1}'
    # a value nested in another is kept whole as its protobuf (docs/conventions.md)
    assert attributes["nested"] == f'{{"list":"pb64:{_pb64(NESTED_LIST)}","map":"pb64:{_pb64(NESTED_MAP)}"}}'
    assert "empty" in attributes
    assert attributes["long"].endswith("…[truncated by wrm]") and root["truncated"] == ["span:long"]
    assert (root["dropped_attributes_count"], root["dropped_events_count"], root["dropped_links_count"]) == (
        3,
        1,
        2,
    )
    assert root["events.name"] == ["cache.miss", "bare"]
    assert root["events.time"] == [BASE_NS + 1, BASE_NS + 2 * SEC + 999]
    assert root["events.attributes"] == [{"key": "user:1", "attempt": "2"}, {}]
    assert root["events.dropped_attributes_count"] == [1, 0]
    assert root["links.trace_id"] == ["<own trace>", OTHER_TRACE.hex()]
    assert root["links.span_id"] == [LEAF.hex(), OTHER.hex()]
    assert root["links.trace_state"] == ["a=b", ""] and root["links.flags"] == [1, 0]
    assert root["links.attributes"] == [{"why": "retry"}, {"score": "-1.5"}]
    assert root["links.dropped_attributes_count"] == [1, 0]
    assert root["resource_attributes"] == {
        "service.name": "http-fields",
        "service.version": "2.0",
        "pid": "7",
    }
    assert root["resource_schema_url"] == "https://opentelemetry.io/schemas/1.26.0"
    assert root["resource_dropped_attributes_count"] == 2
    assert (root["scope_name"], root["scope_version"], root["scope_attributes"]) == (
        "tests.otlp_http",
        "1.2.3",
        {"scope.flag": "false"},
    )
    assert (root["scope_schema_url"], root["scope_dropped_attributes_count"]) == (
        "https://opentelemetry.io/schemas/1.25.0",
        1,
    )
    child = rows["llm.chat"]
    assert (child["parent_span_id"], child["kind"], child["status_code"], child["status_message"]) == (
        ROOT.hex(),
        "CLIENT",
        "ERROR",
        "upstream 503",
    )
    assert child["events.attributes"] == [{"exception.type": "TimeoutError", "exception.message": "slow"}]
    assert (rows["leaf"]["kind"], rows["leaf"]["scope_name"], rows["leaf"]["duration_ns"]) == (
        "UNSPECIFIED",
        "",
        0,
    )
    assert (rows["enqueue"]["kind"], rows["enqueue"]["service_name"]) == ("PRODUCER", "http-fields-worker")
    assert {r["tenant_id"] for r in rows.values()} == {"default"}


def test_sdk_http_exporter_workflow_assembles_into_a_run(server: WrmServer) -> None:
    """The SDK's OTLP/HTTP exporter (protobuf, gzip): a run whose LLM step failed once and was retried."""
    provider = TracerProvider(resource=Resource.create({"service.name": "refund-agent-http"}))
    exporter = CheckedHttpExporter(server.otlp_http_address, gzipped=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("tests.otlp_http", "0.1")
    with tracer.start_as_current_span("refund-workflow", kind=SpanKind.SERVER) as root:
        root.set_attribute("wrm.workflow.name", "refund-http")
        for attempt in (1, 2):
            with tracer.start_as_current_span("llm.chat", kind=SpanKind.CLIENT) as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("wrm.step.attempt", attempt)
                if attempt == 1:
                    llm.record_exception(TimeoutError("model took too long"))
                    llm.set_status(SdkStatus(SdkStatusCode.ERROR, "timeout"))
        with tracer.start_as_current_span("lookup") as tool:
            tool.set_attribute("gen_ai.tool.name", "crm.lookup")
    assert provider.force_flush(30_000)
    provider.shutdown()
    assert (exporter.exported, exporter.failed) == (4, 0)
    settle(server)
    wh = server.warehouse
    assert wh is not None
    trace = f"{root.get_span_context().trace_id:032x}"
    runs = wh.rows(
        "SELECT status, workflow_name, service_name, span_count, step_count, retries, failed_steps"
        " FROM runs WHERE trace_id = {t:String}",
        {"t": trace},
    )
    assert runs == [("completed", "refund-http", "refund-agent-http", 4, 3, 1, 1)]
    steps = wh.rows(
        "SELECT name, attempt, status, failure_kind, error_type, error_message FROM steps"
        " WHERE trace_id = {t:String} ORDER BY start_time",
        {"t": trace},
    )
    assert steps == [
        ("llm.chat", 1, "failed", "timeout", "TimeoutError", "model took too long"),
        ("llm.chat", 2, "completed", "", "", ""),
        ("crm.lookup", 1, "completed", "", "", ""),
    ]


@pytest.mark.parametrize("media", [PROTOBUF, JSON], ids=["protobuf", "json"])
def test_a_refused_span_is_reported_in_the_request_encoding(server: WrmServer, media: str) -> None:
    trace = os.urandom(16)
    request = request_of(
        [make_span("kept", trace=trace), make_span("short-id", trace=trace, span=b"\x01\x02\x03")]
    )
    response = send(server.otlp_http_address, request, media)
    result = answer(response, media)
    assert result.partial_success.rejected_spans == 1
    assert (
        result.partial_success.error_message
        == "span 'short-id': span_id is 3 bytes, expected 8 (1 span had this problem)"
    )
    if media == JSON:  # what a JSON client reads: lowerCamelCase, the int64 count as a string
        assert response.json() == {
            "partialSuccess": {"rejectedSpans": "1", "errorMessage": result.partial_success.error_message}
        }
    assert server.warehouse is not None
    names = server.warehouse.rows(
        "SELECT name FROM spans FINAL WHERE trace_id = {t:String}", {"t": trace.hex()}
    )
    assert names == [("kept",)]


def test_cors_lets_the_configured_origin_send_spans(server: WrmServer) -> None:
    url = f"http://{server.otlp_http_address}/v1/traces"
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, content-encoding, authorization, x-tenant",
    }
    allowed = httpx.options(url, headers={"origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    allowed_headers = {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "content-encoding", "authorization", "x-tenant"} <= allowed_headers

    refused = httpx.options(url, headers={"origin": "https://evil.example", **preflight})
    assert refused.status_code != 200 and "access-control-allow-origin" not in refused.headers

    # the browser may read the answer to the POST itself
    trace = os.urandom(16)
    sent = send_with_origin(server, request_of([make_span("from-browser", trace=trace)]), ORIGIN)
    assert sent.status_code == 200 and sent.headers["access-control-allow-origin"] == ORIGIN
    other = send_with_origin(server, request_of([make_span("from-elsewhere")]), "https://evil.example")
    assert "access-control-allow-origin" not in other.headers


def send_with_origin(server: WrmServer, request: ExportTraceServiceRequest, origin: str) -> httpx.Response:
    return httpx.post(
        f"http://{server.otlp_http_address}/v1/traces",
        content=request.SerializeToString(),
        headers={"content-type": PROTOBUF, "origin": origin},
    )
