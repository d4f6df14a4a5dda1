"""Acknowledge once spooled: requests are answered when fsynced to the spool, stored behind it.

`ingest_ack = "spooled"` (spec 2.2). The engine's fixed cost per insert (planning the views of the
landing chain, ~0.4 s whatever the size) makes each insert expensive while exporters wait for
it. Here a request waits only for its record to reach the disk (group commit, one fdatasync for
all waiting requests, ~2 ms); a drain thread then feeds the spool in order to the GroupWriter,
which inserts large batches, and moves the checkpoint past what is stored. Nothing acknowledged
is lost: after a crash the records after the checkpoint are inserted again (rows that were
already stored collapse, as any re-delivery does). Back-pressure is on the spans spooled but not
yet stored: past `max_backlog_spans` (or MAX_BACKLOG_BYTES of spool) a request is refused
(retryable), before it is even parsed when the limit is already reached.

A record whose data the engine refuses after its acknowledgement is bisected as in the
synchronous path (receiver.recover): its readable spans are stored; the request is kept in
`rejected/` and the refused spans are logged and counted, since its client has its answer. Any
other failure (transient, or the warehouse's own: a missing table) keeps the record in the spool
and sends it again, 0.5 s then doubling to 10 s apart.
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
from warehouse.errors import WarehouseRejected

log = logging.getLogger(__name__)

READ_BYTES = 8 << 20  # records read from the spool at a time
CHECKPOINT_EVERY_S = 0.2
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
MAX_BACKLOG_BYTES = 1 << 30  # spool not yet stored: a record that keeps failing holds the checkpoint


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
        requests, self._backlog_spans = spool.unstored()
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

    def full(self) -> bool:
        """No request could be spooled now (see GroupWriter.full)."""
        with self._cond:
            return self._backlog_spans >= self._max_backlog or self._over_bytes()

    def _over_bytes(self) -> bool:
        return self._spool.backlog_bytes() > MAX_BACKLOG_BYTES

    def submit(
        self, request: bytes, spans: int, retention_days: int | None = None, key_tenant: str = ""
    ) -> Future[None]:
        days = self._default_days if retention_days is None else retention_days
        item = _Pending(Record(request, spans, days, key_tenant))
        with self._cond:
            if self._closing or self._appended_all.is_set():
                raise WriterClosed("the receiver is shutting down")
            over = self._backlog_spans + spans > self._max_backlog
            if (self._backlog_spans and over) or self._over_bytes():
                raise Backpressure(f"{self._backlog_spans} spans are waiting to be stored; retry later")
            self._backlog_spans += spans
            self._stats.queue_spans.set(self._backlog_spans)
            self._appends.append(item)
            self._cond.notify_all()
        return item.future

    def close(self, timeout: float = 60.0) -> None:
        """Take no more requests, store what the spool holds (within `timeout`), then stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._appender.join(timeout)
        if not self._drain_done.wait(max(0.0, deadline - time.monotonic())):
            log.error("spool: not drained within %.0fs; %d spans stay spooled for the next start",
                      timeout, self._backlog_spans)  # fmt: skip
            self._abandon.set()
            self._drainer.join(10)
        self._writer.close(max(1.0, deadline - time.monotonic()))
        self._spool.close()

    # -- group commit to the spool -------------------------------------------------------------

    def _append_loop(self) -> None:
        try:
            self._append_until_closed()
        except BaseException as exc:  # never leave a request waiting for an answer that cannot come
            log.exception("spool: the append thread stopped; new requests are refused")
            self._fail_appends(exc)
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
            try:
                self._spool.append([p.record for p in taken])
            except OSError as exc:  # disk full…: the file is as before, these are refused (retryable)
                log.error("spool: %d requests could not be written: %s", len(taken), exc)
                self._fail_appends(exc, len(taken))
                continue
            with self._cond:
                for _ in taken:
                    self._appends.popleft()
                self._cond.notify_all()  # the drain has more to read
            for p in taken:
                p.future.set_result(None)

    def _fail_appends(self, exc: BaseException, count: int | None = None) -> None:
        """Refuse the first `count` waiting appends (all when None): not spooled, not answered OK."""
        with self._cond:
            n = len(self._appends) if count is None else count
            failed = [self._appends.popleft() for _ in range(n)]
            self._backlog_spans -= sum(p.record.spans for p in failed)
            self._stats.queue_spans.set(self._backlog_spans)
        for p in failed:
            p.future.set_exception(exc if isinstance(exc, Exception) else WriterClosed("the spool stopped"))

    # -- the spool into the warehouse -------------------------------------------------------------

    def _drain_loop(self) -> None:
        """Read records in order, hand them to the writers, and move the checkpoint to the oldest
        record not yet stored. `pending` holds every record read and not yet stored, whatever
        happens to it, so no failure can move the checkpoint past it."""
        cursor = self._spool.checkpoint
        pending: dict[int, Entry] = {}
        futures: dict[int, Future[None]] = {}
        to_send: deque[Entry] = deque()
        saved_at = time.monotonic()
        retry_s = RETRY_FIRST_S
        while not self._abandon.is_set():
            try:
                with self._cond:
                    while cursor >= self._spool.end and not pending and not self._appended_all.is_set():
                        self._cond.wait(CHECKPOINT_EVERY_S)
                if self._appended_all.is_set() and cursor >= self._spool.end and not pending:
                    self._spool.save_checkpoint(cursor)
                    break
                if not to_send and cursor < self._spool.end:
                    for entry in self._spool.read(cursor, READ_BYTES):
                        pending[entry.start] = entry
                        to_send.append(entry)
                        cursor = entry.end
                while to_send:
                    futures[to_send[0].start] = self._submit(to_send[0].record)
                    to_send.popleft()
                again = self._settle(pending, futures)
                if again:
                    self._abandon.wait(retry_s)  # the warehouse is not taking them: pause, then resend
                    retry_s = min(RETRY_MAX_S, retry_s * 2)
                    to_send.extend(again)
                elif futures or not pending:
                    retry_s = RETRY_FIRST_S
                if time.monotonic() - saved_at >= CHECKPOINT_EVERY_S or not pending:
                    self._spool.save_checkpoint(min(pending, default=cursor))
                    saved_at = time.monotonic()
            except WriterClosed:
                break
            except Exception:  # a damaged segment, a full disk: say so, and try again
                log.exception("spool: draining failed; trying again in %.0fs", RETRY_MAX_S)
                self._abandon.wait(RETRY_MAX_S)
        self._drain_done.set()

    def _submit(self, r: Record) -> Future[None]:
        while True:
            try:
                return self._writer.submit(r.request, r.spans, r.retention_days, r.key_tenant)
            except Backpressure:
                if self._abandon.wait(0.005):  # the writers hold as much as they may: wait for a flush
                    raise WriterClosed("the spool is closing") from None

    def _settle(self, pending: dict[int, Entry], futures: dict[int, Future[None]]) -> list[Entry]:
        """Handle the finished inserts; returns the records to send again."""
        if futures:  # wait for the oldest, so the loop does not spin while inserts run
            with contextlib.suppress(TimeoutError):
                futures[min(futures)].exception(timeout=CHECKPOINT_EVERY_S)
        again: list[Entry] = []
        for start in [s for s, f in futures.items() if f.done()]:
            entry, exc = pending[start], futures.pop(start).exception()
            try:
                done = exc is None or (isinstance(exc, WarehouseRejected) and self._rejected(entry, exc))
            except Exception as failure:  # e.g. rejected/ could not be written: keep the record
                log.error("spool: handling a refused record failed (%s); it is sent again", failure)
                done = False
            if done:
                del pending[start]
                self._stored(entry.record.spans)
            else:
                if exc is not None and not isinstance(exc, WarehouseRejected):
                    log.warning("spool: insert failed (%s); sending it again", exc)
                again.append(entry)
        return again

    def _stored(self, spans: int) -> None:
        with self._cond:
            self._backlog_spans -= spans
            self._stats.queue_spans.set(self._backlog_spans)

    def _rejected(self, entry: Entry, refusal: WarehouseRejected) -> bool:
        """Store what the engine takes of a record it refused after acknowledgement, and keep the
        rest in rejected/. False when the warehouse, not the record, is at fault (a missing table,
        a broken view) or a transient failure interrupted this: the record is kept and sent again."""
        r = entry.record

        def store(payload: bytes, spans: int) -> None:
            self._submit(Record(payload, spans, r.retention_days, r.key_tenant)).result()

        try:
            outcome = recover(store, ExportTraceServiceRequest.FromString(r.request), refusal)
        except WarehouseRejected as exc:
            log.error(
                "spool: the warehouse refuses inserts (%s); the spooled spans wait until it is fixed", exc
            )
            return False
        except Exception as exc:
            log.warning("spool: storing a refused request span by span failed (%s); trying again", exc)
            return False
        self._stats.recoveries.labels(outcome.how).inc()
        if outcome.refused.count:
            reason = outcome.refused.message()
            kept = self._spool.keep_rejected(entry, reason)
            self._stats.spans_refused_after_ack.inc(outcome.refused.count)
            log.error(
                "spool: the warehouse refused %d of %d acknowledged spans for good (%s); "
                "the request is kept in %s",
                outcome.refused.count, r.spans, reason, kept,
            )  # fmt: skip
        return True
