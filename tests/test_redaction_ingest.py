"""End to end (issue 13, "Show"): secrets of every built-in kind, planted in every place a rule
reads (span, resource, scope, event and link attributes; string elements of arrays and key-value
lists; span names, event names, status messages, exception messages and stacktraces), sent through
the OpenTelemetry SDK exporter (and as raw OTLP for what the SDK cannot send), reach no table of
the database, no log line and no response; the spans and the run are still stored and correct.
Per tenant: email masked for tenant A and kept for tenant B; `hash` equal within a tenant and
different across tenants; the library gives exactly the values stored. What is planted and
how it is sent: tests/redaction_data.py."""

from __future__ import annotations

import base64
import json
import logging
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from redaction import DETECTORS, Policy, PolicyBook
from redaction.otlp import REDACTED_ATTRIBUTE, plain
from tests.conftest import module_server, settle
from tests.otlp import make_span, request_of, send_raw
from tests.redaction_data import (
    E2E_GLOBAL,
    E2E_SECRET,
    E2E_TENANTS,
    WORKFLOW,
    LogCapture,
    Sent,
    default_plant,
    pii_plant,
    rand,
    raw_pass,
    sdk_pass,
    send_refusals,
    tenants_pass,
)
from tests.redaction_data import any_string as _string
from warehouse import Warehouse
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def sent(engine_dir: Path) -> Iterator[tuple[WrmServer, Sent]]:
    capture = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        with module_server(
            engine_dir, redaction=E2E_GLOBAL, tenant_redaction=E2E_TENANTS, redaction_secret=E2E_SECRET
        ) as server:
            default, pii, cause, raw = default_plant(), pii_plant(), pii_plant(), default_plant()
            trace_id, llm_attributes, llm_name = sdk_pass(server, default, None, "")
            sdk_pass(server, pii, cause, "pii")
            raw_pass(server, raw)
            refused = send_refusals(server, default)
            tenants_pass(server, f"{rand(10, string.ascii_lowercase)}@example.com")
            settle(server)
            yield (
                server,
                Sent(default, pii, cause, raw, trace_id, llm_attributes, llm_name, refused, capture.lines),
            )
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


_PB64 = re.compile(r"pb64:((?:[A-Za-z0-9+=]|\\*/)+)")


def _with_nested(text: str) -> str:
    """`text` and, after it, what each value nested deeper than one list holds: such a value is
    stored as `pb64:` + base64 of its protobuf, whose strings are plain UTF-8 once decoded."""
    blobs = [base64.b64decode(m.replace("\\", "")) for m in _PB64.findall(text)]
    return "\n".join([text, *(b.decode("utf-8", errors="replace") for b in blobs)])


def _nested(stored: str, array: bool = False) -> Any:
    """A key-value list (or an array) stored as `pb64:…` (see _with_nested), as a plain value."""
    assert stored.startswith("pb64:"), stored
    data = base64.b64decode(stored[5:])
    if array:
        return plain(AnyValue(array_value=ArrayValue.FromString(data)))
    return plain(AnyValue(kvlist_value=KeyValueList.FromString(data)))


def _wh(server: WrmServer) -> Warehouse:
    assert server.warehouse is not None
    return server.warehouse


def _book() -> PolicyBook:
    """The library's book, from the same settings the server was started with."""
    return PolicyBook(
        Policy.model_validate(E2E_GLOBAL),
        {t: Policy.model_validate(p) for t, p in E2E_TENANTS.items()},
        E2E_SECRET.encode(),
    )


def _needles(s: Sent) -> dict[str, str]:
    """needle → where it was planted (pass and kind)."""
    found: dict[str, str] = {}
    for label, plant in (("default", s.default), ("pii", s.pii), ("cause", s.cause), ("raw", s.raw)):
        for kind, needles in plant.needles.items():
            for n in needles:
                found[n] = f"{label}:{kind}"
    return found


# -- nothing planted is stored, logged or answered --------------------------------------------


