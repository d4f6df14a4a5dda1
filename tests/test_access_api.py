"""Access control on the /v1 API, against a real server that requires keys, fed through the
tenants' own ingest keys with the OTel SDK: the role × route matrix (read from the served OpenAPI,
so a new route without a role or a sample request fails here), key management, the audit trail,
and two tenants that never see each other's runs, actions, keys or audit entries."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from analytics.reports.schedule import ReportSchedule
from analytics.reports.store import report_id
from analytics.webhooks.schemas import WebhookCreate
from tests.conftest import module_server, settle
from tests.indicator_data import VersionPlan, plan, send, start_running_run
from tests.webhook_receiver import log_failed_delivery
from wrm.server import WrmServer

ADMIN_KEY = "platform-admin-" + "k" * 40
ROLES = ("ingest", "viewer", "operator", "admin")
RUNS_A = plan([VersionPlan("v1", range(2, 0, -1), 3, 1, 1, 5, (100, 10), 2, 0.7)])
RUNS_B = plan([VersionPlan("v2", range(3, 1, -1), 2, 1, 0, 5, (100, 10), 2, 0.7)], seed=11)
BAD_KEYS = {
    "none": "",
    "unknown": "wrm_0123456789ab_" + "A" * 43,
    "malformed": "not-a-key",
}
RANK = {"viewer": 1, "operator": 2, "admin": 3}


@dataclass
class Env:
    server: WrmServer
    url: str
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # tenant -> role -> key
    revoked: str = ""
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tenant -> runs

    def client(self, key: str = "", **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, timeout=60, headers={**auth, **headers})


@pytest.fixture(scope="module")
def env(engine_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    reports = tmp_path_factory.mktemp("reports")
    with module_server(engine_dir, auth="required", admin_key=ADMIN_KEY, reports_dir=reports) as srv:
        e = Env(srv, f"http://{srv.http_address}")
        for tenant in ("acme", "globex"):
            e.keys[tenant] = {role: srv.create_key(tenant, role, f"{tenant}-{role}") for role in ROLES}
        e.revoked = srv.create_key("acme", "admin", "acme-revoked")
        with e.client(ADMIN_KEY) as c:
            key_id = e.revoked.split("_")[1]
            assert c.delete(f"/v1/keys/{key_id}").status_code == 200
        send(srv.otlp_address, RUNS_A, "refund", key=e.keys["acme"]["ingest"])
        # globex's exporter claims to be acme: its key decides, so these runs are globex's
        send(srv.otlp_address, RUNS_B, "refund", tenant="acme", key=e.keys["globex"]["ingest"])
        for name in ("live-a1", "live-a2", "live-a3"):
            start_running_run(srv.otlp_address, name, key=e.keys["acme"]["ingest"])
        start_running_run(srv.otlp_address, "live-b1", key=e.keys["globex"]["ingest"])
        settle(srv)
        for tenant in ("acme", "globex"):
            with e.client(e.keys[tenant]["viewer"]) as c:
                e.runs[tenant] = c.get("/v1/runs", params={"limit": 500}).json()["runs"]
        yield e


def _live(env: Env, tenant: str, n: int) -> str:
    return str([r["run_id"] for r in env.runs[tenant] if r["status"] == "running"][n])


def _done(env: Env, tenant: str) -> str:
    return str(next(r["run_id"] for r in env.runs[tenant] if r["status"] in ("completed", "failed")))


def _samples(env: Env) -> dict[str, tuple[dict[str, str], Any]]:
    """One request per operation that succeeds for an allowed caller, repeatably: path
    parameters, then the JSON body. An operation missing here fails the matrix test."""
    with env.client(env.keys["acme"]["operator"]) as c:
        action = c.post(f"/v1/runs/{_live(env, 'acme', 1)}/cancel", json={"reason": "matrix"},
                        headers={"Idempotency-Key": "matrix-ack"}).json()["action_id"]  # fmt: skip
    run = _done(env, "acme")
    hook = _webhook(env)
    rule = _rule(env)
    report = _report(env)
    message = "msg_matrix"
    assert env.server.notifications is not None
    log_failed_delivery(env.server.notifications.recorder, "acme", hook, message)  # to retry
    return {
        "GET /v1/runs": ({}, None),
        "GET /v1/runs/export": ({}, None),
        "GET /v1/runs/{run_id}": ({"run_id": run}, None),
        "GET /v1/runs/{run_id}/steps": ({"run_id": run}, None),
        "POST /v1/runs/{run_id}/rerun": ({"run_id": run}, {"reason": "matrix", "context": {"k": 1}}),
        "POST /v1/runs/{run_id}/cancel": ({"run_id": _live(env, "acme", 0)}, {"reason": "matrix"}),
        "GET /v1/actions": ({}, None),
        "POST /v1/actions/{action_id}/ack": ({"action_id": action}, {"outcome": "done", "message": "ok"}),
        "POST /v1/runs/{run_id}/annotations": ({"run_id": run}, {"text": "looked at it"}),
        "POST /v1/runs/{run_id}/tags": ({"run_id": run}, {"add": ["matrix"]}),
        "POST /v1/keys": ({}, {"tenant": "acme", "role": "viewer", "name": "made-by-matrix"}),
        "GET /v1/keys": ({}, None),
        "DELETE /v1/keys/{key_id}": ({"key_id": ""}, None),  # a fresh key for every call
        "GET /v1/audit": ({}, None),
        "GET /v1/redaction/detectors": ({}, None),
        "GET /v1/tenants/{tenant}/redaction": ({"tenant": "acme"}, None),
        "PUT /v1/tenants/{tenant}/redaction": ({"tenant": "acme"}, {"rules": [{"name": "m", "keys": ["x"]}]}),
        "DELETE /v1/tenants/{tenant}/redaction": ({"tenant": "acme"}, None),
        "POST /v1/redact": ({}, {"items": ["matrix", {"x": "y"}]}),
        "POST /v1/events": ({}, {"type": "step.started", "run_id": "matrix-events", "step_id": "s"}),
        "POST /v1/alerts": ({}, {"name": "matrix", "metric": "no_runs", "workflow": "matrix"}),
        "GET /v1/alerts": ({}, None),
        "GET /v1/alerts/{rule_id}": ({"rule_id": rule}, None),
        "PATCH /v1/alerts/{rule_id}": ({"rule_id": rule}, {"name": "matrix"}),
        "DELETE /v1/alerts/{rule_id}": ({"rule_id": ""}, None),  # a fresh rule for every call
        "GET /v1/alerts/{rule_id}/history": ({"rule_id": rule}, None),
        "POST /v1/alerts/{rule_id}/evaluate": ({"rule_id": rule}, None),
        "POST /v1/webhooks": ({}, {"url": HOOK_URL, "events": ["run.failed"]}),
        "GET /v1/webhooks": ({}, None),
        "GET /v1/webhooks/{webhook_id}": ({"webhook_id": hook}, None),
        "PATCH /v1/webhooks/{webhook_id}": ({"webhook_id": hook}, {"description": "matrix"}),
        "DELETE /v1/webhooks/{webhook_id}": ({"webhook_id": ""}, None),  # a fresh one for every call
        "POST /v1/webhooks/{webhook_id}/rotate-secret": ({"webhook_id": hook}, None),
        "POST /v1/webhooks/{webhook_id}/test": ({"webhook_id": hook}, None),
        "GET /v1/webhooks/{webhook_id}/deliveries": ({"webhook_id": hook}, None),
        "POST /v1/webhooks/{webhook_id}/deliveries/{message_id}/retry": (
            {"webhook_id": hook, "message_id": message},
            None,
        ),
        "GET /v1/reports": ({}, None),
        "GET /v1/reports/{report_id}": ({"report_id": report}, None),
        "GET /v1/reports/{report_id}/{format}": ({"report_id": report, "format": "md"}, None),
    }


HOOK_URL = "https://hooks.example.com/wrm"  # not resolvable here: accepted, each delivery checks


def _rule(env: Env) -> str:
    with env.client(env.keys["acme"]["admin"]) as c:
        made = c.post("/v1/alerts", json={"name": "matrix rule", "metric": "no_runs", "workflow": "matrix"})
        assert made.status_code == 201, made.text
        return str(made.json()["rule_id"])


def _report(env: Env) -> str:
    """A report of acme's, written, recorded and announced as the scheduler does it."""
    assert env.server.notifications is not None
    reports = env.server.notifications.reports
    schedule = ReportSchedule(name="matrix", workflow="refund", tenant="acme", schedule="0 6 * * *")
    fire = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    files = reports.deliver_files("matrix", fire, {"md": b"# matrix\n"})
    return reports.record(schedule, fire, report_id("acme", "matrix", fire), "ready", "", files).report_id


