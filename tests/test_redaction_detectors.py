"""Property-based tests of the built-in detectors (issue 13, "Show"): keys, tokens and
credentials. Generated API keys, JWTs, bearer and Basic tokens, PEM and PGP private keys, and
credentials written in text (prefixed, camelCase, quoted) are always caught, and so is the value of
an attribute whose key names a credential; names that only contain a credential word never are.
Cards and numbers: test_redaction_detectors_cards; the detectors off by default:
test_redaction_detectors_pii; shared generators: tests/redaction_data.py."""

from __future__ import annotations

import base64
import json
import string
from collections import Counter
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.redaction_data import (
    ALNUM,
    B64URL,
    DEFAULT,
    PROPERTY,
    SMALL,
    UPPER_DIGITS,
    assert_caught,
    assert_untouched,
    chars,
    embedded,
    prose,
)
from tests.redaction_data import redact_text as redact

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
