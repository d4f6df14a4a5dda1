"""OTLP/HTTP refusals, as an exporter sees them, against one small real server (keys required,
requests of at most 64 KiB, at most 50 spans waiting to be stored):

- what cannot be read is refused with its HTTP status and a google.rpc.Status saying why, in
  the request's encoding (JSON when the content type is not one WRM reads), not retryable and
  not stored: malformed protobuf or JSON (400), a non-hex id (400, naming the field), another
  content type or encoding (415), a body over the limit, sized, streamed or once inflated (413),
  a broken gzip (400); requests in flight beside them are all stored;
- auth: no key or an unknown one 401 + WWW-Authenticate, a viewer key 403, an ingest key stores
  in its own tenant whatever the resource claims;
- too many spans waiting: 429 + Retry-After, which the SDK's exporter honours until every span
  is stored; stopping: 503 + Retry-After, and what was in flight is stored.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import drop_database, start_server
from tests.otlp import make_span, request_of, send_raw
from tests.otlp_http import JSON, PROTOBUF, CheckedHttpExporter, answer, otlp_json, post, refusal, send
from warehouse import Warehouse
from wrm.server import WrmServer

LIMIT = 64 * 1024  # the smallest max_request_bytes the settings allow
TENANT = "acme-http"
# google.rpc.Code
INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE, UNAUTHENTICATED = 3, 7, 8, 14, 16
OK = ExportTraceServiceResponse()  # stored, nothing refused


@dataclass(frozen=True)
class Small:
    server: WrmServer
    key: str  # an ingest key of TENANT


@pytest.fixture(scope="module")
def small(engine_dir: Path) -> Iterator[Small]:
    """One server for the module, whose tests keep apart by trace: keys required (as on any port
    off loopback), requests of at most LIMIT bytes, room for 50 spans waiting, and a request that
    leaves room waits up to 0.5 s for others to share its insert. The module's last test stops it."""
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    srv = start_server(
        wh, auth="required", max_request_bytes=LIMIT, queue_max_spans=50, flush_interval_ms=500
    )
    try:
        yield Small(srv, srv.create_key(TENANT, "ingest", "http exporter"))
    finally:
        assert srv.receiver is not None
        if not srv.receiver.closing:
            srv.stop()
        drop_database(wh)
        wh.close()


def _count(server: WrmServer, where: str, **params: str) -> int:
    assert server.warehouse is not None
    return int(server.warehouse.rows(f"SELECT count() FROM spans FINAL WHERE {where}", params)[0][0])


def _in_trace(server: WrmServer, trace: bytes) -> int:
    return _count(server, "trace_id = {t:String}", t=trace.hex())


def _metric(server: WrmServer, name: str, **labels: str) -> float:
    assert server.receiver is not None
    return server.receiver.stats.registry.get_sample_value(name, labels) or 0.0


def _valid(trace: bytes, padding: int = 0) -> ExportTraceServiceRequest:
    """A valid request of one span in `trace`, with an attribute of `padding` bytes."""
    span = make_span("refused", trace=trace)
    if padding:
        span.attributes.append(KeyValue(key="pad", value=AnyValue(string_value="0" * padding)))
    return request_of([span])


@dataclass(frozen=True)
class Bad:
    """A request WRM must refuse, and how; the span of `trace` in it (if any) is not stored."""

    name: str
    body: bytes | Iterator[bytes]
    content_type: str
    encoding: str | None
    status: int
    code: int
    says: tuple[str, ...]  # what the Status message names
    answered_in: str
    trace: bytes = b""


def _json_with(trace: bytes, **fields: object) -> bytes:
    """The OTLP JSON of a valid request with a link, with span (`link_*`: link) fields replaced."""
    request = _valid(trace)
    request.resource_spans[0].scope_spans[0].spans[0].links.add(trace_id=trace, span_id=b"\x01" * 8)
    document = json.loads(otlp_json(request))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for field, value in fields.items():
        target, key = (span["links"][0], field[5:]) if field.startswith("link_") else (span, field)
        target[key] = value
    return json.dumps(document).encode()


def _streamed(data: bytes, chunk: int = 8192) -> Iterator[bytes]:
    """A body sent chunked, with no Content-Length to refuse it by."""
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


