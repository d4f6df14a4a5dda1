"""The ingest core as `POST /v1/events` sees it (events.SpanSink): the API may not import the
receiver, so the composition root hands it this."""

from __future__ import annotations

from events import NotStored, Stored
from receiver.core import IngestCore, deadline_after
from receiver.errors import Refused, Why

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
            raise NotStored(refused.message, refused.why.retryable, refused.why is Why.BACKPRESSURE) from None
        return Stored(accepted.rejected_spans, accepted.error_message)
