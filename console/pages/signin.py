"""Signing in with an API key, and out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from access import Role, Unauthenticated
from console import session
from console.base import HEADERS, Console


def _next(target: str) -> str:
    """Only a page of the console: never another site (an open redirect)."""
    return target if target.startswith("/ui/") and not target.startswith("/ui//") else "/ui/"


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/signin", include_in_schema=False)
    async def signin_page(request: Request) -> Response:
        why = session.REASONS.get(request.query_params.get("why", ""), "")
        target = _next(request.query_params.get("next", "/ui/"))
        return _page(request, why=why, next=target, error="")

    def _page(request: Request, status: int = 200, **context: str) -> Response:
        token = session.csrf_token(request) or secrets.token_urlsafe(32)
        response = console.render(request, None, "signin.html.j2", status, csrf=token, **context)
        session.keep_csrf(request, response, token)
        return response

    @router.post("/signin", include_in_schema=False)
    @console.page_route
    async def signin(
        request: Request, key: str = Form(""), next: str = Form("/ui/"), csrf: str = Form("")
    ) -> Response:
        session.check_form(request, csrf)  # nobody else's page may sign a browser in with their key
        key = key.strip()[: session.MAX_KEY]
        target = _next(next)
        try:
            principal = await run_in_threadpool(console.authenticator.authenticate, key or None)
        except Unauthenticated:
            return _page(request, 401, why="", next=target, error="That key is unknown, revoked or mistyped.")
        if principal is not None and not principal.role.allows(Role.VIEWER):
            return _page(
                request, 403, why="", next=target,
                error=f"This is an {principal.role.value} key: it sends spans but cannot read runs. "
                "Use a viewer, operator or admin key.",
            )  # fmt: skip
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        if principal is not None:
            session.sign_in(request, response, key)
        return response

    @router.post("/signout", include_in_schema=False)
    @console.page_route
    async def signout(request: Request, csrf: str = Form("")) -> Response:
        session.check_form(request, csrf)
        response = RedirectResponse("/ui/signin?why=signed_out", status_code=303, headers=HEADERS)
        session.sign_out(response)
        return response
