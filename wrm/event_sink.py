"""The ingest core as `POST /v1/events` sees it (events.SpanSink): the API may not import the
receiver, so the composition root hands it this."""

from __future__ import annotations

from events import NotStored, Stored
from events.sink import Kind
from receiver.core import IngestCore, deadline_after
from receiver.errors import Refused, Why

_KINDS: dict[Why, Kind] = {
    Why.BACKPRESSURE: "busy",
    Why.CLOSING: "closing",
    Why.POLICY: "policy",
    Why.STORE_TRANSIENT: "unavailable",
}  # the rest cannot come from spans the API built itself: a malformed one would be a bug
ANSWER_WITHIN_S = 10.0  # isolating spans the engine refuses stops before a caller's usual timeout


class CoreSink:
    def __init__(self, core: IngestCore) -> None:
        self.core = core

    def store(self, request: bytes, tenant: str) -> Stored:
        """Store as `tenant`'s spans, the tenant fixed as an ingest key fixes it (the API has
        already decided whose they are)."""
        try:
            accepted = self.core.export(request, tenant, deadline_after(ANSWER_WITHIN_S))
        except Refused as refused:
            raise NotStored(refused.message, _KINDS.get(refused.why, "broken")) from None
        return Stored(accepted.rejected_spans, accepted.error_message)
