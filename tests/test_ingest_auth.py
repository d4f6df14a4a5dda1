"""OTLP/gRPC ingest with API keys, against real servers and real clients (the SDK's exporter with
an `authorization` header, a raw gRPC stub for exact status codes):

- no key (auth required), or an unknown, malformed or revoked key (even with auth off) is
  UNAUTHENTICATED; a viewer or operator key is PERMISSION_DENIED; neither stores anything, and
  the message never holds the key;
- a tenant's key (ingest or admin) decides the tenant of every span, and its retention, whatever
  the resource's `wrm.tenant.id` claims; the claim counts only without a key (auth off) or with
  the platform admin's key.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from access.keys import key_id_of
from tests.conftest import module_server, settle, start_server
from tests.otlp import EXPORT_METHOD, make_span, request_of
from warehouse import Warehouse
from wrm.server import WrmServer

ADMIN_KEY = "x" * 40
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def secured(engine_dir: Path) -> Iterator[WrmServer]:
    """Auth required; tenant `brief` keeps spans 3 days (the default is 30)."""
    with module_server(
        engine_dir, auth="required", admin_key=ADMIN_KEY, tenant_retention={"brief": {"spans_ttl_days": 3}}
    ) as srv:
        yield srv


def _tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _trace(claim: str | None, name: str = "checkout") -> tuple[list[ReadableSpan], str]:
    """A finished two-span trace whose resource claims tenant `claim` (None: no claim), and its
    trace id in hex (the run id it assembles into)."""
    memory = InMemorySpanExporter()
    resource = {"service.name": "auth-test", **({"wrm.tenant.id": claim} if claim else {})}
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.test_ingest_auth")
    with tracer.start_as_current_span(name) as root, tracer.start_as_current_span(f"{name}-step"):
        pass
    provider.shutdown()
    return list(memory.get_finished_spans()), format(root.get_span_context().trace_id, "032x")


def _sdk_export(server: WrmServer, spans: list[ReadableSpan], key: str | None) -> SpanExportResult:
    """Export with the SDK's own OTLP/gRPC exporter, presenting `key` as exporters are configured to."""
    headers = (("authorization", f"Bearer {key}"),) if key else None
    exporter = OTLPSpanExporter(
        endpoint=f"http://{server.otlp_address}", insecure=True, headers=headers, timeout=30
    )
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def _raw(
    server: WrmServer, request: ExportTraceServiceRequest, authorization: str | None
) -> ExportTraceServiceResponse:
    metadata = (("authorization", authorization),) if authorization is not None else None
    with grpc.insecure_channel(server.otlp_address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )
        return call(request.SerializeToString(), timeout=30, metadata=metadata)


def _stored(server: WrmServer, trace: str) -> dict[str, int]:
    """Spans of `trace` by tenant."""
    assert server.warehouse is not None
    rows = server.warehouse.rows(
        "SELECT tenant_id, count() FROM spans FINAL WHERE trace_id = {t:String} GROUP BY tenant_id",
        {"t": trace},
    )
    return {str(t): int(n) for t, n in rows}


def _run_tenants(server: WrmServer, trace: str) -> list[str]:
    settle(server)
    assert server.warehouse is not None
    rows = server.warehouse.rows("SELECT tenant_id FROM runs WHERE run_id = {t:String}", {"t": trace})
    return sorted(str(t) for (t,) in rows)


def _outcomes(server: WrmServer, outcome: str) -> float:
    assert server.receiver is not None
    registry = server.receiver.stats.registry
    return registry.get_sample_value("wrm_otlp_requests_total", {"outcome": outcome}) or 0.0


