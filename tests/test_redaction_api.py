"""Redaction over the API, against a real server that requires keys, fed with the OTel SDK:
a tenant's policy (GET/PUT/DELETE /v1/tenants/{tenant}/redaction, admins only, audited with
before and after), the built-in detectors, POST /v1/redact (ingest and admin keys only; what it
answers is what ingest stores), redaction counts in run detail, and operators' text redacted
before it is stored. Settings changes recorded at start-up are tested on the function itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from redaction import DETECTORS
from tests.conftest import module_server, settle
from tests.otlp import flush, sdk_provider
from warehouse import Warehouse
from wrm.redaction_audit import record_settings_changes
from wrm.server import WrmServer

ADMIN_KEY = "platform-admin-" + "r" * 40
ROLES = ("ingest", "viewer", "operator", "admin")
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
GLOBEX_SETTINGS = {"detectors": {"email": "mask"}}  # globex's settings policy
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
ORDER = "ORD-482913"
ORDER_RULE = {"name": "order_id", "pattern": "ORD-[0-9]{6}", "action": "hash"}
SK_KEY = "sk-proj-" + "Zq7" * 11  # a tag's shape, and the sk_key detector's


@dataclass
class Env:
    server: WrmServer
    url: str
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # tenant -> role -> key

    def client(self, key: str = "", **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, timeout=60, headers={**auth, **headers})

    def admin(self, tenant: str) -> httpx.Client:
        return self.client(self.keys[tenant]["admin"])

    def rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        assert self.server.warehouse is not None
        return self.server.warehouse.rows(query, params)


@pytest.fixture(scope="module")
def env(engine_dir: Path) -> Iterator[Env]:
    settings = {"auth": "required", "admin_key": ADMIN_KEY, "tenant_redaction": {"globex": GLOBEX_SETTINGS}}
    with module_server(engine_dir, **settings) as srv:
        e = Env(srv, f"http://{srv.http_address}")
        for tenant in TENANTS:
            e.keys[tenant] = {role: srv.create_key(tenant, role, f"{tenant}-{role}") for role in ROLES}
        yield e


def _send(env: Env, tenant: str, step: dict[str, str], root: dict[str, str] | None = None) -> str:
    """One run through the SDK with the tenant's ingest key: a run span and one step carrying
    `step`'s attributes; its trace id."""
    provider = sdk_provider(env.server.otlp_address, service="redaction-svc", key=env.keys[tenant]["ingest"])
    tracer = provider.get_tracer("redaction-test")
    with (
        tracer.start_as_current_span("refund", attributes=root or {}) as run,
        tracer.start_as_current_span("lookup", attributes={"wrm.step.name": "lookup", **step}),
    ):
        pass
    flush(provider)
    provider.shutdown()
    return format(run.get_span_context().trace_id, "032x")


def _stored(env: Env, trace_id: str, span: str = "lookup") -> dict[str, str]:
    rows = env.rows(
        "SELECT attributes FROM spans WHERE trace_id = {t:String} AND name = {n:String}", t=trace_id, n=span
    )
    assert len(rows) == 1, rows
    return dict(rows[0][0])


def _audit(env: Env, tenant: str) -> list[dict[str, Any]]:
    with env.client(ADMIN_KEY) as c:
        page = c.get("/v1/audit", params={"tenant": tenant, "action": "redaction.policy", "limit": 100})
    assert page.status_code == 200, page.text
    return list(page.json()["entries"])


def test_detectors_are_listed_for_viewers(env: Env) -> None:
    with env.client(env.keys["acme"]["viewer"]) as c:
        got = c.get("/v1/redaction/detectors")
    assert got.status_code == 200, got.text
    shown = {d["name"]: d for d in got.json()["detectors"]}
    assert list(shown) == [d.name for d in DETECTORS]
    assert shown["card_number"]["default"] == "mask" and shown["email"]["default"] == "off"
    assert shown["credential_key"]["kind"] == "key" and shown["jwt"]["kind"] == "value"
    with env.client(env.keys["acme"]["ingest"]) as c:
        assert c.get("/v1/redaction/detectors").status_code == 403


