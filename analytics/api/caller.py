"""Who is calling: the one dependency every /v1 route takes, and the one place authentication
will go (API keys with roles, scoped to a tenant). Until then the tenant comes from the
`X-WRM-Tenant` header (default `default`) and the actor from `X-WRM-Actor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from analytics.runs.errors import InvalidInput
from warehouse.tenants import TENANT_RE


@dataclass(frozen=True)
class Caller:
    tenant: str
    actor: str


def caller(
    x_wrm_tenant: Annotated[str, Header(description="tenant whose runs to read and act on")] = "default",
    x_wrm_actor: Annotated[
        str, Header(max_length=200, description="who is acting, for the audit trail")
    ] = "",
) -> Caller:
    if not TENANT_RE.match(x_wrm_tenant):
        raise InvalidInput(f"X-WRM-Tenant {x_wrm_tenant[:80]!r} is not a tenant id")
    return Caller(tenant=x_wrm_tenant, actor=x_wrm_actor or "anonymous")
