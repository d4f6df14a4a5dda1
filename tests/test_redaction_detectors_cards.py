"""Property-based tests of the built-in detectors (issue 13, "Show"): payment cards and what
must never be caught. Generated card numbers are always caught (printed plain or grouped, next to
other numbers, in CSV rows and JSON arrays); decimals and numbers failing Luhn or the issuer digit
are not cards; ordinary prose, UUIDs, trace and span ids, timestamps, integers and floats are left
alone. Keys and credentials: test_redaction_detectors; shared generators: tests/redaction_data.py."""

from __future__ import annotations

import json
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from redaction.detectors import luhn_ok
from tests.redaction_data import PROPERTY, WORDS, assert_caught, assert_untouched, chars, prose
from tests.redaction_data import redact_text as redact

# -- payment cards ------------------------------------------------------------------------


def luhn_complete(body: str) -> str:
    """`body` and the check digit that makes the whole Luhn-valid."""
    for check in string.digits:
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.sampled_from("23456")) + draw(chars(string.digits, length - 2))
    return luhn_complete(body)


@st.composite
def printed_cards(draw: st.DrawFn) -> tuple[str, str]:
    """(as printed, digits): plain, or in groups of four joined by spaces or dashes."""
    digits = draw(card_numbers())
    style = draw(st.sampled_from(["plain", " ", "-"]))
    if style == "plain":
        return digits, digits
    return style.join(digits[i : i + 4] for i in range(0, len(digits), 4)), digits


@PROPERTY
@given(
    st.tuples(prose(), printed_cards(), prose()),
    st.sampled_from(["", ":", "#", "(", "card ", "1,", "[", "[12,", "id,card\n1,"]),  # CSV, JSON arrays
    st.sampled_from(["", ",", ",12", "]", ",5500000000000004]", ";"]),
)
@example(("", ("4111111111111111", "4111111111111111"), ""), "1,", ",12")
def test_generated_card_numbers_are_always_caught(
    parts: tuple[str, tuple[str, str], str], lead: str, trail: str
) -> None:
    """Also in a CSV row or a JSON array, where a comma beside the number is no decimal point."""
    before, (card, digits), after = parts
    text = f"{before} {lead}{card}{trail} {after}".strip()
    assert_caught(text, card, digits)
    assert_caught(card, card)
    assert redact(card)[0] == "[REDACTED:card_number]"


@pytest.mark.parametrize(
    "text",
    [
        "card 4111111111111111 12/25 cvv 123",  # the expiry right after the number
        "pay with 4111111111111111 123",  # the CVV right after it
        "Qty 2 4111111111111111 thanks",  # a quantity right before it
        "4111-1111-1111-1111 2026",
    ],
)
def test_a_card_number_next_to_another_number_is_caught(text: str) -> None:
    assert_caught(text, "4111111111111111", "4111-1111-1111-1111")


@pytest.mark.parametrize(
    "text",
    [
        "id,card\n1,4111111111111111",  # a CSV row
        "4111111111111111,12",  # a CSV row: the card, then the month
        "[4111111111111111,5500000000000004]",  # a JSON array
        '{"cards": [5500000000000004, 4111111111111111]}',
    ],
)
def test_card_numbers_in_csv_rows_and_json_arrays_are_caught(text: str) -> None:
    """A comma next to a card number is a separator, not a decimal point: every card goes."""
    tally = assert_caught(text, "4111111111111111", "5500000000000004")
    assert tally["card_number"] == text.count("4111111111111111") + text.count("5500000000000004")


@pytest.mark.parametrize(
    "text",
    [
        "0.4111111111111111",
        "2528987614412630.0",
        "score 0.4111111111111111 and 2528987614412630.0",
        "1.4111111111111111,2",
    ],
)
def test_decimal_numbers_with_card_like_digits_are_left_alone(text: str) -> None:
    assert luhn_ok("2528987614412630") and luhn_ok("4111111111111111")  # Luhn-valid, issuer 2 and 4
    assert_untouched(text)


@PROPERTY
@given(card_numbers())
def test_a_card_number_failing_luhn_or_issuer_is_not_a_card(digits: str) -> None:
    wrong_check = digits[:-1] + str((int(digits[-1]) + 5) % 10)
    assert not luhn_ok(wrong_check)
    assert_untouched(f"ref {wrong_check} ok")
    assert_untouched(f"ref {'1' + digits[1:]} ok")  # issuer digit 1 (and 7-9): never a card