def test_a_tenant_admin_sets_reads_and_removes_its_policy_audited(env: Env) -> None:
    policy = {"detectors": {"email": "hash", "phone": "mask"}, "rules": [ORDER_RULE]}
    admin_id = env.keys["acme"]["admin"].split("_")[1]
    with env.admin("acme") as c:
        fresh = c.get("/v1/tenants/acme/redaction").json()
        assert (fresh["source"], fresh["policy"], fresh["changed_at"]) == ("global", None, None)
        assert fresh["effective"]["detectors"]["card_number"] == "mask"
        assert fresh["effective"]["detectors"]["email"] == "off" and fresh["effective"]["rules"] == []
        put = c.put("/v1/tenants/acme/redaction", json=policy)
        assert put.status_code == 200, put.text
        assert c.put("/v1/tenants/acme/redaction", json=policy).status_code == 200  # the same: no change
        shown = c.get("/v1/tenants/acme/redaction").json()
        assert shown["source"] == "api" and shown["changed_by"] == f"acme-admin ({admin_id})"
        assert shown["changed_at"] and shown["policy"]["rules"][0]["pattern"] == ORDER_RULE["pattern"]
        assert shown["effective"]["detectors"]["email"] == "hash"
        assert [r["name"] for r in shown["effective"]["rules"]] == ["order_id"]
        gone = c.delete("/v1/tenants/acme/redaction")
        assert gone.status_code == 200 and gone.json()["source"] == "global"
        assert gone.json()["policy"] is None and gone.json()["effective"]["detectors"]["email"] == "off"
        assert c.delete("/v1/tenants/acme/redaction").status_code == 200  # again: nothing to remove
    entries = _audit(env, "acme")
    assert [e["detail"]["after"] is None for e in entries] == [True, False]  # newest first: one each
    removed, made = entries
    assert all(e["actor_key_id"] == admin_id and e["target"] == "acme" for e in entries)
    assert made["detail"]["before"] is None and made["detail"]["source"] == "api"
    assert made["detail"]["after"] == {"detectors": policy["detectors"], "rules": [ORDER_RULE]}
    assert (made["detail"]["before_source"], made["detail"]["after_source"]) == ("global", "api")
    assert removed["detail"]["before"] == made["detail"]["after"]
    assert removed["detail"]["after_source"] == "global"


def test_only_admins_of_the_tenant_and_the_platform_admin(env: Env) -> None:
    body = {"rules": [{"name": "x", "keys": ["x.*"]}]}
    for role in ("ingest", "viewer", "operator"):
        with env.client(env.keys["acme"][role]) as c:
            for method in ("GET", "PUT", "DELETE"):
                got = c.request(method, "/v1/tenants/acme/redaction", json=body if method == "PUT" else None)
                assert got.status_code == 403, (role, method, got.text)
    with env.client() as c:
        assert c.get("/v1/tenants/acme/redaction").status_code == 401
        assert c.put("/v1/tenants/acme/redaction", json=body).status_code == 401
    with env.admin("acme") as c:
        for method in ("GET", "PUT", "DELETE"):
            got = c.request(method, "/v1/tenants/globex/redaction", json=body if method == "PUT" else None)
            assert got.status_code == 403, (method, got.text)
            assert got.headers["content-type"] == "application/problem+json"
        assert c.get("/v1/tenants/bad%20tenant!/redaction").status_code == 422
    with env.client(ADMIN_KEY) as c:  # the platform admin reads any tenant: globex's is in settings
        globex = c.get("/v1/tenants/globex/redaction").json()
        assert globex["source"] == "settings" and globex["policy"] == {
            **GLOBEX_SETTINGS,
            "rules": [],
            "keep": None,
        }
        assert globex["effective"]["detectors"]["email"] == "mask"
    assert _audit(env, "globex") and all(e["actor_name"] == "settings" for e in _audit(env, "globex"))


