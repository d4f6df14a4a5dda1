"""The SQL port's routes: `/` answers read-only SQL in the ClickHouse HTTP protocol, `/ping` Ok."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from access import Authenticator
from analytics.sql.capacity import SqlCapacity
from analytics.sql.protocol import ProtocolError, error_response, read_request
from analytics.sql.running import QueryResponse

_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def build_router(
    capacity: SqlCapacity, database: str, timezone: str, authenticator: Authenticator | None = None
) -> APIRouter:
    """Routes over `capacity`, the SQL port's own handles; `database` is the default database;
    `authenticator` decides who may query and which tenant's rows they see (None: anyone, all)."""
    router = APIRouter(tags=["sql"])

    @router.get("/ping", response_class=PlainTextResponse, include_in_schema=False)
    def ping() -> str:
        return "Ok.\n"

    async def sql(request: Request) -> Response:
        try:
            parsed = await read_request(request, database)
        except ProtocolError as exc:
            return error_response(str(exc), exc.code)
        if parsed is None:
            return PlainTextResponse("Ok.\n")
        if not _DATABASE_RE.match(parsed.database):
            return error_response(f"Database {parsed.database!r} does not exist. (UNKNOWN_DATABASE)", 81)
        return QueryResponse(capacity, parsed, timezone)

    router.add_api_route("/", sql, methods=["GET", "POST"], include_in_schema=False)
    return router
