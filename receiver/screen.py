"""Screen a parsed OTLP request span by span: refuse bad spans, keep the rest as protobuf bytes.

The receiver does not decode attributes in Python: the warehouse parses the request bytes
(sql/004_otlp_landing.sql). Python only reads the few fields that decide whether a span can be
stored (ids, times) and the tenant of each resource.

What the warehouse reads is always the parsed message re-encoded canonically, with unknown
fields dropped — never the exporter's own bytes. The engine's Protobuf reader does not read
every valid encoding as protobuf does: fuzzing found a duplicated singular field (legal
protobuf: the last one wins) stored as an empty value, so a span with an empty span_id that
this screen never saw; unknown fields that made it skip a span or take another's trace id; a
bool sent as varint 106 refused. So the one decoder is protobuf's, and the engine only ever
reads the canonical encoding of what was screened, which it reads as protobuf does. It costs
≈ 4.4 µs a span (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warehouse.tenants import TENANT_RE

_MAX_NS = 2**63 - 1  # DateTime64(9) holds nanoseconds in an Int64: up to 2262-04-11
# Retention is computed as DateTime (seconds in a UInt32, up to 2106-02-07) plus up to 3,650
# days; a later start would wrap and the row be dropped by its TTL as soon as it is written.
_MAX_START_NS = 3_976_214_400 * 1_000_000_000  # 2096-01-01T00:00:00Z
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
TENANT_ATTRIBUTE = "wrm.tenant.id"


@dataclass(frozen=True)
class Rejection:
    """Why spans of a request were refused: the first problem, how many spans had it, and the total."""

    count: int = 0
    first_problem: str = ""
    same_problem: int = 0

    def message(self) -> str:
        if self.count == 0:
            return ""
        plural = "s" if self.same_problem != 1 else ""
        text = f"{self.first_problem} ({self.same_problem} span{plural} had this problem"
        others = self.count - self.same_problem
        if others:
            text += f"; {others} more rejected for other reasons"
        return text + ")"

    def plus(self, other: Rejection) -> Rejection:
        """Both rejections as one: the first problem stays first."""
        if not self.count or not other.count:
            return self if self.count else other
        same = self.same_problem + (other.same_problem if other.first_problem == self.first_problem else 0)
        return Rejection(self.count + other.count, self.first_problem, same)


@dataclass(frozen=True)
class Screened:
    """What to store (protobuf bytes of an ExportTraceServiceRequest) and what was refused."""

    payload: bytes
    spans: int
    rejected: Rejection


def span_problem(span: Any, clean: Callable[[str], str] = str) -> tuple[str, str] | None:
    """(kind, description) of the first thing wrong with a span, or None when it is valid.
    `clean` redacts the span's name before a description quotes it (receiver.redact)."""
    problem = _problem(span)
    if problem is None:
        return None
    kind, description = problem
    return kind, f"span {clean(span.name)[:80]!r}: {description}"


def _problem(span: Any) -> tuple[str, str] | None:
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    if len(tid) != 16:
        return "trace_id length", f"trace_id is {len(tid)} bytes, expected 16"
    if tid == _ZERO_TRACE:
        return "trace_id zero", "trace_id is all zeros"
    if len(sid) != 8:
        return "span_id length", f"span_id is {len(sid)} bytes, expected 8"
    if sid == _ZERO_SPAN:
        return "span_id zero", "span_id is all zeros"
    if len(pid) not in (0, 8):
        return "parent_span_id length", f"parent_span_id is {len(pid)} bytes, expected 0 or 8"
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0:
        return "start zero", "start_time_unix_nano is 0"
    if start > _MAX_NS or end > _MAX_NS:
        return "time range", "a timestamp is past 2262-04-11, the largest storable"
    if start >= _MAX_START_NS:
        return (
            "start too late",
            "start_time_unix_nano is after 2096-01-01, past which retention cannot be kept",
        )
    if end < start:
        return (
            "end before start",
            f"end_time_unix_nano {end} is before start_time_unix_nano {start}",
        )
    return None


def resource_tenant(resource: Any) -> str | None:
    """The resource's `wrm.tenant.id`, or None when it names none."""
    for kv in resource.attributes:
        if kv.key == TENANT_ATTRIBUTE:
            return str(kv.value.string_value)
    return None


def _tenant_problem(resource: Any, clean: Callable[[str], str]) -> tuple[str, str] | None:
    tenant = resource_tenant(resource)
    if tenant is not None and not TENANT_RE.match(tenant):
        return "tenant", f"resource attribute {TENANT_ATTRIBUTE}={clean(tenant)[:80]!r} is not a tenant id"
    return None


def screen_request(
    request: Any, *, tenant_fixed: bool = False, cleaner: Callable[[Any], Callable[[str], str]] | None = None
) -> Screened:
    """Refuse invalid spans (and resources with a malformed tenant); count the rest; encode
    what is left canonically (see the module docstring for why never the exporter's bytes).

    `tenant_fixed`: the sender's key decides the tenant, so `wrm.tenant.id` is not read and a
    malformed one refuses nothing. `cleaner(resource_spans)`: what redacts the text a refusal
    quotes from that resource's spans (its tenant's rules), so no secret is echoed."""
    rejected = same = accepted = 0
    first: tuple[str, str] | None = None

    def refuse(problem: tuple[str, str], n: int) -> None:
        nonlocal rejected, first, same
        rejected += n
        first = first or problem
        if problem[0] == first[0]:
            same += n

    resource_spans = request.resource_spans
    dropped_resources: list[int] = []
    for r, rs in enumerate(resource_spans):
        clean = cleaner(rs) if cleaner is not None else str
        problem = None if tenant_fixed else _tenant_problem(rs.resource, clean)
        if problem is not None:
            refuse(problem, sum(len(ss.spans) for ss in rs.scope_spans))
            dropped_resources.append(r)
            continue
        for ss in rs.scope_spans:
            spans = ss.spans
            bad: list[int] = []
            for i, span in enumerate(spans):
                problem = span_problem(span, clean)
                if problem is not None:
                    refuse(problem, 1)
                    bad.append(i)
            for i in reversed(bad):
                del spans[i]
            accepted += len(spans)
    for r in reversed(dropped_resources):
        del resource_spans[r]
    request.DiscardUnknownFields()
    payload = request.SerializeToString()
    rejection = Rejection(rejected, first[1], same) if first is not None else Rejection()
    return Screened(payload=payload, spans=accepted, rejected=rejection)
