"""Rules and actions, unit by unit: mask, hash, truncate and drop on key rules and pattern rules
(and on the built-in detectors), keys with a pattern, nested key-value lists and arrays, an empty
key, a key with a newline, and key rules with a pattern before credential_key or a truncating
rule. Spans and requests: test_redaction_rules_otlp; policies: test_redaction_rules_policies;
shared helpers: tests/redaction_data.py."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from redaction import Policy, Rule
from redaction.otlp import REDACTED_ATTRIBUTE, attribute_mapping, redact_request
from tests.redaction_data import AWS, CARD, digest, kv, kvlist, record, redactor, request, rules, span
from tests.redaction_data import redact_spans as redact

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


# -- keys with a newline, key rules with a pattern ------------------------------------------


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
