"""No-code events (`POST /v1/events`): run and step lifecycle events from tools that cannot emit
OTLP (n8n, Zapier, Make, cron scripts) become spans under the `wrm.*` conventions, with
deterministic ids, and are stored through the same ingest core as OTLP.

schema (what an event is, checked field by field) → spans (one span per event, ids) → starts
(the stored start of what an event ends) → post (one post, end to end) → sink (the ingest core,
handed in by `wrm`). Imports only `warehouse`.
"""

from events.post import MAX_EVENTS, Outcome, Refused, post_events
from events.schema import EVENT_TYPES, Event, Problem
from events.sink import NotStored, SpanSink, Stored

__all__ = [
    "EVENT_TYPES",
    "MAX_EVENTS",
    "Event",
    "NotStored",
    "Outcome",
    "Problem",
    "Refused",
    "SpanSink",
    "Stored",
    "post_events",
]
