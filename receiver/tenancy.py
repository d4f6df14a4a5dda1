"""Per-tenant span retention at ingest: the retention each stored span row carries.

A request sent with a tenant's API key is all that tenant's (`key_tenant`): it goes on whole,
with that tenant's retention, whatever its resources claim. Otherwise (auth off and no key, or
the platform admin's key) its spans get the retention of their resource's tenant
(`wrm.tenant.id`, else the default tenant). Requests almost always hold one tenant and go on as
they came; one that mixes tenants with different retention is split into one request per
retention value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.screen import resource_tenant


@dataclass(frozen=True)
class Part:
    payload: bytes
    spans: int
    retention_days: int
    message: Any  # the ExportTraceServiceRequest `payload` encodes, to bisect if its data is refused
    key_tenant: str = ""  # the tenant of every span, fixed by the sender's key; "": as the resource says


def split_by_retention(
    request: Any,
    payload: bytes,
    spans: int,
    *,
    default_tenant: str,
    default_days: int,
    days_by_tenant: Mapping[str, int],
    key_tenant: str = "",
) -> list[Part]:
    """`request` is the screened message that `payload` encodes; `key_tenant`, when not empty,
    the tenant of the key that sent it."""
    if key_tenant:
        return [Part(payload, spans, days_by_tenant.get(key_tenant, default_days), request, key_tenant)]
    if not days_by_tenant:
        return [Part(payload, spans, default_days, request)]
    groups: dict[int, list[Any]] = {}
    for rs in request.resource_spans:
        days = days_by_tenant.get(resource_tenant(rs.resource) or default_tenant, default_days)
        groups.setdefault(days, []).append(rs)
    if len(groups) <= 1:
        return [Part(payload, spans, next(iter(groups), default_days), request)]
    parts = []
    for days, resources in groups.items():
        part = ExportTraceServiceRequest()
        part.resource_spans.extend(resources)
        n = sum(len(ss.spans) for rs in resources for ss in rs.scope_spans)
        if n:
            parts.append(Part(part.SerializeToString(), n, days, part))
    return parts
