"""The built-in detectors: what each finds, how it is confirmed, and whether it is on by default.

A detector is either a key detector (the attribute's key names a credential, so its whole value
goes) or a value detector (a pattern found inside any string). Every pattern is RE2 syntax, the
same engine that runs the patterns of operators' own rules, so the two behave alike.

Each value detector also carries a `trigger`: a pattern with no anchors and no word boundaries
that matches wherever the detector could. The receiver searches a span's protobuf bytes for the
triggers first and reads the span's strings one by one only when one is found (redaction.otlp);
a trigger may fire where the detector then finds nothing, never the other way round. A
`confirm` function checks what the pattern found (the Luhn sum of a card number, the mod-97
check of an IBAN) and may narrow it to the part that is the secret.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

# A confirmed finding inside the matched text: (start, end) relative to the match, or None.
Confirm = Callable[[str], "tuple[int, int] | None"]

_CREDENTIAL_WORDS = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key"
    r"|private[_-]?key|client[_-]?secret|authorization|cookie|credentials?"
)

_CAMEL_WORDS = (
    "Password|Passwd|Passphrase|Secret|Token|ApiKey|Apikey|AccessKey|SecretKey|PrivateKey"
    "|ClientSecret|Authorization|Cookie|Credentials?"
)
# glued to what comes before: dbPassword, DBPassword, AWSSecretKey, PGPASSWORD
_GLUED = rf"[A-Za-z0-9](?:{_CAMEL_WORDS}|{_CAMEL_WORDS.upper()})"


@dataclass(frozen=True)
class Detector:
    """A built-in detector. `default_on`: masks on a fresh install; `group`: the capture group
    that is the secret (0: the whole match); `key_pattern`: matched against attribute keys
    (a key detector) instead of values."""

    name: str
    description: str
    default_on: bool
    pattern: str = ""
    trigger: str = ""
    group: int = 0
    confirm: Confirm | None = None
    key_pattern: str = ""

    @property
    def on_keys(self) -> bool:
        return bool(self.key_pattern)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_groups(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of digits in `text`, a run of digits joined by single spaces or dashes."""
    groups: list[tuple[int, int]] = []
    start = None
    for i, ch in enumerate(text):
        if ch.isdigit() and ch.isascii():
            if start is None:
                start = i
        elif start is not None:
            groups.append((start, i))
            start = None
    if start is not None:
        groups.append((start, len(text)))
    return groups


def _card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _printed(sizes: list[int]) -> bool:
    """Digit groups as cards are printed: one run, fours then a last group of 1-4, or 4-6-5 / 4-6-4."""
    if len(sizes) == 1:
        return True
    return (all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4) or sizes in ([4, 6, 5], [4, 6, 4])


def confirm_card(text: str) -> tuple[int, int] | None:
    """A payment card number (13-19 digits, issuer digit 2-6, Luhn sum) in a run of digits
    joined by single spaces or dashes: the run, or the part of it grouped as cards are printed
    (one group; fours, then a last group of 1-4; 4-6-5; 4-6-4), so `4111 1111 1111 1111 12` and
    `2 4111111111111111` still find the card while a UUID's digit groups (8-4-4) do not. The
    pattern also takes a decimal point next to the run, so that a decimal number's fraction
    (0.4111…) or integer part (…4630.0) is not taken for a card."""
    groups = _card_groups(text)
    if text[-2] == ".":
        groups = groups[:-2]  # …NNNN.d: the integer part and its fraction digit
    lead = len(text) - len(text.lstrip("0123456789"))
    if lead < len(text) and text[lead] == ".":
        groups = groups[2:]  # d.NNNN…: the leading digits and the fraction
    sizes = [e - s for s, e in groups]
    for i in range(len(groups)):
        for j in range(len(groups), i, -1):
            if _printed(sizes[i:j]) and _card_number("".join(text[s:e] for s, e in groups[i:j])):
                return groups[i][0], groups[j - 1][1]
    return None


