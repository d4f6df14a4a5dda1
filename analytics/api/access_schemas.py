"""Bodies of /v1/keys and /v1/audit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from access import Role
from analytics.runs.schemas import Utc

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class KeyRequest(BaseModel):
    tenant: str | None = Field(
        None, pattern=TENANT_PATTERN, description="the key's tenant; a tenant admin may name only its own"
    )
    role: Role
    name: str = Field(min_length=1, max_length=200, description="who or what uses it, e.g. `ci-exporter`")


class KeyInfo(BaseModel):
    """A key as listed: never its secret."""

    id: str
    name: str
    tenant: str
    role: Role
    created_at: Utc
    created_by: str
    revoked_at: Utc | None
    revoked_by: str
    last_used_at: Utc | None = Field(description="to within a minute; null until first used")
    active: bool


class KeyCreated(BaseModel):
    """The new key, shown this once: only its digest is stored."""

    id: str
    key: str
    tenant: str
    role: Role
    name: str
    created_at: Utc


class KeyList(BaseModel):
    keys: list[KeyInfo]


class AuditEntry(BaseModel):
    tenant: str
    at: Utc
    event_id: str
    actor_key_id: str = Field(description="the acting key's id; empty when no key was sent (auth off)")
    actor_name: str
    action: str = Field(
        description="run.rerun, run.cancel, action.ack, run.annotate, run.tag, key.create, key.revoke"
    )
    target: str = Field(description="the run, action or key acted on")
    detail: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last"
    )
