"""/v1/keys and /v1/audit: admins manage their tenant's keys and read its audit trail. The
platform admin (`admin_key`) does both for any tenant.

A key's name is stored as given and shown everywhere the key acts (key lists, the audit trail,
`requested_by`, annotation authors): a name the tenant's redaction rules would change is refused
(422), never stored altered."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from access import Authenticator, Forbidden, Unauthenticated
from access import audit as audit_log
from access.store import KeyRecord, KeyStore
from analytics.api.access_schemas import (
    TENANT_PATTERN,
    AuditEntry,
    AuditPage,
    KeyCreated,
    KeyInfo,
    KeyList,
    KeyRequest,
)
from analytics.api.caller import Admin, Caller
from analytics.runs.errors import InvalidInput, UnknownItem
from redaction.book import PolicyBook
from redaction.policy import Policy
from warehouse import Warehouse

MAX_AUDIT = 1000


def _info(r: KeyRecord) -> KeyInfo:
    return KeyInfo(
        id=r.key_id, name=r.name, tenant=r.tenant, role=r.role, created_at=r.created_at,
        created_by=r.created_by, revoked_at=r.revoked_at, revoked_by=r.revoked_by,
        last_used_at=r.last_used_at, active=r.active,
    )  # fmt: skip


def _keyed(who: Caller) -> None:
    """Making and revoking keys needs a key even with auth off: a key made by whoever reaches a
    loopback port would outlive the switch to auth required."""
    if who.principal is None:
        raise Unauthenticated(
            "making or revoking keys needs an admin key even with auth off: set admin_key "
            "(WRM_ADMIN_KEY), or make a first key with `wrm keys create` while the server is stopped"
        )


def _scope(who: Caller, tenant: str | None) -> str | None:
    """The tenant a listing covers: a tenant admin's own; the platform admin's choice (None: all)."""
    if not who.platform:
        if tenant not in (None, who.tenant):
            raise Forbidden("a tenant admin manages its own tenant's keys and audit trail only")
        return who.tenant
    return tenant


def name_problem(book: PolicyBook, tenant: str, name: str) -> str:
    """Why `name` cannot name a key of `tenant` ('' when it can): the tenant's redaction rules
    would change it. Says which rules, never the name."""
    tally = Counter[str]()
    if book.redactor(tenant or "default").text(name, tally) == name:
        return ""
    return (
        f"matches redaction rules ({', '.join(sorted(tally))}); a key's name is stored and shown as "
        "given (key lists, the audit trail, who did what): choose one no rule changes"
    )


def build_router(
    wh: Warehouse, store: KeyStore, authenticator: Authenticator, policies: PolicyBook | None = None
) -> APIRouter:
    """`wh`: the API's handle (audit reads and writes); `store`: where keys are kept;
    `policies`: the redaction policies key names are checked with (None: the built-in defaults)."""
    router = APIRouter(prefix="/v1", tags=["access"])
    book = policies or PolicyBook(Policy(), {}, b"")

    @router.post("/keys", response_model=KeyCreated, status_code=201)
    def create_key(who: Admin, body: KeyRequest) -> KeyCreated:
        """A new key for `tenant` with `role`. The answer is the only time `key` is shown."""
        _keyed(who)
        tenant = body.tenant or (None if who.platform else who.tenant)
        if tenant is None:
            raise InvalidInput("the platform admin names the key's `tenant`")
        _scope(who, tenant)
        problem = name_problem(book, tenant, body.name)
        if problem:
            raise RequestValidationError([{"loc": ("body", "name"), "msg": problem, "type": "value_error"}])
        record, key = store.create(tenant, body.role, body.name, who.actor.label)
        authenticator.remember(record)
        audit_log.record(
            wh, tenant, who.actor, "key.create", record.key_id, name=body.name, role=body.role.value
        )
        return KeyCreated(
            id=record.key_id,
            key=key,
            tenant=tenant,
            role=record.role,
            name=record.name,
            created_at=record.created_at,
        )

    @router.get("/keys", response_model=KeyList)
    def list_keys(
        who: Admin,
        tenant: Annotated[
            str | None, Query(pattern=TENANT_PATTERN, description="platform admin only")
        ] = None,
    ) -> KeyList:
        """Keys newest first, revoked ones included, with when each was last used."""
        return KeyList(keys=[_info(r) for r in store.all(_scope(who, tenant))])

    @router.delete("/keys/{key_id}", response_model=KeyInfo)
    def revoke_key(who: Admin, key_id: str) -> KeyInfo:
        """Revoke a key: refused on every port from now on. Revoking it again changes nothing."""
        _keyed(who)
        record = store.get(key_id)
        if record is None or (not who.platform and record.tenant != who.tenant):
            raise UnknownItem(f"no key {key_id[:80]!r}")  # another tenant's key does not exist here
        revoked = store.revoke(record, who.actor.label)
        authenticator.remember(revoked)
        if record.active:
            audit_log.record(wh, record.tenant, who.actor, "key.revoke", key_id, name=record.name)
        return _info(revoked)

    @router.get("/audit", response_model=AuditPage)
    def audit(
        who: Admin,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT)] = 100,
        before: datetime | None = None,
        action: Annotated[str, Query(max_length=64, description="e.g. run.cancel or key.create")] = "",
        tenant: Annotated[
            str | None, Query(pattern=TENANT_PATTERN, description="platform admin only")
        ] = None,
        cursor: Annotated[str | None, Query(max_length=200, description="a page's `next_cursor`")] = None,
    ) -> AuditPage:
        """Who did what, newest first: actions, annotations, tags and key changes."""
        try:
            rows, next_cursor = audit_log.entries(
                wh, _scope(who, tenant), limit=limit, before=before, cursor=cursor, action=action
            )
        except ValueError as exc:  # a cursor this route did not make
            raise InvalidInput(str(exc)) from None
        return AuditPage(entries=[AuditEntry(**e.__dict__) for e in rows], next_cursor=next_cursor)

    return router
