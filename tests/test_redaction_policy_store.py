"""Stored redaction policies that cannot be applied (issue 13, review): a row of
`redaction_policies` that is not a policy (written by another version, or by hand), or a policy
that no longer compiles with the global one, refuses its tenant's spans (UNAVAILABLE, so
exporters retry) and its POST /v1/redact calls (503) instead of storing under a weaker policy;
other tenants go on; an admin setting a valid policy lifts it. At start-up, policies that cannot
be read at all stop the server rather than let it run without them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redaction import Policy, PolicyBook, PolicyError
from redaction.redactor import Rules
from tests.conftest import drop_database, start_server
from tests.otlp import make_span, send_raw
from warehouse import Warehouse, migrate
from wrm.server import WrmServer

ADMIN_KEY = "platform-admin-" + "p" * 40
SECRET = b"0123456789abcdef0123456789abcdef"
AWS = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane.doe@example.com"
# Each tenant's stored row, and why it cannot be applied.
BROKEN = {
    "acme": "{not json",  # not JSON
    "globex": '{"detectors": {"ssn": "mask"}}',  # JSON, not a policy (no detector `ssn`)
    "initech": json.dumps(  # a policy, whose rules RE2 cannot compile together
        {"rules": [{"name": "letters", "pattern": r"\pL{400}"}, {"name": "digits", "pattern": r"\pN{400}x"}]}
    ),
}


def write_row(wh: Warehouse, tenant: str, text: str) -> None:
    """A row as another version (or a hand-made INSERT) might leave it, past PolicyBook.set."""
    wh.insert_columns(
        "redaction_policies",
        ["tenant_id", "policy", "changed_at", "changed_by", "version"],
        [[tenant], [text], [datetime.now(UTC)], ["by hand"], [time.time_ns() // 1000]],
    )


def request_for(*tenants: str, note: str = "hello") -> tuple[ExportTraceServiceRequest, str]:
    """One span per tenant (a resource each, naming it), under a service name of their own."""
    service = f"policy-store-{uuid.uuid4().hex[:8]}"
    req = ExportTraceServiceRequest()
    for tenant in tenants:
        rs = req.resource_spans.add()
        for key, value in (("service.name", service), ("wrm.tenant.id", tenant)):
            rs.resource.attributes.add(key=key).value.string_value = value
        span = make_span(f"step-{tenant}")
        span.attributes.add(key="note").value.string_value = note
        rs.scope_spans.add().spans.append(span)
    return req, service


def stored(server: WrmServer, service: str) -> dict[str, dict[str, str]]:
    """tenant → the attributes stored for the request sent under `service`."""
    assert server.warehouse is not None
    rows = server.warehouse.rows(
        "SELECT tenant_id, attributes FROM spans FINAL WHERE service_name = {s:String}", {"s": service}
    )
    return {tenant: dict(attrs) for tenant, attrs in rows}


def assert_refused(server: WrmServer, *tenants: str) -> None:
    req, service = request_for(*tenants, note=f"key {AWS}")
    with pytest.raises(grpc.RpcError) as refused:
        send_raw(server.otlp_address, req)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    assert "redaction policy cannot be applied" in str(refused.value.details())
    assert AWS not in str(refused.value.details())
    assert stored(server, service) == {}


def assert_accepted(server: WrmServer, tenant: str) -> dict[str, str]:
    req, service = request_for(tenant, note=f"key {AWS} mail {EMAIL}")
    assert send_raw(server.otlp_address, req).partial_success.rejected_spans == 0
    attrs = stored(server, service)[tenant]
    assert AWS not in attrs["note"], attrs
    return attrs


def redact_call(server: WrmServer, tenant: str) -> httpx.Response:
    """POST /v1/redact as the tenant (auth is off on loopback: X-WRM-Tenant names it)."""
    return httpx.post(
        f"http://{server.http_address}/v1/redact",
        json={"items": [f"key {AWS}"]},
        headers={"X-WRM-Tenant": tenant},
        timeout=30,
    )


def assert_unusable(response: httpx.Response, tenant: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Retry-After" in response.headers
    problem = response.json()
    assert problem["status"] == 503 and tenant in problem["detail"] and AWS not in response.text


@pytest.fixture(scope="module")
def broken_server(engine_dir: Path) -> Iterator[WrmServer]:
    """A server started over a warehouse already holding BROKEN's rows. Its tests keep apart by
    tenant: BROKEN's, LATER's and cyberdyne each belong to one test (hooli is only ever taken)."""
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        migrate(wh)
        for tenant, text in BROKEN.items():
            write_row(wh, tenant, text)
        srv = start_server(wh, admin_key=ADMIN_KEY, redaction_refresh_s=3600)
        try:
            yield srv
        finally:
            srv.stop()
    finally:
        drop_database(wh)
        wh.close()


def test_a_stored_policy_that_cannot_be_applied_refuses_its_tenant_until_an_admin_fixes_it(
    broken_server: WrmServer,
) -> None:
    server = broken_server
    for tenant in BROKEN:
        assert_refused(server, tenant)
        assert_unusable(redact_call(server, tenant), tenant)
    assert_refused(server, "acme", "hooli")  # one request, two tenants: none of it is stored
    # Other tenants are stored, under the defaults.
    assert assert_accepted(server, "hooli")["note"] == f"key [REDACTED:aws_key] mail {EMAIL}"
    assert redact_call(server, "hooli").json()["items"] == ["key [REDACTED:aws_key]"]
    # An admin sets a policy that applies: acme's spans are taken, under it, at once.
    put = httpx.put(
        f"http://{server.http_address}/v1/tenants/acme/redaction",
        json={"detectors": {"email": "mask"}},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "api"
    assert assert_accepted(server, "acme")["note"] == "key [REDACTED:aws_key] mail [REDACTED:email]"
    assert redact_call(server, "acme").status_code == 200
    assert_refused(server, "globex")  # the others stay refused until theirs are fixed


# Tenants whose rows break after start-up (the same texts as BROKEN's).
LATER = dict(zip(("umbrella", "wonka", "stark"), BROKEN.values(), strict=True))


def test_a_policy_broken_after_start_refuses_its_tenant_from_the_next_reload(
    broken_server: WrmServer,
) -> None:
    """The tenant had a Redactor already (its spans were taken): a reload finding its row
    unusable drops it, rather than go on with the policy before or fall back to the global one."""
    server = broken_server
    assert server.policies is not None and server.warehouse is not None
    for tenant in LATER:
        assert_accepted(server, tenant)
    for tenant, text in LATER.items():
        write_row(server.warehouse, tenant, text)
    server.policies._reload()
    for tenant in LATER:
        assert_refused(server, tenant)
    assert_unusable(redact_call(server, "umbrella"), "umbrella")
    assert_accepted(server, "hooli")
    write_row(server.warehouse, "umbrella", "")  # a removal (an empty policy): the settings apply again
    server.policies._reload()
    assert assert_accepted(server, "umbrella")["note"] == f"key [REDACTED:aws_key] mail {EMAIL}"


def test_removing_an_unreadable_stored_policy_lifts_the_refusal(broken_server: WrmServer) -> None:
    """DELETE /v1/tenants/{tenant}/redaction removes the tenant's API policy, so its settings
    policy (or the global one) applies again: also when the stored row is not a policy."""
    server = broken_server
    assert server.warehouse is not None and server.policies is not None
    write_row(server.warehouse, "cyberdyne", BROKEN["acme"])
    server.policies._reload()
    assert_refused(server, "cyberdyne")
    gone = httpx.delete(
        f"http://{server.http_address}/v1/tenants/cyberdyne/redaction",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert gone.status_code == 200, gone.text
    assert_accepted(server, "cyberdyne")


def test_policies_that_cannot_be_read_at_start_stop_start_up(warehouse: Warehouse) -> None:
    """Running without the stored policies would store under weaker ones: the book (and so the
    server) does not start. Once started, a failed re-read keeps the policies loaded."""
    migrate(warehouse)
    write_row(warehouse, "acme", json.dumps({"detectors": {"email": "mask"}}))
    book = PolicyBook(Policy(), {}, SECRET, warehouse, refresh_s=3600)
    assert book.redactor("acme").text(EMAIL) == "[REDACTED:email]"
    warehouse.command("DROP TABLE redaction_policies SYNC")
    with pytest.raises(Exception) as failed:
        PolicyBook(Policy(), {}, SECRET, warehouse)
    assert not isinstance(failed.value, PolicyError)  # the warehouse's error, as it is
    book._reload()  # after start: logged, and the policies loaded are kept
    assert book.redactor("acme").text(EMAIL) == "[REDACTED:email]"


def test_a_change_made_while_a_redactor_is_built_is_not_lost(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redactor built from the policy before a change that lands meanwhile is used for the
    call that built it, never kept for the calls after the change."""
    migrate(warehouse)
    book = PolicyBook(Policy(), {}, SECRET, warehouse, refresh_s=3600)
    raced: list[bool] = []

    def racing_rules(policy: Any) -> Any:
        built = Rules(policy)
        if not raced:  # the first build: an admin's change lands before it is cached
            raced.append(True)
            book.set("acme", Policy(detectors={"email": "mask"}), "admin")
        return built

    monkeypatch.setattr("redaction.book.Rules", racing_rules)
    assert book.redactor("acme").text(EMAIL) == EMAIL  # built from the policy before the change
    assert raced and book.policy("acme").source == "api"
    assert book.redactor("acme").text(EMAIL) == "[REDACTED:email]"
