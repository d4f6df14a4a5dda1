"""Who is calling each /v1 route, and whether they may: one dependency per role.

A route takes `Viewer`, `Operator` or `Admin` (the app's `state.authenticator` decides), or
`Sender` for what only the senders of data may do (ingest and admin keys: `Role.allows`): the key in
`Authorization: Bearer` is checked, its role must allow the route, and its tenant is the only
tenant the call sees. Without a key — allowed only while auth is off — the tenant comes from
`X-WRM-Tenant` (default `default`) and the actor is the unverified `X-WRM-Actor` label. The
platform admin (`admin_key`) may name any tenant with `X-WRM-Tenant`.

Each dependency carries its role, and `document_roles` copies it into the OpenAPI operation as
`x-wrm-role`, so the role × route test reads the rules from the schema the server publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from access import Authenticator, Forbidden, Principal, Role, Unauthenticated
from access.audit import Actor
from access.authenticator import permit
from access.credentials import bearer
from analytics.api.problems import unauthenticated
from analytics.runs.errors import InvalidInput
from redaction.book import PolicyBook
from warehouse.tenants import TENANT_RE

_BEARER = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer <key>`")


@dataclass(frozen=True)
class Caller:
    tenant: str
    actor: Actor
    principal: Principal | None  # None: auth is off and no key was sent

    @property
    def platform(self) -> bool:
        """Trusted with every tenant: the platform admin key, or anyone while auth is off."""
        return self.principal is None or self.principal.platform


def scrubbed(who: Caller, book: PolicyBook) -> Caller:
    """Without a key (auth off) the actor is the caller's own label (X-WRM-Actor): redacted with
    the tenant's policy before it is stored anywhere."""
    if who.principal is not None:
        return who
    name = book.redactor(who.tenant).text(who.actor.name)
    return who if name == who.actor.name else replace(who, actor=replace(who.actor, name=name))


class Need:
    """The dependency for routes that need `role`."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        x_wrm_tenant: Annotated[
            str,
            Header(description="tenant to act on: only without a key (auth off) or with the platform key"),
        ] = "",
        x_wrm_actor: Annotated[
            str,
            Header(description="who acts, recorded only when no key is sent (auth off); 200 characters kept"),
        ] = "",
    ) -> Caller:
        # `credentials` only declares the Bearer scheme in OpenAPI: the Authentication middleware,
        # which create_app installs in front of every /v1 route, has read and checked the key
        principal = permit(request.scope["state"]["principal"], self.role)
        if x_wrm_tenant and not TENANT_RE.match(x_wrm_tenant):
            raise InvalidInput(f"X-WRM-Tenant {x_wrm_tenant[:80]!r} is not a tenant id")
        if principal is None:
            return Caller(x_wrm_tenant or "default", Actor("", x_wrm_actor[:200] or "anonymous"), None)
        actor = Actor(principal.key_id, principal.name)
        if principal.tenant is None:
            return Caller(x_wrm_tenant or "default", actor, principal)
        if x_wrm_tenant and x_wrm_tenant != principal.tenant:
            raise Forbidden(f"this key belongs to another tenant than X-WRM-Tenant {x_wrm_tenant!r} names")
        return Caller(principal.tenant, actor, principal)


Viewer = Annotated[Caller, Depends(Need(Role.VIEWER))]
Operator = Annotated[Caller, Depends(Need(Role.OPERATOR))]
Admin = Annotated[Caller, Depends(Need(Role.ADMIN))]
Sender = Annotated[Caller, Depends(Need(Role.INGEST))]  # ingest or admin keys: apart from the ladder


class Authentication:
    """ASGI middleware: on /v1 the key is checked before FastAPI reads a body or validates a
    parameter, so a caller without a valid key gets 401 whatever else is wrong with the request,
    and a stranger's body is never parsed. The principal is left in the request state for `Need`,
    which checks the role."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
        try:  # on a worker thread: a key-cache refresh is a warehouse query
            principal = await run_in_threadpool(self.authenticator.authenticate, bearer(given))
        except Unauthenticated as exc:
            await unauthenticated(str(exc), str(scope["path"]))(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def document_roles(router: APIRouter) -> APIRouter:
    """Write each route's role into its OpenAPI operation (`x-wrm-role`) and list 401 and 403;
    called on a router before it is included (FastAPI includes routers lazily)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            need = _need_of(route.dependant)
            if need is not None:
                route.openapi_extra = {**(route.openapi_extra or {}), "x-wrm-role": need.role.value}
                below = (
                    "is neither ingest nor admin"
                    if need.role is Role.INGEST
                    else f"is below {need.role.value}"
                )
                route.responses = {
                    401: {"description": "no key, or an unknown or revoked one (problem+json)"},
                    403: {"description": f"the key's role {below} (problem+json)"},
                    **route.responses,
                }
    return router


def _need_of(dependant: Dependant) -> Need | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Need):
            return dep.call
        found = _need_of(dep)
        if found is not None:
            return found
    return None
