"""Rules on the OTLP path: span names, event names, link trace states and status messages, what
a span records in `wrm.redacted` (and a sender's own removed), the tenant attribute, arrays and
key-value lists, schema URLs, bytes values holding UTF-8 text (the library alike), and the tenant
attribute when a key fixes the tenant. Shared helpers: tests/redaction_data.py."""

from __future__ import annotations

from collections import Counter

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from receiver.redact import IngestRedaction
from receiver.screen import screen_request
from redaction import Policy, PolicyBook, Rule
from redaction.otlp import REDACTED_ATTRIBUTE, attribute_mapping, redact_request
from tests.redaction_data import AWS, CARD, SECRET, kv, kvlist, record, redactor, request, rules, span
from tests.redaction_data import redact_spans as redact

# -- spans ---------------------------------------------------------------------------------


def test_a_drop_rule_turns_span_names_event_names_and_status_messages_into_the_marker() -> None:
    s = span(
        kv("note", "ord-1"),
        kv("kept", "fine"),
        name="fetch ord-1",
        status=Status(code=Status.STATUS_CODE_ERROR, message="ord-2 failed"),
    )
    s.events.add(name="retry ord-3", time_unix_nano=1).attributes.append(kv("why", "ord-4"))
    link = s.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, trace_state="v=ord-5")
    link.attributes.append(kv("how", "ord-6 then"))
    changed, (out,) = redact(
        request(s), redactor(rules(Rule(name="order", pattern="ord-[0-9]", action="drop")))
    )
    assert changed
    assert out.name == "[REDACTED:order]" and out.status.message == "[REDACTED:order]"
    assert out.events[0].name == "[REDACTED:order]" and len(out.events[0].attributes) == 0
    assert out.links[0].trace_state == "[REDACTED:order]" and len(out.links[0].attributes) == 0
    assert [a.key for a in out.attributes] == ["kept", REDACTED_ATTRIBUTE]
    assert record(out) == {"order": 7}


def test_wrm_redacted_counts_every_finding_of_the_span_its_resource_and_scope() -> None:
    first = span(kv("prompt", f"{AWS} and {AWS}"), kv("db.password", "x"), name=f"pay {CARD}")
    first.events.add(name="exception", time_unix_nano=1).attributes.append(
        kv("exception.message", f"bad {AWS}")
    )
    second = span(kv("plain", "nothing"))
    third = span(kv("plain", "nothing"))
    req = request(first, second, resource=(kv("deploy.note", CARD),), scope=(kv("api_key", "k"),))
    req.resource_spans[0].scope_spans.add().spans.append(third)  # a second scope: the resource only
    changed = redact_request(req, req.SerializeToString(), lambda rs: redactor())
    assert changed
    one, two = req.resource_spans[0].scope_spans[0].spans
    (three,) = req.resource_spans[0].scope_spans[1].spans
    assert record(one) == {"aws_key": 3, "card_number": 2, "credential_key": 2}
    assert record(two) == {"card_number": 1, "credential_key": 1}
    assert record(three) == {"card_number": 1}
    assert attribute_mapping(req.resource_spans[0].resource.attributes) == {
        "deploy.note": "[REDACTED:card_number]"
    }


def test_a_span_with_nothing_to_redact_records_nothing() -> None:
    changed, (out,) = redact(request(span(kv("prompt", "hello"))), redactor())
    assert not changed and record(out) is None


def test_a_senders_own_wrm_redacted_is_removed() -> None:
    changed, (out,) = redact(request(span(kv(REDACTED_ATTRIBUTE, '{"forged":9}'), kv("a", "b"))), redactor())
    assert changed and record(out) is None and [a.key for a in out.attributes] == ["a"]
    changed, (out,) = redact(request(span(kv(REDACTED_ATTRIBUTE, '{"forged":9}'), kv("p", AWS))), redactor())
    assert changed and record(out) == {"aws_key": 1}
    assert [a.key for a in out.attributes].count(REDACTED_ATTRIBUTE) == 1


def test_the_tenant_attribute_of_a_resource_is_never_redacted() -> None:
    r = redactor(rules(Rule(name="acme", pattern="acme")))
    req = request(span(kv("org", "acme")), resource=(kv("wrm.tenant.id", "acme"), kv("team", "acme-ops")))
    redact_request(req, req.SerializeToString(), lambda rs: r)
    assert attribute_mapping(req.resource_spans[0].resource.attributes) == {
        "wrm.tenant.id": "acme", "team": "[REDACTED:acme]-ops"
    }  # fmt: skip


def test_arrays_and_kvlists_in_otlp() -> None:
    arr = AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=AWS), AnyValue(int_value=4)]))
    nested = kvlist(
        ("password", AnyValue(int_value=1234)), ("inner", kvlist(("t", AnyValue(string_value=CARD))))
    )
    _, (out,) = redact(
        request(span(KeyValue(key="arr", value=arr), KeyValue(key="cfg", value=nested))), redactor()
    )
    attrs = attribute_mapping(out.attributes)
    assert attrs["arr"] == ["[REDACTED:aws_key]", 4]
    assert attrs["cfg"] == {"password": "[REDACTED:credential_key]", "inner": {"t": "[REDACTED:card_number]"}}
    assert record(out) == {"aws_key": 1, "card_number": 1, "credential_key": 1}


