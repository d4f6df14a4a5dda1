"""Rules and actions, unit by unit: mask, hash, truncate and drop on key rules and pattern rules,
keys with a pattern, nested key-value lists and arrays, span and event names and status messages,
what a span records in `wrm.redacted`, how policies layer (global, then tenant), what a policy
refuses, and `hash` keyed per tenant."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from receiver.redact import IngestRedaction
from receiver.screen import screen_request
from redaction import Policy, PolicyBook, PolicyError, Redactor, Rule, effective
from redaction.book import tenant_hash_key
from redaction.otlp import REDACTED_ATTRIBUTE, attribute_mapping, redact_request
from redaction.redactor import Rules

SECRET = b"0123456789abcdef0123456789abcdef"
AWS = "AKIAIOSFODNN7EXAMPLE"
CARD = "4111 1111 1111 1111"


def redactor(*policies: Policy | None, tenant: str = "acme") -> Redactor:
    return Redactor(effective(*policies), tenant_hash_key(SECRET, tenant), tenant)


def rules(*given: Rule, **detectors: Any) -> Policy:
    return Policy(rules=list(given), detectors=detectors)


def digest(tenant: str, text: str) -> str:
    return hmac.new(tenant_hash_key(SECRET, tenant), text.encode(), hashlib.sha256).hexdigest()


# -- key rules ------------------------------------------------------------------------------


def test_a_key_rule_masks_the_whole_value_of_every_key_its_globs_match() -> None:
    r = redactor(rules(Rule(name="customer", keys=["customer.*", "user.?d", "[a-c]cct"])))
    tally: Counter[str] = Counter()
    out = r.mapping(
        {
            "customer.name": "Ann Lee",
            "Customer.Email": "a@b.io",
            "user.id": "u-1",
            "bcct": "x",
            "other": "keep",
        },
        tally,
    )
    assert out == {
        "customer.name": "[REDACTED:customer]",
        "Customer.Email": "[REDACTED:customer]",  # globs match keys whatever their case
        "user.id": "[REDACTED:customer]",
        "bcct": "[REDACTED:customer]",
        "other": "keep",
    }
    assert tally == Counter({"customer": 4})


def test_a_key_rule_hashes_with_the_tenants_key() -> None:
    r = redactor(rules(Rule(name="cust", keys=["customer.id"], action="hash")))
    assert r.value("customer.id", "c-42") == f"[HASH:cust:{digest('acme', 'c-42')}]"
    # a value that is not a string is hashed as its JSON
    rendered = json.dumps([1, "a"], separators=(",", ":"))
    assert r.value("customer.id", [1, "a"]) == f"[HASH:cust:{digest('acme', rendered)}]"
    assert r.value("customer.id", 42) == f"[HASH:cust:{digest('acme', '42')}]"


def test_a_key_rule_truncates_to_keep_characters_and_counts_only_a_cut() -> None:
    r = redactor(rules(Rule(name="short", keys=["prompt"], action="truncate", keep=5)))
    tally: Counter[str] = Counter()
    assert r.value("prompt", "abcdefgh", tally) == "abcde"
    assert r.value("prompt", "abc", tally) == "abc"
    assert tally == Counter({"short": 1})


def test_what_a_truncating_key_rule_keeps_still_meets_the_value_rules() -> None:
    r = redactor(rules(Rule(name="short", keys=["prompt"], action="truncate", keep=32)))
    tally: Counter[str] = Counter()
    out = r.value("prompt", f"use {AWS} for the upload and then more text", tally)
    assert out == "use [REDACTED:aws_key] for the"  # the first 32 characters, then the detectors
    assert tally == Counter({"short": 1, "aws_key": 1})


def test_a_key_rule_drops_the_attribute() -> None:
    r = redactor(rules(Rule(name="gone", keys=["debug.*"], action="drop")))
    tally: Counter[str] = Counter()
    assert r.mapping({"debug.dump": "x", "debug.n": 3, "kept": "y"}, tally) == {"kept": "y"}
    assert tally == Counter({"gone": 2})


def test_the_first_key_rule_that_matches_decides() -> None:
    first = Rule(name="first", keys=["db.*"], action="truncate", keep=2)
    second = Rule(name="second", keys=["db.password"], action="drop")
    r = redactor(rules(first, second))
    assert r.value("db.password", "hunter2") == "hu"  # an operator's rule goes before credential_key
    assert redactor().value("db.password", "hunter2") == "[REDACTED:credential_key]"


def test_keys_with_a_pattern_seek_the_pattern_only_in_those_keys() -> None:
    r = redactor(rules(Rule(name="ticket", keys=["note*"], pattern="T-[0-9]{4}", action="mask")))
    out = r.mapping({"note": "see T-1234 and T-9", "notes.x": ["T-0001"], "other": "T-1234"})
    assert out == {
        "note": "see [REDACTED:ticket] and T-9",
        "notes.x": ["[REDACTED:ticket]"],
        "other": "T-1234",
    }


# -- pattern rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "text", "attribute"),
    [
        ("mask", "a [REDACTED:order] b [REDACTED:order]", "a [REDACTED:order] b [REDACTED:order]"),
        ("truncate", "a ord- b ord-", "a ord- b ord-"),
        ("drop", "[REDACTED:order]", None),
    ],
)
def test_a_pattern_rule_acts_on_every_match(action: str, text: str, attribute: str | None) -> None:
    r = redactor(rules(Rule(name="order", pattern="ord-[0-9]+", action=action, keep=4)))  # type: ignore[arg-type]
    tally: Counter[str] = Counter()
    assert r.text("a ord-123 b ord-4567", tally) == text
    assert tally == Counter({"order": 1 if action == "drop" else 2})
    out = r.mapping({"note": "a ord-123 b ord-4567", "kept": "nothing here"})
    assert out == ({"note": attribute} if attribute else {}) | {"kept": "nothing here"}


def test_a_hashing_pattern_rule_hashes_each_match() -> None:
    r = redactor(rules(Rule(name="order", pattern="ord-[0-9]+", action="hash")))
    assert r.text("a ord-1 b ord-1 c ord-2") == (
        f"a [HASH:order:{digest('acme', 'ord-1')}] b [HASH:order:{digest('acme', 'ord-1')}] "
        f"c [HASH:order:{digest('acme', 'ord-2')}]"
    )


def test_detectors_take_every_action_and_keep() -> None:
    base = {"prompt": f"key {AWS} card {CARD}"}
    assert redactor(rules(aws_key="drop")).mapping(base) == {}
    assert redactor(rules(aws_key="hash")).mapping(base) == {
        "prompt": f"key [HASH:aws_key:{digest('acme', AWS)}] card [REDACTED:card_number]"
    }
    truncated = Policy(detectors={"aws_key": "truncate", "card_number": "truncate"}, keep=6)
    assert redactor(truncated).mapping(base) == {"prompt": "key AKIAIO card 4111 1"}
    assert redactor(rules(aws_key="off", card_number="off")).mapping(base) == base


def test_nested_key_value_lists_and_arrays() -> None:
    r = redactor(rules(Rule(name="order", pattern="ord-[0-9]+", action="drop")))
    tally: Counter[str] = Counter()
    out = r.mapping(
        {
            "config": {"db": {"password": "pw", "host": "h"}, "tags": ["a", AWS], "n": 3, "order": "ord-1"},
            "list": ["ok", CARD, 7, True, None],
            "orders": ["x", "ord-9"],  # a drop in an array drops the attribute: an array cannot keep a hole
        },
        tally,
    )
    assert out == {
        "config": {
            "db": {"password": "[REDACTED:credential_key]", "host": "h"},
            "tags": ["a", "[REDACTED:aws_key]"],
            "n": 3,
        },
        "list": ["ok", "[REDACTED:card_number]", 7, True, None],
    }
    assert tally == Counter({"credential_key": 1, "aws_key": 1, "card_number": 1, "order": 2})


def test_an_attribute_with_an_empty_key_is_redacted() -> None:
    """OTLP does not forbid an empty key; its value is redacted like any other."""
    req = request(
        span(
            KeyValue(key="", value=AnyValue(string_value=f"key {AWS}")),
            KeyValue(key="cfg", value=kvlist(("", AnyValue(string_value=CARD)))),
        )
    )
    redact_request(req, req.SerializeToString(), lambda rs: redactor())
    attrs = attribute_mapping(req.resource_spans[0].scope_spans[0].spans[0].attributes)
    assert attrs[""] == "key [REDACTED:aws_key]"
    assert attrs["cfg"] == {"": "[REDACTED:card_number]"}


# -- spans ---------------------------------------------------------------------------------


def span(*attributes: KeyValue, name: str = "step", **fields: Any) -> Span:
    s = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=name, start_time_unix_nano=1, **fields)
    s.attributes.extend(attributes)
    return s


def kv(key: str, text: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=text))


def kvlist(*pairs: tuple[str, AnyValue]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs]))


def request(
    *spans: Span, resource: tuple[KeyValue, ...] = (), scope: tuple[KeyValue, ...] = ()
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(resource)
    ss = rs.scope_spans.add()
    ss.scope.attributes.extend(scope)
    ss.spans.extend(spans)
    return req


def redact(req: ExportTraceServiceRequest, r: Redactor) -> tuple[bool, list[Span]]:
    changed = redact_request(req, req.SerializeToString(), lambda rs: r)
    return changed, list(req.resource_spans[0].scope_spans[0].spans)


def record(s: Span) -> dict[str, int] | None:
    found = dict(attribute_mapping(s.attributes)).get(REDACTED_ATTRIBUTE)
    return None if found is None else dict(json.loads(found))


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


# -- policies -------------------------------------------------------------------------------


def test_policies_layer_defaults_then_global_then_tenant() -> None:
    global_ = Policy(
        detectors={"email": "mask", "card_number": "hash"},
        rules=[Rule(name="order", pattern="ord-[0-9]+"), Rule(name="cust", keys=["customer.*"])],
        keep=6,
    )
    tenant = Policy(
        detectors={"card_number": "off", "phone": "mask"}, rules=[Rule(name="order", pattern="ORD[0-9]+")]
    )
    layered = effective(global_, tenant)
    assert layered.detectors["email"] == "mask" and layered.detectors["phone"] == "mask"
    assert layered.detectors["card_number"] == "off" and layered.detectors["aws_key"] == "mask"
    assert layered.detectors["iban"] == "off" and layered.keep == 6
    # same name: the tenant's rule replaces the global one, and goes after the others
    assert [(r.name, r.pattern) for r in layered.rules] == [("cust", None), ("order", "ORD[0-9]+")]
    r = Redactor(layered, SECRET)
    assert (
        r.text(f"ord-1 ORD2 {CARD} a@b.io") == "ord-1 [REDACTED:order] 4111 1111 1111 1111 [REDACTED:email]"
    )


def test_the_book_gives_each_tenant_its_layers_and_turns_detectors_off_per_tenant() -> None:
    book = PolicyBook(
        Policy(detectors={"email": "mask"}),
        {"quiet": Policy(detectors={"card_number": "off", "email": "off"})},
        SECRET,
    )
    text = f"{CARD} a@b.io"
    assert book.redactor("quiet").text(text) == text
    assert book.redactor("other").text(text) == "[REDACTED:card_number] [REDACTED:email]"
    assert (book.policy("quiet").source, book.policy("other").source) == ("settings", "global")


def test_hash_digests_are_equal_within_a_tenant_and_differ_across_tenants() -> None:
    policy = rules(Rule(name="cust", keys=["customer.id"], action="hash"))
    book = PolicyBook(policy, {}, SECRET)
    a1, a2, b = (book.redactor(t).value("customer.id", "c-1") for t in ("a", "a", "b"))
    assert a1 == a2 == f"[HASH:cust:{digest('a', 'c-1')}]"
    assert b == f"[HASH:cust:{digest('b', 'c-1')}]" != a1
    assert book.redactor("a").value("customer.id", "c-2") != a1
    other_secret = PolicyBook(policy, {}, b"f" * 32)
    assert other_secret.redactor("a").value("customer.id", "c-1") != a1
    assert tenant_hash_key(SECRET, "a") != tenant_hash_key(SECRET, "b")


def test_the_library_reads_the_same_settings_file_as_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WRM_REDACTION", "WRM_TENANT_REDACTION", "WRM_REDACTION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "wrm.toml"
    body = (
        '[redaction]\ndetectors = { email = "mask" }\n'
        '[[redaction.rules]]\nname = "cust"\nkeys = ["customer.id"]\naction = "hash"\n'
        '[tenant_redaction.quiet]\ndetectors = { email = "off" }\n'
    )
    config.write_text(body)
    with pytest.raises(PolicyError, match="redaction_secret"):
        Redactor.for_tenant("a", config_file=str(config))
    config.write_text(f'redaction_secret = "{SECRET.decode()}"\n' + body)
    book = PolicyBook(
        Policy(detectors={"email": "mask"}, rules=[Rule(name="cust", keys=["customer.id"], action="hash")]),
        {"quiet": Policy(detectors={"email": "off"})},
        SECRET,
    )
    data = {"customer.id": "c-1", "note": "mail a@b.io", "k": AWS}
    for tenant in ("a", "quiet"):
        assert Redactor.for_tenant(tenant, config_file=str(config)).redact(data) == book.redactor(
            tenant
        ).redact(data)
    assert Redactor.for_tenant("quiet", config_file=str(config)).redact(data)["note"] == "mail a@b.io"


# -- what a policy refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"rules": [{"name": "r", "pattern": "(unclosed"}]}, "not an RE2 pattern"),
        ({"rules": [{"name": "r", "pattern": "(?<=a)b"}]}, "not an RE2 pattern"),  # lookbehind: not RE2
        ({"rules": [{"name": "r", "pattern": "(a)\\1"}]}, "not an RE2 pattern"),  # backreference
        ({"rules": [{"name": "r", "pattern": "a*"}]}, "matches the empty string"),
        ({"rules": [{"name": "r", "pattern": "x|"}]}, "matches the empty string"),
        ({"rules": [{"name": "r", "pattern": ""}]}, "is empty"),
        ({"detectors": {"ssn": "mask"}}, "not a built-in detector"),
        ({"detectors": {"email": "scramble"}}, "email"),
        ({"rules": [{"name": "r", "pattern": "a"}, {"name": "r", "keys": ["b"]}]}, "used twice"),
        ({"rules": [{"name": "r"}]}, "neither `keys` nor `pattern`"),
        ({"rules": [{"name": "email", "pattern": "x"}]}, "built-in detector"),
        ({"rules": [{"name": "Bad Name", "pattern": "x"}]}, "name"),
        ({"rules": [{"name": "r", "keys": ["a b"]}]}, "not a key glob"),
        ({"rules": [{"name": "r", "pattern": "x", "action": "encrypt"}]}, "action"),
        ({"rules": [{"name": "r", "pattern": "x", "keep": -1}]}, "keep"),
        ({"rules": [{"name": "r", "pattern": "x", "when": "always"}]}, "when"),
        ({"detectors": {}, "extra": 1}, "extra"),
    ],
)
def test_a_policy_that_cannot_apply_is_refused_with_its_reason(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate(policy)


@pytest.mark.parametrize("glob", ["a[]b", "[!]x", "[z-a]", "x[", "a]b", "[!a]*", "*.[ch]"])
def test_a_key_glob_is_refused_before_ingest_or_applies(glob: str) -> None:
    """A glob that passed validation and then failed to compile at ingest would fail every
    export of the tenant: the policy is refused when it is read or set, or it applies."""
    try:
        policy = Policy.model_validate({"rules": [{"name": "g", "keys": [glob]}]})
    except ValidationError:
        return
    try:
        Rules(effective(policy))
    except PolicyError:
        with pytest.raises(PolicyError):
            PolicyBook(policy, {}, SECRET)  # as the global policy: start-up stops
        with pytest.raises(PolicyError):
            PolicyBook(Policy(), {"t": policy}, SECRET)  # as a tenant's
        return
    PolicyBook(policy, {}, SECRET).redactor("t").mapping({"a": "b"})


# -- review fixes: keys with a newline, key rules with a pattern, schema URLs, bytes, tenant id --


def test_a_key_with_a_newline_in_it_is_still_one_key() -> None:
    """OTLP keys are any text: a newline must not hide a credential name from credential_key or
    from a glob (RE2's `.` stops at a newline unless told otherwise)."""
    glob = redactor(rules(Rule(name="pw", keys=["*password*"])))
    assert redactor().value("db\npassword", "hunter2") == "[REDACTED:credential_key]"
    assert redactor().value("db\npassword", 1234) == "[REDACTED:credential_key]"
    assert glob.value("db\npassword", "hunter2") == "[REDACTED:pw]"
    assert glob.value("old\npassword\nhash", "hunter2") == "[REDACTED:pw]"
    assert glob.mapping({"cfg": {"db\npassword": "hunter2"}}) == {"cfg": {"db\npassword": "[REDACTED:pw]"}}
    for r, rule in ((redactor(), "credential_key"), (glob, "pw")):
        changed, (out,) = redact(request(span(kv("db\npassword", "hunter2"), kv("a", "b"))), r)
        assert changed and attribute_mapping(out.attributes)["db\npassword"] == f"[REDACTED:{rule}]"
        assert record(out) == {rule: 1}


def test_an_operator_rule_with_a_pattern_on_every_key_leaves_credential_key_on() -> None:
    """A key rule with a pattern only looks inside values: the key rules after it (here the
    built-in credential_key) still take the whole value of the keys they match."""
    policy = Policy.model_validate({"rules": [{"name": "ord", "keys": ["*"], "pattern": "ord-[0-9]+"}]})
    r = redactor(policy)
    tally: Counter[str] = Counter()
    given = {
        "db.password": "hunter2",
        "http.request.header.authorization": "opaque",
        "api_key": "ord-77 and more",
        "note": "see ord-123 now",
        "plain": "nothing",
    }
    assert r.mapping(given, tally) == {
        "db.password": "[REDACTED:credential_key]",
        "http.request.header.authorization": "[REDACTED:credential_key]",
        "api_key": "[REDACTED:credential_key]",
        "note": "see [REDACTED:ord] now",
        "plain": "nothing",
    }
    assert tally == Counter({"credential_key": 3, "ord": 1})
    changed, (out,) = redact(request(span(*(kv(k, v) for k, v in given.items()))), r)
    assert changed and record(out) == dict(tally)
    stored = dict(attribute_mapping(out.attributes))
    del stored[REDACTED_ATTRIBUTE]
    assert stored == r.mapping(given)


def test_a_truncating_key_rule_after_a_pattern_rule_on_the_same_key_applies_both() -> None:
    r = redactor(
        rules(
            Rule(name="ord", keys=["*"], pattern="ord-[0-9]+"),
            Rule(name="short", keys=["prompt"], action="truncate", keep=22),
        )
    )
    tally: Counter[str] = Counter()
    assert r.value("prompt", "about ord-123 and then a long tail", tally) == "about [REDACTED:ord] a"
    assert tally == Counter({"ord": 1, "short": 1})


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
