"""Trigger soundness, the invariant redaction.otlp rests on: reading only what the RE2 triggers
point at in a request's bytes gives exactly the request that reading every span would give, for
generated spans (names, attributes, events, links, status messages, arrays and key-value lists,
with and without planted secrets) under generated policies (built-in detectors with every action,
operators' key globs, RE2 patterns and anchored patterns), one or two tenants per request.
And the library (Redactor.mapping) gives what the OTLP path leaves in a span's attributes."""

from __future__ import annotations

import json
import string
from collections import Counter
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from redaction import DETECTORS, Policy, Redactor, Rule, effective
from redaction.otlp import REDACTED_ATTRIBUTE, attribute_mapping, redact_request
from redaction.policy import DetectorSetting
from redaction.redactor import Rules

# Generating nested requests is most of the time these take: 50 examples (each a request of up to
# two resources, four scopes and eight spans, under two generated policies) keep each to seconds.
PROPERTY = settings(max_examples=50, deadline=None, database=None)
KEY = b"s" * 32

# Secrets of every kind the built-in detectors and the operator rules below look for.
PLANTED = (
    "AKIAIOSFODNN7EXAMPLE", "sk-proj-Abcdefghijklmnopqrstuvwxyz012345", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "xoxb-123456789012-123456789012-abcdefghijklmnopqrstuvwx",
    "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Bearer abc123.def456-ghi", "Basic dXNlcjpwYXNz", "password=hunter2!", '"api_key": "k3y-value"',
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQ", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005",
    "ann.lee@example.com", "+44 20 7946 0958", "(555) 123-4567", "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432", "192.168.10.20", "fe80::1ff:fe23:4567:890a", "123-45-6789",
    "ord-12345", "café", "xéy", "INTERNAL only", "acct-42", "secretword", "note-2024",
    "https://hooks.slack.com/services/T000/B000/XXXX", "token: abc123", "wrm.redacted",
)  # fmt: skip
KEYS = (
    "prompt", "gen_ai.prompt", "input.value", "note", "notes.internal", "http.url", "user.email",
    "customer.id", "Customer.Name", "order.id", "invoice_ref", "db.password", "api_key", "x-api-key",
    "http.request.header.authorization", "set-cookie", "client_secret", "tokens", "wrm.redacted",
    "acct", "k", "",
)  # fmt: skip

# Operators' rules of every shape: key globs (literal runs, bare wildcards, classes), RE2
# patterns (case-insensitive, non-ASCII, negated classes), keys with a pattern, anchored ones.
RULES = (
    Rule(name="cust", keys=["customer.*"], action="hash"),
    Rule(name="refs", keys=["*_ref", "order.?d"], action="truncate", keep=3),
    Rule(name="everything-ord", keys=["*"], pattern="ord-[0-9]+", action="mask"),
    Rule(name="noted", keys=["note*"], pattern="[0-9]{4}", action="drop"),
    Rule(name="classed", keys=["[a-c]cct", "[!x]*.internal"], action="mask"),
    Rule(name="order", pattern="ord-[0-9]{3,}", action="drop"),
    Rule(name="unicode", pattern="caf[ée]|x[^a]y", action="mask"),
    Rule(name="internal", pattern="(?i)internal[ _-]only", action="truncate", keep=2),
    Rule(name="hashed", pattern="acct-[0-9]+", action="hash"),
    Rule(name="anchored", pattern="^acct-[0-9]+$", action="mask"),
    Rule(name="bounded", pattern=r"\bsecretword\b", action="drop"),
    Rule(name="multiline", pattern="(?m)^note-[0-9]+", action="mask"),
)
ACTIONS: tuple[DetectorSetting, ...] = ("mask", "hash", "truncate", "drop", "off")


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    detectors = draw(
        st.dictionaries(st.sampled_from([d.name for d in DETECTORS]), st.sampled_from(ACTIONS), max_size=8)
    )
    rules = draw(st.lists(st.sampled_from(RULES), unique_by=lambda r: r.name, max_size=4))
    keep = draw(st.none() | st.integers(0, 12))
    return Policy(detectors=detectors, rules=rules, keep=keep)


texts = st.one_of(
    st.sampled_from(PLANTED),
    st.text(max_size=30),
    st.lists(st.one_of(st.sampled_from(PLANTED), st.text(string.ascii_letters + " .:=-\n", max_size=12))).map(
        " ".join
    ),
)


