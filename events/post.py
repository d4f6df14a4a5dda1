"""One post of events: check each, give every ending event its start, build the spans, store.

Invalid events are set aside with what is wrong; the valid ones in the same post are stored all
the same (one request, so one group commit), and the outcome says which were which.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from events import ids
from events.schema import Event, EventInvalid, Problem, parse_event
from events.sink import SpanSink, Stored
from events.spans import Placed, markers_of, start_marker, timed, to_request
from events.starts import stored_starts
from warehouse import Warehouse

MAX_EVENTS = 1000  # per post


@dataclass(frozen=True)
class Refused:
    index: int
    problems: list[Problem]


@dataclass(frozen=True)
class Outcome:
    """Where each valid event went (by its index in the post) and what was wrong with the rest."""

    stored: list[tuple[int, Placed]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    receiver: Stored = field(default_factory=Stored)


def post_events(raw: Sequence[Any], tenant: str, reader: Warehouse, sink: SpanSink) -> Outcome:
    """Store the valid events of `raw` (JSON values) as `tenant`'s spans; raises
    events.sink.NotStored when none could be stored for now."""
    valid: list[tuple[int, Event]] = []
    refused: list[Refused] = []
    for i, item in enumerate(raw):
        try:
            valid.append((i, parse_event(item)))
        except EventInvalid as exc:
            refused.append(Refused(i, exc.problems))
    if not valid:
        return Outcome(refused=refused)
    events = timed([e for _, e in valid], time.time_ns())
    given = markers_of(events)
    missing = {
        (ids.trace_id(t.event.run_id), marker)
        for t in events
        if t.event.started_at is None
        and (marker := start_marker(t.event)) is not None
        and marker not in given
    }
    request, placed = to_request(events, stored_starts(reader, tenant, missing))
    stored = sink.store(request.SerializeToString(), tenant)
    return Outcome([(i, p) for (i, _), p in zip(valid, placed, strict=True)], refused, stored)