def test_no_planted_value_is_in_any_table(sent: tuple[WrmServer, Sent]) -> None:
    server, s = sent
    wh = _wh(server)
    databases = [wh.database] + [
        name
        for (name,) in wh.rows(
            "SELECT name FROM system.databases WHERE startsWith(name, {p:String})", {"p": f"{wh.database}_t_"}
        )
    ]
    # every table that holds rows (views only read them; a materialized view writes to a table)
    tables = wh.rows(
        "SELECT database, name, engine FROM system.tables WHERE database IN {d:Array(String)} "
        "AND engine NOT IN ('View', 'MaterializedView') ORDER BY database, name",
        {"d": databases},
    )
    names = {name for _, name, _ in tables}
    assert {"spans", "span_facts", "steps_store", "runs_store", "otlp_landing"} <= names
    needles = _needles(s)
    leaks: list[str] = []
    scanned = 0
    for database, name, _ in tables:
        text = _with_nested(wh.client.raw_query(f"SELECT * FROM `{database}`.`{name}` FORMAT TSV").decode())
        scanned += len(text)
        leaks += [
            f"{database}.{name}: {where} {needle!r}" for needle, where in needles.items() if needle in text
        ]
    assert scanned > 10_000  # the scan read what was stored
    assert not leaks, "\n".join(leaks)


def test_no_planted_value_is_in_the_log(sent: tuple[WrmServer, Sent]) -> None:
    _, s = sent
    log = "\n".join(s.log)
    assert "auth is off" in log  # the server's own lines were captured (at DEBUG)
    assert [where for needle, where in _needles(s).items() if needle in log] == []


def test_a_refusal_quotes_names_and_tenant_ids_redacted(sent: tuple[WrmServer, Sent]) -> None:
    _, s = sent
    message = s.partial_success
    assert "[REDACTED:" in message and "span 'bad " in message, message
    assert [where for needle, where in _needles(s).items() if needle in message] == []


# -- what is stored is still right --------------------------------------------------------------


def test_the_spans_and_the_run_are_stored_and_right(sent: tuple[WrmServer, Sent]) -> None:
    server, s = sent
    wh = _wh(server)
    kinds = len(s.default.values)  # the text kinds: one tool span each
    spans = wh.rows(
        "SELECT name, status_code, tenant_id FROM spans FINAL WHERE trace_id = {t:String}", {"t": s.trace_id}
    )
    assert len(spans) == 3 + kinds  # workflow, llm, charge and one tool span per kind
    assert {t for _, _, t in spans} == {"default"}
    by_name = {n: c for n, c, _ in spans}
    assert by_name["workflow"] == "ERROR" and by_name["charge"] == "ERROR"
    assert by_name["llm [REDACTED:aws_key]"] == "UNSET"
    run = wh.client.query("SELECT * FROM runs WHERE trace_id = {t:String}", {"t": s.trace_id})
    (r,) = list(run.named_results())
    assert r["workflow_name"] == WORKFLOW and r["status"] == "failed"
    assert r["step_count"] == 2 + kinds and r["input_tokens"] == 120 and r["output_tokens"] == 30
    assert "[REDACTED:" in r["failure_reason"], r["failure_reason"]
    pii_runs = wh.rows(
        "SELECT count() FROM runs WHERE tenant_id = 'pii' AND workflow_name = {w:String}", {"w": WORKFLOW}
    )
    assert pii_runs == [(1,)]


def test_each_span_records_what_was_redacted(sent: tuple[WrmServer, Sent]) -> None:
    server, s = sent
    rows = _wh(server).rows(
        "SELECT name, attributes FROM spans FINAL WHERE trace_id = {t:String}", {"t": s.trace_id}
    )
    records = {name: json.loads(attrs[REDACTED_ATTRIBUTE]) for name, attrs in rows}
    # every span carries its resource's and scope's findings: the resource's credential key and
    # card number at least
    assert all(rec["credential_key"] >= 2 and rec["card_number"] >= 1 for rec in records.values()), records
    llm = records["llm [REDACTED:aws_key]"]
    default_on = {d.name for d in DETECTORS if d.default_on}
    assert set(llm) == default_on | {"cust"}, llm  # every default kind, and the hash rule
    assert llm["cust"] == 1 and llm["aws_key"] >= 3
    assert all(isinstance(n, int) and n > 0 for rec in records.values() for n in rec.values())
    assert [s.default.values["aws_key"] in json.dumps(rec) for rec in records.values()] == [False] * len(
        records
    )