SCALARS = st.one_of(
    texts.map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n)),
    st.floats(allow_nan=False).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=24).map(lambda b: AnyValue(bytes_value=b)),
    texts.map(lambda s: AnyValue(bytes_value=s.encode())),  # UTF-8 text as bytes: redacted as text
    st.just(AnyValue()),  # present, and empty
)
ATTRIBUTE_KEYS = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))


def _pairs(values: st.SearchStrategy[AnyValue], max_size: int) -> st.SearchStrategy[list[KeyValue]]:
    pair = st.builds(KeyValue, key=ATTRIBUTE_KEYS, value=values)
    return st.lists(pair, max_size=max_size)


# Scalars, arrays of them and key-value lists, nested up to a few levels.
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        _pairs(inner, 3).map(lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs))),
    ),
    max_leaves=6,
)


def key_values(max_size: int = 4) -> st.SearchStrategy[list[KeyValue]]:
    return _pairs(VALUES, max_size)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    span = Span(
        trace_id=draw(st.binary(min_size=16, max_size=16)),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        name=draw(texts),
        trace_state=draw(st.sampled_from(["", "vendor=AKIAIOSFODNN7EXAMPLE", "a=b"])),
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=draw(key_values()),
        status=Status(code=draw(st.sampled_from(list(Status.StatusCode.values()))), message=draw(texts)),
    )
    for _ in range(draw(st.integers(0, 2))):
        span.events.add(time_unix_nano=1, name=draw(texts), attributes=draw(key_values(2)))
    for _ in range(draw(st.integers(0, 1))):
        span.links.add(
            trace_id=draw(st.binary(min_size=16, max_size=16)),
            span_id=draw(st.binary(min_size=8, max_size=8)),
            trace_state=draw(st.sampled_from(["", "k=4111111111111111"])),
            attributes=draw(key_values(2)),
        )
    return span


SCHEMA_URLS = st.one_of(
    st.sampled_from(["", "https://opentelemetry.io/schemas/1.26.0"]),
    st.sampled_from(PLANTED).map(lambda secret: f"https://schemas.example.com/{secret}/1.0"),
)