def _webhook(env: Env) -> str:
    assert env.server.notifications is not None
    return env.server.notifications.store.create("acme", WebhookCreate(url=HOOK_URL), "matrix").webhook_id


def _allowed(who: str, needed: str) -> bool:
    """Whether a key of role `who` may call a route that needs `needed`: ingest stands apart
    (ingest and admin keys), viewer < operator < admin each include the one before."""
    if who in ("platform", "admin"):
        return True
    if needed == "ingest" or who == "ingest":
        return who == needed
    return RANK[who] >= RANK[needed]


def test_every_route_answers_each_role_as_documented(env: Env) -> None:
    """No key, a bad or revoked key: 401. A role below the route's `x-wrm-role` (or, for an
    `ingest` route, neither ingest nor admin): 403. At or above it: 2xx. Read from
    /openapi.json, so a route added without a role fails."""
    schema = httpx.get(f"{env.url}/openapi.json").json()
    samples = _samples(env)
    seen = []
    callers = {**BAD_KEYS, "revoked": env.revoked, "platform": ADMIN_KEY, **env.keys["acme"]}
    with contextlib.ExitStack() as stack:  # a client per caller, not one per request
        clients = {who: stack.enter_context(env.client(key)) for who, key in callers.items()}
        for path, item in schema["paths"].items():
            for method, op in item.items():
                name = f"{method.upper()} {path}"
                if not path.startswith("/v1/"):
                    continue
                seen.append(name)
                assert "x-wrm-role" in op, f"{name} has no role: declare Viewer, Operator, Admin or Sender"
                assert name in samples, f"{name} has no sample request in this test"
                needed = op["x-wrm-role"]
                params, body = samples[name]
                for who, key in callers.items():
                    if "key_id" in params:
                        params = {
                            "key_id": env.server.create_key("acme", "viewer", "to-revoke").split("_")[1]
                        }
                    if name == "DELETE /v1/webhooks/{webhook_id}":
                        params = {"webhook_id": _webhook(env)}
                    if name == "DELETE /v1/alerts/{rule_id}":
                        params = {"rule_id": _rule(env)}
                    headers = {"Idempotency-Key": f"matrix {name}", "X-WRM-Tenant": "acme"}
                    resp = clients[who].request(method, path.format(**params), json=body, headers=headers)
                    if who in (*BAD_KEYS, "revoked"):
                        want = "401"
                    elif _allowed(who, needed):
                        want = "2xx"
                    else:
                        want = "403"
                    got = "2xx" if 200 <= resp.status_code < 300 else str(resp.status_code)
                    assert got == want, f"{name} as {who}: {resp.status_code} {resp.text[:300]}"
                    if want != "2xx":
                        assert resp.headers["content-type"] == "application/problem+json"
                        assert key not in resp.text or not key
                    if want == "401":
                        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert set(seen) == set(samples), set(samples) ^ set(seen)


