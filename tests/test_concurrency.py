"""Many exporters at once, and a full queue: every span stored exactly once."""

from __future__ import annotations

import re
import threading
import urllib.request

from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import start_server
from tests.otlp import make_span, request_of, sdk_provider, send_raw
from warehouse import Warehouse
from wrm.server import WrmServer


def _emit(provider: TracerProvider, spans: int, tag: str) -> None:
    tracer = provider.get_tracer("load")
    for i in range(spans // 10):
        with tracer.start_as_current_span(f"{tag}-run"):
            for j in range(9):
                with tracer.start_as_current_span(f"{tag}-step-{j}") as s:
                    s.set_attribute("i", i)
    provider.force_flush(60_000)
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
    _parallel(server, exporters=8, spans_each=5_000)
    assert server.warehouse is not None
    assert _counts(server.warehouse) == (40_000, 40_000)
    per_service = dict(server.warehouse.rows("SELECT service_name, count() FROM spans GROUP BY service_name"))
    assert per_service == {f"svc-{n}": 5_000 for n in range(8)}


def _metric(server: WrmServer, name: str) -> float:
    with urllib.request.urlopen(f"http://{server.http_address}/metrics") as resp:
        text = resp.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def test_full_queue_answers_resource_exhausted_and_retries_store_everything(warehouse: Warehouse) -> None:
    # a queue of one span and a slow flush: concurrent exports must be turned away for a while
    srv = start_server(warehouse, queue_max_spans=1, flush_interval_ms=300)
    try:
        _parallel(srv, exporters=4, spans_each=1_000)
        assert _metric(srv, 'wrm_otlp_requests_total{outcome="backpressure"}') > 0
        assert _counts(warehouse) == (4_000, 4_000)
        assert _metric(srv, "wrm_spans_accepted_total") == 4_000
    finally:
        srv.stop()


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