@pytest.mark.parametrize(
    ("policy", "where"),
    [
        ({"rules": [{"name": "bad", "pattern": "(unclosed"}]}, "body.rules.0.pattern"),
        ({"rules": [{"name": "empty", "pattern": "a*"}]}, "body.rules.0.pattern"),
        ({"detectors": {"no_such_detector": "mask"}}, "body.detectors"),
        ({"rules": [{"name": "glob", "keys": ["has space"]}]}, "body.rules.0.keys.0"),
        (
            {"rules": [{"name": "ok", "keys": ["a"]}, {"name": "glob", "keys": ["b", "[]"]}]},
            "body.rules.1.keys.1",
        ),
        ({"rules": [{"name": "card_number", "keys": ["a"]}]}, "body.rules.0"),
        ({"detectors": {"email": "scramble"}}, "body.detectors.email"),
    ],
)
def test_a_bad_policy_is_422_naming_the_field(env: Env, policy: dict[str, Any], where: str) -> None:
    with env.admin("umbrella") as c:
        got = c.put("/v1/tenants/umbrella/redaction", json=policy)
        assert got.status_code == 422, got.text
        assert got.headers["content-type"] == "application/problem+json"
        assert where in [e["where"] for e in got.json()["errors"]], got.json()
        assert c.get("/v1/tenants/umbrella/redaction").json()["source"] == "global"  # nothing was set


def test_a_policy_applies_to_spans_received_after_it(env: Env) -> None:
    """Before the PUT the order id and email are stored as sent; after it the same attributes
    are redacted, and POST /v1/redact answers exactly what was stored (digests included)."""
    step = {"order.note": f"refund {ORDER} for {EMAIL}", "customer": EMAIL, "api_key": "k-7788-abcd"}
    before = _send(env, "initech", step)
    with env.admin("initech") as c:
        put = c.put(
            "/v1/tenants/initech/redaction", json={"detectors": {"email": "mask"}, "rules": [ORDER_RULE]}
        )
        assert put.status_code == 200, put.text
    after = _send(env, "initech", step, root={"card": CARD})
    settle(env.server)
    old, new = _stored(env, before), _stored(env, after)
    assert old["order.note"] == step["order.note"] and old["customer"] == EMAIL  # not rewritten
    assert old["api_key"] == "[REDACTED:credential_key]"  # the default policy then
    assert ORDER not in json.dumps(new) and EMAIL not in json.dumps(new)
    assert json.loads(new["wrm.redacted"]) == {"credential_key": 1, "email": 2, "order_id": 1}
    with env.client(env.keys["initech"]["ingest"]) as c:
        answer = c.post(
            "/v1/redact", json={"items": [{**step, "wrm.step.name": "lookup"}, step["order.note"]]}
        )
    assert answer.status_code == 200, answer.text
    redacted = answer.json()
    assert redacted["items"][0] == {k: v for k, v in new.items() if k != "wrm.redacted"}
    assert redacted["items"][1] == new["order.note"] and "[HASH:order_id:" in new["order.note"]
    assert redacted["redacted"] == {"credential_key": 1, "email": 3, "order_id": 2}
    with env.client(env.keys["initech"]["viewer"]) as c:
        detail = c.get(f"/v1/runs/{after}").json()
        plain = c.get(f"/v1/runs/{before}").json()
    assert detail["redactions"] == {"card_number": 1, "credential_key": 1, "email": 2, "order_id": 1}
    with env.client(env.keys["initech"]["viewer"]) as c:
        steps = c.get(f"/v1/runs/{after}/steps", params={"view": "flat"}).json()["steps"]
    assert [s["redactions"] for s in steps] == [{"credential_key": 1, "email": 2, "order_id": 1}]
    assert plain["redactions"] == {"credential_key": 1}


