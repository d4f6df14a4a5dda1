"""Redact a parsed OTLP trace request in place, before its canonical bytes go to the warehouse.

Reading every string of every span in Python would cost more than the rest of ingest allows, so
the work is narrowed first. A tenant's `Redactor.trigger` is searched for in the request's
canonical protobuf bytes (RE2, about 1 µs a span): most requests hold nothing and go on as
they are. Each match is then placed in the span (or resource, or scope) whose bytes it overlaps
(redaction.wire), and only those are read string by string. Strings are contiguous UTF-8 in
protobuf and a trigger has no anchors or word boundaries, so a string a rule would redact
always holds a trigger match, and some match the search reports overlaps it (the search moves
left to right, so it cannot step over it). Rules that cannot be checked this way set
`Redactor.always`: every span of that tenant is read.

A span that lost anything gets `wrm.redacted`: a JSON object of rule name → how many values
(its own, its events' and links', and its resource's and scope's, which its row carries too).
Never a value. A sender's own `wrm.redacted` is removed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from redaction.redactor import DROPPED, Redactor, render
from redaction.wire import Regions, regions, span_parts

REDACTED_ATTRIBUTE = "wrm.redacted"
_REDACTED_KEY = b"\x0a\x0cwrm.redacted\x12"  # the key as a KeyValue encodes it (field 1, 12 bytes)
TENANT_ATTRIBUTE = "wrm.tenant.id"  # routes the resource's spans: never redacted


def redact_request(
    request: Any, payload: bytes, redactor_for: Callable[[Any], Redactor], routed: bool = True
) -> bool:
    """Redact `request` (an ExportTraceServiceRequest whose canonical encoding is `payload`) in
    place, each ResourceSpans with `redactor_for(resource_spans)`. True when anything changed,
    so the caller encodes the request again. `routed`: the resources' `wrm.tenant.id` decides
    their tenant, so it is left as it is (else, a key fixing the tenant, it is redacted too)."""
    resources = list(request.resource_spans)
    redactors = [redactor_for(rs) for rs in resources]
    distinct = list({id(r): r for r in redactors}.values())
    if all(r.inert for r in distinct):  # nothing to redact, but a sender's wrm.redacted still goes
        return _REDACTED_KEY in payload and _strip_everywhere(resources)
    # What to read, per resource: None for everything, else the regions a trigger match overlaps
    # with those matches ((-1, -1): the resource; (scope, -1): a scope; (scope, span): a span).
    hits: dict[int, dict[tuple[int, int], list[tuple[int, int]]] | None] = {}
    layout: Regions | None = None
    for redactor in distinct:
        if redactor.inert:
            continue
        mine = [r for r, each in enumerate(redactors) if each is redactor]
        if redactor.always:
            hits.update({r: None for r in mine})
            continue
        matches = [m.span() for m in redactor.trigger.finditer(payload)]
        if not matches:
            continue
        layout = layout or regions(payload)
        own = set(mine)
        for start, end in matches:
            for index in layout.overlapping(start, end):
                r, sc, i = layout.where[index]
                found = hits.setdefault(r, {}) if r in own else None
                if found is not None:
                    found.setdefault((sc, i), []).append((start, end))
    changed = False
    quiet = [rs for rs, each in zip(resources, redactors, strict=True) if each.inert]
    if quiet and _REDACTED_KEY in payload:  # a sender's wrm.redacted goes where nothing else does
        changed = _strip_everywhere(quiet)
    keep = TENANT_ATTRIBUTE if routed else None
    for r, found in hits.items():
        spans = None
        if found is not None:
            assert layout is not None
            spans = {where: _parts(payload, layout, r, where, ranges) for where, ranges in found.items()}
        changed |= _resource_spans(resources[r], redactors[r], spans, keep)
    return changed


def _parts(
    payload: bytes, layout: Regions, r: int, where: tuple[int, int], ranges: list[tuple[int, int]]
) -> set[tuple[object, ...]] | None:
    """For a span, the parts of it the matches overlap; None (all of it) for a resource or scope."""
    if where[1] < 0:
        return None
    index = layout.index[(r, *where)]
    return span_parts(payload, layout.starts[index], layout.ends[index], ranges)


def _resource_spans(
    rs: Any,
    redactor: Redactor,
    hits: dict[tuple[int, int], set[tuple[object, ...]] | None] | None,
    keep: str | None = TENANT_ATTRIBUTE,
) -> bool:
    """Redact what `hits` names (see redact_request; for a span, the parts to read), or
    everything when it is None."""
    resource_tally: Counter[str] = Counter()
    changed = False
    if hits is None or (-1, -1) in hits:
        changed = attributes(rs.resource.attributes, redactor, resource_tally, keep=keep)
        changed |= _text_field(rs, "schema_url", redactor, resource_tally)
    changed |= bool(resource_tally)
    for sc, ss in enumerate(rs.scope_spans):
        scope_tally = resource_tally.copy()
        if hits is None or (sc, -1) in hits:
            in_scope, spoofed = _scope(ss.scope, redactor)
            scope_tally.update(in_scope)
            changed |= spoofed | _text_field(ss, "schema_url", redactor, scope_tally)
        changed |= scope_tally != resource_tally
        spans = ss.spans
        # Only the spans hit need reading, unless the resource or scope lost something, which
        # every span of the scope then records.
        chosen = (
            range(len(spans))
            if hits is None or scope_tally
            else sorted(i for s, i in hits if s == sc and i >= 0)
        )
        for i in chosen:
            span = spans[i]
            tally = scope_tally.copy()
            if hits is None or (sc, i) in hits:
                found = redact_span(span, redactor, None if hits is None else hits[(sc, i)])
                if found is not None:
                    tally.update(found)
                    changed = True
            if tally:
                _record(span, tally)
    return changed


def _text_field(message: Any, field: str, redactor: Redactor, tally: Counter[str]) -> bool:
    """Redact one string field of a message in place; True when it changed."""
    text = getattr(message, field)
    if not text:
        return False
    done = redactor.text(text, tally)
    if done == text:
        return False
    setattr(message, field, done)
    return True


def _scope(scope: Any, redactor: Redactor) -> tuple[Counter[str], bool]:
    """What a scope held, and whether a sender's `wrm.redacted` was removed from it."""
    tally: Counter[str] = Counter()
    for field in ("name", "version"):
        _text_field(scope, field, redactor, tally)
    spoofed = attributes(scope.attributes, redactor, tally)
    return tally, spoofed


