"""Decode and validate an ExportTraceServiceRequest span by span, into columns.

Pure functions: no I/O, no shared state. A span with a bad id or bad times is refused alone
and counted; its neighbours are kept. The loop below is the receiver's hot path: it touches
each protobuf field once and appends straight into the column lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from receiver.anyvalue import to_map
from receiver.batch import Decoded, Rejection, SpanBatch

_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS = ("UNSET", "OK", "ERROR")
_MAX_NS = 2**63 - 1  # DateTime64(9) holds nanoseconds in an Int64: up to 2262-04-11
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
TENANT_ATTRIBUTE = "wrm.tenant.id"


@dataclass(frozen=True)
class DecodeLimits:
    max_attribute_bytes: int = 64 * 1024
    retention_days: int = 30
    default_tenant: str = "default"


def span_problem(span: Any) -> tuple[str, str] | None:
    """(kind, description) of the first thing wrong with a span, or None when it is valid."""
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    label = f"span {span.name[:80]!r}"
    if len(tid) != 16:
        return "trace_id length", f"{label}: trace_id is {len(tid)} bytes, expected 16"
    if tid == _ZERO_TRACE:
        return "trace_id zero", f"{label}: trace_id is all zeros"
    if len(sid) != 8:
        return "span_id length", f"{label}: span_id is {len(sid)} bytes, expected 8"
    if sid == _ZERO_SPAN:
        return "span_id zero", f"{label}: span_id is all zeros"
    if len(pid) not in (0, 8):
        return "parent_span_id length", f"{label}: parent_span_id is {len(pid)} bytes, expected 0 or 8"
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0:
        return "start zero", f"{label}: start_time_unix_nano is 0"
    if start > _MAX_NS or end > _MAX_NS:
        return "time range", f"{label}: a timestamp is past 2262-04-11, the largest storable"
    if end < start:
        return "end before start", f"{label}: end_time_unix_nano {end} is before start_time_unix_nano {start}"
    return None


def decode_request(request: Any, limits: DecodeLimits) -> Decoded:
    """Turn one OTLP trace request into a SpanBatch plus a count of refused spans."""
    batch = SpanBatch()
    (
        c_tenant, c_service, c_trace, c_span, c_parent, c_state, c_flags, c_name, c_kind,
        c_start, c_end, c_dur, c_scode, c_smsg, c_rattrs, c_rschema, c_rdropped,
        c_sname, c_sversion, c_sattrs, c_sschema, c_sdropped, c_attrs, c_dropped,
        c_ev_time, c_ev_name, c_ev_attrs, c_ev_dropped, c_ev_dropped_n,
        c_ln_trace, c_ln_span, c_ln_state, c_ln_flags, c_ln_attrs, c_ln_dropped, c_ln_dropped_n,
        c_cut, c_retention,
    ) = batch.columns  # fmt: skip
    limit = limits.max_attribute_bytes
    retention = limits.retention_days
    rejected = 0
    first: tuple[str, str] | None = None
    same = 0
    truncated = 0

    def refuse(problem: tuple[str, str], n: int = 1) -> None:
        nonlocal rejected, first, same
        rejected += n
        if first is None:
            first = problem
        if problem[0] == first[0]:
            same += n

    for rs in request.resource_spans:
        res_cut: list[str] = []
        resource = rs.resource
        r_attrs = to_map(resource.attributes, limit, "resource", res_cut)
        service = r_attrs.get("service.name", "")
        tenant = r_attrs.get(TENANT_ATTRIBUTE) or limits.default_tenant
        if not _TENANT_RE.match(tenant):
            n = sum(len(ss.spans) for ss in rs.scope_spans)
            refuse(("tenant", f"resource attribute {TENANT_ATTRIBUTE}={tenant[:80]!r} is not a tenant id"), n)
            continue
        r_schema, r_dropped = rs.schema_url, resource.dropped_attributes_count
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_cut = list(res_cut)
            s_attrs = to_map(scope.attributes, limit, "scope", scope_cut)
            s_name, s_version, s_schema = scope.name, scope.version, ss.schema_url
            s_dropped = scope.dropped_attributes_count
            for span in ss.spans:
                problem = span_problem(span)
                if problem is not None:
                    refuse(problem)
                    continue
                cut = list(scope_cut)
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                status = span.status
                c_tenant.append(tenant)
                c_service.append(service)
                c_trace.append(span.trace_id.hex())
                c_span.append(span.span_id.hex())
                c_parent.append(span.parent_span_id.hex())
                c_state.append(span.trace_state)
                c_flags.append(span.flags)
                c_name.append(span.name)
                c_kind.append(_KINDS[span.kind] if 0 <= span.kind < 6 else str(span.kind))
                c_start.append(start)
                c_end.append(end)
                c_dur.append(end - start)
                c_scode.append(_STATUS[status.code] if 0 <= status.code < 3 else str(status.code))
                c_smsg.append(status.message)
                c_rattrs.append(r_attrs)
                c_rschema.append(r_schema)
                c_rdropped.append(r_dropped)
                c_sname.append(s_name)
                c_sversion.append(s_version)
                c_sattrs.append(s_attrs)
                c_sschema.append(s_schema)
                c_sdropped.append(s_dropped)
                c_attrs.append(to_map(span.attributes, limit, "span", cut))
                c_dropped.append(span.dropped_attributes_count)
                events = span.events
                if events:
                    c_ev_time.append([e.time_unix_nano for e in events])
                    c_ev_name.append([e.name for e in events])
                    c_ev_attrs.append(
                        [to_map(e.attributes, limit, f"event[{i}]", cut) for i, e in enumerate(events)]
                    )
                    c_ev_dropped.append([e.dropped_attributes_count for e in events])
                else:
                    c_ev_time.append([])
                    c_ev_name.append([])
                    c_ev_attrs.append([])
                    c_ev_dropped.append([])
                c_ev_dropped_n.append(span.dropped_events_count)
                links = span.links
                if links:
                    c_ln_trace.append([ln.trace_id.hex() for ln in links])
                    c_ln_span.append([ln.span_id.hex() for ln in links])
                    c_ln_state.append([ln.trace_state for ln in links])
                    c_ln_flags.append([ln.flags for ln in links])
                    c_ln_attrs.append(
                        [to_map(ln.attributes, limit, f"link[{i}]", cut) for i, ln in enumerate(links)]
                    )
                    c_ln_dropped.append([ln.dropped_attributes_count for ln in links])
                else:
                    c_ln_trace.append([])
                    c_ln_span.append([])
                    c_ln_state.append([])
                    c_ln_flags.append([])
                    c_ln_attrs.append([])
                    c_ln_dropped.append([])
                c_ln_dropped_n.append(span.dropped_links_count)
                c_cut.append(cut)
                c_retention.append(retention)
                truncated += len(cut)
    rejection = Rejection(rejected, first[1], same) if first is not None else Rejection()
    return Decoded(batch=batch, rejected=rejection, truncated_values=truncated)