def test_redact_is_for_senders_only(env: Env) -> None:
    items = {"items": [f"card {CARD}", {"password": "hunter2", "mail": EMAIL}]}
    for role, want in (("viewer", 403), ("operator", 403), ("ingest", 200), ("admin", 200)):
        with env.client(env.keys["acme"][role]) as c:
            got = c.post("/v1/redact", json=items)
            assert got.status_code == want, (role, got.text)
    with env.client() as c:
        assert c.post("/v1/redact", json=items).status_code == 401
    with env.client(env.keys["acme"]["ingest"], **{"X-WRM-Tenant": "globex"}) as c:
        assert c.post("/v1/redact", json=items).status_code == 403  # its own tenant only
    with env.client(env.keys["acme"]["ingest"]) as c:
        mine = c.post("/v1/redact", json=items).json()
        assert mine["items"] == [
            "card [REDACTED:card_number]",
            {"password": "[REDACTED:credential_key]", "mail": EMAIL},
        ]
        too_big = c.post("/v1/redact", json={"items": ["x" * (1 << 20)]})
        assert too_big.status_code == 413 and too_big.headers["content-type"] == "application/problem+json"
        deep: Any = "x"
        for _ in range(40):
            deep = [deep]
        assert c.post("/v1/redact", json={"items": [deep]}).status_code == 422
        assert c.post("/v1/redact", content=b'{"items": [NaN]}').status_code == 422
    with env.client(ADMIN_KEY, **{"X-WRM-Tenant": "globex"}) as c:  # the platform admin names a tenant
        theirs = c.post("/v1/redact", json=items).json()
    assert theirs["items"][1]["mail"] == "[REDACTED:email]"
    assert theirs["redacted"] == {"card_number": 1, "credential_key": 1, "email": 1}


def test_operators_text_is_redacted_before_it_is_stored(env: Env) -> None:
    secret = "sk-" + "Q" * 32
    run = _send(env, "umbrella", {"step.input": "nothing secret"})
    settle(env.server)
    with env.client(env.keys["umbrella"]["operator"]) as c:
        note = c.post(f"/v1/runs/{run}/annotations", json={"text": f"customer card {CARD}", "label": secret})
        assert note.status_code == 201, note.text
        assert note.json()["text"] == "customer card [REDACTED:card_number]"
        assert note.json()["label"] == "[REDACTED:sk_key]"
        rerun = c.post(
            f"/v1/runs/{run}/rerun",
            json={"reason": f"retry with {secret}", "context": {"password": "hunter2", "card": CARD, "n": 3}},
        )
        assert rerun.status_code == 201, rerun.text
        action = rerun.json()
        assert action["reason"] == "retry with [REDACTED:sk_key]"
        assert action["context"] == {
            "password": "[REDACTED:credential_key]", "card": "[REDACTED:card_number]", "n": 3,
        }  # fmt: skip
        tag = c.post(f"/v1/runs/{run}/tags", json={"add": ["4111111111111111"]})
        assert tag.status_code == 400 and "4111" not in tag.text
    with env.client(env.keys["umbrella"]["operator"]) as c:
        acked = c.post(f"/v1/actions/{action['action_id']}/ack", json={"outcome": "done", "message": secret})
        assert acked.status_code == 200 and acked.json()["outcome_message"] == "[REDACTED:sk_key]"
    for table in ("run_annotations", "run_actions", "run_tags", "audit_log"):
        text = json.dumps([list(map(str, r)) for r in env.rows(f"SELECT * FROM {table}")])
        for value in (secret, "hunter2", CARD, "4111111111111111"):
            assert value not in text, (table, value)
    entries = _audit(env, "umbrella")  # redaction.policy ones: none; the annotation's says what went
    assert entries == []
    with env.admin("umbrella") as c:
        notes = c.get("/v1/audit", params={"action": "run.annotate"}).json()["entries"]
    assert notes[0]["detail"]["redacted"] == {"card_number": 1, "sk_key": 1}


def _tag_rows(env: Env, tag: str) -> list[tuple[Any, ...]]:
    return env.rows("SELECT run_id, present FROM run_tags WHERE tag = {t:String}", t=tag)


