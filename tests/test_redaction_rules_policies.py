"""Policies: how they layer (defaults, then global, then tenant), the book's redactor per tenant,
`hash` keyed per tenant, the library reading the server's settings file, and what a policy refuses
(patterns, names, actions, key globs). Shared helpers: tests/redaction_data.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from redaction import Policy, PolicyBook, PolicyError, Redactor, Rule, effective
from redaction.book import tenant_hash_key
from redaction.redactor import Rules
from tests.redaction_data import AWS, CARD, SECRET, digest, rules

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
