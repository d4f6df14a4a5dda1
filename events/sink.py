"""Where events' spans go: the ingest core, handed in by the composition root (`wrm`), so the
API does not import the receiver. Spans from events are screened, redacted and group-committed
like any OTLP request; `store` returns only once they are stored.

    NotStored            nothing was stored
      .retryable False   the same post would fail again (a broken table)
      .retryable True    retry later: `.busy` when too much is waiting to be stored (429),
                         else the server is stopping or the warehouse failed for a while (503)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Stored:
    """Spans the receiver's checks refused one by one (none, for spans built from valid events,
    unless a redaction rule or limit says otherwise), and why."""

    rejected_spans: int = 0
    message: str = ""


class NotStored(Exception):
    def __init__(self, message: str, retryable: bool, busy: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.busy = busy


class SpanSink(Protocol):
    def store(self, request: bytes, tenant: str) -> Stored:
        """Store an ExportTraceServiceRequest (protobuf) as `tenant`'s; raises NotStored."""
        ...