# -- schema URLs, bytes values, the tenant id ------------------------------------------------


SK = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


def test_resource_and_scope_schema_urls_are_redacted_and_recorded() -> None:
    req = request(span(kv("a", "b")), span(kv("c", "d")))
    rs = req.resource_spans[0]
    rs.schema_url = f"https://schemas.example.com/{AWS}/1.0"
    rs.scope_spans[0].schema_url = f"https://schemas.example.com/scope?{SK}"
    other = rs.scope_spans.add()  # a second scope, its schema URL clean: the resource's only
    other.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    other.spans.append(span(kv("e", "f")))
    for always in (False, True):  # through the triggers, and reading every span
        r = redactor()
        r.always = always
        out = ExportTraceServiceRequest()
        out.CopyFrom(req)
        assert redact(out, r)[0]
        ors = out.resource_spans[0]
        assert ors.schema_url == "https://schemas.example.com/[REDACTED:aws_key]/1.0"
        assert ors.scope_spans[0].schema_url == "https://schemas.example.com/scope?[REDACTED:sk_key]"
        assert ors.scope_spans[1].schema_url == "https://opentelemetry.io/schemas/1.26.0"
        assert [record(s) for s in ors.scope_spans[0].spans] == [{"aws_key": 1, "sk_key": 1}] * 2
        assert record(ors.scope_spans[1].spans[0]) == {"aws_key": 1}


def test_a_bytes_value_holding_utf8_text_is_redacted_and_stays_bytes() -> None:
    binary = b"\xff\xfe\x00" + AWS.encode()  # not UTF-8: not text, left as it is
    s = span(
        KeyValue(key="blob", value=AnyValue(bytes_value=f"key {AWS} é".encode())),
        KeyValue(key="raw", value=AnyValue(bytes_value=binary)),
        KeyValue(
            key="list",
            value=AnyValue(array_value=ArrayValue(values=[AnyValue(bytes_value=CARD.encode())])),
        ),
    )
    changed, (out,) = redact(request(s), redactor())
    assert changed
    values = {a.key: a.value for a in out.attributes}
    assert values["blob"].WhichOneof("value") == "bytes_value"
    assert values["blob"].bytes_value == "key [REDACTED:aws_key] é".encode()
    assert values["raw"].bytes_value == binary
    assert values["list"].array_value.values[0].bytes_value == b"[REDACTED:card_number]"
    assert record(out) == {"aws_key": 1, "card_number": 1}


def test_the_library_redacts_a_bytes_value_as_ingest_does() -> None:
    binary = b"\xff\xfe\x00" + AWS.encode()
    tally: Counter[str] = Counter()
    out = redactor().mapping(
        {"blob": f"key {AWS} é".encode(), "raw": binary, "list": [CARD.encode(), b"ok"], "n": 1}, tally
    )
    assert out == {
        "blob": "key [REDACTED:aws_key] é".encode(),
        "raw": binary,
        "list": [b"[REDACTED:card_number]", b"ok"],
        "n": 1,
    }
    assert tally == Counter({"aws_key": 1, "card_number": 1})
    assert redactor().value("blob", f"{AWS}".encode()) == b"[REDACTED:aws_key]"


def test_the_tenant_attribute_is_redacted_when_a_key_fixes_the_tenant() -> None:
    """`routed=False` (the sender's key names the tenant): wrm.tenant.id routes nothing, so it
    is an attribute like any other; `routed=True` (it names the tenant) it is kept."""
    for routed, expected in ((False, "[REDACTED:aws_key]"), (True, AWS)):
        req = request(span(kv("a", "b")), resource=(kv("wrm.tenant.id", AWS), kv("team", "ops")))
        changed = redact_request(req, req.SerializeToString(), lambda rs: redactor(), routed)
        rs = req.resource_spans[0]
        assert attribute_mapping(rs.resource.attributes) == {"wrm.tenant.id": expected, "team": "ops"}
        assert changed is (not routed)
        assert record(rs.scope_spans[0].spans[0]) == (None if routed else {"aws_key": 1})

    # As the receiver calls it: a key fixing the tenant (acme) makes the attribute plain text.
    ingest = IngestRedaction(PolicyBook(Policy(), {}, SECRET), "default")
    req = request(span(kv("a", "b"), end_time_unix_nano=2), resource=(kv("wrm.tenant.id", AWS),))
    screened = screen_request(req, tenant_fixed=True, cleaner=ingest.cleaner("acme"))
    assert screened.spans == 1
    stored = ExportTraceServiceRequest.FromString(ingest.apply(req, screened, "acme").payload)
    assert attribute_mapping(stored.resource_spans[0].resource.attributes) == {
        "wrm.tenant.id": "[REDACTED:aws_key]"
    }