def bad_requests() -> list[Bad]:
    """Each refusal once, new traces each call (and a streamed body can be sent once)."""
    t = [os.urandom(16) for _ in range(10)]
    valid = _valid(t[0]).SerializeToString()
    span = "resourceSpans[0].scopeSpans[0].spans[0]"
    limit = str(LIMIT)
    return [
        Bad("protobuf-malformed", b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, None,
            400, INVALID_ARGUMENT, ("not a valid ExportTraceServiceRequest",), PROTOBUF),
        Bad("json-malformed", b'{"resourceSpans": [', JSON, None,
            400, INVALID_ARGUMENT, ("not JSON",), JSON),
        Bad("json-trace-id-not-hex", _json_with(t[1], traceId="not-a-hex-trace-id"), JSON, None,
            400, INVALID_ARGUMENT, (f"{span}.traceId", "hex"), JSON, t[1]),
        Bad("json-link-span-id-base64", _json_with(t[2], link_spanId="AQEBAQEBAQE="), JSON, None,
            400, INVALID_ARGUMENT, (f"{span}.links[0].spanId", "hex"), JSON, t[2]),
        Bad("json-name-not-string", _json_with(t[3], name=5), JSON, None,
            400, INVALID_ARGUMENT, (f"{span}.name",), JSON, t[3]),
        Bad("content-type-text", valid, "text/plain", None,
            415, INVALID_ARGUMENT, ("'text/plain'", PROTOBUF, JSON), JSON, t[0]),
        Bad("content-encoding-br", valid, PROTOBUF, "br",
            415, INVALID_ARGUMENT, ("'br'", "gzip"), PROTOBUF, t[0]),
        Bad("too-large", _valid(t[4], padding=LIMIT).SerializeToString(), PROTOBUF, None,
            413, RESOURCE_EXHAUSTED, (limit,), PROTOBUF, t[4]),
        Bad("too-large-json", otlp_json(_valid(t[5], padding=LIMIT)), JSON, None,
            413, RESOURCE_EXHAUSTED, (limit,), JSON, t[5]),
        Bad("too-large-streamed", _streamed(_valid(t[6], padding=LIMIT).SerializeToString()), PROTOBUF, None,
            413, RESOURCE_EXHAUSTED, (limit,), PROTOBUF, t[6]),
        Bad("gzip-bomb", gzip.compress(_valid(t[7], padding=2_000_000).SerializeToString()), PROTOBUF, "gzip",
            413, RESOURCE_EXHAUSTED, (limit, "inflated"), PROTOBUF, t[7]),
        Bad("gzip-corrupt", b"this is not gzip", JSON, "gzip",
            400, INVALID_ARGUMENT, ("gzip",), JSON),
        Bad("gzip-truncated", gzip.compress(_valid(t[8]).SerializeToString())[:-12], PROTOBUF, "gzip",
            400, INVALID_ARGUMENT, ("gzip",), PROTOBUF, t[8]),
    ]  # fmt: skip


def _post_bad(small: Small, bad: Bad, client: httpx.Client) -> httpx.Response:
    address = small.server.otlp_http_address
    return post(address, bad.body, bad.content_type, bad.encoding, key=small.key, client=client)


def _check_refused(server: WrmServer, bad: Bad, response: httpx.Response) -> None:
    assert response.status_code == bad.status, (bad.name, response.status_code, response.content[:300])
    status = refusal(response, bad.answered_in)
    assert status.code == bad.code, bad.name
    assert all(words in status.message for words in bad.says), (bad.name, status.message)
    assert "retry-after" not in response.headers, bad.name  # the same request would fail again
    if bad.trace:
        assert _in_trace(server, bad.trace) == 0, bad.name