# -- no false positives -------------------------------------------------------------------


@PROPERTY
@given(prose(min_words=1, max_words=40, words=(*WORDS, "bearer", "Bearer", "basic", "Basic")))
@example("The bearer of this letter has basic knowledge of the secret recipe and the password policy.")
@example("Tokens used: 1200 prompt, 350 completion; the key point is the card number format.")
def test_ordinary_prose_is_left_alone(text: str) -> None:
    assert_untouched(text)


def spelled_uuid(value: uuid.UUID, style: str) -> str:
    text = str(value)
    return {"lower": text, "upper": text.upper(), "hex": value.hex, "braced": "{" + text + "}"}[style]


@PROPERTY
@given(st.uuids(), st.sampled_from(["lower", "upper", "hex", "braced"]), prose())
@example(uuid.UUID("e7ef2405-5162-4142-891f-da4c6c19be51"), "lower", "request")
@example(uuid.UUID("53758847-0178-4889-a18b-b658d3e56c83"), "lower", "request")  # 8-4-4 digits: 16
def test_uuids_are_left_alone(value: uuid.UUID, style: str, before: str) -> None:
    assert_untouched(f"{before} id={spelled_uuid(value, style)} done")


@PROPERTY
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8))
@example(bytes.fromhex("ab80c1448a391793783572651c401f6d"), bytes.fromhex("0123456789abcdef"))
@example(bytes.fromhex("4111111111111111" + "a" * 16), bytes.fromhex("0123456789abcdef"))
def test_trace_and_span_ids_are_left_alone(trace: bytes, span: bytes) -> None:
    t, s = trace.hex(), span.hex()
    assert_untouched(f"trace_id={t} span_id={s}")
    assert_untouched(f"traceparent: 00-{t}-{s}-01")
    assert_untouched(f"{t.upper()} {s.upper()}")


WHEN = st.datetimes(datetime(2000, 1, 1), datetime(2032, 12, 31, 23, 59, 59))


@PROPERTY
@given(
    WHEN,
    st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
    st.integers(0, 999_999_999),
    st.sampled_from(["T", " "]),
)
def test_rfc3339_timestamps_are_left_alone(when: datetime, tz: timezone, nanos: int, sep: str) -> None:
    moment = when.replace(tzinfo=tz)
    offset = moment.strftime("%z")
    zone = "Z" if tz is UTC else f"{offset[:3]}:{offset[3:]}"
    base = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    for fraction in ("", f".{nanos // 1_000_000:03d}", f".{nanos // 1000:06d}", f".{nanos:09d}"):
        assert_untouched(f"at {base}{fraction}{zone} the step started")
    assert_untouched(f"at {moment.isoformat()} the step started")


@PROPERTY
@given(WHEN, st.integers(0, 999_999_999))
def test_epoch_timestamps_are_left_alone(when: datetime, nanos: int) -> None:
    seconds = int(when.replace(tzinfo=UTC).timestamp())
    ns = seconds * 1_000_000_000 + nanos
    for stamp in (seconds, ns // 1_000_000, ns // 1000, ns):
        assert_untouched(f"ts={stamp} took {stamp % 997} ms")
        assert_untouched(f"{stamp}")
    assert_untouched(f"started {seconds}.{nanos:09d}")


@PROPERTY
@given(st.lists(st.integers(-(10**12) + 1, 10**12 - 1), min_size=1, max_size=8), prose(min_words=1))
def test_integers_below_a_trillion_are_left_alone(numbers: list[int], words: str) -> None:
    assert_untouched(" and ".join(f"{words} was {n}" for n in numbers))
    assert_untouched(", ".join(str(n) for n in numbers))


@PROPERTY
@given(st.floats(allow_nan=False, allow_infinity=False), prose())
@example(0.4111111111111111, "score")
@example(1.4111111111111111e-05, "loss")
def test_floats_are_left_alone(number: float, words: str) -> None:
    assert_untouched(f"{words} was {number!r} {words}".strip())
    assert_untouched(f"{number}")
    assert_untouched(json.dumps({"score": number}))
