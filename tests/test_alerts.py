"""Alert rules against a real server that requires keys, fed by the OpenTelemetry SDK: a
first-pass drop fires once and recovery resolves once (one alert_history row and one outbox
event each), a value between the threshold and the recover threshold keeps a rule firing, too few
samples never fire; the dead man's switch and runs waiting for a person; roles, tenants and 422s;
`wrm alerts`; and restarts, which neither fire a firing rule again nor lose an event."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from analytics.alerts import AlertEvaluator
from analytics.alerts.rules import complete
from analytics.alerts.store import RuleStore
from tests.conftest import module_server, settle
from tests.otlp import flush, sdk_provider
from warehouse import Warehouse, WarehouseUnavailable
from warehouse.outbox import Outbox
from wrm.cli import main
from wrm.server import WrmServer

ADMIN_KEY = "platform-admin-" + "a" * 40
SEC = 1_000_000_000


@dataclass
class Env:
    server: WrmServer
    url: str
    evaluator: AlertEvaluator
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # tenant -> role -> key

    def client(self, tenant: str = "acme", role: str = "admin") -> httpx.Client:
        key = self.keys[tenant][role]
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {key}"})


def _send(srv: WrmServer, key: str, runs: list[tuple[str, str, int]]) -> None:
    """Runs (workflow, kind, started this many seconds ago) through the SDK: `first_pass`,
    `retried` (a step's first attempt failed: not first-pass), `waiting` (for a person)."""
    provider = sdk_provider(srv.otlp_address, service="alerts-svc", key=key)
    tracer = provider.get_tracer("tests.alerts")
    now = time.time_ns()
    for i, (workflow, kind, age_s) in enumerate(runs):
        t0 = now - age_s * SEC + i * 1000
        root = tracer.start_span(workflow, start_time=t0, attributes={"wrm.workflow.name": workflow})
        ctx = set_span_in_context(root)
        attempts = 2 if kind == "retried" else 1
        for attempt in range(1, attempts + 1):
            step = tracer.start_span("classify", context=ctx, start_time=t0 + attempt * 1000)
            if attempt < attempts:
                step.set_status(Status(StatusCode.ERROR, "model timed out"))
            step.end(end_time=t0 + attempt * 1000 + 500)
        if kind == "waiting":
            ask = tracer.start_span(
                "ask", context=ctx, start_time=t0 + 5000, attributes={"wrm.hitl.state": "requested"}
            )
            ask.end(end_time=t0 + 6000)
        root.end(end_time=t0 + SEC)
    flush(provider)
    provider.shutdown()


@pytest.fixture(scope="module")
def env(engine_dir: Path) -> Iterator[Env]:
    with module_server(engine_dir, auth="required", admin_key=ADMIN_KEY) as srv:
        keys = {
            t: {r: srv.create_key(t, r, f"{t}-{r}") for r in ("ingest", "viewer", "admin")}
            for t in ("acme", "globex")
        }
        # acme: 1 first-pass run of 4 five minutes ago, 4 of 4 a quarter of an hour ago; one run waiting
        # for a person for 20 minutes, one for 5 seconds. globex: runs acme's rules never see
        _send(srv, keys["acme"]["ingest"], [
            ("fp", "first_pass", 300), *[("fp", "retried", 300)] * 3, *[("fp", "first_pass", 900)] * 4,
            ("review", "waiting", 1200), ("review", "waiting", 5),
        ])  # fmt: skip
        _send(srv, keys["globex"]["ingest"], [*[("fp", "first_pass", 300)] * 4, ("review", "waiting", 1200)])
        settle(srv)
        # the server's own evaluator, behind its own /v1/alerts routes: the tests fail if `wrm serve`
        # stops wiring it
        assert srv.notifications is not None, "wrm serve runs no webhooks and alerts"
        evaluator = srv.notifications.alerts
        assert isinstance(evaluator, AlertEvaluator), evaluator
        yield Env(srv, f"http://{srv.http_address}", evaluator, keys)


def _create(c: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = c.post("/v1/alerts", json={"interval_s": 3600, **body})
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


def _evaluate(c: httpx.Client, rule_id: str) -> dict[str, Any]:
    resp = c.post(f"/v1/alerts/{rule_id}/evaluate")
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _history(c: httpx.Client, rule_id: str) -> list[dict[str, Any]]:
    resp = c.get(f"/v1/alerts/{rule_id}/history")
    assert resp.status_code == 200, resp.text
    transitions: list[dict[str, Any]] = resp.json()["transitions"]
    return transitions


def _events(env: Env, rule_id: str) -> list[tuple[Any, ...]]:
    assert env.server.warehouse is not None
    return env.server.warehouse.rows(
        "SELECT event_id, type, status, tenant_id, run_id, workflow_name, data FROM lifecycle_events "
        "WHERE JSONExtractString(data, 'rule_id') = {r:String} ORDER BY emitted_ms",
        {"r": rule_id},
    )


def test_first_pass_drop_fires_once_recovery_resolves_once_and_few_samples_never_fire(env: Env) -> None:
    with env.client() as c:
        # the last 10 minutes: 1 first-pass run of 4
        rule = _create(c, name="fp drop", metric="first_pass_rate", threshold=0.5, recover_threshold=0.7,
                       min_samples=4, workflow="fp", window_s=600)  # fmt: skip
        few = _create(c, name="fp few", metric="first_pass_rate", threshold=0.5, min_samples=9, workflow="fp",
                      window_s=600)  # fmt: skip
        assert (rule["comparison"], rule["state"], rule["since"], rule["transitions"]) == (
            "below",
            "ok",
            None,
            0,
        )

        evaluations = [_evaluate(c, rule["rule_id"]) for _ in range(3)]
        assert [(e["state"], e["value"], e["samples"]) for e in evaluations] == [("firing", 0.25, 4)] * 3
        assert [e["transition"] for e in evaluations[1:]] == [None, None]  # still low: nothing more
        [fired] = _history(c, rule["rule_id"])
        assert (fired["transition"], fired["state"], fired["value"], fired["samples"]) == (
            1,
            "firing",
            0.25,
            4,
        )
        [event] = _events(env, rule["rule_id"])
        assert event[:6] == (fired["event_id"], "alert.firing", "firing", "acme", "", "fp")
        data = json.loads(event[6])
        assert (data["threshold"], data["recover_threshold"], data["value"], data["state"]) == (
            0.5,
            0.7,
            0.25,
            "firing",
        )
        assert (
            data["scope"] == {"workflow": "fp", "version": "", "environment": ""} and data["min_samples"] == 4
        )
        shown = c.get(f"/v1/alerts/{rule['rule_id']}").json()
        assert (shown["state"], shown["value"], shown["samples"], shown["transitions"]) == (
            "firing",
            0.25,
            4,
            1,
        )
        assert shown["since"] == fired["at"] and shown["evaluated_at"] >= fired["at"]
        low = _evaluate(c, few["rule_id"])
        assert (low["state"], low["transition"], low["note"]) == (
            "ok",
            None,
            "insufficient samples: 4 of 9 runs",
        )

        # the last 20 minutes: 5 first-pass runs of 8, past the threshold, short of the recover threshold
        widened = c.patch(f"/v1/alerts/{rule['rule_id']}", json={"window_s": 1200})
        assert widened.status_code == 200 and widened.json()["state"] == "firing", widened.text
        between = _evaluate(c, rule["rule_id"])
        assert (between["state"], between["transition"], between["value"]) == ("firing", None, 0.625)
        assert between["note"] == "hysteresis: resolves at 0.7 or above; 0.625 now"

        # 4 first-pass runs arrive: 9 of 12, recovered
        _send(env.server, env.keys["acme"]["ingest"], [("fp", "first_pass", 30)] * 4)
        settle(env.server)
        recovered = [_evaluate(c, rule["rule_id"]) for _ in range(2)]
        assert [(e["state"], e["transition"], e["value"]) for e in recovered] == [
            ("ok", "resolved", 0.75), ("ok", None, 0.75)
        ]  # fmt: skip
        assert [(t["transition"], t["state"]) for t in _history(c, rule["rule_id"])] == [
            (2, "resolved"),
            (1, "firing"),
        ]
        events = _events(env, rule["rule_id"])
        assert [(e[1], e[2]) for e in events] == [("alert.firing", "firing"), ("alert.resolved", "resolved")]
        assert events[1][0] == recovered[0]["event_id"] == _history(c, rule["rule_id"])[0]["event_id"]
        assert json.loads(events[1][6])["value"] == 0.75

        # its runs' rate was 0.25, then 5 of 8: too few samples all along, never fired
        assert _evaluate(c, few["rule_id"])["note"] == "insufficient samples: 8 of 9 runs"
        assert _history(c, few["rule_id"]) == [] and _events(env, few["rule_id"]) == []


def test_dead_mans_switch_and_runs_waiting_for_a_person(env: Env) -> None:
    with env.client() as c:
        dead = _create(c, name="nightly export", metric="no_runs", workflow="nightly-export", window_s=600)
        alive = _create(c, name="fp alive", metric="no_runs", workflow="fp", window_s=600)
        waiting = _create(c, name="stuck reviews", metric="waiting_human", wait_s=600, workflow="review")
        any_wait = _create(c, name="any review wait", metric="waiting_human", wait_s=1, workflow="review")
        assert (dead["comparison"], dead["threshold"], waiting["comparison"], waiting["threshold"]) == (
            "below", 1, "above", 0
        )  # fmt: skip
        fired = _evaluate(c, dead["rule_id"])
        assert (fired["state"], fired["value"]) == ("firing", 0)
        assert [e[1] for e in _events(env, dead["rule_id"])] == ["alert.firing"]
        up = _evaluate(c, alive["rule_id"])
        assert up["state"] == "ok" and up["value"] >= 4
        # acme's run waiting 20 minutes counts; the one waiting 5 seconds and globex's do not
        stuck = _evaluate(c, waiting["rule_id"])
        assert (stuck["state"], stuck["value"], stuck["samples"]) == ("firing", 1, 1)
        assert _evaluate(c, any_wait["rule_id"])["value"] == 2
        assert [t["state"] for t in _history(c, waiting["rule_id"])] == ["firing"]


def test_roles_tenants_and_invalid_rules(env: Env) -> None:
    with env.client() as admin, env.client(role="viewer") as viewer, env.client("globex") as other:
        rule = _create(admin, name="failures", metric="failure_count", threshold=3, workflow="fp")
        rid = rule["rule_id"]
        assert rule["created_by"].startswith("acme-admin")
        refused = viewer.post("/v1/alerts", json={"name": "x", "metric": "no_runs"})
        assert refused.status_code == 403, refused.text
        assert viewer.post(f"/v1/alerts/{rid}/evaluate").status_code == 403
        assert viewer.delete(f"/v1/alerts/{rid}").status_code == 403
        assert rid in {a["rule_id"] for a in viewer.get("/v1/alerts").json()["alerts"]}
        assert viewer.get(f"/v1/alerts/{rid}").json()["metric"] == "failure_count"
        assert httpx.get(f"{env.url}/v1/alerts").status_code == 401
        # another tenant's rule does not exist
        for method, path in (
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("GET", "/history"),
            ("POST", "/evaluate"),
        ):
            resp = other.request(
                method, f"/v1/alerts/{rid}{path}", json={"name": "x"} if method == "PATCH" else None
            )
            assert resp.status_code == 404, (method, path, resp.text)
        assert rid not in {a["rule_id"] for a in other.get("/v1/alerts").json()["alerts"]}

        def invalid(body: dict[str, Any], field: str, patch: bool = False) -> str:
            resp = (
                admin.patch(f"/v1/alerts/{rid}", json=body) if patch else admin.post("/v1/alerts", json=body)
            )
            assert resp.status_code == 422, (body, resp.text)
            problem = resp.json()
            assert f"body.{field}" in [e["where"] for e in problem["errors"]], problem
            return str(problem["detail"])

        base = {"name": "n", "metric": "first_pass_rate", "threshold": 0.5}
        invalid({**base, "metric": "latency"}, "metric")
        invalid({**base, "window_s": -60}, "window_s")
        invalid({**base, "interval_s": 0}, "interval_s")
        assert "between 0 and 1" in invalid({**base, "threshold": 1.5}, "threshold")
        invalid({**base, "recover_threshold": 0.3}, "recover_threshold")
        invalid({"name": "n", "metric": "first_pass_rate"}, "threshold")
        invalid({"name": "n", "metric": "failure_count", "threshold": 1, "wait_s": 60}, "wait_s")
        invalid({**base, "thresold": 0.5}, "thresold")
        invalid({**base, "name": ""}, "name")
        invalid({"metric": "failure_rate"}, "threshold", patch=True)  # a count's threshold is no rate's
        invalid({"metric": "success_rate", "threshold": 7}, "threshold", patch=True)
        invalid({"interval_s": 0}, "interval_s", patch=True)

        changed = admin.patch(
            f"/v1/alerts/{rid}", json={"threshold": 5, "enabled": False, "name": "many failures"}
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["threshold"], changed.json()["enabled"], changed.json()["name"]) == (
            5,
            False,
            "many failures",
        )
        assert changed.json()["comparison"] == "above" and changed.json()["created_by"] == rule["created_by"]
        metric = admin.patch(f"/v1/alerts/{rid}", json={"metric": "success_rate", "threshold": 0.9}).json()
        assert (metric["metric"], metric["comparison"], metric["threshold"]) == ("success_rate", "below", 0.9)
        deleted = admin.delete(f"/v1/alerts/{rid}")
        assert (deleted.status_code, deleted.content) == (204, b""), deleted.text
        assert admin.get(f"/v1/alerts/{rid}").status_code == 404
        assert admin.delete(f"/v1/alerts/{rid}").status_code == 404


@pytest.fixture
def wrm_here(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str, key: str = "") -> tuple[int, str, str]:
        for name in [k for k in os.environ if k.startswith("WRM_")]:
            monkeypatch.delenv(name)
        if key:
            monkeypatch.setenv("WRM_KEY", key)
        capfd.readouterr()
        code = main(list(args))
        out = capfd.readouterr()
        return code, out.out, out.err

    return run


def test_wrm_alerts_through_the_server(env: Env, wrm_here: Callable[..., tuple[int, str, str]]) -> None:
    at = ("alerts", "--http", env.url.removeprefix("http://"))
    key = env.keys["acme"]["admin"]
    code, out, err = wrm_here(*at, "create", "--name", "cli", "--metric", "no_runs", "--workflow", "cli-none",
                              "--interval-s", "3600", "--json", key=key)  # fmt: skip
    assert code == 0, err
    rid = json.loads(out)["rule_id"]
    code, out, _ = wrm_here(*at, "list", key=key)
    assert code == 0 and out.splitlines()[0].split()[:4] == ["rule_id", "name", "metric", "state"]
    assert any(line.startswith(rid) and "no_runs" in line for line in out.splitlines())
    code, out, _ = wrm_here(*at, "evaluate", rid, key=key)
    assert code == 0 and out.startswith(f"{rid}: firing") and "value 0 over 0 runs" in out
    code, out, _ = wrm_here(*at, "history", rid, "--json", key=key)
    assert code == 0 and [t["state"] for t in json.loads(out)["transitions"]] == ["firing"]
    code, out, _ = wrm_here(*at, "show", rid, key=key)
    assert code == 0 and "state: firing" in out.splitlines()
    code, _, err = wrm_here(*at, "create", "--name", "x", "--metric", "success_rate", key=key)
    assert code == 2 and "threshold" in err
    code, _, err = wrm_here(
        *at, "create", "--name", "x", "--metric", "no_runs", key=env.keys["acme"]["viewer"]
    )
    assert code == 1 and "403" in err and "WRM_KEY" in err
    assert wrm_here(*at, "delete", rid, key=key)[0] == 0
    code, _, err = wrm_here(*at, "show", rid, key=key)
    assert code == 1 and "404" in err
    code, _, err = wrm_here("alerts", "--http", "127.0.0.1:9", "list")
    assert code == 1 and "no server answers at http://127.0.0.1:9" in err


def test_a_restart_neither_fires_again_nor_loses_an_event(env: Env) -> None:
    """With the server's evaluator paused: evaluators made afresh on the same warehouse stand for
    restarts; their state comes from alert_history."""
    srv = env.server
    assert srv.warehouse is not None and srv.notifications is not None
    store = RuleStore(srv.warehouse)
    env.evaluator.stop()
    handles: list[Warehouse] = []

    def fresh(outbox: Outbox | None = None) -> AlertEvaluator:
        handles.append(srv.warehouse.session())  # type: ignore[union-attr]
        return AlertEvaluator(handles[-1], outbox or srv.notifications.outbox)  # type: ignore[union-attr]

    def made(name: str) -> str:
        values, problems = complete({"name": name, "metric": "no_runs", "workflow": f"none-{name}"})
        assert not problems
        return store.create("restart-co", values, "test").rule_id

    try:
        dead = made("dead")
        [first] = fresh().evaluate(dead)
        assert (first.previous, first.state, first.transition) == ("ok", "firing", "firing")
        [again] = fresh().evaluate(dead)
        assert (again.previous, again.state, again.transition) == ("firing", "firing", None)
        assert len(store.history("restart-co", dead)) == 1
        assert [e[1] for e in _events(env, dead)] == ["alert.firing"]

        # a crash between storing a transition and its event: the next start sends it, once
        other = made("other")

        class Down(Outbox):
            def append(self, events: Any) -> int:
                raise WarehouseUnavailable("the outbox is down")

        handles.append(srv.warehouse.session())
        [lost] = fresh(Down(handles[-1])).evaluate(other)
        assert lost.transition == "firing" and _events(env, other) == []
        restarted = fresh()
        for _ in range(2):
            [kept] = restarted.evaluate(other)
            assert (kept.state, kept.transition) == ("firing", None)
        assert [e[1] for e in _events(env, other)] == ["alert.firing"]
        assert _events(env, other)[0][0] == lost.event_id
        assert [c.transition for c in store.history("restart-co", other)] == [1]
    finally:
        for handle in handles:
            handle.close()
        env.evaluator.start()
