"""The audit trail (sql/010 `audit_log`): who, with which key, did what to which item.

Written by the API for every re-run and cancel request, acknowledgement, annotation, tag change
and key change; read by `GET /v1/audit` (admins)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from warehouse import Warehouse

_FIRST, _LAST = datetime(1900, 1, 1), datetime(2262, 4, 11)  # what DateTime64(6) holds
_COLUMNS = ["tenant_id", "at", "event_id", "actor_key_id", "actor_name", "action", "target", "detail"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a key's id and name, or (auth off, no key) an unverified label and no id."""

    key_id: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.key_id})" if self.key_id else self.name


@dataclass(frozen=True)
class AuditEntry:
    tenant: str
    at: datetime
    event_id: str
    actor_key_id: str
    actor_name: str
    action: str
    target: str
    detail: dict[str, Any]


def record(wh: Warehouse, tenant: str, actor: Actor, action: str, target: str, **detail: Any) -> None:
    """Append one entry; `action` is a dotted name such as `run.cancel` or `key.create`."""
    values = [
        tenant, datetime.now(UTC), uuid.uuid4().hex, actor.key_id, actor.name, action, target,
        json.dumps(detail, default=str, sort_keys=True),
    ]  # fmt: skip
    wh.insert_columns("audit_log", _COLUMNS, [[v] for v in values])


def entries(
    wh: Warehouse,
    tenant: str | None,
    *,
    limit: int,
    before: datetime | None = None,
    cursor: str | None = None,
    action: str = "",
) -> tuple[list[AuditEntry], str | None]:
    """A page, newest first, and the cursor of the next one (None after the last); `tenant` None
    (the platform admin) reads every tenant's entries. The cursor is the (at, event_id) of the
    page's last entry, so entries that share a time are neither skipped nor repeated; a cursor
    this function did not make is a ValueError."""
    where = ["1"]
    params: dict[str, Any] = {"limit": limit}
    if tenant is not None:
        where.append("tenant_id = {tenant:String}")
        params["tenant"] = tenant
    if before is not None:
        before = before if before.tzinfo is None else before.astimezone(UTC).replace(tzinfo=None)
        if before <= _FIRST:
            return [], None  # nothing was recorded before the first time the column can hold
    if before is not None and before < _LAST:
        where.append("at < {before:DateTime64(6, 'UTC')}")
        params["before"] = before
    if cursor:
        where.append("(at, event_id) < ({after_at:DateTime64(6, 'UTC')}, {after_id:String})")
        params["after_at"], params["after_id"] = _decode(cursor)
    if action:
        where.append("action = {action:String}")
        params["action"] = action
    rows = wh.rows(
        "SELECT tenant_id, at, event_id, actor_key_id, actor_name, action, target, detail FROM audit_log "
        f"WHERE {' AND '.join(where)} ORDER BY at DESC, event_id DESC LIMIT {{limit:UInt32}}",
        params,
    )
    page = [
        AuditEntry(
            tenant=r[0],
            at=r[1],
            event_id=r[2],
            actor_key_id=r[3],
            actor_name=r[4],
            action=r[5],
            target=r[6],
            detail=json.loads(r[7] or "{}"),
        )
        for r in rows
    ]
    last = page[-1] if len(page) == limit else None
    return page, f"{last.at.isoformat()}|{last.event_id}" if last else None


def _decode(cursor: str) -> tuple[datetime, str]:
    at, _, event_id = cursor.partition("|")
    try:
        when = datetime.fromisoformat(at).replace(tzinfo=None)
    except ValueError:
        raise ValueError(f"cursor {cursor[:80]!r} is not a `next_cursor` of the audit trail") from None
    if not event_id.isalnum() or not _FIRST <= when < _LAST:
        raise ValueError(f"cursor {cursor[:80]!r} is not a `next_cursor` of the audit trail")
    return when, event_id
