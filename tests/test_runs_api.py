"""/v1 runs API against a running server fed by the OpenTelemetry SDK exporter: lists with
every filter and cursor paging, run detail with its timeline, steps, actions, annotations, tags
and problem responses."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.conftest import settle, start_server
from tests.indicator_data import VersionPlan, plan, send, start_running_run
from tests.otlp import flush, sdk_provider
from warehouse import Warehouse
from wrm.cli import main
from wrm.server import WrmServer

RUNS = plan(
    [
        VersionPlan("v1", range(4, 2, -1), 12, 6, 4, 10, (100, 10), 4, 0.6),
        VersionPlan("v2", range(2, 0, -1), 12, 9, 2, 6, (90, 9), 3, 0.8),
    ]
)  # 48 runs: per day 12, of which first-pass, retried, failed as planned


@pytest.fixture(scope="module")
def api(engine_dir: Path) -> Iterator[tuple[WrmServer, httpx.Client]]:
    """One server for the module (feeding it is the slow part); the action test, which changes
    state, runs after the read-only ones."""
    warehouse = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    server = start_server(warehouse)
    send(server.otlp_address, RUNS, "triage")
    start_running_run(server.otlp_address, "live-1")
    settle(server)
    with httpx.Client(base_url=f"http://{server.http_address}", timeout=30) as client:
        yield server, client
    server.stop()
    warehouse.command(f"DROP DATABASE IF EXISTS `{warehouse.database}` SYNC")
    warehouse.close()


def _all(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        resp = client.get("/v1/runs", params={**params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        runs += body["runs"]
        cursor = body["next_cursor"]
        if cursor is None:
            return runs


def _expected(pred: Any) -> int:
    return sum(1 for r in RUNS if pred(r))


def test_list_pages_filters_and_sorts(api: tuple[WrmServer, httpx.Client]) -> None:
    _, client = api
    first = client.get("/v1/runs", params={"limit": 5}).json()
    assert len(first["runs"]) == 5 and first["next_cursor"]
    assert first["runs"][0]["workflow"] == "live"  # the newest run
    every = _all(client, limit=7, workflow="triage")
    assert len(every) == 48 and len({r["run_id"] for r in every}) == 48
    starts = [r["start_time"] for r in every]
    assert starts == sorted(starts, reverse=True)
    longest = _all(client, limit=10, workflow="triage", sort="duration")
    durations = [r["duration_ms"] for r in longest]
    assert durations == sorted(durations, reverse=True) and len(longest) == 48
    assert durations[0] == max(r.duration_ns for r in RUNS) / 1e6

    def count(**params: Any) -> int:
        return len(_all(client, limit=500, workflow="triage", **params))

    assert count(version="v2") == 24
    assert count(status=["failed"]) == _expected(lambda r: r.outcome == "failed")
    assert count(status=["failed", "completed"]) == 48
    assert count(status=["running"]) == 0 and len(_all(client, status=["running"])) == 1
    assert count(has_human_decisions=True) == _expected(lambda r: r.human_wait_s > 0)
    assert count(min_duration_ms=10_000) == _expected(lambda r: r.duration_ns >= 10_000 * 10**6)
    assert count(failure_text="Model TIMED out") == _expected(lambda r: r.outcome == "failed")
    oldest = every[-1]["start_time"]
    assert count(since=oldest) == 48 and count(until=oldest) == 0
    run = every[0]
    assert run["input_tokens"] > 0 and run["output_tokens"] > 0 and run["cost_usd"] > 0
    assert set(run) >= {
        "status",
        "version",
        "environment",
        "start_time",
        "end_time",
        "duration_ms",
        "step_count",
        "retries",
        "first_pass",
        "tags",
    }


def test_detail_timeline_and_steps(api: tuple[WrmServer, httpx.Client]) -> None:
    _, client = api
    failed = _all(client, workflow="triage", status=["failed"])[0]
    detail = client.get(f"/v1/runs/{failed['run_id']}").json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "run.started" and kinds[-1] == "run.failed" and kinds.count("step.failed") == 1
    step_failed = next(e for e in detail["timeline"] if e["kind"] == "step.failed")
    assert step_failed["name"] == "classify" and "model timed out" in step_failed["detail"]
    assert "model timed out" in detail["failure_reason"]
    assert detail["lineage"] == {"rerun_of": "", "reruns": []}

    human = _all(client, workflow="triage", has_human_decisions=True)[0]
    timeline = client.get(f"/v1/runs/{human['run_id']}").json()["timeline"]
    decided = next(e for e in timeline if e["kind"] == "human.decided")
    assert (decided["actor"], decided["detail"], decided["wait_ms"]) == ("ana", "approved", 60_000)

    completed = _all(client, workflow="triage", status=["completed"], limit=500)
    retried = next(r for r in completed if r["retries"] == 1)
    kinds = [e["kind"] for e in client.get(f"/v1/runs/{retried['run_id']}").json()["timeline"]]
    assert "step.retried" in kinds and kinds[-1] == "run.completed"

    tree = client.get(f"/v1/runs/{retried['run_id']}/steps").json()
    names = sorted(s["name"] for s in tree["steps"])
    assert names[:3] == ["check", "classify", "classify"]
    classify = [s for s in tree["steps"] if s["name"] == "classify"]
    assert sorted(s["attempt"] for s in classify) == [1, 2]
    assert [s["last_error"] for s in sorted(classify, key=lambda s: s["attempt"])] == ["model timed out", ""]
    tokens, quality = (100, 0.6) if retried["version"] == "v1" else (90, 0.8)
    assert all(s["input_tokens"] == tokens and s["model"] == "test-model" for s in classify)
    check = next(s for s in tree["steps"] if s["name"] == "check")
    assert check["validation_passed"] is True and check["quality_score"] == quality
    flat = client.get(f"/v1/runs/{retried['run_id']}/steps", params={"view": "flat"}).json()
    assert flat["view"] == "flat" and len(flat["steps"]) == len(tree["steps"])


PROBLEMS = {  # spec 7.10: status -> (slug, title)
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    422: ("invalid-request", "Invalid request"),
}


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status", "words"),
    [
        ("get", "/v1/runs/nope", {}, None, 404, "no run 'nope'"),
        ("get", "/v1/runs/nope/steps", {}, None, 404, "no run 'nope'"),
        ("get", "/v1/runs", {"cursor": "garbage!"}, None, 400, "not a cursor"),
        ("get", "/v1/runs", {"status": "exploded"}, None, 400, "unknown status 'exploded'"),
        ("get", "/v1/runs", {"limit": 501}, None, 422, "limit"),
        ("get", "/v1/runs", {"since": "yesterday"}, None, 422, "since"),
        (
            "get",
            "/v1/runs",
            {"since": "2026-02-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            None,
            400,
            "until",
        ),
        ("post", "/v1/actions/nope/ack", {}, {"outcome": "done"}, 404, "no action 'nope'"),
        ("post", "/v1/actions/nope/ack", {}, {"outcome": "maybe"}, 422, "outcome"),
    ],
)
def test_problems(
    api: tuple[WrmServer, httpx.Client],
    method: str,
    path: str,
    params: dict[str, Any],
    body: Any,
    status: int,
    words: str,
) -> None:
    _, client = api
    resp = client.request(method.upper(), path, params=params, json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["status"] == status and words in problem["detail"] and problem["instance"] == path
    slug, title = PROBLEMS[status]
    assert (problem["type"], problem["title"]) == (f"https://wrm.dev/problems/{slug}", title)
    if status == 422:  # one entry per field, and the detail names the same field first
        errors = problem["errors"]
        assert errors and all(set(e) == {"where", "problem"} and e["problem"] for e in errors), errors
        assert any(words in e["where"] for e in errors), errors
        assert problem["detail"].startswith(f"{errors[0]['where']}: {errors[0]['problem']}")
    else:
        assert "errors" not in problem


def test_times_are_utc_and_unknown_paths_are_problems(api: tuple[WrmServer, httpx.Client]) -> None:
    _, client = api
    run = _all(client, limit=1, workflow="triage")[0]
    assert run["start_time"].endswith("Z")
    detail = client.get(f"/v1/runs/{run['run_id']}").json()
    assert all(e["at"].endswith("Z") for e in detail["timeline"])
    naive = run["start_time"].removesuffix("Z")
    assert _all(client, workflow="triage", since=naive)[-1]["run_id"] == run["run_id"]
    assert (
        _all(client, workflow="triage", since=naive.replace("T", " ") + "+00:00")[-1]["run_id"]
        == run["run_id"]
    )
    for method, path, status in (("GET", "/v1/nothing", 404), ("DELETE", "/v1/runs", 405)):
        resp = client.request(method, path)
        assert resp.status_code == status and resp.headers["content-type"] == "application/problem+json"
        slug, title = PROBLEMS[status]
        assert resp.json()["type"] == f"https://wrm.dev/problems/{slug}" and resp.json()["title"] == title


def test_openapi_is_served(api: tuple[WrmServer, httpx.Client]) -> None:
    _, client = api
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/steps", "/v1/runs/export", "/v1/actions",
            "/v1/actions/{action_id}/ack", "/v1/runs/{run_id}/rerun", "/v1/runs/{run_id}/cancel",
            "/v1/runs/{run_id}/annotations", "/v1/runs/{run_id}/tags"} <= set(paths)  # fmt: skip


def test_tenants_do_not_see_each_other(api: tuple[WrmServer, httpx.Client]) -> None:
    _, client = api
    assert client.get("/v1/runs", headers={"X-WRM-Tenant": "other"}).json()["runs"] == []
    some = _all(client, limit=1)[0]
    assert client.get(f"/v1/runs/{some['run_id']}", headers={"X-WRM-Tenant": "other"}).status_code == 404
    assert client.get("/v1/runs", headers={"X-WRM-Tenant": "no such!"}).status_code == 400


def test_export_round_trips(api: tuple[WrmServer, httpx.Client]) -> None:
    _, client = api
    listed = pd.DataFrame(_all(client, limit=500, workflow="triage"))
    resp = client.get("/v1/runs/export", params={"format": "parquet", "workflow": "triage"})
    assert resp.status_code == 200 and resp.headers["x-wrm-run-count"] == "48"
    assert resp.headers["content-disposition"] == 'attachment; filename="runs.parquet"'
    exported = pd.read_parquet(io.BytesIO(resp.content))
    assert list(exported.columns) == list(listed.columns)
    for col in ("start_time", "end_time"):
        listed[col] = pd.to_datetime(listed[col], utc=True)
        exported[col] = pd.to_datetime(exported[col], utc=True)
    exported["tags"] = exported["tags"].map(list)
    pd.testing.assert_frame_equal(exported, listed, check_dtype=False)

    jsonl = client.get("/v1/runs/export", params={"format": "jsonl", "workflow": "triage", "steps": "true"})
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["run_id"] for r in records] == listed["run_id"].tolist()
    assert all(len(r["steps"]) >= 2 for r in records)
    csv_text = client.get("/v1/runs/export", params={"format": "csv", "version": "v1"}).text
    frame = pd.read_csv(io.StringIO(csv_text))
    assert len(frame) == 24 and set(frame["version"]) == {"v1"}
    with_steps = pd.read_parquet(
        io.BytesIO(client.get("/v1/runs/export", params={"format": "parquet", "steps": "true"}).content)
    )
    assert with_steps["steps"].map(len).sum() == sum(r["step_count"] for r in _all(client, limit=500))
    empty = client.get("/v1/runs/export", params={"format": "csv", "workflow": "nope"})
    assert empty.text.splitlines() == [",".join(listed.columns)]
    bad = client.get("/v1/runs/export", params={"format": "xlsx"})
    assert bad.status_code == 422 and "format" in bad.json()["detail"]
    assert client.get("/v1/runs/export", params={"status": "odd"}).status_code == 400


def test_export_command(api: tuple[WrmServer, httpx.Client], tmp_path: Path, engine_dir: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    server, client = api
    listed = [r["run_id"] for r in _all(client, limit=500, workflow="triage", status=["failed"])]
    out = tmp_path / "failed.parquet"
    db = ["--database", server.settings.database]
    common = ["export", "--format", "parquet", "--workflow", "triage", "--status", "failed", *db]
    assert main([*common, "--out", str(out), "--http", server.http_address]) == 0
    assert "via the running server" in capsys.readouterr().err
    assert pd.read_parquet(out)["run_id"].tolist() == listed
    direct = tmp_path / "direct.jsonl"
    where = ["--http", "127.0.0.1:9", "--warehouse", f"chdb://{engine_dir}"]
    assert main([*common[:2], "jsonl", *common[3:], "--steps", "--out", str(direct), *where]) == 0
    err = capsys.readouterr().err
    assert "opened chdb://" in err and f"{len(listed)} runs" in err
    assert [json.loads(line)["run_id"] for line in direct.read_text().splitlines()] == listed
    assert main(["export", "--status", "failed", "--since", "2026-02-02", "--until", "2026-01-01", *db,
                 "--http", server.http_address, "--out", str(tmp_path / "x.csv")]) == 2  # fmt: skip
    assert "until" in capsys.readouterr().err


def test_actions_annotations_and_tags(api: tuple[WrmServer, httpx.Client]) -> None:
    server, client = api
    live = _all(client, workflow="live")[0]
    done = _all(client, workflow="triage", status=["completed"], limit=1)[0]

    # re-run: idempotent by key
    key = {"Idempotency-Key": "k-1", "X-WRM-Actor": "ops@example.com"}
    first = client.post(
        f"/v1/runs/{done['run_id']}/rerun", json={"context": {"model": "b"}, "reason": "flaky"}, headers=key
    )
    again = client.post(
        f"/v1/runs/{done['run_id']}/rerun", json={"context": {"model": "b"}, "reason": "flaky"}, headers=key
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["action_id"] == again.json()["action_id"]
    assert first.json()["requested_by"] == "ops@example.com" and first.json()["context"] == {"model": "b"}
    clash = client.post(f"/v1/runs/{live['run_id']}/rerun", json={}, headers=key)
    assert clash.status_code == 409 and clash.headers["content-type"] == "application/problem+json"
    assert (clash.json()["type"], clash.json()["title"]) == ("https://wrm.dev/problems/conflict", "Conflict")

    # cancel → cancel_requested → ack → canceled; a finished run cannot be canceled
    cancel = client.post(f"/v1/runs/{live['run_id']}/cancel", json={"reason": "stuck"})
    assert cancel.status_code == 201
    assert client.get(f"/v1/runs/{live['run_id']}").json()["status"] == "cancel_requested"
    assert [r["run_id"] for r in _all(client, status=["cancel_requested"])] == [live["run_id"]]
    assert client.post(f"/v1/runs/{live['run_id']}/cancel", json={}).status_code == 200  # the pending one
    assert client.post(f"/v1/runs/{done['run_id']}/cancel", json={}).status_code == 409
    pending = client.get("/v1/actions", params={"state": "pending"}).json()
    assert {a["kind"] for a in pending} == {"rerun", "cancel"} and len(pending) == 2
    acked = client.post(f"/v1/actions/{cancel.json()['action_id']}/ack", json={"outcome": "done"})
    assert acked.status_code == 200 and acked.json()["state"] == "done"
    live_detail = client.get(f"/v1/runs/{live['run_id']}").json()
    assert live_detail["status"] == "canceled"
    assert [e["kind"] for e in live_detail["timeline"]][-3:] == [
        "action.requested",
        "action.acknowledged",
        "run.canceled",
    ]
    relabel = client.post(f"/v1/actions/{cancel.json()['action_id']}/ack", json={"outcome": "failed"})
    assert relabel.status_code == 409
    assert client.post(f"/v1/runs/{live['run_id']}/cancel", json={}).status_code == 409  # already canceled

    # a re-run linked both ways by the ack
    other = _all(client, workflow="triage", status=["failed"], limit=1)[0]
    ack = client.post(
        f"/v1/actions/{first.json()['action_id']}/ack",
        json={"outcome": "done", "new_run_id": other["run_id"]},
    )
    assert ack.status_code == 200
    assert client.get(f"/v1/runs/{done['run_id']}").json()["lineage"]["reruns"] == [other["run_id"]]
    assert client.get(f"/v1/runs/{other['run_id']}").json()["lineage"]["rerun_of"] == done["run_id"]

    # a run whose spans say it re-runs another is linked both ways too
    provider = sdk_provider(server.otlp_address, service="triage-svc")
    attrs = {"wrm.workflow.name": "triage", "wrm.rerun.of": done["run_id"]}
    root = provider.get_tracer("t").start_span("triage", attributes=attrs)
    root.end()
    assert flush(provider) == 1
    provider.shutdown()
    settle(server)
    by_span = format(root.get_span_context().trace_id, "032x")
    assert client.get(f"/v1/runs/{by_span}").json()["lineage"]["rerun_of"] == done["run_id"]
    assert client.get(f"/v1/runs/{done['run_id']}").json()["lineage"]["reruns"] == sorted(
        [other["run_id"], by_span]
    )

    # annotations and tags show in detail and filter lists
    note = client.post(
        f"/v1/runs/{done['run_id']}/annotations",
        json={"text": "wrong label", "label": "bad", "score": 0.2, "author": "ana"},
    )
    assert note.status_code == 201
    tags = client.post(f"/v1/runs/{done['run_id']}/tags", json={"add": ["golden", "q3"], "remove": []}).json()
    assert tags["tags"] == ["golden", "q3"]
    assert client.post(f"/v1/runs/{done['run_id']}/tags", json={"remove": ["q3"]}).json()["tags"] == [
        "golden"
    ]
    detail = client.get(f"/v1/runs/{done['run_id']}").json()
    assert detail["tags"] == ["golden"] and detail["annotations"][0]["text"] == "wrong label"
    assert "annotation" in [e["kind"] for e in detail["timeline"]]
    assert [r["run_id"] for r in _all(client, tag="golden")] == [done["run_id"]]
    assert _all(client, tag="q3") == []
