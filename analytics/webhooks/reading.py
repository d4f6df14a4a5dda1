"""Reading the outbox for one subscription: the events after a cursor, in outbox order, that
match it (projection by_emitted of lifecycle_events serves these reads)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analytics.webhooks.schemas import EVENT_TYPES
from analytics.webhooks.store import Subscription
from warehouse import Warehouse

_FIELDS = "event_id, type, run_id, emitted_ms, toUnixTimestamp64Nano(occurred_at), rank, occurred_at, data"
PAST_ALL_NS = 2**63 - 1  # a cursor past every event of its stamp


@dataclass(frozen=True)
class Cursor:
    """A position in outbox order: (stamp, time of the transition, rank, id)."""

    emitted_ms: int
    occurred_ns: int
    rank: int
    event_id: str


@dataclass(frozen=True)
class OutboxRow:
    event_id: str
    type: str
    run_id: str
    cursor: Cursor
    occurred_at: datetime
    data: str

    def payload(self) -> str:
        """The Standard Webhooks body: {"type", "timestamp", "data"}."""
        at = self.occurred_at.replace(tzinfo=UTC) if self.occurred_at.tzinfo is None else self.occurred_at
        stamp = at.isoformat().replace("+00:00", "Z")
        return f'{{"type":{json.dumps(self.type)},"timestamp":{json.dumps(stamp)},"data":{self.data}}}'


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], Cursor(int(r[3]), int(r[4]), int(r[5]), r[0]), r[6], r[7])


def expand(names: tuple[str, ...]) -> list[str]:
    """Concrete event types of a subscription's `events` ('*' and 'run.*' expanded)."""
    if "*" in names:
        return list(EVENT_TYPES)
    return [t for t in EVENT_TYPES if t in names or t.split(".")[0] + ".*" in names]


def events_after(
    wh: Warehouse, sub: Subscription, cursor: Cursor, committed: int, limit: int
) -> list[OutboxRow]:
    """Up to `limit` events after `cursor` and at or below stamp `committed` that `sub` takes:
    its own test events, and the others matching its types and filters."""
    rows = wh.rows(
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
            "t": sub.tenant_id, "ms": cursor.emitted_ms, "committed": committed, "ns": cursor.occurred_ns,
            "rank": cursor.rank, "id": cursor.event_id, "w": sub.webhook_id, "types": expand(sub.events),
            "wf": list(sub.workflows), "env": list(sub.environments), "st": list(sub.statuses), "n": limit,
        },
    )  # fmt: skip
    return [_row(r) for r in rows]


def event(wh: Warehouse, tenant: str, event_id: str) -> OutboxRow | None:
    rows = wh.rows(
        f"SELECT {_FIELDS} FROM lifecycle_events "
        "WHERE tenant_id = {t:String} AND event_id = {e:String} LIMIT 1",
        {"t": tenant, "e": event_id},
    )
    return _row(rows[0]) if rows else None
