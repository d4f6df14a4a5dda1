"""Errors as RFC 9457 problem details (`application/problem+json`), rendered in one place so
handlers never build error responses themselves:

    analytics.runs.errors.InvalidInput   → 400 bad-request (a bad filter, cursor or format)
    analytics.runs.errors.UnknownItem    → 404 not-found (an unknown run or action)
    analytics.runs.errors.StateConflict  → 409 conflict (an idempotency key reused for another
                                           request, cancelling a finished run, …)
    request validation                   → 422 invalid-request, with the field errors listed
    an unknown path or method            → 404 / 405, also as problem details
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from analytics.runs.errors import InvalidInput, RunsError, StateConflict, UnknownItem

MEDIA_TYPE = "application/problem+json"


_MAPPING: dict[type[RunsError], tuple[int, str, str]] = {
    InvalidInput: (400, "Bad request", "bad-request"),
    UnknownItem: (404, "Not found", "not-found"),
    StateConflict: (409, "Conflict", "conflict"),
}


def _body(status: int, title: str, slug: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://wrm.dev/problems/{slug}", "title": title, "status": status, "detail": detail}
    body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    @app.exception_handler(RunsError)
    async def _problem(request: Request, exc: RunsError) -> JSONResponse:
        status, title, slug = next(v for k, v in _MAPPING.items() if isinstance(exc, k))
        return _body(status, title, slug, str(exc), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
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
