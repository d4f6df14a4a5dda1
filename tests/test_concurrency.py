"""Many exporters at once, and a full queue: every span stored exactly once."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import start_server
from tests.otlp import flush, make_span, request_of, sdk_provider, send_raw
from warehouse import Warehouse
from wrm.server import WrmServer


def _emit(provider: TracerProvider, spans: int, tag: str) -> None:
    tracer = provider.get_tracer("load")
    for i in range(spans // 10):
        with tracer.start_as_current_span(f"{tag}-run"):
            for j in range(9):
                with tracer.start_as_current_span(f"{tag}-step-{j}") as s:
                    s.set_attribute("i", i)
    assert flush(provider) == spans
    provider.shutdown()


def _parallel(server: WrmServer, exporters: int, spans_each: int) -> None:
    providers = [sdk_provider(server.otlp_address, service=f"svc-{n}") for n in range(exporters)]
    threads = [threading.Thread(target=_emit, args=(p, spans_each, f"e{n}")) for n, p in enumerate(providers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _counts(wh: Warehouse) -> tuple[int, int]:
    # no FINAL: a duplicate row would show up here until a merge hid it
    total, unique = wh.rows("SELECT count(), uniqExact(trace_id, span_id) FROM spans")[0]
    return int(total), int(unique)


def test_eight_exporters_in_parallel_store_every_span_once(server: WrmServer) -> None:
    # 1,200 spans each: three batches of the SDK's (512 spans at most) per exporter, in parallel
    _parallel(server, exporters=8, spans_each=1_200)
    assert server.warehouse is not None
    assert _counts(server.warehouse) == (9_600, 9_600)
    per_service = dict(server.warehouse.rows("SELECT service_name, count() FROM spans GROUP BY service_name"))
    assert per_service == {f"svc-{n}": 1_200 for n in range(8)}


def _metric(server: WrmServer, name: str) -> float:
    with urllib.request.urlopen(f"http://{server.http_address}/metrics") as resp:
        text = resp.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def _send_until_stored(otlp_address: str, request: ExportTraceServiceRequest, deadline: float) -> int:
    """Send as an exporter would, but retry RESOURCE_EXHAUSTED for as long as it takes (the
    SDK gives up after six retries or its timeout, which would make this test depend on luck);
    returns how many times the request was turned away."""
    refused = 0
    while True:
        try:
            send_raw(otlp_address, request)
            return refused
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            refused += 1
            time.sleep(0.02 * min(refused, 10))


def test_full_queue_answers_resource_exhausted_and_retries_store_everything(warehouse: Warehouse) -> None:
    # Room for 100 spans, and a flush that waits 2 s for more while the queue is not full.
    srv = start_server(warehouse, queue_max_spans=100, flush_interval_ms=2_000)
    try:
        # Deterministic: 60 spans wait for the flush; 60 more do not fit, so they are refused.
        first = threading.Thread(target=send_raw, args=(srv.otlp_address, request_of(_spans("first", 60))))
        first.start()
        deadline = time.monotonic() + 30
        while _metric(srv, "wrm_queue_spans") != 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _metric(srv, "wrm_queue_spans") == 60
        with pytest.raises(grpc.RpcError) as err:
            send_raw(srv.otlp_address, request_of(_spans("second", 60)))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "60 spans are waiting to be stored; retry later" in (err.value.details() or "")
        assert _metric(srv, 'wrm_otlp_requests_total{outcome="backpressure"}') == 1
        first.join(30)
        assert _counts(warehouse) == (60, 60)  # nothing of the refused request was stored

        # Four clients, two 100-span requests each, all at once: many are turned away for a
        # while (one request fills the queue), and every span is stored exactly once once the
        # retries get through.
        deadline = time.monotonic() + 120
        refusals: list[int] = []

        def client(n: int) -> None:
            for k in range(2):
                request = request_of(_spans(f"c{n}-{k}", 100))
                refusals.append(_send_until_stored(srv.otlp_address, request, deadline))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(refusals) == 8
        assert sum(refusals) > 0
        assert _metric(srv, 'wrm_otlp_requests_total{outcome="backpressure"}') == 1 + sum(refusals)
        assert _counts(warehouse) == (860, 860)
        assert _metric(srv, "wrm_spans_accepted_total") == 860
        assert _metric(srv, 'wrm_otlp_requests_total{outcome="ok"}') == 9
    finally:
        srv.stop()


def _spans(prefix: str, n: int) -> list[Span]:
    return [make_span(f"{prefix}-{i}") for i in range(n)]


def test_concurrent_requests_share_one_insert(warehouse: Warehouse) -> None:
    # a long flush wait: five requests arriving together must be stored by one insert
    srv = start_server(warehouse, flush_interval_ms=500)
    try:
        requests = [request_of([make_span(f"g{n}-{i}") for i in range(10)]) for n in range(5)]
        threads = [threading.Thread(target=send_raw, args=(srv.otlp_address, r)) for r in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _counts(warehouse) == (50, 50)
        assert _metric(srv, 'wrm_otlp_requests_total{outcome="ok"}') == 5
        assert _metric(srv, "wrm_flushes_total") == 1
    finally:
        srv.stop()