def test_bad_requests_are_refused_saying_why_and_lose_nothing_in_flight(small: Small) -> None:
    """Clients keep sending good requests (protobuf and JSON, plain and gzip) while each bad one
    is sent: each bad one is refused as it should be, each good one answered 200 and stored."""
    server = small.server
    cases = bad_requests()
    assert len({b.name for b in cases}) == len(cases)
    bomb = next(b.body for b in cases if b.name == "gzip-bomb")
    assert isinstance(bomb, bytes) and len(bomb) < LIMIT // 8  # small: only inflated is it too large
    service = f"inflight-{uuid.uuid4().hex[:8]}"
    done = threading.Event()
    sent: list[int] = []
    failures: list[str] = []

    def client(n: int) -> None:
        variants = itertools.cycle([(PROTOBUF, False), (JSON, True), (PROTOBUF, True), (JSON, False)])
        with httpx.Client(timeout=30) as http:
            for k in itertools.count():
                if done.is_set() and k >= 2:
                    return
                media, gzipped = next(variants)
                request = request_of([make_span(f"good-{n}-{k}-{i}") for i in range(5)], service)
                try:
                    response = send(server.otlp_http_address, request, media, gzipped, small.key, http)
                    assert answer(response, media) == OK
                except Exception as exc:  # reported by the test, not lost in the thread
                    failures.append(f"{media} gzip={gzipped}: {exc!r}")
                    return
                sent.append(5)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]  # 20 spans: room to spare
    for t in threads:
        t.start()
    try:
        with httpx.Client(timeout=30) as http:
            for bad in cases:
                _check_refused(server, bad, _post_bad(small, bad, http))
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert failures == []
    assert len(sent) >= 8
    assert _count(server, "service_name = {s:String}", s=service) == sum(sent)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_json_with(b"\x01" * 16, startTimeUnixNano="--5"), "startTimeUnixNano"),
        (_json_with(b"\x02" * 16, startTimeUnixNano="²"), "startTimeUnixNano"),
        (b"[" * 20_000 + b"]" * 20_000, "JSON"),
    ],
    ids=["int-double-minus", "int-superscript-digit", "nested-20000-deep"],
)
def test_json_the_decoder_cannot_read_is_a_400_saying_why(small: Small, body: bytes, says: str) -> None:
    address = small.server.otlp_http_address
    response = post(address, body, JSON, key=small.key)
    # Were it a 500, the server would log its traceback just after answering. Python 3.11 formats
    # it with the ast module, whose depth counter is shared by all threads: pytest formatting
    # this failure at the same moment crashes the session ("SystemError: AST constructor
    # recursion depth mismatch"). The event loop takes another request only once that log is
    # written, so one more request waits for it.
    assert httpx.get(f"http://{address}/v1/traces").status_code == 405
    assert (response.status_code, response.headers["content-type"]) == (400, JSON), response.content[:200]
    status = refusal(response, JSON)
    assert status.code == INVALID_ARGUMENT and says in status.message


def test_a_deflate_body_is_stored(small: Small) -> None:
    """Deflate, which the OTel SDK exporters offer besides gzip, is read too (zlib-wrapped)."""
    trace = b"\x0d" * 16
    body = zlib.compress(_valid(trace).SerializeToString())
    response = post(small.server.otlp_http_address, body, PROTOBUF, "deflate", key=small.key)
    assert response.status_code == 200, response.content[:200]
    assert _count(small.server, "trace_id = {t:String}", t=trace.hex()) == 1


def test_keys_decide_who_may_send_and_for_which_tenant(small: Small) -> None:
    server = small.server
    viewer = server.create_key(TENANT, "viewer", "dashboard")
    trace = os.urandom(16)
    request = _valid(trace)
    request.resource_spans[0].resource.attributes.append(  # a claim a tenant's key overrides
        KeyValue(key="wrm.tenant.id", value=AnyValue(string_value="someone-else"))
    )
    for key, media in (("", PROTOBUF), ("wrm_" + "0" * 40, JSON)):  # none, and an unknown one
        response = send(server.otlp_http_address, request, media, key=key)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert refusal(response, media).code == UNAUTHENTICATED
        assert "retry-after" not in response.headers
    forbidden = send(server.otlp_http_address, request, JSON, key=viewer)
    assert forbidden.status_code == 403 and "www-authenticate" not in forbidden.headers
    status = refusal(forbidden, JSON)
    assert status.code == PERMISSION_DENIED and viewer not in status.message
    assert _in_trace(server, trace) == 0

    assert answer(send(server.otlp_http_address, request, JSON, True, small.key), JSON) == OK
    assert server.warehouse is not None
    tenants = server.warehouse.rows(
        "SELECT tenant_id FROM spans WHERE trace_id = {t:String}", {"t": trace.hex()}
    )
    assert tenants == [(TENANT,)]