def confirm_token(text: str) -> tuple[int, int] | None:
    """`Bearer x` / `Basic x` where x looks like a credential, not a word ("bearer instruments",
    "basic knowledge" are prose): it holds a digit or one of . _ ~ + / = -, or is 16 characters
    or more mixing upper and lower case."""
    scheme, token = text.split(None, 1)
    token = token.rstrip(".")  # a sentence's full stop is not part of it
    if len(token) < 8:
        return None
    if scheme.lower() == "basic" and _basic_pair(token):
        return 0, len(text)
    if any(ch.isdigit() or ch in "._~+/=-" for ch in token):
        return 0, len(text)
    if len(token) >= 16 and not token.islower() and not token.isupper():
        return 0, len(text)
    return None


def _basic_pair(token: str) -> bool:
    """Whether a Basic token decodes (base64) to user:password text."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        return ":" in raw.decode("utf-8")
    except ValueError:
        return False


def confirm_assignment(text: str) -> tuple[int, int] | None:
    """The value of `name = value` / `"name": "value"`: inside its quotes when quoted (so a
    passphrase with spaces goes whole), else up to a space, a quote or & (a query string). A
    value already redacted (`[REDACTED:…]`, `[HASH:…]`) is left as it is."""
    i = min(at for at in (text.find("="), text.find(":")) if at >= 0) + 1
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] in "\"'":
        end = text.find(text[i], i + 1)
        start, end = i + 1, (end if end != -1 else len(text))
    else:
        start, end = i, len(text)
    value = text[start:end]
    if not value or value.startswith(("[REDACTED:", "[HASH:")):
        return None
    return start, end


def confirm_iban(text: str) -> tuple[int, int] | None:
    """Mod-97 checked; a short last group the pattern took (`… 1332 EUR`) may be another word."""
    found = _iban(text)
    if found is None and " " in text and len(text.rsplit(" ", 1)[1]) < 4:
        found = _iban(text.rsplit(" ", 1)[0])
    return found


def _iban(text: str) -> tuple[int, int] | None:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return None
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return (0, len(text)) if int(number) % 97 == 1 else None


def confirm_ssn(text: str) -> tuple[int, int] | None:
    area, group, serial = text.split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return 0, len(text)


def confirm_ip(text: str) -> tuple[int, int] | None:
    if ":" in text:
        return 0, len(text)
    parts = text.split(".")
    if any(len(p) > 1 and p[0] == "0" for p in parts) or any(int(p) > 255 for p in parts):
        return None
    return 0, len(text)


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "credential_key",
        "an attribute whose key names a credential (password, secret, token, api_key, "
        "authorization, cookie, set-cookie, private_key, client_secret, …): its whole value",
        True,
        # dbPassword, accessToken: a capitalised word after a lower-case letter or digit
        key_pattern=rf"(?i:(?:^|[._\s-])(?:{_CREDENTIAL_WORDS})$)|{_GLUED}$",
        # in canonical protobuf a KeyValue's key is followed by its value's tag, 0x12
        trigger=rf"(?i)(?:{_CREDENTIAL_WORDS})\x12",
    ),
    Detector(
        "private_key",
        "a PEM (or PGP) private key block, to its END line or the end of the text",
        True,
        pattern=r"-----BEGIN[A-Z ]{0,40} PRIVATE KEY(?: BLOCK)?-----(?s:.*?)"
        r"(?:-----END[A-Z ]{0,40} PRIVATE KEY(?: BLOCK)?-----|\z)",
        trigger=r"-----BEGIN",
    ),
    Detector(
        "bearer_token",
        "an HTTP bearer or basic credential (Bearer …, Basic …)",
        True,
        pattern=r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/-]{8,}=*",
        trigger=r"(?i)(?:bearer|basic)\s",
        confirm=confirm_token,
    ),
    Detector(
        "jwt",
        "a JSON Web Token (three base64url parts, the first a JSON header)",
        True,
        pattern=r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        trigger=r"eyJ[A-Za-z0-9_-]{5,}\.",
    ),
    Detector(
        "aws_key",
        "an AWS access key id (AKIA…, ASIA…)",
        True,
        pattern=r"(?:^|[^A-Za-z0-9])((?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16})",
        trigger=r"(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16}",
        group=1,
    ),
    Detector(
        "sk_key",
        "a secret API key in the sk- / sk_live_ shape (OpenAI, Anthropic, Stripe, …)",
        True,
        pattern=r"\b(?:sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})",
        trigger=r"(?:sk-[A-Za-z0-9_-]{20,}|(?:sk|rk)_(?:live|test)_)",
    ),
    Detector(
        "github_token",
        "a GitHub token (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
        True,
        pattern=r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
        trigger=r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_)",
    ),
    Detector(
        "slack_token",
        "a Slack token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-) or incoming-webhook URL",
        True,
        pattern=r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+",
        trigger=r"xox[abposr]-|hooks\.slack\.com/services/",
    ),
    Detector(
        "google_api_key",
        "a Google API key (AIza…)",
        True,
        pattern=r"\bAIza[0-9A-Za-z_-]{35}",
        trigger=r"AIza[0-9A-Za-z_-]{35}",
    ),
    Detector(
        "credential_in_text",
        'a credential written as name=value or name: value in text (password=…, "api_key": "…"); '
        "the value only",
        True,
        # after a word boundary or _ (DB_PASSWORD=, aws_secret_access_key =), or camelCase (dbPassword:)
        pattern=rf"(?i:\b(?:set-)?cookie[ \t]{{0,3}}:[^\n]+)"  # a Cookie header: every cookie in it
        rf"|(?:(?i:(?:\b|_)(?:{_CREDENTIAL_WORDS}))|{_GLUED})"
        rf"[\"']?[ \t]{{0,3}}[:=]\s{{0,16}}"  # the value may be on the next line (pretty JSON)
        # quoted; or a scheme and its credential (Token 9944…, SSWS 00a…); or one word
        rf"(?:\"[^\"\n]{{1,512}}\"?|'[^'\n]{{1,512}}'?|[A-Za-z]{{2,12}} [^\s\"'&]{{8,}}|[^\s\"'&]{{3,}})",
        trigger=rf"(?i)(?:{_CREDENTIAL_WORDS})[\"']?[ \t]{{0,3}}[:=]",
        confirm=confirm_assignment,
    ),
    Detector(
        "url_password",
        "the password of a URL's user info (postgres://user:PASSWORD@host/db)",
        True,
        pattern=r"[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\s:@]{1,256}:([^/\s@]{1,256})@",
        trigger=r"://[^/\s:@]{1,256}:[^/\s@]{1,256}@",
        group=1,
    ),
    Detector(
        "card_number",
        "a payment card number: 13-19 digits, spaces or dashes allowed, issuer digit 2-6, Luhn-checked",
        True,
        # \b: digits inside a hex id or a word (5b4111…) are not a card
        pattern=r"(?:[0-9]+\.)?\b[0-9](?:[ -]?[0-9]){12,}\b(?:\.[0-9])?",
        trigger=r"[2-6](?:[ -]?[0-9]){12,}",
        confirm=confirm_card,
    ),
    Detector(
        "email",
        "an email address",
        False,
        pattern=r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        trigger=r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    ),
    Detector(
        "phone",
        "a phone number: international (+…) or North American ((555) 123-4567, 555-123-4567)",
        False,
        pattern=r"(?:\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,4}(?:[ .-]?[0-9]{2,4}){2,4}"
        r"|\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}|\b[0-9]{3}[.-][0-9]{3}[.-][0-9]{4})\b",
        trigger=r"(?:\+[1-9]|\([0-9]{3}\)|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4})",
    ),
    Detector(
        "iban",
        "an international bank account number (mod-97 checked)",
        False,
        pattern=r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        trigger=r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
        confirm=confirm_iban,
    ),
    Detector(
        "ip_address",
        "an IPv4 or IPv6 address",
        False,
        pattern=r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b"
        r"|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}\b",
        trigger=r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:",
        confirm=confirm_ip,
    ),
    Detector(
        "us_ssn",
        "a US social security number (123-45-6789; never-issued areas excluded)",
        False,
        pattern=r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
        trigger=r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        confirm=confirm_ssn,
    ),
)

BY_NAME: dict[str, Detector] = {d.name: d for d in DETECTORS}
