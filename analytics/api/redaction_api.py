"""Redaction over HTTP: a tenant's policy (`/v1/tenants/{tenant}/redaction`, admins), the built-in
detectors (`/v1/redaction/detectors`, viewers) and `POST /v1/redact`, which redacts what a sender
gives it with its tenant's effective policy, exactly as ingest would store it.

A policy change applies to spans received after it, never to stored ones, and is written to the
audit trail with the tenant's own policy before and after. Changing a policy needs a key even
while auth is off: a policy weakened by whoever reaches a loopback port would outlive the switch
to auth required. `POST /v1/redact` is for the senders of data (ingest and admin keys): a viewer
could otherwise hash guesses to match the `hash` digests it reads in stored spans.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator

from access import Unauthenticated
from access import audit as audit_log
from access.errors import Forbidden
from analytics.api.bounded_route import bounded_route
from analytics.api.caller import Admin, Caller, Sender, Viewer
from analytics.runs.schemas import Utc
from redaction.book import PolicyBook, Source, TenantPolicy
from redaction.detectors import DETECTORS
from redaction.policy import Effective, Policy, PolicyError, error_text
from warehouse import Warehouse
from warehouse.tenants import TENANT_RE

MAX_REDACT_BYTES = 1 << 20  # a larger POST /v1/redact body is refused (413) before it is read
MAX_ITEMS = 10_000
MAX_DEPTH = 32  # nesting of lists and objects in one item
POLICY_ACTION = "redaction.policy"

TenantPath = Annotated[str, Path(pattern=TENANT_RE.pattern, description="a tenant id")]


class DetectorInfo(BaseModel):
    name: str
    description: str
    default: Literal["mask", "off"] = Field(description="its setting on a fresh install")
    kind: Literal["key", "value"] = Field(
        description="`key`: matches attribute keys and takes the whole value; `value`: found inside text"
    )


class DetectorList(BaseModel):
    detectors: list[DetectorInfo]


class TenantRedaction(BaseModel):
    tenant: str
    source: Source = Field(
        description="where the tenant's own policy comes from: `api` (set here), `settings` "
        "(tenant_redaction), or `global` (it has none: the global policy applies alone)"
    )
    policy: Policy | None = Field(description="the tenant's own policy, layered over the global one")
    effective: Effective = Field(description="what applies to spans received now: defaults, global, own")
    changed_at: Utc | None = Field(description="the last change through the API (set or removed)")
    changed_by: str = Field(description="who made that change; empty when none was made")
    unusable: str = Field(
        "",
        description="why the stored policy cannot be applied: its spans are refused until set or removed",
    )


class RedactRequest(BaseModel):
    items: list[Any] = Field(
        max_length=MAX_ITEMS,
        description="each a string (redacted as text, like a span name or a log line), an object "
        "(redacted as a mapping of attributes: key rules apply to its keys, a dropped attribute is "
        "left out) or an array of those; numbers, booleans and null come back unchanged",
    )

    @field_validator("items")
    @classmethod
    def _plain(cls, value: list[Any]) -> list[Any]:
        for i, item in enumerate(value):
            problem = unfit(item)
            if problem:
                raise ValueError(f"item {i} {problem}")
        return value


class RedactResult(BaseModel):
    items: list[Any] = Field(description="the items redacted, in order")
    redacted: dict[str, int] = Field(description="rule or detector name → values redacted, over all items")


def unfit(value: Any, depth: int = 0) -> str:
    """Why a JSON value cannot be redacted and sent back ('' when it can)."""
    if depth > MAX_DEPTH:
        return f"nests lists and objects more than {MAX_DEPTH} deep"
    if isinstance(value, float) and not math.isfinite(value):
        return "holds a number that is not finite"
    if isinstance(value, str):
        return "holds a lone surrogate (not Unicode text)" if _surrogate(value) else ""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        if isinstance(key, str) and _surrogate(key):
            return "holds a lone surrogate (not Unicode text)"
        problem = unfit(child, depth + 1)
        if problem:
            return problem
    return ""


def _surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def detectors() -> DetectorList:
    return DetectorList(
        detectors=[
            DetectorInfo(
                name=d.name,
                description=d.description,
                default="mask" if d.default_on else "off",
                kind="key" if d.on_keys else "value",
            )
            for d in DETECTORS
        ]
    )


def view(found: TenantPolicy) -> TenantRedaction:
    stored = found.stored
    return TenantRedaction(
        tenant=found.tenant,
        source=found.source,
        policy=found.own,
        effective=found.effective,
        changed_at=stored.changed_at if stored is not None else None,
        changed_by=stored.changed_by if stored is not None else "",
        unusable=found.unusable,
    )


def policy_json(policy: Policy | None) -> dict[str, Any] | None:
    """A policy as the audit trail keeps it: what was written, without defaults."""
    return None if policy is None else policy.model_dump(mode="json", exclude_defaults=True)


def _invalid(where: tuple[str | int, ...], problem: str) -> RequestValidationError:
    return RequestValidationError([{"loc": where, "msg": problem, "type": "value_error"}])


def _own_tenant(who: Caller, tenant: str) -> None:
    if not who.platform and tenant != who.tenant:
        raise Forbidden("a tenant admin reads and sets its own tenant's redaction policy only")


def _keyed(who: Caller) -> None:
    if who.principal is None:
        raise Unauthenticated(
            "changing a redaction policy needs an admin key even with auth off: set admin_key "
            "(WRM_ADMIN_KEY), or change the `tenant_redaction` setting and restart"
        )


def build_router(wh: Warehouse, book: PolicyBook) -> APIRouter:
    """`wh`: the API's handle (audit entries); `book`: the server's policies (the receiver's too)."""
    router = APIRouter(prefix="/v1", tags=["redaction"])
    changes = threading.Lock()  # before and after of one change are not interleaved with another's

    @router.get("/redaction/detectors", response_model=DetectorList)
    def list_detectors(who: Viewer) -> DetectorList:
        """The built-in detectors: what each finds and whether a fresh install has it on."""
        return detectors()

    @router.get("/tenants/{tenant}/redaction", response_model=TenantRedaction)
    def get_policy(who: Admin, tenant: TenantPath) -> TenantRedaction:
        """The tenant's own policy, where it comes from, and the effective policy spans get now."""
        _own_tenant(who, tenant)
        return view(book.policy(tenant))

    @router.put("/tenants/{tenant}/redaction", response_model=TenantRedaction)
    def put_policy(who: Admin, tenant: TenantPath, body: Policy) -> TenantRedaction:
        """Set the tenant's policy (in place of its settings policy, over the global one); it
        applies to spans received from now on. Audited with the policy before and after."""
        _keyed(who)
        _own_tenant(who, tenant)
        try:
            return _change(who, tenant, body)
        except PolicyError as exc:  # PolicyBook.set compiles it with the global rules before saving
            raise _invalid(("body", "rules"), error_text(exc)) from None

    @router.delete("/tenants/{tenant}/redaction", response_model=TenantRedaction)
    def delete_policy(who: Admin, tenant: TenantPath) -> TenantRedaction:
        """Remove the policy set through the API: the tenant's settings policy (or the global one
        alone) applies again. Removing it again changes nothing."""
        _keyed(who)
        _own_tenant(who, tenant)
        return _change(who, tenant, None)

    def _change(who: Caller, tenant: str, policy: Policy | None) -> TenantRedaction:
        with changes:
            current = book.policy(tenant)
            unchanged = not current.unusable and (
                current.source != "api"
                if policy is None
                else current.source == "api" and current.own == policy
            )
            if unchanged:
                return view(current)
            before, after = book.set(tenant, policy, who.actor.label)
            audit_log.record(
                wh, tenant, who.actor, POLICY_ACTION, tenant,
                source="api", before=policy_json(before.own), after=policy_json(after.own),
                before_source=before.source, after_source=after.source,
            )  # fmt: skip
        return view(after)

    def redact(who: Sender, body: RedactRequest) -> RedactResult:
        """Redact with the caller's tenant's effective policy, as ingest stores spans: clean a
        prompt before it goes to a model with exactly the rules WRM stores under. Bodies are at
        most 1 MiB (413 past it)."""
        redactor = book.redactor(who.tenant)
        tally: Counter[str] = Counter()
        items = [redactor.redact(item, tally) for item in body.items]
        return RedactResult(items=items, redacted=dict(sorted(tally.items())))

    router.add_api_route(
        "/redact",
        redact,
        methods=["POST"],
        response_model=RedactResult,
        route_class_override=bounded_route(MAX_REDACT_BYTES),
    )
    return router
