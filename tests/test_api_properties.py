"""Property-based test of the /v1 API over its own OpenAPI schema (schemathesis): every operation,
driven with generated path parameters, query parameters, headers (X-WRM-Tenant, X-WRM-Actor,
Idempotency-Key) and JSON bodies, valid and invalid, against a real `wrm serve` that requires
API keys (each request carries the tenant admin's key), over HTTP, never
answers 5xx, answers every 4xx with a problem document (`application/problem+json` with a
`detail`), and answers every 2xx with a body that matches the schema; and every operation is
exercised and reaches a 2xx at least once.

Generation is deterministic (derandomized, no example database), so CI replays the same inputs.
Hooks mix known run ids, action ids, tenants, idempotency keys, statuses and cursors into what
is generated, so requests reach past "no such run" into the handlers' real work.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Ok, Result

from analytics.api import alerts_api, create_app, reports_api, webhooks_api
from analytics.api.problems import MEDIA_TYPE
from analytics.reports.schedule import ReportSchedule
from analytics.reports.store import report_id
from analytics.runs.listing import STATUSES
from tests.conftest import settle, start_server
from tests.indicator_data import VersionPlan, plan, send, start_running_run
from tests.webhook_receiver import log_failed_delivery
from warehouse import Warehouse

MAX_EXAMPLES = 20  # per operation, fuzzing phase (the coverage phase adds its own boundary cases)
RUNS = plan([VersionPlan("v1", range(2, 0, -1), 4, 2, 1, 5, (100, 10), 2, 0.7)])  # 8 runs
TENANT = "default"
KEYS = ("key-1", "key-2", "key-3")  # few, so generated requests reuse them (200 replays, 409 clashes)
TAGS = ("golden", "q3", "a.b:c/d-e")
SEEN: dict[str, Counter[str]] = {}  # per operation: requests by phase and responses by status
OPERATIONS = (
    "GET /v1/runs",
    "GET /v1/runs/export",
    "GET /v1/runs/{run_id}",
    "GET /v1/runs/{run_id}/steps",
    "POST /v1/runs/{run_id}/rerun",
    "POST /v1/runs/{run_id}/cancel",
    "GET /v1/actions",
    "POST /v1/actions/{action_id}/ack",
    "POST /v1/runs/{run_id}/annotations",
    "POST /v1/runs/{run_id}/tags",
    "POST /v1/keys",
    "GET /v1/keys",
    "DELETE /v1/keys/{key_id}",
    "GET /v1/audit",
    "GET /v1/redaction/detectors",
    "GET /v1/tenants/{tenant}/redaction",
    "PUT /v1/tenants/{tenant}/redaction",
    "DELETE /v1/tenants/{tenant}/redaction",
    "POST /v1/redact",
    "POST /v1/events",
    "POST /v1/alerts",
    "GET /v1/alerts",
    "GET /v1/alerts/{rule_id}",
    "PATCH /v1/alerts/{rule_id}",
    "DELETE /v1/alerts/{rule_id}",
    "GET /v1/alerts/{rule_id}/history",
    "POST /v1/alerts/{rule_id}/evaluate",
    "POST /v1/webhooks",
    "GET /v1/webhooks",
    "GET /v1/webhooks/{webhook_id}",
    "PATCH /v1/webhooks/{webhook_id}",
    "DELETE /v1/webhooks/{webhook_id}",
    "POST /v1/webhooks/{webhook_id}/rotate-secret",
    "POST /v1/webhooks/{webhook_id}/test",
    "GET /v1/webhooks/{webhook_id}/deliveries",
    "POST /v1/webhooks/{webhook_id}/deliveries/{message_id}/retry",
    "GET /v1/reports",
    "GET /v1/reports/{report_id}",
    "GET /v1/reports/{report_id}/{format}",
)
HOOK_URL = "https://hooks.example.com/props"  # does not resolve here: accepted, never delivered
ADMIN_KEY = "platform-admin-" + "p" * 40


@dataclass
class Known:
    """Ids that exist on the server, for the hooks to mix into generated inputs."""

    base_url: str = ""
    run_ids: list[str] = field(default_factory=list)
    cancel_ids: list[str] = field(default_factory=list)  # mostly running runs: a cancel can succeed
    action_ids: list[str] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)  # throwaway keys: DELETE revokes them
    cursors: list[str] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)
    doomed_rule_ids: list[str] = field(default_factory=list)  # for DELETE only
    webhook_ids: list[str] = field(default_factory=list)
    doomed_webhook_ids: list[str] = field(default_factory=list)  # for DELETE only
    deliveries: list[tuple[str, str]] = field(default_factory=list)  # (webhook id, message id) in the log
    report_ids: list[str] = field(default_factory=list)  # reports with a file of every format
    auth: dict[str, str] = field(default_factory=dict)  # the tenant admin's Authorization header


@pytest.fixture(scope="module")
def known(engine_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    """One server for the module, fed with finished runs and live ones, with pending actions;
    fills KNOWN, which the hooks read."""
    warehouse = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    # rules the fuzzing makes are evaluated when asked (POST …/evaluate), not every second
    server = start_server(
        warehouse, auth="required", admin_key=ADMIN_KEY, alerts_tick_s=3600,
        reports_dir=tmp_path_factory.mktemp("reports"),
    )  # fmt: skip
    ingest = server.create_key(TENANT, "ingest", "props-exporter")
    send(server.otlp_address, RUNS, "props", key=ingest)
    for name in ("live-p1", "live-p2", "live-p3"):
        start_running_run(server.otlp_address, name, key=ingest)
    settle(server)
    found = KNOWN
    found.base_url = f"http://{server.http_address}"
    found.auth = {"Authorization": f"Bearer {server.create_key(TENANT, 'admin', 'props-admin')}"}
    found.key_ids = [server.create_key(TENANT, "viewer", f"props-{i}").split("_")[1] for i in range(3)]
    with httpx.Client(base_url=found.base_url, timeout=30, headers=found.auth) as client:
        served = client.get("/openapi.json").json()
        assert served["paths"] == OPENAPI["paths"] and served["components"] == OPENAPI["components"]
        runs = client.get("/v1/runs", params={"limit": 500}).json()["runs"]
        assert len(runs) == len(RUNS) + 3, runs
        found.run_ids = [r["run_id"] for r in runs]
        live = [r["run_id"] for r in runs if r["status"] == "running"]
        done = [r["run_id"] for r in runs if r["status"] in ("completed", "failed")]
        found.cancel_ids = [*live, *live, done[0]]  # a finished run's cancel is a 409
        for path in (f"/v1/runs/{done[0]}/rerun", f"/v1/runs/{done[1]}/rerun", f"/v1/runs/{live[0]}/cancel"):
            resp = client.post(path, json={"reason": "seed"})
            assert resp.status_code == 201, resp.text
            found.action_ids.append(resp.json()["action_id"])
        for sort in ("start", "duration"):
            page = client.get("/v1/runs", params={"limit": 3, "sort": sort}).json()
            found.cursors.append(page["next_cursor"])
        for i in range(6):
            rule = {"name": f"props {i}", "metric": "first_pass_rate", "threshold": 0.5, "workflow": "props"}
            made = client.post("/v1/alerts", json=rule)
            assert made.status_code == 201, made.text
            (found.rule_ids if i < 3 else found.doomed_rule_ids).append(made.json()["rule_id"])
            made = client.post("/v1/webhooks", json={"url": HOOK_URL, "description": f"props {i}"})
            assert made.status_code == 201, made.text
            (found.webhook_ids if i < 3 else found.doomed_webhook_ids).append(made.json()["webhook_id"])
    assert server.notifications is not None
    for hook in found.webhook_ids:
        message = f"msg_props_{hook}"
        log_failed_delivery(server.notifications.recorder, TENANT, hook, message)
        found.deliveries.append((hook, message))
    reports = server.notifications.reports
    for day in (1, 2, 3):
        fire = datetime(2026, 1, day, 6, 0, tzinfo=UTC)
        schedule = ReportSchedule(name="props", workflow="props", tenant=TENANT, schedule="0 6 * * *")
        rendered = {f: f"props {f}".encode() for f in ("html", "pdf", "md")}
        files = reports.deliver_files("props", fire, rendered)
        rid = report_id(TENANT, "props", fire)
        found.report_ids.append(reports.record(schedule, fire, rid, "ready", "", files).report_id)
    yield found
    server.stop()
    warehouse.command(f"DROP DATABASE IF EXISTS `{warehouse.database}` SYNC")
    warehouse.close()
    total = sum(n for seen in SEEN.values() for k, n in seen.items() if k.isdigit())
    print(f"\n/v1 property test: {total} requests")
    for label, seen in sorted(SEEN.items()):
        print(f"  {label}: {dict(sorted(seen.items()))}")


def _config() -> schemathesis.Config:
    """Explicit, so no schemathesis.toml found on the way up changes what runs."""
    return schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",  # valid and invalid inputs
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                # boundary values, and methods a path does not declare (405, also a problem)
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "request-timeout": 30,
            "output": {"sanitization": {"enabled": False}},  # show Idempotency-Key in reproductions
        }
    )


def _openapi() -> dict[str, Any]:
    """The schema `wrm serve` serves: the app's own, built around a stand-in warehouse (building
    the routes only asks it for its timezone); `known` checks it against the running server's.
    Built at import because the parametrized tests are made at collection (schemathesis'
    lazy `from_fixture` loader breaks on pytest 9.2: it sets `Function._nodeid`)."""
    # a stand-in warehouse
    stand_in = SimpleNamespace(timezone=lambda: "UTC")
    routers = [
        webhooks_api.build_router(stand_in, stand_in, stand_in, stand_in),  # type: ignore[arg-type]
        alerts_api.build_router(stand_in, stand_in, stand_in),  # type: ignore[arg-type]
        reports_api.build_router(stand_in, Path("reports")),  # type: ignore[arg-type]
    ]
    app = create_app(stand_in, key_store=stand_in, policies=stand_in, events=stand_in, routers=routers)  # type: ignore[arg-type]
    return app.openapi()


OPENAPI = _openapi()
KNOWN = Known()  # filled by the `known` fixture before any example is generated
schema = schemathesis.openapi.from_dict(OPENAPI, config=_config()).include(path_regex=r"^/v1/")


def _either(generated: Any, *known_values: Any) -> st.SearchStrategy[Any]:
    """The generated value or one of the known ones."""
    return st.one_of(st.just(generated), st.sampled_from(known_values))


def _setting(params: dict[str, Any], name: str) -> Callable[[Any], dict[str, Any]]:
    """`params` with `name` set to the value given."""
    return lambda v: {**params, name: v}


@schema.hook
def flatmap_path_parameters(
    ctx: schemathesis.HookContext, params: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    """A known id first, else the generated one (an id made up is a 404 before any handler's
    work). A cancel draws mostly running runs: among all runs, and with the idempotency keys
    the re-runs used before (a 409), it reached a 2xx by luck, and at times never."""
    cancel = ctx.operation is not None and ctx.operation.path.endswith("/cancel")
    delete = ctx.operation is not None and ctx.operation.method.lower() == "delete"
    if params and "message_id" in params:
        pairs = st.sampled_from(KNOWN.deliveries).map(
            lambda p: {**params, "webhook_id": p[0], "message_id": p[1]}
        )
        return st.one_of(pairs, st.just(params))
    for name, ids in (
        ("webhook_id", KNOWN.doomed_webhook_ids if delete else KNOWN.webhook_ids),
        ("rule_id", KNOWN.doomed_rule_ids if delete else KNOWN.rule_ids),
        ("run_id", KNOWN.cancel_ids if cancel else KNOWN.run_ids), ("action_id", KNOWN.action_ids),
        ("key_id", KNOWN.key_ids), ("tenant", [TENANT]), ("report_id", KNOWN.report_ids),
    ):  # fmt: skip
        if params and name in params:
            known = st.sampled_from(ids)
            return st.one_of(known, st.just(params[name])).map(_setting(params, name))
    return st.just(params)


@schema.hook
def flatmap_headers(ctx: schemathesis.HookContext, headers: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    headers = dict(headers or {})
    tenant = _either(headers.get("x-wrm-tenant"), TENANT, TENANT, "other")
    key = _either(headers.get("idempotency-key"), *KEYS)
    return st.tuples(tenant, key).map(lambda tk: _headers(headers, *tk))


@schema.hook
def flatmap_query(ctx: schemathesis.HookContext, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    if ctx.operation is None or ctx.operation.path not in ("/v1/runs", "/v1/runs/export"):
        return st.just(query)
    query = dict(query or {})
    known: dict[str, Sequence[object]] = {
        "status": [[s] for s in STATUSES] + [["failed", "running"]],
        "tag": list(TAGS),
    }
    if ctx.operation.path == "/v1/runs":
        known["cursor"] = KNOWN.cursors
    names = sorted(known)
    values = st.tuples(*(_either(query.get(n), *known[n]) for n in names))
    return values.map(lambda vs: _without_none({**query, **dict(zip(names, vs, strict=True))}))


@schema.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict) or ctx.operation is None:
        return st.just(body)
    if ctx.operation.path.endswith("/ack"):
        new = _either(body.get("new_run_id"), *KNOWN.run_ids)
        return new.map(lambda n: _without_none({**body, "new_run_id": n}))
    if ctx.operation.path.endswith("/redaction") and ctx.operation.method.lower() == "put":
        return _either(body, {}, {"detectors": {"email": "hash"}, "keep": 4})  # two valid policies
    if ctx.operation.path == "/v1/alerts" and ctx.operation.method.lower() == "post":
        valid = {"name": "fuzzed", "metric": "success_rate", "threshold": 0.9, "min_samples": 2}
        return _either(
            body, valid, {"name": "quiet", "metric": "no_runs", "workflow": "props", "window_s": 600}
        )
    if ctx.operation.path == "/v1/webhooks" and ctx.operation.method.lower() == "post":
        return _either(
            body, {"url": HOOK_URL}, {"url": HOOK_URL, "events": ["run.*"], "workflows": ["props"]}
        )
    if ctx.operation.path.endswith("/tags"):
        tags = st.lists(st.sampled_from(TAGS), max_size=3)
        return st.one_of(st.just(body), st.tuples(tags, tags).map(lambda ar: {"add": ar[0], "remove": ar[1]}))
    return st.just(body)


def _headers(headers: dict[str, Any], tenant: Any, key: Any) -> dict[str, Any]:
    out = {k: v for k, v in headers.items() if k.lower() not in ("x-wrm-tenant", "idempotency-key")}
    if tenant is not None:
        out["X-WRM-Tenant"] = tenant
    if key is not None:
        out["Idempotency-Key"] = key
    return out


def _without_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def problem_details(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every 4xx is an RFC 9457 problem document with a `detail`."""
    if not 400 <= response.status_code < 500:
        return
    content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    assert content_type == MEDIA_TYPE, (
        f"{response.status_code} with content-type {content_type!r}, not {MEDIA_TYPE}: {response.text[:300]}"
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], (
        f"{response.status_code} problem document without a detail: {response.text[:300]}"
    )


