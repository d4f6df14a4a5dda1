"""Where events' spans go: the ingest core, handed in by the composition root (`wrm`), so the
API does not import the receiver. Spans from events are screened, redacted and group-committed
like any OTLP request; `store` returns only once they are stored.

    NotStored(kind)      nothing was stored; the kinds, retryable but the last:
      busy               too much is waiting to be stored (429)
      closing            the server is stopping (503)
      policy             the tenant's stored redaction policy cannot be applied (503)
      unavailable        the warehouse failed in a way that passes (503)
      broken             the warehouse refused the rows for good (500)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Stored:
    """Spans the receiver's checks refused one by one (none, for spans built from valid events,
    unless a redaction rule or limit says otherwise), and why."""

    rejected_spans: int = 0
    message: str = ""


Kind = Literal["busy", "closing", "policy", "unavailable", "broken"]


class NotStored(Exception):
    def __init__(self, message: str, kind: Kind) -> None:
        super().__init__(message)
        self.kind = kind


class SpanSink(Protocol):
    def store(self, request: bytes, tenant: str) -> Stored:
        """Store an ExportTraceServiceRequest (protobuf) as `tenant`'s; raises NotStored."""
        ...