def _refused(server: WrmServer, code: grpc.StatusCode, key: str | None, authorization: str = "") -> str:
    """Send one span with `key` (or this `authorization` value); check the call is refused with
    `code`, counted, nothing is stored, and the message holds no part of the key. Returns it."""
    outcome = "unauthenticated" if code is UNAUTHENTICATED else "forbidden"
    before = _outcomes(server, outcome)
    trace = os.urandom(16)
    sent = authorization or (f"Bearer {key}" if key else None)
    with pytest.raises(grpc.RpcError) as refusal:
        _raw(server, request_of([make_span("refused", trace=trace)]), sent)
    assert refusal.value.code() == code, refusal.value.details()
    details = str(refusal.value.details())
    if key:
        assert key not in details and key.split("_", 2)[-1] not in details
    assert _stored(server, trace.hex()) == {}
    assert _outcomes(server, outcome) == before + 1
    return details


# --- who may send spans -------------------------------------------------------------------------


def test_no_key_is_unauthenticated_and_stores_nothing(secured: WrmServer) -> None:
    assert "Bearer" in _refused(secured, UNAUTHENTICATED, None)
    assert "Bearer" in _refused(secured, UNAUTHENTICATED, None, authorization="Bearer ")
    spans, trace = _trace("acme")
    assert _sdk_export(secured, spans, None) is SpanExportResult.FAILURE
    assert _stored(secured, trace) == {}


def test_a_credential_other_than_a_bearer_key_is_no_key(secured: WrmServer) -> None:
    key = secured.create_key(_tenant("basic"), "ingest", "collector")
    _refused(secured, UNAUTHENTICATED, key, authorization=f"Basic {key}")


@pytest.mark.parametrize("kind", ["unknown", "malformed", "wrong secret"])
def test_a_bad_key_is_unauthenticated(secured: WrmServer, kind: str) -> None:
    real = secured.create_key(_tenant("bad"), "ingest", "collector")
    key = {
        "unknown": "wrm_" + "0" * 12 + "_" + "A" * 43,  # well-formed, never issued
        "malformed": "not-a-wrm-key",
        "wrong secret": real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB"),
    }[kind]
    assert "not valid" in _refused(secured, UNAUTHENTICATED, key)


def test_a_revoked_key_is_unauthenticated_at_once(secured: WrmServer) -> None:
    assert secured.keys is not None and secured.authenticator is not None
    tenant = _tenant("revoked")
    key = secured.create_key(tenant, "ingest", "collector")
    spans, trace = _trace(None)
    assert _sdk_export(secured, spans, key) is SpanExportResult.SUCCESS
    assert _stored(secured, trace) == {tenant: 2}
    record = secured.keys.get(str(key_id_of(key)))
    assert record is not None
    secured.authenticator.remember(secured.keys.revoke(record, "t"))
    _refused(secured, UNAUTHENTICATED, key)
    spans, trace = _trace(None)
    assert _sdk_export(secured, spans, key) is SpanExportResult.FAILURE
    assert _stored(secured, trace) == {}


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_key_that_may_not_ingest_is_permission_denied(secured: WrmServer, role: str) -> None:
    key = secured.create_key(_tenant(role), role, "dashboard")
    assert role in _refused(secured, PERMISSION_DENIED, key)
    spans, trace = _trace(None)
    assert _sdk_export(secured, spans, key) is SpanExportResult.FAILURE
    assert _stored(secured, trace) == {}


# --- whose spans they are -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ingest", "admin"])
def test_a_tenant_key_decides_the_tenant_whatever_the_resource_claims(secured: WrmServer, role: str) -> None:
    tenant, rival = _tenant("acme"), _tenant("rival")
    key = secured.create_key(tenant, role, "collector")
    spans, trace = _trace(rival)
    assert _sdk_export(secured, spans, key) is SpanExportResult.SUCCESS
    assert _stored(secured, trace) == {tenant: 2}
    assert _run_tenants(secured, trace) == [tenant]


def test_every_resource_of_a_request_is_the_key_tenant(secured: WrmServer) -> None:
    """Resources claiming another tenant, none, or one that is not a tenant id (refused without
    a key) are all stored as the key's tenant."""
    tenant = _tenant("acme")
    key = secured.create_key(tenant, "ingest", "collector")
    trace = os.urandom(16)
    request = ExportTraceServiceRequest()
    for i, claim in enumerate([_tenant("rival"), None, "not a tenant id!"]):
        part = request_of([make_span(f"part-{i}", trace=trace)])
        if claim is not None:
            kv = part.resource_spans[0].resource.attributes.add()
            kv.key, kv.value.string_value = "wrm.tenant.id", claim
        request.resource_spans.extend(part.resource_spans)
    response = _raw(secured, request, f"Bearer {key}")
    assert not response.HasField("partial_success")
    assert _stored(secured, trace.hex()) == {tenant: 3}