def success_bodies(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every 2xx body matches the response schema the API documents for it."""
    if not 200 <= response.status_code < 300:
        return
    response_schema_conformance(ctx, response, case)
    SEEN.setdefault(case.operation.label, Counter())["2xx validated"] += 1


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
def test_no_server_errors_and_problems_for_client_errors(
    case: schemathesis.Case[Any], known: Known, http: requests.Session
) -> None:
    response = case.call(base_url=known.base_url, session=http, headers=known.auth)
    seen = SEEN.setdefault(case.operation.label, Counter())
    seen[case.meta.phase.name.value if case.meta else "explicit"] += 1
    seen[str(response.status_code)] += 1
    case.validate_response(response, checks=[not_a_server_error, problem_details, success_bodies])


def _label(result: Result[schemathesis.APIOperation[Any, Any, Any, Any], InvalidSchema]) -> str:
    assert isinstance(result, Ok), result.err()
    return result.ok().label


def test_every_operation_was_exercised_and_answered_2xx() -> None:
    """Runs after the property test above (pytest keeps file order): a hook or a schema change
    that stops generating requests for an operation, or keeps all of them from its handler's
    success path, would otherwise pass unnoticed."""
    if not SEEN:
        pytest.skip("the property test did not run in this session")
    assert sorted(SEEN) == sorted(OPERATIONS)
    assert sorted(_label(op) for op in schema.get_all_operations()) == sorted(OPERATIONS)
    for label in OPERATIONS:
        seen = SEEN[label]
        requests_sent = sum(n for k, n in seen.items() if k.isdigit())
        successes = sum(n for k, n in seen.items() if k.isdigit() and k.startswith("2"))
        assert requests_sent >= 20, (label, dict(seen))
        assert successes >= 1 and seen["2xx validated"] == successes, (label, dict(seen))
