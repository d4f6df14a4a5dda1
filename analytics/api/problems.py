"""Errors as RFC 9457 problem details (`application/problem+json`), rendered in one place so
handlers never build error responses themselves:

    access.Unauthenticated               → 401 unauthenticated, with `WWW-Authenticate: Bearer`
                                           (no key, an unknown or revoked one)
    access.Forbidden                     → 403 forbidden (the key's role or tenant does not allow it)
    analytics.runs.errors.InvalidInput   → 400 bad-request (a bad filter, cursor or format)
    analytics.runs.errors.UnknownItem    → 404 not-found (an unknown run or action)
    analytics.runs.errors.StateConflict  → 409 conflict (an idempotency key reused for another
                                           request, cancelling a finished run, …)
    request validation                   → 422 invalid-request, with the field errors listed
    an unknown path or method            → 404 / 405, also as problem details
    WarehouseUnavailable (transient)     → 503 warehouse-unavailable, with Retry-After
    WarehouseRejected (permanent)        → 500 warehouse-error
    any other exception                  → 500 internal-error

Routes reach the warehouse through clickhouse-connect directly (analytics.runs), so a raw
driver error is classified here, once, by warehouse.errors.classify. Every response
carries `X-Request-Id` (the caller's, when it is a sane token, else a new one); server errors
also carry it in the body and in the log line, so a report can be matched to the log. Their
detail names the error class and ClickHouse code, never the engine's message (it may quote SQL).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from access import AccessError, Unauthenticated
from analytics.runs.errors import Busy, InvalidInput, RunsError, StateConflict, UnknownItem
from redaction.policy import PolicyError
from warehouse.errors import WarehouseError, WarehouseUnavailable, classify

MEDIA_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"
RETRY_AFTER_S = 1  # a transient warehouse error (memory, too many parts, timeout) clears quickly
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

log = logging.getLogger(__name__)

_MAPPING: dict[type[RunsError], tuple[int, str, str]] = {
    InvalidInput: (400, "Bad request", "bad-request"),
    UnknownItem: (404, "Not found", "not-found"),
    StateConflict: (409, "Conflict", "conflict"),
    Busy: (429, "Too many requests", "too-many-requests"),
}


def _body(status: int, title: str, slug: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://wrm.dev/problems/{slug}", "title": title, "status": status, "detail": detail}
    body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def unauthenticated(detail: str, instance: str) -> JSONResponse:
    """401 with the challenge: no key, or an unknown, malformed or revoked one."""
    response = _body(401, "Unauthenticated", "unauthenticated", detail, instance)
    response.headers["WWW-Authenticate"] = 'Bearer realm="wrm"'
    return response


def request_id(scope: Scope) -> str:
    """The request's id, as set by RequestIdMiddleware (a new one if it did not run)."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex
    return str(state["request_id"])


class RequestIdMiddleware:
    """Give each HTTP request an id (the caller's `X-Request-Id` when sane) and echo it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        scope.setdefault("state", {})["request_id"] = given if _SANE_ID.match(given) else uuid.uuid4().hex
        header = (b"x-request-id", request_id(scope).encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message["headers"] = [*headers, header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _server_error(request: Request, exc: BaseException) -> JSONResponse:
    """503 for a transient warehouse error, 500 for a permanent one or anything unexpected."""
    rid = request_id(request.scope)
    warehouse = isinstance(exc, (ClickHouseError, WarehouseError, OSError))
    error: BaseException = classify(exc) if warehouse else exc
    where = f"{request.method} {request.url.path}"
    if isinstance(error, WarehouseUnavailable):
        log.warning("request %s: %s: warehouse unavailable (code %s): %s", rid, where, error.code, error)
        status, title, slug = 503, "Warehouse unavailable", "warehouse-unavailable"
        detail = "the warehouse cannot answer now; retry later"
    elif isinstance(error, WarehouseError):
        log.error("request %s: %s: warehouse refused the query (code %s): %s", rid, where, error.code, error)
        status, title, slug = 500, "Warehouse error", "warehouse-error"
        detail = "the warehouse refused this request's query; retrying will not help"
    else:
        log.error("request %s: %s: unexpected error", rid, where, exc_info=exc)
        status, title, slug, detail = 500, "Internal error", "internal-error", "an unexpected error"
    code = getattr(error, "code", None)
    if code is not None:
        detail += f" (ClickHouse code {code})"
    response = _body(status, title, slug, f"{detail}; request id {rid}", request.url.path, request_id=rid)
    response.headers[REQUEST_ID_HEADER] = rid  # an `Exception` answer bypasses the middleware
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def install(app: FastAPI) -> None:
    app.add_middleware(RequestIdMiddleware)

    @app.exception_handler(RunsError)
    async def _problem(request: Request, exc: RunsError) -> JSONResponse:
        status, title, slug = next(v for k, v in _MAPPING.items() if isinstance(exc, k))
        response = _body(status, title, slug, str(exc), request.url.path)
        if status == 429:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(AccessError)
    async def _access(request: Request, exc: AccessError) -> JSONResponse:
        if isinstance(exc, Unauthenticated):
            return unauthenticated(str(exc), request.url.path)
        return _body(403, "Forbidden", "forbidden", str(exc), request.url.path)

    @app.exception_handler(PolicyError)
    async def _policy(request: Request, exc: PolicyError) -> JSONResponse:
        """The tenant's stored redaction policy cannot be applied (redaction.book): what would
        be written is refused, not written under a weaker policy, until an admin fixes it."""
        response = _body(
            503, "Redaction policy unusable", "redaction-policy-unusable", str(exc), request.url.path
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
            exc.status_code, "HTTP error"
        )
        slug = title.lower().replace(" ", "-")
        response = _body(exc.status_code, title, slug, str(exc.detail), request.url.path)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['where']}: {e['problem']}" for e in errors) or "invalid request"
        return _body(422, "Invalid request", "invalid-request", detail, request.url.path, errors=errors)

    @app.exception_handler(WarehouseError)
    async def _warehouse(request: Request, exc: WarehouseError) -> JSONResponse:
        return _server_error(request, exc)

    @app.exception_handler(ClickHouseError)
    async def _driver(request: Request, exc: ClickHouseError) -> JSONResponse:
        return _server_error(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _server_error(request, exc)
