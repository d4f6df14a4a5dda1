"""The SQL port's routes: `/` answers read-only SQL in the ClickHouse HTTP protocol, `/ping` Ok.

Every statement needs a key when auth is required, sent as ClickHouse clients send a password
(HTTP basic auth with any user name, `X-ClickHouse-Key`, `?password=`) or as a Bearer token. The
platform admin's key (and no key, with auth off) reads the whole warehouse; a tenant's key reads
only its tenant's views (tenant_space), checked on the engine's analysis (tenant_scope).
"""

from __future__ import annotations

import re
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from access import Authenticator, Forbidden, Role, Unauthenticated
from access.credentials import sql_port_key
from analytics.sql.capacity import SqlCapacity
from analytics.sql.protocol import ProtocolError, SqlRequest, error_response, read_request
from analytics.sql.running import QueryResponse
from analytics.sql.tenant_scope import TenantScope
from analytics.sql.tenant_space import tenant_database

_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
AUTHENTICATION_FAILED = 516
ACCESS_DENIED = 497
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="wrm"'}
_HOW = (
    "; on this port send the key as the password (HTTP basic auth with any user name, "
    "X-ClickHouse-Key, or ?password=) or as Authorization: Bearer"
)


def build_router(capacity: SqlCapacity, database: str, timezone: str, auth: Authenticator) -> APIRouter:
    """Routes over `capacity`, the SQL port's own handles; `database` is the default database;
    `auth` decides who may query and which tenant's rows they see (the API's own, create_app)."""
    router = APIRouter(tags=["sql"])

    @router.get("/ping", response_class=PlainTextResponse, include_in_schema=False)
    def ping() -> str:
        return "Ok.\n"

    async def sql(request: Request) -> Response:
        if request.method == "GET" and "query" not in request.query_params:
            if "text/html" in request.headers.get("accept", ""):
                return RedirectResponse("/ui/", status_code=303)  # a browser: the console
            return PlainTextResponse("Ok.\n")  # a GET of `/` with no query: a health check
        # the key first: a stranger's body is never read, let alone inflated or parsed
        key = sql_port_key(request.headers, request.query_params)
        try:  # on a worker thread: a key-cache refresh is a warehouse query
            principal = await run_in_threadpool(auth.authorize, key, Role.VIEWER)
        except Unauthenticated as exc:
            return error_response(f"{exc}{_HOW}. (AUTHENTICATION_FAILED)", AUTHENTICATION_FAILED, _CHALLENGE)
        except Forbidden as exc:
            return error_response(f"Not enough privileges: {exc}. (ACCESS_DENIED)", ACCESS_DENIED)
        try:
            parsed = await read_request(request, database)
        except ProtocolError as exc:
            return error_response(str(exc), exc.code)
        if parsed is None:
            return PlainTextResponse("Ok.\n")
        if principal is None or principal.tenant is None:  # auth off without a key, or the platform
            if not _DATABASE_RE.match(parsed.database):
                return _unknown_database(parsed.database)
            return QueryResponse(capacity, parsed, timezone)
        scope = TenantScope(principal.tenant, tenant_database(database, principal.tenant))
        return _tenant_query(capacity, parsed, timezone, scope, database)

    router.add_api_route("/", sql, methods=["GET", "POST"], include_in_schema=False)
    return router


def _tenant_query(
    capacity: SqlCapacity, parsed: SqlRequest, timezone: str, scope: TenantScope, database: str
) -> Response:
    """A tenant key's statement runs in its tenant's database: naming the warehouse's database or
    its own is the same; any other is unknown to it."""
    if parsed.database not in (database, scope.database):
        hint = f" for a tenant key: it reads its own tenant's views, in database {database!r} (the default)"
        return _unknown_database(parsed.database, hint)
    return QueryResponse(capacity, replace(parsed, database=scope.database), timezone, scope)


def _unknown_database(name: str, hint: str = "") -> Response:
    return error_response(f"Database {name[:100]!r} does not exist{hint}. (UNKNOWN_DATABASE)", 81)
