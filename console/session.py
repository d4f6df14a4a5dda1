"""Who is using the console, and whether a form really came from it.

Signing in stores the API key in a cookie (`wrm_key`: HttpOnly, SameSite=Strict, Path=/ui, and
Secure when the page came over https), so every page is read with the key's role and tenant,
checked on each request by the same Authenticator as the API (a revoked key stops working at
once). With auth off no sign-in is needed: the console acts as the platform, tenant `default`
unless `?tenant=` names another.

Forms are protected twice from cross-site posting: the key cookie is SameSite=Strict, and every
POST must carry the `csrf` field equal to the `wrm_csrf` cookie (a random token set on the first
page; double-submit), so a page elsewhere can neither send the key nor know the token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

from access import Authenticator, Forbidden, Principal, Role, Unauthenticated
from access.audit import Actor
from analytics.api.caller import Caller
from warehouse.tenants import TENANT_RE

KEY_COOKIE = "wrm_key"
CSRF_COOKIE = "wrm_csrf"
CSRF_FIELD = "csrf"
PATH = "/ui"
MAX_KEY = 512


# Why the sign-in page is shown: a code in its URL, never text from the URL (a link elsewhere
# could otherwise make the page say anything).
REASONS = {
    "needed": "sign in with an API key",
    "expired": "your key no longer works: sign in again",
    "signed_out": "signed out",
}


class SignInNeeded(Exception):
    """No key, or one that no longer works: the page sends the browser to sign in."""

    def __init__(self, reason: str) -> None:
        super().__init__(REASONS[reason])
        self.reason = reason  # a key of REASONS


class BadForm(Exception):
    """A POST without the console's CSRF token: refused, nothing done."""


@dataclass(frozen=True)
class Visitor:
    """The console's caller: what the API's routes get as `Caller`, plus what a page shows."""

    caller: Caller
    signed_in: bool  # False: auth is off and no key was given
    csrf: str

    @property
    def tenant(self) -> str:
        return self.caller.tenant

    @property
    def principal(self) -> Principal | None:
        return self.caller.principal

    @property
    def role(self) -> Role:
        return self.principal.role if self.principal is not None else Role.ADMIN

    @property
    def may_act(self) -> bool:
        """Operators and admins see re-run, cancel, annotate and tag; viewers see none."""
        return self.role.allows(Role.OPERATOR)

    @property
    def platform(self) -> bool:
        return self.caller.platform

    @property
    def who(self) -> str:
        p = self.principal
        if p is None:
            return "anyone on this machine (auth is off)"
        return f"{p.name} ({p.role.value}{'' if p.tenant is None else ', tenant ' + p.tenant})"


def csrf_token(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE, "")
    return token if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum() else ""


async def visitor(request: Request, authenticator: Authenticator) -> Visitor:
    """The console's caller for `request`; raises SignInNeeded when a key is needed or is bad."""
    key = request.cookies.get(KEY_COOKIE, "")[:MAX_KEY]
    try:  # a worker thread: a key-cache refresh is a warehouse query
        principal = await run_in_threadpool(authenticator.authenticate, key or None)
    except Unauthenticated as exc:
        raise SignInNeeded("expired" if key else "needed") from exc
    if principal is not None and not principal.role.allows(Role.VIEWER):
        # an ingest key sends data; reading runs needs a viewer, here as on /v1
        raise Forbidden(f"this key's role ({principal.role.value}) may send spans but not read runs")
    wanted = request.query_params.get("tenant", "")
    tenant = wanted if wanted and TENANT_RE.match(wanted) else "default"
    if principal is None:
        caller = Caller(tenant, Actor("", "console"), None)
    else:
        own = principal.tenant
        caller = Caller(
            own if own is not None else tenant, Actor(principal.key_id, principal.name), principal
        )
    return Visitor(caller, principal is not None, csrf_token(request) or secrets.token_urlsafe(32))


def keep_csrf(request: Request, response: Response, token: str) -> None:
    """Set the CSRF cookie the first time a page is shown."""
    if csrf_token(request) != token:
        response.set_cookie(
            CSRF_COOKIE, token, path=PATH, httponly=True, samesite="strict", secure=_https(request)
        )


def check_form(request: Request, form_token: str) -> None:
    """A POST is the console's own only when it comes from this origin (browsers send `Origin`
    and `Sec-Fetch-Site`; a page on another port of the same host is same-site but not
    same-origin, and could plant its own cookie) and its `csrf` field matches the cookie."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise BadForm("this form was sent from another site: open the console and retry")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise BadForm("this form was sent from another site: open the console and retry")
    cookie = csrf_token(request)
    if not cookie or not hmac.compare_digest(cookie, form_token or ""):
        raise BadForm("this form did not come from this console (or its page is too old): reload and retry")


def sign_in(request: Request, response: Response, key: str) -> None:
    response.set_cookie(KEY_COOKIE, key, path=PATH, httponly=True, samesite="strict", secure=_https(request))


def sign_out(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path=PATH)


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
