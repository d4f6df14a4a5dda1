"""Group commit: many export requests share one insert, and each is answered only once stored.

Requests hand in their screened protobuf bytes and wait on a Future. Writer threads (one per
sink, each with its own warehouse handle, so inserts run in parallel in the engine) take what
has queued (up to `flush_max_spans`, waiting at most `flush_interval_s` for more), frame it
with a strictly increasing `ingested_at` stamp (ms), insert it once, and resolve every Future.
`on_commit(stamp)` then reports that every row stamped up to `stamp` is stored — with several
writers, that is just below the oldest flush still in flight. Outstanding spans are bounded by
`max_pending_spans`: past it, `submit` raises Backpressure, a retryable refusal. A failed
insert of several requests is retried in halves, down to one request, so one request's rows
never fail its neighbours; each Future then carries its own request's error, transient or permanent
(warehouse.errors), for the transport to answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from receiver.envelope import EnvelopeFields, frame
from receiver.stats import ReceiverStats
from warehouse.errors import is_transient

log = logging.getLogger(__name__)


class Backpressure(Exception):
    """Too many spans are waiting to be stored; the client should retry after a pause."""


class WriterClosed(Exception):
    """The writer is shutting down and takes no new work."""


@dataclass
class _Item:
    request: bytes
    spans: int
    retention_days: int
    key_tenant: str = ""
    future: Future[None] = field(default_factory=Future)


class GroupWriter:
    def __init__(
        self,
        sinks: Sequence[Callable[[bytes], None]],
        stats: ReceiverStats,
        fields: EnvelopeFields,
        *,
        max_pending_spans: int,
        flush_max_spans: int,
        flush_interval_s: float,
        on_commit: Callable[[int], None] = lambda stamp: None,
        stamps_after: int = 0,
        report_queue: bool = True,
    ) -> None:
        """`stamps_after`: every stamp this writer issues is greater, even if the clock is behind
        it — a restarted server passes the greatest stamp already stored, so no new row can land
        at or below what the run assembler has already derived (spec 4.1)."""
        self._stats = stats
        self._report_queue = report_queue  # False behind the spool, whose backlog is the queue
        self._fields = fields
        self._max_pending = max_pending_spans
        self._flush_max = flush_max_spans
        self._interval = flush_interval_s
        self._on_commit = on_commit
        self._queue: deque[_Item] = deque()
        self._queued_spans = 0
        self._outstanding = 0  # queued plus being inserted
        self._last_stamp = stamps_after
        self._in_flight: set[int] = set()
        self._committed = stamps_after
        self._closing = False
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._run, args=(sink,), name=f"wrm-writer-{i}", daemon=True)
            for i, sink in enumerate(sinks)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self, request: bytes, spans: int, retention_days: int | None = None, key_tenant: str = ""
    ) -> Future[None]:
        """Queue a request's bytes; the Future resolves once its rows are in the warehouse.

        `retention_days` overrides the default retention its span rows carry; `key_tenant`, when
        not empty, is the tenant of all its spans (the sender's key's, receiver.envelope)."""
        days = self._fields.retention_days if retention_days is None else retention_days
        item = _Item(request, spans, days, key_tenant)
        with self._cond:
            if self._closing:
                raise WriterClosed("the receiver is shutting down")
            # A single request larger than the whole queue is still taken when nothing waits,
            # or it could never be stored.
            if self._outstanding and self._outstanding + spans > self._max_pending:
                raise Backpressure(f"{self._outstanding} spans are waiting to be stored; retry later")
            self._queue.append(item)
            self._queued_spans += spans
            self._outstanding += spans
            if self._report_queue:
                self._stats.queue_spans.set(self._outstanding)
            self._cond.notify()
        return item.future

    def full(self) -> bool:
        """No request could be taken now: checked before a request is even parsed, so a server
        at its limit spends no CPU on requests it will refuse."""
        with self._cond:
            return self._outstanding >= self._max_pending

    def close(self, timeout: float = 60.0) -> None:
        """Take no more work, store everything already taken, and stop the threads."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            log.error("writers did not drain within %.0fs; %d spans unstored", timeout, self._outstanding)

    def _take(self) -> tuple[list[_Item], int] | None:
        with self._cond:
            while True:
                while not self._queue:
                    if self._closing:
                        return None
                    self._cond.wait()
                deadline = time.monotonic() + self._interval
                # Wait for more only while more can come: not when the flush or the queue is full.
                while (
                    self._queued_spans < self._flush_max
                    and self._outstanding < self._max_pending
                    and not self._closing
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._queue:  # another writer may have taken everything while this one waited
                    break
            taken: list[_Item] = []
            spans = 0
            while self._queue and (not taken or spans + self._queue[0].spans <= self._flush_max):
                item = self._queue.popleft()
                taken.append(item)
                spans += item.spans
            self._queued_spans -= spans
            stamp = self._last_stamp = max(self._last_stamp + 1, time.time_ns() // 1_000_000)
            self._in_flight.add(stamp)
            return taken, stamp

    def _run(self, sink: Callable[[bytes], None]) -> None:
        while (work := self._take()) is not None:
            taken, stamp = work
            try:
                self._flush(sink, taken, stamp)
            finally:
                self._committed_through(stamp)

    def _flush(self, sink: Callable[[bytes], None], taken: list[_Item], stamp: int) -> None:
        n = sum(item.spans for item in taken)
        started = time.perf_counter()
        try:
            sink(
                b"".join(
                    frame(item.request, stamp, self._fields, item.retention_days, item.key_tenant)
                    for item in taken
                )
            )
        except Exception as exc:
            kind = "transient" if is_transient(exc) else "permanent"
            self._stats.flush_failures.inc()
            self._stats.insert_failures.labels(kind).inc()
            log.warning("insert of %d spans failed (%s): %s", n, kind, exc)
            if len(taken) > 1 and kind == "permanent":
                # One request's rows must not fail its neighbours: store each half on its own,
                # down to single requests. One bad request among n costs ~2·log2(n) inserts.
                # A transient failure is not split: every request is answered retryable, and
                # the warehouse is not sent more inserts while it cannot take them.
                mid = len(taken) // 2
                self._flush(sink, taken[:mid], stamp)
                self._flush(sink, taken[mid:], stamp)
                return
            self._done(taken, n, exc)
            return
        elapsed = time.perf_counter() - started
        self._stats.flushes.inc()
        self._stats.flush_seconds.observe(elapsed)
        self._stats.flush_spans.observe(n)
        self._stats.spans_accepted.inc(n)
        self._done(taken, n, None)

    def _done(self, taken: list[_Item], n: int, exc: Exception | None) -> None:
        with self._cond:
            self._outstanding -= n
            if self._report_queue:
                self._stats.queue_spans.set(self._outstanding)
        for item in taken:
            if exc is None:
                item.future.set_result(None)
            else:
                item.future.set_exception(exc)

    def _committed_through(self, stamp: int) -> None:
        with self._cond:
            self._in_flight.discard(stamp)
            through = min(self._in_flight) - 1 if self._in_flight else self._last_stamp
            if through <= self._committed:
                return
            self._committed = through
        try:
            self._on_commit(through)
        except Exception:  # downstream trouble must not stop ingest
            log.exception("on_commit hook failed")
