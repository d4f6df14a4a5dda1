"""The web console of `wrm serve`, under /ui/ on the HTTP port: server-rendered pages (Jinja2)
over the same functions the /v1 API calls, with a little script for auto-refresh.

    session.py   who is using it (a key in a cookie, or auth off) and the CSRF check on forms
    base.py      Console: handles, templates, security headers, errors answered as pages
    filters.py   the run list's filters read from a query string
    pages/       runs (list, export), run (detail, actions), effectiveness, signin, assets
"""

from __future__ import annotations

from fastapi import APIRouter

from console.base import Console
from console.pages import assets, effectiveness, run, runs, signin


def build_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)
    assets.add_routes(router)
    signin.add_routes(router, console)
    runs.add_routes(router, console)
    run.add_routes(router, console)
    effectiveness.add_routes(router, console)
    return router


__all__ = ["Console", "build_router"]