def redact_span(
    span: Any, redactor: Redactor, parts: set[tuple[object, ...]] | None = None
) -> Counter[str] | None:
    """Redact one Span, or only its `parts` (redaction.wire.span_parts); what was found, or
    None when it held nothing (a sender's `wrm.redacted` removed still counts as a change)."""
    tally: Counter[str] = Counter()

    def wanted(*part: object) -> bool:
        return parts is None or part in parts

    for field in ("name", "trace_state"):
        if wanted(field):
            _text_field(span, field, redactor, tally)
    removed = attributes(
        span.attributes, redactor, tally, only=None if parts is None else _indices(parts, "attr")
    )
    if wanted("status"):
        _text_field(span.status, "message", redactor, tally)
    for members, text, text_part, attr_part in (
        (span.events, "name", "event_name", "event_attr"),
        (span.links, "trace_state", "link_state", "link_attr"),
    ):
        for n, member in enumerate(members):
            if wanted(text_part, n):
                _text_field(member, text, redactor, tally)
            only = None if parts is None else _indices(parts, attr_part, n)
            if only is None or only:
                removed |= attributes(member.attributes, redactor, tally, only=only)
    return tally if (tally or removed) else None


def _indices(parts: set[tuple[object, ...]], kind: str, *within: int) -> set[int]:
    """The attribute indices `parts` names of one kind (and event or link)."""
    n = len(within)
    return {int(p[-1]) for p in parts if p[0] == kind and p[1 : 1 + n] == within}  # type: ignore[call-overload]