@st.composite
def resource_spans(draw: st.DrawFn) -> ResourceSpans:
    rs = ResourceSpans(schema_url=draw(SCHEMA_URLS))
    rs.resource.attributes.extend(draw(key_values(2)))
    tenant = draw(st.sampled_from(["", "t0", "t1"]))
    if tenant:
        rs.resource.attributes.add(key="wrm.tenant.id").value.string_value = tenant
    for _ in range(draw(st.integers(1, 2))):
        ss = rs.scope_spans.add(schema_url=draw(SCHEMA_URLS))
        ss.scope.name = draw(
            st.sampled_from(["", "openai", "lib ord-777", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"])
        )
        ss.scope.version = draw(st.sampled_from(["", "1.2.3"]))
        ss.scope.attributes.extend(draw(key_values(2)))
        ss.spans.extend(draw(st.lists(spans(), min_size=1, max_size=2)))
    return rs


requests = st.lists(resource_spans(), min_size=1, max_size=2).map(
    lambda rss: ExportTraceServiceRequest(resource_spans=rss)
)


def tenant_of(rs: Any) -> str:
    for kv in rs.resource.attributes:
        if kv.key == "wrm.tenant.id":
            return str(kv.value.string_value)
    return ""


def redacted(
    request: ExportTraceServiceRequest, redactors: dict[str, Redactor], always: bool
) -> tuple[ExportTraceServiceRequest, bool]:
    """A copy of `request` redacted through redact_request, reading every span when `always`."""
    if always:
        forced = {}
        for tenant, redactor in redactors.items():
            forced[tenant] = Redactor(redactor.rules, KEY, tenant)
            forced[tenant].always = True
        redactors = forced
    out = ExportTraceServiceRequest()
    out.CopyFrom(request)
    changed = redact_request(out, out.SerializeToString(), lambda rs: redactors[tenant_of(rs)])
    return out, changed


def assert_sound(request: ExportTraceServiceRequest, redactors: dict[str, Redactor]) -> None:
    by_trigger, _ = redacted(request, redactors, always=False)
    by_reading_all, _ = redacted(request, redactors, always=True)
    assert by_trigger == by_reading_all, (request, by_trigger, by_reading_all)


@PROPERTY
@given(requests, policies(), policies())
def test_triggers_give_exactly_what_reading_every_span_gives(
    request: ExportTraceServiceRequest, p0: Policy, p1: Policy
) -> None:
    """Resources without a tenant get the default policy, t0 and t1 generated ones."""
    rules = {"": Rules(effective()), "t0": Rules(effective(p0)), "t1": Rules(effective(p0, p1))}
    assert_sound(request, {t: Redactor(r, KEY, t) for t, r in rules.items()})


ALL_ON = Policy(detectors={d.name: "mask" for d in DETECTORS})


@PROPERTY
@given(requests, st.sampled_from([r for r in RULES if not Rules(effective(Policy(rules=[r]))).always]))
def test_triggers_are_sound_for_every_detector_and_each_operator_rule(
    request: ExportTraceServiceRequest, rule: Rule
) -> None:
    """Only rules the trigger stands for (no anchors, no bare `*` glob): the trigger path proper."""
    policy = Policy(detectors=ALL_ON.detectors, rules=[rule])
    redactor = Redactor(effective(policy), KEY)
    assert not redactor.always
    assert_sound(request, dict.fromkeys(("", "t0", "t1"), redactor))


@pytest.mark.parametrize(
    ("rule", "always"),
    [
        (Rule(name="r", pattern="^acct-[0-9]+$"), True),
        (Rule(name="r", pattern="acct-[0-9]+$"), True),
        (Rule(name="r", pattern=r"\bword\b"), True),
        (Rule(name="r", pattern=r"\Aword"), True),
        (Rule(name="r", pattern=r"(?m)word$"), True),
        (Rule(name="r", keys=["*"]), True),
        (Rule(name="r", keys=["?"]), True),
        (Rule(name="r", keys=["[ab]"]), True),
        (Rule(name="r", pattern="acct-[0-9]+"), False),
        (Rule(name="r", pattern="[^a]cct"), False),
        (Rule(name="r", keys=["customer.*", "*_ref"]), False),
        (Rule(name="r", keys=["note*"], pattern="^[0-9]+$"), False),  # a key literal stands for it
    ],
)
def test_anchored_patterns_and_bare_globs_read_every_span(rule: Rule, always: bool) -> None:
    assert Rules(effective(Policy(rules=[rule]))).always is always


def _span_with(*attributes: KeyValue) -> ExportTraceServiceRequest:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="step", start_time_unix_nano=1)
    span.attributes.extend(attributes)
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.append(span)
    return req


def test_a_credential_key_without_a_value_is_treated_alike_on_both_paths() -> None:
    """OTLP lets a KeyValue carry no value at all (an empty AnyValue is not sent): there is then
    no value tag after the key for the credential-key trigger to see."""
    req = _span_with(KeyValue(key="db.password"), KeyValue(key=REDACTED_ATTRIBUTE))
    assert_sound(req, {"": Redactor(effective(), KEY)})


# -- what redact_request reports ------------------------------------------------------------


@PROPERTY
@given(requests, policies())
def test_changed_is_true_exactly_when_the_request_changed(
    request: ExportTraceServiceRequest, p: Policy
) -> None:
    """The receiver encodes the request again only when redact_request says it changed: a change
    it does not report would be lost (the bytes stored are the ones received)."""
    redactor = Redactor(effective(p), KEY)
    out, changed = redacted(request, dict.fromkeys(("", "t0", "t1"), redactor), always=False)
    assert changed == (out != request), (request, out)


SPOOF = KeyValue(key=REDACTED_ATTRIBUTE, value=AnyValue(string_value='{"nothing":0}'))
INERT = Policy(detectors=dict.fromkeys((d.name for d in DETECTORS), "off"))  # redacts nothing


def _plant_spoof(req: ExportTraceServiceRequest, where: str, r: int = 0) -> list[Any]:
    """Put a forged `wrm.redacted` in `where` of resource `r`'s first span; the attribute list
    that holds it."""
    rs = req.resource_spans[r]
    span = rs.scope_spans[0].spans[0]
    if where == "resource":
        held = rs.resource.attributes
    elif where == "scope":
        held = rs.scope_spans[0].scope.attributes
    elif where == "span":
        held = span.attributes
    elif where == "event":
        held = span.events.add(name="e").attributes
    elif where == "link":
        held = span.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8).attributes
    else:
        held = span.attributes.add(key="cfg").value.kvlist_value.values
    held.append(SPOOF)
    return list(held)