def _wait_queued(server: WrmServer, spans: int) -> None:
    """Wait until `spans` spans wait in the queue for their insert."""
    deadline = time.monotonic() + 10
    while _metric(server, "wrm_queue_spans") != spans and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _metric(server, "wrm_queue_spans") == spans


def _finished_spans(n: int) -> tuple[list[ReadableSpan], bytes]:
    """`n` finished SDK spans of one new trace, and its id."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "back-pressure"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.test_otlp_http_errors")
    with tracer.start_as_current_span("root") as root:
        for i in range(n - 1):
            with tracer.start_as_current_span(f"step-{i}"):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans()), root.get_span_context().trace_id.to_bytes(16, "big")


def test_back_pressure_answers_429_with_retry_after_and_the_sdk_retries_until_stored(small: Small) -> None:
    server, key = small.server, small.key
    # 40 spans wait for their insert; 20 more do not fit.
    first, second = os.urandom(16), os.urandom(16)
    waiting: list[httpx.Response] = []
    request = request_of([make_span(trace=first) for _ in range(40)])
    sender = threading.Thread(target=lambda: waiting.append(send(server.otlp_http_address, request, key=key)))
    sender.start()
    _wait_queued(server, 40)
    more = request_of([make_span(trace=second) for _ in range(20)])
    refused = send(server.otlp_http_address, more, JSON, key=key)
    sender.join(30)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    status = refusal(refused, JSON)
    assert status.code == RESOURCE_EXHAUSTED
    assert status.message == "40 spans are waiting to be stored; retry later"
    assert [answer(r, PROTOBUF) for r in waiting] == [OK]
    assert (_in_trace(server, first), _in_trace(server, second)) == (40, 0)

    # Two SDK exporters at once, 40 spans each: the queue takes one, the other is refused and
    # sent again after Retry-After until it is stored.
    refusals = _metric(server, "wrm_otlp_requests_total", outcome="backpressure")
    batches = [_finished_spans(40) for _ in range(2)]
    exporters = [CheckedHttpExporter(server.otlp_http_address, key, timeout=30) for _ in batches]
    together = threading.Barrier(len(batches))

    def export(exporter: CheckedHttpExporter, spans: list[ReadableSpan]) -> None:
        together.wait()
        exporter.export(spans)

    threads = [
        threading.Thread(target=export, args=(e, b[0])) for e, b in zip(exporters, batches, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in exporters:
        e.shutdown()
    assert [(e.exported, e.failed) for e in exporters] == [(40, 0)] * 2
    assert _metric(server, "wrm_otlp_requests_total", outcome="backpressure") > refusals
    assert [_in_trace(server, trace) for _, trace in batches] == [40, 40]


def test_stopping_answers_503_with_retry_after_and_stores_what_was_in_flight(small: Small) -> None:
    """Last in the module: it stops the server."""
    server, key = small.server, small.key
    # One request in flight on each transport, both waiting for the insert they share.
    grpc_trace, http_trace = os.urandom(16), os.urandom(16)
    grpc_request = request_of([make_span(trace=grpc_trace) for _ in range(20)])
    http_request = request_of([make_span(trace=http_trace) for _ in range(20)])
    grpc_answers: list[ExportTraceServiceResponse] = []
    http_answers: list[httpx.Response] = []
    in_flight = [
        threading.Thread(
            target=lambda: grpc_answers.append(send_raw(server.otlp_address, grpc_request, key))
        ),
        threading.Thread(
            target=lambda: http_answers.append(send(server.otlp_http_address, http_request, key=key))
        ),
    ]
    for t in in_flight:
        t.start()
    _wait_queued(server, 40)
    stopper = threading.Thread(target=server.stop)  # closes the HTTP port once the gRPC call is done
    stopper.start()
    try:
        time.sleep(0.05)
        late = send(server.otlp_http_address, request_of([make_span("late")]), key=key)
        assert late.status_code == 503
        assert late.headers["retry-after"] == "1"
        status = refusal(late, PROTOBUF)
        assert (status.code, status.message) == (UNAVAILABLE, "the server is stopping; retry")
    finally:
        for t in [*in_flight, stopper]:
            t.join(30)
    assert grpc_answers == [OK]
    assert [answer(r, PROTOBUF) for r in http_answers] == [OK]
    assert (_in_trace(server, grpc_trace), _in_trace(server, http_trace)) == (20, 20)
    assert _count(server, "name = 'late'") == 0
