"""Subscriptions in the warehouse (table webhooks, sql/013): the newest row of an id wins, a
deletion is an is_deleted row. Every read and write names the caller's tenant."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.webhooks.schemas import Webhook, WebhookCreate, WebhookUpdate
from analytics.webhooks.signing import new_secret
from analytics.webhooks.targets import UnknownWebhook, WebhookError, check
from warehouse import Warehouse

MAX_PER_TENANT = 100
ROTATION_GRACE = timedelta(hours=24)  # an old secret keeps signing this long after a rotation
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = (
    "tenant_id", "webhook_id", "url", "events", "workflows", "environments", "statuses", "description",
    "enabled", "disabled_reason", "secret", "previous_secret", "previous_until", "created_at", "created_ms",
    "created_by", "updated_at", "is_deleted",
)  # fmt: skip


class TooManyWebhooks(WebhookError):
    """The tenant has MAX_PER_TENANT subscriptions."""


@dataclass(frozen=True)
class Subscription:
    """A subscription as stored, secrets included: never returned by the API as such."""

    tenant_id: str
    webhook_id: str
    url: str
    events: tuple[str, ...]
    workflows: tuple[str, ...]
    environments: tuple[str, ...]
    statuses: tuple[str, ...]
    description: str
    enabled: bool
    disabled_reason: str
    secret: str
    previous_secret: str
    previous_until: datetime
    created_at: datetime
    created_ms: int
    created_by: str

    def signing_keys(self, now: datetime) -> list[str]:
        """The secrets a message is signed with now: the current one, and the previous one while
        its grace period lasts."""
        if self.previous_secret and now < self.previous_until:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def public(self) -> Webhook:
        return Webhook(
            webhook_id=self.webhook_id,
            url=self.url,
            events=list(self.events),
            workflows=list(self.workflows),
            environments=list(self.environments),
            statuses=list(self.statuses),
            description=self.description,
            enabled=self.enabled,
            disabled_reason=self.disabled_reason,
            created_at=self.created_at,
            created_by=self.created_by,
            previous_secret_valid_until=self.previous_until if self.previous_secret else None,
        )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _subscription(r: tuple[Any, ...]) -> Subscription:
    return Subscription(
        tenant_id=r[0],
        webhook_id=r[1],
        url=r[2],
        events=tuple(r[3]),
        workflows=tuple(r[4]),
        environments=tuple(r[5]),
        statuses=tuple(r[6]),
        description=r[7],
        enabled=bool(r[8]),
        disabled_reason=r[9],
        secret=r[10],
        previous_secret=r[11],
        previous_until=_utc(r[12]),
        created_at=_utc(r[13]),
        created_ms=int(r[14]),
        created_by=r[15],
    )


class SubscriptionStore:
    """Subscriptions of every tenant; `on_change` is called after each write (the dispatcher
    reloads its queues)."""

    def __init__(
        self, warehouse: Warehouse, allow_private: bool, on_change: Callable[[], None] = lambda: None
    ):
        self._wh = warehouse
        self._allow_private = allow_private
        self.on_change = on_change
        self._lock = threading.Lock()

    def _select(self, where: str, params: dict[str, Any]) -> list[Subscription]:
        rows = self._wh.rows(
            f"SELECT {', '.join(_COLUMNS[:-2])} FROM webhooks FINAL WHERE {where} "
            "ORDER BY tenant_id, created_ms, webhook_id",
            params,
        )
        return [_subscription(r) for r in rows]

    def all(self) -> list[Subscription]:
        return self._select("1", {})

    def list(self, tenant: str) -> list[Subscription]:
        return self._select("tenant_id = {t:String}", {"t": tenant})

    def get(self, tenant: str, webhook_id: str) -> Subscription:
        found = self._select(
            "tenant_id = {t:String} AND webhook_id = {w:String}", {"t": tenant, "w": webhook_id}
        )
        if not found:
            raise UnknownWebhook(f"no webhook {webhook_id[:80]!r}")
        return found[0]

    def create(self, tenant: str, req: WebhookCreate, created_by: str) -> Subscription:
        check(req.url, self._allow_private)
        with self._lock:
            if len(self.list(tenant)) >= MAX_PER_TENANT:
                raise TooManyWebhooks(f"a tenant has at most {MAX_PER_TENANT} webhooks; delete one first")
            now = datetime.now(UTC)
            sub = Subscription(
                tenant_id=tenant,
                webhook_id="wh_" + uuid.uuid4().hex,
                url=req.url,
                events=tuple(req.events),
                workflows=tuple(req.workflows),
                environments=tuple(req.environments),
                statuses=tuple(req.statuses),
                description=req.description,
                enabled=req.enabled,
                disabled_reason="",
                secret=new_secret(),
                previous_secret="",
                previous_until=_EPOCH,
                created_at=now,
                created_ms=int(time.time() * 1000),
                created_by=created_by,
            )
            self._write(sub)
        self.on_change()
        return sub

    def update(self, tenant: str, webhook_id: str, req: WebhookUpdate) -> Subscription:
        if req.url is not None:
            check(req.url, self._allow_private)
        with self._lock:
            sub = self.get(tenant, webhook_id)
            changes: dict[str, Any] = {
                k: (tuple(v) if isinstance(v, list) else v)
                for k, v in req.model_dump(exclude_unset=True).items()
                if v is not None
            }
            if changes.get("enabled"):
                changes["disabled_reason"] = ""
            sub = replace(sub, **changes)
            self._write(sub)
        self.on_change()
        return sub

    def rotate(self, tenant: str, webhook_id: str) -> Subscription:
        with self._lock:
            sub = self.get(tenant, webhook_id)
            sub = replace(
                sub,
                secret=new_secret(),
                previous_secret=sub.secret,
                previous_until=datetime.now(UTC) + ROTATION_GRACE,
            )
            self._write(sub)
        self.on_change()
        return sub

    def disable(self, tenant: str, webhook_id: str, reason: str) -> None:
        with self._lock:
            try:
                sub = self.get(tenant, webhook_id)
            except UnknownWebhook:
                return  # deleted meanwhile
            self._write(replace(sub, enabled=False, disabled_reason=reason))
        self.on_change()

    def delete(self, tenant: str, webhook_id: str) -> None:
        with self._lock:
            sub = self.get(tenant, webhook_id)
            self._write(sub, deleted=True)
        self.on_change()

    def _write(self, sub: Subscription, deleted: bool = False) -> None:
        values = [
            sub.tenant_id, sub.webhook_id, sub.url, list(sub.events), list(sub.workflows),
            list(sub.environments), list(sub.statuses), sub.description, int(sub.enabled),
            sub.disabled_reason, sub.secret, sub.previous_secret, sub.previous_until, sub.created_at,
            sub.created_ms, sub.created_by,
            datetime.now(UTC), int(deleted),
        ]  # fmt: skip
        self._wh.insert_columns("webhooks", _COLUMNS, [[v] for v in values])
