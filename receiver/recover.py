"""Store what the engine refused for good: isolate the spans it refuses, store the rest.

The engine reads the canonical encoding of the screened request (receiver.screen), so it never
refuses how a request is encoded. It can still refuse what one holds (REFUSED_DATA_CODES: a
value it cannot convert, a CHECK constraint an operator put on a table): then the request is
bisected by span, so every span it can store is stored and the rest are reported one by one.
Any other permanent refusal (a missing table, a broken view) is the warehouse's, not the
request's: it is raised, not bisected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.screen import Rejection
from warehouse.errors import WarehouseRejected

log = logging.getLogger(__name__)

# ClickHouse error codes that mean "this data cannot be read, converted or accepted", so the
# request (or one span of it), not the warehouse, is at fault.
REFUSED_DATA_CODES: frozenset[int] = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        407,  # DECIMAL_OVERFLOW
        436,  # PROTOBUF_BAD_CAST
        437,  # PROTOBUF_FIELD_NOT_REPEATED
        438,  # DATA_TYPE_CANNOT_BE_PROMOTED
        441,  # CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
        444,  # UNKNOWN_PROTOBUF_FORMAT
        469,  # VIOLATED_CONSTRAINT (a CHECK constraint an operator put on a table)
    }
)
MAX_ISOLATION_INSERTS = 32  # bisecting one bad span out of 2**16 takes 32 inserts

# Stores one request's bytes holding `spans` spans, waiting until stored; raises WarehouseError.
Store = Callable[[bytes, int], None]
_Where = tuple[int, int, int]  # (resource, scope, span) index in the message


@dataclass(frozen=True)
class Recovery:
    """What became of a refused request: how it was stored and which spans the engine refused."""

    how: str  # "isolated"
    refused: Rejection


def data_refused(exc: WarehouseRejected) -> bool:
    return exc.code in REFUSED_DATA_CODES


def recover(
    store: Store, message: Any, refusal: WarehouseRejected, deadline: float | None = None
) -> Recovery:
    """Store what the engine takes of `message`, an ExportTraceServiceRequest whose canonical
    bytes it refused for good with `refusal`.

    `deadline` (time.monotonic()) is when the answer must go out: the exporter gives up on a
    request at its own timeout and retries it, which would repeat all this work. Isolation stops
    there, and the spans not yet isolated are reported refused rather than the answer being late.
    Raises WarehouseRejected when the warehouse, not the data, refuses it, and whatever `store`
    raises for a transient failure."""
    if not data_refused(refusal):
        raise refusal
    log.warning("the engine refused what a request holds (code %s); isolating its spans", refusal.code)
    return Recovery("isolated", _isolate(store, message, deadline))


def _isolate(store: Store, message: Any, deadline: float | None) -> Rejection:
    where = [
        (r, s, i)
        for r, rs in enumerate(message.resource_spans)
        for s, ss in enumerate(rs.scope_spans)
        for i in range(len(ss.spans))
    ]
    pending = list(_halves(where))
    refused: list[tuple[_Where, str]] = []
    inserts = 0
    while pending:
        group = pending.pop()
        if inserts >= MAX_ISOLATION_INSERTS:
            refused += [(w, "not isolated: too many spans of this request were refused") for w in group]
            continue
        if deadline is not None and time.monotonic() >= deadline:
            refused += [(w, "not isolated before the exporter's deadline") for w in group]
            continue
        inserts += 1
        try:
            store(subset(message, group).SerializeToString(), len(group))
        except WarehouseRejected as exc:
            if not data_refused(exc):
                raise
            if len(group) == 1:
                refused.append((group[0], f"the warehouse refuses it (ClickHouse code {exc.code})"))
            else:
                pending += _halves(group)
    return _rejection(message, refused)


def _halves(group: Sequence[_Where]) -> list[list[_Where]]:
    mid = (len(group) + 1) // 2
    return [list(g) for g in (group[:mid], group[mid:]) if g]


def subset(message: Any, group: Sequence[_Where]) -> ExportTraceServiceRequest:
    """A request with only the spans at `group`, under copies of their resources and scopes."""
    out = ExportTraceServiceRequest()
    chosen: dict[int, dict[int, list[int]]] = {}
    for r, s, i in group:
        chosen.setdefault(r, {}).setdefault(s, []).append(i)
    for r, scopes in chosen.items():
        src = message.resource_spans[r]
        rs = out.resource_spans.add(schema_url=src.schema_url)
        rs.resource.CopyFrom(src.resource)
        for s, indices in scopes.items():
            src_ss = src.scope_spans[s]
            ss = rs.scope_spans.add(schema_url=src_ss.schema_url)
            ss.scope.CopyFrom(src_ss.scope)
            ss.spans.extend(src_ss.spans[i] for i in indices)
    return out


def _rejection(message: Any, refused: list[tuple[_Where, str]]) -> Rejection:
    """The most common reason leads the message, so it says what happened to most spans."""
    if not refused:
        return Rejection()
    reasons = [why for _, why in refused]
    commonest = max(dict.fromkeys(reasons), key=reasons.count)
    (r, s, i), why = next(item for item in refused if item[1] == commonest)
    name = message.resource_spans[r].scope_spans[s].spans[i].name
    same = sum(1 for _, w in refused if w == why)
    return Rejection(len(refused), f"span {name[:80]!r}: {why}", same)
