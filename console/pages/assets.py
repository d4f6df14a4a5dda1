"""The console's own CSS and script, read once from the package: a fixed list, so a URL can
never name another file."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from analytics.runs.errors import UnknownItem

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
FILES = {
    name: resources.files("console").joinpath("static", name).read_bytes()
    for name in ("console.css", "console.js")
}


def add_routes(router: APIRouter) -> None:
    @router.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        body = FILES.get(name)
        if body is None:
            raise UnknownItem(f"no console file {name[:80]!r}")
        kind = TYPES[name[name.rindex(".") :]]
        return Response(
            body,
            media_type=kind,
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )
