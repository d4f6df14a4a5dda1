"""The durable outbox of lifecycle events (table lifecycle_events, sql/013): who may write it, and
how far the webhook dispatcher may read it.

Writers are the run assembly (one statement per cycle, statements/emit_run_events.sql), the API
(action.requested, webhook.test) and the alert evaluator (alert.firing, alert.resolved). Each
write takes the next stamp (`emitted_ms`, strictly increasing) and runs under one lock, so when a
write returns every stamp at or below its own is wholly stored; `committed_ms` is that stamp, and
the dispatcher reads only up to it. An insert the engine splits into several parts is therefore
never read half-written. Across a restart everything stored counts as committed: a cycle killed
mid-insert re-runs (its queue mark had not moved), finds the events already there by their
stable ids, and writes the rest under a new stamp.

One process writes one warehouse (the embedded deployment); several writers to one ClickHouse
server would each need their own stamp range, which this does not provide.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warehouse.client import Warehouse

_COLUMNS = (
    "tenant_id", "trace_id", "run_id", "event_id", "type", "step_id", "webhook_id", "workflow_name",
    "environment", "status", "occurred_at", "rank", "emitted_ms", "data",
)  # fmt: skip


@dataclass(frozen=True)
class OutboxEvent:
    """One event an application writes (the assembly writes its own in SQL)."""

    tenant_id: str
    event_id: str
    type: str
    occurred_at: datetime
    data: str  # the JSON of the payload's `data`
    run_id: str = ""
    step_id: str = ""
    webhook_id: str = ""  # '' for every subscription; set for a test event
    workflow: str = ""
    environment: str = ""
    status: str = ""
    rank: int = 0


def event_id(*parts: str) -> str:
    """A stable message id from what the event is about: the same parts give the same id, so a
    second write of the same transition is recognized (`msg_` + 32 hex digits; the SQL function
    wrm_event_id computes the same)."""
    text = b"".join(b"%d:%s" % (len(b), b) for b in (p.encode() for p in parts))
    return "msg_" + hashlib.sha256(text).hexdigest()[:32]


class Outbox:
    def __init__(self, warehouse: Warehouse) -> None:
        self._wh = warehouse
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        rows = warehouse.rows("SELECT max(emitted_ms) FROM lifecycle_events")
        stored = rows[0][0] if rows and isinstance(rows[0][0], int) else 0
        self._last = stored
        self.committed_ms = stored

    def write(self, run: Callable[[int], None]) -> int:
        """Run `run(stamp)`, which stores events under `stamp`, as the only writer; returns the
        stamp. The stamp counts as committed even when `run` fails (a later write's stamp is
        greater; whatever a failed write stored is complete or re-written by its caller)."""
        with self._lock:
            self._last = max(self._last + 1, int(time.time() * 1000))
            try:
                run(self._last)
            finally:
                with self._changed:
                    self.committed_ms = self._last
                    self._changed.notify_all()
            return self._last

    def emit(self, sql: str, parameters: Mapping[str, Any]) -> int:
        """Run an INSERT … SELECT into lifecycle_events that takes `{emitted_ms:Int64}`."""
        return self.write(lambda stamp: self._wh.command(sql, {**parameters, "emitted_ms": stamp}))

    def append(self, events: Sequence[OutboxEvent]) -> int:
        """Store events made by the application, once each: an id already stored is skipped."""

        def store(stamp: int) -> None:
            ids = [e.event_id for e in events]
            known = {
                r[0]
                for r in self._wh.rows(
                    "SELECT event_id FROM lifecycle_events WHERE event_id IN {ids:Array(String)}",
                    {"ids": ids},
                )
            }
            new = [e for e in events if e.event_id not in known]
            if new:
                self._wh.insert_columns(
                    "lifecycle_events",
                    _COLUMNS,
                    [
                        [e.tenant_id for e in new],
                        [""] * len(new),
                        [e.run_id for e in new],
                        [e.event_id for e in new],
                        [e.type for e in new],
                        [e.step_id for e in new],
                        [e.webhook_id for e in new],
                        [e.workflow for e in new],
                        [e.environment for e in new],
                        [e.status for e in new],
                        [e.occurred_at for e in new],
                        [e.rank for e in new],
                        [stamp] * len(new),
                        [e.data for e in new],
                    ],
                )

        return self.write(store)

    def wait_beyond(self, stamp_ms: int, timeout_s: float) -> int:
        """Block until something past `stamp_ms` is committed, or the timeout; the committed stamp."""
        with self._changed:
            if self.committed_ms <= stamp_ms:
                self._changed.wait(timeout_s)
            return self.committed_ms
