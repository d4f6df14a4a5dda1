"""Property-based tests of the built-in detectors (issue 13, "Show"): the five that are off by
default (email, phone, IBAN, IP address, US SSN) catch their kind only when a policy turns them on,
and a later policy can turn them off again. Shared generators: tests/redaction_data.py."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redaction import DETECTORS, Policy, Redactor, effective
from tests.redaction_data import ALNUM, PROPERTY, UPPER_DIGITS, assert_caught, chars, embedded
from tests.redaction_data import redact_text as redact

# -- the detectors that are off until a policy turns them on ----------------------------------


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(chars(ALNUM, 1, 1)) + draw(chars(ALNUM + "._%+-", 0, 20))
    labels = draw(st.lists(chars(ALNUM, 1, 12), min_size=1, max_size=3))
    return f"{local}@{'.'.join(labels)}.{draw(chars(string.ascii_lowercase, 2, 6))}"


@st.composite
def phones(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["intl", "paren", "dashed", "dotted"]))

    def d(n: int) -> str:
        return draw(chars(string.digits, n))

    if shape == "paren":
        return f"({d(3)}) {d(3)}-{d(4)}"
    if shape in ("dashed", "dotted"):
        sep = "-" if shape == "dashed" else "."
        return f"{d(3)}{sep}{d(3)}{sep}{d(4)}"
    country = draw(st.sampled_from(["1", "44", "33", "49", "353", "91"]))
    groups = [d(draw(st.integers(2, 4))) for _ in range(draw(st.integers(2, 3)))]
    sep = draw(st.sampled_from([" ", "-", "."]))
    return f"+{country} {d(draw(st.integers(1, 3)))}{sep}{sep.join(groups)}"


# country → the BBAN's parts: (alphabet, length)
IBAN_SHAPES: dict[str, list[tuple[str, int]]] = {
    "DE": [(string.digits, 18)],
    "GB": [(string.ascii_uppercase, 4), (string.digits, 14)],
    "FR": [(string.digits, 10), (UPPER_DIGITS, 11), (string.digits, 2)],
    "NL": [(string.ascii_uppercase, 4), (string.digits, 10)],
    "ES": [(string.digits, 20)],
    "IT": [(string.ascii_uppercase, 1), (string.digits, 10), (UPPER_DIGITS, 12)],
}


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_SHAPES)))
    bban = "".join(draw(chars(alphabet, n)) for alphabet, n in IBAN_SHAPES[country])
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in moved)) % 97
    compact = f"{country}{check:02d}{bban}"
    if draw(st.booleans()):
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


@st.composite
def ip_addresses(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return ".".join(str(draw(st.integers(0, 255))) for _ in range(4))
    groups = [draw(chars("0123456789abcdef", 1, 4)) for _ in range(8)]
    if draw(st.booleans()):
        return ":".join(groups)
    cut = draw(st.integers(1, 6))
    return ":".join(groups[:cut]) + "::" + ":".join(groups[cut + 1 :][: 6 - cut] or ["1"])


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda n: n != 666))
    return f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"


OFF_BY_DEFAULT: dict[str, Callable[[], st.SearchStrategy[str]]] = {
    "email": emails,
    "phone": phones,
    "iban": ibans,
    "ip_address": ip_addresses,
    "us_ssn": ssns,
}


# kind → (a redactor with it on, one where a later policy turns it off again)
SWITCHED = {
    kind: (
        Redactor(effective(Policy(detectors={kind: "mask"})), b"k" * 32),
        Redactor(effective(Policy(detectors={kind: "mask"}), Policy(detectors={kind: "off"})), b"k" * 32),
    )
    for kind in OFF_BY_DEFAULT
}


@pytest.mark.parametrize(
    "text", ["ES91 2100 0418 4502 0005 1332 EUR", "pay ES9121000418450200051332 EUR 100"]
)
def test_an_iban_followed_by_a_currency_code_is_caught(text: str) -> None:
    assert_caught(text, "ES91", redactor=SWITCHED["iban"][0])


def test_the_off_by_default_detectors_are_the_issues_five() -> None:
    assert {d.name for d in DETECTORS if not d.default_on} == set(OFF_BY_DEFAULT)


@PROPERTY
@given(
    st.sampled_from(sorted(OFF_BY_DEFAULT)).flatmap(
        lambda kind: st.tuples(st.just(kind), embedded(OFF_BY_DEFAULT[kind]()))
    )
)
def test_off_by_default_detectors_catch_their_kind_only_when_on(case: tuple[str, tuple[str, str]]) -> None:
    kind, (text, value) = case
    out, tally = redact(text)  # the default policy
    assert kind not in tally and (out == text or tally["card_number"]), (text, out, tally)
    on, off = SWITCHED[kind]
    tally = assert_caught(text, value, redactor=on)
    # digits of a phone number or an IBAN can also pass for a card number, which goes first
    assert tally[kind] >= 1 or tally["card_number"] >= 1, (text, tally)
    assert redact(text, off) == redact(text)
