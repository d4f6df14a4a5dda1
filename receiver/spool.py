"""Acknowledge once spooled: requests are answered when fsynced to the spool, stored behind it.

`ingest_ack = "spool"` (spec 4.1). The engine's fixed cost per insert (planning the views of the
landing chain, ~0.4 s whatever the size) makes each insert expensive while exporters wait for
it. Here a request waits only for its record to reach the disk (group commit, one fdatasync for
all waiting requests, ~2 ms); a drain thread then feeds the spool in order to the GroupWriter,
which inserts large batches, and moves the checkpoint past what is stored. Nothing acknowledged
is lost: after a crash the records after the checkpoint are inserted again (rows that were
already stored collapse, as any re-delivery does). Back-pressure is on the spans spooled but not
yet stored: past `max_backlog_spans` a request is refused (retryable) before it is written.

A record the engine refuses for good after its acknowledgement is bisected as in the
synchronous path (receiver.recover): its readable spans are stored; the request is kept in
`rejected/` and the refused spans are logged and counted, since its client has its answer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.recover import recover
from receiver.spool_log import Entry, Record, SpoolLog
from receiver.stats import ReceiverStats
from receiver.writer import Backpressure, GroupWriter, WriterClosed
from warehouse.errors import WarehouseRejected, is_transient

log = logging.getLogger(__name__)

READ_BYTES = 8 << 20  # records read from the spool at a time
CHECKPOINT_EVERY_S = 0.2
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


@dataclass
class _Pending:
    record: Record
    future: Future[None] = field(default_factory=Future)


class SpooledWriter:
    """GroupWriter's `submit`/`close`, answering once a request is in the spool."""

    def __init__(
        self,
        spool: SpoolLog,
        writer: GroupWriter,
        stats: ReceiverStats,
        *,
        max_backlog_spans: int,
        default_days: int,
    ) -> None:
        self._spool = spool
        self._writer = writer
        self._stats = stats
        self._max_backlog = max_backlog_spans
        self._default_days = default_days
        self._cond = threading.Condition()
        self._appends: deque[_Pending] = deque()
        self._closing = False
        self._abandon = threading.Event()  # close() gave up waiting: the drain stops where it is
        self._appended_all = threading.Event()
        self._drain_done = threading.Event()
        requests, self._backlog_spans = _backlog(spool)  # spooled, not yet stored
        if requests:
            log.info(
                "spool: %d requests (%d spans) acknowledged before the last stop are being stored",
                requests, self._backlog_spans,
            )  # fmt: skip
        self._stats.queue_spans.set(self._backlog_spans)
        self._appender = threading.Thread(target=self._append_loop, name="wrm-spool-append", daemon=True)
        self._drainer = threading.Thread(target=self._drain_loop, name="wrm-spool-drain", daemon=True)
        self._appender.start()
        self._drainer.start()

    @property
    def backlog_spans(self) -> int:
        return self._backlog_spans

    def submit(
        self, request: bytes, spans: int, retention_days: int | None = None, key_tenant: str = ""
    ) -> Future[None]:
        days = self._default_days if retention_days is None else retention_days
        item = _Pending(Record(request, spans, days, key_tenant))
        with self._cond:
            if self._closing:
                raise WriterClosed("the receiver is shutting down")
            if self._backlog_spans and self._backlog_spans + spans > self._max_backlog:
                raise Backpressure(f"{self._backlog_spans} spans are waiting to be stored; retry later")
            self._backlog_spans += spans
            self._stats.queue_spans.set(self._backlog_spans)
            self._appends.append(item)
            self._cond.notify_all()
        return item.future

    def close(self, timeout: float = 60.0) -> None:
        """Take no more requests, store what the spool holds (within `timeout`), then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._appender.join(timeout)
        if not self._drain_done.wait(timeout):
            log.error("spool: not drained within %.0fs; %d spans stay spooled for the next start",
                      timeout, self._backlog_spans)  # fmt: skip
            self._abandon.set()
            self._drainer.join(timeout)
        self._writer.close(timeout)
        self._spool.close()

    # -- group commit to the spool -------------------------------------------------------------

    def _append_loop(self) -> None:
        try:
            self._append_until_closed()
        finally:
            self._appended_all.set()
            with self._cond:
                self._cond.notify_all()

    def _append_until_closed(self) -> None:
        while True:
            with self._cond:
                while not self._appends and not self._closing:
                    self._cond.wait()
                if not self._appends:
                    return
                taken = list(self._appends)
                self._appends.clear()
            try:
                self._spool.append([p.record for p in taken])
            except OSError as exc:
                log.error("spool: %d requests could not be written: %s", len(taken), exc)
                with self._cond:
                    self._backlog_spans -= sum(p.record.spans for p in taken)
                    self._stats.queue_spans.set(self._backlog_spans)
                for p in taken:
                    p.future.set_exception(exc)
                continue
            with self._cond:
                self._cond.notify_all()  # the drain has more to read
            for p in taken:
                p.future.set_result(None)

    # -- the spool into the warehouse -------------------------------------------------------------

    def _drain_loop(self) -> None:
        cursor = self._spool.checkpoint
        in_flight: dict[int, tuple[Entry, Future[None]]] = {}
        saved_at = time.monotonic()
        retry_s = RETRY_FIRST_S
        while not self._abandon.is_set():
            try:
                with self._cond:
                    while cursor >= self._spool.end and not in_flight and not self._appended_all.is_set():
                        self._cond.wait(CHECKPOINT_EVERY_S)
                if self._appended_all.is_set() and cursor >= self._spool.end and not in_flight:
                    self._spool.save_checkpoint(cursor)
                    break
                for entry in self._spool.read(cursor, READ_BYTES) if cursor < self._spool.end else []:
                    in_flight[entry.start] = (entry, self._submit(entry))
                    cursor = entry.end
                failed = self._settle(in_flight)
                if failed:
                    self._abandon.wait(retry_s)  # the warehouse is not taking inserts: pause, then resend
                    retry_s = min(RETRY_MAX_S, retry_s * 2)
                    for entry in failed:
                        in_flight[entry.start] = (entry, self._submit(entry))
                else:
                    retry_s = RETRY_FIRST_S
                if time.monotonic() - saved_at >= CHECKPOINT_EVERY_S or not in_flight:
                    self._spool.save_checkpoint(min(in_flight, default=cursor))
                    saved_at = time.monotonic()
            except Exception:  # a damaged segment, a full disk: say so, and try again
                if self._abandon.is_set():
                    break
                log.exception("spool: draining failed; trying again in %.0fs", RETRY_MAX_S)
                self._abandon.wait(RETRY_MAX_S)
        self._drain_done.set()

    def _submit(self, entry: Entry) -> Future[None]:
        r = entry.record
        while True:
            try:
                return self._writer.submit(r.request, r.spans, r.retention_days, r.key_tenant)
            except Backpressure:
                if self._abandon.wait(0.005):  # the writers hold as much as they may: wait for a flush
                    raise WriterClosed("the spool is closing") from None

    def _settle(self, in_flight: dict[int, tuple[Entry, Future[None]]]) -> list[Entry]:
        """Take the finished inserts out of `in_flight`; returns those to send again (transient)."""
        if in_flight:  # wait for the oldest, so the loop does not spin while inserts run
            oldest = min(in_flight)
            with contextlib.suppress(TimeoutError):
                in_flight[oldest][1].exception(timeout=CHECKPOINT_EVERY_S)
        again: list[Entry] = []
        for start in [s for s, (_, f) in in_flight.items() if f.done()]:
            entry, future = in_flight.pop(start)
            exc = future.exception()
            if exc is None:
                self._stored(entry.record.spans)
            elif isinstance(exc, WarehouseRejected) and not is_transient(exc) and self._rejected(entry, exc):
                pass
            else:
                log.warning("spool: insert failed (%s); sending it again", exc)
                again.append(entry)
        return again

    def _stored(self, spans: int) -> None:
        with self._cond:
            self._backlog_spans -= spans
            self._stats.queue_spans.set(self._backlog_spans)

    def _rejected(self, entry: Entry, refusal: WarehouseRejected) -> bool:
        """Store what the engine takes of a request it refused after acknowledgement; keep the rest.
        False when a transient failure interrupted this: the record is then sent again."""
        r = entry.record

        def store(payload: bytes, spans: int) -> None:
            self._writer.submit(payload, spans, r.retention_days, r.key_tenant).result()

        try:
            outcome = recover(store, ExportTraceServiceRequest.FromString(r.request), refusal)
            refused = outcome.refused.count
            self._stats.recoveries.labels(outcome.how).inc()
        except WarehouseRejected as exc:
            refused, refusal = r.spans, exc
        except Exception as exc:
            log.warning("spool: storing a refused request span by span failed (%s); trying again", exc)
            return False
        if refused:
            kept = self._spool.keep_rejected(entry)
            self._stats.spans_refused_after_ack.inc(refused)
            log.error(
                "spool: the warehouse refused %d of %d acknowledged spans for good (code %s); "
                "the request is kept in %s",
                refused, r.spans, refusal.code, kept,
            )  # fmt: skip
        self._stored(r.spans)
        return True


def _backlog(spool: SpoolLog) -> tuple[int, int]:
    """Requests and spans in the spool after its checkpoint (acknowledged, maybe not stored)."""
    requests = spans = 0
    at = spool.checkpoint
    while at < spool.end:
        batch = spool.read(at, READ_BYTES)
        if not batch:
            break
        requests += len(batch)
        spans += sum(e.record.spans for e in batch)
        at = batch[-1].end
    return requests, spans
