"""The delivery log (table webhook_attempts): a group-committing recorder, and the reads.

Every attempt is written before its queue moves past the message (dispatcher.py waits for the
recorder), so after a crash the log says which messages were delivered, which wait for a retry
and when. The recorder batches the attempts of every queue into one insert every `interval_s`,
so a busy subscription costs one insert per interval, not one per message; the only attempts a
`kill -9` can lose are those of the last interval, which are then sent again (at-least-once,
same message id)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from analytics.webhooks.policy import Outcome
from analytics.webhooks.schemas import Delivery
from warehouse import Warehouse, is_transient

log = logging.getLogger(__name__)

_COLUMNS = (
    "tenant_id", "webhook_id", "event_id", "event_type", "attempt", "at", "outcome", "http_status",
    "latency_ms", "error", "response_excerpt", "next_at",
)  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    tenant_id: str
    webhook_id: str
    event_id: str
    event_type: str
    attempt: int
    at: datetime
    outcome: Outcome
    http_status: int  # 0: no answer
    latency_ms: float
    error: str
    response_excerpt: str
    next_at: datetime | None


@dataclass(frozen=True)
class Standing:
    """Where a message stands for one subscription: its latest attempt."""

    event_id: str
    event_type: str
    attempts: int
    outcome: Outcome
    next_at: datetime | None
    first_at: datetime


class Recorder:
    """Group commit of attempts. `record` returns an Event set once the attempt is stored."""

    def __init__(self, warehouse: Warehouse, interval_s: float = 0.05) -> None:
        self._wh = warehouse
        self._interval_s = interval_s
        self._queue: list[tuple[Attempt, threading.Event]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="wrm-webhook-log", daemon=True)
        self._thread.start()

    def record(self, attempt: Attempt) -> threading.Event:
        done = threading.Event()
        with self._cond:
            self._queue.append((attempt, done))
            self._cond.notify()
        return done

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(30)

    def _run(self) -> None:
        pause = 0.0
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue and self._closing:
                    return
            time.sleep(max(self._interval_s, pause))  # gather what other queues record meanwhile
            with self._cond:
                batch, self._queue = self._queue, []
            try:
                rows = [astuple(a) for a, _ in batch]
                self._wh.insert_columns(
                    "webhook_attempts",
                    _COLUMNS,
                    [[str(r[i]) if i == 6 else r[i] for r in rows] for i in range(len(_COLUMNS))],
                )
            except Exception as exc:  # kept and retried: a queue waits rather than lose its log
                pause = min(5.0, max(0.1, pause * 2))
                log.warning(
                    "webhook delivery log not written (%s), retrying: %s",
                    "transient" if is_transient(exc) else "permanent",
                    type(exc).__name__,
                )
                with self._cond:
                    self._queue = batch + self._queue
                    if self._closing and not is_transient(exc):
                        return
                continue
            pause = 0.0
            for _, done in batch:
                done.set()


# Where each message stands: its latest attempt, and when its retry schedule began (the first
# attempt, or the latest manual retry request; maxIf alone would give 1970 for none).
_STANDING = (
    "SELECT event_id, any(event_type), max(attempt), argMax(outcome, (attempt, at)) AS last, "
    "argMax(next_at, (attempt, at)), "
    "if(countIf(outcome = 'requested') > 0, maxIf(at, outcome = 'requested'), min(at)) "
    "FROM webhook_attempts WHERE tenant_id = {t:String} AND webhook_id = {w:String} "
)


def standings(wh: Warehouse, tenant: str, webhook_id: str, event_ids: list[str]) -> dict[str, Standing]:
    """The latest attempt of each of `event_ids` that has one."""
    rows = wh.rows(
        _STANDING + "AND event_id IN {ids:Array(String)} GROUP BY event_id",
        {"t": tenant, "w": webhook_id, "ids": event_ids},
    )
    return {r[0]: _standing(r) for r in rows}


def pending(wh: Warehouse, tenant: str, webhook_id: str) -> list[Standing]:
    """The messages waiting for another attempt: latest outcome retrying or requested."""
    rows = wh.rows(
        _STANDING + "GROUP BY event_id HAVING last IN ('retrying', 'requested')",
        {"t": tenant, "w": webhook_id},
    )
    return [_standing(r) for r in rows]


def _standing(r: tuple[Any, ...]) -> Standing:
    return Standing(r[0], r[1], int(r[2]), Outcome(r[3]), r[4], r[5])


def deliveries(
    wh: Warehouse, tenant: str, webhook_id: str, limit: int, message_id: str = ""
) -> list[Delivery]:
    """The log, newest first; every attempt, or one message's."""
    rows = wh.rows(
        "SELECT event_id, event_type, attempt, at, outcome, http_status, latency_ms, error, "
        "response_excerpt, next_at FROM webhook_attempts "
        "WHERE tenant_id = {t:String} AND webhook_id = {w:String} "
        "AND ({m:String} = '' OR event_id = {m:String}) ORDER BY at DESC, attempt DESC LIMIT {n:UInt32}",
        {"t": tenant, "w": webhook_id, "m": message_id, "n": limit},
    )
    return [
        Delivery(
            message_id=r[0],
            event_type=r[1],
            attempt=r[2],
            at=r[3],
            outcome=r[4],
            http_status=r[5] or None,
            latency_ms=round(r[6], 3),
            error=r[7],
            response_excerpt=r[8],
            next_attempt_at=r[9],
        )
        for r in rows
    ]
