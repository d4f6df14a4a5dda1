"""Property-based tests of the built-in detectors (issue 13, "Show"): generated card numbers and
keys of every shape are always caught; ordinary prose, UUIDs, trace and span ids, timestamps and
numbers never are; the detectors that are off by default catch their kind only when turned on."""

from __future__ import annotations

import base64
import json
import string
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from redaction import DETECTORS, Policy, Redactor, effective
from redaction.detectors import luhn_ok

DEFAULT = Redactor(effective(), b"k" * 32)
PROPERTY = settings(max_examples=200, deadline=None, database=None)
SMALL = settings(max_examples=80, deadline=None, database=None)  # the narrower properties

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
WORDS = (
    "the", "a", "customer", "asked", "about", "their", "refund", "order", "shipped", "today",
    "please", "check", "status", "of", "ticket", "agent", "replied", "with", "details", "and",
    "knowledge", "token", "tokens", "secret", "password", "key", "keys", "card",
    "number", "account", "Monday", "invoice", "was", "paid", "late", "we", "will", "call", "back",
    "API", "model", "prompt", "completion", "retrieval", "tool", "AWS", "Slack", "GitHub", "Google",
    "sk", "email", "phone", "bank", "IP", "address", "social", "security", "exp", "cvv", "Qty",
)  # fmt: skip
PUNCT = ("", "", "", ",", ".", "!", "?", ";")


def redact(text: str, redactor: Redactor = DEFAULT) -> tuple[str, Counter[str]]:
    tally: Counter[str] = Counter()
    return redactor.text(text, tally), tally


def chars(alphabet: str, min_size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size if max_size else min_size)


@st.composite
def prose(draw: st.DrawFn, min_words: int = 0, max_words: int = 12, words: tuple[str, ...] = WORDS) -> str:
    """Ordinary sentences: words, punctuation after some, and letters-only words of its own.
    (Around a secret without `bearer` and `basic`, which would make the secret a bearer token.)"""
    chosen = draw(
        st.lists(
            st.one_of(st.sampled_from(words), chars(string.ascii_letters, 1, 12)),
            min_size=min_words,
            max_size=max_words,
        )
    )
    return " ".join(w + draw(st.sampled_from(PUNCT)) for w in chosen)


