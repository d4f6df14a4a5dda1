"""Group commit: many export requests share one insert, and each is answered only once stored.

Requests hand in a SpanBatch and wait on a Future. One writer thread takes what has queued
(up to `flush_max_spans`, waiting at most `flush_interval_s` for more), inserts it once, and
resolves every Future. Each flush is stamped with a strictly increasing `ingested_at` (ms);
after it commits, `on_commit(stamp)` tells downstream work (run assembly) that every row
stamped up to then is in the warehouse. Outstanding spans are bounded by `max_pending_spans`: past it,
`submit` raises Backpressure, which the transport turns into a retryable status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from receiver.batch import SpanBatch
from receiver.stats import ReceiverStats

log = logging.getLogger(__name__)


class Backpressure(Exception):
    """Too many spans are waiting to be stored; the client should retry after a pause."""


class WriterClosed(Exception):
    """The writer is shutting down and takes no new work."""


class GroupWriter:
    def __init__(
        self,
        sink: Callable[[SpanBatch, int], None],
        stats: ReceiverStats,
        *,
        max_pending_spans: int,
        flush_max_spans: int,
        flush_interval_s: float,
        on_commit: Callable[[int], None] = lambda stamp: None,
    ) -> None:
        self._sink = sink
        self._on_commit = on_commit
        self._last_stamp = 0
        self._stats = stats
        self._max_pending = max_pending_spans
        self._flush_max = flush_max_spans
        self._interval = flush_interval_s
        self._queue: deque[tuple[SpanBatch, Future[None]]] = deque()
        self._queued_spans = 0
        self._outstanding = 0  # queued plus being inserted
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="wrm-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: SpanBatch) -> Future[None]:
        """Queue a batch; the Future resolves once its rows are in the warehouse."""
        fut: Future[None] = Future()
        n = len(batch)
        with self._cond:
            if self._closing:
                raise WriterClosed("the receiver is shutting down")
            # A single request larger than the whole queue is still taken when nothing waits,
            # or it could never be stored.
            if self._outstanding and self._outstanding + n > self._max_pending:
                raise Backpressure(f"{self._outstanding} spans are waiting to be stored; retry later")
            self._queue.append((batch, fut))
            self._queued_spans += n
            self._outstanding += n
            self._stats.queue_spans.set(self._outstanding)
            self._cond.notify()
        return fut

    def close(self, timeout: float = 60.0) -> None:
        """Take no more work, store everything already taken, and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("writer did not drain within %.0fs; %d spans unstored", timeout, self._outstanding)

    def _take(self) -> list[tuple[SpanBatch, Future[None]]] | None:
        with self._cond:
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
            taken: list[tuple[SpanBatch, Future[None]]] = []
            spans = 0
            while self._queue and (not taken or spans + len(self._queue[0][0]) <= self._flush_max):
                item = self._queue.popleft()
                taken.append(item)
                spans += len(item[0])
            self._queued_spans -= spans
            return taken

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            self._flush(taken)

    def _flush(self, taken: list[tuple[SpanBatch, Future[None]]]) -> None:
        merged = taken[0][0]
        if len(taken) > 1:
            merged = SpanBatch()
            for batch, _ in taken:
                merged.extend(batch)
        n = len(merged)
        started = time.perf_counter()
        stamp = self._last_stamp = max(self._last_stamp + 1, time.time_ns() // 1_000_000)
        try:
            self._sink(merged, stamp)
        except Exception as exc:
            self._stats.flush_failures.inc()
            log.warning("insert of %d spans failed: %s", n, exc)
            if len(taken) > 1:
                # One request's rows must not fail its neighbours: store each on its own.
                for item in taken:
                    self._flush([item])
                return
            self._done(taken, n, exc)
            return
        elapsed = time.perf_counter() - started
        self._stats.flushes.inc()
        self._stats.flush_seconds.observe(elapsed)
        self._stats.flush_spans.observe(n)
        self._stats.spans_accepted.inc(n)
        self._done(taken, n, None)
        try:
            self._on_commit(stamp)
        except Exception:  # downstream trouble must not stop ingest
            log.exception("on_commit hook failed")

    def _done(self, taken: list[tuple[SpanBatch, Future[None]]], n: int, exc: Exception | None) -> None:
        with self._cond:
            self._outstanding -= n
            self._stats.queue_spans.set(self._outstanding)
        for _, fut in taken:
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)
