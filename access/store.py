"""API keys in the warehouse (sql/010): create, read, revoke, and note their last use."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from access.keys import digest, new_key
from access.roles import Role
from warehouse import Warehouse
from warehouse.tenants import TENANT_RE

_COLUMNS = (
    "key_id", "tenant_id", "role", "name", "key_digest", "created_at", "created_by", "revoked_at",
    "revoked_by", "version",
)  # fmt: skip
_SELECT = (
    "SELECT k.key_id, k.tenant_id, k.role, k.name, k.key_digest, k.created_at, k.created_by, "
    "k.revoked_at, k.revoked_by, u.last_used_at FROM api_keys AS k FINAL "
    "LEFT JOIN (SELECT key_id, max(last_used_at) AS last_used_at FROM api_key_uses GROUP BY key_id) AS u "
    "ON u.key_id = k.key_id {where} ORDER BY k.created_at DESC, k.key_id SETTINGS join_use_nulls = 1"
)


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    tenant: str
    role: Role
    name: str
    key_digest: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(r: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(
        key_id=r[0], tenant=r[1], role=Role(r[2]), name=r[3], key_digest=r[4], created_at=r[5],
        created_by=r[6], revoked_at=r[7], revoked_by=r[8], last_used_at=r[9],
    )  # fmt: skip


def _now_ms() -> datetime:
    """Now, to the millisecond the columns keep, so a key reads the same made and listed."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _version() -> int:
    """Microseconds: a revocation written after a creation always has the greater version."""
    return time.time_ns() // 1000


class KeyStore:
    """Keys on `wh`, a handle of the store's own (its calls must not queue behind a long query)."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh

    def create(self, tenant: str, role: Role, name: str, created_by: str) -> tuple[KeyRecord, str]:
        """Store a new key and return its record and the key itself (never stored). A tenant id
        must follow the `wrm.tenant.id` rule, or ValueError."""
        if not TENANT_RE.match(tenant):
            raise ValueError(f"{tenant[:80]!r} is not a tenant id (letters, digits, _ . -; at most 64)")
        if not 1 <= len(name) <= 200:
            raise ValueError("a key's name has 1 to 200 characters")
        key_id, key = new_key()
        record = KeyRecord(
            key_id=key_id, tenant=tenant, role=role, name=name, key_digest=digest(key),
            created_at=_now_ms(), created_by=created_by, revoked_at=None, revoked_by="",
            last_used_at=None,
        )  # fmt: skip
        self._write(record)
        return record, key

    def revoke(self, record: KeyRecord, revoked_by: str) -> KeyRecord:
        if not record.active:
            return record
        revoked = KeyRecord(**{**record.__dict__, "revoked_at": _now_ms(), "revoked_by": revoked_by})
        self._write(revoked)
        return revoked

    def get(self, key_id: str) -> KeyRecord | None:
        rows = self.wh.rows(_SELECT.format(where="WHERE k.key_id = {id:String}"), {"id": key_id})
        return _record(rows[0]) if rows else None

    def all(self, tenant: str | None = None) -> list[KeyRecord]:
        """Every key (of `tenant`, when given), newest first."""
        if tenant is None:
            return [_record(r) for r in self.wh.rows(_SELECT.format(where=""))]
        sql = _SELECT.format(where="WHERE k.tenant_id = {tenant:String}")
        return [_record(r) for r in self.wh.rows(sql, {"tenant": tenant})]

    def note_uses(self, uses: Mapping[str, datetime]) -> None:
        if uses:
            self.wh.insert_columns(
                "api_key_uses", ["key_id", "last_used_at"], [list(uses), list(uses.values())]
            )

    def _write(self, r: KeyRecord) -> None:
        values = [
            r.key_id, r.tenant, r.role.value, r.name, r.key_digest, r.created_at, r.created_by, r.revoked_at,
            r.revoked_by, _version(),
        ]  # fmt: skip
        self.wh.insert_columns("api_keys", list(_COLUMNS), [[v] for v in values])
