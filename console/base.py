"""What every console page shares: the warehouse and access handles, the templates, and how a
page answers (security headers, the CSRF cookie, errors as pages rather than JSON).

A page handler is wrapped by `Console.page_route`: a missing or revoked key sends the browser to
sign in (303, back to the page afterwards), an unknown run is a 404 page, a refused action (role,
tenant, state) a page that says why, a form without the console's token a 400; nothing is done
in any of those cases.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from access import AccessError, Authenticator, Forbidden, Unauthenticated
from analytics import figures
from analytics.api.export_stream import Exports
from analytics.runs.errors import Busy, InvalidInput, RunsError, UnknownItem
from console.session import BadForm, SignInNeeded, Visitor, keep_csrf, visitor
from redaction.book import PolicyBook
from warehouse import Warehouse, classify
from warehouse.outbox import Outbox

log = logging.getLogger(__name__)

# Pages load only their own CSS and script; forms post only here; no one may frame them.
POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Handler = Callable[..., Awaitable[Response]]


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        duration=figures.duration,
        money=figures.money,
        count=figures.count,
        percent=figures.percent,
        tokens=figures.tokens,
        missing=figures.MISSING,
    )
    return env


@dataclass
class Console:
    wh: Warehouse  # the API's own handle: reads on its reader, writes on its client
    authenticator: Authenticator
    exports: Exports
    policies: PolicyBook
    outbox: Outbox | None = None

    def __post_init__(self) -> None:
        self.templates = _env()

    async def visitor(self, request: Request) -> Visitor:
        return await visitor(request, self.authenticator)

    def render(
        self, request: Request, who: Visitor | None, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        body = self.templates.get_template(template).render(
            who=who, path=request.url.path, query=request.url.query, **context
        )
        response = HTMLResponse(body, status_code=status, headers=HEADERS)
        if who is not None:
            keep_csrf(request, response, who.csrf)
        return response

    def problem(self, request: Request, status: int, title: str, detail: str) -> HTMLResponse:
        return self.render(request, None, "problem.html.j2", status, title=title, detail=detail)

    def page_route(self, handler: Handler) -> Handler:
        """`handler` with the console's errors answered as pages."""

        @functools.wraps(handler)
        async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                return await handler(request, *args, **kwargs)
            except SignInNeeded as exc:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                where = f"/ui/signin?next={quote(target, safe='')}&why={exc.reason}"
                return RedirectResponse(where, status_code=303, headers=HEADERS)
            except BadForm as exc:
                return self.problem(request, 400, "Form refused", str(exc))
            except UnknownItem as exc:
                return self.problem(request, 404, "Not found", str(exc))
            except InvalidInput as exc:
                return self.problem(request, 400, "Cannot do that", str(exc))
            except Busy as exc:
                return self.problem(request, 429, "Busy", str(exc))
            except (Forbidden, Unauthenticated, AccessError) as exc:
                return self.problem(request, 403, "Not allowed", str(exc))
            except RunsError as exc:
                return self.problem(request, 409, "Cannot do that", str(exc))
            except Exception as exc:
                log.exception("console page %s failed", request.url.path)
                # never the engine's text: it can quote SQL and data
                return self.problem(request, 503, "The warehouse did not answer", classify(exc).summary())

        return wrapped
