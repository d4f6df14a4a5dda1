"""Redact a parsed OTLP trace request in place, before its canonical bytes go to the warehouse.

Reading every string of every span in Python would cost more than the rest of ingest allows, so
the work is narrowed in three steps. A tenant's `Redactor.trigger` is searched for in the whole
request's protobuf bytes (RE2, about 1 µs a span): most requests hold nothing and go on as they
are. Otherwise each resource, scope and span is serialized and searched on its own, and only
those that match are read string by string. Strings are contiguous UTF-8 in protobuf, and a
trigger has no anchors or word boundaries, so a span whose bytes do not match holds nothing a
rule would redact (the rules that cannot be checked this way set `Redactor.always`).

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

REDACTED_ATTRIBUTE = "wrm.redacted"
TENANT_ATTRIBUTE = "wrm.tenant.id"  # routes the resource's spans: never redacted


def redact_request(request: Any, payload: bytes, redactor_for: Callable[[Any], Redactor]) -> bool:
    """Redact `request` (an ExportTraceServiceRequest that `payload` encodes) in place, each
    ResourceSpans with `redactor_for(resource_spans)`. True when anything changed, so the
    caller encodes the request again."""
    resources = list(request.resource_spans)
    redactors = [redactor_for(rs) for rs in resources]
    distinct = {id(r): r for r in redactors}.values()
    if all(r.inert for r in distinct):
        return False
    if not any(r.always or r.trigger.search(payload) for r in distinct if not r.inert):
        return False
    changed = False
    for rs, redactor in zip(resources, redactors, strict=True):
        if not redactor.inert:
            changed |= _resource_spans(rs, redactor)
    return changed


def _hit(redactor: Redactor, message: Any) -> bool:
    return redactor.always or bool(redactor.trigger.search(message.SerializeToString()))


def _resource_spans(rs: Any, redactor: Redactor) -> bool:
    resource_tally: Counter[str] = Counter()
    if _hit(redactor, rs.resource):
        attributes(rs.resource.attributes, redactor, resource_tally, keep=TENANT_ATTRIBUTE)
    changed = bool(resource_tally)
    for ss in rs.scope_spans:
        scope_tally = resource_tally.copy()
        if _hit(redactor, ss.scope):
            scope_tally.update(_scope(ss.scope, redactor))
        changed |= scope_tally != resource_tally
        for span in ss.spans:
            tally = scope_tally.copy()
            if _hit(redactor, span):
                found = redact_span(span, redactor)
                if found is not None:
                    tally.update(found)
                    changed = True
            if tally:
                _record(span, tally)
    return changed


def _scope(scope: Any, redactor: Redactor) -> Counter[str]:
    tally: Counter[str] = Counter()
    for field in ("name", "version"):
        text = getattr(scope, field)
        if text:
            done = redactor.text(text, tally)
            if done != text:
                setattr(scope, field, done)
    attributes(scope.attributes, redactor, tally)
    return tally


def redact_span(span: Any, redactor: Redactor) -> Counter[str] | None:
    """Redact one Span; what was found, or None when it held nothing (a sender's `wrm.redacted`
    removed still counts as a change)."""
    tally: Counter[str] = Counter()
    removed = _strip_record(span.attributes)
    for field in ("name", "trace_state"):
        text = getattr(span, field)
        if text:
            done = redactor.text(text, tally)
            if done != text:
                setattr(span, field, done)
    attributes(span.attributes, redactor, tally)
    if span.status.message:
        done = redactor.text(span.status.message, tally)
        if done != span.status.message:
            span.status.message = done
    for event in span.events:
        if event.name:
            done = redactor.text(event.name, tally)
            if done != event.name:
                event.name = done
        attributes(event.attributes, redactor, tally)
    for link in span.links:
        if link.trace_state:
            done = redactor.text(link.trace_state, tally)
            if done != link.trace_state:
                link.trace_state = done
        attributes(link.attributes, redactor, tally)
    return tally if (tally or removed) else None


def _strip_record(kvs: Any) -> bool:
    stale = [i for i, kv in enumerate(kvs) if kv.key == REDACTED_ATTRIBUTE]
    for i in reversed(stale):
        del kvs[i]
    return bool(stale)


def _record(span: Any, tally: Counter[str]) -> None:
    _strip_record(span.attributes)
    kv = span.attributes.add()
    kv.key = REDACTED_ATTRIBUTE
    kv.value.string_value = json.dumps(dict(sorted(tally.items())), separators=(",", ":"))


def attributes(kvs: Any, redactor: Redactor, tally: Counter[str], keep: str = "") -> None:
    """Redact repeated KeyValue in place, removing what a drop rule matches."""
    dropped: list[int] = []
    for i, kv in enumerate(kvs):
        if kv.key == keep:
            continue
        if _key_value(kv, redactor, tally) is DROPPED:
            dropped.append(i)
    for i in reversed(dropped):
        del kvs[i]


def _key_value(kv: Any, redactor: Redactor, tally: Counter[str]) -> object:
    rule = redactor.key_rule(kv.key)
    value = kv.value
    if rule is not None and rule.within is None:
        if rule.action == "drop":
            tally[rule.name] += 1
            return DROPPED
        kind = value.WhichOneof("value")
        if kind == "string_value":
            value.string_value = redactor.whole(rule, value.string_value, tally)
            return None
        if rule.action != "truncate":
            text = redactor.whole(rule, render(plain(value)), tally)
            value.Clear()
            value.string_value = text
            return None
    return _any_value(value, redactor, rule.within if rule is not None else None, tally)


def _any_value(value: Any, redactor: Redactor, within: Any, tally: Counter[str]) -> object:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        done = redactor._plain(text, within, tally)
        if done is DROPPED:
            return DROPPED
        if done != text:
            value.string_value = done
    elif kind == "array_value":
        for item in value.array_value.values:
            if _any_value(item, redactor, within, tally) is DROPPED:
                return DROPPED
    elif kind == "kvlist_value":
        attributes(value.kvlist_value.values, redactor, tally)  # as a mapping: drops its own keys
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
