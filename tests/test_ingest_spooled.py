"""`ingest_ack = spooled` through the real server and the SDK's exporters: the export is answered
from the spool, the spans then land in the warehouse exactly as with `stored` and become a run;
a server restarted on the same data stores what the last one left spooled; a second server
cannot take a spool in use; back-pressure on OTLP/HTTP is a 429 that writes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from receiver.spool_log import SpoolLocked
from tests.conftest import start_server
from tests.otlp import make_span, request_of
from warehouse import Warehouse
from wrm.server import WrmServer


def _export_workflow(server: WrmServer, workflow: str) -> str:
    """A root span and two steps through SimpleSpanProcessor (one request a span); the trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "spooled-test"}))
    exporter = OTLPSpanExporter(endpoint=f"http://{server.otlp_address}", insecure=True, timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("run", attributes={"wrm.workflow.name": workflow}) as root:
        for step in ("plan", "act"):
            attributes = {"wrm.step.name": step, "wrm.step.type": "tool"}
            with tracer.start_as_current_span(step, attributes=attributes):
                pass
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def _eventually(server: WrmServer, sql: str, want: object, timeout_s: float = 30.0) -> None:
    assert server.warehouse is not None
    deadline = time.monotonic() + timeout_s
    while (got := [r[0] for r in server.warehouse.rows(sql)]) != [want]:
        assert time.monotonic() < deadline, f"{sql!r}: {got!r}, wanted {want!r}"
        time.sleep(0.1)


def test_spooled_spans_land_as_sent_and_become_a_run(warehouse: Warehouse) -> None:
    server = start_server(warehouse, ingest_ack="spooled")
    try:
        trace = _export_workflow(server, "spooled-flow")
        _eventually(server, f"SELECT count() FROM spans FINAL WHERE trace_id = '{trace}'", 3)
        assert server.warehouse is not None
        names = server.warehouse.rows(
            "SELECT arraySort(groupArray(name)), any(service_name) FROM spans FINAL "
            f"WHERE trace_id = '{trace}'"
        )[0]
        assert names == (["act", "plan", "run"], "spooled-test")
        _eventually(server, f"SELECT step_count FROM runs WHERE trace_id = '{trace}'", 2)
        spool = Path(str(warehouse.dsn.path)).with_name(f"{Path(str(warehouse.dsn.path)).name}-spool")
        assert (spool / warehouse.database / "checkpoint").exists()
    finally:
        server.stop()


def test_a_second_server_on_the_same_spool_does_not_start(warehouse: Warehouse, tmp_path: Path) -> None:
    first = start_server(warehouse, ingest_ack="spooled", spool_dir=str(tmp_path / "spool"))
    try:
        with pytest.raises(SpoolLocked, match="in use by another wrm serve"):
            start_server(warehouse, ingest_ack="spooled", spool_dir=str(tmp_path / "spool"))
    finally:
        first.stop()


def test_back_pressure_over_otlp_http_is_a_429_with_retry_after(warehouse: Warehouse, tmp_path: Path) -> None:
    server = start_server(warehouse, ingest_ack="spooled", spool_max_spans=1, spool_dir=str(tmp_path / "sp"))
    try:
        assert server.receiver is not None
        spooled = server.receiver._writer
        spooled._backlog_spans = 1  # type: ignore[union-attr]  # as if one span waited to be stored
        body = request_of([make_span("refused")]).SerializeToString()
        spool_end = spooled._spool.end  # type: ignore[union-attr]
        answer = httpx.post(
            f"http://{server.otlp_http_address}/v1/traces",
            content=body,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert answer.status_code == 429 and "Retry-After" in answer.headers
        assert spooled._spool.end == spool_end  # type: ignore[union-attr]  # nothing written
        garbage = httpx.post(  # refused before it is parsed: a full server spends nothing on it
            f"http://{server.otlp_http_address}/v1/traces",
            content=b"\xff not protobuf",
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert garbage.status_code == 429
        spooled._backlog_spans = 0  # type: ignore[union-attr]
        again = httpx.post(
            f"http://{server.otlp_http_address}/v1/traces",
            content=body,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert again.status_code == 200
        _eventually(server, "SELECT count() FROM spans FINAL WHERE name = 'refused'", 1)
    finally:
        server.stop()


def test_a_spool_left_holding_spans_stops_a_stored_mode_start(warehouse: Warehouse, tmp_path: Path) -> None:
    from receiver.spool_log import Record, SpoolLog, SpoolNotEmpty

    left = SpoolLog(tmp_path / "left")
    left.append([Record(request_of([make_span("left")]).SerializeToString(), 1, 30)])
    left.close()
    with pytest.raises(SpoolNotEmpty, match="WRM_INGEST_ACK=spooled"):
        start_server(warehouse, ingest_ack="stored", spool_dir=str(tmp_path / "left"))
    server = start_server(warehouse, ingest_ack="spooled", spool_dir=str(tmp_path / "left"))
    try:
        _eventually(server, "SELECT count() FROM spans FINAL WHERE name = 'left'", 1)
    finally:
        server.stop()


def test_the_key_s_tenant_holds_through_the_spool(warehouse: Warehouse, tmp_path: Path) -> None:
    """A span from tenant A's ingest key whose resource claims tenant B is stored as A's: the
    spool keeps the key's tenant with the request until it is stored."""
    server = start_server(
        warehouse, ingest_ack="spooled", auth="required", admin_key="k" * 40, spool_dir=str(tmp_path / "sp")
    )
    try:
        key = server.create_key("tenant-a", "ingest", "collector")
        request = request_of([make_span("claims-b")])
        claim = request.resource_spans[0].resource.attributes.add()
        claim.key, claim.value.string_value = "wrm.tenant.id", "tenant-b"
        answer = httpx.post(
            f"http://{server.otlp_http_address}/v1/traces",
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200
        _eventually(
            server, "SELECT groupArray(tenant_id) FROM spans FINAL WHERE name = 'claims-b'", ["tenant-a"]
        )
        refused = httpx.post(  # and no key, no spool: nothing of it is written
            f"http://{server.otlp_http_address}/v1/traces",
            content=request_of([make_span("no-key")]).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert refused.status_code == 401
        assert server.warehouse is not None
        time.sleep(1.0)
        assert server.warehouse.rows("SELECT count() FROM spans WHERE name = 'no-key'")[0][0] == 0
    finally:
        server.stop()
