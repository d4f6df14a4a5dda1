"""The dispatcher: one queue per enabled subscription, each on its own thread, delivering the
outbox (lifecycle_events) in order.

A queue reads the events after its cursor, up to what the outbox has committed, that match the
subscription (types, workflows, environments, statuses; a test event only its own), and sends
each once, in outbox order: by emission, then by the time of the transition, so the events of
one run go out in the order they happened. A failed attempt waits in the queue's retry heap,
and later messages go on meanwhile (a retry may arrive after a newer message; `timestamp` says
when each happened). The attempts are written to the log (attempts.py) before the cursor moves
past them, and the cursor is stored after each batch, so a restart resumes where the log says:
delivered messages are not sent again, pending retries keep their schedule.

A slow or dead endpoint holds only its own queue: each queue has its own thread and HTTP client,
and ingest never waits for any of it (the outbox is written by the assembly, not by delivery).
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from analytics.webhooks.attempts import Attempt, Recorder, pending, standings
from analytics.webhooks.policy import Outcome, RetryPolicy, retry_after_seconds
from analytics.webhooks.schemas import EVENT_TYPES
from analytics.webhooks.sender import Message, Sender
from analytics.webhooks.signing import signature_header
from analytics.webhooks.store import Subscription, SubscriptionStore
from analytics.webhooks.targets import UnknownWebhook, WebhookError
from warehouse import Warehouse, is_transient
from warehouse.outbox import Outbox

log = logging.getLogger(__name__)

BATCH = 100
CURSOR_EVERY_S = 5.0  # how often a queue with nothing to send stores how far it has read
_PAST_ALL_NS = 2**63 - 1  # a cursor past every event of its stamp
_FIELDS = "event_id, type, emitted_ms, toUnixTimestamp64Nano(occurred_at), rank, occurred_at, data"


class NotDeliverable(WebhookError):
    """A manual retry that cannot be honoured (disabled subscription, unknown message)."""


@dataclass(frozen=True)
class Cursor:
    emitted_ms: int
    occurred_ns: int
    rank: int
    event_id: str


@dataclass(frozen=True)
class OutboxRow:
    event_id: str
    type: str
    cursor: Cursor
    occurred_at: datetime
    data: str

    def payload(self) -> str:
        """The Standard Webhooks body: {"type", "timestamp", "data"}."""
        at = self.occurred_at.replace(tzinfo=UTC) if self.occurred_at.tzinfo is None else self.occurred_at
        stamp = at.isoformat().replace("+00:00", "Z")
        return f'{{"type":{json.dumps(self.type)},"timestamp":{json.dumps(stamp)},"data":{self.data}}}'


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], Cursor(int(r[2]), int(r[3]), int(r[4]), r[0]), r[5], r[6])


def expand(names: tuple[str, ...]) -> list[str]:
    """Concrete event types of a subscription's `events` ('*' and 'run.*' expanded)."""
    if "*" in names:
        return list(EVENT_TYPES)
    return [t for t in EVENT_TYPES if t in names or t.split(".")[0] + ".*" in names]