@pytest.mark.parametrize("policy", [Policy(), INERT], ids=["default", "inert"])
@pytest.mark.parametrize("where", ["resource", "scope", "event", "link"])
def test_a_spoofed_record_anywhere_else_is_reported_as_a_change(where: str, policy: Policy) -> None:
    """A sender's `wrm.redacted` goes wherever it is an attribute, and redact_request says so
    (else the request would be stored as received, record and all)."""
    req = _span_with()
    _plant_spoof(req, where)
    out, changed = redacted(req, {"": Redactor(effective(policy), KEY)}, always=False)
    assert changed is True and out != req
    assert REDACTED_ATTRIBUTE.encode() not in out.SerializeToString(), out


@pytest.mark.parametrize("policy", [Policy(), INERT], ids=["default", "inert"])
def test_a_record_key_inside_a_key_value_list_is_just_a_key(policy: Policy) -> None:
    """Inside a key-value list `wrm.redacted` is part of a value, not our record: kept as sent."""
    req = _span_with()
    held = _plant_spoof(req, "kvlist")
    out, changed = redacted(req, {"": Redactor(effective(policy), KEY)}, always=False)
    assert changed is False and out == req
    attrs = out.resource_spans[0].scope_spans[0].spans[0].attributes
    assert list(attrs[0].value.kvlist_value.values) == held == [SPOOF]


@pytest.mark.parametrize("where", ["span", "resource", "scope", "event", "link"])
def test_a_forged_record_goes_from_a_tenant_with_nothing_to_redact_in_a_mixed_request(where: str) -> None:
    """Tenant A redacts nothing (every detector off), tenant B has the defaults; one request
    carries both. A's forged `wrm.redacted` is removed as if A were alone in the request, and
    B's span is redacted and recorded."""
    req = ExportTraceServiceRequest()
    for tenant, note in (("a", "hello"), ("b", "key AKIAIOSFODNN7EXAMPLE")):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="wrm.tenant.id").value.string_value = tenant
        span = rs.scope_spans.add().spans.add(
            trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="step", start_time_unix_nano=1
        )
        span.attributes.add(key="note").value.string_value = note
    _plant_spoof(req, where, r=0)
    redactors = {"a": Redactor(effective(INERT), KEY, "a"), "b": Redactor(effective(), KEY, "b")}
    assert redactors["a"].inert and not redactors["b"].inert
    for always in (False, True):
        out, changed = redacted(req, redactors, always)
        a, b = (rs.scope_spans[0].spans[0] for rs in out.resource_spans)
        assert changed is True
        assert REDACTED_ATTRIBUTE.encode() not in out.resource_spans[0].SerializeToString(), out
        assert attribute_mapping(a.attributes) == {"note": "hello"}
        assert attribute_mapping(b.attributes) == {
            "note": "key [REDACTED:aws_key]",
            REDACTED_ATTRIBUTE: '{"aws_key":1}',
        }


# -- the library and the OTLP path agree ------------------------------------------------------


def _plain_mapping(value: AnyValue) -> bool:
    """Whether a value reads the same as a plain value: no bytes (OTLP keeps bytes as they are,
    as a plain value they are hex text), and key-value lists with distinct, non-empty keys."""
    kind = value.WhichOneof("value")
    if kind == "bytes_value":
        return False
    if kind == "array_value":
        return all(_plain_mapping(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _distinct_keys(list(value.kvlist_value.values))
    return True


def _distinct_keys(kvs: list[KeyValue]) -> bool:
    keys = [kv.key for kv in kvs]
    return (
        len(set(keys)) == len(keys)
        and not {"", REDACTED_ATTRIBUTE} & set(keys)
        and all(_plain_mapping(kv.value) for kv in kvs)
    )


library_attributes = key_values().filter(_distinct_keys)


@PROPERTY
@given(library_attributes, policies())
@example([KeyValue(key="prompt", value=AnyValue(string_value="ord-12345 and 4111 1111 1111 1111"))], ALL_ON)
def test_the_library_redacts_a_mapping_as_the_otlp_path_stores_it(kvs: list[KeyValue], p: Policy) -> None:
    """Attributes that read the same as a mapping (see _plain_mapping; empty keys have a test of
    their own in test_redaction_rules)."""
    redactor = Redactor(effective(p), KEY, "t0")
    req = _span_with(*kvs)
    out, _ = redacted(req, {"": redactor}, always=False)
    stored = dict(attribute_mapping(out.resource_spans[0].scope_spans[0].spans[0].attributes))
    record = json.loads(stored.pop(REDACTED_ATTRIBUTE, "{}"))
    tally: Counter[str] = Counter()
    assert redactor.mapping(attribute_mapping(kvs), tally) == stored
    assert dict(tally) == record
