"""Lifecycle webhooks end to end: the OTel SDK sends a run, the assembly derives its transitions
into the outbox, and the dispatcher delivers them, signed, to a real HTTP endpoint that checks
every signature with the standardwebhooks library."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from tests.conftest import module_server, settle
from tests.indicator_data import start_running_run
from tests.otlp import CheckedExporter, flush, sdk_provider
from tests.webhook_receiver import Receiver
from wrm.server import WrmServer

FAST = {
    "webhooks_allow_private": True,
    "webhooks_first_retry_s": 0.2,
    "webhooks_poll_ms": 50,
    "assemble_interval_ms": 100,
}


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    with module_server(engine_dir, **FAST) as srv:
        yield srv


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def api(server: WrmServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{server.http_address}", timeout=30) as client:
        yield client


def subscribe(api: httpx.Client, url: str, **body: Any) -> dict[str, Any]:
    resp = api.post("/v1/webhooks", json={"url": url, **body})
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    assert created["secret"].startswith("whsec_")
    return created


def ns(base: int, seconds: float) -> int:
    return base + int(seconds * 1e9)


def test_a_run_emits_each_transition_once_in_order_signed(
    server: WrmServer, receiver: Receiver, api: httpx.Client
) -> None:
    hook = subscribe(api, receiver.url("/seq"), events=["run.*", "step.*"], workflow="order-flow")
    memory = InMemorySpanExporter()
    # the workflow on the resource: every span names it, so the filter matches from the first
    resource = {"deployment.environment.name": "prod", "wrm.workflow.name": "order-flow"}
    provider = sdk_provider(server.otlp_address, **resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    base = time.time_ns() - 60 * 10**9
    root = tracer.start_span("order-flow", start_time=base)
    parent = set_span_in_context(root)

    def step(
        name: str, start: float, end: float, attrs: dict[str, Any], status: StatusCode = StatusCode.OK
    ) -> None:
        s = tracer.start_span(name, context=parent, start_time=ns(base, start), attributes=attrs)
        if status is StatusCode.ERROR:
            s.record_exception(ValueError("upstream timed out"), timestamp=ns(base, end))
        s.set_status(Status(status))
        s.end(end_time=ns(base, end))

    step("extract", 1, 2, {"wrm.step.name": "extract", "wrm.step.attempt": 1}, StatusCode.ERROR)
    step("extract", 3, 4, {"wrm.step.name": "extract", "wrm.step.attempt": 2})
    flush(provider)
    settle(server)
    step("approval requested", 5, 5.01, {"wrm.hitl.state": "requested"})
    flush(provider)
    settle(server)
    step(
        "approval",
        5,
        9,
        {"wrm.step.type": "human", "wrm.hitl.decision": "approved", "wrm.hitl.actor": "alice"},
    )
    root.end(end_time=ns(base, 10))
    flush(provider)
    settle(server)

    expected = ["run.started", "step.failed", "step.completed", "run.waiting_human", "step.completed",
                "run.completed"]  # fmt: skip
    receiver.wait_for(lambda: len(receiver.on("/seq")) >= len(expected))
    got = receiver.on("/seq")
    payloads = [r.verify(hook["secret"]) for r in got]
    assert [p["type"] for p in payloads] == expected
    run_id = format(root.get_span_context().trace_id, "032x")
    assert {p["data"]["run_id"] for p in payloads} == {run_id}
    assert payloads[0]["data"]["status"] == "running" and payloads[0]["data"]["end_time"] is None
    assert payloads[1]["data"]["last_error"] == "ValueError: upstream timed out"
    assert payloads[1]["data"]["attempt"] == 1 and payloads[2]["data"]["attempt"] == 2
    assert payloads[3]["data"]["status"] == "waiting_human"
    assert (
        payloads[4]["data"]["human_decision"] == "approved" and payloads[4]["data"]["human_actor"] == "alice"
    )
    done = payloads[5]["data"]
    assert (done["status"], done["workflow"], done["environment"], done["retries"]) == (
        "completed",
        "order-flow",
        "prod",
        1,
    )
    assert len({r.msg_id for r in got}) == len(expected)  # each a message of its own
    assert all(r.headers["webhook-id"].startswith("msg_") for r in got)

    # every span again, through the SDK exporter: re-delivery changes nothing, sends nothing
    spans: Sequence[ReadableSpan] = memory.get_finished_spans()
    exporter = CheckedExporter(server.otlp_address)
    assert exporter.export(spans).name == "SUCCESS"
    settle(server)
    time.sleep(1.0)  # more than 10 dispatcher polls
    assert len(receiver.on("/seq")) == len(expected)
    provider.shutdown()


def test_a_retried_message_keeps_its_id_and_the_log_shows_both_attempts(
    server: WrmServer, receiver: Receiver, api: httpx.Client
) -> None:
    receiver.script["/flaky"] = [503]
    hook = subscribe(api, receiver.url("/flaky"), events=["action.requested"])
    sent = api.post(f"/v1/webhooks/{hook['webhook_id']}/test")
    assert sent.status_code == 202, sent.text
    message = sent.json()["message_id"]
    receiver.wait_for(lambda: len(receiver.on("/flaky")) >= 2)
    first, second = receiver.on("/flaky")[:2]
    assert (first.status, second.status) == (503, 200)
    assert first.msg_id == second.msg_id == message
    assert second.verify(hook["secret"])["type"] == "webhook.test"

    def log() -> list[dict[str, Any]]:
        page = api.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries").json()
        return list(page["deliveries"])

    receiver.wait_for(lambda: len(log()) >= 2)
    newest, oldest = log()[:2]
    assert (oldest["attempt"], oldest["outcome"], oldest["http_status"]) == (1, "retrying", 503)
    assert oldest["next_attempt_at"] is not None and "answered 503" in oldest["response_excerpt"]
    assert (newest["attempt"], newest["outcome"], newest["http_status"]) == (2, "delivered", 200)

    # a manual retry sends the same message again
    retried = api.post(f"/v1/webhooks/{hook['webhook_id']}/deliveries/{message}/retry")
    assert retried.status_code == 202, retried.text
    receiver.wait_for(lambda: len(receiver.on("/flaky")) >= 3)
    assert receiver.on("/flaky")[2].msg_id == message
    assert api.post(f"/v1/webhooks/{hook['webhook_id']}/deliveries/msg_nope/retry").status_code == 404


def test_410_disables_the_subscription(server: WrmServer, receiver: Receiver, api: httpx.Client) -> None:
    receiver.script["/gone"] = [410]
    hook = subscribe(api, receiver.url("/gone"))
    api.post(f"/v1/webhooks/{hook['webhook_id']}/test")

    def state() -> dict[str, Any]:
        got: dict[str, Any] = api.get(f"/v1/webhooks/{hook['webhook_id']}").json()
        return got

    receiver.wait_for(lambda: not state()["enabled"])
    assert "410" in state()["disabled_reason"]
    api.post(f"/v1/webhooks/{hook['webhook_id']}/test")
    time.sleep(0.5)
    assert [r.status for r in receiver.on("/gone")] == [410]
    log = api.get(f"/v1/webhooks/{hook['webhook_id']}/deliveries").json()["deliveries"]
    assert [d["outcome"] for d in log] == ["disabled"]


def test_a_rotated_secret_signs_with_both_for_a_day(
    server: WrmServer, receiver: Receiver, api: httpx.Client
) -> None:
    hook = subscribe(api, receiver.url("/rotate"), events=["alert.firing"])
    rotated = api.post(f"/v1/webhooks/{hook['webhook_id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != hook["secret"]
    api.post(f"/v1/webhooks/{hook['webhook_id']}/test")
    receiver.wait_for(lambda: len(receiver.on("/rotate")) >= 1)
    got = receiver.on("/rotate")[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verify(new) == got.verify(hook["secret"])
    listed = api.get("/v1/webhooks").json()["webhooks"]
    assert all("secret" not in w for w in listed)


def test_subscriptions_are_checked_and_kept_to_their_tenant(server: WrmServer, api: httpx.Client) -> None:
    for body, where in [
        ({"url": "ftp://example.com/x"}, "http"),
        ({"url": "http://example.com/x", "events": ["run.exploded"]}, "run.exploded"),
        ({"url": "http://example.com/x", "statuses": ["sideways"]}, "sideways"),
        ({"url": "http://example.com/x", "color": "red"}, "color"),
    ]:
        resp = api.post("/v1/webhooks", json=body)
        assert resp.status_code == 422 and where in resp.text, resp.text
    hook = subscribe(api, "http://127.0.0.1:9/other", description="tenant a")
    other = {"X-WRM-Tenant": "someone-else"}
    assert api.get(f"/v1/webhooks/{hook['webhook_id']}", headers=other).status_code == 404
    assert api.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=other).status_code == 404
    assert hook["webhook_id"] not in str(api.get("/v1/webhooks", headers=other).json())
    assert api.delete(f"/v1/webhooks/{hook['webhook_id']}").status_code == 204
    assert api.get(f"/v1/webhooks/{hook['webhook_id']}").status_code == 404


def test_a_cancel_is_handed_to_the_engine_as_action_requested_once(
    server: WrmServer, receiver: Receiver, api: httpx.Client
) -> None:
    hook = subscribe(api, receiver.url("/actions"), events=["action.requested"])
    start_running_run(server.otlp_address, "hook-live")
    settle(server)
    run_id = format(int.from_bytes(b"hook-live".ljust(16, b"x")[:16]), "032x")
    answers = [  # the same Idempotency-Key twice: one action, one event
        api.post(
            f"/v1/runs/{run_id}/cancel", json={"reason": "customer asked"}, headers={"Idempotency-Key": "k1"}
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 200], answers[1].text
    resp = answers[1]
    receiver.wait_for(lambda: len(receiver.on("/actions")) >= 1)
    time.sleep(0.5)
    [got] = receiver.on("/actions")
    event = got.verify(hook["secret"])
    assert event["type"] == "action.requested"
    data = event["data"]
    assert (data["kind"], data["run_id"], data["state"], data["reason"]) == (
        "cancel",
        run_id,
        "pending",
        "customer asked",
    )
    assert (data["workflow"], data["environment"], data["action_id"]) == (
        "live",
        "production",
        resp.json()["action_id"],
    )


def test_an_alert_transition_is_delivered_as_a_webhook(
    server: WrmServer, receiver: Receiver, api: httpx.Client
) -> None:
    hook = subscribe(api, receiver.url("/alerts"), events=["alert.*"])
    rule = api.post("/v1/alerts", json={"name": "silent flow", "metric": "no_runs", "workflow": "never-ran"})
    assert rule.status_code == 201, rule.text
    evaluated = api.post(f"/v1/alerts/{rule.json()['rule_id']}/evaluate")
    assert evaluated.status_code == 200, evaluated.text
    receiver.wait_for(lambda: len(receiver.on("/alerts")) >= 1)
    event = receiver.on("/alerts")[0].verify(hook["secret"])
    assert event["type"] == "alert.firing"
    assert (event["data"]["rule_id"], event["data"]["metric"], event["data"]["value"]) == (
        rule.json()["rule_id"],
        "no_runs",
        0,
    )
