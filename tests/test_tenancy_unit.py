"""receiver.tenancy without a warehouse: the span retention each part of a request carries
(spec 8, per-row retention), and when a request is split."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.screen import resource_tenant
from receiver.tenancy import Part, split_by_retention
from tests.otlp import make_span


def _request(*resources: tuple[str | None, int]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for i, (tenant, spans) in enumerate(resources):
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", f"svc-{i}"
        if tenant is not None:
            kv = rs.resource.attributes.add()
            kv.key, kv.value.string_value = "wrm.tenant.id", tenant
        rs.scope_spans.add().spans.extend(make_span(f"r{i}-s{j}") for j in range(spans))
    return req


def _split(
    req: ExportTraceServiceRequest, days_by_tenant: dict[str, int], payload: bytes | None = None
) -> tuple[bytes, list[Part]]:
    data = req.SerializeToString() if payload is None else payload
    spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    return data, split_by_retention(
        req, data, spans, default_tenant="default", default_days=30, days_by_tenant=days_by_tenant
    )


def _services(payload: bytes) -> list[str]:
    parsed = ExportTraceServiceRequest.FromString(payload)
    return [rs.resource.attributes[0].value.string_value for rs in parsed.resource_spans]


def test_without_overrides_the_request_goes_on_whole() -> None:
    req = _request(("acme", 2), (None, 3))
    data, parts = _split(req, {})
    assert len(parts) == 1
    assert (parts[0].payload, parts[0].spans, parts[0].retention_days) == (data, 5, 30)
    assert parts[0].payload is data and parts[0].message is req


def test_one_tenant_with_an_override_keeps_the_bytes_and_takes_its_days() -> None:
    req = _request(("brief", 2), ("brief", 1))
    data, parts = _split(req, {"brief": 3})
    assert [(p.payload, p.spans, p.retention_days) for p in parts] == [(data, 3, 3)]
    assert parts[0].payload is data


def test_tenants_without_an_override_take_the_default() -> None:
    req = _request(("acme", 1), (None, 2))
    data, parts = _split(req, {"brief": 3})
    assert [(p.payload, p.spans, p.retention_days) for p in parts] == [(data, 3, 30)]


def test_no_tenant_means_the_default_tenants_override() -> None:
    req = _request((None, 2))
    data, parts = _split(req, {"default": 9})
    assert [(p.payload, p.spans, p.retention_days) for p in parts] == [(data, 2, 9)]


def test_mixed_retention_is_split_one_part_per_value() -> None:
    req = _request(("brief", 2), (None, 1), ("long", 4), ("acme", 3), ("brief", 1))
    _, parts = _split(req, {"brief": 3, "long": 365})
    by_days = {p.retention_days: p for p in parts}
    assert sorted(by_days) == [3, 30, 365] and len(parts) == 3
    assert _services(by_days[3].payload) == ["svc-0", "svc-4"] and by_days[3].spans == 3
    assert _services(by_days[30].payload) == ["svc-1", "svc-3"] and by_days[30].spans == 4
    assert _services(by_days[365].payload) == ["svc-2"] and by_days[365].spans == 4
    for part in parts:  # each part's message is what its payload encodes, for a re-encode
        assert part.message.SerializeToString() == part.payload
        assert {resource_tenant(rs.resource) or "default" for rs in part.message.resource_spans} <= {
            "brief",
            "default",
            "acme",
            "long",
        }
    assert sum(p.spans for p in parts) == 11


def test_two_tenants_with_the_same_days_are_not_split() -> None:
    req = _request(("a", 1), ("b", 2))
    data, parts = _split(req, {"a": 7, "b": 7})
    assert [(p.payload, p.spans, p.retention_days) for p in parts] == [(data, 3, 7)]


def test_a_group_left_without_spans_is_not_sent() -> None:
    """Screening may leave a resource with no spans: its retention group makes no empty insert."""
    req = _request(("brief", 0), (None, 2))
    _, parts = _split(req, {"brief": 3})
    assert [(p.spans, p.retention_days) for p in parts] == [(2, 30)]
    assert _services(parts[0].payload) == ["svc-1"]