def _strip_everywhere(resources: list[Any]) -> bool:
    """Remove a sender's `wrm.redacted` wherever a record could be (a policy that redacts nothing)."""
    stripped = False
    for rs in resources:
        stripped |= _strip_record(rs.resource.attributes)
        for ss in rs.scope_spans:
            stripped |= _strip_record(ss.scope.attributes)
            for span in ss.spans:
                stripped |= _strip_record(span.attributes)
                for item in (*span.events, *span.links):
                    stripped |= _strip_record(item.attributes)
    return stripped


def _strip_record(kvs: Any) -> bool:
    stale = [i for i, kv in enumerate(kvs) if kv.key == REDACTED_ATTRIBUTE and kv.HasField("value")]
    for i in reversed(stale):
        del kvs[i]
    return bool(stale)


def _record(span: Any, tally: Counter[str]) -> None:
    _strip_record(span.attributes)
    kv = span.attributes.add()
    kv.key = REDACTED_ATTRIBUTE
    kv.value.string_value = json.dumps(dict(sorted(tally.items())), separators=(",", ":"))


def attributes(
    kvs: Any,
    redactor: Redactor,
    tally: Counter[str],
    keep: str | None = None,
    only: set[int] | None = None,
    record: bool = True,
) -> bool:
    """Redact repeated KeyValue in place (those at indices `only`, or all), removing what a
    drop rule matches and, where a record could be (`record`: not inside a key-value list), any
    `wrm.redacted` a sender set; True when one was removed. `keep`: a key left as it is."""
    dropped: list[int] = []
    spoofed = False
    for i in sorted(only) if only is not None else range(len(kvs)):
        kv = kvs[i]
        if kv.key == keep:
            continue
        if record and kv.key == REDACTED_ATTRIBUTE and kv.HasField("value"):
            dropped.append(i)
            spoofed = True
        elif _key_value(kv, redactor, tally) is DROPPED:
            dropped.append(i)
    for i in reversed(dropped):
        del kvs[i]
    return spoofed


def _key_value(kv: Any, redactor: Redactor, tally: Counter[str]) -> object:
    value = kv.value
    kind = value.WhichOneof("value")
    if kind is None:
        return None  # no value: nothing to redact (and no value tag for a trigger to see)
    match = redactor.key_match(kv.key)
    whole = match.whole
    if whole is not None:
        if whole.action == "drop":
            tally[whole.name] += 1
            return DROPPED
        if kind == "string_value":
            text = value.string_value
            if whole.action == "truncate":
                text = redactor.within(text, match.withins, tally)
                if text is DROPPED:
                    return DROPPED
            value.string_value = redactor.whole(whole, text, tally)
            return None
        if whole.action != "truncate":
            text = redactor.whole(whole, render(plain(value)), tally)
            value.Clear()
            value.string_value = text
            return None
    return _any_value(value, redactor, match.withins, tally)


def _any_value(value: Any, redactor: Redactor, withins: Any, tally: Counter[str]) -> object:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bytes_value"):
        given = getattr(value, kind)
        done = redactor.apply(given, withins, tally)
        if done is DROPPED:
            return DROPPED
        if done != given:
            setattr(value, kind, done)
    elif kind == "array_value":
        for item in value.array_value.values:
            if _any_value(item, redactor, withins, tally) is DROPPED:
                return DROPPED
    elif kind == "kvlist_value":
        attributes(value.kvlist_value.values, redactor, tally, record=False)  # as a mapping
    return None


def plain(value: Any) -> Any:
    """An AnyValue as a plain Python value (what `Redactor.value` and `render` take)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attribute_mapping(kvs: Any) -> Mapping[str, Any]:
    return {kv.key: plain(kv.value) for kv in kvs}
