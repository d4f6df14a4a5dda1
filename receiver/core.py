"""The ingest core both OTLP transports (gRPC, HTTP) and the no-code event API hand requests to:
check the key, parse, screen, redact, split by tenant retention, group commit, answer.

One core, so a span means the same whichever way it came: the same limits, tenant and key rules,
redaction and acknowledgement (a request is answered only once its rows are stored). Transports
turn a `Refused` into their own status codes (receiver.errors) and an `Accepted` into
ExportTraceServiceResponse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NoReturn

from access import Authenticator, Forbidden, Role, Unauthenticated
from receiver.config import ReceiverConfig
from receiver.envelope import EnvelopeFields
from receiver.errors import Refused, Why
from receiver.parse import MalformedRequest, parse_request
from receiver.recover import recover
from receiver.redact import IngestRedaction
from receiver.screen import Rejection, screen_request
from receiver.spool import SpooledWriter
from receiver.spool_log import SpoolLog
from receiver.stats import ReceiverStats
from receiver.tenancy import Part, split_by_retention
from receiver.writer import Backpressure, GroupWriter, WriterClosed
from redaction.policy import PolicyError
from warehouse.errors import WarehouseRejected, classify

log = logging.getLogger(__name__)

ANSWER_MARGIN_S = 1.0  # isolating refused spans stops this long before the client's deadline


@dataclass(frozen=True)
class Accepted:
    """What the client is told of a stored request: spans refused one by one, and why."""

    rejected_spans: int = 0
    error_message: str = ""


class IngestCore:
    """Owns the group-commit writer; every transport's requests go through `export`."""

    def __init__(
        self,
        config: ReceiverConfig,
        sinks: Sequence[Callable[[bytes], None]],
        on_commit: Callable[[int], None] = lambda stamp: None,
        stamps_after: int = 0,
        authenticator: Authenticator | None = None,
        redaction: IngestRedaction | None = None,
        spool: SpoolLog | None = None,
    ) -> None:
        """`sinks`: one per writer thread, each storing framed requests (receiver.store);
        `stamps_after`: the greatest `ingested_at` stamp already stored (see GroupWriter);
        `authenticator`: who may send spans, and for which tenant (None: anyone, as sent);
        `redaction`: the tenants' redaction rules (None: spans are stored as sent); `spool`: answer
        once spooled there (receiver.spool), None: once stored."""
        self.config = config
        self.authenticator = authenticator
        self.redaction = redaction
        self.stats = ReceiverStats()
        self.closing = False
        spooled = spool is not None
        writer = GroupWriter(
            sinks,
            self.stats,
            EnvelopeFields(
                retention_days=config.retention_days,
                default_tenant=config.default_tenant,
                max_attribute_bytes=config.max_attribute_bytes,
            ),
            # Behind the spool the queue only needs a full flush waiting for each writer.
            max_pending_spans=2 * config.flush_max_spans if spooled else config.queue_max_spans,
            flush_max_spans=config.flush_max_spans,
            flush_interval_s=config.flush_interval_s,
            on_commit=on_commit,
            stamps_after=stamps_after,
            report_queue=not spooled,
        )
        self._writer: GroupWriter | SpooledWriter = writer
        if spool is not None:
            self._writer = SpooledWriter(
                spool,
                writer,
                self.stats,
                max_backlog_spans=config.spool_max_spans,
                default_days=config.retention_days,
            )

    def close(self) -> None:
        """Store everything accepted; refuse (CLOSING) what comes after."""
        self.closing = True
        self._writer.close()

    def key_tenant(self, key: str | None) -> str:
        """The tenant the caller's key fixes for every span it sends; "" when none does (no key
        while auth is off, or the platform admin's key). Checked before a body is read."""
        if self.authenticator is None:
            return ""
        try:
            principal = self.authenticator.authorize(key, Role.INGEST)
        except Unauthenticated as exc:
            self.refuse(Why.UNAUTHENTICATED, str(exc))
        except Forbidden as exc:
            self.refuse(Why.FORBIDDEN, str(exc))
        return principal.tenant or "" if principal is not None else ""

    def refuse(self, why: Why, message: str) -> NoReturn:
        """Count the request under `why` and raise it as Refused."""
        self.stats.requests.labels(why.value).inc()
        raise Refused(why, message)

    def export(
        self, data: bytes, key_tenant: str, deadline: float | None = None, escaped: bool = False
    ) -> Accepted:
        """Store one ExportTraceServiceRequest (protobuf bytes) and say what was refused span by
        span; raises Refused when nothing may be acknowledged. `deadline`: time.monotonic() by
        which the client stops waiting (None: no deadline); `escaped`: the transport already
        escaped invalid text (OTLP JSON's lone surrogates), to be said in the answer."""
        if self.closing:
            self.refuse(Why.CLOSING, "the server is stopping; retry")
        if self._writer.full():
            self.refuse(Why.BACKPRESSURE, "too many spans are waiting to be stored; retry later")
        try:
            request, repaired = parse_request(data)
        except MalformedRequest as exc:
            self.refuse(Why.MALFORMED, str(exc))
        redaction = self.redaction
        cleaner = redaction.cleaner(key_tenant) if redaction is not None else None
        try:
            screened = screen_request(request, tenant_fixed=bool(key_tenant), cleaner=cleaner)
            if redaction is not None:
                screened = redaction.apply(request, screened, key_tenant)
        except PolicyError as exc:  # never store what the tenant's rules could not see
            self.refuse(Why.POLICY, f"{exc}; retry later")
        refused = Rejection()
        if screened.spans:
            parts = split_by_retention(
                request,
                screened.payload,
                screened.spans,
                default_tenant=self.config.default_tenant,
                default_days=self.config.retention_days,
                days_by_tenant=self.config.tenant_retention_days,
                key_tenant=key_tenant,
            )
            refused = self._store(parts, deadline)
        rejected = screened.rejected
        count = rejected.count + refused.count
        if count:
            self.stats.spans_rejected.inc(count)
        self.stats.requests.labels("partial" if count else "ok").inc()
        notes = [r.message() for r in (rejected, refused) if r.count]
        if escaped or repaired:
            notes.append("invalid UTF-8 in string fields was stored escaped as \\xNN")
        return Accepted(count if notes else 0, "; ".join(notes))

    def _store(self, parts: Sequence[Part], deadline: float | None) -> Rejection:
        """Queue every part (one, unless tenants with different retention share the request),
        then answer once all are stored. If back-pressure refuses a later part, the earlier ones
        still land and the exporter's retry sends them again: duplicates that collapse. Returns
        the spans the engine refused to read (receiver.recover)."""
        futures_: list[Future[None]] = []
        try:
            for part in parts:
                futures_.append(
                    self._writer.submit(part.payload, part.spans, part.retention_days, part.key_tenant)
                )
            refused = Rejection()
            for part, future in zip(parts, futures_, strict=True):
                try:
                    future.result()
                except WarehouseRejected as refusal:
                    refused = refused.plus(self._recover(part, refusal, deadline))
            return refused
        except Backpressure as exc:
            self.refuse(Why.BACKPRESSURE, str(exc))
        except WriterClosed as exc:
            self.refuse(Why.CLOSING, str(exc))
        except Exception as exc:
            error = classify(exc)
            if isinstance(error, WarehouseRejected):
                log.error("spans refused for good by the warehouse (code %s): %s", error.code, _short(error))
                self.refuse(
                    Why.STORE_PERMANENT,
                    f"spans were not stored and a retry would fail the same way: {_short(error)}",
                )
            self.refuse(Why.STORE_TRANSIENT, f"spans were not stored, retry: {_short(error)}")

    def _recover(self, part: Part, refusal: WarehouseRejected, deadline: float | None) -> Rejection:
        def store(payload: bytes, spans: int) -> None:
            self._writer.submit(payload, spans, part.retention_days, part.key_tenant).result()

        stop = None if deadline is None else deadline - ANSWER_MARGIN_S
        outcome = recover(store, part.message, refusal, stop)
        self.stats.recoveries.labels(outcome.how).inc()
        return outcome.refused


def deadline_after(seconds: float | None) -> float | None:
    """time.monotonic() `seconds` from now (None stays None)."""
    return None if seconds is None else time.monotonic() + seconds


def _short(exc: Any) -> str:
    text = str(exc)
    return text if len(text) < 500 else text[:500] + "…"
