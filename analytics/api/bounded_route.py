"""Routes whose request body has a size limit: refused (413, a problem document) by its
Content-Length before any of it is read, or as soon as a body without one grows past it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from warehouse.bounded_body import read_bounded


def bounded_route(limit: int) -> type[APIRoute]:
    """An APIRoute class for `route_class_override`, refusing bodies over `limit` bytes."""

    class Bounded(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def bounded(request: Request) -> Response:
                too_large = HTTPException(413, f"the request body is over {limit} bytes ({_size(limit)})")
                await read_bounded(request, limit, too_large)  # the handler parses its cache
                return await handler(request)

            return bounded

    return Bounded


def _size(limit: int) -> str:
    return f"{limit / (1 << 20):g} MiB" if limit >= 1 << 20 else f"{limit / 1024:g} KiB"
