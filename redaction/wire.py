"""Where each resource, scope and span lies in the canonical bytes of a trace request.

A skim of the protobuf wire format, three levels deep (ExportTraceServiceRequest →
ResourceSpans → ScopeSpans → Span), reading only tags and lengths: what redaction.otlp needs to
turn the offset of a trigger match into the span (or resource, or scope) that holds it,
without encoding each span again to search it on its own.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

Where = tuple[
    int, int, int
]  # (resource, scope, span); scope or span -1 for a resource's or scope's own fields


@dataclass(frozen=True)
class Regions:
    starts: list[int]
    ends: list[int]
    where: list[Where]

    index: dict[Where, int]  # region index by where it is

    def overlapping(self, start: int, end: int) -> list[int]:
        """The index of every region that shares a byte with [start, end)."""
        found: list[int] = []
        i = max(0, bisect_right(self.starts, start) - 1)
        while i < len(self.starts) and self.starts[i] < end:
            if self.ends[i] > start:
                found.append(i)
            i += 1
        return found


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(field number, value start, value end) of each length-delimited field in [start, end)."""
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        tag, pos = _varint(data, pos)
        kind = tag & 7
        if kind == 2:
            n, pos = _varint(data, pos)
            out.append((tag >> 3, pos, pos + n))
            pos += n
        elif kind == 0:
            _, pos = _varint(data, pos)
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {kind} at byte {pos}")
    return out


def regions(payload: bytes) -> Regions:
    """The regions of a canonical ExportTraceServiceRequest: each resource (its `resource` and
    `schema_url` fields), each scope (its `scope` and `schema_url`) and each span, in byte order;
    a resource's or scope's two regions share their `Where`."""
    starts: list[int] = []
    ends: list[int] = []
    where: list[Where] = []

    def add(s: int, e: int, w: Where) -> None:
        starts.append(s)
        ends.append(e)
        where.append(w)

    r = -1
    for field, s, e in _fields(payload, 0, len(payload)):
        if field != 1:
            continue
        r += 1
        sc = -1
        for rf, rs, re_ in _fields(payload, s, e):
            if rf in (1, 3):  # the resource, the schema URL
                add(rs, re_, (r, -1, -1))
            elif rf == 2:
                sc += 1
                i = -1
                for sf, ss, se in _fields(payload, rs, re_):
                    if sf in (1, 3):  # the scope, the schema URL
                        add(ss, se, (r, sc, -1))
                    elif sf == 2:
                        i += 1
                        add(ss, se, (r, sc, i))
    return Regions(starts, ends, where, {w: i for i, w in enumerate(where)})


def span_parts(
    payload: bytes, start: int, end: int, matches: list[tuple[int, int]]
) -> set[tuple[object, ...]]:
    """The parts of the span encoded in payload[start:end] that some match overlaps."""
    found: set[tuple[object, ...]] = set()

    def hit(s: int, e: int) -> bool:
        return any(ms < e and me > s for ms, me in matches)

    counts = {9: 0, 11: 0, 13: 0}
    for field, s, e in _fields(payload, start, end):
        n = counts.get(field, 0)
        if field in counts:
            counts[field] += 1
        if not hit(s, e):
            continue
        if field == 5:
            found.add(("name",))
        elif field == 3:
            found.add(("trace_state",))
        elif field == 15:
            found.add(("status",))
        elif field == 9:
            found.add(("attr", n))
        elif field in _MEMBERS:
            text_field, attr_field, text_part, attr_part = _MEMBERS[field]
            k = 0
            for mf, ms, me in _fields(payload, s, e):
                if mf == attr_field:
                    if hit(ms, me):
                        found.add((attr_part, n, k))
                    k += 1
                elif mf == text_field and hit(ms, me):
                    found.add((text_part, n))
    return found


# Span fields holding repeated messages with a string and attributes: events (11: name is 2,
# attributes 3) and links (13: trace_state is 3, attributes 4).
_MEMBERS = {11: (2, 3, "event_name", "event_attr"), 13: (3, 4, "link_state", "link_attr")}