def test_a_key_sees_only_its_tenant(env: Env) -> None:
    """acme's keys never reach globex's runs, actions, keys or audit entries; globex's exporter
    claimed acme in its resource and still landed in globex."""
    acme, globex = env.runs["acme"], env.runs["globex"]
    assert len(acme) == len(RUNS_A) + 3 and len(globex) == len(RUNS_B) + 1
    theirs = {r["run_id"] for r in globex}
    assert not theirs & {r["run_id"] for r in acme}
    other = _done(env, "globex")
    with env.client(env.keys["acme"]["admin"]) as c:
        for path in (f"/v1/runs/{other}", f"/v1/runs/{other}/steps"):
            assert c.get(path).status_code == 404, path
        posts = {
            f"/v1/runs/{other}/rerun": {},
            f"/v1/runs/{_live(env, 'globex', 0)}/cancel": {},
            f"/v1/runs/{other}/annotations": {"text": "x"},
            f"/v1/runs/{other}/tags": {"add": ["x"]},
        }
        for path, body in posts.items():
            assert c.post(path, json=body).status_code == 404, path
        # The matrix's POST /v1/events sample makes a run of acme's, which the server assembles
        # in the background: every export is compared with acme's runs once it is.
        settle(env.server)
        mine = {r["run_id"] for r in c.get("/v1/runs", params={"limit": 500}).json()["runs"]}
        assert {r["run_id"] for r in acme} <= mine and not mine & theirs
        for fmt in ("csv", "jsonl", "parquet"):
            data = c.get("/v1/runs/export", params={"format": fmt, "steps": True}).content
            ids = _export_ids(fmt, data)
            assert ids == mine and not ids & theirs, fmt
        assert c.get("/v1/runs", headers={"X-WRM-Tenant": "globex"}).status_code == 403
        assert all(a["run_id"] not in theirs for a in c.get("/v1/actions").json())
        assert {k["tenant"] for k in c.get("/v1/keys").json()["keys"]} == {"acme"}
        assert c.get("/v1/keys", params={"tenant": "globex"}).status_code == 403
        globex_key = env.keys["globex"]["viewer"].split("_")[1]
        assert c.delete(f"/v1/keys/{globex_key}").status_code == 404
        assert c.post("/v1/keys", json={"tenant": "globex", "role": "admin", "name": "x"}).status_code == 403
        assert {e["tenant"] for e in c.get("/v1/audit").json()["entries"]} == {"acme"}
        assert c.get("/v1/audit", params={"tenant": "globex"}).status_code == 403
    with env.client(env.keys["globex"]["viewer"]) as c:
        assert c.get(f"/v1/runs/{_done(env, 'acme')}").status_code == 404
    with env.client(ADMIN_KEY, **{"X-WRM-Tenant": "globex"}) as c:  # the platform admin names any tenant
        assert {r["run_id"] for r in c.get("/v1/runs", params={"limit": 500}).json()["runs"]} == theirs


