"""Read a request body no larger than a bound: refused by its Content-Length before any of it is
read, or as soon as a body without one grows past it. Shared by the SQL port and the API."""

from __future__ import annotations

from starlette.requests import Request


async def read_bounded(request: Request, limit: int, too_large: Exception) -> bytes:
    """The body (also cached on the request, so Starlette's own readers parse these bytes);
    raises `too_large` past `limit` bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body
    return body