def test_the_key_tenant_retention_applies_to_all_its_spans(secured: WrmServer) -> None:
    assert secured.warehouse is not None
    brief_key = secured.create_key("brief", "ingest", "collector")
    other_key = secured.create_key(_tenant("other"), "ingest", "collector")
    claims_other, from_brief = _trace(_tenant("other"))
    claims_brief, from_other = _trace("brief")
    assert _sdk_export(secured, claims_other, brief_key) is SpanExportResult.SUCCESS
    assert _sdk_export(secured, claims_brief, other_key) is SpanExportResult.SUCCESS
    sql = "SELECT DISTINCT retention_days FROM spans WHERE trace_id = {t:String}"
    assert secured.warehouse.rows(sql, {"t": from_brief}) == [(3,)]
    assert secured.warehouse.rows(sql, {"t": from_other}) == [(30,)]


def test_the_platform_admin_key_honours_the_resource_tenant(secured: WrmServer) -> None:
    _refused(secured, UNAUTHENTICATED, ADMIN_KEY[:-1] + "y")  # only the key itself is the platform's
    claimed = _tenant("claimed")
    spans, trace = _trace(claimed)
    assert _sdk_export(secured, spans, ADMIN_KEY) is SpanExportResult.SUCCESS
    assert _stored(secured, trace) == {claimed: 2}
    spans, unclaimed = _trace(None)
    assert _sdk_export(secured, spans, ADMIN_KEY) is SpanExportResult.SUCCESS
    assert _stored(secured, unclaimed) == {"default": 2}
    assert _run_tenants(secured, trace) == [claimed]


def test_with_auth_off_no_key_works_as_before_and_a_key_still_counts(server: WrmServer) -> None:
    assert server.authenticator is not None and not server.authenticator.required
    claimed = _tenant("claimed")
    spans, trace = _trace(claimed)
    assert _sdk_export(server, spans, None) is SpanExportResult.SUCCESS
    assert _stored(server, trace) == {claimed: 2}
    tenant = _tenant("keyed")
    key = server.create_key(tenant, "ingest", "collector")
    spans, keyed = _trace(claimed)
    assert _sdk_export(server, spans, key) is SpanExportResult.SUCCESS
    assert _stored(server, keyed) == {tenant: 2}
    assert _run_tenants(server, keyed) == [tenant]
    _refused(server, UNAUTHENTICATED, "wrm_" + "0" * 12 + "_" + "A" * 43)
    _refused(server, PERMISSION_DENIED, server.create_key(tenant, "viewer", "dashboard"))


def test_spans_stored_one_by_one_after_a_refusal_keep_the_key_tenant(warehouse: Warehouse) -> None:
    """The engine refuses one span (a CHECK constraint): the rest are isolated and stored on the
    recovery path, still as the key's tenant."""
    server = start_server(warehouse, auth="required", admin_key=ADMIN_KEY)
    try:
        warehouse.command("ALTER TABLE spans ADD CONSTRAINT no_poison CHECK name != 'poison'")
        tenant = _tenant("acme")
        key = server.create_key(tenant, "ingest", "collector")
        trace = os.urandom(16)
        request = request_of([make_span(name, trace=trace) for name in ("good-1", "poison", "good-2")])
        kv = request.resource_spans[0].resource.attributes.add()
        kv.key, kv.value.string_value = "wrm.tenant.id", "rival"
        response = _raw(server, request, f"Bearer {key}")
        assert response.partial_success.rejected_spans == 1
        assert _stored(server, trace.hex()) == {tenant: 2}
    finally:
        server.stop()
