"""`POST /v1/events` against a running server: what a caller gets back (ids, 200, 400, 413, 422
problems naming each refused field while the valid events of the same post are stored), re-posting
that changes nothing, ends posted after their starts, in-progress runs, redaction, and whose events
they are (X-WRM-Tenant with auth off; the key's tenant, roles and 401/403 with auth required).

One server per auth mode for the module: every scenario is posted by the fixture, then the runs
are assembled once (assembly is the slow part); scenarios keep apart by run id."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from events import ids
from tests.conftest import module_server, settle
from warehouse import Warehouse
from wrm.server import WrmServer

SEC = 1_000_000_000
BASE_NS = (time.time_ns() // SEC - 2 * 3600) * SEC  # recent: older spans would fall to the TTL
OTHER = "other-tenant"


def at(ms: int) -> str:
    moment = datetime.fromtimestamp((BASE_NS + ms * 1_000_000) / SEC, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms_of(api_time: str) -> float:
    """A time the runs API wrote, as ms after BASE_NS."""
    moment = datetime.fromisoformat(api_time)
    assert moment.utcoffset() is not None and not moment.utcoffset(), api_time  # UTC
    return (moment.timestamp() * SEC - BASE_NS) / 1_000_000


# A whole run: a failed attempt and its retry, a tool step inside the retry, a validation, a wait
# for a person and her decision. Used by the re-post test.
REPOST_RUN: list[dict[str, Any]] = [
    {"type": "run.started", "run_id": "repost", "time": at(0), "workflow": "wf", "version": "v1",
     "environment": "production"},
    {"type": "step.started", "run_id": "repost", "time": at(1000), "step_id": "classify"},
    {"type": "step.failed", "run_id": "repost", "time": at(2000), "step_id": "classify", "step_type": "llm",
     "error": {"type": "TimeoutError", "message": "model timed out"},
     "usage": {"input_tokens": 100, "output_tokens": 10, "cost_usd": 0.001, "model": "m"}},
    {"type": "step.started", "run_id": "repost", "time": at(3000), "step_id": "classify", "attempt": 2},
    {"type": "step.completed", "run_id": "repost", "time": at(3500), "step_id": "lookup", "step_type": "tool",
     "started_at": at(3100), "parent_step_id": "classify", "parent_attempt": 2},
    {"type": "step.completed", "run_id": "repost", "time": at(4000), "step_id": "classify", "attempt": 2,
     "step_type": "llm",
     "usage": {"input_tokens": 100, "output_tokens": 10, "cost_usd": 0.001, "model": "m"}},
    {"type": "step.completed", "run_id": "repost", "time": at(4500), "step_id": "check",
     "started_at": at(4200), "step_type": "validation",
     "validation": {"name": "schema", "passed": True, "score": 0.8}},
    {"type": "run.waiting_human", "run_id": "repost", "time": at(5000)},
    {"type": "human.decided", "run_id": "repost", "time": at(35_000), "step_id": "approval",
     "started_at": at(5000), "decision": {"outcome": "approved", "actor": "ana", "comment": "ok"}},
    {"type": "run.completed", "run_id": "repost", "time": at(40_000), "attributes": {"user.id": "u-9"}},
]  # fmt: skip

SECRET = "s3cr3t-Hunter2-value"
FIRST_POST: list[dict[str, Any]] = [
    *REPOST_RUN,
    # ends posted later (SECOND_POST) than their starts
    {"type": "run.started", "run_id": "ooo", "time": at(0), "workflow": "wf"},
    {"type": "step.started", "run_id": "ooo", "time": at(1000), "step_id": "a"},
    {"type": "step.started", "run_id": "ooo", "time": at(1000), "step_id": "b"},
    # a run that ends with no run.started ever: it lasts 0 (documented)
    {"type": "step.completed", "run_id": "no-start", "time": at(4000), "step_id": "a",
     "started_at": at(3000)},
    {"type": "run.completed", "run_id": "no-start", "time": at(5000), "workflow": "wf"},
    # runs in progress
    {"type": "run.started", "run_id": "running", "time": at(0), "workflow": "wf"},
    {"type": "step.completed", "run_id": "running", "time": at(2000), "step_id": "a", "started_at": at(1000)},
    {"type": "run.started", "run_id": "waiting", "time": at(0), "workflow": "wf"},
    {"type": "run.waiting_human", "run_id": "waiting", "time": at(1000)},
    # a credential in an attribute
    {"type": "step.completed", "run_id": "secret", "time": at(1000), "step_id": "connect",
     "attributes": {"db.password": SECRET, "db.system": "postgresql"}},
    {"type": "run.completed", "run_id": "secret", "time": at(2000), "workflow": "wf"},
    # attributes the event's own fields do not set
    {"type": "step.completed", "run_id": "attrs", "time": at(1000), "step_id": "ask",
     "usage": {"input_tokens": 10}, "attributes": {"gen_ai.request.model": "gpt-4o"}},
    {"type": "run.completed", "run_id": "attrs", "time": at(2000), "workflow": "wf",
     "attributes": {"deployment.environment.name": "staging"}},
    {"type": "run.started", "run_id": "canceled", "time": at(0), "workflow": "wf"},
    {"type": "run.canceled", "run_id": "canceled", "time": at(3000)},
    {"type": "run.started", "run_id": "crashed", "time": at(0), "workflow": "wf"},
    {"type": "run.failed", "run_id": "crashed", "time": at(3000),
     "error": {"type": "Boom", "message": "out of memory"}},
]  # fmt: skip
SECOND_POST: list[dict[str, Any]] = [
    {"type": "step.completed", "run_id": "ooo", "time": at(3000), "step_id": "a"},
    {"type": "step.completed", "run_id": "ooo", "time": at(4000), "step_id": "b", "started_at": at(2500)},
    {"type": "run.completed", "run_id": "ooo", "time": at(5000)},
]
# The same run id in another tenant: its events never find this tenant's starts
OTHER_POST: list[dict[str, Any]] = [
    {"type": "step.completed", "run_id": "ooo", "time": at(3000), "step_id": "a"},
    {"type": "run.completed", "run_id": "ooo", "time": at(6000), "workflow": "theirs"},
]

VALID = {"type": "run.started", "run_id": "mixed", "time": at(0), "workflow": "wf"}
MIXED: list[Any] = [  # (event, where the refusal points, words of the problem) or a valid event
    VALID,
    ({"type": "run.begun", "run_id": "mixed"}, "body.1.type", "'run.started'"),
    ({"type": "run.started", "time": at(0)}, "body.2.run_id", "required"),
    ({"type": "step.completed", "run_id": "mixed", "time": at(0)}, "body.3.step_id", "step_id or step_name"),
    ({**VALID, "time": "2026-12-02T10:00:00"}, "body.4.time", "no UTC offset"),
    ({**VALID, "time": "last tuesday"}, "body.5.time", "not an RFC 3339"),
    ({**VALID, "time": 1_796_205_600}, "body.6.time", "timestamp string"),
    ({**VALID, "stepname": "x"}, "body.7.stepname", "Extra"),
    ({**VALID, "attributes": {"wrm.run.id": "x"}}, "body.8.attributes.wrm.run.id", "wrm.* attributes"),
    {"type": "step.completed", "run_id": "mixed", "time": at(2000), "step_name": "only-a-name",
     "started_at": at(1000)},
    ("not an event", "body.10", "JSON object"),
    {"type": "run.completed", "run_id": "mixed", "time": at(3000)},
]  # fmt: skip


@dataclass
class Fed:
    server: WrmServer
    client: httpx.Client
    answers: dict[str, httpx.Response] = field(default_factory=dict)

    @property
    def warehouse(self) -> Warehouse:
        assert self.server.warehouse is not None
        return self.server.warehouse

    def post(self, name: str, body: Any, tenant: str = "default", **kwargs: Any) -> httpx.Response:
        resp = self.client.post("/v1/events", json=body, headers={"X-WRM-Tenant": tenant}, **kwargs)
        self.answers[name] = resp
        return resp

    def run(self, run_id: str, tenant: str = "default") -> dict[str, Any]:
        resp = self.client.get(f"/v1/runs/{run_id}", headers={"X-WRM-Tenant": tenant})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def steps(self, run_id: str, tenant: str = "default") -> dict[str, dict[str, Any]]:
        resp = self.client.get(
            f"/v1/runs/{run_id}/steps", params={"view": "flat"}, headers={"X-WRM-Tenant": tenant}
        )
        assert resp.status_code == 200, resp.text
        return {f"{s['name']}#{s['attempt']}": s for s in resp.json()["steps"]}

    def missing(self, run_id: str, tenant: str = "default") -> bool:
        """No run and no span with this run id."""
        status = self.client.get(f"/v1/runs/{run_id}", headers={"X-WRM-Tenant": tenant}).status_code
        [(spans,)] = self.warehouse.rows(
            "SELECT count() FROM spans FINAL WHERE trace_id = {t:String}", {"t": ids.trace_id(run_id).hex()}
        )
        return status == 404 and spans == 0


@pytest.fixture(scope="module")
def fed(engine_dir: Path) -> Iterator[Fed]:
    with (
        module_server(engine_dir) as server,
        httpx.Client(base_url=f"http://{server.http_address}", timeout=60) as client,
    ):
        f = Fed(server, client)
        with ThreadPoolExecutor(2) as pool:  # independent posts at once: one group commit, less waiting
            mixed = pool.submit(f.post, "mixed", [m if isinstance(m, dict) else m[0] for m in MIXED])
            assert f.post("first", FIRST_POST).status_code == 200, f.answers["first"].text
            # after `first` is stored: `second` ends what it started, `other` must not find its starts
            other = pool.submit(f.post, "other", OTHER_POST, tenant=OTHER)
            assert f.post("second", SECOND_POST).status_code == 200, f.answers["second"].text
            assert other.result().status_code == 200 and mixed.result().status_code == 422
        f.post("single", {"type": "run.started", "run_id": "single-bad", "time": "2026-12-02T10:00:00"})
        f.post("empty", [])
        f.post("too many", [{**VALID, "run_id": "too-many"}] * 1001)
        fits = json.dumps([{**VALID, "run_id": "too-big"}]).encode()
        f.answers["too big"] = client.post(
            "/v1/events", content=fits[:-1] + b" " * ((4 << 20) - len(fits) + 1) + b"]",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        f.answers["too big, chunked"] = client.post(
            "/v1/events",
            content=iter([fits[:-1], *[b" " * (1 << 16)] * 65, b"]"]),
            headers={"content-type": "application/json"},
        )
        f.answers["not json"] = client.post(
            "/v1/events",
            content=b'{"type": "run.started", "run_id": "not-json"',
            headers={"content-type": "application/json"},
        )
        f.post("a string", "run.started")
        f.post("bad tenant", {**VALID, "run_id": "bad-tenant"}, tenant="no such tenant!")
        settle(server)
        yield f


# ---------------------------------------------------------------- answers


def test_stored_events_are_answered_with_their_spans(fed: Fed) -> None:
    body = fed.answers["first"].json()
    assert (body["accepted"], body["rejected"], body["errors"], body["note"]) == (len(FIRST_POST), 0, [], "")
    assert [e["index"] for e in body["events"]] == list(range(len(FIRST_POST)))
    for event, placed in zip(FIRST_POST, body["events"], strict=True):
        assert placed["trace_id"] == ids.trace_id(event["run_id"]).hex()
    by_index = {e["index"]: e for e in body["events"]}
    assert by_index[0]["span_id"] == ids.run_started_id("repost").hex()
    assert by_index[9]["span_id"] == ids.run_span_id("repost").hex()
    assert fed.run("repost")["trace_id"] == ids.trace_id("repost").hex()  # the run, by the caller's id


def test_a_whole_run_posted_as_events(fed: Fed) -> None:
    run = fed.run("repost")
    assert (run["run_id"], run["workflow"], run["version"], run["environment"]) == (
        "repost",
        "wf",
        "v1",
        "production",
    )
    assert (run["status"], run["duration_ms"], run["retries"], run["first_pass"]) == (
        "completed",
        40_000,
        1,
        False,
    )
    assert (ms_of(run["start_time"]), ms_of(run["end_time"])) == (0, 40_000)
    assert (run["human_decisions"], run["human_wait_ms"], run["user_id"]) == (1, 30_000, "u-9")
    assert (run["input_tokens"], run["output_tokens"], run["validations_passed"]) == (200, 20, 1)
    steps = fed.steps("repost")
    assert sorted(steps) == ["approval#1", "check#1", "classify#1", "classify#2", "lookup#1"]
    assert (steps["classify#1"]["status"], steps["classify#1"]["last_error"]) == (
        "failed",
        "TimeoutError: model timed out",
    )
    assert steps["lookup#1"]["parent_step_id"] == steps["classify#2"]["step_id"]
    assert (steps["approval#1"]["human_decision"], steps["approval#1"]["human_actor"]) == ("approved", "ana")


# ---------------------------------------------------------------- refusals


def test_a_mixed_post_names_each_refused_field_and_stores_the_rest(fed: Fed) -> None:
    resp = fed.answers["mixed"]
    assert resp.status_code == 422 and resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    refused = [(i, m[1], m[2]) for i, m in enumerate(MIXED) if not isinstance(m, dict)]
    stored = [i for i, m in enumerate(MIXED) if isinstance(m, dict)]
    assert (body["type"], body["title"], body["status"]) == (
        "https://wrm.dev/problems/invalid-request",
        "Invalid request",
        422,
    )
    assert (body["accepted"], body["rejected"]) == (len(stored), len(refused))
    assert [e["index"] for e in body["events"]] == stored
    assert [e["index"] for e in body["errors"]] == [i for i, _, _ in refused]
    for error, (i, where, words) in zip(body["errors"], refused, strict=True):
        assert error["where"] == where and words in error["problem"], (i, error)
        assert where in body["detail"]
    assert f"{len(refused)} of {len(MIXED)} events refused" in body["detail"]
    # the valid events are stored: the run is there, with the step that had only a name
    run = fed.run("mixed")
    assert (run["status"], run["workflow"], run["duration_ms"], run["step_count"]) == (
        "completed",
        "wf",
        3000,
        1,
    )
    assert fed.steps("mixed")["only-a-name#1"]["duration_ms"] == 1000


def test_a_single_invalid_event_is_refused_and_nothing_is_stored(fed: Fed) -> None:
    resp = fed.answers["single"]
    assert resp.status_code == 422
    body = resp.json()
    assert (body["accepted"], body["rejected"], body["events"]) == (0, 1, [])
    assert [(e["index"], e["where"]) for e in body["errors"]] == [(0, "body.time")]
    assert "no UTC offset" in body["errors"][0]["problem"]
    assert fed.missing("single-bad")


def test_the_refusal_is_a_problem_document_like_the_others(fed: Fed) -> None:
    assert fed.answers["single"].json().get("instance") == "/v1/events"


@pytest.mark.parametrize(
    ("name", "status", "words", "run_id"),
    [
        ("empty", 400, "no events", ""),
        ("too many", 400, "1001 events in one post: at most 1000", "too-many"),
        ("too big", 413, "over 4194304 bytes (4 MiB)", "too-big"),
        ("too big, chunked", 413, "over 4194304 bytes (4 MiB)", "too-big"),
        ("not json", 422, "JSON", "not-json"),
        ("a string", 422, "body", ""),
        ("bad tenant", 400, "X-WRM-Tenant", "bad-tenant"),
    ],
)
def test_a_post_that_is_not_events_is_refused_whole(
    fed: Fed, name: str, status: int, words: str, run_id: str
) -> None:
    resp = fed.answers[name]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert words in resp.json()["detail"], resp.json()
    if run_id:
        assert fed.missing(run_id)


def test_a_body_of_exactly_4_mib_is_read(fed: Fed) -> None:
    """The limit is 4 MiB: a body of exactly that size is events, not 413 (its only event is
    invalid, so nothing is stored and no run needs assembling)."""
    event = json.dumps([{"type": "run.started", "run_id": "exact", "time": "no"}]).encode()
    body = event[:-1] + b" " * ((4 << 20) - len(event)) + b"]"
    assert len(body) == 4 << 20
    resp = fed.client.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.json()["errors"][0]["where"] == "body.0.time", resp.text


# ---------------------------------------------------------------- order of posts, starts


def test_an_end_posted_after_its_start_gets_that_start(fed: Fed) -> None:
    run = fed.run("ooo")
    assert (run["status"], ms_of(run["start_time"]), run["duration_ms"]) == ("completed", 0, 5000)
    steps = fed.steps("ooo")
    # `a` started in the first post and ended in the second
    assert (ms_of(steps["a#1"]["start_time"]), steps["a#1"]["duration_ms"]) == (1000, 2000)
    # `b` said when it started (started_at): that wins over its step.started
    assert (ms_of(steps["b#1"]["start_time"]), steps["b#1"]["duration_ms"]) == (2500, 1500)


def test_a_run_completed_without_run_started_lasts_nothing(fed: Fed) -> None:
    run = fed.run("no-start")
    assert (run["status"], run["duration_ms"], ms_of(run["start_time"]), ms_of(run["end_time"])) == (
        "completed", 0, 5000, 5000
    )  # fmt: skip
    assert fed.steps("no-start")["a#1"]["duration_ms"] == 1000


def test_another_tenant_with_the_same_run_id_has_a_run_of_its_own(fed: Fed) -> None:
    theirs = fed.run("ooo", tenant=OTHER)
    assert (theirs["workflow"], theirs["duration_ms"], theirs["step_count"]) == ("theirs", 0, 1)
    # this tenant's step.started markers gave no start to the other tenant's step.completed
    assert fed.steps("ooo", tenant=OTHER)["a#1"]["duration_ms"] == 0
    assert fed.run("ooo")["workflow"] == "wf"
    resp = fed.client.get("/v1/runs/repost", headers={"X-WRM-Tenant": OTHER})
    assert resp.status_code == 404


def test_runs_in_progress_and_how_runs_end(fed: Fed) -> None:
    running = fed.run("running")
    assert (running["status"], running["end_time"], running["step_count"]) == ("running", None, 1)
    waiting = fed.run("waiting")
    assert (waiting["status"], waiting["end_time"]) == ("waiting_human", None)
    assert [e["kind"] for e in waiting["timeline"]] == ["run.started", "human.waiting"]
    assert fed.run("canceled")["status"] == "canceled"
    crashed = fed.run("crashed")
    assert (crashed["status"], crashed["failure_kind"], crashed["failure_reason"]) == (
        "failed",
        "error",
        "Boom: out of memory",
    )


def test_attributes_the_event_fields_leave_unset_are_read(fed: Fed) -> None:
    assert fed.steps("attrs")["ask#1"]["model"] == "gpt-4o"
    assert fed.run("attrs")["environment"] == "staging"


# ---------------------------------------------------------------- redaction


def test_a_credential_in_an_event_is_stored_masked(fed: Fed) -> None:
    rows = fed.warehouse.rows(
        "SELECT attributes FROM spans FINAL WHERE tenant_id = 'default' AND trace_id = {t:String} "
        "AND name = 'connect'",
        {"t": ids.trace_id("secret").hex()},
    )
    assert len(rows) == 1
    [(attributes,)] = rows
    assert attributes["db.password"] == "[REDACTED:credential_key]"
    assert attributes["db.system"] == "postgresql"  # not a secret: kept
    [(found,)] = fed.warehouse.rows(
        "SELECT count() FROM spans WHERE position(toString(attributes), {s:String}) > 0", {"s": SECRET}
    )
    assert found == 0
    assert fed.run("secret")["redactions"] == {"credential_key": 1}
    assert fed.steps("secret")["connect#1"]["redactions"] == {"credential_key": 1}


# ---------------------------------------------------------------- re-posting (changes nothing)


def _state(fed: Fed) -> dict[str, Any]:
    wh = fed.warehouse
    counts = {
        view: wh.rows(f"SELECT count() FROM {view} WHERE tenant_id = 'default'")[0][0]
        for view in ("spans FINAL", "runs", "steps")
    }
    rows = wh.reader.query_df("SELECT * EXCEPT (last_span_at) FROM runs WHERE run_id = 'repost'")
    steps = wh.reader.query_df("SELECT * FROM steps WHERE run_id = 'repost' ORDER BY step_id")
    return {
        "detail": fed.run("repost"),
        "steps": fed.client.get("/v1/runs/repost/steps").json(),
        "counts": counts,
        "run row": json.loads(
            rows.to_json(orient="records", date_format="iso", date_unit="ns")
        ),  # NaN as null: comparable
        "step rows": json.loads(steps.to_json(orient="records", date_format="iso", date_unit="ns")),
    }


def test_reposting_a_run_in_another_order_and_batching_changes_nothing(fed: Fed) -> None:
    """Last in the module: it posts again (into the same tenant as the tests above).
    `last_span_at` (when the newest span was stored) is left out: a re-post stores again."""
    before = _state(fed)
    assert before["counts"]["spans FINAL"] > len(FIRST_POST)  # the other tenants' are not counted
    reordered = REPOST_RUN[::-1]  # every end before its start: in an earlier post, or earlier in the post
    assert fed.post("again, ends", reordered[:5]).status_code == 200
    assert fed.post("again, starts", [*reordered[5:], *SECOND_POST, *FIRST_POST[10:13]]).status_code == 200
    settle(fed.server)
    after = _state(fed)
    for part in before:
        assert after[part] == before[part], part


# ---------------------------------------------------------------- auth required: whose events


@dataclass
class Keyed:
    server: WrmServer
    url: str
    keys: dict[str, str]  # "tenant role" -> key
    answers: dict[str, httpx.Response] = field(default_factory=dict)

    def call(self, method: str, path: str, who: str, body: Any = None, **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.request(method, f"{self.url}{path}", json=body, headers={**auth, **headers}, timeout=60)


def _run(run_id: str, workflow: str, end_ms: int) -> list[dict[str, Any]]:
    return [
        {"type": "run.started", "run_id": run_id, "time": at(0), "workflow": workflow},
        {"type": "run.completed", "run_id": run_id, "time": at(end_ms)},
    ]


@pytest.fixture(scope="module")
def keyed(engine_dir: Path) -> Iterator[Keyed]:
    with module_server(engine_dir, auth="required") as server:
        keys = {
            f"{tenant} {role}": server.create_key(tenant, role, f"{tenant}-{role}")
            for tenant in ("acme", "globex")
            for role in ("ingest", "viewer", "admin")
        }
        k = Keyed(server, f"http://{server.http_address}", keys)
        acme = _run("shared-id", "acme-flow", 1000) + _run("acme-only", "acme-flow", 1000)
        posts = {
            "acme": ("acme ingest", acme, {}),
            "globex": ("globex ingest", _run("shared-id", "globex-flow", 3000), {}),
            "globex admin": ("globex admin", _run("by-admin", "globex-flow", 2000), {}),
            "viewer": ("acme viewer", _run("by-viewer", "x", 1000), {}),
            "no key": ("", _run("by-nobody", "x", 1000), {}),
            "bad key": ("", _run("by-bad-key", "x", 1000), {"Authorization": "Bearer not-a-key"}),
            "other tenant": ("acme ingest", _run("by-acme-4-globex", "x", 1000), {"X-WRM-Tenant": "globex"}),
        }  # fmt: skip
        with ThreadPoolExecutor(4) as pool:  # independent posts at once: one group commit, less waiting
            calls = {
                n: pool.submit(k.call, "POST", "/v1/events", w, b, **h) for n, (w, b, h) in posts.items()
            }
            k.answers.update({name: call.result() for name, call in calls.items()})
        settle(server)
        yield k


def test_an_ingest_key_stores_into_its_own_tenant_only(keyed: Keyed) -> None:
    for name in ("acme", "globex", "globex admin"):
        assert keyed.answers[name].status_code == 200, keyed.answers[name].text
    acme = keyed.call("GET", "/v1/runs/shared-id", "acme viewer")
    globex = keyed.call("GET", "/v1/runs/shared-id", "globex viewer")
    assert acme.status_code == globex.status_code == 200
    # one run id, two tenants, two runs
    assert (acme.json()["workflow"], acme.json()["duration_ms"]) == ("acme-flow", 1000)
    assert (globex.json()["workflow"], globex.json()["duration_ms"]) == ("globex-flow", 3000)
    assert keyed.call("GET", "/v1/runs/acme-only", "acme viewer").status_code == 200
    assert keyed.call("GET", "/v1/runs/acme-only", "globex viewer").status_code == 404
    assert keyed.call("GET", "/v1/runs/by-admin", "globex viewer").status_code == 200
    assert keyed.call("GET", "/v1/runs/by-admin", "acme viewer").status_code == 404
    assert keyed.server.warehouse is not None
    rows = keyed.server.warehouse.rows(
        "SELECT attributes['wrm.run.id'], groupUniqArray(tenant_id) FROM spans FINAL GROUP BY 1 ORDER BY 1"
    )
    assert {run: sorted(tenants) for run, tenants in rows} == {
        "acme-only": ["acme"], "by-admin": ["globex"], "shared-id": ["acme", "globex"]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "status", "words", "run_id"),
    [
        ("viewer", 403, "role", "by-viewer"),
        ("no key", 401, "key", "by-nobody"),
        ("bad key", 401, "key", "by-bad-key"),
        ("other tenant", 403, "another tenant", "by-acme-4-globex"),
    ],
)
def test_who_may_not_post_events(keyed: Keyed, name: str, status: int, words: str, run_id: str) -> None:
    """Refused whole: no span of the run in any tenant."""
    resp = keyed.answers[name]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert words in resp.json()["detail"], resp.json()
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert keyed.server.warehouse is not None
    [(spans,)] = keyed.server.warehouse.rows(
        "SELECT count() FROM spans FINAL WHERE trace_id = {t:String}", {"t": ids.trace_id(run_id).hex()}
    )
    assert spans == 0


def test_an_ingest_key_does_not_read_runs(keyed: Keyed) -> None:
    """Senders send: reading a run takes a viewer (or higher) key."""
    assert keyed.call("GET", "/v1/runs/acme-only", "acme ingest").status_code == 403