def embedded(secret: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    """(text, secret): the secret with prose on either side (or alone)."""
    return st.tuples(prose(), secret, prose()).map(lambda t: (" ".join(part for part in t if part), t[1]))


def assert_caught(text: str, *needles: str, redactor: Redactor = DEFAULT) -> Counter[str]:
    out, tally = redact(text, redactor)
    for needle in needles:
        assert needle not in out, (text, out)
    assert tally, (text, out)
    return tally


def assert_untouched(text: str) -> None:
    out, tally = redact(text)
    assert out == text and not tally, (text, out, tally)


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


# -- keys, tokens and credentials ---------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jwts(draw: st.DrawFn) -> str:
    header = {"alg": draw(st.sampled_from(["HS256", "RS256", "ES256", "none"])), "typ": "JWT"}
    if draw(st.booleans()):
        header["kid"] = draw(chars(ALNUM, 1, 16))
    claims = draw(
        st.dictionaries(
            st.sampled_from(["sub", "iss", "aud", "name", "email", "scope"]),
            st.one_of(st.text(max_size=20), st.integers(0, 2**40)),
            min_size=1,
        )
    )
    signature = "" if header["alg"] == "none" else draw(chars(B64URL, 16, 86))
    return f"{encode_json(header)}.{encode_json(claims)}.{signature}"


def encode_json(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@st.composite
def bearer_tokens(draw: st.DrawFn) -> str:
    """A credential after `Bearer` / `Basic`: base64-ish, with at least one digit or symbol."""
    token = draw(chars(ALNUM + "._~+/-", 8, 64))
    mark = draw(st.sampled_from(string.digits + "._~+/-"))
    at = draw(st.integers(0, len(token)))
    return token[:at] + mark + token[at:] + draw(st.sampled_from(["", "=", "=="]))


@st.composite
def pem_keys(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(PEM block, its body lines); sometimes cut before its END line."""
    kind, tail = draw(
        st.sampled_from(
            [
                ("", ""),
                ("RSA ", ""),
                ("EC ", ""),
                ("DSA ", ""),
                ("OPENSSH ", ""),
                ("ENCRYPTED ", ""),
                ("PGP ", " BLOCK"),
            ]
        )
    )
    lines = draw(st.lists(chars(ALNUM + "+/", 16, 64), min_size=1, max_size=6))
    block = f"-----BEGIN {kind}PRIVATE KEY{tail}-----\n" + "\n".join(lines)
    if draw(st.booleans()):
        block += f"\n-----END {kind}PRIVATE KEY{tail}-----"
    return block, lines


CREDENTIAL_NAMES = (
    "password", "passwd", "passphrase", "secret", "token", "api_key", "api-key", "apikey",
    "access_key", "secret_key", "private_key", "client_secret", "credential", "credentials",
)  # fmt: skip


@st.composite
def cased(draw: st.DrawFn, words: st.SearchStrategy[str]) -> str:
    word = draw(words)
    return str(draw(st.sampled_from([word, word.upper(), word.title()])))


def camel(word: str) -> str:
    """api_key → ApiKey, client-secret → ClientSecret."""
    return "".join(part.title() for part in word.replace("-", "_").split("_"))


@st.composite
def credential_names(draw: st.DrawFn) -> str:
    """A credential's name as code writes it: alone, after a prefix and `_` (DB_PASSWORD,
    aws_secret_access_key, refresh_token, x_api_key), or in camelCase (dbPassword)."""
    word = draw(st.sampled_from(CREDENTIAL_NAMES))
    style = draw(st.sampled_from(["alone", "prefixed", "camel"]))
    if style == "camel":
        return str(draw(st.sampled_from(["db", "user", "aws", "client", "x1", "my"]))) + camel(word)
    name = draw(cased(st.just(word)))
    if style == "alone":
        return name
    prefix = draw(st.sampled_from(["db_", "DB_", "aws_secret_", "AWS_SECRET_", "x_", "refresh_", "app_db_"]))
    return prefix + name


@st.composite
def credentials_in_text(draw: st.DrawFn) -> tuple[str, str]:
    """(`name=value` in one of the shapes text carries it, value). Values end where the shapes
    end them: at whitespace, a quote, `,`, `;` or `&`."""
    name = draw(credential_names())
    value = draw(chars(ALNUM, 1, 1)) + draw(chars(ALNUM + "!@#$%^*()_+./~-[]{}<>|:=", 2, 40))
    shape = draw(
        st.sampled_from(
            ["{n}={v}", "{n}: {v}", "{n} = {v}", '"{n}": "{v}"', "'{n}': '{v}'", "{n}='{v}'", "?{n}={v}&x=1"]
        )
    )
    return shape.format(n=name, v=value), value


KEYS: dict[str, st.SearchStrategy[str]] = {
    "aws_key": st.tuples(st.sampled_from(["AKIA", "ASIA"]), chars(UPPER_DIGITS, 16)).map("".join),
    "sk_key": st.one_of(
        st.tuples(st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-"]), chars(B64URL, 20, 80)).map("".join),
        st.tuples(st.sampled_from(["sk_live_", "sk_test_", "rk_live_"]), chars(ALNUM, 16, 64)).map("".join),
    ),
    "github_token": st.one_of(
        st.tuples(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]), chars(ALNUM, 36)).map("".join),
        st.tuples(chars(ALNUM, 22), chars(ALNUM, 59)).map(lambda t: f"github_pat_{t[0]}_{t[1]}"),
    ),
    "slack_token": st.tuples(
        st.sampled_from(["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]),
        chars(string.digits, 10, 13),
        chars(string.digits, 10, 13),
        chars(ALNUM, 24),
    ).map(lambda t: f"{t[0]}{t[1]}-{t[2]}-{t[3]}"),
    "google_api_key": chars(B64URL, 35).map(lambda s: "AIza" + s),
    "jwt": jwts(),
}


@PROPERTY
@given(st.sampled_from(sorted(KEYS)).flatmap(lambda kind: st.tuples(st.just(kind), embedded(KEYS[kind]))))
def test_generated_api_keys_and_jwts_are_always_caught(case: tuple[str, tuple[str, str]]) -> None:
    kind, (text, key) = case
    tally = assert_caught(text, key)
    assert tally[kind] >= 1, (text, tally)


@PROPERTY
@given(embedded(KEYS["jwt"]))
def test_jwt_parts_do_not_survive(case: tuple[str, str]) -> None:
    text, token = case
    _header, payload, signature = token.split(".")
    assert_caught(text, payload, *([signature] if len(signature) >= 4 else []))


@PROPERTY
@given(
    st.sampled_from(["Authorization: Bearer {t}", "bearer {t}", "Basic {t}", "auth=Bearer {t};"]),
    st.one_of(bearer_tokens(), KEYS["jwt"]),
    prose(),
)
def test_generated_bearer_tokens_are_always_caught(shape: str, token: str, after: str) -> None:
    assert_caught(f"{shape.format(t=token)} {after}", token)


@st.composite
def basic_credentials(draw: st.DrawFn) -> str:
    """An HTTP Basic credential: base64 of user:password (with its padding or without)."""
    user = draw(chars(string.ascii_letters, 2, 12))
    password = draw(chars(ALNUM + "!$%*-_.", 4, 16))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return token if draw(st.booleans()) else token.rstrip("=")


@SMALL
@given(
    basic_credentials(),
    st.sampled_from(["Authorization: Basic {t}", "basic {t}", "auth=Basic {t};"]),
    prose(),
)
@example("dXNlcjpwYXNz", "Authorization: Basic {t}", "")  # user:pass — letters only, 12 long
@example("YWxpY2U6c2VjcmV0", "Basic {t}", "then")  # alice:secret
def test_generated_basic_credentials_are_always_caught(token: str, shape: str, after: str) -> None:
    """A Basic token is base64 of user:password: caught whatever its letters, so also one too
    short or too plain to pass for an opaque bearer token."""
    tally = assert_caught(f"{shape.format(t=token)} {after}".strip(), token)
    assert tally["bearer_token"] == 1


def test_basic_user_pass_is_caught() -> None:
    assert base64.b64decode("dXNlcjpwYXNz") == b"user:pass"
    assert redact("Basic dXNlcjpwYXNz") == ("[REDACTED:bearer_token]", Counter({"bearer_token": 1}))


def test_a_letters_only_token_after_authorization_bearer_is_caught() -> None:
    """An opaque token of letters only (~0.4 % of random 32-character base62 tokens have no digit)
    in an Authorization header written into text."""
    token = "kQzTfWbXnRpLmHvJcYsGdAeUiOoPqRtS"
    assert_caught(f"Authorization: Bearer {token}", token)


@PROPERTY
@given(st.tuples(prose(), pem_keys(), prose()))
def test_generated_pem_private_keys_are_always_caught(parts: tuple[str, tuple[str, list[str]], str]) -> None:
    before, (block, lines), after = parts
    text = f"{before}\n{block}\n{after}"
    tally = assert_caught(text, *lines)
    assert tally["private_key"] == 1


PGP_KEY = (
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"
    "Version: GnuPG v2\n"
    "\n"
    "lQOYBF0K8JcBCADJ3kT9mPq2rXhGv7Yc0oLwZsN4fQe1uD8bA5tRjHkMnV3yWxPi\n"
    "qE6sZ2dL9fGhJkLmN0pQrS3tUvWxYz1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7\n"
    "=x1Yz\n"
    "-----END PGP PRIVATE KEY BLOCK-----"
)


def test_a_pgp_private_key_block_is_masked_whole() -> None:
    """An armored PGP key: its header, body, checksum and both armor lines go as one."""
    assert redact(PGP_KEY) == ("[REDACTED:private_key]", Counter({"private_key": 1}))
    out, tally = redact(f"key:\n{PGP_KEY}\nimported ok")
    assert out == "key:\n[REDACTED:private_key]\nimported ok" and tally == Counter({"private_key": 1})


@PROPERTY
@given(st.tuples(prose(), credentials_in_text(), prose()))
def test_generated_credentials_written_in_text_are_always_caught(
    parts: tuple[str, tuple[str, str], str],
) -> None:
    before, (written, value), after = parts
    assert_caught(f"{before} {written} {after}", value)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("DB_PASSWORD=hunter2-prod", "hunter2-prod"),
        ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCYEXAMPLEKEY"),
        ("refresh_token=8xLOxBtZp8 then retry", "8xLOxBtZp8"),
        ("GET https://app.example.com/cb?state=x&access_token=ya29a0AfH6SMBx&code=1", "ya29a0AfH6SMBx"),
        ("db_password='s3cr3t pass phrase'", "pass phrase"),
        ("x_api_key: 0f3e9c2ab71d", "0f3e9c2ab71d"),
        ('{"dbPassword": "correct horse"}', "correct horse"),
        ('{"user": "ann", "accessToken": "opaqueValue"}', "opaqueValue"),
    ],
)
def test_credential_names_after_a_prefix_or_in_camel_case_are_caught_in_text(text: str, secret: str) -> None:
    """Environment dumps, config files, query strings and JSON name credentials with a prefix
    (DB_, aws_secret_, refresh_, x_) or in camelCase: the value goes, the name stays."""
    out, tally = redact(text)
    assert secret not in out and tally == Counter({"credential_in_text": 1}), (text, out, tally)
    assert "[REDACTED:credential_in_text]" in out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # the value after `Authorization:` is the scheme and the credential: only the scheme goes
        (
            "Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
            "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
        ),
        # a Cookie header's value is every cookie: only the first goes
        ("Cookie: theme=dark; session=abc123def456", "abc123def456"),
        # an upper-case prefix without a separator (libpq's PGPASSWORD, DBPassword)
        ("PGPASSWORD=s3cretpw psql -h db", "s3cretpw"),
    ],
)
def test_scheme_credentials_cookie_headers_and_glued_names_are_caught_in_text(text: str, secret: str) -> None:
    assert_caught(text, secret)


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 100",
        "gen_ai.usage.input_tokens=1200 output_tokens=80",
        '{"max_tokens": 256, "temperature": 0.2}',
        "tokenizer: cl100k_base",
        "secretary: Ann Lee",
        "passwordless: true",
        "password_reset_url=https://example.com/reset",
        "token_count: 5, token_type: bearer",
        "The password policy: twelve characters, one digit.",
        "userTokens: 12",
    ],
)
def test_words_that_only_contain_a_credential_name_are_left_alone(text: str) -> None:
    assert_untouched(text)


@SMALL
@given(
    credential_names(),
    st.sampled_from(["_count", "_type", "_url", "izer", "less", "_reset", "_length", "_ttl"]),
    st.sampled_from(["{n}: {v}", "{n}={v}", '"{n}": {v}', "{n} = {v}"]),
    st.integers(0, 10**6),
)
def test_a_name_that_goes_on_past_the_credential_word_is_no_credential(
    name: str, suffix: str, shape: str, value: int
) -> None:
    """max_tokens, token_count, password_reset: the credential word must end the name."""
    assert_untouched(shape.format(n=name + suffix, v=value))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"password": "correct horse battery staple"}', "horse battery staple"),
        ('{"password": "[Secr3t]!"}', "Secr3t"),
        ("password=p,ssw0rd;x", "ssw0rd"),
    ],
)
def test_a_quoted_credential_is_caught_whole(text: str, secret: str) -> None:
    """A passphrase in JSON (tool arguments) is its whole quoted string, spaces and all."""
    assert_caught(text, secret)


@st.composite
def credential_keys(draw: st.DrawFn) -> str:
    word = draw(
        st.sampled_from(
            [*CREDENTIAL_NAMES, "authorization", "cookie", "set-cookie", "set_cookie", "pwd_token"]
        )
    )
    prefix = draw(st.sampled_from(["", "db.", "http.request.header.", "app_", "x-", "AWS_", "user-", "a.b."]))
    return str(draw(st.sampled_from([prefix + word, (prefix + word).upper()])))


@PROPERTY
@given(
    credential_keys(),
    st.one_of(
        st.text(max_size=40), st.integers(), st.floats(allow_nan=False), st.lists(st.text(), max_size=3)
    ),
)
def test_generated_credential_attribute_keys_mask_the_whole_value(key: str, value: Any) -> None:
    tally: Counter[str] = Counter()
    assert DEFAULT.value(key, value, tally) == "[REDACTED:credential_key]"
    assert tally == Counter({"credential_key": 1})


@pytest.mark.parametrize("key", ["dbPassword", "accessToken", "authToken", "userPassword", "refreshToken"])
def test_camel_case_credential_keys_mask_the_whole_value(key: str) -> None:
    """JavaScript and Java instrumentation name attributes in camelCase."""
    assert DEFAULT.value(key, "hunter2-value") == "[REDACTED:credential_key]"


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens", "llm.token_count.prompt", "max_tokens", "tokenizer", "secretary",
        "password_reset_url", "cookie_consent", "token_type", "keyboard", "api.version", "http.method",
    ],
)  # fmt: skip
def test_ordinary_attribute_keys_are_not_credentials(key: str) -> None:
    assert DEFAULT.value(key, "plain value") == "plain value"


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