class DispatchStats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            "wrm_webhook_attempts",
            "Webhook delivery attempts, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wrm_webhook_attempt_seconds",
            "Duration of one webhook delivery attempt",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.lag = Histogram(
            "wrm_webhook_delivery_lag_seconds",
            "Seconds from an event entering the outbox to its first delivery attempt",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        for outcome in Outcome:
            self.attempts.labels(outcome.value)


class Dispatcher:
    def __init__(
        self,
        store: SubscriptionStore,
        warehouse: Warehouse,
        outbox: Outbox,
        recorder: Recorder,
        policy: RetryPolicy,
        timeout_s: float,
        allow_private: bool,
        poll_s: float = 0.25,
    ) -> None:
        self.store = store
        self.wh = warehouse
        self.outbox = outbox
        self.recorder = recorder
        self.policy = policy
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.poll_s = poll_s
        self.stats = DispatchStats()
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Start a queue for each enabled subscription, stop those of the others."""
        subs = {s.webhook_id: s for s in self.store.all() if s.enabled}
        with self._lock:
            if self._stopping:
                return
            for webhook_id, queue in list(self._queues.items()):
                if webhook_id not in subs or not queue.alive:
                    queue.stop()
                    del self._queues[webhook_id]
            for webhook_id, sub in subs.items():
                if webhook_id in self._queues:
                    self._queues[webhook_id].sub = sub
                else:
                    self._queues[webhook_id] = _Queue(sub, self)

    def retry_now(self, tenant: str, webhook_id: str, message_id: str) -> Attempt:
        """Send a message once more now (and on the usual schedule if that fails)."""
        sub = self.store.get(tenant, webhook_id)
        if not sub.enabled:
            raise NotDeliverable(f"webhook {webhook_id} is disabled; enable it (PATCH enabled=true) first")
        known = standings(self.wh, tenant, webhook_id, [message_id])
        if message_id not in known:
            raise UnknownWebhook(f"webhook {webhook_id} has no delivery of message {message_id[:80]!r}")
        s = known[message_id]
        now = datetime.now(UTC)
        request = Attempt(
            tenant,
            webhook_id,
            message_id,
            s.event_type,
            s.attempts,
            now,
            Outcome.REQUESTED,
            0,
            0.0,
            "",
            "",
            now,
        )
        self.recorder.record(request).wait(30)
        with self._lock:
            queue = self._queues.get(webhook_id)
        if queue is not None:
            queue.schedule(message_id, s.attempts, time.time(), time.time())
        return request

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            queues = list(self._queues.values())
            self._queues.clear()
        for q in queues:
            q.stop()
        for q in queues:
            q.join()


class _Queue:
    """One subscription's deliveries, on its own thread."""

    def __init__(self, sub: Subscription, d: Dispatcher) -> None:
        self.sub = sub
        self._d = d
        self._stop = threading.Event()
        self._heap: list[tuple[float, str, int, float]] = []  # (due, event id, attempts so far, first at)
        self._heap_lock = threading.Lock()
        self._sender = Sender(d.timeout_s, d.allow_private)
        self._cursor = Cursor(sub.created_ms, 0, 0, "")
        self._read_upto = 0  # the committed stamp the last read covered
        self._cursor_stored = 0.0
        self._waiting: list[threading.Event] = []
        self._thread = threading.Thread(
            target=self._run, name=f"wrm-webhook-{sub.webhook_id[:11]}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        self._thread.join(self._d.timeout_s + 5)

    def schedule(self, event_id: str, attempts: int, due: float, first: float) -> None:
        with self._heap_lock:
            heapq.heappush(self._heap, (due, event_id, attempts, first))

    def _run(self) -> None:
        pause = 0.0
        loaded = False
        while not self._stop.is_set():
            if pause:
                self._stop.wait(pause)
                if self._stop.is_set():
                    break
            try:
                if not loaded:
                    self._load()
                    loaded = True
                busy = self._due_retries() | self._new_events()
                pause = 0.0
                if not busy:  # until something is committed past what was read, or a retry is due
                    self._d.outbox.wait_beyond(self._read_upto, self._idle_s())
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
        self._sender.close()

    def _idle_s(self) -> float:
        with self._heap_lock:
            due = self._heap[0][0] - time.time() if self._heap else self._d.poll_s
        return max(0.01, min(self._d.poll_s, due))

    def _load(self) -> None:
        """The stored cursor and the messages waiting for a retry."""
        sub = self.sub
        rows = self._d.wh.rows(
            "SELECT argMax((emitted_ms, occurred_ns, rank, event_id), updated_at), count() "
            "FROM webhook_cursors WHERE tenant_id = {t:String} AND webhook_id = {w:String}",
            {"t": sub.tenant_id, "w": sub.webhook_id},
        )
        if rows and rows[0][1]:
            c = rows[0][0]
            self._cursor = Cursor(int(c[0]), int(c[1]), int(c[2]), c[3])
        for s in pending(self._d.wh, sub.tenant_id, sub.webhook_id):
            due = s.next_at.replace(tzinfo=UTC).timestamp() if s.next_at else time.time()
            self.schedule(s.event_id, s.attempts, due, s.first_at.replace(tzinfo=UTC).timestamp())

    def _fetch(self, limit: int, committed: int) -> list[OutboxRow]:
        sub, c = self.sub, self._cursor
        rows = self._d.wh.rows(
            f"SELECT {_FIELDS} FROM lifecycle_events WHERE tenant_id = {{t:String}} "
            "AND emitted_ms >= {ms:Int64} AND emitted_ms <= {committed:Int64} "
            "AND (emitted_ms, toUnixTimestamp64Nano(occurred_at), rank, event_id) "
            "    > ({ms:Int64}, {ns:Int64}, {rank:UInt8}, {id:String}) "
            "AND (webhook_id = {w:String} OR (webhook_id = '' AND has({types:Array(String)}, type) "
            "    AND (empty({wf:Array(String)}) OR has({wf:Array(String)}, workflow_name)) "
            "    AND (empty({env:Array(String)}) OR has({env:Array(String)}, environment)) "
            "    AND (empty({st:Array(String)}) OR has({st:Array(String)}, status)))) "
            "ORDER BY emitted_ms, toUnixTimestamp64Nano(occurred_at), rank, event_id LIMIT {n:UInt32}",
            {
                "t": sub.tenant_id, "ms": c.emitted_ms, "committed": committed,
                "ns": c.occurred_ns, "rank": c.rank, "id": c.event_id, "w": sub.webhook_id,
                "types": expand(sub.events), "wf": list(sub.workflows), "env": list(sub.environments),
                "st": list(sub.statuses), "n": limit,
            },
        )  # fmt: skip
        return [_row(r) for r in rows]

    def _new_events(self) -> bool:
        committed = self._d.outbox.committed_ms
        batch = self._fetch(BATCH, committed)
        self._read_upto = committed
        if not batch:
            # nothing at or below `committed` is for this queue (every stamp there is complete):
            # move past it, so the next read starts there; stored now and then, not every poll
            if committed > self._cursor.emitted_ms:
                self._cursor = Cursor(committed, _PAST_ALL_NS, 255, "")
                if time.monotonic() - self._cursor_stored > CURSOR_EVERY_S:
                    self._settle()
            return False
        sub = self.sub
        handled = standings(self._d.wh, sub.tenant_id, sub.webhook_id, [r.event_id for r in batch])
        moved = False
        for row in batch:
            if self._stop.is_set():
                break
            if row.event_id not in handled:  # else taken before a restart: delivered or in the heap
                self._d.stats.lag.observe(max(0.0, time.time() - row.cursor.emitted_ms / 1000))
                self._deliver(row, 1, time.time())
            self._cursor = row.cursor
            moved = True
        if moved:
            self._settle()
        return moved

    def _due_retries(self) -> bool:
        busy = False
        while not self._stop.is_set():
            with self._heap_lock:
                if not self._heap or self._heap[0][0] > time.time():
                    break
                _, event_id, attempts, first = heapq.heappop(self._heap)
            rows = self._d.wh.rows(
                f"SELECT {_FIELDS} FROM lifecycle_events "
                "WHERE tenant_id = {t:String} AND event_id = {e:String} LIMIT 1",
                {"t": self.sub.tenant_id, "e": event_id},
            )
            if rows:
                self._deliver(_row(rows[0]), attempts + 1, first)
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
        result = self._sender.send(sub.url, Message(row.event_id, now, body), signature)
        self._d.stats.latency.observe(result.latency_ms / 1000)
        if result.refused:
            outcome, pause = Outcome.REFUSED, 0.0
        else:
            outcome, pause = self._d.policy.after(
                result.status, attempt, time.time() - first, retry_after_seconds(result.retry_after)
            )
        self._d.stats.attempts.labels(outcome.value).inc()
        next_at = now + timedelta(seconds=pause) if outcome is Outcome.RETRYING else None
        self._record(row.event_id, row.type, attempt, outcome, result.status or 0, result.latency_ms,
                     result.error, result.excerpt, next_at)  # fmt: skip
        if outcome is Outcome.RETRYING:
            self.schedule(row.event_id, attempt, time.time() + pause, first)
        elif outcome is Outcome.DISABLED:
            self._stop.set()
            self._settle()
            self._d.store.disable(
                sub.tenant_id,
                sub.webhook_id,
                f"the receiver answered 410 Gone at {now.isoformat(timespec='seconds')}",
            )

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
        attempt_row = Attempt(sub.tenant_id, sub.webhook_id, event_id, event_type, attempt, datetime.now(UTC),
                              outcome, status, latency_ms, error, excerpt, next_at)  # fmt: skip
        self._waiting.append(self._d.recorder.record(attempt_row))

    def _settle(self) -> None:
        """Wait until this queue's attempts are stored, then store the cursor."""
        for done in self._waiting:
            while not done.wait(0.5):
                if self._stop.is_set():  # the cursor stays: the next start reads the log for these
                    return
        self._waiting.clear()
        sub, c = self.sub, self._cursor
        self._cursor_stored = time.monotonic()
        self._d.wh.insert_columns(
            "webhook_cursors",
            ["tenant_id", "webhook_id", "emitted_ms", "occurred_ns", "rank", "event_id", "updated_at"],
            [[sub.tenant_id], [sub.webhook_id], [c.emitted_ms], [c.occurred_ns], [c.rank], [c.event_id],
             [datetime.now(UTC)]],
        )  # fmt: skip