def test_run_detail_and_steps_show_the_redactions(sent: tuple[WrmServer, Sent]) -> None:
    server, s = sent
    with httpx.Client(base_url=f"http://{server.http_address}", timeout=30) as client:
        detail = client.get(f"/v1/runs/{s.trace_id}")
        steps = client.get(f"/v1/runs/{s.trace_id}/steps", params={"view": "flat"})
    assert detail.status_code == 200 and steps.status_code == 200, (detail.text, steps.text)
    body = detail.text + steps.text
    assert [where for needle, where in _needles(s).items() if needle in body] == []
    redactions = detail.json()["redactions"]
    assert redactions["aws_key"] >= 3 and redactions["cust"] == 1, redactions
    llm = next(x for x in steps.json()["steps"] if x["name"] == "llm [REDACTED:aws_key]")
    assert llm["redactions"]["cust"] == 1 and llm["input_tokens"] == 120
    assert llm["redactions"] == {
        k: n for k, n in json.loads(_stored_attributes(server, s)[REDACTED_ATTRIBUTE]).items()
    }


def _stored_attributes(server: WrmServer, s: Sent) -> dict[str, str]:
    ((attributes,),) = _wh(server).rows(
        "SELECT attributes FROM spans FINAL WHERE trace_id = {t:String} AND name = {n:String}",
        {"t": s.trace_id, "n": "llm [REDACTED:aws_key]"},
    )
    return dict(attributes)


def test_the_library_gives_exactly_the_values_stored(sent: tuple[WrmServer, Sent]) -> None:
    server, s = sent
    stored = _stored_attributes(server, s)
    library = _book().redactor("default")
    expected = library.mapping(s.llm_attributes)
    for key, value in expected.items():
        if isinstance(value, str):
            assert stored[key] == value, key
        elif isinstance(value, list):
            assert json.loads(stored[key]) == value, key
    assert stored["db.password"] == "[REDACTED:credential_key]"
    assert library.text(s.llm_name) == "llm [REDACTED:aws_key]"
    ((message,),) = _wh(server).rows(
        "SELECT status_message FROM spans FINAL WHERE trace_id = {t:String} AND name = 'workflow'",
        {"t": s.trace_id},
    )
    assert message == library.text(s.default.prose())


def test_raw_key_value_lists_scopes_events_and_links_are_redacted(sent: tuple[WrmServer, Sent]) -> None:
    server, s = sent
    rows = _wh(server).rows(
        "SELECT name, attributes, scope_name, `events.name`, `events.attributes`, `links.attributes`, "
        "resource_attributes, scope_attributes FROM spans FINAL WHERE service_name = 'raw-client'"
    )
    ((name, attrs, scope, event_names, event_attrs, link_attrs, resource, scope_attrs),) = rows
    assert name == "raw [REDACTED:sk_key]" and scope == "lib [REDACTED:slack_token]"
    config = json.loads(attrs["config"])
    assert _nested(config["db"])["password"] == "[REDACTED:credential_key]"
    assert _nested(config["nested"])["deeper"]["secret"] == "[REDACTED:credential_key]"
    assert "[REDACTED:" in config["note"]
    listed = _nested(config["list"], array=True)
    assert len(listed) == len(s.raw.values) and all("[REDACTED:" in x for x in listed), listed
    payload = json.loads(event_attrs[0]["payload"])
    assert payload["token"] == "[REDACTED:credential_key]" and "[REDACTED:github_token]" in payload["t"]
    assert "[REDACTED:" in event_names[0] and "[REDACTED:" in link_attrs[0]["ctx"]
    assert "[REDACTED:" in resource["res.cfg"] and "[REDACTED:" in scope_attrs["scope.cfg"]
    record = json.loads(attrs[REDACTED_ATTRIBUTE])
    assert "forged" not in record and record["credential_key"] >= 2


# -- per tenant ---------------------------------------------------------------------------------