def _export_ids(fmt: str, data: bytes) -> set[str]:
    if fmt == "csv":
        return {row["run_id"] for row in csv.DictReader(io.StringIO(data.decode()))}
    if fmt == "jsonl":
        return {json.loads(line)["run_id"] for line in data.splitlines() if line}
    return set(pq.read_table(io.BytesIO(data)).column("run_id").to_pylist())


def test_key_lifecycle_and_audit(env: Env) -> None:
    """Created by the platform admin, shown once, listed without its secret and with its last
    use, revoked: 401 from then on. Every change and action is in the audit trail with the key."""
    with env.client(ADMIN_KEY) as platform:
        made = platform.post("/v1/keys", json={"tenant": "acme", "role": "operator", "name": "ops-bot"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert set(body) >= {"id", "key", "tenant", "role", "name"}
        assert (body["tenant"], body["role"], body["name"]) == ("acme", "operator", "ops-bot")
        assert platform.post("/v1/keys", json={"role": "viewer", "name": "x"}).status_code == 400
    key, key_id = body["key"], body["id"]
    run = _done(env, "acme")
    with env.client(key, **{"X-WRM-Actor": "someone-else"}) as ops:
        tagged = ops.post(f"/v1/runs/{run}/tags", json={"add": ["audited"]})
        assert tagged.status_code == 200
        note = ops.post(f"/v1/runs/{run}/annotations", json={"text": "checked", "author": "mallory"}).json()
        assert note["author"] == f"ops-bot ({key_id})"  # the key, not the claimed author or X-WRM-Actor
        rerun = ops.post(f"/v1/runs/{run}/rerun", json={"reason": "audit"}).json()
        assert rerun["requested_by"] == f"ops-bot ({key_id})"
        assert ops.get("/v1/keys").status_code == 403  # an operator does not manage keys
    env.server.authenticator.flush_uses()  # type: ignore[union-attr]
    with env.client(env.keys["acme"]["admin"]) as admin:
        listed = {k["id"]: k for k in admin.get("/v1/keys").json()["keys"]}
        assert listed[key_id]["last_used_at"] and listed[key_id]["active"]
        assert key not in admin.get("/v1/keys").text and "digest" not in admin.get("/v1/keys").text
        gone = admin.delete(f"/v1/keys/{key_id}")
        assert gone.status_code == 200 and gone.json()["active"] is False
        assert admin.delete(f"/v1/keys/{key_id}").status_code == 200  # again: no change
        entries = admin.get("/v1/audit", params={"limit": 1000}).json()["entries"]
        paged, cursor = [], None
        while True:  # two at a time, by cursor: every entry once, in the same order
            page = admin.get(
                "/v1/audit", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            ).json()
            paged += page["entries"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert [e["event_id"] for e in paged] == [e["event_id"] for e in entries]
        assert admin.get("/v1/audit", params={"cursor": "nonsense"}).status_code == 400
    with env.client(key) as ops:
        refused = ops.get("/v1/runs")
        assert refused.status_code == 401 and key not in refused.text
    mine = [e for e in entries if e["actor_key_id"] == key_id]
    assert {e["action"] for e in mine} == {"run.tag", "run.annotate", "run.rerun"}
    assert all(e["actor_name"] == "ops-bot" and e["target"] == run for e in mine)
    about = [e for e in entries if e["target"] == key_id]
    assert [e["action"] for e in about] == ["key.revoke", "key.create"]  # newest first; revoked once
    assert about[1]["actor_key_id"] == "platform" and about[0]["actor_name"] == "acme-admin"


def test_platform_admin_needs_no_tenant_but_a_tenant_admin_stays_home(env: Env) -> None:
    with env.client(env.keys["globex"]["admin"]) as c:
        own = c.post("/v1/keys", json={"role": "ingest", "name": "globex-exporter"})
        assert own.status_code == 201 and own.json()["tenant"] == "globex"
        assert (
            c.post("/v1/keys", json={"role": "viewer", "name": "x", "tenant": "bad tenant!"}).status_code
            == 422
        )
    with env.client(ADMIN_KEY) as c:
        tenants = {k["tenant"] for k in c.get("/v1/keys").json()["keys"]}
        assert tenants >= {"acme", "globex"}
        audit = c.get("/v1/audit", params={"tenant": "globex"}).json()["entries"]
        assert audit and {e["tenant"] for e in audit} == {"globex"}


def test_a_missing_key_is_401_whatever_else_is_wrong(env: Env) -> None:
    """The key is checked before the body is read or a parameter validated: no key with a body
    that is not JSON, or with an over-long header, is still 401, not 422."""
    with env.client() as c:
        bad_json = c.post("/v1/keys", content=b"{not json", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 401, bad_json.text
        long_actor = c.get("/v1/runs", headers={"X-WRM-Actor": "a" * 500})
        assert long_actor.status_code == 401, long_actor.text
        assert long_actor.headers["x-request-id"] and long_actor.headers["www-authenticate"].startswith(
            "Bearer"
        )
    with env.client(env.keys["acme"]["viewer"], **{"X-WRM-Actor": "a" * 500}) as c:
        assert c.get("/v1/runs").status_code == 200  # the label is not even read with a key
