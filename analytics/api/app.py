"""FastAPI application factory: one app, one port, for everything served over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

import console
from access import Authenticator
from access.store import KeyStore
from analytics import sql
from analytics.api import events_api, keys_api, problems, redaction_api, runs_api
from analytics.api.caller import Authentication, document_roles
from analytics.api.export_stream import Exports
from events import SpanSink
from redaction.book import PolicyBook
from redaction.policy import Policy
from warehouse import Warehouse, classify
from warehouse.outbox import Outbox


def create_app(
    warehouse: Warehouse,
    registries: Iterable[CollectorRegistry] = (),
    describe: Callable[[], dict[str, object]] = dict,
    api_warehouse: Warehouse | None = None,
    sql_capacity: sql.SqlCapacity | None = None,
    health_warehouse: Warehouse | None = None,
    degraded: Callable[[], str] = str,
    max_exports: int = 2,
    authenticator: Authenticator | None = None,
    key_store: KeyStore | None = None,
    policies: PolicyBook | None = None,
    events: SpanSink | None = None,
    outbox: Outbox | None = None,
    routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """`registries` are rendered at /metrics; `describe` adds fields to /healthz (addresses, …);
    `api_warehouse`, a handle of the /v1 API's own so its reads and writes queue behind no one;
    `sql_capacity`, the SQL port's own handles and threads (without it there is no SQL port);
    `health_warehouse`, the handle /healthz reads, so a busy handle elsewhere never stalls it;
    `degraded`, why the server is degraded (a background job stopped), "" when it is not;
    `authenticator`, who may call and for which tenant (None: auth off, no keys known);
    `key_store`, where `/v1/keys` keeps keys (None: no /v1/keys and /v1/audit routes);
    `policies`, the redaction policies ingest applies, which operators' text written through the
    API gets too (None: no redaction routes, and that text gets the built-in defaults);
    `events`, where `POST /v1/events` stores the spans it makes (the ingest core; None: no route);
    `outbox`, where re-run and cancel requests are announced (action.requested; None: they are not);
    `routers`, further /v1 routers (webhooks, alerts), each route with its role.

    /healthz: 503 `unavailable` when the warehouse does not answer; 200 `degraded` when it does
    but something needs an operator (ingest still works, so a load balancer should keep the
    server); 200 `ok` otherwise."""
    app = FastAPI(title="WRM", version="0.1.0", description="Workflow Run Management")
    auth = authenticator or Authenticator(None, required=False)
    app.add_middleware(Authentication, authenticator=auth)  # inside RequestIdMiddleware: 401s get an id
    problems.install(app)
    regs = list(registries)
    health = health_warehouse or warehouse

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        try:
            # the spans table, not just `SELECT 1`: a dropped database or table is not healthy
            ok = health.reader.command("EXISTS TABLE spans") == 1
            error = "" if ok else f"database {warehouse.database} has no spans table"
        except Exception as exc:  # health must answer, whatever the warehouse says
            ok, error = False, classify(exc).summary()  # no engine text: /healthz is public
        reason = degraded() if ok else ""
        body: dict[str, object] = {
            "status": "unavailable" if not ok else "degraded" if reason else "ok",
            "warehouse": warehouse.dsn.describe(),
        }
        if error:
            body["error"] = error
        if reason:
            body["degraded"] = reason
        body.update(describe())
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        text = b"".join(generate_latest(r) for r in regs)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    app.state.authenticator = auth  # read by every /v1 route's role dependency (analytics.api.caller)
    api = api_warehouse or warehouse
    exports = Exports(api, max_exports)  # the API's and the console's exports share the slots
    app.include_router(document_roles(runs_api.build_router(api, max_exports, policies, outbox, exports)))
    book = policies or PolicyBook(Policy(), {}, b"")
    app.include_router(console.build_router(console.Console(api, auth, exports, book, outbox)))
    for router in routers:
        app.include_router(document_roles(router))
    if key_store is not None:
        app.include_router(document_roles(keys_api.build_router(api, key_store, auth, policies)))
    if policies is not None:
        app.include_router(document_roles(redaction_api.build_router(api, policies)))
    if events is not None:
        app.include_router(document_roles(events_api.build_router(api, events)))
        _document_events(app)
    if sql_capacity is not None:
        app.include_router(sql.build_router(sql_capacity, warehouse.database, warehouse.timezone(), auth))
    return app


def _document_events(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            events_api.document(generate())  # generate() caches what it made in app.openapi_schema
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]
