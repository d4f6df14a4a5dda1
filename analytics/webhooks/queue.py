"""One subscription's queue: its thread, its HTTP client, its warehouse handle, its retries.

The queue reads the events after its cursor (reading.py) a batch at a time and sends each once.
Within a batch, events are spread over up to `concurrency` lanes by run, each lane sending in
order, so one run's events keep their order while a slow endpoint still gets several requests
at once. A failed attempt waits in the retry heap, and later messages go on meanwhile. The
batch's attempts are written to the log (attempts.py) before the cursor moves past the batch
and is stored; a restart resumes from the cursor, skips what the log shows attempted and
re-schedules what waits for a retry. A queue stopped in the middle of a batch does not move its
cursor: the next start re-reads the batch and the log tells it what was sent.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analytics.webhooks.attempts import Attempt, Recorder, pending, standings
from analytics.webhooks.policy import Outcome, RetryPolicy, retry_after_seconds
from analytics.webhooks.reading import PAST_ALL_NS, Cursor, OutboxRow, event, events_after
from analytics.webhooks.sender import Message, Sender
from analytics.webhooks.signing import signature_header
from analytics.webhooks.stats import DispatchStats
from analytics.webhooks.store import Subscription, SubscriptionStore
from warehouse import Warehouse, is_transient
from warehouse.outbox import Outbox

log = logging.getLogger(__name__)

BATCH = 100
CURSOR_EVERY_S = 5.0  # how often a queue with nothing to send stores how far it has read


@dataclass(frozen=True)
class QueueContext:
    """What every queue shares: where to read and record, how to send and retry."""

    store: SubscriptionStore
    outbox: Outbox
    recorder: Recorder
    policy: RetryPolicy
    stats: DispatchStats
    open_session: Callable[[], Warehouse]
    timeout_s: float
    allow_private: bool
    poll_s: float
    concurrency: int


class SubscriptionQueue:
    def __init__(self, sub: Subscription, ctx: QueueContext) -> None:
        self.sub = sub
        self._ctx = ctx
        self._stop = threading.Event()
        # (due, event id, attempts so far, first at, generation): an event is in the heap once; a
        # newer schedule of it (a manual retry) makes older entries stale
        self._heap: list[tuple[float, str, int, float, int]] = []
        self._generation: dict[str, int] = {}
        self._heap_lock = threading.Lock()
        self._more = False  # the last read was a full batch: read again without waiting
        self._cursor = Cursor(sub.created_ms, 0, 0, "")
        self._read_upto = 0  # the committed stamp the last read covered
        self._cursor_stored = 0.0
        self._waiting: list[threading.Event] = []
        self._gone_at: datetime | None = None  # a 410 answered: the subscription is to be disabled
        self._thread = threading.Thread(
            target=self._run, name=f"wrm-webhook-{sub.webhook_id[:11]}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Running and not asked to stop."""
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def running(self) -> bool:
        """Its thread has not ended (it may be finishing an attempt after a stop)."""
        return self._thread.is_alive()

    def is_current_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        self._thread.join(self._ctx.timeout_s + 5)

    def schedule(self, event_id: str, attempts: int, due: float, first: float) -> None:
        with self._heap_lock:
            generation = self._generation.get(event_id, 0) + 1
            self._generation[event_id] = generation
            heapq.heappush(self._heap, (due, event_id, attempts, first, generation))

    def _run(self) -> None:
        self._wh = self._ctx.open_session()
        self._senders: list[Sender] = []
        self._local = threading.local()
        self._lanes = ThreadPoolExecutor(self._ctx.concurrency, thread_name_prefix=self._thread.name)
        try:
            self._loop()
        finally:
            self._lanes.shutdown(wait=True)
            for sender in self._senders:
                sender.close()
            self._wh.close()

    def _sender(self) -> Sender:
        """This thread's sender: a lane's requests never share a client with another lane's."""
        sender: Sender | None = getattr(self._local, "sender", None)
        if sender is None:
            sender = self._local.sender = Sender(self._ctx.timeout_s, self._ctx.allow_private)
            self._senders.append(sender)
        return sender

    def _loop(self) -> None:
        pause = 0.0
        loaded = False
        while not self._stop.is_set():
            if pause and self._stop.wait(pause):
                break
            try:
                if not loaded:
                    self._load()
                    loaded = True
                busy = self._due_retries() | self._new_events()
                pause = 0.0
                if self._gone_at is not None:
                    self._disable()
                elif not busy:  # until something is committed past what was read, or a retry is due
                    self._ctx.outbox.wait_beyond(self._read_upto, self._idle_s())
            except Exception as exc:  # a warehouse error: retried with back-off; the log says why
                pause = min(30.0, max(0.5, pause * 2))
                log.warning(
                    "webhook %s: queue paused %.1f s after a %s error: %s",
                    self.sub.webhook_id,
                    pause,
                    "transient" if is_transient(exc) else "permanent",
                    type(exc).__name__,
                    exc_info=not is_transient(exc),
                )

    def _idle_s(self) -> float:
        with self._heap_lock:
            due = self._heap[0][0] - time.time() if self._heap else self._ctx.poll_s
        return max(0.01, min(self._ctx.poll_s, due))

    def _load(self) -> None:
        """The stored cursor and the messages waiting for a retry."""
        sub = self.sub
        rows = self._wh.rows(
            "SELECT argMax((emitted_ms, occurred_ns, rank, event_id), updated_at), count() "
            "FROM webhook_cursors WHERE tenant_id = {t:String} AND webhook_id = {w:String}",
            {"t": sub.tenant_id, "w": sub.webhook_id},
        )
        if rows and rows[0][1]:
            c = rows[0][0]
            self._cursor = Cursor(int(c[0]), int(c[1]), int(c[2]), c[3])
        for s in pending(self._wh, sub.tenant_id, sub.webhook_id):
            due = s.next_at.replace(tzinfo=UTC).timestamp() if s.next_at else time.time()
            self.schedule(s.event_id, s.attempts, due, s.first_at.replace(tzinfo=UTC).timestamp())

    def _new_events(self) -> bool:
        committed = self._ctx.outbox.committed_ms
        if committed == self._read_upto and not self._more:
            return False  # nothing committed since the last read, which took all there was
        batch = events_after(self._wh, self.sub, self._cursor, committed, BATCH)
        self._read_upto, self._more = committed, len(batch) == BATCH
        if not batch:
            # nothing at or below `committed` is for this queue (every stamp there is complete):
            # move past it, so the next read starts there; stored now and then, not every poll
            if committed > self._cursor.emitted_ms:
                self._cursor = Cursor(committed, PAST_ALL_NS, 255, "")
                if time.monotonic() - self._cursor_stored > CURSOR_EVERY_S:
                    self._settle()
            return False
        handled = standings(self._wh, self.sub.tenant_id, self.sub.webhook_id, [r.event_id for r in batch])
        lanes: dict[int, list[OutboxRow]] = {}
        for row in batch:  # else taken before a restart: delivered, or in the retry heap
            if row.event_id not in handled:
                lane = zlib.crc32(row.run_id.encode() or row.event_id.encode()) % self._ctx.concurrency
                lanes.setdefault(lane, []).append(row)
        if len(lanes) > 1:
            list(self._lanes.map(self._send_lane, lanes.values()))
        elif lanes:
            self._send_lane(next(iter(lanes.values())))
        if self._stop.is_set():
            return True  # the cursor stays before the batch; the log says what was sent
        self._cursor = batch[-1].cursor
        self._settle()
        return True

    def _send_lane(self, rows: list[OutboxRow]) -> None:
        now = time.time()
        for row in rows:
            if self._stop.is_set():
                return
            self._ctx.stats.lag.observe(max(0.0, now - row.cursor.emitted_ms / 1000))
            self._deliver(row, 1, time.time())

    def _due_retries(self) -> bool:
        busy = False
        while not self._stop.is_set():
            with self._heap_lock:
                if not self._heap or self._heap[0][0] > time.time():
                    break
                _, event_id, attempts, first, generation = heapq.heappop(self._heap)
                if self._generation.get(event_id) != generation:
                    continue  # rescheduled since (a manual retry): that entry stands
                del self._generation[event_id]
            row = event(self._wh, self.sub.tenant_id, event_id)
            if row is not None:
                self._deliver(row, attempts + 1, first)
            else:  # past the outbox's retention
                self._record(
                    event_id, "", attempts + 1, Outcome.FAILED, error="the message is no longer stored"
                )
            busy = True
        if busy:
            self._settle()
        return busy

    def _deliver(self, row: OutboxRow, attempt: int, first: float) -> None:
        sub = self.sub
        now = datetime.now(UTC)
        body = row.payload()
        signature = signature_header(sub.signing_keys(now), row.event_id, now, body)
        result = self._sender().send(sub.url, Message(row.event_id, now, body), signature)
        self._ctx.stats.latency.observe(result.latency_ms / 1000)
        if result.refused:
            outcome, pause = Outcome.REFUSED, 0.0
        else:
            retry_after = retry_after_seconds(result.retry_after)
            outcome, pause = self._ctx.policy.after(result.status, attempt, time.time() - first, retry_after)
        self._ctx.stats.attempts.labels(outcome.value).inc()
        next_at = now + timedelta(seconds=pause) if outcome is Outcome.RETRYING else None
        self._record(
            row.event_id, row.type, attempt, outcome, result.status or 0, result.latency_ms, result.error,
            result.excerpt, next_at,
        )  # fmt: skip
        if outcome is Outcome.RETRYING:
            self.schedule(row.event_id, attempt, time.time() + pause, first)
        elif outcome is Outcome.DISABLED:
            self._gone_at = now
            self._stop.set()

    def _disable(self) -> None:
        assert self._gone_at is not None
        self._settle()
        why = f"the receiver answered 410 Gone at {self._gone_at.isoformat(timespec='seconds')}"
        self._ctx.store.disable(self.sub.tenant_id, self.sub.webhook_id, why)

    def _record(
        self,
        event_id: str,
        event_type: str,
        attempt: int,
        outcome: Outcome,
        status: int = 0,
        latency_ms: float = 0.0,
        error: str = "",
        excerpt: str = "",
        next_at: datetime | None = None,
    ) -> None:
        sub = self.sub
        now = datetime.now(UTC)
        row = Attempt(sub.tenant_id, sub.webhook_id, event_id, event_type, attempt, now, outcome, status,
                      latency_ms, error, excerpt, next_at)  # fmt: skip
        self._waiting.append(self._ctx.recorder.record(row))  # list.append: safe from the lanes

    def _settle(self) -> None:
        """Wait until this queue's attempts are stored, then store the cursor."""
        waiting, self._waiting = self._waiting, []
        for done in waiting:
            while not done.wait(0.5):
                if self._stop.is_set() and self._gone_at is None:
                    return  # stopping: the cursor stays; the next start reads the log for these
        sub, c = self.sub, self._cursor
        self._cursor_stored = time.monotonic()
        self._wh.insert_columns(
            "webhook_cursors",
            ["tenant_id", "webhook_id", "emitted_ms", "occurred_ns", "rank", "event_id", "updated_at"],
            [[sub.tenant_id], [sub.webhook_id], [c.emitted_ms], [c.occurred_ns], [c.rank], [c.event_id],
             [datetime.now(UTC)]],
        )  # fmt: skip