def test_removing_a_tag_stores_only_what_the_run_had(env: Env) -> None:
    """A removal writes a row only for a tag the run has: one a rule would change and the run
    has not is refused (400, naming its place, not its text) rather than stored as removed; one
    stored before a rule matched it is still removed, audited redacted."""
    run = _send(env, "hooli", {"step.input": "nothing secret"})
    settle(env.server)
    with env.client(env.keys["hooli"]["operator"]) as c:
        added = c.post(f"/v1/runs/{run}/tags", json={"add": ["TICKET-4821", "golden"]})
        assert added.status_code == 200 and added.json()["tags"] == ["TICKET-4821", "golden"], added.text
    with env.admin("hooli") as c:  # now a rule matches the stored tag
        rule = {"name": "ticket", "pattern": "TICKET-[0-9]{4}", "action": "mask"}
        assert c.put("/v1/tenants/hooli/redaction", json={"rules": [rule]}).status_code == 200
    with env.client(env.keys["hooli"]["operator"]) as c:
        absent = c.post(f"/v1/runs/{run}/tags", json={"remove": ["golden", SK_KEY, "TICKET-0001"]})
        assert absent.status_code == 400, absent.text
        detail = absent.json()["detail"]
        assert "remove[1], remove[2]" in detail and "sk_key" in detail and "ticket" in detail
        assert SK_KEY not in absent.text and "TICKET-0001" not in absent.text
        assert c.post(f"/v1/runs/{run}/tags", json={"remove": ["never-there"]}).status_code == 200
        refused = {
            "add[1]: tag(s) that match redaction rules (ticket)": c.post(
                f"/v1/runs/{run}/tags", json={"add": ["fine", "TICKET-9999"]}
            ),
            "add[1]: tag(s) that match redaction rules (sk_key)": c.post(
                f"/v1/runs/{run}/tags", json={"add": ["fine", f"not a tag {SK_KEY}"]}
            ),
            "remove[1] is not a tag": c.post(
                f"/v1/runs/{run}/tags", json={"remove": ["fine", "hello world 42"]}
            ),
            "add[0] is also in remove": c.post(
                f"/v1/runs/{run}/tags", json={"add": ["two-ways"], "remove": ["two-ways"]}
            ),
        }
        for said, got in refused.items():
            assert got.status_code == 400 and said in got.json()["detail"], (said, got.text)
            for text in (SK_KEY, "TICKET-9999", "hello world", "two-ways"):
                assert text not in got.text, (said, text)
        removed = c.post(f"/v1/runs/{run}/tags", json={"remove": ["TICKET-4821"]})
        assert removed.status_code == 200 and removed.json()["tags"] == ["golden"], removed.text
    for tag in (SK_KEY, "TICKET-0001", "TICKET-9999", "never-there", "two-ways", "fine"):
        assert _tag_rows(env, tag) == [], tag
    assert sorted(p for _, p in _tag_rows(env, "TICKET-4821")) == [0, 1]  # added, then removed
    with env.admin("hooli") as c:
        entries = c.get("/v1/audit", params={"action": "run.tag"}).json()["entries"]
    assert [e["detail"] for e in entries] == [  # newest first; the no-op removal left none
        {"add": [], "remove": ["[REDACTED:ticket]"]},
        {"add": ["TICKET-4821", "golden"], "remove": []},
    ]


def test_an_idempotency_key_is_never_quoted_nor_a_secret(env: Env) -> None:
    """The key is stored as given (an opaque client id): one a rule would change is 400, and a
    clash (409) says so without quoting it."""
    run = _send(env, "hooli", {"step.input": "nothing secret"})
    settle(env.server)
    with env.client(env.keys["hooli"]["operator"], **{"Idempotency-Key": "clash-7f3a"}) as c:
        assert c.post(f"/v1/runs/{run}/rerun", json={"reason": "once"}).status_code == 201
        clash = c.post(f"/v1/runs/{run}/cancel", json={"reason": "other"})
    assert clash.status_code == 409 and "clash-7f3a" not in clash.text
    assert "this Idempotency-Key was used for another request" in clash.json()["detail"]
    for key in (SK_KEY, "order 4111111111111111"):
        with env.client(env.keys["hooli"]["operator"], **{"Idempotency-Key": key}) as c:
            got = c.post(f"/v1/runs/{run}/rerun", json={"reason": "secret key"})
        assert got.status_code == 400 and "Idempotency-Key" in got.json()["detail"], got.text
        assert key not in got.text and "4111" not in got.text
    stored = env.rows("SELECT idempotency_key, reason FROM run_actions WHERE run_id = {r:String}", r=run)
    assert stored == [("clash-7f3a", "once")]