def _tenant_spans(server: WrmServer, tenant: str) -> dict[str, dict[str, str]]:
    rows = _wh(server).rows(
        "SELECT name, attributes FROM spans FINAL "
        "WHERE tenant_id = {t:String} AND service_name = 'tenant-agent'",
        {"t": tenant},
    )
    return {name: dict(attrs) for name, attrs in rows}


def test_tenant_a_masks_email_and_tenant_b_keeps_it(sent: tuple[WrmServer, Sent]) -> None:
    server, _ = sent
    a, b = _tenant_spans(server, "tenant-a"), _tenant_spans(server, "tenant-b")
    assert set(a) == set(b) == {"contact", "lookup-0", "lookup-1", "lookup-2"}
    for name in ("lookup-0", "lookup-1", "lookup-2"):
        assert a[name]["user.email"] == "[REDACTED:email]"
        assert a[name]["note"] == "write to [REDACTED:email]"
        assert "@example.com" in b[name]["user.email"] and b[name]["note"].startswith("write to ")
        assert b[name]["note"].endswith("@example.com")
        assert json.loads(a[name][REDACTED_ATTRIBUTE]) == {"cust": 1, "email": 2}
        assert json.loads(b[name][REDACTED_ATTRIBUTE]) == {"cust": 1}


def test_hash_is_equal_within_a_tenant_and_differs_across_tenants(sent: tuple[WrmServer, Sent]) -> None:
    server, _ = sent
    a, b = _tenant_spans(server, "tenant-a"), _tenant_spans(server, "tenant-b")
    a1, a1_again, a2 = (a[f"lookup-{i}"]["customer.id"] for i in range(3))
    b1 = b["lookup-0"]["customer.id"]
    assert a1.startswith("[HASH:cust:") and len(a1) == len("[HASH:cust:]") + 64
    assert a1 == a1_again and a1 != a2 and a1 != b1 and b["lookup-1"]["customer.id"] == b1
    book = _book()
    assert book.redactor("tenant-a").value("customer.id", "c-1") == a1
    assert book.redactor("tenant-b").value("customer.id", "c-1") == b1
    assert book.redactor("tenant-a").value("customer.id", "c-2") == a2


# -- what a sender cannot do ----------------------------------------------------------------------


def test_an_empty_key_attribute_is_redacted_at_ingest(sent: tuple[WrmServer, Sent]) -> None:
    server, _ = sent
    key = "AKIA" + rand(16, string.ascii_uppercase + string.digits)
    span = make_span("empty-key")
    span.attributes.append(KeyValue(key="", value=_string(f"key {key}")))
    assert (
        send_raw(server.otlp_address, request_of([span], service="empty-key")).partial_success.rejected_spans
        == 0
    )
    rows = _wh(server).rows("SELECT attributes FROM spans FINAL WHERE service_name = 'empty-key'")
    assert len(rows) == 1 and key not in json.dumps(rows[0][0])


def test_a_forged_record_in_an_event_is_removed_at_ingest(sent: tuple[WrmServer, Sent]) -> None:
    """Ingest removes a sender's `wrm.redacted` wherever it finds one; a request with nothing
    else to redact must be stored without it too."""
    server, _ = sent
    span = make_span("forged")
    span.events.add(name="e", time_unix_nano=span.start_time_unix_nano).attributes.append(
        KeyValue(key=REDACTED_ATTRIBUTE, value=_string('{"forged":1}'))
    )
    assert (
        send_raw(server.otlp_address, request_of([span], service="forged")).partial_success.rejected_spans
        == 0
    )
    rows = _wh(server).rows("SELECT `events.attributes` FROM spans FINAL WHERE service_name = 'forged'")
    assert rows == [([{}],)]


def test_sanity_every_planted_text_is_redacted_by_the_library() -> None:
    """The planted texts themselves: if the library left a needle, the detector is at fault,
    not ingest (this test says which)."""
    book = _book()
    for tenant, plant in (("default", default_plant()), ("pii", pii_plant())):
        out = book.redactor(tenant).text(plant.prose())
        assert [n for n in plant.all_needles() if n in out] == [], (tenant, out)
