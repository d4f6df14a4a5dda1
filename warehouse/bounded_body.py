"""Read a request body no larger than a bound, and inflate one no further than a bound: refused by
its Content-Length before any of it is read, as soon as a body without one grows past it, and as
soon as a compressed body inflates past it (a small gzip bomb stops at the bound).

Shared by every HTTP listener (the API, the SQL port, OTLP/HTTP); it lives here because
`warehouse` is the one package all of them may import.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

GZIP_OR_ZLIB = 47  # zlib wbits: a gzip or a zlib header, detected


class Undecodable(ValueError):
    """The body is not valid data in the encoding it claims (a broken gzip stream)."""


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


def inflate_bounded(body: bytes, limit: int, too_large: Exception, wbits: int = GZIP_OR_ZLIB) -> bytes:
    """`body` decompressed; raises `too_large` once the output passes `limit` bytes (never
    inflating more than one byte past it) and Undecodable for a broken or truncated stream.
    Several members one after another (`cat a.gz b.gz`, valid gzip) are all read: stopping at
    the first would acknowledge data that is never stored."""
    out = bytearray()
    rest = body
    while True:
        inflate = zlib.decompressobj(wbits)
        try:
            out += inflate.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise Undecodable(str(exc)) from None
        if len(out) > limit or inflate.unconsumed_tail:
            raise too_large
        if not inflate.eof:
            raise Undecodable("the compressed stream ends early")
        rest = inflate.unused_data
        if not rest:
            return bytes(out)