def test_a_key_name_the_rules_would_change_is_refused(env: Env) -> None:
    """A key's name is shown wherever the key acts: one its tenant's rules would change is 422
    (globex masks emails, umbrella does not; cards are masked everywhere) and is not stored."""
    card_name = f"ci {CARD}"
    with env.client(ADMIN_KEY) as c:
        for tenant, name in (("globex", EMAIL), ("umbrella", card_name)):
            got = c.post("/v1/keys", json={"tenant": tenant, "role": "viewer", "name": name})
            assert got.status_code == 422 and got.headers["content-type"] == "application/problem+json"
            assert [e["where"] for e in got.json()["errors"]] == ["body.name"], got.text
            assert name not in got.text and "matches redaction rules" in got.text
        fine = c.post("/v1/keys", json={"tenant": "umbrella", "role": "viewer", "name": EMAIL})
        assert fine.status_code == 201 and fine.json()["name"] == EMAIL, fine.text
    with env.admin("globex") as c:  # a tenant admin's own key: its tenant's rules
        got = c.post("/v1/keys", json={"role": "viewer", "name": f"for {EMAIL}"})
        assert got.status_code == 422 and "email" in got.json()["detail"] and EMAIL not in got.text
    assert env.rows("SELECT tenant_id FROM api_keys WHERE name LIKE {n:String}", n=f"%{EMAIL}%") == [
        ("umbrella",)
    ]
    assert env.rows("SELECT 1 FROM api_keys WHERE position(name, {c:String}) > 0", c=CARD) == []
    audit = json.dumps([list(map(str, r)) for r in env.rows("SELECT * FROM audit_log")])
    assert CARD not in audit and audit.count(EMAIL) == 1  # the umbrella key's creation only


def test_with_auth_off_a_policy_change_still_needs_a_key(server: WrmServer) -> None:
    """A policy weakened by whoever reaches a loopback port would outlive a switch to auth
    required; reading it and redacting need no key, the tenant then comes from X-WRM-Tenant."""
    with httpx.Client(base_url=f"http://{server.http_address}", timeout=60) as c:
        assert c.get("/v1/tenants/default/redaction").json()["source"] == "global"
        for method in ("PUT", "DELETE"):
            got = c.request(method, "/v1/tenants/default/redaction", json={} if method == "PUT" else None)
            assert got.status_code == 401 and "admin key" in got.json()["detail"], got.text
        got = c.post("/v1/redact", json={"items": [CARD]}, headers={"X-WRM-Tenant": "someone"})
        assert got.json() == {"items": ["[REDACTED:card_number]"], "redacted": {"card_number": 1}}


def test_settings_changes_are_recorded_once(warehouse: Warehouse) -> None:
    """What `wrm serve` runs at start-up: an entry when a settings policy differs from the one
    last recorded, none when it does not (the server's own start wrote globex's, above)."""
    from redaction.policy import Policy
    from warehouse import migrate

    migrate(warehouse)
    default = Policy()
    assert record_settings_changes(warehouse, default, {}) == 0  # a fresh install: nothing to say
    emails = Policy.model_validate(GLOBEX_SETTINGS)
    tenant = f"t{uuid.uuid4().hex[:6]}"
    assert record_settings_changes(warehouse, emails, {tenant: emails}) == 2
    assert record_settings_changes(warehouse, emails, {tenant: emails}) == 0
    assert record_settings_changes(warehouse, default, {}) == 2  # global back, tenant's removed
    rows = warehouse.rows(
        "SELECT tenant_id, target, actor_key_id, actor_name, detail FROM audit_log "
        "WHERE action = 'redaction.policy' ORDER BY at, event_id"
    )
    got = [(t, target, key, name, json.loads(d)) for t, target, key, name, d in rows]
    assert [(t, target) for t, target, *_ in got] == [("", "global"), (tenant, tenant)] * 2
    assert all(key == "" and name == "settings" for _, _, key, name, _ in got)
    assert got[0][4] == {"source": "settings", "before": {}, "after": GLOBEX_SETTINGS}
    assert got[1][4] == {"source": "settings", "before": None, "after": GLOBEX_SETTINGS}
    assert got[3][4] == {"source": "settings", "before": GLOBEX_SETTINGS, "after": None}
